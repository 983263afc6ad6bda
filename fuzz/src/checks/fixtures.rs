//! What the targets share: the fixed clock, origins and secrets, the keys
//! in `keys.rs`, genuine tokens signed with them, the request target's
//! configurations, and a scripted `Io` that answers every fetch with
//! fuzzer bytes.

use super::keys;
use hubgate::app::{self, App, Outcome};
use hubgate::http::{
    FetchError, Headers, IncomingRequest, Method, OutboundRequest, OutboundResponse, UnixTime,
};
use hubgate::identity::{Identity, LoginMethod};
use hubgate::jose::keys::{parse_key_set, KeySet};
use hubgate::ports::{Io, KvNamespace, StoreUnavailable, Use};
use hubgate::secret::SessionSecret;
use hubgate::session::SessionSettings;
use jwt_compact::{
    alg::{Ed25519, Es256, Rsa, RsaPrivateKey},
    jwk::JsonWebKey,
    Algorithm, AlgorithmExt, Claims, Header,
};
use serde_json::{json, Value};
use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::OnceLock;

pub const T0: u64 = 1_760_000_000;
pub const ORIGIN: &str = "https://hub.example";
pub const LOOPBACK_ORIGIN: &str = "http://127.0.0.1:8787";
pub const HUB: &str = "https://origin.hub.example:8443";
pub const ISSUER: &str = "https://idp.example";
pub const LMS: &str = "https://lms.example";
pub const CLIENT_ID: &str = "hubgate";
pub const LTI_CLIENT: &str = "client-1";
pub const DEPLOYMENT: &str = "dep-1";
pub const SECRET: &str = "fuzz-session-secret-0123456789abcdef-current";
pub const PREVIOUS: &str = "fuzz-session-secret-0123456789abcdef-previous";
pub const CLIENT_SECRET: &str = "fuzz-client-secret-never-in-a-response";
pub const LTI_CLAIM: &str = "https://purl.imsglobal.org/spec/lti/claim/";
pub const DL_CLAIM: &str = "https://purl.imsglobal.org/spec/lti-dl/claim/";

pub fn session_settings() -> SessionSettings {
    SessionSettings {
        secret: SessionSecret::new(SECRET),
        previous: Some(SessionSecret::new(PREVIOUS)),
        max_age: 3600,
        recheck: 30,
    }
}

/// Settings that mint with the previous secret (a cookie from before a rotation).
pub fn previous_settings() -> SessionSettings {
    SessionSettings {
        secret: SessionSecret::new(PREVIOUS),
        previous: None,
        max_age: 3600,
        recheck: 30,
    }
}

pub fn identity(username: &str, method: LoginMethod) -> Identity {
    Identity {
        username: username.into(),
        email: Some(format!("{username}@example.edu")),
        groups: vec!["students".into()],
        admin: false,
        method,
        auth_state: Default::default(),
    }
}

/// `name=value` of a `Set-Cookie` value.
pub fn cookie_pair(set_cookie: &str) -> (String, String) {
    let pair = set_cookie.split(';').next().unwrap_or_default();
    let (n, v) = pair.split_once('=').unwrap_or((pair, ""));
    (n.to_string(), v.to_string())
}

/// The signed part of a compact JWS (everything before the last `.`).
pub fn signed_part(token: &str) -> &str {
    token.rsplit_once('.').map_or(token, |(s, _)| s)
}

// ---------- keys and genuine tokens ----------

fn jwk(text: &str) -> JsonWebKey<'static> {
    serde_json::from_str(text).expect("fixture JWK")
}

/// The public half of a fixture JWK, with its kid, alg and use.
pub fn public_jwk(private: &str) -> Value {
    let mut v: Value = serde_json::from_str(private).expect("fixture JWK");
    if let Value::Object(m) = &mut v {
        for k in ["d", "p", "q", "dp", "dq", "qi"] {
            m.remove(k);
        }
    }
    v
}

pub fn key_set_json(private: &[&str]) -> String {
    json!({ "keys": private.iter().map(|k| public_jwk(k)).collect::<Vec<_>>() }).to_string()
}

/// The key set the `jwt` target verifies against: an RSA, a P-256 and an
/// Ed25519 key, each with kid and alg.
pub fn fixed_key_set() -> &'static KeySet {
    static SET: OnceLock<KeySet> = OnceLock::new();
    SET.get_or_init(|| {
        let set = parse_key_set(&key_set_json(&[keys::RSA_JWK, keys::EC_JWK, keys::ED_JWK]))
            .expect("fixture key set");
        // Without the `eddsa` feature the Ed25519 key is skipped, not an error.
        let expected = if cfg!(feature = "eddsa") {
            (3, 0)
        } else {
            (2, 1)
        };
        assert_eq!(
            (set.keys.len(), set.skipped),
            expected,
            "fixture keys parse"
        );
        set
    })
}

fn claims_at(claims: Value, iat: u64, exp: u64) -> Claims<Value> {
    let mut c = Claims::new(claims);
    c.issued_at = Some(UnixTime(iat).to_datetime());
    c.expiration = Some(UnixTime(exp).to_datetime());
    c
}

fn header(kid: Option<&str>) -> Header {
    match kid {
        Some(k) => Header::empty().with_key_id(k),
        None => Header::empty(),
    }
}

pub fn sign_rs256(claims: Value, kid: Option<&str>) -> String {
    let key = RsaPrivateKey::try_from(&jwk(keys::RSA_JWK)).expect("fixture RSA key");
    Rsa::rs256()
        .token(&header(kid), &claims_at(claims, T0, T0 + 300), &key)
        .expect("sign")
}

pub fn sign_es256(claims: Value, kid: Option<&str>) -> String {
    let key =
        <Es256 as Algorithm>::SigningKey::try_from(&jwk(keys::EC_JWK)).expect("fixture EC key");
    Es256
        .token(&header(kid), &claims_at(claims, T0, T0 + 300), &key)
        .expect("sign")
}

pub fn sign_eddsa(claims: Value, kid: Option<&str>) -> String {
    let key = <Ed25519 as Algorithm>::SigningKey::try_from(&jwk(keys::ED_JWK))
        .expect("fixture Ed25519 key");
    Ed25519
        .token(&header(kid), &claims_at(claims, T0, T0 + 300), &key)
        .expect("sign")
}

pub fn genuine_claims() -> Value {
    json!({"iss": ISSUER, "aud": CLIENT_ID, "sub": "genuine-user", "nonce": "n-0"})
}

/// Tokens signed by the fixed key set's keys: the only ones that may verify.
pub fn genuine_jwts() -> &'static [String] {
    static T: OnceLock<Vec<String>> = OnceLock::new();
    T.get_or_init(|| {
        vec![
            sign_rs256(genuine_claims(), Some("rsa-1")),
            sign_es256(genuine_claims(), Some("ec-1")),
            #[cfg(feature = "eddsa")]
            sign_eddsa(genuine_claims(), Some("ed-1")),
            // Without a kid: the one P-256 key is unambiguous.
            sign_es256(genuine_claims(), None),
        ]
    })
}

// ---------- the request target's worlds ----------

/// One configuration of the worker the `request` target drives, with the
/// genuine credentials its placeholders stand for.
pub struct World {
    pub bindings: BTreeMap<String, String>,
    pub origin: &'static str,
    pub placeholders: Vec<(&'static str, String)>,
}

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

pub fn discovery_doc() -> String {
    json!({
        "issuer": ISSUER,
        "authorization_endpoint": format!("{ISSUER}/auth"),
        "token_endpoint": format!("{ISSUER}/token"),
        "userinfo_endpoint": format!("{ISSUER}/me"),
        "jwks_uri": format!("{ISSUER}/jwks"),
        "id_token_signing_alg_values_supported": ["RS256", "ES256", "EdDSA"],
    })
    .to_string()
}

fn platforms_json() -> String {
    json!([
        {"issuer": LMS, "client_id": LTI_CLIENT, "authorize_url": format!("{LMS}/auth"),
         "jwks_endpoint": format!("{LMS}/jwks"), "deployment_ids": [DEPLOYMENT]},
        {"name": "canvas", "issuer": "https://canvas.example", "client_id": ["c-1", "c-2"],
         "authorize_url": "https://canvas.example/auth", "jwks_endpoint": "https://canvas.example/jwks"}
    ])
    .to_string()
}

fn world_bindings(i: usize) -> (BTreeMap<String, String>, &'static str) {
    let common = [
        ("SESSION_SECRET", SECRET),
        ("SESSION_SECRET_PREVIOUS", PREVIOUS),
        ("ONE_TIME", "(durable object)"),
        ("NONCES", "(kv)"),
        ("JWKS_CACHE", "(kv)"),
    ];
    let mut m = map(&common);
    let extra: Vec<(&str, String)> = match i {
        // OpenID Connect with discovery, the signed assertion, an allow list.
        0 => vec![
            ("HUB_ORIGIN", HUB.into()),
            ("OAUTH_CLIENT_ID", CLIENT_ID.into()),
            ("OAUTH_CLIENT_SECRET", CLIENT_SECRET.into()),
            ("OIDC_ISSUER", ISSUER.into()),
            ("OAUTH2_USERNAME_KEY", "preferred_username".into()),
            ("ALLOWED_USERS", "alice,bob".into()),
            ("ADMIN_USERS", "carol".into()),
            ("BLOCKED_USERS", "mallory".into()),
            ("ASSERTION_SIGNING_KEY", keys::ASSERTION_JWK.into()),
            ("ASSERTION_AUTH_STATE_CLAIMS", "email,groups".into()),
        ],
        // Plain OAuth 2.0 under a base path, header-only hub login, auto login.
        1 => vec![
            ("HUB_ORIGIN", ORIGIN.into()),
            ("BASE_URL", "/jh/".into()),
            ("OAUTH_CLIENT_ID", CLIENT_ID.into()),
            ("OAUTH_CLIENT_SECRET", CLIENT_SECRET.into()),
            ("OAUTH2_AUTHORIZE_URL", format!("{ISSUER}/auth")),
            ("OAUTH2_TOKEN_URL", format!("{ISSUER}/token")),
            ("OAUTH2_USERDATA_URL", format!("{ISSUER}/me")),
            ("OAUTH_LOGOUT_REDIRECT_URL", format!("{ISSUER}/logout")),
            ("OAUTH_BASIC_AUTH", "false".into()),
            ("ALLOW_ALL", "true".into()),
            ("AUTO_LOGIN", "true".into()),
            ("GROUPS_CLAIM", "realm.groups".into()),
            ("ADMIN_GROUPS", "admins".into()),
            ("HEADER_USER", "Remote-User".into()),
        ],
        // LTI 1.3 only, with the tool key (deep linking).
        2 => vec![
            ("HUB_ORIGIN", HUB.into()),
            ("LTI13_ISSUER", LMS.into()),
            ("LTI13_CLIENT_ID", LTI_CLIENT.into()),
            ("LTI13_AUTHORIZE_URL", format!("{LMS}/auth")),
            ("LTI13_JWKS_ENDPOINT", format!("{LMS}/jwks")),
            ("LTI13_DEPLOYMENT_IDS", DEPLOYMENT.into()),
            ("LTI13_PRIVATE_KEY", keys::TOOL_PEM.into()),
            ("ASSERTION_SIGNING_KEY", keys::ASSERTION_JWK.into()),
        ],
        // Both methods on loopback http, KV one-time store, two platforms.
        _ => vec![
            ("HUB_ORIGIN", "http://127.0.0.1:8000".into()),
            ("ONE_TIME_STORE", "kv".into()),
            ("OAUTH_CLIENT_ID", CLIENT_ID.into()),
            ("OAUTH_CLIENT_SECRET", CLIENT_SECRET.into()),
            ("OIDC_ISSUER", ISSUER.into()),
            ("ALLOWED_GROUPS", "students".into()),
            ("USERNAME_MAP", r#"{"u-1":"alice"}"#.into()),
            ("LTI13_PLATFORMS", platforms_json()),
            ("LTI13_USERNAME_KEY", "custom_uname".into()),
            ("PASS_AUTHORIZATION", "false".into()),
        ],
    };
    for (k, v) in extra {
        m.insert(k.to_string(), v);
    }
    if i >= 3 {
        m.remove("ONE_TIME");
    }
    (m, if i >= 3 { LOOPBACK_ORIGIN } else { ORIGIN })
}

pub const WORLDS: usize = 4;

pub fn world(i: usize) -> &'static World {
    static W: OnceLock<Vec<World>> = OnceLock::new();
    &W.get_or_init(|| (0..WORLDS).map(build_world).collect())[i % WORLDS]
}

fn build_world(i: usize) -> World {
    let (bindings, origin) = world_bindings(i);
    let app = App::from_bindings(&bindings).expect("fixture world parses");
    let https = origin.starts_with("https:");
    let base = app.config.base_path.clone();
    let mut ph: Vec<(&'static str, String)> = vec![
        ("{discovery}", discovery_doc()),
        ("{jwks}", key_set_json(&[keys::EC_JWK, keys::RSA_JWK])),
    ];
    let session_name = hubgate::session::cookie::cookie_name(https);
    let mint_session = |user: &str, method| {
        let set = hubgate::session::cookie::mint(
            &app.config.session,
            &identity(user, method),
            &format!("sid-{user}"),
            None,
            origin,
            https,
            hubgate::cookies::Context::TopLevel,
            UnixTime(T0),
        );
        cookie_pair(&set).1
    };
    let alice = mint_session("alice", LoginMethod::Oauth);
    let lti_user = mint_session("alice@example.edu", LoginMethod::Lti);
    ph.push(("{session-cookie}", format!("{session_name}={alice}")));
    ph.push(("{lti-session-cookie}", format!("{session_name}={lti_user}")));
    ph.push(("{session}", alice));

    if app.config.oauth.is_some() {
        let io = FuzzIo::new(vec![ok(200, &discovery_doc())], false);
        let start = run(
            &app,
            request(
                Method::Get,
                &format!("{origin}{base}hub/oauth_login?next={base}hub/home"),
                &[],
                None,
            ),
            &io,
        );
        let (cookie, state, nonce) = flow_of(&start);
        let claims = json!({
            "iss": ISSUER, "aud": CLIENT_ID, "sub": "u-1", "nonce": nonce,
            "preferred_username": "alice", "email": "alice@example.edu",
            "groups": ["students"], "realm": {"groups": ["admins"]},
        });
        ph.push(("{id_token}", sign_es256(claims, Some("ec-1"))));
        ph.push(("{oauth-cookie}", cookie));
        ph.push(("{oauth-state}", state));
    }
    if app.config.lti.is_some() {
        let io = FuzzIo::new(Vec::new(), false);
        let target = format!("{origin}{base}hub/user-redirect/lab");
        let q = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("iss", LMS)
            .append_pair("login_hint", "user-1")
            .append_pair("target_link_uri", &target)
            .append_pair("client_id", LTI_CLIENT)
            .finish();
        let start = run(
            &app,
            request(
                Method::Get,
                &format!("{origin}{base}hub/lti13/oauth_login?{q}"),
                &[],
                None,
            ),
            &io,
        );
        let (cookie, state, nonce) = flow_of(&start);
        let launch = |message: &str| {
            let mut c = json!({
                "iss": LMS, "aud": LTI_CLIENT, "sub": "user-1", "nonce": nonce,
                "email": "alice@example.edu", "name": "Alice",
                format!("{LTI_CLAIM}message_type"): message,
                format!("{LTI_CLAIM}version"): "1.3.0",
                format!("{LTI_CLAIM}deployment_id"): DEPLOYMENT,
                format!("{LTI_CLAIM}target_link_uri"): target,
                format!("{LTI_CLAIM}resource_link"): {"id": "rl-1"},
                format!("{LTI_CLAIM}roles"): ["http://purl.imsglobal.org/vocab/lis/v2/membership#Instructor"],
                format!("{LTI_CLAIM}context"): {"id": "course-42", "label": "DS101"},
                format!("{LTI_CLAIM}custom"): {"uname": "alice_c"},
            });
            if message == "LtiDeepLinkingRequest" {
                c[format!("{DL_CLAIM}deep_linking_settings")] = json!({
                    "deep_link_return_url": format!("{LMS}/dl/return"),
                    "accept_types": ["ltiResourceLink"],
                });
            }
            sign_rs256(c, Some("rsa-1"))
        };
        ph.push(("{lti_id_token}", launch("LtiResourceLinkRequest")));
        ph.push(("{lti_dl_token}", launch("LtiDeepLinkingRequest")));
        ph.push(("{lti-cookie}", cookie));
        ph.push(("{lti-state}", state));
    }
    World {
        bindings,
        origin,
        placeholders: ph,
    }
}

/// The flow cookie (`name=value`), state and nonce a login start answered with.
fn flow_of(r: &hubgate::http::Response) -> (String, String, String) {
    assert_eq!(r.status, 302, "fixture login start redirects");
    let loc = url::Url::parse(r.location().expect("location")).expect("absolute");
    let q = |n: &str| {
        loc.query_pairs()
            .find(|(k, _)| k == n)
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default()
    };
    let set = r
        .headers
        .get_all("set-cookie")
        .find(|c| c.contains("hubgate-") && !c.contains("Max-Age=0"))
        .expect("flow cookie");
    let (n, v) = cookie_pair(set);
    (format!("{n}={v}"), q("state"), q("nonce"))
}

/// Expand every placeholder of `world` in `data`.
pub fn expand(world: &World, data: &[u8]) -> Vec<u8> {
    let mut out = data.to_vec();
    if !out.contains(&b'{') {
        return out;
    }
    for (name, value) in &world.placeholders {
        out = super::input::replace_bytes(&out, name.as_bytes(), value.as_bytes());
    }
    out
}

pub fn request(
    method: Method,
    url: &str,
    headers: &[(&str, &str)],
    body: Option<Vec<u8>>,
) -> IncomingRequest {
    IncomingRequest {
        method,
        url: url::Url::parse(url).expect("fixture URL"),
        headers: Headers(
            headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        ),
        body,
    }
}

pub fn run(app: &App, req: IncomingRequest, io: &FuzzIo) -> hubgate::http::Response {
    match futures_executor::block_on(app::handle(app, req, io)) {
        Outcome::Respond(r) => r,
        Outcome::Proxy(p) => panic!("fixture request was proxied to {}", p.url),
    }
}

// ---------- the scripted Io ----------

pub type Answer = Result<OutboundResponse, FetchError>;

pub fn ok(status: u16, body: &str) -> Answer {
    Ok(OutboundResponse {
        status,
        headers: Headers(vec![("content-type".into(), "application/json".into())]),
        body: body.as_bytes().to_vec(),
    })
}

/// Answers `fetch` and `fetch_hub` alike from one queue of scripted
/// answers (a network error once it is empty); KV and the one-time store
/// in memory; a fixed clock; counting randomness.
pub struct FuzzIo {
    pub answers: RefCell<VecDeque<Answer>>,
    pub fetched: RefCell<Vec<OutboundRequest>>,
    pub hub_calls: RefCell<Vec<OutboundRequest>>,
    pub logs: RefCell<Vec<String>>,
    pub kv: RefCell<HashMap<String, String>>,
    pub used: RefCell<HashSet<String>>,
    pub store_down: bool,
    counter: Cell<u32>,
}

impl FuzzIo {
    pub fn new(answers: Vec<Answer>, store_down: bool) -> Self {
        FuzzIo {
            answers: RefCell::new(answers.into()),
            fetched: RefCell::default(),
            hub_calls: RefCell::default(),
            logs: RefCell::default(),
            kv: RefCell::default(),
            used: RefCell::default(),
            store_down,
            counter: Cell::new(0),
        }
    }

    fn answer(&self, req: &OutboundRequest) -> Answer {
        let a = self
            .answers
            .borrow_mut()
            .pop_front()
            .unwrap_or_else(|| Err(FetchError::Network("no scripted answer left".into())));
        // The edge enforces the size cap before the core sees a body.
        match a {
            Ok(r) if r.body.len() > req.max_body_bytes => {
                Err(FetchError::TooLarge(req.max_body_bytes))
            }
            other => other,
        }
    }
}

impl Io for FuzzIo {
    async fn fetch(&self, req: OutboundRequest) -> Result<OutboundResponse, FetchError> {
        let a = self.answer(&req);
        self.fetched.borrow_mut().push(req);
        a
    }
    async fn fetch_hub(&self, req: OutboundRequest) -> Result<OutboundResponse, FetchError> {
        let a = self.answer(&req);
        self.hub_calls.borrow_mut().push(req);
        a
    }
    async fn kv_get(&self, ns: KvNamespace, key: &str) -> Option<String> {
        self.kv.borrow().get(&format!("{ns:?}:{key}")).cloned()
    }
    async fn kv_put(&self, ns: KvNamespace, key: &str, value: &str, _ttl: u64) {
        self.kv
            .borrow_mut()
            .insert(format!("{ns:?}:{key}"), value.to_string());
    }
    async fn use_once(&self, key: &str, _ttl: u64) -> Result<Use, StoreUnavailable> {
        if self.store_down {
            return Err(StoreUnavailable("fuzz store is down".into()));
        }
        Ok(if self.used.borrow_mut().insert(key.to_string()) {
            Use::First
        } else {
            Use::Replay
        })
    }
    fn now(&self) -> UnixTime {
        UnixTime(T0)
    }
    fn fill_random(&self, buf: &mut [u8]) {
        let c = self.counter.get().wrapping_add(1);
        self.counter.set(c);
        for (i, b) in buf.iter_mut().enumerate() {
            *b = (i as u8)
                .wrapping_mul(31)
                .wrapping_add((c as u8).wrapping_mul(7));
        }
    }
    fn log(&self, line: &str) {
        self.logs.borrow_mut().push(line.to_string());
    }
}
