//! `session::flow_cookie::{take, cookie_name}` on arbitrary states and
//! `Cookie` headers: never panics; only a genuine flow minted here comes
//! out, for its own kind and its exact state; the cookie name made from
//! any state is a valid cookie name that the proxy strips.
//!
//! Input: a flags byte (bit 0: https, bit 1: LTI), the state on the first
//! line (`{oauth}` / `{lti}` stand for the genuine flows' states), then one
//! `Cookie` header per line.

use super::fixtures::{self, T0};
use hubgate::cookies::{is_worker_cookie, Context};
use hubgate::http::{Headers, UnixTime};
use hubgate::session::flow_cookie::{
    cookie_name, mint, take, Flow, FlowKind, LtiFlow, OAuthFlow, FLOW_TTL,
};
use std::sync::OnceLock;

pub const OAUTH_STATE: &str = "oAuThStAtE-0123456789_abcdefghijklmnopq";
pub const LTI_STATE: &str = "lTiStAtE-9876543210_zyxwvutsrqponmlkji";

pub struct Genuine {
    pub flow: Flow,
    pub https: bool,
    pub name: String,
    pub token: String,
    pub dead: bool,
}

pub fn genuine() -> &'static [Genuine] {
    static G: OnceLock<Vec<Genuine>> = OnceLock::new();
    G.get_or_init(|| {
        let oauth = Flow::Oauth(OAuthFlow {
            state: OAUTH_STATE.into(),
            nonce: "nonce-o".into(),
            pkce_verifier: "verifier-o".into(),
            next: "/hub/home".into(),
            provider: String::new(),
        });
        let lti = Flow::Lti(LtiFlow {
            state: LTI_STATE.into(),
            nonce: "nonce-l".into(),
            target_link_uri: "https://hub.example/hub/".into(),
            registration: r#"["https://lms.example","client-1"]"#.into(),
        });
        let mut out = Vec::new();
        for https in [true, false] {
            for flow in [&oauth, &lti] {
                for (cfg, at, dead) in [
                    (fixtures::session_settings(), T0, false),
                    (fixtures::previous_settings(), T0 - 30, false),
                    (fixtures::session_settings(), T0 - FLOW_TTL - 1, true),
                ] {
                    let set = mint(&cfg, flow, https, Context::TopLevel, UnixTime(at));
                    let (n, v) = fixtures::cookie_pair(&set);
                    out.push(Genuine {
                        flow: flow.clone(),
                        https,
                        name: n,
                        token: v,
                        dead,
                    });
                }
            }
        }
        out
    })
}

/// RFC 6265 `token`: visible ASCII minus separators.
pub fn is_cookie_name(n: &str) -> bool {
    !n.is_empty()
        && n.bytes()
            .all(|b| b.is_ascii_graphic() && !b"()<>@,;:\\\"/[]?={}".contains(&b))
}

pub fn run(data: &[u8]) {
    let (flags, rest) = super::input::flags(data);
    let https = flags & 1 == 1;
    let kind = if flags & 2 == 2 {
        FlowKind::Lti
    } else {
        FlowKind::Oauth
    };
    let (state, rest) = super::input::first_line(rest);
    let state = state
        .replace("{oauth}", OAUTH_STATE)
        .replace("{lti}", LTI_STATE);
    let lines: Vec<String> = super::input::lines(rest);
    let headers = Headers(lines.into_iter().map(|l| ("Cookie".into(), l)).collect());

    for k in [FlowKind::Oauth, FlowKind::Lti] {
        for h in [true, false] {
            let name = cookie_name(k, &state, h);
            assert!(is_cookie_name(&name), "cookie name {name:?}");
            assert!(is_worker_cookie(&name), "{name:?} would reach the hub");
            assert_eq!(name.starts_with("__Host-"), h);
            assert!(name.len() <= "__Host-hubgate-oauth-".len() + 16, "{name:?}");
        }
    }

    let cfg = fixtures::session_settings();
    let got = take(&cfg, kind, Some(&state), &headers, https, UnixTime(T0));
    let Ok(flow) = got else {
        assert!(!got.unwrap_err().to_string().is_empty());
        return;
    };
    assert_eq!(flow.kind(), kind, "a flow of another kind came out");
    assert_eq!(flow.state(), state, "a flow for another state came out");
    let jar = hubgate::cookies::parse_request_cookies(&headers);
    let g = genuine().iter().find(|g| {
        g.https == https
            && !g.dead
            && g.flow == flow
            && jar.iter().any(|(n, v)| {
                *n == g.name && fixtures::signed_part(v) == fixtures::signed_part(&g.token)
            })
    });
    assert!(g.is_some(), "a forged flow cookie was taken: {flow:?}");
}
