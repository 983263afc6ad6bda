//! Shared helpers for the native integration tests: a scripted `Io` (fixed
//! clock, counting fetches, in-memory KV, deterministic randomness), a fake
//! OpenID provider that signs with keys made here, and request builders.
#![allow(dead_code)]

use hubgate::app::{self, App, Outcome};
use hubgate::http::{
    FetchError, Headers, IncomingRequest, Method, OutboundRequest, OutboundResponse, Response,
    UnixTime,
};
use hubgate::ports::{Io, KvNamespace, StoreUnavailable, Use};
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
    /// Requests the worker sent to the hub itself (login, logout).
    pub hub_calls: RefCell<Vec<OutboundRequest>>,
    /// Keys the one-time store has seen.
    pub used_once: RefCell<std::collections::HashSet<String>>,
    /// Make the one-time store fail.
    pub one_time_down: Cell<bool>,
    /// The status the fake hub answers its login with (302 by default).
    pub hub_login_status: Cell<u16>,
    /// API tokens the fake hub knows: `/hub/api/user` answers their owner.
    pub hub_tokens: RefCell<HashMap<String, serde_json::Value>>,
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
            hub_calls: RefCell::default(),
            used_once: RefCell::default(),
            one_time_down: Cell::new(false),
            hub_login_status: Cell::new(302),
            hub_tokens: RefCell::default(),
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
    /// A fake hub: `/hub/login` answers with a redirect to `next` and three
    /// cookies (as JupyterHub does), `/hub/logout` clears them.
    async fn fetch_hub(&self, req: OutboundRequest) -> Result<OutboundResponse, FetchError> {
        self.hub_calls.borrow_mut().push(req.clone());
        let url = url::Url::parse(&req.url).unwrap();
        let mut headers = Headers::new();
        if url.path().ends_with("hub/api/user") {
            let token = req
                .headers
                .get("authorization")
                .and_then(|a| a.strip_prefix("token "))
                .unwrap_or_default();
            return Ok(match self.hub_tokens.borrow().get(token) {
                Some(owner) => OutboundResponse {
                    status: 200,
                    headers,
                    body: owner.to_string().into_bytes(),
                },
                None => OutboundResponse {
                    status: 403,
                    headers,
                    body: br#"{"status":403,"message":"Forbidden"}"#.to_vec(),
                },
            });
        }
        if url.path().ends_with("hub/login") {
            let status = self.hub_login_status.get();
            let next = url
                .query_pairs()
                .find(|(k, _)| k == "next")
                .map(|(_, v)| v.into_owned())
                .unwrap_or_else(|| "/hub/".into());
            headers.push("Location", next);
            headers.push(
                "set-cookie",
                "jupyterhub-hub-login=new; HttpOnly; Path=/hub/",
            );
            headers.push("set-cookie", "jupyterhub-session-id=s; HttpOnly; Path=/");
            headers.push("set-cookie", "_xsrf=x; Path=/hub/");
            return Ok(OutboundResponse {
                status,
                headers,
                body: Vec::new(),
            });
        }
        headers.push("Location", "/hub/login");
        headers.push("set-cookie", "jupyterhub-hub-login=; Max-Age=0; Path=/hub/");
        Ok(OutboundResponse {
            status: 302,
            headers,
            body: Vec::new(),
        })
    }
    async fn use_once(&self, key: &str, _ttl: u64) -> Result<Use, StoreUnavailable> {
        if self.one_time_down.get() {
            return Err(StoreUnavailable("test store is down".into()));
        }
        Ok(if self.used_once.borrow_mut().insert(key.to_string()) {
            Use::First
        } else {
            Use::Replay
        })
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
        // Declared bindings (a map of strings stands for them by name).
        ("ONE_TIME", "(durable object)"),
        ("NONCES", "(kv)"),
        ("JWKS_CACHE", "(kv)"),
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
        c.issued_at = Some(hubgate::jose::hs256::to_datetime(UnixTime(iat)));
        c.expiration = Some(hubgate::jose::hs256::to_datetime(UnixTime(exp)));
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

/// The worker's last login at the hub: where identity reaches the hub.
pub fn last_hub_login(io: &TestIo) -> OutboundRequest {
    io.hub_calls
        .borrow()
        .iter()
        .rev()
        .find(|c| c.url.contains("/hub/login"))
        .cloned()
        .expect("the worker logged in at the hub")
}

/// The session cookie a response set (not the deletion of another variant).
pub fn session_set_cookie(resp: &Response) -> Option<&str> {
    resp.headers
        .get_all("set-cookie")
        .find(|c| c.starts_with("__Host-hubgate=") && !c.contains("Max-Age=0"))
}

/// An IdP (discovery, keys, token, userinfo) that logs `user` in.
pub fn good_idp_for(io: &TestIo, user: &'static str) -> std::rc::Rc<Provider> {
    let p = std::rc::Rc::new(Provider::new("k1"));
    let signer = p.clone();
    serve_idp(io, vec![p.jwk()], move |nonce| {
        signer.sign(standard_claims(nonce, user), T0, T0 + 300)
    });
    p
}
