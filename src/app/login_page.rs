//! `/hub/login` without a session: the enabled methods, or straight to the
//! only one with `AUTO_LOGIN`.

use crate::config::Config;
use crate::http::{IncomingRequest, RequestCtx, Response};
use crate::pages;
use crate::url_policy;

pub fn login_page(cfg: &Config, req: &IncomingRequest, ctx: &RequestCtx) -> Response {
    let next = req
        .query_param("next")
        .filter(|n| url_policy::safe_path(n).is_some());
    let choices: Vec<(String, String)> = cfg
        .oauth_providers()
        .map(|o| {
            let start = ctx.path_for(&o.path("hub/oauth_login"));
            let href = match &next {
                Some(n) => url_policy::with_next(&start, n),
                None => start,
            };
            let label = o
                .login_service
                .clone()
                .unwrap_or_else(|| cfg.login_service.clone());
            (label, href)
        })
        .collect();
    match choices.as_slice() {
        // AUTO_LOGIN only when there is nothing to choose.
        [(_, href)] if cfg.auto_login => Response::redirect(href),
        _ => pages::login(
            &choices
                .iter()
                .map(|(label, href)| pages::LoginChoice { label, href })
                .collect::<Vec<_>>(),
            cfg.lti.is_some(),
        ),
    }
}

/// A request without a session: a browser navigation goes to the login
/// page with `next`; anything else gets 401 JSON.
pub fn unauthenticated(req: &IncomingRequest, ctx: &RequestCtx, correlation_id: &str) -> Response {
    let login = ctx.path_for("hub/login");
    if is_navigation(req) {
        let mut next = req.url.path().to_string();
        if let Some(q) = req.url.query() {
            next.push('?');
            next.push_str(q);
        }
        return Response::redirect(&url_policy::with_next(&login, &next));
    }
    Response::json(
        401,
        &serde_json::json!({"status": 401, "error": "Not signed in", "login_url": login, "correlation_id": correlation_id}),
    )
}

fn is_navigation(req: &IncomingRequest) -> bool {
    if req.method != crate::http::Method::Get {
        return false;
    }
    match req.headers.get("sec-fetch-mode") {
        Some(mode) => mode == "navigate",
        None => req
            .headers
            .get("accept")
            .is_some_and(|a| a.contains("text/html")),
    }
}
