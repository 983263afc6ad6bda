//! Key sets: parsing a JWKS and verifying a JWT against it with the
//! algorithm chosen by code. Caching them is `cache::key_sets`.

#[cfg(feature = "eddsa")]
use jwt_compact::alg::Ed25519;
use jwt_compact::{
    alg::{Es256, Rsa, RsaPublicKey, StrongKey},
    jwk::JsonWebKey,
    Algorithm, AlgorithmExt, Claims, Header, Token, UntrustedToken,
};
use serde::de::DeserializeOwned;

/// Signature algorithms hubgate can verify. `none` and every HMAC are absent
/// on purpose: a key set holds public keys only.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Alg {
    Rs256,
    Rs384,
    Rs512,
    Ps256,
    Ps384,
    Ps512,
    Es256,
    EdDsa,
}

impl Alg {
    pub fn parse(s: &str) -> Option<Alg> {
        Some(match s {
            "RS256" => Alg::Rs256,
            "RS384" => Alg::Rs384,
            "RS512" => Alg::Rs512,
            "PS256" => Alg::Ps256,
            "PS384" => Alg::Ps384,
            "PS512" => Alg::Ps512,
            "ES256" => Alg::Es256,
            "EdDSA" => Alg::EdDsa,
            _ => return None,
        })
    }
    pub fn name(self) -> &'static str {
        match self {
            Alg::Rs256 => "RS256",
            Alg::Rs384 => "RS384",
            Alg::Rs512 => "RS512",
            Alg::Ps256 => "PS256",
            Alg::Ps384 => "PS384",
            Alg::Ps512 => "PS512",
            Alg::Es256 => "ES256",
            Alg::EdDsa => "EdDSA",
        }
    }
    fn fits(self, key: &PublicKey) -> bool {
        matches!(
            (self, key),
            (
                Alg::Rs256 | Alg::Rs384 | Alg::Rs512 | Alg::Ps256 | Alg::Ps384 | Alg::Ps512,
                PublicKey::Rsa(_)
            ) | (Alg::Es256, PublicKey::P256(_))
        ) || self.fits_eddsa(key)
    }
    #[cfg(feature = "eddsa")]
    fn fits_eddsa(self, key: &PublicKey) -> bool {
        matches!((self, key), (Alg::EdDsa, PublicKey::Ed25519(_)))
    }
    /// Without the `eddsa` feature no key is an Ed25519 key, so `EdDSA` fits none.
    #[cfg(not(feature = "eddsa"))]
    fn fits_eddsa(self, _key: &PublicKey) -> bool {
        false
    }
}

pub enum PublicKey {
    /// At least 2048 bits (jwt-compact's `StrongKey`).
    Rsa(StrongKey<RsaPublicKey>),
    P256(<Es256 as Algorithm>::VerifyingKey),
    #[cfg(feature = "eddsa")]
    Ed25519(<Ed25519 as Algorithm>::VerifyingKey),
}

pub struct Key {
    pub kid: Option<String>,
    /// The `alg` the JWK itself declares, if any; a token must then use exactly it.
    pub alg: Option<Alg>,
    pub key: PublicKey,
}

#[derive(Default)]
pub struct KeySet {
    pub keys: Vec<Key>,
    /// Keys left out (encryption keys, unknown types, weak RSA, symmetric).
    pub skipped: usize,
}

impl std::fmt::Debug for KeySet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kids: Vec<_> = self
            .keys
            .iter()
            .map(|k| k.kid.as_deref().unwrap_or("-"))
            .collect();
        f.debug_struct("KeySet")
            .field("kids", &kids)
            .field("skipped", &self.skipped)
            .finish()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwtError {
    #[error("not a compact JWS")]
    Malformed,
    #[error("algorithm {0:?} is not accepted here")]
    AlgorithmRefused(String),
    #[error("no key with kid {0:?} in the key set")]
    UnknownKid(Option<String>),
    #[error("key {kid:?} does not fit algorithm {alg}")]
    KeyAlgorithmMismatch { kid: Option<String>, alg: String },
    #[error("signature does not verify with key {0:?}")]
    BadSignature(Option<String>),
    #[error("claims are not valid JSON of the expected shape")]
    BadClaims,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwksError {
    #[error("key set at {url} could not be fetched: {detail}")]
    Unavailable { url: String, detail: String },
}

pub fn parse_key_set(json: &str) -> Result<KeySet, String> {
    #[derive(serde::Deserialize)]
    struct Raw {
        keys: Vec<serde_json::Value>,
    }
    let raw: Raw = crate::json::object(json.as_bytes()).map_err(|e| format!("not a JWKS: {e}"))?;
    let mut set = KeySet::default();
    for v in raw.keys {
        match parse_key(&v) {
            Some(k) => set.keys.push(k),
            None => set.skipped += 1,
        }
    }
    Ok(set)
}

fn parse_key(v: &serde_json::Value) -> Option<Key> {
    let field = |n: &str| v.get(n).and_then(|x| x.as_str()).map(str::to_string);
    // RFC 7517 4.2: a key meant for encryption must not verify signatures.
    if field("use").is_some_and(|u| u != "sig") {
        return None;
    }
    let declared = field("alg");
    let alg = match &declared {
        Some(a) => Some(Alg::parse(a)?),
        None => None,
    };
    let jwk: JsonWebKey<'_> = serde_json::from_value(v.clone()).ok()?;
    let key = match &jwk {
        JsonWebKey::Rsa { .. } => {
            PublicKey::Rsa(StrongKey::try_from(RsaPublicKey::try_from(&jwk).ok()?).ok()?)
        }
        JsonWebKey::EllipticCurve { .. } => PublicKey::P256(TryFrom::try_from(&jwk).ok()?),
        #[cfg(feature = "eddsa")]
        JsonWebKey::KeyPair { .. } => PublicKey::Ed25519(TryFrom::try_from(&jwk).ok()?),
        _ => return None,
    };
    if alg.is_some_and(|a| !a.fits(&key)) {
        return None;
    }
    Some(Key {
        kid: field("kid"),
        alg,
        key,
    })
}

/// Verify `token` with a key from `keys`. The algorithm is the header's only
/// if it is in `allowed`, fits the key's type, and equals the key's own `alg`.
pub fn verify_jwt<T: DeserializeOwned>(
    token: &str,
    keys: &KeySet,
    allowed: &[Alg],
) -> Result<(Header, Claims<T>), JwtError> {
    let untrusted = UntrustedToken::new(token).map_err(|_| JwtError::Malformed)?;
    let alg = Alg::parse(untrusted.algorithm())
        .filter(|a| allowed.contains(a))
        .ok_or_else(|| JwtError::AlgorithmRefused(untrusted.algorithm().to_string()))?;
    let kid = untrusted.header().key_id.clone();
    let key = select_key(keys, kid.as_deref(), alg)?;
    if key.alg.is_some_and(|a| a != alg) || !alg.fits(&key.key) {
        return Err(JwtError::KeyAlgorithmMismatch {
            kid,
            alg: alg.name().into(),
        });
    }
    let bad = |e: jwt_compact::ValidationError| match e {
        jwt_compact::ValidationError::MalformedClaims(_) => JwtError::BadClaims,
        _ => JwtError::BadSignature(kid.clone()),
    };
    let token: Token<T> = match (&key.key, alg) {
        (PublicKey::Rsa(k), a) => {
            let rsa = match a {
                Alg::Rs256 => Rsa::rs256(),
                Alg::Rs384 => Rsa::rs384(),
                Alg::Rs512 => Rsa::rs512(),
                Alg::Ps256 => Rsa::ps256(),
                Alg::Ps384 => Rsa::ps384(),
                _ => Rsa::ps512(),
            };
            rsa.validator::<T>(k.as_ref())
                .validate(&untrusted)
                .map_err(bad)?
        }
        (PublicKey::P256(k), _) => Es256.validator::<T>(k).validate(&untrusted).map_err(bad)?,
        #[cfg(feature = "eddsa")]
        (PublicKey::Ed25519(k), _) => Ed25519
            .validator::<T>(k)
            .validate(&untrusted)
            .map_err(bad)?,
    };
    let (header, claims) = token.into_parts();
    Ok((header, claims))
}

fn select_key<'k>(keys: &'k KeySet, kid: Option<&str>, alg: Alg) -> Result<&'k Key, JwtError> {
    match kid {
        Some(kid) => keys
            .keys
            .iter()
            .find(|k| k.kid.as_deref() == Some(kid))
            .ok_or_else(|| JwtError::UnknownKid(Some(kid.to_string()))),
        // Without a kid, only an unambiguous key is acceptable.
        None => {
            let mut fitting = keys.keys.iter().filter(|k| alg.fits(&k.key));
            match (fitting.next(), fitting.next()) {
                (Some(k), None) => Ok(k),
                _ => Err(JwtError::UnknownKid(None)),
            }
        }
    }
}

/// The `kid` of a token's header, read before anything is verified: it only
/// picks the key (or asks for a refetch).
pub fn header_kid(token: &str) -> Option<String> {
    UntrustedToken::new(token).ok()?.header().key_id.clone()
}

/// One string claim of a token, read *without* verification: only for
/// naming things (a storage key), never for deciding.
pub fn unverified_string_claim(token: &str, name: &str) -> Option<String> {
    let t = UntrustedToken::new(token).ok()?;
    let c = t
        .deserialize_claims_unchecked::<serde_json::Map<String, serde_json::Value>>()
        .ok()?;
    c.custom.get(name)?.as_str().map(str::to_string)
}

pub fn has_kid(keys: &KeySet, kid: Option<&str>) -> bool {
    match kid {
        Some(kid) => keys.keys.iter().any(|k| k.kid.as_deref() == Some(kid)),
        None => !keys.keys.is_empty(),
    }
}
