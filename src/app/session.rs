//! The current session (verify → extras → block list), and the one place a
//! session starts: every login and launch goes through `start`, so every
//! one gets the same identity pipeline, the same cookies, and the same
//! login at the hub.

use super::App;
use crate::assertion::{self, Audience};
use crate::cookies::{self, Context};
use crate::http::{Failure, IncomingRequest, RequestCtx, Response};
use crate::identity::from_claims::{self, Asserted, IdentityError};
use crate::identity::Identity;
use crate::log;
use crate::oauth::routes::ProviderLogin;
use crate::ports::{random_token, Io};
use crate::proxy;
use crate::session::start::{self, Start};
use crate::session::{self, Loaded, Session, SessionError};

/// The request's complete session, if it has a valid one (refreshed when
/// it is due).
pub async fn current(
    app: &App,
    req: &IncomingRequest,
    ctx: &RequestCtx,
    io: &impl Io,
) -> Result<Session, SessionError> {
    let s = unrefreshed(app, req, ctx, io).await?;
    // Due for a refresh: the provider answers again for the user, and the
    // rules apply again.
    super::refresh::refresh_if_due(app, req, ctx, s, io).await
}

/// The session as the cookie and the stores say, without a refresh (a new
/// login only needs to know whose session it replaces; a logout, which
/// session ends).
pub(super) async fn unrefreshed(
    app: &App,
    req: &IncomingRequest,
    ctx: &RequestCtx,
    io: &impl Io,
) -> Result<Session, SessionError> {
    let cfg = &app.config;
    let s = match session::cookie::verify(
        &cfg.session,
        &req.headers,
        &ctx.origin,
        ctx.https,
        io.now(),
    )? {
        Loaded::Complete(s) => s,
        Loaded::NeedsExtras(p) => app
            .sessions
            .complete(io, p)
            .await
            .ok_or(SessionError::ExtrasMissing)?,
    };
    // Ended elsewhere: the identity provider (Back-Channel Logout), a failed
    // refresh, or a logout from another copy of this cookie.
    if cfg.state_kv
        && app
            .revocations
            .is_revoked(
                io,
                &s.sid,
                s.provider.as_ref(),
                s.issued_at,
                cfg.session.recheck,
            )
            .await
    {
        return Err(SessionError::Revoked);
    }
    // BLOCKED_USERS applies to running sessions too, not only to new logins.
    if cfg
        .identity
        .rules
        .blocked_users
        .contains(&s.identity.username)
    {
        return Err(SessionError::Blocked);
    }
    Ok(s)
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Identity(#[from] IdentityError),
    #[error("session extras do not fit the cookie and KV NONCES is not bound")]
    NoSessionStore,
    #[error("the hub refused the login with status {0}")]
    HubRefused(u16),
    #[error("the hub's login could not be reached: {0}")]
    HubUnreachable(String),
}

impl Failure for StartError {
    fn status(&self) -> u16 {
        match self {
            StartError::Identity(IdentityError::Access(_)) => 403,
            StartError::Identity(_) => 400,
            StartError::NoSessionStore => 500,
            StartError::HubRefused(403) => 403,
            StartError::HubRefused(_) | StartError::HubUnreachable(_) => 502,
        }
    }
    fn kind(&self) -> &'static str {
        "session_start"
    }
}

/// After a session starts: log in at the hub and go to `next` (a launch or
/// a login), or answer with a page of the flow's own (the deep linking picker).
pub enum Then {
    HubAt(String),
    Page(Response),
}

/// Start a session for what a verified login or launch asserted.
#[allow(clippy::too_many_arguments)]
pub async fn start(
    app: &App,
    req: &IncomingRequest,
    ctx: &RequestCtx,
    asserted: Asserted,
    provider: Option<&ProviderLogin>,
    cookie_ctx: Context,
    then: impl FnOnce(&Identity) -> Then,
    io: &impl Io,
) -> Result<Response, StartError> {
    let cfg = &app.config;
    let built = from_claims::build(&cfg.identity, asserted)?;
    for claim in &built.dropped {
        io.log(&log::line(
            "claim_dropped",
            &[("claim", claim), ("reason", "control characters or commas")],
        ));
    }
    let identity = built.identity;
    let previous = unrefreshed(app, req, ctx, io).await.ok();
    let sid = random_token(io, 16);
    let refs = match provider {
        Some(p) => Some(super::refresh::keep_refresh_token(app, &sid, p, io).await),
        None => None,
    };
    let jar = cookies::parse_request_cookies(&req.headers);
    let started = start::start(
        &cfg.session,
        ctx,
        Start {
            identity: &identity,
            previous_user: previous.as_ref().map(|s| s.identity.username.as_str()),
            request_cookies: &jar,
            sid: &sid,
            provider: refs.as_ref(),
            cookie_ctx,
            now: io.now(),
        },
    );
    let mut resp = match then(&identity) {
        Then::HubAt(next) => {
            let hub_cookies = for_context(
                hub_login(app, req, ctx, &identity, &next, io).await?,
                cookie_ctx,
            );
            let mut r = Response::redirect(&next);
            push_cookies(&mut r, started.set_cookies);
            push_cookies(&mut r, hub_cookies);
            r
        }
        Then::Page(mut r) => {
            push_cookies(&mut r, started.set_cookies);
            r
        }
    };
    if started.store_extras {
        if !cfg.state_kv {
            return Err(StartError::NoSessionStore);
        }
        app.sessions
            .save(io, &sid, &identity, cfg.session.max_age)
            .await;
    }
    if let (Some(id_token), true) = (provider.and_then(|p| p.id_token.as_ref()), cfg.state_kv) {
        app.sessions
            .save_id_token(io, &sid, id_token, cfg.session.max_age)
            .await;
    }
    io.log(&log::line(
        "login",
        &[
            ("user", &identity.username),
            ("method", identity.method.as_str()),
            ("admin", &identity.admin.to_string()),
            ("sid", sid.get(..8).unwrap_or(&sid)),
        ],
    ));
    resp.headers.push("Cache-Control", "no-store");
    Ok(resp)
}

/// The hub's `Set-Cookie` headers for a session in `ctx` (`framing`).
fn for_context(hub_cookies: Vec<String>, ctx: Context) -> Vec<String> {
    match ctx {
        Context::Embedded => hub_cookies.iter().map(|c| cookies::frame_safe(c)).collect(),
        Context::TopLevel => hub_cookies,
    }
}

fn push_cookies(r: &mut Response, cookies: Vec<String>) {
    for c in cookies {
        r.headers.push("Set-Cookie", c);
    }
}

/// `/hub/login` with a valid worker session (the hub's cookie expired, or
/// the hub restarted): the same login at the hub, no new session.
pub async fn handoff(
    app: &App,
    req: &IncomingRequest,
    ctx: &RequestCtx,
    s: &Session,
    next: &str,
    io: &impl Io,
) -> Result<Response, StartError> {
    let hub_cookies = for_context(
        hub_login(app, req, ctx, &s.identity, next, io).await?,
        s.identity.method.cookie_context(),
    );
    let mut r = Response::redirect(next);
    push_cookies(&mut r, s.reissue.iter().cloned().collect());
    push_cookies(&mut r, hub_cookies);
    Ok(r)
}

/// The worker's own subrequest to `{BASE_URL}hub/login` with the identity
/// attached; the hub's `Set-Cookie` headers, unmerged, on success.
pub(super) async fn hub_login(
    app: &App,
    req: &IncomingRequest,
    ctx: &RequestCtx,
    identity: &Identity,
    next: &str,
    io: &impl Io,
) -> Result<Vec<String>, StartError> {
    let cfg = &app.config;
    let login_path = ctx.path_for("hub/login");
    let token = cfg.assertion.as_ref().map(|keys| {
        let jti = random_token(io, 18);
        assertion::mint(
            &keys.current,
            identity,
            &Audience {
                issuer: &ctx.origin,
                hub: &cfg.proxy.hub_origin_str(),
                login_path: &login_path,
                jti: &jti,
            },
            io.now(),
        )
    });
    let call = proxy::hub_login_request(&cfg.proxy, req, ctx, identity, token.as_deref(), next);
    let resp = io
        .fetch_hub(call)
        .await
        .map_err(|e| StartError::HubUnreachable(e.to_string()))?;
    // The hub answers a login it accepted with a redirect to `next`.
    if !matches!(resp.status, 302 | 303) {
        return Err(StartError::HubRefused(resp.status));
    }
    Ok(resp
        .headers
        .get_all("set-cookie")
        .map(str::to_string)
        .collect())
}
