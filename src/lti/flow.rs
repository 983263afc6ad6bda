//! The LTI routes end to end. I/O goes through `Io`; decisions are in the
//! sibling modules.
//!
//! | route | method | answer |
//! |---|---|---|
//! | `/hub/lti13/oauth_login` | GET, POST | redirect to the platform's authorize URL, flow cookie |
//! | `/hub/lti13/oauth_callback` | POST | session + redirect (resource link) or the picker (deep linking) |
//! | `/hub/lti13/deep_link` | POST | auto-post of the signed deep linking response |
//! | `/hub/lti13/config` | GET | tool configuration JSON |
//! | `/hub/lti13/jwks` | GET | the tool's public keys |

use super::deep_linking::{self, DeepLinkContext};
use super::launch::{self, Expectations, Message, UntrustedLaunch};
use super::login::{self, FlowSecrets, Initiation};
use super::{form_pairs, param, platform, tool_config, tool_keys, LtiError};
use crate::access;
use crate::app::{fail, start_session, App, RequestCtx};
use crate::config::{AccessRules, LtiConfig};
use crate::cookies::Context;
use crate::flow_state::{self, FlowKind, FLOW_TTL};
use crate::http::{IncomingRequest, Method, Response};
use crate::identity::{Identity, LoginMethod};
use crate::io::{random_token, Io, KvNamespace};
use crate::router::Route;
use crate::session;

/// Answer one LTI route; errors become the generic page with their status.
pub async fn handle(
    app: &App,
    route: Route,
    req: &IncomingRequest,
    ctx: &RequestCtx,
    io: &impl Io,
) -> Response {
    let (kind, result) = match route {
        Route::LtiLogin => ("lti_login", login(app, req, ctx, io).await),
        Route::LtiLaunch => ("lti_launch", launch(app, req, ctx, io).await),
        Route::LtiDeepLink => ("lti_deep_link", deep_link(app, req, ctx, io).await),
        Route::LtiConfig => ("lti_config", config(app, req)),
        Route::LtiJwks => ("lti_jwks", jwks(app, req)),
        _ => ("lti", Err(LtiError::NotConfigured)),
    };
    match result {
        Ok(r) => r,
        Err(e) => {
            let mut r = fail(io, req, e.status(), kind, &e.to_string());
            if e == LtiError::MethodNotAllowed {
                let allow = if route == Route::LtiLogin {
                    "GET, POST"
                } else if matches!(route, Route::LtiLaunch | Route::LtiDeepLink) {
                    "POST"
                } else {
                    "GET"
                };
                r.headers.push("Allow", allow);
            }
            r
        }
    }
}

fn lti_config(app: &App) -> Result<&LtiConfig, LtiError> {
    app.config.lti.as_ref().ok_or(LtiError::NotConfigured)
}

fn body_pairs(req: &IncomingRequest) -> Vec<(String, String)> {
    req.body.as_deref().map(form_pairs).unwrap_or_default()
}

type FormPairs = Vec<(String, String)>;

/// The LTI configuration and the form of a route that only takes POST.
fn posted_form<'a>(
    app: &'a App,
    req: &IncomingRequest,
) -> Result<(&'a LtiConfig, FormPairs), LtiError> {
    let lti = lti_config(app)?;
    if req.method != Method::Post {
        return Err(LtiError::MethodNotAllowed);
    }
    Ok((lti, body_pairs(req)))
}

fn launch_url(app: &App, ctx: &RequestCtx) -> String {
    format!(
        "{}{}hub/lti13/oauth_callback",
        ctx.origin, app.config.base_path
    )
}

pub async fn login(
    app: &App,
    req: &IncomingRequest,
    ctx: &RequestCtx,
    io: &impl Io,
) -> Result<Response, LtiError> {
    let lti = lti_config(app)?;
    let pairs = match req.method {
        Method::Get | Method::Head => req.url.query_pairs().into_owned().collect(),
        Method::Post => body_pairs(req),
        Method::Other => return Err(LtiError::MethodNotAllowed),
    };
    let init = Initiation::parse(&pairs)?;
    let secrets = FlowSecrets {
        state: random_token(io, 32),
        nonce: random_token(io, 32),
    };
    let (url, flow) = login::start(lti, &init, &launch_url(app, ctx), secrets)?;
    let cookie = flow_state::mint(
        &app.config.session,
        &flow,
        ctx.https,
        Context::Embedded,
        io.now(),
    );
    Ok(Response::redirect(&url).with_cookie(cookie))
}

pub async fn launch(
    app: &App,
    req: &IncomingRequest,
    ctx: &RequestCtx,
    io: &impl Io,
) -> Result<Response, LtiError> {
    let cfg = &app.config;
    let (lti, pairs) = posted_form(app, req)?;
    let now = io.now();
    // IMS Security Framework 5.1.1.3 / RFC 6749 10.12: the state is checked
    // before anything else.
    let flow = flow_state::take(
        &cfg.session,
        FlowKind::Lti,
        param(&pairs, "state"),
        &req.headers,
        ctx.https,
        now,
    )?;
    let clear_flow = flow_state::clear(FlowKind::Lti, &flow.state, ctx.https, Context::Embedded);
    if let Some(error) = param(&pairs, "error") {
        return Err(LtiError::PlatformError(error.to_string()));
    }
    let id_token = param(&pairs, "id_token").ok_or(LtiError::MissingParameter("id_token"))?;
    let reg = flow
        .platform
        .as_deref()
        .and_then(|k| platform::by_key(lti, k))
        .ok_or(LtiError::RegistrationGone)?;
    let untrusted = UntrustedLaunch(id_token);
    let keys = app
        .keys
        .get(
            io,
            reg.platform.jwks_url.as_str(),
            untrusted.kid().as_deref(),
        )
        .await?;
    let key = crate::io::one_time_key("lti-nonce", &flow.nonce);
    let nonce_seen = io.kv_get(KvNamespace::Nonces, &key).await.is_some();
    let verified = untrusted.verify(
        &keys,
        &Expectations {
            registration: reg,
            nonce: &flow.nonce,
            nonce_seen,
            now,
            leeway: lti.leeway,
        },
    )?;
    // The nonce is good for one launch. It only ever matches the flow cookie,
    // which expires after FLOW_TTL, so the record needs to live no longer.
    io.kv_put(KvNamespace::Nonces, &key, "1", FLOW_TTL).await;

    let raw = verified
        .username(&lti.username_key)
        .ok_or_else(|| LtiError::NoUsername {
            key: lti.username_key.clone(),
        })?;
    let username = access::normalise_username(&raw, &cfg.access);
    let groups = verified.groups();
    // The registered platform vouches for its users (as with ltiauthenticator):
    // every launch is allowed unless BLOCKED_USERS names the user.
    // ADMIN_USERS / ADMIN_GROUPS and the admin roles make admins.
    let rules = AccessRules {
        allow_all: true,
        ..cfg.access.clone()
    };
    let admin = access::decide(&rules, &username, &groups)? || verified.is_admin(&lti.admin_roles);
    let claims = serde_json::Value::Object(verified.claims.clone());
    let identity = Identity {
        username,
        email: verified.email(),
        groups,
        admin,
        method: LoginMethod::Lti,
        auth_state: crate::assertion::select_auth_state(&claims, &cfg.auth_state_claims),
    };
    io.log(&crate::log::line(
        "lti_launch",
        &[
            ("user", &identity.username),
            ("issuer", &verified.issuer),
            ("client_id", &verified.client_id),
            ("deployment_id", &verified.deployment_id),
            (
                "message_type",
                match verified.message {
                    Message::ResourceLink { .. } => "LtiResourceLinkRequest",
                    Message::DeepLinking(_) => "LtiDeepLinkingRequest",
                },
            ),
        ],
    ));
    match &verified.message {
        Message::ResourceLink { .. } => {
            let next = launch::landing(&verified.target_link_uri, &ctx.origin, &cfg.base_path);
            let mut resp =
                start_session(app, req, ctx, &identity, &next, Context::Embedded, io).await;
            resp.headers.push("Set-Cookie", clear_flow);
            Ok(resp)
        }
        Message::DeepLinking(settings) => {
            if lti.tool_key.is_none() {
                return Err(LtiError::NoToolKey);
            }
            let dl = DeepLinkContext::new(
                &verified.issuer,
                &verified.client_id,
                &verified.deployment_id,
                settings,
                &identity.username,
            );
            let action = format!("{}hub/lti13/deep_link", cfg.base_path);
            let title = settings
                .title
                .clone()
                .unwrap_or_else(|| lti.tool_name.clone());
            let mut resp = deep_linking::picker_page(
                &action,
                &dl.seal(&cfg.session, now),
                &format!("{}hub/", cfg.base_path),
                &title,
            );
            // The instructor's session binds the picker's answer to them.
            let sid = random_token(io, 16);
            resp.headers.push(
                "Set-Cookie",
                session::mint(
                    &cfg.session,
                    &identity,
                    &sid,
                    &ctx.origin,
                    ctx.https,
                    Context::Embedded,
                    now,
                ),
            );
            resp.headers.push("Set-Cookie", clear_flow);
            Ok(resp)
        }
    }
}

pub async fn deep_link(
    app: &App,
    req: &IncomingRequest,
    ctx: &RequestCtx,
    io: &impl Io,
) -> Result<Response, LtiError> {
    let cfg = &app.config;
    let (lti, pairs) = posted_form(app, req)?;
    let key = lti.tool_key.as_ref().ok_or(LtiError::NoToolKey)?;
    let now = io.now();
    let sealed = param(&pairs, "context").ok_or(LtiError::MissingParameter("context"))?;
    let dl = DeepLinkContext::open(&cfg.session, sealed, now)?;
    let s = session::verify(&cfg.session, &req.headers, &ctx.origin, ctx.https, now)
        .map_err(|_| LtiError::DeepLinkSession)?;
    if s.identity.method != LoginMethod::Lti || s.identity.username != dl.user {
        return Err(LtiError::DeepLinkSession);
    }
    let item = deep_linking::content_item(
        &ctx.origin,
        &cfg.base_path,
        param(&pairs, "path"),
        param(&pairs, "title"),
    )?;
    let jwt = deep_linking::response_jwt(key, &dl, vec![item], &random_token(io, 16), now);
    io.log(&crate::log::line(
        "lti_deep_link_response",
        &[
            ("user", &dl.user),
            ("issuer", &dl.issuer),
            ("client_id", &dl.client_id),
            ("kid", &key.kid),
        ],
    ));
    Ok(deep_linking::auto_post(&dl.return_url, &jwt))
}

fn get_only(req: &IncomingRequest) -> Result<(), LtiError> {
    match req.method {
        Method::Get | Method::Head => Ok(()),
        _ => Err(LtiError::MethodNotAllowed),
    }
}

pub fn config(app: &App, req: &IncomingRequest) -> Result<Response, LtiError> {
    let lti = lti_config(app)?;
    get_only(req)?;
    let origin = tool_config::public_origin(req);
    let mut r = Response::json(
        200,
        &tool_config::build(lti, &origin, &app.config.base_path),
    );
    r.headers.set("Cache-Control", "public, max-age=300");
    Ok(r)
}

pub fn jwks(app: &App, req: &IncomingRequest) -> Result<Response, LtiError> {
    let lti = lti_config(app)?;
    get_only(req)?;
    let mut r = Response::json(200, &tool_keys::jwks(lti.tool_key.as_ref()));
    r.headers.set("Cache-Control", "public, max-age=300");
    Ok(r)
}
