//! Which headers go to the hub and which come back. The edge streams the
//! bodies; every header decision is here. Identity never rides on a
//! browser's request: only the worker's own login subrequest
//! (`hub_login_request`) carries it.

use crate::bindings::{Bindings, Reader};
use crate::cookies;
use crate::framing;
use crate::http::{Headers, IncomingRequest, Method, OutboundRequest, RequestCtx};
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

/// Forwarding headers the hub or Tornado trust; only the worker sets them
/// (every `x-forwarded-*` is dropped as well).
const FORWARDING: &[&str] = &[
    "forwarded",
    "x-real-ip",
    "x-scheme",
    "x-client-ip",
    "true-client-ip",
];

#[derive(Debug, Clone)]
pub struct IdentityHeaderNames {
    pub user: String,
    pub email: String,
    pub groups: String,
    pub admin: String,
}

/// `HUB_TIMEOUT` (seconds): how long a proxied request waits for the hub's
/// response headers (or its answer to a WebSocket upgrade) before the
/// worker answers 502. The default is what Cloudflare itself gives an
/// origin; bodies stream on without a bound once the headers came.
pub const DEFAULT_HUB_TIMEOUT_SECS: u64 = 100;
pub const MAX_HUB_TIMEOUT_SECS: u64 = 600;

/// What the proxy needs: where the hub is, the identity header names, and
/// how long to wait for the hub.
#[derive(Debug, Clone)]
pub struct ProxySettings {
    pub hub_origin: url::Url,
    pub headers: IdentityHeaderNames,
    pub timeout_ms: u32,
}

impl ProxySettings {
    pub fn parse<B: Bindings>(r: &mut Reader<'_, B>) -> Option<ProxySettings> {
        let hub_origin = match r.required("HUB_ORIGIN") {
            Some(raw) => r.check_url("HUB_ORIGIN", &raw),
            None => None,
        };
        if let Some(h) = &hub_origin {
            if h.path() != "/" || h.query().is_some() {
                r.invalid(
                    "HUB_ORIGIN",
                    "must be an origin (scheme, host, port) without a path",
                );
            }
        }
        let headers = IdentityHeaderNames {
            user: header_name(r, "HEADER_USER", "X-Forwarded-User"),
            email: header_name(r, "HEADER_EMAIL", "X-Forwarded-Email"),
            groups: header_name(r, "HEADER_GROUPS", "X-Forwarded-Groups"),
            admin: header_name(r, "HEADER_ADMIN", "X-Forwarded-Admin"),
        };
        let timeout_secs = r.u64_in(
            "HUB_TIMEOUT",
            DEFAULT_HUB_TIMEOUT_SECS,
            1,
            MAX_HUB_TIMEOUT_SECS,
        );
        Some(ProxySettings {
            hub_origin: hub_origin?,
            headers,
            timeout_ms: u32::try_from(timeout_secs * 1000).unwrap_or(u32::MAX),
        })
    }

    pub fn hub_origin_str(&self) -> String {
        self.hub_origin.origin().ascii_serialization()
    }

    fn hub_url(&self, path: &str, query: Option<&str>) -> String {
        let mut url = self.hub_origin.clone();
        url.set_path(path);
        url.set_query(query);
        url.to_string()
    }
}

fn header_name<B: Bindings>(r: &mut Reader<'_, B>, name: &'static str, default: &str) -> String {
    let v = r.string(name).unwrap_or_else(|| default.into());
    let token_ok = !v.is_empty()
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !token_ok {
        r.invalid(name, "must be a header name (letters, digits, '-')");
    }
    v
}

/// How a request reaches the hub.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Passage {
    /// With a worker session: the browser's hub cookies go along.
    Session,
    /// Without one, carrying `Authorization` (a hub API token): no browser
    /// cookies at all, so a dead session cannot be revived by the hub's own.
    ApiToken,
}

#[derive(Clone, Debug)]
pub struct ProxyPlan {
    pub url: String,
    pub headers: Headers,
    /// Extra `Set-Cookie` values for the response (a rotated session).
    pub set_cookies: Vec<String>,
    pub websocket: bool,
    /// The hub answers (headers, or the upgrade) within this, or 502.
    pub timeout_ms: u32,
    /// Set for a session an LTI launch started: the hub's response is made
    /// to work in the LMS frame (`framing`), these origins may frame it.
    pub frame_ancestors: Option<Vec<String>>,
}

/// Header names compare lower-cased with `_` read as `-`: servers such as
/// Tornado and WSGI treat `X_Forwarded_User` as `X-Forwarded-User`.
pub fn normalised(name: &str) -> String {
    name.to_ascii_lowercase().replace('_', "-")
}

fn identity_names(s: &ProxySettings) -> Vec<String> {
    [
        &s.headers.user,
        &s.headers.email,
        &s.headers.groups,
        &s.headers.admin,
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

pub fn plan(s: &ProxySettings, req: &IncomingRequest, passage: Passage) -> ProxyPlan {
    let websocket = is_websocket(&req.headers);
    ProxyPlan {
        url: s.hub_url(req.url.path(), req.url.query()),
        headers: outbound_headers(s, req, passage, websocket),
        set_cookies: Vec::new(),
        websocket,
        timeout_ms: s.timeout_ms,
        frame_ancestors: None,
    }
}

/// True for a header the client may not send to the hub: identity,
/// the assertion, forwarding headers, the `Cookie` header (rebuilt), and
/// the platform's own `cf-*`.
fn is_refused(s: &ProxySettings, n: &str) -> bool {
    identity_names(s).iter().any(|i| i == n)
        || FORWARDING.contains(&n)
        || n.starts_with("x-forwarded-")
        || n == "cookie"
        || n.starts_with("cf-")
}

fn outbound_headers(
    s: &ProxySettings,
    req: &IncomingRequest,
    passage: Passage,
    websocket: bool,
) -> Headers {
    let connection_named: Vec<String> = req
        .headers
        .get_all("connection")
        .flat_map(|v| v.split(','))
        .map(|t| normalised(t.trim()))
        .collect();
    let mut out = Headers::new();
    for (name, value) in &req.headers.0 {
        let n = normalised(name);
        if is_refused(s, &n) {
            continue;
        }
        let hop = HOP_BY_HOP.contains(&n.as_str()) || connection_named.contains(&n);
        if hop && !(websocket && (n == "upgrade" || n == "connection")) {
            continue;
        }
        out.push(name.clone(), value.clone());
    }
    if passage == Passage::Session {
        if let Some(c) = hub_cookies(req) {
            out.push("Cookie", c);
        }
    }
    let public_origin = req.origin();
    // jupyter_server refuses a request whose Origin does not match its Host.
    if s.hub_origin_str() != public_origin
        && req.headers.get("origin") == Some(public_origin.as_str())
    {
        out.set("Origin", s.hub_origin_str());
    }
    push_forwarding(&mut out, req);
    out
}

/// The request's cookies minus the worker's own, as one `Cookie` header.
fn hub_cookies(req: &IncomingRequest) -> Option<String> {
    let kept: Vec<String> = cookies::parse_request_cookies(&req.headers)
        .into_iter()
        .filter(|(n, _)| !cookies::is_worker_cookie(n))
        .map(|(n, v)| format!("{n}={v}"))
        .collect();
    (!kept.is_empty()).then(|| kept.join("; "))
}

fn push_forwarding(out: &mut Headers, req: &IncomingRequest) {
    if let Some(ip) = req.headers.get("cf-connecting-ip") {
        out.push("X-Forwarded-For", ip.to_string());
    }
    out.push("X-Forwarded-Proto", req.url.scheme().to_string());
    let host = match req.url.port() {
        Some(p) => format!("{}:{p}", req.url.host_str().unwrap_or_default()),
        None => req.url.host_str().unwrap_or_default().to_string(),
    };
    out.push("X-Forwarded-Host", host);
}

/// The worker's own login at the hub: `GET {BASE_URL}hub/login?next=…`
/// with the identity attached (the assertion, and the header-mode headers),
/// and no browser cookies: the hub starts a fresh session for this user.
pub fn hub_login_request(
    s: &ProxySettings,
    req: &IncomingRequest,
    ctx: &RequestCtx,
    identity: &Identity,
    assertion: Option<&str>,
    next: &str,
) -> OutboundRequest {
    let path = ctx.path_for("hub/login");
    let query: String = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("next", next)
        .finish();
    let mut headers = Headers::new();
    headers.push("Accept", "text/html");
    if let Some(ua) = req.headers.get("user-agent") {
        headers.push("User-Agent", ua.to_string());
    }
    push_forwarding(&mut headers, req);
    if let Some(token) = assertion {
        headers.push(ASSERTION_HEADER, token.to_string());
    }
    headers.push(s.headers.user.clone(), identity.username.clone());
    if let Some(e) = &identity.email {
        headers.push(s.headers.email.clone(), e.clone());
    }
    headers.push(s.headers.groups.clone(), identity.groups.join(","));
    headers.push(s.headers.admin.clone(), identity.admin.to_string());
    OutboundRequest {
        method: Method::Get,
        url: s.hub_url(&path, Some(&query)),
        headers,
        body: None,
        timeout_ms: HUB_CALL_TIMEOUT_MS,
        max_body_bytes: 64 * 1024,
    }
}

/// The hub answers its login and logout within this, or the worker gives up.
pub const HUB_CALL_TIMEOUT_MS: u32 = 5_000;

/// The hub's `/hub/logout` with the browser's hub cookies (never the
/// worker's, never identity), so the hub ends its own session.
pub fn hub_logout_request(
    s: &ProxySettings,
    req: &IncomingRequest,
    ctx: &RequestCtx,
) -> OutboundRequest {
    let mut headers = Headers::new();
    headers.push("Accept", "text/html");
    if let Some(c) = hub_cookies(req) {
        headers.push("Cookie", c);
    }
    push_forwarding(&mut headers, req);
    OutboundRequest {
        method: Method::Get,
        url: s.hub_url(&ctx.path_for("hub/logout"), None),
        headers,
        body: None,
        timeout_ms: HUB_CALL_TIMEOUT_MS,
        max_body_bytes: 64 * 1024,
    }
}

/// `GET /hub/api/user` with a caller's own `Authorization`: the hub says
/// whose API token it is (a service, an admin, a user). Nothing else rides.
pub fn hub_token_owner_request(
    s: &ProxySettings,
    ctx: &RequestCtx,
    authorization: &str,
) -> OutboundRequest {
    let mut headers = Headers::new();
    headers.push("Accept", "application/json");
    headers.push("Authorization", authorization);
    OutboundRequest {
        method: Method::Get,
        url: s.hub_url(&ctx.path_for("hub/api/user"), None),
        headers,
        body: None,
        timeout_ms: HUB_CALL_TIMEOUT_MS,
        max_body_bytes: 64 * 1024,
    }
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

/// The headers the browser gets for a proxied response: the hub's minus
/// hop-by-hop ones, made frame-safe for an LTI session, then the plan's own
/// cookies (already set for their context).
pub fn response_headers(hub: &Headers, plan: &ProxyPlan) -> Headers {
    let mut h = inbound_headers(hub);
    if let Some(ancestors) = &plan.frame_ancestors {
        framing::frame_safe_headers(&mut h, ancestors);
    }
    for c in &plan.set_cookies {
        h.push("Set-Cookie", c.clone());
    }
    h
}
