//! The worker's own HS256 tokens (session cookie, per-flow state cookie),
//! through jwt-compact. Each purpose has its own key derived from the
//! operator's secret, its own `typ`, and its own audience, so a token minted
//! for one purpose never verifies as another.

use crate::http::UnixTime;
use crate::secret::SessionSecret;
use hmac::{Hmac, Mac};
use jwt_compact::{
    alg::Hs256, alg::Hs256Key, AlgorithmExt, Claims, Header, TimeOptions, UntrustedToken,
};
use serde::{de::DeserializeOwned, Serialize};
use sha2::Sha256;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Purpose {
    Session,
    Flow,
}

impl Purpose {
    pub fn typ(self) -> &'static str {
        match self {
            Purpose::Session => "hubgate-session+jwt",
            Purpose::Flow => "hubgate-flow+jwt",
        }
    }
    fn label(self) -> &'static [u8] {
        match self {
            Purpose::Session => b"hubgate/v1/session",
            Purpose::Flow => b"hubgate/v1/flow",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("token is not a compact JWT")]
    Malformed,
    #[error("token has the wrong typ or algorithm")]
    WrongType,
    #[error("token signature does not verify")]
    BadSignature,
    #[error("token has expired")]
    Expired,
    #[error("token claims are malformed")]
    BadClaims,
}

pub struct Verified<T> {
    pub claims: T,
    pub issued_at: UnixTime,
    pub expires_at: UnixTime,
    /// Verified with `SESSION_SECRET_PREVIOUS`: re-mint with the current one.
    pub used_previous_key: bool,
}

pub fn derive_key(secret: &SessionSecret, purpose: Purpose) -> Hs256Key {
    // HMAC takes keys of any length, so `new_from_slice` cannot fail; the
    // fallback keeps this free of panics all the same.
    let tag = match <Hmac<Sha256> as Mac>::new_from_slice(secret.expose().as_bytes()) {
        Ok(mut mac) => {
            mac.update(purpose.label());
            mac.finalize().into_bytes().to_vec()
        }
        Err(_) => Vec::new(),
    };
    Hs256Key::new(tag)
}

pub fn to_datetime(t: UnixTime) -> chrono::DateTime<chrono::Utc> {
    t.to_datetime()
}

pub fn from_datetime(d: chrono::DateTime<chrono::Utc>) -> UnixTime {
    UnixTime::from_datetime(d)
}

pub fn mint<T: Serialize>(
    secret: &SessionSecret,
    purpose: Purpose,
    claims: &T,
    now: UnixTime,
    ttl: u64,
) -> String {
    let header = Header::empty().with_token_type(purpose.typ());
    let mut c = Claims::new(claims);
    c.issued_at = Some(to_datetime(now));
    c.expiration = Some(to_datetime(now.plus(ttl)));
    Hs256
        .token(&header, &c, &derive_key(secret, purpose))
        // Serialising our own claims does not fail; were it to, an empty
        // token fails closed (it verifies nowhere) instead of panicking.
        .unwrap_or_default()
}

/// Verify with the current secret, then the previous one.
pub fn verify<T: DeserializeOwned>(
    token: &str,
    purpose: Purpose,
    current: &SessionSecret,
    previous: Option<&SessionSecret>,
    now: UnixTime,
) -> Result<Verified<T>, TokenError> {
    let untrusted = UntrustedToken::new(token).map_err(|_| TokenError::Malformed)?;
    if untrusted.algorithm() != "HS256"
        || untrusted.header().token_type.as_deref() != Some(purpose.typ())
    {
        return Err(TokenError::WrongType);
    }
    let keys = std::iter::once((current, false)).chain(previous.map(|p| (p, true)));
    for (secret, is_previous) in keys {
        let key = derive_key(secret, purpose);
        let Ok(token) = Hs256.validator::<T>(&key).validate(&untrusted) else {
            continue;
        };
        let claims = token.claims();
        let options = TimeOptions::new(chrono::Duration::zero(), move || to_datetime(now));
        claims
            .validate_expiration(&options)
            .map_err(|_| TokenError::Expired)?;
        let (Some(iat), Some(exp)) = (claims.issued_at, claims.expiration) else {
            return Err(TokenError::BadClaims);
        };
        if from_datetime(iat) > now.plus(60) {
            return Err(TokenError::BadClaims);
        }
        let (_, claims) = token.into_parts();
        return Ok(Verified {
            claims: claims.custom,
            issued_at: from_datetime(iat),
            expires_at: from_datetime(exp),
            used_previous_key: is_previous,
        });
    }
    Err(TokenError::BadSignature)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    struct C {
        v: u32,
    }
    fn s(x: &str) -> SessionSecret {
        SessionSecret::new(x.repeat(32))
    }

    #[test]
    fn round_trips_and_expires() {
        let t = mint(&s("a"), Purpose::Session, &C { v: 7 }, UnixTime(1000), 60);
        let v = verify::<C>(&t, Purpose::Session, &s("a"), None, UnixTime(1059)).unwrap();
        assert_eq!(v.claims, C { v: 7 });
        assert!(!v.used_previous_key);
        assert_eq!(
            verify::<C>(&t, Purpose::Session, &s("a"), None, UnixTime(1061)).err(),
            Some(TokenError::Expired)
        );
    }

    #[test]
    fn flow_token_never_verifies_as_session() {
        let t = mint(&s("a"), Purpose::Flow, &C { v: 1 }, UnixTime(1000), 60);
        assert_eq!(
            verify::<C>(&t, Purpose::Session, &s("a"), None, UnixTime(1001)).err(),
            Some(TokenError::WrongType)
        );
    }

    #[test]
    fn previous_secret_verifies_and_asks_for_reissue() {
        let t = mint(&s("old"), Purpose::Session, &C { v: 1 }, UnixTime(1000), 60);
        let v = verify::<C>(
            &t,
            Purpose::Session,
            &s("new"),
            Some(&s("old")),
            UnixTime(1001),
        )
        .unwrap();
        assert!(v.used_previous_key);
        assert_eq!(
            verify::<C>(&t, Purpose::Session, &s("new"), None, UnixTime(1001)).err(),
            Some(TokenError::BadSignature)
        );
    }
}
