//! The tool's own key (`LTI13_PRIVATE_KEY`): it signs deep linking
//! responses, and its public half is served at `/hub/lti13/jwks` where the
//! platform fetches it (LTI Core 1.3 / IMS Security Framework 6).

use base64::Engine;
use jwt_compact::{
    alg::{Rsa, RsaPrivateKey, RsaPublicKey},
    jwk::JsonWebKey,
    AlgorithmExt, Claims, Header,
};
use rsa::traits::PublicKeyParts;
use serde::Serialize;
use sha2::Sha256;
use std::fmt;

/// Platforms expect RS256 (IMS Security Framework 6.1); keys under 2048
/// bits are refused.
pub const MIN_RSA_BITS: usize = 2048;

#[derive(Clone)]
pub struct ToolKey {
    private: RsaPrivateKey,
    /// RFC 7638 thumbprint of the public key: rotating the key changes it.
    pub kid: String,
    pub public_jwk: serde_json::Value,
}

impl fmt::Debug for ToolKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ToolKey(kid={}, ..)", self.kid)
    }
}

impl ToolKey {
    /// PKCS#8 (`BEGIN PRIVATE KEY`) or PKCS#1 (`BEGIN RSA PRIVATE KEY`) PEM.
    pub fn from_pem(pem: &str) -> Result<ToolKey, String> {
        use rsa::pkcs1::DecodeRsaPrivateKey;
        use rsa::pkcs8::DecodePrivateKey;
        let private = RsaPrivateKey::from_pkcs8_pem(pem)
            .or_else(|_| RsaPrivateKey::from_pkcs1_pem(pem))
            .map_err(|_| "is not an RSA private key in PKCS#8 or PKCS#1 PEM".to_string())?;
        let bits = private.size() * 8;
        if bits < MIN_RSA_BITS {
            return Err(format!(
                "is a {bits}-bit RSA key; at least {MIN_RSA_BITS} bits are required"
            ));
        }
        let public = RsaPublicKey::from(&private);
        let jwk = JsonWebKey::from(&public);
        let kid =
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(jwk.thumbprint::<Sha256>());
        let mut public_jwk = serde_json::to_value(&jwk).map_err(|e| e.to_string())?;
        if let Some(m) = public_jwk.as_object_mut() {
            m.insert("kid".into(), kid.clone().into());
            m.insert("alg".into(), "RS256".into());
            m.insert("use".into(), "sig".into());
        }
        Ok(ToolKey {
            private,
            kid,
            public_jwk,
        })
    }

    /// An RS256 JWT with this key's `kid` in the header.
    pub fn sign<T: Serialize>(&self, claims: &Claims<T>) -> String {
        let header = Header::empty()
            .with_key_id(&self.kid)
            .with_token_type("JWT");
        Rsa::rs256()
            .token(&header, claims, &self.private)
            // Serialising our own claims does not fail; were it to, an empty
            // token fails closed (it verifies nowhere) instead of panicking.
            .unwrap_or_default()
    }
}

/// `/hub/lti13/jwks`: the tool's public keys (empty without a key).
pub fn jwks(key: Option<&ToolKey>) -> serde_json::Value {
    let keys: Vec<serde_json::Value> = key.map(|k| k.public_jwk.clone()).into_iter().collect();
    serde_json::json!({ "keys": keys })
}
