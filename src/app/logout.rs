//! `/hub/logout`: every variant of the session cookie and the hub's login
//! cookies expired, the hub's own logout called so it ends its session
//! (its `Set-Cookie` headers pass, its redirect to `/hub/login` never does:
//! with `AUTO_LOGIN` and a live IdP session it would sign the user back in),
//! then the signed-out page or `OAUTH_LOGOUT_REDIRECT_URL`.

use super::session::current;
use super::App;
use crate::cookies;
use crate::http::{IncomingRequest, RequestCtx, Response};
use crate::log;
use crate::pages;
use crate::ports::Io;
use crate::proxy;
use crate::session::{self, start::hub_cookie_expiry};

pub async fn logout(app: &App, req: &IncomingRequest, ctx: &RequestCtx, io: &impl Io) -> Response {
    let cfg = &app.config;
    let current = current(app, req, ctx, io).await.ok();
    let mut then = match cfg
        .oauth
        .as_ref()
        .and_then(|o| o.logout_redirect_url.as_ref())
    {
        Some(u) => Response::redirect(u.as_str()),
        None => pages::signed_out(&ctx.path_for("hub/login")),
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
