//! Which headers go to the hub and which come back. The edge streams the
//! bodies; every header decision is here.

use crate::config::Config;
use crate::cookies;
use crate::http::{Headers, IncomingRequest};
use crate::identity::Identity;

pub const ASSERTION_HEADER: &str = "X-Hubgate-Assertion";

/// RFC 9110 7.6.1 hop-by-hop fields, plus `Host` (the fetch sets it).
const HOP_BY_HOP: &[&str] = &[
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

/// Forwarding headers only the worker may set.
const FORWARDING: &[&str] = &[
    "forwarded",
    "x-forwarded-for",
    "x-forwarded-host",
    "x-forwarded-proto",
    "x-forwarded-port",
    "x-real-ip",
];

#[derive(Clone, Debug)]
pub struct ProxyPlan {
    pub url: String,
    pub headers: Headers,
    /// Extra `Set-Cookie` values for the response (a rotated session).
    pub set_cookies: Vec<String>,
    pub websocket: bool,
}

/// Header names compare lower-cased with `_` read as `-`: servers such as
/// Tornado and WSGI treat `X_Forwarded_User` as `X-Forwarded-User`.
pub fn normalised(name: &str) -> String {
    name.to_ascii_lowercase().replace('_', "-")
}

fn identity_names(cfg: &Config) -> Vec<String> {
    [
        &cfg.headers.user,
        &cfg.headers.email,
        &cfg.headers.groups,
        &cfg.headers.admin,
    ]
    .into_iter()
    .map(|n| normalised(n))
    .chain(std::iter::once(normalised(ASSERTION_HEADER)))
    .collect()
}

pub fn is_websocket(headers: &Headers) -> bool {
    headers
        .get("upgrade")
        .is_some_and(|u| u.eq_ignore_ascii_case("websocket"))
}

pub fn plan(cfg: &Config, req: &IncomingRequest, identity: Option<&Identity>) -> ProxyPlan {
    let mut url = cfg.hub_origin.clone();
    url.set_path(req.url.path());
    url.set_query(req.url.query());
    let websocket = is_websocket(&req.headers);
    ProxyPlan {
        url: url.to_string(),
        headers: outbound_headers(cfg, req, identity, websocket),
        set_cookies: Vec::new(),
        websocket,
    }
}

fn outbound_headers(
    cfg: &Config,
    req: &IncomingRequest,
    identity: Option<&Identity>,
    websocket: bool,
) -> Headers {
    let strip = identity_names(cfg);
    let connection_named: Vec<String> = req
        .headers
        .get_all("connection")
        .flat_map(|v| v.split(','))
        .map(|t| normalised(t.trim()))
        .collect();
    let mut out = Headers::new();
    for (name, value) in &req.headers.0 {
        let n = normalised(name);
        let hop = HOP_BY_HOP.contains(&n.as_str()) || connection_named.contains(&n);
        if strip.contains(&n)
            || FORWARDING.contains(&n.as_str())
            || n == "cookie"
            || n.starts_with("cf-")
        {
            continue;
        }
        if hop && !(websocket && (n == "upgrade" || n == "connection")) {
            continue;
        }
        out.push(name.clone(), value.clone());
    }
    let kept: Vec<String> = cookies::parse_request_cookies(&req.headers)
        .into_iter()
        .filter(|(n, _)| !cookies::is_worker_cookie(n))
        .map(|(n, v)| format!("{n}={v}"))
        .collect();
    if !kept.is_empty() {
        out.push("Cookie", kept.join("; "));
    }
    let public_origin = req.origin();
    // jupyter_server refuses a request whose Origin does not match its Host.
    if cfg.hub_origin.origin().ascii_serialization() != public_origin {
        if let Some(o) = req.headers.get("origin") {
            if o == public_origin {
                out.set("Origin", cfg.hub_origin.origin().ascii_serialization());
            }
        }
    }
    if let Some(ip) = req.headers.get("cf-connecting-ip") {
        out.push("X-Forwarded-For", ip.to_string());
    }
    out.push("X-Forwarded-Proto", req.url.scheme().to_string());
    let host = match req.url.port() {
        Some(p) => format!("{}:{p}", req.url.host_str().unwrap_or_default()),
        None => req.url.host_str().unwrap_or_default().to_string(),
    };
    out.push("X-Forwarded-Host", host);
    if let Some(id) = identity {
        out.push(cfg.headers.user.clone(), id.username.clone());
        if let Some(e) = &id.email {
            out.push(cfg.headers.email.clone(), e.clone());
        }
        out.push(cfg.headers.groups.clone(), id.groups.join(","));
        out.push(cfg.headers.admin.clone(), id.admin.to_string());
    }
    out
}

/// The hub's response headers minus hop-by-hop ones. `Set-Cookie` entries
/// stay separate, never folded into one.
pub fn inbound_headers(hub: &Headers) -> Headers {
    let connection_named: Vec<String> = hub
        .get_all("connection")
        .flat_map(|v| v.split(','))
        .map(|t| normalised(t.trim()))
        .collect();
    Headers(
        hub.0
            .iter()
            .filter(|(n, _)| {
                let n = normalised(n);
                !HOP_BY_HOP.contains(&n.as_str()) && !connection_named.contains(&n)
            })
            .cloned()
            .collect(),
    )
}
