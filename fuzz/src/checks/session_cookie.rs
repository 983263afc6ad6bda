//! `session::cookie::verify` on arbitrary `Cookie` headers: never panics,
//! and a forged cookie never verifies. The only sessions that may come out
//! are the genuine ones minted here (the seeds carry them, so the fuzzer
//! mutates real tokens): the current secret's, the previous secret's (which
//! must ask for a re-issue), never the expired one nor one for another
//! origin.
//!
//! Input: a flags byte (bit 0: https), then one `Cookie` header per line.

use super::fixtures::{self, identity, ORIGIN, T0};
use hubgate::cookies::{self, Context};
use hubgate::http::{Headers, UnixTime};
use hubgate::identity::{Identity, LoginMethod};
use hubgate::session::cookie::{cookie_name, mint, verify};
use hubgate::session::{Loaded, SessionSettings};
use std::sync::OnceLock;

pub struct Genuine {
    pub token: String,
    pub identity: Identity,
    pub sid: String,
    pub previous: bool,
    pub https: bool,
    /// Expired or minted for another origin: must never verify.
    pub dead: bool,
    /// Its groups live in KV (verify answers `NeedsExtras`).
    pub ext: bool,
}

fn origin(https: bool) -> &'static str {
    if https {
        ORIGIN
    } else {
        fixtures::LOOPBACK_ORIGIN
    }
}

pub fn genuine() -> &'static [Genuine] {
    static G: OnceLock<Vec<Genuine>> = OnceLock::new();
    G.get_or_init(|| {
        let mut out = Vec::new();
        for https in [true, false] {
            let mut add = |cfg: &SessionSettings,
                           who: Identity,
                           previous: bool,
                           at: u64,
                           at_origin: &str,
                           dead: bool| {
                let sid = format!("sid-{}", who.username);
                let set = mint(
                    cfg,
                    &who,
                    &sid,
                    None,
                    at_origin,
                    https,
                    Context::TopLevel,
                    UnixTime(at),
                );
                let ext = hubgate::session::cookie::extras_overflow(&who);
                out.push(Genuine {
                    token: fixtures::cookie_pair(&set).1,
                    identity: who,
                    sid,
                    previous,
                    https,
                    dead,
                    ext,
                });
            };
            let current = fixtures::session_settings();
            let o = origin(https);
            add(
                &current,
                identity("alice", LoginMethod::Oauth),
                false,
                T0,
                o,
                false,
            );
            let mut bob = identity("bob", LoginMethod::Lti);
            bob.admin = true;
            add(&fixtures::previous_settings(), bob, true, T0 - 60, o, false);
            add(
                &current,
                identity("carol", LoginMethod::Oauth),
                false,
                T0 - 7200,
                o,
                true,
            );
            add(
                &current,
                identity("dave", LoginMethod::Oauth),
                false,
                T0,
                "https://other.example",
                true,
            );
            let mut erin = identity("erin", LoginMethod::Oauth);
            erin.groups = (0..300).map(|i| format!("group-{i}")).collect();
            add(&current, erin, false, T0, o, false);
        }
        out
    })
}

pub fn run(data: &[u8]) {
    let (flags, rest) = super::input::flags(data);
    let https = flags & 1 == 1;
    let headers = Headers(
        super::input::lines(rest)
            .into_iter()
            .map(|l| ("Cookie".to_string(), l))
            .collect(),
    );
    let cfg = fixtures::session_settings();
    let result = verify(&cfg, &headers, origin(https), https, UnixTime(T0));
    let Ok(loaded) = result else {
        assert!(!result.unwrap_err().to_string().is_empty());
        return;
    };
    let jar = cookies::parse_request_cookies(&headers);
    let name = cookie_name(https);
    let presented: Vec<&str> = cookies::find_all(&jar, &name).collect();
    let (sid, session) = match &loaded {
        Loaded::Complete(s) => (s.sid.as_str(), Some(s)),
        Loaded::NeedsExtras(p) => (p.sid(), None),
    };
    let g = genuine()
        .iter()
        .find(|g| {
            g.https == https
                && !g.dead
                && g.sid == sid
                && presented
                    .iter()
                    .any(|p| fixtures::signed_part(p) == fixtures::signed_part(&g.token))
        })
        .unwrap_or_else(|| panic!("a forged session cookie verified (sid {sid:?})"));
    assert_eq!(
        g.ext,
        session.is_none(),
        "extras in KV exactly when too big"
    );
    if let Some(s) = session {
        assert_eq!(s.identity, g.identity, "identity changed on the way");
        assert_eq!(
            s.reissue.is_some(),
            g.previous,
            "re-issue exactly after rotation"
        );
        assert!(s.expires_at > UnixTime(T0), "expired session accepted");
    }
}
