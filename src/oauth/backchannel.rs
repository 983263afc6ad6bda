//! OpenID Connect Back-Channel Logout 1.0, 2.6: Logout Token validation.
//! A logout token ends sessions, so it is checked as strictly as an
//! id_token, and it must not be mistaken for one (or the reverse): the
//! `events` member is required and a `nonce` is refused.

use crate::cache::key_sets::JwksError;
use crate::http::{Failure, UnixTime};
use crate::jose::claims::{self, ClaimError, ClaimMap};
use crate::jose::hs256::from_datetime;
use crate::jose::keys::{verify_jwt, Alg, JwtError, KeySet};
use crate::one_time::OneTimeError;
use serde_json::Value;

pub const EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";

/// How old a logout token may be (its `iat`), beyond the clock leeway:
/// the one-time store remembers `jti`s this long.
pub const MAX_AGE: u64 = 300;

/// A logout token as received: nothing about it is trusted yet.
pub struct UntrustedLogoutToken<'a>(pub &'a str);

/// Whom the provider logged out. Only `UntrustedLogoutToken::verify` makes one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedLogout {
    pub sub: Option<String>,
    pub sid: Option<String>,
    pub jti: String,
}

pub struct Expectations<'a> {
    pub issuer: &'a str,
    pub client_id: &'a str,
    pub algs: &'a [Alg],
    pub now: UnixTime,
    pub leeway: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LogoutTokenError {
    #[error(transparent)]
    Jwt(#[from] JwtError),
    #[error(transparent)]
    Claims(#[from] ClaimError),
    #[error("no iat claim")]
    MissingIat,
    #[error("iat {0} is older than {MAX_AGE} s or in the future")]
    Stale(u64),
    #[error("exp {0} has passed")]
    Expired(u64),
    #[error("neither sub nor sid")]
    NoSubject,
    #[error("events has no {EVENT} member holding an object")]
    NotALogoutEvent,
    #[error("a logout token must not carry a nonce")]
    HasNonce,
    #[error("no jti")]
    MissingJti,
}

impl UntrustedLogoutToken<'_> {
    pub fn kid(&self) -> Option<String> {
        crate::jose::keys::header_kid(self.0)
    }

    pub fn verify(
        self,
        keys: &KeySet,
        e: &Expectations<'_>,
    ) -> Result<VerifiedLogout, LogoutTokenError> {
        // Step 3: the signature, as for an id_token (algorithm chosen by code).
        let (_, c) = verify_jwt::<ClaimMap>(self.0, keys, e.algs)?;
        // Step 4: iss, aud, iat (and exp when present).
        claims::check_issuer_and_audience(&c.custom, e.issuer, e.client_id)?;
        let iat = c
            .issued_at
            .map(from_datetime)
            .ok_or(LogoutTokenError::MissingIat)?;
        let oldest = e.now.0.saturating_sub(MAX_AGE + e.leeway);
        if iat.0 < oldest || iat.0 > e.now.0.saturating_add(e.leeway) {
            return Err(LogoutTokenError::Stale(iat.0));
        }
        if let Some(exp) = c.expiration.map(from_datetime) {
            if e.now.0 >= exp.0.saturating_add(e.leeway) {
                return Err(LogoutTokenError::Expired(exp.0));
            }
        }
        // Step 5: sub, sid, or both.
        let text = |name: &str| {
            claims::str_claim(&c.custom, name)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
        };
        let (sub, sid) = (text("sub"), text("sid"));
        if sub.is_none() && sid.is_none() {
            return Err(LogoutTokenError::NoSubject);
        }
        // Step 6: the events claim names the back-channel logout event.
        let event_ok = c
            .custom
            .get("events")
            .and_then(Value::as_object)
            .and_then(|m| m.get(EVENT))
            .is_some_and(Value::is_object);
        if !event_ok {
            return Err(LogoutTokenError::NotALogoutEvent);
        }
        // Step 7: no nonce (an id_token is not a logout token).
        if c.custom.contains_key("nonce") {
            return Err(LogoutTokenError::HasNonce);
        }
        // Step 8 (replay) is the caller's, through the one-time store.
        let jti = text("jti").ok_or(LogoutTokenError::MissingJti)?;
        Ok(VerifiedLogout { sub, sid, jti })
    }
}

/// Why a logout request was refused (OIDC Back-Channel Logout 1.0, 2.8:
/// 400 for a token that does not validate).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BackchannelError {
    #[error("back-channel logout needs OpenID Connect (OIDC_ISSUER) and KV NONCES")]
    NotConfigured,
    #[error("no logout_token in the form body")]
    MissingToken,
    #[error("logout_token: {0}")]
    Token(#[from] LogoutTokenError),
    #[error("logout_token jti was already used")]
    Replayed,
    #[error("discovery failed: {0}")]
    Discovery(String),
    #[error("key set: {0}")]
    Jwks(#[from] JwksError),
    #[error("one-time store: {0}")]
    OneTimeStore(String),
}

impl From<OneTimeError> for BackchannelError {
    fn from(e: OneTimeError) -> Self {
        match e {
            OneTimeError::Replay => BackchannelError::Replayed,
            OneTimeError::Unavailable(u) => BackchannelError::OneTimeStore(u.0),
        }
    }
}

impl Failure for BackchannelError {
    fn status(&self) -> u16 {
        use BackchannelError::*;
        match self {
            NotConfigured => 404,
            MissingToken | Token(_) | Replayed => 400,
            Discovery(_) | Jwks(_) => 502,
            OneTimeStore(_) => 503,
        }
    }
    fn kind(&self) -> &'static str {
        "backchannel_logout"
    }
}
