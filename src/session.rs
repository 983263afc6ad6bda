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
    /// Groups and auth_state were too big for the cookie and live in KV.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    ext: bool,
}

/// Above this many bytes of groups + auth_state, they move out of the
/// cookie into KV keyed by `sid`: browsers drop cookies over 4 KB.
pub const MAX_INLINE_EXTRAS: usize = 2048;

pub fn extras_overflow(identity: &Identity) -> bool {
    serde_json::to_vec(&(&identity.groups, &identity.auth_state))
        .map(|v| v.len())
        .unwrap_or(usize::MAX)
        > MAX_INLINE_EXTRAS
}

#[derive(Clone, Debug, PartialEq)]
pub struct Session {
    pub identity: Identity,
    pub sid: String,
    pub expires_at: UnixTime,
    /// Groups and auth_state must be loaded from KV (`identity` has none yet).
    pub external: bool,
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
    #[error("session's stored groups/auth_state are gone from KV")]
    ExtrasMissing,
}

pub fn cookie_name(https: bool) -> String {
    cookies::cookie_name(cookies::SESSION_BASE, https)
}

/// A `Set-Cookie` value starting a session for `identity`. When
/// `extras_overflow(identity)`, groups and auth_state are left out and the
/// caller stores them in KV.
pub fn mint(
    cfg: &SessionConfig,
    identity: &Identity,
    sid: &str,
    origin: &str,
    https: bool,
    ctx: Context,
    now: UnixTime,
) -> String {
    mint_inner(
        cfg,
        identity,
        sid,
        origin,
        https,
        ctx,
        now,
        extras_overflow(identity),
    )
}

#[allow(clippy::too_many_arguments)]
fn mint_inner(
    cfg: &SessionConfig,
    identity: &Identity,
    sid: &str,
    origin: &str,
    https: bool,
    ctx: Context,
    now: UnixTime,
    ext: bool,
) -> String {
    let claims = SessionClaims {
        iss: ISSUER.into(),
        aud: origin.into(),
        sub: identity.username.clone(),
        email: identity.email.clone(),
        method: identity.method,
        groups: if ext {
            Vec::new()
        } else {
            identity.groups.clone()
        },
        admin: identity.admin,
        sid: sid.into(),
        auth_state: if ext {
            Default::default()
        } else {
            identity.auth_state.clone()
        },
        ext,
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
        mint_inner(&cfg, &identity, &c.sid, origin, https, ctx, now, c.ext)
    });
    Ok(Session {
        identity,
        sid: c.sid,
        expires_at: v.expires_at,
        external: c.ext,
        reissue,
    })
}

pub fn clear(https: bool) -> String {
    cookies::expire_cookie(&cookie_name(https), https, Context::TopLevel)
}
