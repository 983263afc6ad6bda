//! Helpers for the LTI tests: RSA platforms made here (keys generated once
//! per test binary), standard launch claims, and the login → launch steps.
#![allow(dead_code)]

use crate::common::*;
use hubgate::app::App;
use hubgate::http::{Method, Response, UnixTime};
use jwt_compact::{
    alg::{Rsa, RsaPrivateKey, RsaPublicKey},
    jwk::JsonWebKey,
    AlgorithmExt, Claims, Header,
};
use rsa::pkcs8::{EncodePrivateKey, LineEnding};
use serde_json::{json, Value};
use std::sync::OnceLock;

pub const LMS: &str = "https://lms.example.edu";
pub const LMS2: &str = "https://canvas.example.org";
pub const CLIENT: &str = "client-1";
pub const DEPLOYMENT: &str = "dep-1";
pub const CLAIM: &str = "https://purl.imsglobal.org/spec/lti/claim/";
pub const DL: &str = "https://purl.imsglobal.org/spec/lti-dl/claim/";

fn key(i: usize) -> RsaPrivateKey {
    static KEYS: OnceLock<Vec<RsaPrivateKey>> = OnceLock::new();
    KEYS.get_or_init(|| {
        (0..4)
            .map(|_| RsaPrivateKey::new(&mut rand::rngs::OsRng, 2048).unwrap())
            .collect()
    })[i]
        .clone()
}

/// Key 3 is the tool's own key.
pub fn tool_pem() -> String {
    key(3).to_pkcs8_pem(LineEnding::LF).unwrap().to_string()
}

pub struct RsaPlatform {
    pub key: RsaPrivateKey,
    pub kid: String,
}

impl RsaPlatform {
    /// Key slots 0..=2 are platform keys.
    pub fn new(slot: usize, kid: &str) -> Self {
        RsaPlatform {
            key: key(slot),
            kid: kid.into(),
        }
    }
    pub fn jwk(&self) -> Value {
        let public = RsaPublicKey::from(&self.key);
        let mut v = serde_json::to_value(JsonWebKey::from(&public)).unwrap();
        v["kid"] = self.kid.clone().into();
        v["use"] = "sig".into();
        v["alg"] = "RS256".into();
        v
    }
    pub fn sign(&self, claims: Value, iat: u64, exp: u64) -> String {
        let mut c = Claims::new(claims);
        c.issued_at = Some(hubgate::jose::hs256::to_datetime(UnixTime(iat)));
        c.expiration = Some(hubgate::jose::hs256::to_datetime(UnixTime(exp)));
        Rsa::rs256()
            .token(
                &Header::empty().with_key_id(self.kid.clone()),
                &c,
                &self.key,
            )
            .unwrap()
    }
}

pub fn serve_jwks(io: &TestIo, url: &str, keys: Vec<Value>) {
    io.route(url, move |_| json_response(200, json!({ "keys": keys })));
}

/// Bindings for an LTI-only worker with one platform (LMS) and the tool key.
pub fn lti_bindings(extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = vec![
        ("OAUTH_CLIENT_ID", ""),
        ("OAUTH_CLIENT_SECRET", ""),
        ("OIDC_ISSUER", ""),
        ("OAUTH2_USERNAME_KEY", ""),
        ("ALLOWED_USERS", ""),
        ("ADMIN_USERS", ""),
        ("LTI13_ISSUER", LMS),
        ("LTI13_CLIENT_ID", CLIENT),
        ("LTI13_AUTHORIZE_URL", "https://lms.example.edu/auth"),
        ("LTI13_JWKS_ENDPOINT", "https://lms.example.edu/jwks"),
        ("LTI13_DEPLOYMENT_IDS", DEPLOYMENT),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    v.push(("LTI13_PRIVATE_KEY".into(), tool_pem()));
    for (k, val) in extra {
        v.retain(|(n, _)| n != k);
        v.push((k.to_string(), val.to_string()));
    }
    v
}

pub fn lti_app(extra: &[(&str, &str)]) -> App {
    let b = lti_bindings(extra);
    let refs: Vec<(&str, &str)> = b.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    app(&refs)
}

pub fn resource_link_claims(nonce: &str, iss: &str, aud: &str) -> Value {
    json!({
        "iss": iss,
        "aud": aud,
        "sub": "user-1234",
        "nonce": nonce,
        "email": "Alice@example.edu",
        "name": "Alice",
        format!("{CLAIM}message_type"): "LtiResourceLinkRequest",
        format!("{CLAIM}version"): "1.3.0",
        format!("{CLAIM}deployment_id"): DEPLOYMENT,
        format!("{CLAIM}target_link_uri"): format!("{ORIGIN}/hub/user-redirect/lab"),
        format!("{CLAIM}resource_link"): {"id": "rl-1", "title": "Week 1"},
        format!("{CLAIM}roles"): ["http://purl.imsglobal.org/vocab/lis/v2/membership#Learner"],
        format!("{CLAIM}context"): {"id": "course-42", "label": "DS101", "title": "Data Science"},
        format!("{CLAIM}custom"): {"uname": "alice_c"},
    })
}

pub fn form(pairs: &[(&str, &str)]) -> Vec<u8> {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
        .into_bytes()
}

pub fn post(path: &str, body: Vec<u8>) -> hubgate::http::IncomingRequest {
    let mut r = request(
        Method::Post,
        path,
        &[("Content-Type", "application/x-www-form-urlencoded")],
    );
    r.body = Some(body);
    r
}

/// The platform's login initiation for `iss`/`client_id`.
pub fn initiate(app: &App, io: &TestIo, iss: &str, client_id: &str) -> Response {
    let q = form(&[
        ("iss", iss),
        ("login_hint", "user-1234"),
        ("target_link_uri", &format!("{ORIGIN}/hub/")),
        ("lti_message_hint", "rl-1"),
        ("client_id", client_id),
    ]);
    respond(
        app,
        get(&format!(
            "/hub/lti13/oauth_login?{}",
            String::from_utf8(q).unwrap()
        )),
        io,
    )
}

/// Login initiation, then the platform's form post of `id_token(nonce)`.
pub fn launch_with(
    app: &App,
    io: &TestIo,
    iss: &str,
    client_id: &str,
    id_token: impl FnOnce(&str) -> String,
) -> Response {
    let login = initiate(app, io, iss, client_id);
    assert_eq!(
        login.status,
        302,
        "{}",
        String::from_utf8_lossy(&login.body)
    );
    let loc = login.location().unwrap().to_string();
    let nonce = query(&loc, "nonce").unwrap();
    let state = query(&loc, "state").unwrap();
    let token = id_token(&nonce);
    respond(
        app,
        with_cookies(
            post(
                "/hub/lti13/oauth_callback",
                form(&[("id_token", &token), ("state", &state)]),
            ),
            &login,
        ),
        io,
    )
}

/// A standard launch at LMS signed by `p`, with `tweak` applied to the claims.
pub fn launch(app: &App, io: &TestIo, p: &RsaPlatform, tweak: impl FnOnce(&mut Value)) -> Response {
    launch_with(app, io, LMS, CLIENT, |nonce| {
        let mut c = resource_link_claims(nonce, LMS, CLIENT);
        tweak(&mut c);
        p.sign(c, T0, T0 + 300)
    })
}

pub fn body(r: &Response) -> String {
    String::from_utf8_lossy(&r.body).into_owned()
}
