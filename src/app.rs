//! One request through the worker: route, authenticate, decide. Everything
//! is decided here and in the modules it calls; the edge only performs the
//! `Outcome`.

use crate::assertion::AssertionCache;
use crate::config::{self, Bindings, Config, ConfigError};
use crate::cookies::{self, Context};
use crate::http::{IncomingRequest, Method, Response};
use crate::identity::Identity;
use crate::io::{random_token, Io};
use crate::jwks::KeyCache;
use crate::oauth::{self, discovery::DiscoveryCache};
use crate::pages;
use crate::proxy::{self, ProxyPlan};
use crate::router::{route, Route};
use crate::session;
use crate::session_store::SessionStore;

/// Configuration plus the isolate's caches. Built once per isolate.
pub struct App {
    pub config: Config,
    pub keys: KeyCache,
    pub discovery: DiscoveryCache,
    pub assertions: AssertionCache,
    pub sessions: SessionStore,
}

pub enum Outcome {
    Respond(Response),
    Proxy(ProxyPlan),
    /// Call the hub's logout so it clears its cookies, then answer with
    /// `then`, adding the hub's `Set-Cookie` headers (never its redirect).
    Logout {
        hub: ProxyPlan,
        then: Response,
    },
}

impl App {
    pub fn from_bindings(env: &impl Bindings) -> Result<App, Vec<ConfigError>> {
        Ok(App {
            config: config::parse(env)?,
            keys: KeyCache::default(),
            discovery: DiscoveryCache::default(),
            assertions: AssertionCache::default(),
            sessions: SessionStore::default(),
        })
    }
}

/// Facts about the request every handler needs.
pub struct RequestCtx {
    pub origin: String,
    pub https: bool,
}

impl RequestCtx {
    pub fn of(req: &IncomingRequest) -> Self {
        RequestCtx {
            origin: req.origin(),
            https: req.is_https(),
        }
    }
}

/// Log the detail as one JSON line; give the client a generic page.
pub fn fail(
    io: &impl Io,
    req: &IncomingRequest,
    status: u16,
    kind: &str,
    detail: &str,
) -> Response {
    let id = random_token(io, 9);
    io.log(&crate::log::line(
        "error",
        &[
            ("kind", kind),
            ("status", &status.to_string()),
            ("detail", detail),
            ("correlation_id", &id),
            ("path", req.url.path()),
        ],
    ));
    pages::error(status, &id, &req.headers, None)
}

/// The answer of a worker whose configuration does not parse.
pub fn misconfigured(io: &impl Io, req: &IncomingRequest, errors: &[ConfigError]) -> Response {
    let list: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
    fail(io, req, 500, "config", &list.join("; "))
}

pub async fn handle(app: &App, req: IncomingRequest, io: &impl Io) -> Outcome {
    let cfg = &app.config;
    let ctx = RequestCtx::of(&req);
    let r = route(&cfg.base_path, req.url.path());
    match r {
        Route::Health => Outcome::Respond(Response::json(
            200,
            &serde_json::json!({"status": "ok", "config": cfg.summary()}),
        )),
        Route::OAuthLogin => {
            Outcome::Respond(match oauth::flow::login(app, &req, &ctx, io).await {
                Ok(r) => r,
                Err(e) => fail(io, &req, e.status(), "oauth_login", &e.to_string()),
            })
        }
        Route::OAuthCallback => {
            Outcome::Respond(match oauth::flow::callback(app, &req, &ctx, io).await {
                Ok(r) => r,
                Err(e) => {
                    let mut r = fail(io, &req, e.status(), "oauth_callback", &e.to_string());
                    // A failed flow is over: its cookie goes too.
                    if let Some(state) = req.query_param("state").filter(|s| !s.is_empty()) {
                        r.headers.push(
                            "Set-Cookie",
                            crate::flow_state::clear(
                                crate::flow_state::FlowKind::Oauth,
                                &state,
                                ctx.https,
                                Context::TopLevel,
                            ),
                        );
                    }
                    r
                }
            })
        }
        Route::Logout => logout(app, &req, &ctx, io).await,
        Route::AssertionJwks => Outcome::Respond(assertion_jwks(cfg)),
        Route::LtiLogin
        | Route::LtiLaunch
        | Route::LtiDeepLink
        | Route::LtiConfig
        | Route::LtiJwks => {
            Outcome::Respond(crate::lti::flow::handle(app, r, &req, &ctx, io).await)
        }
        Route::Login | Route::Proxy => authenticated(app, req, &ctx, r, io).await,
    }
}

fn login_href(cfg: &Config) -> String {
    format!("{}hub/login", cfg.base_path)
}

/// The request's session, with its KV-held extras loaded when it has some.
pub async fn current_session(
    app: &App,
    req: &IncomingRequest,
    ctx: &RequestCtx,
    io: &impl Io,
) -> Result<session::Session, session::SessionError> {
    let cfg = &app.config;
    let mut s = session::verify(&cfg.session, &req.headers, &ctx.origin, ctx.https, io.now())?;
    if s.external && !app.sessions.load(io, &s.sid, &mut s.identity).await {
        return Err(session::SessionError::ExtrasMissing);
    }
    Ok(s)
}

async fn authenticated(
    app: &App,
    req: IncomingRequest,
    ctx: &RequestCtx,
    r: Route,
    io: &impl Io,
) -> Outcome {
    let cfg = &app.config;
    match current_session(app, &req, ctx, io).await {
        Ok(s) => {
            let mut plan = proxy::plan(cfg, &req, Some(&s.identity));
            attach_assertion(app, &mut plan, &s.sid, &s.identity, ctx, io);
            plan.set_cookies.extend(s.reissue);
            Outcome::Proxy(plan)
        }
        Err(e) => {
            if !matches!(e, session::SessionError::Missing) {
                io.log(&crate::log::line(
                    "session_rejected",
                    &[("detail", &e.to_string()), ("path", req.url.path())],
                ));
            }
            if r == Route::Login {
                return Outcome::Respond(login_page(cfg, &req));
            }
            if cfg.pass_authorization && req.headers.get("authorization").is_some() {
                // Hub API tokens: the hub checks them itself.
                return Outcome::Proxy(proxy::plan(cfg, &req, None));
            }
            Outcome::Respond(unauthenticated(cfg, &req, io))
        }
    }
}

fn is_navigation(req: &IncomingRequest) -> bool {
    if req.method != Method::Get {
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

fn unauthenticated(cfg: &Config, req: &IncomingRequest, io: &impl Io) -> Response {
    if is_navigation(req) {
        let mut next = req.url.path().to_string();
        if let Some(q) = req.url.query() {
            next.push('?');
            next.push_str(q);
        }
        let enc: String = url::form_urlencoded::byte_serialize(next.as_bytes()).collect();
        return Response::redirect(&format!("{}?next={enc}", login_href(cfg)));
    }
    let id = random_token(io, 9);
    Response::json(
        401,
        &serde_json::json!({"status": 401, "error": "Not signed in", "login_url": login_href(cfg), "correlation_id": id}),
    )
}

fn login_page(cfg: &Config, req: &IncomingRequest) -> Response {
    let next = req
        .query_param("next")
        .filter(|n| crate::redirect::safe_path(n).is_some());
    let mut href = format!("{}hub/oauth_login", cfg.base_path);
    if let Some(n) = &next {
        href.push_str("?next=");
        href.extend(url::form_urlencoded::byte_serialize(n.as_bytes()));
    }
    match &cfg.oauth {
        Some(_) if cfg.auto_login => Response::redirect(&href),
        Some(_) => pages::login(
            &[pages::LoginChoice {
                label: &cfg.login_service,
                href: &href,
            }],
            false,
        ),
        None => pages::login(&[], true),
    }
}

async fn logout(app: &App, req: &IncomingRequest, ctx: &RequestCtx, io: &impl Io) -> Outcome {
    let cfg = &app.config;
    let current = current_session(app, req, ctx, io).await.ok();
    let mut then = match cfg
        .oauth
        .as_ref()
        .and_then(|o| o.logout_redirect_url.as_ref())
    {
        Some(u) => Response::redirect(u.as_str()),
        None => pages::signed_out(&login_href(cfg)),
    };
    then.headers.push("Set-Cookie", session::clear(ctx.https));
    let users: Vec<&str> = current
        .iter()
        .map(|s| s.identity.username.as_str())
        .collect();
    for c in hub_cookie_expiry(cfg, req, &users) {
        then.headers.push("Set-Cookie", c);
    }
    let mut hub_req = req.clone();
    hub_req.method = Method::Get;
    hub_req.body = None;
    let mut hub = proxy::plan(cfg, &hub_req, current.as_ref().map(|s| &s.identity));
    if let Some(s) = &current {
        attach_assertion(app, &mut hub, &s.sid, &s.identity, ctx, io);
    }
    hub.url = {
        let mut u = cfg.hub_origin.clone();
        u.set_path(&format!("{}hub/logout", cfg.base_path));
        u.to_string()
    };
    Outcome::Logout { hub, then }
}

/// `X-Hubgate-Assertion` for the hub, reused from isolate memory while warm.
fn attach_assertion(
    app: &App,
    plan: &mut ProxyPlan,
    sid: &str,
    identity: &Identity,
    ctx: &RequestCtx,
    io: &impl Io,
) {
    let Some(keys) = &app.config.assertion else {
        return;
    };
    let audience = app.config.hub_origin.origin().ascii_serialization();
    let token = app.assertions.get_or_mint(
        &keys.current,
        sid,
        identity,
        &ctx.origin,
        &audience,
        io.now(),
    );
    plan.headers.push(proxy::ASSERTION_HEADER, token);
}

fn assertion_jwks(cfg: &Config) -> Response {
    let body = match &cfg.assertion {
        Some(keys) => keys.jwks(),
        None => serde_json::json!({ "keys": [] }),
    };
    let mut r = Response::json(200, &body);
    r.headers.set("Cache-Control", "public, max-age=300");
    r
}

/// Expire the hub's login cookies so the identity the worker vouches for
/// next is the one the hub logs in (DESIGN.md, "Identity handed to the hub").
/// A single-user server's cookie (`jupyterhub-user-<name>`, `Path=/user/<name>/`)
/// never reaches the worker's own paths, so it is expired by name for the
/// `users` the worker knows about (the previous session's, the new one's)
/// as well as for any the request does carry.
pub fn hub_cookie_expiry(cfg: &Config, req: &IncomingRequest, users: &[&str]) -> Vec<String> {
    let base = &cfg.base_path;
    let mut out = vec![
        cookies::expire_hub_cookie("jupyterhub-hub-login", &format!("{base}hub/")),
        cookies::expire_hub_cookie("jupyterhub-session-id", base),
    ];
    // JupyterHub's escaped_name: the username quoted for a URL path.
    let escape = |u: &str| -> String {
        url::form_urlencoded::byte_serialize(u.as_bytes())
            .collect::<String>()
            .replace('+', "%20")
    };
    let mut names: Vec<String> = users.iter().map(|u| escape(u)).collect();
    for (name, _) in cookies::parse_request_cookies(&req.headers) {
        if let Some(user) = name.strip_prefix("jupyterhub-user-") {
            names.push(user.to_string());
        }
    }
    names.sort();
    names.dedup();
    for user in names {
        out.push(cookies::expire_hub_cookie(
            &format!("jupyterhub-user-{user}"),
            &format!("{base}user/{user}/"),
        ));
    }
    out
}

/// Header values the hub will receive: no control characters (CR/LF would
/// make every proxied request fail, or worse, split headers).
fn header_safe(v: &str) -> bool {
    !v.chars().any(char::is_control)
}

/// After a verified login or launch: session cookie, hub cookies expired,
/// and through the hub's `/hub/login` so the hub logs in this identity.
pub async fn start_session(
    app: &App,
    req: &IncomingRequest,
    ctx: &RequestCtx,
    identity: &Identity,
    next: &str,
    cookie_ctx: Context,
    io: &impl Io,
) -> Response {
    let cfg = &app.config;
    if !header_safe(&identity.username) {
        return fail(
            io,
            req,
            400,
            "username",
            "username contains control characters",
        );
    }
    let mut identity = identity.clone();
    if identity.email.as_deref().is_some_and(|e| !header_safe(e)) {
        io.log(&crate::log::line(
            "claim_dropped",
            &[("claim", "email"), ("reason", "control characters")],
        ));
        identity.email = None;
    }
    let before = identity.groups.len();
    identity
        .groups
        .retain(|g| header_safe(g) && !g.contains(','));
    if identity.groups.len() != before {
        io.log(&crate::log::line(
            "claim_dropped",
            &[
                ("claim", "groups"),
                ("reason", "control characters or commas"),
            ],
        ));
    }
    let identity = &identity;
    let previous = current_session(app, req, ctx, io).await.ok();
    let sid = random_token(io, 16);
    if session::extras_overflow(identity) {
        app.sessions
            .save(io, &sid, identity, cfg.session.max_age)
            .await;
    }
    let enc: String = url::form_urlencoded::byte_serialize(next.as_bytes()).collect();
    let mut resp = Response::redirect(&format!("{}?next={enc}", login_href(cfg)));
    resp.headers.push(
        "Set-Cookie",
        session::mint(
            &cfg.session,
            identity,
            &sid,
            &ctx.origin,
            ctx.https,
            cookie_ctx,
            io.now(),
        ),
    );
    let mut users = vec![identity.username.as_str()];
    users.extend(previous.as_ref().map(|s| s.identity.username.as_str()));
    for c in hub_cookie_expiry(cfg, req, &users) {
        resp.headers.push("Set-Cookie", c);
    }
    io.log(&crate::log::line(
        "login",
        &[
            ("user", &identity.username),
            ("method", identity.method.as_str()),
            ("admin", &identity.admin.to_string()),
            ("sid", &sid[..8]),
        ],
    ));
    resp
}
