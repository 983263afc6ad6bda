//! The identity assertion (`X-Hubgate-Assertion`): a JWT signed by the
//! worker (ES256 or EdDSA) that the hub verifies against
//! `/_hubgate/jwks.json`. It rides only on the worker's own login
//! subrequest to the hub, and is single-use and narrow: a `jti`, `aud` = the
//! hub origin, `login_path` = the one path it is good for, `exp` ≤ 60 s.

use crate::bindings::{Bindings, Reader};
use crate::http::UnixTime;
use crate::identity::Identity;
use crate::jose::hs256::to_datetime;
#[cfg(feature = "eddsa")]
use jwt_compact::alg::Ed25519;
use jwt_compact::{alg::Es256, jwk::JsonWebKey, Algorithm, AlgorithmExt, Claims, Header};
use serde::Serialize;
use serde_json::{Map, Value};
use std::fmt;

pub const LIFETIME: u64 = 60;

enum Signer {
    Es256(<Es256 as Algorithm>::SigningKey),
    #[cfg(feature = "eddsa")]
    EdDsa(<Ed25519 as Algorithm>::SigningKey),
}

pub struct SigningKey {
    pub kid: String,
    signer: Signer,
    public_jwk: Value,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SigningKey(kid={:?}, ..)", self.kid)
    }
}

#[derive(Debug)]
pub struct AssertionKeys {
    pub current: SigningKey,
    /// Published only, so assertions signed just before a rotation still verify.
    pub previous: Option<SigningKey>,
}

/// A private JWK (EC P-256 or OKP Ed25519, with `d`) → signing key.
pub fn parse_key(json: &str) -> Result<SigningKey, String> {
    let v: Value = serde_json::from_str(json).map_err(|_| "is not a JSON Web Key".to_string())?;
    let jwk: JsonWebKey<'_> =
        serde_json::from_value(v.clone()).map_err(|_| "is not a JSON Web Key".to_string())?;
    let signer = match &jwk {
        JsonWebKey::EllipticCurve { .. } => Signer::Es256(
            TryFrom::try_from(&jwk)
                .map_err(|_| "must be a P-256 private key (with d)".to_string())?,
        ),
        #[cfg(feature = "eddsa")]
        JsonWebKey::KeyPair { .. } => Signer::EdDsa(
            TryFrom::try_from(&jwk)
                .map_err(|_| "must be an Ed25519 private key (with d)".to_string())?,
        ),
        #[cfg(not(feature = "eddsa"))]
        JsonWebKey::KeyPair { .. } => {
            return Err("is an Ed25519 key; this build verifies and signs EdDSA only with the `eddsa` cargo feature (use an EC P-256 key)".into())
        }
        _ => return Err("must be an EC P-256 or OKP Ed25519 private key".into()),
    };
    let public = jwk.to_verifying_key();
    let kid = match v.get("kid").and_then(Value::as_str) {
        Some(k) if !k.is_empty() => k.to_string(),
        _ => {
            // RFC 7638 thumbprint as the key id when none is given.
            use base64::Engine;
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .encode(public.thumbprint::<sha2::Sha256>())
        }
    };
    let mut public_jwk = serde_json::to_value(&public).map_err(|e| e.to_string())?;
    let alg = match signer {
        Signer::Es256(_) => "ES256",
        #[cfg(feature = "eddsa")]
        Signer::EdDsa(_) => "EdDSA",
    };
    if let Value::Object(m) = &mut public_jwk {
        m.insert("kid".into(), kid.clone().into());
        m.insert("use".into(), "sig".into());
        m.insert("alg".into(), alg.into());
    }
    Ok(SigningKey {
        kid,
        signer,
        public_jwk,
    })
}

/// `ASSERTION_SIGNING_KEY` (+ `_PREVIOUS`, published only).
pub fn parse_settings<B: Bindings>(r: &mut Reader<'_, B>) -> Option<AssertionKeys> {
    let mut key = |name: &'static str| {
        let raw = r.string(name)?;
        match parse_key(&raw) {
            Ok(k) => Some(k),
            Err(reason) => {
                r.invalid(name, reason);
                None
            }
        }
    };
    let current = key("ASSERTION_SIGNING_KEY");
    let previous = key("ASSERTION_SIGNING_KEY_PREVIOUS");
    if current.is_none() && previous.is_some() {
        r.invalid(
            "ASSERTION_SIGNING_KEY_PREVIOUS",
            "is set without ASSERTION_SIGNING_KEY",
        );
    }
    Some(AssertionKeys {
        current: current?,
        previous,
    })
}

impl AssertionKeys {
    /// The public key set for `/_hubgate/jwks.json`.
    pub fn jwks(&self) -> Value {
        let keys: Vec<Value> = std::iter::once(&self.current)
            .chain(self.previous.as_ref())
            .map(|k| k.public_jwk.clone())
            .collect();
        serde_json::json!({ "keys": keys })
    }
}

#[derive(Serialize)]
struct AssertionClaims<'a> {
    iss: &'a str,
    aud: &'a str,
    jti: &'a str,
    login_path: &'a str,
    sub: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    email: Option<&'a str>,
    groups: &'a [String],
    admin: bool,
    method: &'a str,
    #[serde(skip_serializing_if = "Map::is_empty")]
    auth_state: &'a Map<String, Value>,
}

/// Who the assertion is from and for, and which login it is good for.
pub struct Audience<'a> {
    /// The worker's public origin.
    pub issuer: &'a str,
    /// The hub origin.
    pub hub: &'a str,
    /// `{BASE_URL}hub/login`.
    pub login_path: &'a str,
    /// Random, single-use at the hub.
    pub jti: &'a str,
}

pub fn mint(key: &SigningKey, identity: &Identity, to: &Audience<'_>, now: UnixTime) -> String {
    let claims = AssertionClaims {
        iss: to.issuer,
        aud: to.hub,
        jti: to.jti,
        login_path: to.login_path,
        sub: &identity.username,
        email: identity.email.as_deref(),
        groups: &identity.groups,
        admin: identity.admin,
        method: identity.method.as_str(),
        auth_state: &identity.auth_state,
    };
    let mut c = Claims::new(claims);
    c.issued_at = Some(to_datetime(now));
    c.expiration = Some(to_datetime(now.plus(LIFETIME)));
    let header = Header::empty()
        .with_key_id(key.kid.clone())
        .with_token_type("JWT");
    let signed = match &key.signer {
        Signer::Es256(k) => Es256.token(&header, &c, k),
        #[cfg(feature = "eddsa")]
        Signer::EdDsa(k) => Ed25519.token(&header, &c, k),
    };
    signed
        // Serialising our own claims does not fail; were it to, an empty
        // token fails closed (it verifies nowhere) instead of panicking.
        .unwrap_or_default()
}
