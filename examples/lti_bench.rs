//! CPU figures for the LTI launch, natively. Run by `npm run bench`.
//! Prints numbers; asserts nothing about time.
//!
//! - `UntrustedLaunch::verify`: RS256 signature + every IMS/LTI claim check.
//! - the whole launch route through `app::handle` (flow cookie, JWKS from the
//!   warm isolate cache, the one-time nonce, username, session cookie, the
//!   hub login subrequest answered at once).

use hubgate::app::{self, App, Outcome};
use hubgate::http::{
    FetchError, Headers, IncomingRequest, Method, OutboundRequest, OutboundResponse, Response,
    UnixTime,
};
use hubgate::jose::keys::parse_key_set;
use hubgate::lti::launch::{Expectations, UntrustedLaunch};
use hubgate::lti::registration::Registration;
use hubgate::ports::{Io, KvNamespace, StoreUnavailable, Use};
use jwt_compact::{
    alg::{Rsa, RsaPrivateKey, RsaPublicKey},
    jwk::JsonWebKey,
    AlgorithmExt, Claims, Header,
};
use serde_json::{json, Value};
use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

const T0: u64 = 1_760_000_000;
const LMS: &str = "https://lms.example.edu";
const C: &str = "https://purl.imsglobal.org/spec/lti/claim/";

struct BenchIo {
    jwks: String,
    kv: RefCell<HashMap<String, String>>,
    fetches: Cell<u32>,
    rnd: Cell<u64>,
}

impl Io for BenchIo {
    async fn fetch(&self, _req: OutboundRequest) -> Result<OutboundResponse, FetchError> {
        self.fetches.set(self.fetches.get() + 1);
        Ok(OutboundResponse {
            status: 200,
            headers: Headers(vec![("cache-control".into(), "max-age=3600".into())]),
            body: self.jwks.clone().into_bytes(),
        })
    }
    async fn fetch_hub(&self, _req: OutboundRequest) -> Result<OutboundResponse, FetchError> {
        Ok(OutboundResponse {
            status: 302,
            headers: Headers(vec![(
                "set-cookie".into(),
                "jupyterhub-hub-login=x; Path=/hub/".into(),
            )]),
            body: Vec::new(),
        })
    }
    async fn use_once(&self, key: &str, _ttl: u64) -> Result<Use, StoreUnavailable> {
        let first = self
            .kv
            .borrow_mut()
            .insert(key.into(), "1".into())
            .is_none();
        Ok(if first { Use::First } else { Use::Replay })
    }
    async fn kv_get(&self, _ns: KvNamespace, key: &str) -> Option<String> {
        self.kv.borrow().get(key).cloned()
    }
    async fn kv_put(&self, _ns: KvNamespace, key: &str, value: &str, _ttl: u64) {
        self.kv.borrow_mut().insert(key.into(), value.into());
    }
    fn now(&self) -> UnixTime {
        UnixTime(T0)
    }
    fn fill_random(&self, buf: &mut [u8]) {
        let mut x = self.rnd.get();
        for b in buf.iter_mut() {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            *b = (x >> 56) as u8;
        }
        self.rnd.set(x);
    }
    fn log(&self, _line: &str) {}
}

fn claims(nonce: &str) -> Value {
    json!({
        "iss": LMS, "aud": "client-1", "sub": "user-1", "nonce": nonce, "email": "alice@example.edu",
        format!("{C}message_type"): "LtiResourceLinkRequest",
        format!("{C}version"): "1.3.0",
        format!("{C}deployment_id"): "dep-1",
        format!("{C}target_link_uri"): "https://hub.example.edu/hub/",
        format!("{C}resource_link"): {"id": "rl-1"},
        format!("{C}roles"): ["http://purl.imsglobal.org/vocab/lis/v2/membership#Learner"],
        format!("{C}context"): {"id": "course-1", "label": "C1"},
    })
}

fn sign(key: &RsaPrivateKey, nonce: &str) -> String {
    let mut c = Claims::new(claims(nonce));
    c.issued_at = Some(hubgate::jose::hs256::to_datetime(UnixTime(T0)));
    c.expiration = Some(hubgate::jose::hs256::to_datetime(UnixTime(T0 + 300)));
    Rsa::rs256()
        .token(&Header::empty().with_key_id("k1"), &c, key)
        .unwrap()
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    futures_executor::block_on(f)
}

fn respond(app: &App, req: IncomingRequest, io: &BenchIo) -> Response {
    match block_on(app::handle(app, req, io)) {
        Outcome::Respond(r) => r,
        _ => panic!("expected a response"),
    }
}

fn query(loc: &str, name: &str) -> String {
    url::Url::parse(loc)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == name)
        .unwrap()
        .1
        .into_owned()
}

fn main() {
    let key = RsaPrivateKey::new(&mut rand::rngs::OsRng, 2048).unwrap();
    let mut jwk = serde_json::to_value(JsonWebKey::from(&RsaPublicKey::from(&key))).unwrap();
    jwk["kid"] = "k1".into();
    jwk["alg"] = "RS256".into();
    let jwks = json!({ "keys": [jwk] }).to_string();
    let keys = parse_key_set(&jwks).unwrap();

    let env: BTreeMap<String, String> = [
        ("HUB_ORIGIN", "https://origin.example.edu"),
        ("SESSION_SECRET", "0123456789abcdef0123456789abcdef-bench"),
        ("LTI13_ISSUER", LMS),
        ("LTI13_CLIENT_ID", "client-1"),
        ("LTI13_AUTHORIZE_URL", "https://lms.example.edu/auth"),
        ("LTI13_JWKS_ENDPOINT", "https://lms.example.edu/jwks"),
        ("LTI13_DEPLOYMENT_IDS", "dep-1"),
        ("ONE_TIME", "(durable object)"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let app = App::from_bindings(&env).expect("bench config");
    let lti = app.config.lti.as_ref().unwrap();
    let reg = Registration {
        platform: &lti.platforms[0],
        client_id: "client-1",
    };

    // 1. verify alone (tokens signed beforehand; signing is the platform's cost).
    let n = 500;
    let tokens: Vec<(String, String)> = (0..n)
        .map(|i| {
            let nonce = format!("nonce-{i}");
            (sign(&key, &nonce), nonce)
        })
        .collect();
    let start = Instant::now();
    for (t, nonce) in &tokens {
        UntrustedLaunch(t)
            .verify(
                &keys,
                &Expectations {
                    registration: reg,
                    nonce,
                    now: UnixTime(T0 + 1),
                    leeway: 0,
                },
            )
            .unwrap();
    }
    let us = start.elapsed().as_secs_f64() * 1e6 / n as f64;
    println!(
        "{:<44} {us:>10.2} µs/op  ({n} ops)",
        "LTI launch verify (RS256 + claim checks)"
    );

    // 2. the whole launch route, warm isolate (one JWKS fetch in total).
    let io = BenchIo {
        jwks,
        kv: RefCell::default(),
        fetches: Cell::new(0),
        rnd: Cell::new(7),
    };
    let n = 500;
    let mut spent = Duration::ZERO;
    for _ in 0..n {
        let login = respond(
            &app,
            IncomingRequest {
                method: Method::Get,
                url: url::Url::parse("https://hub.example.edu/hub/lti13/oauth_login?iss=https%3A%2F%2Flms.example.edu&login_hint=u&target_link_uri=https%3A%2F%2Fhub.example.edu%2Fhub%2F").unwrap(),
                headers: Headers::new(),
                body: None,
            },
            &io,
        );
        let loc = login.location().unwrap().to_string();
        let token = sign(&key, &query(&loc, "nonce"));
        let cookie = login
            .headers
            .get("set-cookie")
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .to_string();
        let body = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("id_token", &token)
            .append_pair("state", &query(&loc, "state"))
            .finish();
        let req = IncomingRequest {
            method: Method::Post,
            url: url::Url::parse("https://hub.example.edu/hub/lti13/oauth_callback").unwrap(),
            headers: Headers(vec![("Cookie".into(), cookie)]),
            body: Some(body.into_bytes()),
        };
        let t = Instant::now();
        let r = respond(&app, req, &io);
        spent += t.elapsed();
        assert_eq!(r.status, 302);
    }
    let us = spent.as_secs_f64() * 1e6 / n as f64;
    println!(
        "{:<44} {us:>10.2} µs/op  ({n} ops)",
        "LTI launch route, warm isolate (whole core)"
    );
    println!(
        "platform JWKS fetches during {n} launches: {}",
        io.fetches.get()
    );
}
