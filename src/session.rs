//! The session cookie: mint, verify, rotate. A compact HS256 JWT with its
//! own `typ`, `iss` and `aud` (the public origin), kept well under 4 KB.

use crate::config::SessionConfig;
use crate::cookies::{self, Context};
use crate::http::{Headers, UnixTime};
use crate::identity::{Identity, LoginMethod};
use crate::signing::{self, Purpose, TokenError};
use serde::{Deserialize, Serialize};

pub const ISSUER: &str = "hubgate";

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
struct SessionClaims {
    iss: String,
    aud: String,
    sub: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    email: Option<String>,
    method: LoginMethod,
    #[serde(default)]
    groups: Vec<String>,
    #[serde(default)]
    admin: bool,
    sid: String,
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    auth_state: serde_json::Map<String, serde_json::Value>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Session {
    pub identity: Identity,
    pub sid: String,
    pub expires_at: UnixTime,
    /// Set when the cookie was signed with `SESSION_SECRET_PREVIOUS`: the
    /// response carries a re-minted cookie.
    pub reissue: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SessionError {
    #[error("no session cookie")]
    Missing,
    #[error("session cookie rejected: {0}")]
    Token(#[from] TokenError),
    #[error("session cookie was issued for another origin or issuer")]
    WrongAudience,
}

pub fn cookie_name(https: bool) -> String {
    cookies::cookie_name(cookies::SESSION_BASE, https)
}

/// A `Set-Cookie` value starting a session for `identity`.
pub fn mint(
    cfg: &SessionConfig,
    identity: &Identity,
    sid: &str,
    origin: &str,
    https: bool,
    ctx: Context,
    now: UnixTime,
) -> String {
    let claims = SessionClaims {
        iss: ISSUER.into(),
        aud: origin.into(),
        sub: identity.username.clone(),
        email: identity.email.clone(),
        method: identity.method,
        groups: identity.groups.clone(),
        admin: identity.admin,
        sid: sid.into(),
        auth_state: identity.auth_state.clone(),
    };
    let token = signing::mint(&cfg.secret, Purpose::Session, &claims, now, cfg.max_age);
    cookies::set_cookie(&cookie_name(https), &token, cfg.max_age, https, ctx)
}

pub fn verify(
    cfg: &SessionConfig,
    headers: &Headers,
    origin: &str,
    https: bool,
    now: UnixTime,
) -> Result<Session, SessionError> {
    let jar = cookies::parse_request_cookies(headers);
    let value = cookies::find(&jar, &cookie_name(https)).ok_or(SessionError::Missing)?;
    let v = signing::verify::<SessionClaims>(
        value,
        Purpose::Session,
        &cfg.secret,
        cfg.previous.as_ref(),
        now,
    )?;
    let c = v.claims;
    if c.iss != ISSUER || c.aud != origin {
        return Err(SessionError::WrongAudience);
    }
    let identity = Identity {
        username: c.sub,
        email: c.email,
        groups: c.groups,
        admin: c.admin,
        method: c.method,
        auth_state: c.auth_state,
    };
    let reissue = v.used_previous_key.then(|| {
        // Keep the original expiry: rotation must not extend a session.
        let remaining = v.expires_at.since(now).max(1);
        let cfg = SessionConfig {
            max_age: remaining,
            ..cfg.clone()
        };
        let ctx = if identity.method == LoginMethod::Lti {
            Context::Embedded
        } else {
            Context::TopLevel
        };
        mint(&cfg, &identity, &c.sid, origin, https, ctx, now)
    });
    Ok(Session {
        identity,
        sid: c.sid,
        expires_at: v.expires_at,
        reissue,
    })
}

pub fn clear(https: bool) -> String {
    cookies::expire_cookie(&cookie_name(https), https, Context::TopLevel)
}
