//! The identity assertion sent to the hub on every proxied request
//! (`X-Hubgate-Assertion`): a short-lived JWT signed by the worker (ES256 or
//! EdDSA) that the hub verifies against `/_hubgate/jwks.json`, so the origin
//! trusts a signature rather than the network.
//!
//! Signing costs far more than an HMAC, so an assertion is minted at most
//! once per session and key per ~30 s and reused from isolate memory until
//! it has less than `REUSE_MARGIN` seconds left.

use crate::config::{Bindings, Reader};
use crate::http::UnixTime;
use crate::identity::Identity;
use crate::signing::to_datetime;
use jwt_compact::{
    alg::{Ed25519, Es256},
    jwk::JsonWebKey,
    Algorithm, AlgorithmExt, Claims, Header,
};
use serde::Serialize;
use serde_json::{Map, Value};
use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt;

pub const LIFETIME: u64 = 60;
/// Reuse while at least this much lifetime is left: at most one signature
/// per session per `LIFETIME - REUSE_MARGIN` seconds.
pub const REUSE_MARGIN: u64 = 30;
const CACHE_LIMIT: usize = 4096;
/// auth_state rides in the session cookie, which must stay under 4 KB.
pub const MAX_AUTH_STATE_BYTES: usize = 1536;

enum Signer {
    Es256(<Es256 as Algorithm>::SigningKey),
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
        JsonWebKey::KeyPair { .. } => Signer::EdDsa(
            TryFrom::try_from(&jwk)
                .map_err(|_| "must be an Ed25519 private key (with d)".to_string())?,
        ),
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

pub fn parse_config<B: Bindings>(r: &mut Reader<'_, B>) -> Option<AssertionKeys> {
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
    sub: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    email: Option<&'a str>,
    groups: &'a [String],
    admin: bool,
    method: &'a str,
    #[serde(skip_serializing_if = "Map::is_empty")]
    auth_state: &'a Map<String, Value>,
}

pub fn mint(
    key: &SigningKey,
    identity: &Identity,
    issuer: &str,
    audience: &str,
    now: UnixTime,
) -> String {
    let claims = AssertionClaims {
        iss: issuer,
        aud: audience,
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
        Signer::EdDsa(k) => Ed25519.token(&header, &c, k),
    };
    signed.expect("serialising our own claims cannot fail")
}

/// Assertions of this isolate, by (session id, key id).
#[derive(Default)]
pub struct AssertionCache {
    entries: RefCell<HashMap<(String, String), (String, UnixTime)>>,
    /// Signatures made, for the benchmark and tests.
    pub minted: std::cell::Cell<u64>,
}

impl AssertionCache {
    pub fn get_or_mint(
        &self,
        key: &SigningKey,
        sid: &str,
        identity: &Identity,
        issuer: &str,
        audience: &str,
        now: UnixTime,
    ) -> String {
        let k = (sid.to_string(), key.kid.clone());
        if let Some((token, exp)) = self.entries.borrow().get(&k) {
            if exp.0 >= now.0 + REUSE_MARGIN {
                return token.clone();
            }
        }
        let token = mint(key, identity, issuer, audience, now);
        self.minted.set(self.minted.get() + 1);
        let mut entries = self.entries.borrow_mut();
        if entries.len() >= CACHE_LIMIT {
            entries.retain(|_, (_, exp)| exp.0 >= now.0 + REUSE_MARGIN);
            if entries.len() >= CACHE_LIMIT {
                entries.clear();
            }
        }
        entries.insert(k, (token.clone(), now.plus(LIFETIME)));
        token
    }
}

/// The claims named in `ASSERTION_AUTH_STATE_CLAIMS`, if they fit.
pub fn select_auth_state(claims: &Value, names: &[String]) -> Map<String, Value> {
    let mut out = Map::new();
    for n in names {
        if let Some(v) = crate::access::claim_at(claims, n) {
            out.insert(n.clone(), v.clone());
        }
    }
    if serde_json::to_vec(&out)
        .map(|b| b.len())
        .unwrap_or(usize::MAX)
        > MAX_AUTH_STATE_BYTES
    {
        // Too big for the cookie: keep the names that fit, in order.
        let mut trimmed = Map::new();
        for (k, v) in out {
            trimmed.insert(k.clone(), v);
            if serde_json::to_vec(&trimmed)
                .map(|b| b.len())
                .unwrap_or(usize::MAX)
                > MAX_AUTH_STATE_BYTES
            {
                trimmed.remove(&k);
            }
        }
        return trimmed;
    }
    out
}
