//! Plain request/response values the core reasons about. The edge converts
//! `worker` types to and from these; nothing here does I/O.

use std::fmt;

/// Seconds since the Unix epoch. Always injected, never read from a clock here.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UnixTime(pub u64);

impl UnixTime {
    pub fn to_datetime(self) -> chrono::DateTime<chrono::Utc> {
        use chrono::TimeZone;
        let secs = i64::try_from(self.0).unwrap_or(i64::MAX);
        chrono::Utc
            .timestamp_opt(secs, 0)
            .single()
            .unwrap_or_default()
    }
    pub fn from_datetime(d: chrono::DateTime<chrono::Utc>) -> UnixTime {
        UnixTime(u64::try_from(d.timestamp()).unwrap_or(0))
    }
    pub fn plus(self, secs: u64) -> UnixTime {
        UnixTime(self.0.saturating_add(secs))
    }
    pub fn since(self, earlier: UnixTime) -> u64 {
        self.0.saturating_sub(earlier.0)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    Get,
    Head,
    Post,
    Other,
}

impl Method {
    pub fn parse(m: &str) -> Method {
        match m.to_ascii_uppercase().as_str() {
            "GET" => Method::Get,
            "HEAD" => Method::Head,
            "POST" => Method::Post,
            _ => Method::Other,
        }
    }
}

/// Header list that keeps repeated names apart (several `Set-Cookie`).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Headers(pub Vec<(String, String)>);

impl fmt::Debug for Headers {
    // Cookie and Authorization values are credentials: never print them.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut list = f.debug_list();
        for (k, v) in &self.0 {
            let lk = k.to_ascii_lowercase();
            if lk == "cookie" || lk == "authorization" || lk == "set-cookie" {
                list.entry(&(k, "<redacted>"));
            } else {
                list.entry(&(k, v));
            }
        }
        list.finish()
    }
}

impl Headers {
    pub fn new() -> Self {
        Headers(Vec::new())
    }
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    pub fn get_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0
            .iter()
            .filter(move |(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    pub fn push(&mut self, name: impl Into<String>, value: impl Into<String>) {
        self.0.push((name.into(), value.into()));
    }
    pub fn set(&mut self, name: &str, value: impl Into<String>) {
        self.remove(name);
        self.push(name, value);
    }
    pub fn remove(&mut self, name: &str) {
        self.0.retain(|(k, _)| !k.eq_ignore_ascii_case(name));
    }
}

/// The parts of an incoming request the core decides on. The body is only
/// present for the few routes that read a form (the LTI launch); proxied
/// bodies stay streams in the edge.
#[derive(Clone, Debug)]
pub struct IncomingRequest {
    pub method: Method,
    pub url: url::Url,
    pub headers: Headers,
    pub body: Option<Vec<u8>>,
}

impl IncomingRequest {
    pub fn origin(&self) -> String {
        self.url.origin().ascii_serialization()
    }
    pub fn query_param(&self, name: &str) -> Option<String> {
        self.url
            .query_pairs()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    }
    pub fn is_https(&self) -> bool {
        self.url.scheme() == "https"
    }

    /// The request as the client sent it to a TLS-terminating front end
    /// that the operator says sets `X-Forwarded-Proto` (`TRUST_FORWARDED_PROTO`):
    /// its first value (the front end nearest the client), `http` or
    /// `https`, becomes the scheme every URL and cookie attribute follows.
    /// Any other value leaves the URL as it arrived.
    pub fn with_forwarded_proto(mut self) -> Self {
        let proto = self
            .headers
            .get("x-forwarded-proto")
            .and_then(|v| v.split(',').next())
            .map(|v| v.trim().to_ascii_lowercase());
        if let Some(p) = proto.filter(|p| p == "http" || p == "https") {
            if p != self.url.scheme() {
                // http and https are both special schemes: this cannot fail.
                let _ = self.url.set_scheme(&p);
            }
        }
        self
    }
}

/// Facts about the request every handler needs, and where the routes live.
#[derive(Clone, Debug)]
pub struct RequestCtx {
    pub origin: String,
    pub https: bool,
    /// `BASE_URL`, always starting and ending with `/`.
    pub base_path: String,
}

impl RequestCtx {
    pub fn new(req: &IncomingRequest, base_path: &str) -> Self {
        RequestCtx {
            origin: req.origin(),
            https: req.is_https(),
            base_path: base_path.to_string(),
        }
    }
    /// An absolute URL on this worker for a path under `BASE_URL`.
    pub fn url_for(&self, path_under_base: &str) -> String {
        format!("{}{}{path_under_base}", self.origin, self.base_path)
    }
    pub fn path_for(&self, path_under_base: &str) -> String {
        format!("{}{path_under_base}", self.base_path)
    }
}

/// A response fully decided by the core.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub headers: Headers,
    pub body: Vec<u8>,
}

impl Response {
    pub fn new(status: u16) -> Self {
        Response {
            status,
            headers: Headers::new(),
            body: Vec::new(),
        }
    }
    pub fn redirect(location: &str) -> Self {
        let mut r = Response::new(302);
        r.headers.push("Location", location);
        r.headers.push("Cache-Control", "no-store");
        r
    }
    pub fn html(status: u16, body: String) -> Self {
        let mut r = Response::new(status);
        r.headers.push("Content-Type", "text/html; charset=utf-8");
        r.headers.push("Cache-Control", "no-store");
        r.headers.push(
            "Content-Security-Policy",
            "default-src 'none'; style-src 'unsafe-inline'; form-action 'self' https: http://127.0.0.1:* http://localhost:*; frame-ancestors *",
        );
        r.headers.push("X-Content-Type-Options", "nosniff");
        r.body = body.into_bytes();
        r
    }
    pub fn json(status: u16, value: &serde_json::Value) -> Self {
        let mut r = Response::new(status);
        r.headers.push("Content-Type", "application/json");
        r.headers.push("Cache-Control", "no-store");
        r.headers.push("X-Content-Type-Options", "nosniff");
        r.body = value.to_string().into_bytes();
        r
    }
    pub fn with_cookie(mut self, set_cookie: String) -> Self {
        self.headers.push("Set-Cookie", set_cookie);
        self
    }
    pub fn location(&self) -> Option<&str> {
        self.headers.get("location")
    }
}

/// An outbound HTTP call the core asks the edge to make (token endpoint,
/// userinfo, JWKS, discovery). Bounded by a timeout and a body-size cap.
#[derive(Clone, Debug)]
pub struct OutboundRequest {
    pub method: Method,
    pub url: String,
    pub headers: Headers,
    pub body: Option<Vec<u8>>,
    pub timeout_ms: u32,
    pub max_body_bytes: usize,
}

impl OutboundRequest {
    pub fn get(url: &str) -> Self {
        OutboundRequest {
            method: Method::Get,
            url: url.to_string(),
            headers: Headers(vec![("Accept".into(), "application/json".into())]),
            body: None,
            timeout_ms: 5_000,
            max_body_bytes: 256 * 1024,
        }
    }
}

#[derive(Clone, Debug)]
pub struct OutboundResponse {
    pub status: u16,
    pub headers: Headers,
    pub body: Vec<u8>,
}

/// An upstream body read against its cap: a declared `Content-Length` over
/// the cap is refused before anything is read, and the read stops at the
/// first chunk that would pass it, so a body sent without a length (or
/// longer than it said) cannot make the worker read on.
#[derive(Debug)]
pub struct CappedBody {
    max: usize,
    bytes: Vec<u8>,
}

impl CappedBody {
    pub fn new(max: usize, content_length: Option<&str>) -> Result<Self, FetchError> {
        let declared = content_length.and_then(|v| v.trim().parse::<u64>().ok());
        if declared.is_some_and(|n| n > max as u64) {
            return Err(FetchError::TooLarge(max));
        }
        Ok(CappedBody {
            max,
            bytes: Vec::new(),
        })
    }

    /// The next chunk; `TooLarge` (and the read should end) once the body
    /// would pass the cap.
    pub fn push(&mut self, chunk: &[u8]) -> Result<(), FetchError> {
        if chunk.len() > self.max - self.bytes.len() {
            return Err(FetchError::TooLarge(self.max));
        }
        self.bytes.extend_from_slice(chunk);
        Ok(())
    }

    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FetchError {
    #[error("timed out after {0} ms")]
    Timeout(u32),
    #[error("response body larger than {0} bytes")]
    TooLarge(usize),
    #[error("network error: {0}")]
    Network(String),
}

/// Every error enum answers its status and its kind (the log's `kind`)
/// through this trait; `app::respond` renders them all the same way.
pub trait Failure: fmt::Display {
    fn status(&self) -> u16;
    fn kind(&self) -> &'static str;
}
