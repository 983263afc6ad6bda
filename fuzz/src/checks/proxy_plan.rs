//! `proxy::plan` on arbitrary requests: no identity header, assertion,
//! forwarding header or `cf-*` header from the client survives (under any
//! spelling the hub folds together: case, `_` for `-`); the worker's own
//! `X-Forwarded-{Proto,Host,For}` are there once each with its own values;
//! hop-by-hop headers go (but a WebSocket upgrade keeps its two); the
//! `Cookie` header is rebuilt without any worker cookie (read both as the
//! worker and as the hub reads it), keeps every other cookie, and is absent
//! on API-token pass-through; `Origin` is rewritten only from the public
//! origin to the hub's; what jupyter_server needs (`X-XSRFToken`,
//! `Sec-Fetch-*`, `Authorization`) passes untouched.
//!
//! Input: a flags byte (bit 0: API-token passage, bit 1: hub on the public
//! origin, bit 2: custom identity header names, bit 3: http on loopback),
//! the path and query on the first line, then `Name: value` headers.

use hubgate::bindings::Reader;
use hubgate::cookies::{is_worker_cookie, parse_request_cookies};
use hubgate::http::{Headers, IncomingRequest, Method};
use hubgate::proxy::{plan, Passage, ProxyPlan, ProxySettings};
use std::collections::BTreeMap;

const FORWARDING: &[&str] = &[
    "forwarded",
    "x-real-ip",
    "x-scheme",
    "x-client-ip",
    "true-client-ip",
];
const HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "host",
];

fn norm(n: &str) -> String {
    n.to_ascii_lowercase().replace('_', "-")
}

pub fn settings(hub: &str, custom_names: bool) -> ProxySettings {
    let mut m: BTreeMap<String, String> = BTreeMap::new();
    m.insert("HUB_ORIGIN".into(), hub.into());
    if custom_names {
        for (k, v) in [
            ("HEADER_USER", "Remote-User"),
            ("HEADER_EMAIL", "Remote_Email"),
            ("HEADER_GROUPS", "X-Remote-Groups"),
            ("HEADER_ADMIN", "Remote-Admin"),
        ] {
            m.insert(k.into(), v.into());
        }
    }
    let mut r = Reader::new(&m);
    let s = ProxySettings::parse(&mut r).expect("fixture proxy settings");
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    s
}

fn worker_cookie_in(header: &str) -> bool {
    let jar = parse_request_cookies(&Headers(vec![("cookie".into(), header.into())]));
    jar.iter().any(|(n, _)| is_worker_cookie(n))
        || super::input::python_cookie_names(header)
            .iter()
            .any(|n| is_worker_cookie(n))
}

/// The proxy's promises for `plan` of `req`; `passage` when known.
pub fn check_plan(
    s: &ProxySettings,
    req: &IncomingRequest,
    p: &ProxyPlan,
    passage: Option<Passage>,
) {
    let hub = url::Url::parse(&p.url).expect("plan URL parses");
    assert_eq!(
        hub.origin(),
        s.hub_origin.origin(),
        "proxied off the hub origin"
    );
    assert_eq!(hub.path(), req.url.path(), "path changed");
    assert_eq!(hub.query(), req.url.query(), "query changed");
    let websocket = req
        .headers
        .get("upgrade")
        .is_some_and(|u| u.eq_ignore_ascii_case("websocket"));
    assert_eq!(p.websocket, websocket);

    let identity: Vec<String> = [
        &s.headers.user,
        &s.headers.email,
        &s.headers.groups,
        &s.headers.admin,
    ]
    .iter()
    .map(|n| norm(n))
    .chain(["x-hubgate-assertion".to_string()])
    .collect();
    let connection_named: Vec<String> = req
        .headers
        .get_all("connection")
        .flat_map(|v| v.split(','))
        .map(|t| norm(t.trim()))
        .collect();
    let mut cookie_headers = 0;
    for (name, value) in &p.headers.0 {
        let n = norm(name);
        assert!(
            !identity.contains(&n),
            "identity header {name:?} reached the hub"
        );
        assert!(
            !FORWARDING.contains(&n.as_str()),
            "{name:?} reached the hub"
        );
        assert!(!n.starts_with("cf-"), "{name:?} reached the hub");
        if n.starts_with("x-forwarded-") {
            assert!(
                ["X-Forwarded-For", "X-Forwarded-Proto", "X-Forwarded-Host"]
                    .contains(&name.as_str()),
                "client's {name:?} reached the hub"
            );
        }
        // The worker's own headers are new on this hop: `Connection` in the
        // client's request does not name them.
        let own = [
            "X-Forwarded-For",
            "X-Forwarded-Proto",
            "X-Forwarded-Host",
            "Cookie",
        ]
        .contains(&name.as_str())
            || (name == "Origin" && *value == s.hub_origin_str());
        if !own && (HOP.contains(&n.as_str()) || connection_named.contains(&n)) {
            assert!(
                websocket && (n == "upgrade" || n == "connection"),
                "hop-by-hop {name:?} reached the hub"
            );
        }
        if n == "cookie" {
            cookie_headers += 1;
            assert_eq!(name, "Cookie", "a client Cookie header passed as is");
            assert!(!value.contains(['\r', '\n']));
            let clean = !req
                .headers
                .get_all("cookie")
                .any(|c| c.chars().any(char::is_control));
            if clean {
                assert!(
                    !worker_cookie_in(value),
                    "a worker cookie reached the hub: {value:?}"
                );
            } else {
                let jar = parse_request_cookies(&Headers(vec![("cookie".into(), value.clone())]));
                assert!(!jar.iter().any(|(n, _)| is_worker_cookie(n)));
            }
        }
    }
    assert!(cookie_headers <= 1, "several Cookie headers");
    if passage == Some(Passage::ApiToken) {
        assert_eq!(
            cookie_headers, 0,
            "browser cookies on API-token pass-through"
        );
    }
    if passage == Some(Passage::Session) {
        let kept: Vec<(String, String)> = parse_request_cookies(&req.headers)
            .into_iter()
            .filter(|(n, _)| !is_worker_cookie(n))
            .collect();
        let sent = parse_request_cookies(&Headers(
            p.headers
                .0
                .iter()
                .filter(|(n, _)| n == "Cookie")
                .cloned()
                .collect(),
        ));
        assert_eq!(sent, kept, "the hub's own cookies changed on the way");
    }

    let count = |n: &str| p.headers.get_all(n).count();
    assert_eq!(count("x-forwarded-proto"), 1);
    assert_eq!(p.headers.get("x-forwarded-proto"), Some(req.url.scheme()));
    let host = match req.url.port() {
        Some(port) => format!("{}:{port}", req.url.host_str().unwrap_or_default()),
        None => req.url.host_str().unwrap_or_default().to_string(),
    };
    assert_eq!(count("x-forwarded-host"), 1);
    assert_eq!(p.headers.get("x-forwarded-host"), Some(host.as_str()));
    let ip = req.headers.get("cf-connecting-ip");
    assert_eq!(count("x-forwarded-for"), usize::from(ip.is_some()));
    assert_eq!(p.headers.get("x-forwarded-for"), ip);

    // Origin: rewritten only from the public origin to the hub's.
    let public = req.url.origin().ascii_serialization();
    let hub_origin = s.hub_origin.origin().ascii_serialization();
    let sent: Vec<&str> = p.headers.get_all("origin").collect();
    let came: Vec<&str> = req.headers.get_all("origin").collect();
    if hub_origin != public && req.headers.get("origin") == Some(public.as_str()) {
        assert_eq!(sent, vec![hub_origin.as_str()], "Origin not rewritten");
    } else if !connection_named.contains(&"origin".to_string()) {
        assert_eq!(sent, came, "Origin changed");
    }

    // What jupyter_server needs passes untouched.
    for (name, value) in &req.headers.0 {
        let n = norm(name);
        let needed = n == "x-xsrftoken"
            || n.starts_with("sec-fetch-")
            || n == "authorization"
            || n == "accept";
        if needed && !connection_named.contains(&n) && !identity.contains(&n) {
            assert!(
                p.headers.0.iter().any(|(k, v)| k == name && v == value),
                "{name:?} did not reach the hub"
            );
        }
    }
}

pub fn run(data: &[u8]) {
    let (flags, rest) = super::input::flags(data);
    let passage = if flags & 1 == 1 {
        Passage::ApiToken
    } else {
        Passage::Session
    };
    let public = if flags & 8 == 8 {
        super::fixtures::LOOPBACK_ORIGIN
    } else {
        super::fixtures::ORIGIN
    };
    let hub = if flags & 2 == 2 {
        public
    } else {
        super::fixtures::HUB
    };
    let s = settings(hub, flags & 4 == 4);
    let lines = super::input::lines(rest);
    let (target, header_lines) = lines
        .split_first()
        .map_or(("/", &[][..]), |(t, h)| (t.as_str(), h));
    let url = url::Url::parse(&format!("{public}/{}", target.trim_start_matches('/')))
        .unwrap_or_else(|_| url::Url::parse(public).expect("origin"));
    let req = IncomingRequest {
        method: Method::Get,
        url,
        headers: super::input::headers(header_lines),
        body: None,
    };
    let p = plan(&s, &req, passage);
    check_plan(&s, &req, &p, Some(passage));
}
