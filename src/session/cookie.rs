//! The session cookie: mint, verify, rotate. A compact HS256 JWT with its
//! own `typ`, `iss` and `aud` (the public origin), kept well under 4 KB.
//!
//! A browser may hold several cookies of this name (one set at top level,
//! one partitioned inside an LMS frame): the newest valid one wins, and
//! `clear_all` deletes every variant a login may have set.

use super::revocation::ProviderRefs;
use super::SessionSettings;
use crate::cookies::{self, Context};
use crate::http::{Headers, UnixTime};
use crate::identity::{Identity, LoginMethod};
use crate::jose::hs256::{self as signing, Purpose, TokenError};
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
    /// The identity provider's session, for Back-Channel Logout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    prv: Option<ProviderRefs>,
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

/// A complete session: every part of the identity is known.
#[derive(Clone, Debug, PartialEq)]
pub struct Session {
    pub identity: Identity,
    pub sid: String,
    pub issued_at: UnixTime,
    pub expires_at: UnixTime,
    /// The provider session of an OpenID Connect login (revocable).
    pub provider: Option<ProviderRefs>,
    /// Set when the cookie was signed with `SESSION_SECRET_PREVIOUS`, or the
    /// session was refreshed: the response carries a re-minted cookie.
    pub reissue: Option<String>,
    /// The hub's `Set-Cookie` lines from a login the worker made for a
    /// refreshed identity; the response carries them.
    pub hub_cookies: Vec<String>,
}

/// A session whose groups and auth_state are still in the session store;
/// only `store::SessionStore::complete` turns it into a `Session`.
#[derive(Clone, Debug, PartialEq)]
pub struct PartialSession {
    pub(super) session: Session,
}

impl PartialSession {
    pub fn sid(&self) -> &str {
        &self.session.sid
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum Loaded {
    Complete(Session),
    NeedsExtras(PartialSession),
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
    #[error("the session's user is now in BLOCKED_USERS")]
    Blocked,
    #[error("the session was ended: back-channel logout, a failed refresh, or a logout")]
    Revoked,
    #[error("the session could not be refreshed: {0}")]
    RefreshFailed(String),
}

pub fn cookie_name(https: bool) -> String {
    cookies::cookie_name(cookies::SESSION_BASE, https)
}

/// A `Set-Cookie` value starting a session for `identity`. When
/// `extras_overflow(identity)`, groups and auth_state are left out and the
/// caller stores them in KV.
#[allow(clippy::too_many_arguments)]
pub fn mint(
    cfg: &SessionSettings,
    identity: &Identity,
    sid: &str,
    provider: Option<&ProviderRefs>,
    origin: &str,
    https: bool,
    ctx: Context,
    now: UnixTime,
) -> String {
    mint_inner(
        cfg,
        identity,
        sid,
        provider,
        origin,
        https,
        ctx,
        now,
        extras_overflow(identity),
    )
}

#[allow(clippy::too_many_arguments)]
fn mint_inner(
    cfg: &SessionSettings,
    identity: &Identity,
    sid: &str,
    provider: Option<&ProviderRefs>,
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
        prv: provider.cloned(),
    };
    let token = signing::mint(&cfg.secret, Purpose::Session, &claims, now, cfg.max_age);
    cookies::set_cookie(&cookie_name(https), &token, cfg.max_age, https, ctx)
}

/// The newest valid session cookie of the request.
pub fn verify(
    cfg: &SessionSettings,
    headers: &Headers,
    origin: &str,
    https: bool,
    now: UnixTime,
) -> Result<Loaded, SessionError> {
    let jar = cookies::parse_request_cookies(headers);
    let name = cookie_name(https);
    let mut best: Option<signing::Verified<SessionClaims>> = None;
    let mut last_error = SessionError::Missing;
    for value in cookies::find_all(&jar, &name) {
        let v = match signing::verify::<SessionClaims>(
            value,
            Purpose::Session,
            &cfg.secret,
            cfg.previous.as_ref(),
            now,
        ) {
            Ok(v) => v,
            Err(e) => {
                last_error = e.into();
                continue;
            }
        };
        if v.claims.iss != ISSUER || v.claims.aud != origin {
            last_error = SessionError::WrongAudience;
            continue;
        }
        // Newest wins. `iat` has one-second resolution; for two logins in the
        // same second, browsers send cookies of one path oldest first
        // (RFC 6265 5.4), so the later one in the header is the newer.
        if best.as_ref().is_none_or(|b| v.issued_at >= b.issued_at) {
            best = Some(v);
        }
    }
    let v = best.ok_or(last_error)?;
    let c = v.claims;
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
        let cfg = SessionSettings {
            max_age: remaining,
            ..cfg.clone()
        };
        let ctx = identity.method.cookie_context();
        mint_inner(
            &cfg,
            &identity,
            &c.sid,
            c.prv.as_ref(),
            origin,
            https,
            ctx,
            now,
            c.ext,
        )
    });
    let session = Session {
        identity,
        sid: c.sid,
        issued_at: v.issued_at,
        expires_at: v.expires_at,
        provider: c.prv,
        reissue,
        hub_cookies: Vec::new(),
    };
    Ok(if c.ext {
        Loaded::NeedsExtras(PartialSession { session })
    } else {
        Loaded::Complete(session)
    })
}

/// Deletions for every variant of the session cookie a login may have set
/// (top level `SameSite=Lax`; in an LMS frame `SameSite=None; Partitioned`),
/// each with the attributes it was set with.
pub fn clear_all(https: bool) -> Vec<String> {
    let name = cookie_name(https);
    vec![
        cookies::expire_cookie(&name, https, Context::TopLevel),
        cookies::expire_cookie(&name, https, Context::Embedded),
    ]
}

/// Deletions of the variants a new session in `ctx` does not overwrite.
pub fn clear_other_variants(https: bool, ctx: Context) -> Vec<String> {
    let other = match ctx {
        Context::TopLevel => Context::Embedded,
        Context::Embedded => Context::TopLevel,
    };
    vec![cookies::expire_cookie(&cookie_name(https), https, other)]
}
