//! Shared helpers for the native integration tests: a scripted `Io` (fixed
//! clock, counting fetches, in-memory KV, deterministic randomness), a fake
//! OpenID provider that signs with keys made here, and request builders.
#![allow(dead_code)]

use hubgate::app::{self, App, Outcome};
use hubgate::http::{
    FetchError, Headers, IncomingRequest, Method, OutboundRequest, OutboundResponse, Response,
    UnixTime,
};
use hubgate::io::{Io, KvNamespace};
use jwt_compact::{alg::Es256, jwk::JsonWebKey, AlgorithmExt, Claims, Header};
use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap};

pub const T0: u64 = 1_760_000_000;
pub const ORIGIN: &str = "https://hub.example.edu";
pub const ISSUER: &str = "https://idp.example.org";
pub const HUB: &str = "https://origin.example.edu:8443";
pub const SECRET: &str = "0123456789abcdef0123456789abcdef-test-secret";

type Handler = Box<dyn Fn(&OutboundRequest) -> Result<OutboundResponse, FetchError>>;

pub struct TestIo {
    pub now: Cell<u64>,
    pub kv: RefCell<HashMap<(String, String), String>>,
    pub routes: RefCell<Vec<(String, Handler)>>,
    pub fetched: RefCell<Vec<OutboundRequest>>,
    pub logs: RefCell<Vec<String>>,
    counter: Cell<u8>,
}

impl TestIo {
    pub fn new() -> Self {
        TestIo {
            now: Cell::new(T0),
            kv: RefCell::default(),
            routes: RefCell::default(),
            fetched: RefCell::default(),
            logs: RefCell::default(),
            counter: Cell::new(0),
        }
    }
    pub fn at(&self, t: u64) {
        self.now.set(t);
    }
    pub fn advance(&self, secs: u64) {
        self.now.set(self.now.get() + secs);
    }
    /// Answer requests whose URL starts with `prefix` (latest registration wins).
    pub fn route(
        &self,
        prefix: &str,
        h: impl Fn(&OutboundRequest) -> Result<OutboundResponse, FetchError> + 'static,
    ) {
        self.routes
            .borrow_mut()
            .insert(0, (prefix.to_string(), Box::new(h)));
    }
    pub fn fetch_count(&self, prefix: &str) -> usize {
        self.fetched
            .borrow()
            .iter()
            .filter(|r| r.url.starts_with(prefix))
            .count()
    }
    pub fn logged(&self, needle: &str) -> bool {
        self.logs.borrow().iter().any(|l| l.contains(needle))
    }
}

fn kv_ns(ns: KvNamespace) -> String {
    format!("{ns:?}")
}

impl Io for TestIo {
    async fn fetch(&self, req: OutboundRequest) -> Result<OutboundResponse, FetchError> {
        self.fetched.borrow_mut().push(req.clone());
        let routes = self.routes.borrow();
        let h = routes
            .iter()
            .find(|(p, _)| req.url.starts_with(p.as_str()))
            .map(|(_, h)| h)
            .unwrap_or_else(|| panic!("no test route for {}", req.url));
        h(&req)
    }
    async fn kv_get(&self, ns: KvNamespace, key: &str) -> Option<String> {
        self.kv.borrow().get(&(kv_ns(ns), key.to_string())).cloned()
    }
    async fn kv_put(&self, ns: KvNamespace, key: &str, value: &str, _ttl: u64) {
        self.kv
            .borrow_mut()
            .insert((kv_ns(ns), key.to_string()), value.to_string());
    }
    fn now(&self) -> UnixTime {
        UnixTime(self.now.get())
    }
    fn fill_random(&self, buf: &mut [u8]) {
        // Distinct per call, deterministic per test.
        let c = self.counter.get().wrapping_add(1);
        self.counter.set(c);
        for (i, b) in buf.iter_mut().enumerate() {
            *b = (i as u8).wrapping_mul(31).wrapping_add(c.wrapping_mul(7));
        }
    }
    fn log(&self, line: &str) {
        self.logs.borrow_mut().push(line.to_string());
    }
}

pub fn json_response(status: u16, v: serde_json::Value) -> Result<OutboundResponse, FetchError> {
    Ok(OutboundResponse {
        status,
        headers: Headers(vec![("content-type".into(), "application/json".into())]),
        body: v.to_string().into_bytes(),
    })
}

pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    futures_executor::block_on(f)
}

// ---------- configuration ----------

pub fn bindings(extra: &[(&str, &str)]) -> BTreeMap<String, String> {
    let mut m: BTreeMap<String, String> = [
        ("HUB_ORIGIN", HUB),
        ("SESSION_SECRET", SECRET),
        ("OAUTH_CLIENT_ID", "hubgate"),
        ("OAUTH_CLIENT_SECRET", "client-secret"),
        ("OIDC_ISSUER", ISSUER),
        ("OAUTH2_USERNAME_KEY", "preferred_username"),
        ("ALLOWED_USERS", "alice,bob"),
        ("ADMIN_USERS", "carol"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    for (k, v) in extra {
        if v.is_empty() {
            m.remove(*k);
        } else {
            m.insert(k.to_string(), v.to_string());
        }
    }
    m
}

pub fn app(extra: &[(&str, &str)]) -> App {
    App::from_bindings(&bindings(extra)).expect("test config parses")
}

// ---------- requests ----------

pub fn get(path_and_query: &str) -> IncomingRequest {
    request(Method::Get, path_and_query, &[])
}

pub fn request(method: Method, path_and_query: &str, headers: &[(&str, &str)]) -> IncomingRequest {
    IncomingRequest {
        method,
        url: url::Url::parse(&format!("{ORIGIN}{path_and_query}")).unwrap(),
        headers: Headers(
            headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        ),
        body: None,
    }
}

pub fn with_cookies(mut req: IncomingRequest, resp: &Response) -> IncomingRequest {
    let pairs: Vec<String> = resp
        .headers
        .get_all("set-cookie")
        .filter(|c| !c.contains("Max-Age=0"))
        .map(|c| c.split(';').next().unwrap().to_string())
        .collect();
    if !pairs.is_empty() {
        req.headers.push("Cookie", pairs.join("; "));
    }
    req
}

pub fn respond(app: &App, req: IncomingRequest, io: &TestIo) -> Response {
    match block_on(app::handle(app, req, io)) {
        Outcome::Respond(r) => r,
        Outcome::Proxy(p) => panic!("expected a response, got a proxy to {}", p.url),
        Outcome::Logout { .. } => panic!("expected a response, got logout"),
    }
}

pub fn proxied(app: &App, req: IncomingRequest, io: &TestIo) -> hubgate::proxy::ProxyPlan {
    match block_on(app::handle(app, req, io)) {
        Outcome::Proxy(p) => p,
        Outcome::Respond(r) => panic!(
            "expected a proxy, got status {} {}",
            r.status,
            String::from_utf8_lossy(&r.body)
        ),
        Outcome::Logout { .. } => panic!("expected a proxy, got logout"),
    }
}

pub fn query(location: &str, name: &str) -> Option<String> {
    let u = url::Url::parse(location)
        .or_else(|_| url::Url::parse(&format!("{ORIGIN}{location}")))
        .ok()?;
    u.query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

// ---------- a fake OpenID provider ----------

pub struct Provider {
    pub key: p256::ecdsa::SigningKey,
    pub kid: String,
    pub claims: RefCell<serde_json::Value>,
}

impl Provider {
    pub fn new(kid: &str) -> Self {
        Provider {
            key: p256::ecdsa::SigningKey::random(&mut rand::rngs::OsRng),
            kid: kid.into(),
            claims: RefCell::new(serde_json::json!({})),
        }
    }
    pub fn jwk(&self) -> serde_json::Value {
        let vk = *self.key.verifying_key();
        let mut v = serde_json::to_value(JsonWebKey::from(&vk)).unwrap();
        v["kid"] = self.kid.clone().into();
        v["use"] = "sig".into();
        v["alg"] = "ES256".into();
        v
    }
    pub fn sign(&self, claims: serde_json::Value, iat: u64, exp: u64) -> String {
        let mut c = Claims::new(claims);
        c.issued_at = Some(hubgate::signing::to_datetime(UnixTime(iat)));
        c.expiration = Some(hubgate::signing::to_datetime(UnixTime(exp)));
        Es256
            .token(
                &Header::empty().with_key_id(self.kid.clone()),
                &c,
                &self.key,
            )
            .unwrap()
    }
}

/// Routes for discovery, JWKS (the given providers' keys), token and userinfo.
/// The id_token is built per request by `id_token(nonce)`.
pub fn serve_idp(
    io: &TestIo,
    keys: Vec<serde_json::Value>,
    id_token: impl Fn(&str) -> String + 'static,
) {
    io.route(
        &format!("{ISSUER}/.well-known/openid-configuration"),
        |_| {
            json_response(
                200,
                serde_json::json!({
                    "issuer": ISSUER,
                    "authorization_endpoint": format!("{ISSUER}/auth"),
                    "token_endpoint": format!("{ISSUER}/token"),
                    "userinfo_endpoint": format!("{ISSUER}/me"),
                    "jwks_uri": format!("{ISSUER}/jwks"),
                    "id_token_signing_alg_values_supported": ["RS256", "ES256", "EdDSA"],
                }),
            )
        },
    );
    let jwks = serde_json::json!({ "keys": keys });
    io.route(&format!("{ISSUER}/jwks"), move |_| {
        json_response(200, jwks.clone())
    });
    // The nonce the worker sent is in the authorize redirect; tests pass it
    // through `NONCE` in the code value: code = "code:<nonce>".
    io.route(&format!("{ISSUER}/token"), move |req| {
        let body = String::from_utf8(req.body.clone().unwrap_or_default()).unwrap();
        let code = url::form_urlencoded::parse(body.as_bytes())
            .find(|(k, _)| k == "code")
            .map(|(_, v)| v.into_owned())
            .unwrap();
        let nonce = code.strip_prefix("code:").unwrap_or("");
        json_response(200, serde_json::json!({"access_token": "at", "token_type": "Bearer", "id_token": id_token(nonce)}))
    });
    io.route(&format!("{ISSUER}/me"), |_| {
        json_response(
            200,
            serde_json::json!({"sub": "u-1", "groups": ["students"]}),
        )
    });
}

pub fn standard_claims(nonce: &str, username: &str) -> serde_json::Value {
    serde_json::json!({
        "iss": ISSUER, "aud": "hubgate", "sub": "u-1", "nonce": nonce,
        "preferred_username": username, "email": format!("{username}@example.edu"),
    })
}

/// Start a login; return (response of the callback, flow cookie response).
pub fn login_round_trip(
    app: &App,
    io: &TestIo,
    next: &str,
    tweak_callback: impl FnOnce(String) -> String,
) -> Response {
    let start = respond(
        app,
        get(&format!("/hub/oauth_login?next={}", urlenc(next))),
        io,
    );
    assert_eq!(
        start.status,
        302,
        "{}",
        String::from_utf8_lossy(&start.body)
    );
    let loc = start.location().unwrap().to_string();
    let state = query(&loc, "state").unwrap();
    let nonce = query(&loc, "nonce").unwrap_or_default();
    let cb = tweak_callback(format!(
        "/hub/oauth_callback?code={}&state={}",
        urlenc(&format!("code:{nonce}")),
        urlenc(&state)
    ));
    respond(app, with_cookies(get(&cb), &start), io)
}

pub fn urlenc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}
