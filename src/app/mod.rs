//! One request through the worker: the one dispatch over `Route`. Flows
//! return what they established; only this module starts sessions
//! (`session::start`) and renders failures (`respond::fail`). The edge only
//! performs the `Outcome`.

pub mod login_page;
pub mod logout;
mod refresh;
pub mod respond;
pub mod service_auth;
pub mod session;

use crate::bindings::{Bindings, ConfigError};
use crate::cache::key_sets::KeyCache;
use crate::config::{self, Config};
use crate::cookies::Context;
use crate::http::UnixTime;
use crate::http::{Failure, IncomingRequest, RequestCtx, Response};
use crate::identity::LoginMethod;
use crate::log;
use crate::lti::routes::{self as lti_routes, Launched, LtiCtx};
use crate::lti::services::platform_token::TokenCache;
use crate::lti::services::routes::{self as lti_services, AgsOp, RosterCache, ServicesCtx};
use crate::lti::{LtiError, LtiSettings};
use crate::oauth::metadata::Discovery;
use crate::oauth::routes::{self as oauth_routes, OAuthCtx};
use crate::oauth::OAuthError;
use crate::ports::{random_token, Io};
use crate::proxy::{self, Passage, ProxyPlan};
use crate::router::{provider_name, route, Route};
use crate::session::flow_cookie::{self, FlowKind};
use crate::session::revocation::Revocations;
use crate::session::store::SessionStore;
use crate::session::SessionError;
use crate::url_policy;
use respond::{fail, EdgeFailure};
use session::Then;
use std::cell::RefCell;
use std::rc::Rc;

/// Configuration plus the isolate's caches. Built once per isolate.
pub struct App {
    pub config: Config,
    pub keys: KeyCache,
    pub discovery: Discovery,
    pub sessions: SessionStore,
    /// Provider sessions ended by Back-Channel Logout, as this isolate knows them.
    pub revocations: Revocations,
    /// Platform tokens and course rosters (LTI Advantage), per isolate.
    pub platform_tokens: TokenCache,
    pub rosters: RosterCache,
    /// LTI settings with the dynamically registered platforms, and until when.
    registered: RefCell<Option<(Rc<LtiSettings>, UnixTime)>>,
}

/// How long an isolate trusts its copy of the registered platforms.
const REGISTERED_TTL: u64 = 60;

/// The LTI settings a request works with: the bindings', or those plus the
/// platforms registered through dynamic registration.
enum LtiRef<'a> {
    Bound(&'a LtiSettings),
    Merged(Rc<LtiSettings>),
}

impl std::ops::Deref for LtiRef<'_> {
    type Target = LtiSettings;
    fn deref(&self) -> &LtiSettings {
        match self {
            LtiRef::Bound(s) => s,
            LtiRef::Merged(s) => s,
        }
    }
}

pub enum Outcome {
    Respond(Response),
    Proxy(ProxyPlan),
}

impl App {
    pub fn from_bindings(env: &impl Bindings) -> Result<App, Vec<ConfigError>> {
        Ok(App {
            config: config::parse(env)?,
            keys: KeyCache::default(),
            discovery: Discovery::default(),
            sessions: SessionStore::default(),
            revocations: Revocations::default(),
            platform_tokens: TokenCache::default(),
            rosters: RosterCache::default(),
            registered: RefCell::default(),
        })
    }

    /// The provider a route or a session names (`""`: the top-level one).
    fn oauth_for(&self, name: &str) -> Result<OAuthCtx<'_>, OAuthError> {
        let c = &self.config;
        Ok(OAuthCtx {
            settings: c.oauth_named(name).ok_or(OAuthError::NotConfigured)?,
            session: &c.session,
            cache: &c.cache,
            keys: &self.keys,
            discovery: &self.discovery,
            groups_claim: &c.identity.rules.groups_claim,
            auth_state_claims: &c.identity.auth_state_claims,
        })
    }

    fn lti(&self) -> Result<LtiCtx<'_>, LtiError> {
        self.lti_with(self.config.lti.as_ref())
    }

    /// The LTI settings, with registered platforms when dynamic
    /// registration is on (read from KV at most once a minute per isolate).
    async fn lti_settings(&self, io: &impl Io) -> Option<LtiRef<'_>> {
        let bound = self.config.lti.as_ref()?;
        if !bound.dynamic_registration || !self.config.state_kv {
            return Some(LtiRef::Bound(bound));
        }
        let now = io.now();
        if let Some((s, until)) = self.registered.borrow().as_ref() {
            if *until > now {
                return Some(LtiRef::Merged(s.clone()));
            }
        }
        let merged = Rc::new(bound.with_registered(lti_routes::registered_platforms(io).await));
        *self.registered.borrow_mut() = Some((merged.clone(), now.plus(REGISTERED_TTL)));
        Some(LtiRef::Merged(merged))
    }

    fn lti_with<'a>(&'a self, settings: Option<&'a LtiSettings>) -> Result<LtiCtx<'a>, LtiError> {
        let c = &self.config;
        let settings = settings.ok_or(LtiError::NotConfigured)?;
        Ok(LtiCtx {
            settings,
            services: ServicesCtx {
                settings,
                tokens: &self.platform_tokens,
                rosters: &self.rosters,
                state_kv: c.state_kv,
            },
            session: &c.session,
            cache: &c.cache,
            keys: &self.keys,
            auth_state_claims: &c.identity.auth_state_claims,
        })
    }
}

/// The answer of a worker whose configuration does not parse.
pub fn misconfigured(io: &impl Io, req: &IncomingRequest, errors: &[ConfigError]) -> Response {
    let list: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
    let f = EdgeFailure {
        status: 500,
        kind: "config",
        detail: list.join("; "),
    };
    fail(io, &req.headers, req.url.path(), &f)
}

fn failed(io: &impl Io, req: &IncomingRequest, f: &dyn Failure) -> Response {
    fail(io, &req.headers, req.url.path(), f)
}

/// A failed flow is over: its cookie goes too.
fn clear_flow(
    mut r: Response,
    kind: FlowKind,
    state: Option<String>,
    ctx: &RequestCtx,
) -> Response {
    if let Some(state) = state.filter(|s| !s.is_empty()) {
        let cookie_ctx = match kind {
            FlowKind::Oauth => Context::TopLevel,
            FlowKind::Lti => Context::Embedded,
        };
        r.headers.push(
            "Set-Cookie",
            flow_cookie::clear(kind, &state, ctx.https, cookie_ctx),
        );
    }
    r
}

pub async fn handle(app: &App, req: IncomingRequest, io: &impl Io) -> Outcome {
    let cfg = &app.config;
    // One scheme everywhere: decided here, once, before any URL or cookie.
    let req = if cfg.trust_forwarded_proto {
        req.with_forwarded_proto()
    } else {
        req
    };
    let ctx = RequestCtx::new(&req, &cfg.base_path);
    let r = route(&cfg.base_path, req.url.path());
    if !r.allows(req.method) {
        let f = EdgeFailure {
            status: 405,
            kind: "method",
            detail: format!("{r:?} does not take this method"),
        };
        let mut resp = failed(io, &req, &f);
        resp.headers.push("Allow", r.allow_header());
        return Outcome::Respond(resp);
    }
    let respond = |res: Result<Response, Box<dyn Failure>>| match res {
        Ok(r) => r,
        Err(f) => failed(io, &req, f.as_ref()),
    };
    Outcome::Respond(match r {
        Route::Health => Response::json(200, &serde_json::json!({"status": "ok"})),
        Route::AssertionJwks => assertion_jwks(cfg),
        Route::OAuthLogin => respond(
            match app.oauth_for(provider_name(&cfg.base_path, req.url.path(), r)) {
                Ok(c) => oauth_routes::login(&c, &req, &ctx, io).await.map_err(boxed),
                Err(e) => Err(boxed(e)),
            },
        ),
        Route::OAuthCallback => {
            let res = oauth_callback(app, &req, &ctx, io).await;
            let state = req.query_param("state");
            match res {
                Ok(r) => clear_flow(r, FlowKind::Oauth, state, &ctx),
                Err(f) => clear_flow(failed(io, &req, f.as_ref()), FlowKind::Oauth, state, &ctx),
            }
        }
        Route::Logout => logout::logout(app, &req, &ctx, io).await,
        Route::BackchannelLogout => match logout::backchannel(app, &req, io).await {
            Ok(r) => r,
            // A server-to-server caller: JSON whatever it accepts (2.8).
            Err(f) => {
                let json = crate::http::Headers(vec![("Accept".into(), "application/json".into())]);
                fail(io, &json, req.url.path(), f.as_ref())
            }
        },
        Route::SignedOut => crate::pages::signed_out(&ctx.path_for("hub/login")),
        Route::LtiLogin => {
            let s = app.lti_settings(io).await;
            respond(match app.lti_with(s.as_deref()) {
                Ok(c) => lti_routes::login(&c, &req, &ctx, io).await.map_err(boxed),
                Err(e) => Err(boxed(e)),
            })
        }
        Route::LtiRegister => respond(lti_register(app, &req, &ctx, io).await),
        Route::LtiLaunch => {
            let res = lti_launch(app, &req, &ctx, io).await;
            let state = lti_routes::launch_state(&req);
            match res {
                Ok(LaunchAnswer::FlowGoesOn(r)) => r,
                Ok(LaunchAnswer::Done(r)) => clear_flow(r, FlowKind::Lti, state, &ctx),
                Err(f) => clear_flow(failed(io, &req, f.as_ref()), FlowKind::Lti, state, &ctx),
            }
        }
        Route::LtiDeepLink => {
            let s = session::current(app, &req, &ctx, io).await.ok();
            respond(match app.lti() {
                Ok(c) => lti_routes::deep_link(&c, &req, &ctx, s.as_ref(), io)
                    .await
                    .map_err(boxed),
                Err(e) => Err(boxed(e)),
            })
        }
        Route::LtiConfig => respond(
            app.lti()
                .map(|c| lti_routes::config(&c, &req, &ctx))
                .map_err(boxed),
        ),
        Route::LtiJwks => respond(app.lti().map(|c| lti_routes::jwks(&c)).map_err(boxed)),
        Route::LtiAgsLineItems | Route::LtiAgsScores => {
            respond(lti_ags(app, &req, &ctx, r, io).await)
        }
        Route::LtiFlowCheck => respond(
            app.lti()
                .map(|c| lti_routes::flow_check(&c, &req, &ctx, io.now()))
                .map_err(boxed),
        ),
        Route::Login => login(app, &req, &ctx, io).await,
        Route::Proxy => return proxied(app, req, &ctx, io).await,
    })
}

fn boxed<E: Failure + 'static>(e: E) -> Box<dyn Failure> {
    Box::new(e)
}

async fn oauth_callback(
    app: &App,
    req: &IncomingRequest,
    ctx: &RequestCtx,
    io: &impl Io,
) -> Result<Response, Box<dyn Failure>> {
    let name = provider_name(&app.config.base_path, req.url.path(), Route::OAuthCallback);
    let c = app.oauth_for(name).map_err(boxed)?;
    let logged_in = oauth_routes::callback(&c, req, ctx, io)
        .await
        .map_err(boxed)?;
    let next = logged_in.next;
    session::start(
        app,
        req,
        ctx,
        logged_in.asserted,
        logged_in.provider.as_ref(),
        Context::TopLevel,
        |_| Then::HubAt(next),
        io,
    )
    .await
    .map_err(boxed)
}

async fn lti_launch(
    app: &App,
    req: &IncomingRequest,
    ctx: &RequestCtx,
    io: &impl Io,
) -> Result<LaunchAnswer, Box<dyn Failure>> {
    let s = app.lti_settings(io).await;
    let c = app.lti_with(s.as_deref()).map_err(boxed)?;
    let done = match lti_routes::launch(&c, req, ctx, io).await.map_err(boxed)? {
        Launched::Session {
            asserted,
            next,
            course,
        } => {
            let mut user = None;
            let started = session::start(
                app,
                req,
                ctx,
                asserted,
                None,
                Context::Embedded,
                |id| {
                    user = Some(id.username.clone());
                    Then::HubAt(next)
                },
                io,
            )
            .await
            .map_err(boxed);
            if let (Ok(_), Some(course), Some(user)) = (&started, course, user) {
                lti_services::remember_course(
                    &c.services,
                    &course.course,
                    &course.record,
                    &user,
                    &course.sub,
                    io,
                )
                .await;
            }
            started
        }
        Launched::Picker { asserted, picker } => {
            // The instructor's session binds the picker's answer to them.
            let page = |id: &crate::identity::Identity| {
                Then::Page(lti_routes::picker_page(&c, ctx, &picker, &id.username, io))
            };
            session::start(app, req, ctx, asserted, None, Context::Embedded, page, io)
                .await
                .map_err(boxed)
        }
        Launched::CheckInBrowser(page) => return Ok(LaunchAnswer::FlowGoesOn(page)),
    };
    done.map(LaunchAnswer::Done)
}

/// `/_hubgate/lti/ags/…`: an authenticated hub service's call to the
/// platform's Assignment and Grade Services.
async fn lti_ags(
    app: &App,
    req: &IncomingRequest,
    ctx: &RequestCtx,
    r: Route,
    io: &impl Io,
) -> Result<Response, Box<dyn Failure>> {
    let s = app.lti_settings(io).await;
    let c = app.lti_with(s.as_deref()).map_err(boxed)?;
    let who = service_auth::caller(c.settings, &app.config.proxy, req, ctx, io)
        .await
        .map_err(boxed)?;
    let op = match (r, req.method) {
        (Route::LtiAgsScores, _) => AgsOp::PostScore,
        (_, crate::http::Method::Post) => AgsOp::CreateLineItem,
        _ => AgsOp::ListLineItems,
    };
    let query: Vec<(String, String)> = req.url.query_pairs().into_owned().collect();
    lti_services::ags_call(&c.services, op, &query, req.body.as_deref(), &who, io)
        .await
        .map_err(boxed)
}

/// `/hub/lti13/register`: LTI Dynamic Registration, for the registration
/// secret (`?secret=`, in the URL the administrator pastes) or a hub admin's
/// session.
async fn lti_register(
    app: &App,
    req: &IncomingRequest,
    ctx: &RequestCtx,
    io: &impl Io,
) -> Result<Response, Box<dyn Failure>> {
    use crate::lti::dynamic_registration::RegistrationError;
    use subtle::ConstantTimeEq;
    let s = app
        .lti_settings(io)
        .await
        .ok_or_else(|| boxed(LtiError::NotConfigured))?;
    if !s.dynamic_registration {
        return Err(boxed(RegistrationError::Off));
    }
    let by_secret = match (&s.registration_secret, req.query_param("secret")) {
        (Some(want), Some(got)) => bool::from(want.expose().as_bytes().ct_eq(got.as_bytes())),
        _ => false,
    };
    // An admin of the hub's own identity provider; not an LTI session: an
    // instructor is an admin by role, and must not add platforms.
    let by_admin = !by_secret
        && session::current(app, req, ctx, io)
            .await
            .is_ok_and(|sess| sess.identity.admin && sess.identity.method != LoginMethod::Lti);
    if !by_secret && !by_admin {
        return Err(boxed(RegistrationError::NotAllowed));
    }
    let page = lti_routes::register(&s, app.config.state_kv, req, ctx, io)
        .await
        .map_err(boxed)?;
    *app.registered.borrow_mut() = None;
    Ok(page)
}

/// A launch's answer, and whether its flow is over (its cookie goes).
enum LaunchAnswer {
    Done(Response),
    /// The Platform Storage check page: the launch is posted again.
    FlowGoesOn(Response),
}

/// `/hub/login`: with a session, the worker logs the user in at the hub
/// itself; without one, the login page.
async fn login(app: &App, req: &IncomingRequest, ctx: &RequestCtx, io: &impl Io) -> Response {
    match session::current(app, req, ctx, io).await {
        Ok(s) => {
            let next = match url_policy::next_or_home(
                req.query_param("next").as_deref(),
                &ctx.base_path,
            ) {
                Ok(n) => n,
                Err(e) => {
                    let f = EdgeFailure {
                        status: 400,
                        kind: "login",
                        detail: e.to_string(),
                    };
                    return failed(io, req, &f);
                }
            };
            match session::handoff(app, req, ctx, &s, &next, io).await {
                Ok(r) => r,
                Err(e) => failed(io, req, &e),
            }
        }
        Err(e) => {
            log_rejected(io, req, &e);
            login_page::login_page(&app.config, req, ctx)
        }
    }
}

fn log_rejected(io: &impl Io, req: &IncomingRequest, e: &SessionError) {
    if !matches!(e, SessionError::Missing) {
        io.log(&log::line(
            "session_rejected",
            &[("detail", &e.to_string()), ("path", req.url.path())],
        ));
    }
}

/// Everything else: to the hub with a session (no identity attached: the
/// hub trusts its own cookies), or with a hub API token and no cookies.
async fn proxied(app: &App, req: IncomingRequest, ctx: &RequestCtx, io: &impl Io) -> Outcome {
    let cfg = &app.config;
    match session::current(app, &req, ctx, io).await {
        Ok(s) => {
            let mut plan = proxy::plan(&cfg.proxy, &req, Passage::Session);
            if s.identity.method.cookie_context() == Context::Embedded {
                plan.frame_ancestors = Some(
                    app.lti_settings(io)
                        .await
                        .map(|l| l.frame_ancestors.clone())
                        .unwrap_or_default(),
                );
            }
            plan.set_cookies.extend(s.reissue);
            plan.set_cookies.extend(s.hub_cookies);
            Outcome::Proxy(plan)
        }
        Err(e) => {
            log_rejected(io, &req, &e);
            if cfg.pass_authorization && req.headers.get("authorization").is_some() {
                return Outcome::Proxy(proxy::plan(&cfg.proxy, &req, Passage::ApiToken));
            }
            let mut r = login_page::unauthenticated(&req, ctx, &random_token(io, 9));
            // A session the provider ended is gone from the browser too.
            if matches!(e, SessionError::Revoked | SessionError::RefreshFailed(_)) {
                for c in crate::session::cookie::clear_all(ctx.https) {
                    r.headers.push("Set-Cookie", c);
                }
            }
            Outcome::Respond(r)
        }
    }
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
