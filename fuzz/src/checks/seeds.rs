//! Seeds whose bytes are made here (they carry genuine tokens minted with
//! the fixtures); `tests/fuzz_regressions.rs` writes them with
//! `HUBGATE_WRITE_SEEDS=1 cargo test --test fuzz_regressions write_seeds`.
//! The other seeds under `fuzz/corpus/` are written by hand.

pub fn generated() -> Vec<(&'static str, String, Vec<u8>)> {
    let mut out = Vec::new();
    for g in super::session_cookie::genuine() {
        let flags = if g.https { b'1' } else { b'0' };
        let name = hubgate::session::cookie::cookie_name(g.https);
        let mut data = vec![flags];
        data.extend(format!("_xsrf=2|x; {name}={}; jupyterhub-session-id=abc", g.token).bytes());
        let tag = format!(
            "gen-{}-{}{}",
            g.sid,
            if g.https { "https" } else { "http" },
            if g.dead { "-dead" } else { "" }
        );
        out.push(("session_cookie", tag, data));
    }
    for (i, g) in super::flow_cookie::genuine().iter().enumerate() {
        let lti = matches!(g.flow, hubgate::session::flow_cookie::Flow::Lti(_));
        let flags = b'0' + u8::from(g.https) + 2 * u8::from(lti);
        let mut data = vec![flags];
        data.extend(format!("{}\n{}={}; _xsrf=1", g.flow.state(), g.name, g.token).bytes());
        out.push(("flow_cookie", format!("gen-{i}"), data));
    }
    for (i, t) in super::fixtures::genuine_jwts().iter().enumerate() {
        let mut data = vec![0u8];
        data.extend(t.bytes());
        out.push(("jwt", format!("gen-{i}"), data));
    }
    out
}
