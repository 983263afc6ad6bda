//! Refresh, as the session sees it: the refresh token kept sealed at login,
//! and a session that is due refreshed by the first request that finds it
//! so (`oauth::refresh` does the provider's part). Success re-mints the
//! cookie (same `sid`, same expiry) and, when the identity changed, logs the
//! user in at the hub again with a fresh assertion, so the hub's user
//! (groups, admin, auth_state) follows. Failure ends the session
//! everywhere: its `sid` is revoked.

use super::session::hub_login;
use super::App;
use crate::http::{IncomingRequest, RequestCtx};
use crate::identity::from_claims;
use crate::identity::LoginMethod;
use crate::log;
use crate::oauth::refresh::{self as oauth_refresh, needs_refresh, next_refresh_at};
use crate::oauth::routes::ProviderLogin;
use crate::ports::{Io, Use};
use crate::session::cookie::{self, extras_overflow};
use crate::session::revocation::{ProviderRefs, Revoke};
use crate::session::{seal, Session, SessionError, SessionSettings};
use crate::url_policy;

/// Requests that find a refresh under way keep the current session this
/// long; after that, a refresh that never landed ends it.
const IN_FLIGHT_GRACE: u64 = 60;

/// At login: seal and store the refresh token, and plan the first refresh.
/// Without a refresh token (or without KV) the session is not refreshed.
pub(super) async fn keep_refresh_token(
    app: &App,
    sid: &str,
    p: &ProviderLogin,
    io: &impl Io,
) -> ProviderRefs {
    let mut refs = p.refs.clone();
    let (Some(rt), Some(oauth), true) = (
        &p.refresh_token,
        app.config.oauth_named(&p.refs.p),
        app.config.state_kv,
    ) else {
        return refs;
    };
    if store(app, sid, rt, app.config.session.max_age, io).await {
        refs.rat = Some(next_refresh_at(io.now(), oauth.refresh_age, p.expires_in).0);
    }
    refs
}

async fn store(
    app: &App,
    sid: &str,
    rt: &crate::secret::RefreshToken,
    ttl: u64,
    io: &impl Io,
) -> bool {
    let mut nonce = [0u8; seal::NONCE_BYTES];
    io.fill_random(&mut nonce);
    match seal::seal(&app.config.session.secret, sid, rt, nonce) {
        Some(sealed) => {
            app.sessions
                .save_sealed_refresh(io, sid, &sealed, ttl)
                .await;
            true
        }
        None => false,
    }
}

pub(super) async fn refresh_if_due(
    app: &App,
    req: &IncomingRequest,
    ctx: &RequestCtx,
    s: Session,
    io: &impl Io,
) -> Result<Session, SessionError> {
    let Some(refs) = s.provider.clone() else {
        return Ok(s);
    };
    let now = io.now();
    if s.identity.method != LoginMethod::Oauth || !needs_refresh(refs.rat, now) {
        return Ok(s);
    }
    let due = refs.rat.unwrap_or_default();
    // One refresh per session and plan: the first request that finds it due.
    let key = format!("refresh:{}:{due}", Revoke::session(&s.sid).digest());
    match io.use_once(&key, 300).await {
        Ok(Use::First) => {}
        Ok(Use::Replay) if now.0 < due.saturating_add(IN_FLIGHT_GRACE) => return Ok(s),
        Ok(Use::Replay) => return Err(end(app, &s, "an earlier refresh never landed", io).await),
        Err(e) => return Err(end(app, &s, &e.to_string(), io).await),
    }
    match refreshed(app, req, ctx, s.clone(), &refs, io).await {
        Ok(s) => Ok(s),
        Err(why) => Err(end(app, &s, &why, io).await),
    }
}

async fn refreshed(
    app: &App,
    req: &IncomingRequest,
    ctx: &RequestCtx,
    mut s: Session,
    refs: &ProviderRefs,
    io: &impl Io,
) -> Result<Session, String> {
    let cfg = &app.config;
    let c = app.oauth_for(&refs.p).map_err(|e| e.to_string())?;
    let sealed = app
        .sessions
        .sealed_refresh(io, &s.sid)
        .await
        .ok_or("no stored refresh token")?;
    let rt = seal::open(
        &cfg.session.secret,
        cfg.session.previous.as_ref(),
        &s.sid,
        &sealed,
    )
    .ok_or("the stored refresh token does not open")?;
    let r = oauth_refresh::refresh(&c, refs, &rt, io)
        .await
        .map_err(|e| e.to_string())?;
    let identity = from_claims::build(&cfg.identity, r.asserted)
        .map_err(|e| e.to_string())?
        .identity;
    if identity.username != s.identity.username {
        return Err(format!(
            "the refresh names {:?}, the session {:?}",
            identity.username, s.identity.username
        ));
    }
    let now = io.now();
    let remaining = s.expires_at.since(now).max(1);
    let rt = r.refresh_token.unwrap_or(rt);
    if !store(app, &s.sid, &rt, remaining, io).await {
        return Err("the refresh token could not be sealed".into());
    }
    let mut refs = refs.clone();
    refs.rat = Some(next_refresh_at(now, c.settings.refresh_age, r.expires_in).0);
    // Rotation must not extend a session: the cookie keeps its expiry.
    let keep_expiry = SessionSettings {
        max_age: remaining,
        ..cfg.session.clone()
    };
    s.reissue = Some(cookie::mint(
        &keep_expiry,
        &identity,
        &s.sid,
        Some(&refs),
        &ctx.origin,
        ctx.https,
        identity.method.cookie_context(),
        now,
    ));
    if extras_overflow(&identity) {
        app.sessions.save(io, &s.sid, &identity, remaining).await;
    }
    if identity != s.identity {
        let next = url_policy::next_or_home(
            Some(&format!(
                "{}{}",
                req.url.path(),
                req.url.query().map(|q| format!("?{q}")).unwrap_or_default()
            )),
            &ctx.base_path,
        )
        .unwrap_or_else(|_| ctx.path_for("hub/"));
        s.hub_cookies = hub_login(app, req, ctx, &identity, &next, io)
            .await
            .map_err(|e| e.to_string())?;
    }
    io.log(&log::line(
        "session_refreshed",
        &[
            ("user", &identity.username),
            ("changed", &(identity != s.identity).to_string()),
        ],
    ));
    s.identity = identity;
    s.provider = Some(refs);
    Ok(s)
}

/// A refresh that failed: the session is revoked everywhere.
async fn end(app: &App, s: &Session, why: &str, io: &impl Io) -> SessionError {
    app.revocations
        .record(io, &Revoke::session(&s.sid), app.config.session.max_age)
        .await;
    io.log(&log::line(
        "refresh_failed",
        &[("user", &s.identity.username), ("detail", why)],
    ));
    SessionError::RefreshFailed(why.to_string())
}
