//! `/hub/logout`: every variant of the session cookie and the hub's login
//! cookies expired, the hub's own logout called so it ends its session
//! (its `Set-Cookie` headers pass, its redirect to `/hub/login` never does:
//! with `AUTO_LOGIN` and a live IdP session it would sign the user back in),
//! then `OAUTH_LOGOUT_REDIRECT_URL`, the provider's `end_session_endpoint`
//! (RP-Initiated Logout, for an OpenID Connect session), or the signed-out
//! page. `backchannel` is the provider's side: a logout token revokes the
//! sessions it names, everywhere.

use super::session::unrefreshed;
use super::App;
use crate::cookies;
use crate::http::{Failure, IncomingRequest, RequestCtx, Response};
use crate::log;
use crate::oauth::backchannel::BackchannelError;
use crate::oauth::logout::{end_session_url, provider_logout_url};
use crate::oauth::routes as oauth_routes;
use crate::pages;
use crate::ports::Io;
use crate::proxy;
use crate::router::{provider_name, Route};
use crate::session::revocation::Revoke;
use crate::session::{self, start::hub_cookie_expiry, Session};

pub async fn logout(app: &App, req: &IncomingRequest, ctx: &RequestCtx, io: &impl Io) -> Response {
    let cfg = &app.config;
    let current = unrefreshed(app, req, ctx, io).await.ok();
    let mut then = match cfg
        .oauth
        .as_ref()
        .and_then(|o| o.logout_redirect_url.as_ref())
    {
        Some(u) => Response::redirect(u.as_str()),
        None => match at_provider(app, current.as_ref(), ctx, io).await {
            Some(url) => Response::redirect(&url),
            None => pages::signed_out(&ctx.path_for("hub/login")),
        },
    };
    match io
        .fetch_hub(proxy::hub_logout_request(&cfg.proxy, req, ctx))
        .await
    {
        Ok(resp) => {
            // Once as the hub sent them, once for an LMS frame's partition:
            // the worker cannot tell where this logout was clicked.
            for c in resp.headers.get_all("set-cookie") {
                then.headers.push("Set-Cookie", c.to_string());
                then.headers.push("Set-Cookie", cookies::frame_safe(c));
            }
        }
        Err(e) => io.log(&log::line(
            "hub_logout_failed",
            &[("detail", &e.to_string())],
        )),
    }
    for c in session::cookie::clear_all(ctx.https) {
        then.headers.push("Set-Cookie", c);
    }
    // A copy of the cookie kept elsewhere ends too.
    if let (Some(s), true) = (&current, cfg.state_kv) {
        app.revocations
            .record(io, &Revoke::session(&s.sid), cfg.session.max_age)
            .await;
    }
    let users: Vec<&str> = current
        .iter()
        .map(|s| s.identity.username.as_str())
        .collect();
    let jar = cookies::parse_request_cookies(&req.headers);
    for c in hub_cookie_expiry(ctx, &jar, &users) {
        then.headers.push("Set-Cookie", c);
    }
    then
}

/// The provider's logout for an OpenID Connect session, when the provider
/// has an `end_session_endpoint` and the operator did not turn it off.
async fn at_provider(
    app: &App,
    s: Option<&Session>,
    ctx: &RequestCtx,
    io: &impl Io,
) -> Option<String> {
    let refs = s.and_then(|s| s.provider.as_ref())?;
    let s = s?;
    let c = app.oauth_for(&refs.p).ok()?;
    if !c.settings.logout_at_provider {
        return None;
    }
    let back = format!("{}{}", ctx.origin, ctx.path_for("_hubgate/signed_out"));
    let endpoints = c.discovery.endpoints(c.settings, c.cache, io).await.ok()?;
    let Some(endpoint) = endpoints.end_session else {
        // Auth0 without its OIDC logout: `/v2/logout?client_id&returnTo`.
        let fallback = c.settings.logout_fallback.as_deref()?;
        return provider_logout_url(fallback, &c.settings.client_id, &back);
    };
    let hint = match app.config.state_kv {
        true => app.sessions.id_token(io, &s.sid).await,
        false => None,
    };
    end_session_url(&endpoint, &c.settings.client_id, hint.as_deref(), &back)
}

/// `POST /_hubgate/oidc/backchannel_logout`: the provider's logout token
/// (OIDC Back-Channel Logout 1.0, 2.5); 200 once the sessions it names are
/// revoked, 400 for a token that does not validate (2.8).
pub async fn backchannel(
    app: &App,
    req: &IncomingRequest,
    io: &impl Io,
) -> Result<Response, Box<dyn Failure>> {
    let not_configured = || -> Box<dyn Failure> { Box::new(BackchannelError::NotConfigured) };
    if !app.config.state_kv {
        return Err(not_configured());
    }
    let name = provider_name(
        &app.config.base_path,
        req.url.path(),
        Route::BackchannelLogout,
    );
    let c = app.oauth_for(name).map_err(|_| not_configured())?;
    let revoke = oauth_routes::backchannel_logout(&c, req, io)
        .await
        .map_err(|e| -> Box<dyn Failure> { Box::new(e) })?;
    app.revocations
        .record(io, &revoke, app.config.session.max_age)
        .await;
    io.log(&log::line(
        "backchannel_logout",
        &[(
            "revoked",
            match revoke {
                Revoke::ProviderSession(_) => "provider session",
                Revoke::UserBefore(_) => "every session of the user",
                Revoke::Session(_) => "one session",
            },
        )],
    ));
    let mut r = Response::new(200);
    r.headers.push("Cache-Control", "no-store");
    Ok(r)
}
