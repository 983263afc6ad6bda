//! The LTI routes' I/O. Decisions are in the sibling modules; a launch
//! returns what it established (`Launched`) and `app` alone starts the
//! session. Methods and form bodies are the router's (`router::Route`).
//!
//! | route | answer |
//! |---|---|
//! | `/hub/lti13/oauth_login` | redirect to the platform's authorize URL, flow cookie (in a frame or with `lti_storage_target`: the Platform Storage page) |
//! | `/hub/lti13/oauth_callback` | `Launched::Session` (resource link), `Launched::Picker` (deep linking) or `Launched::CheckInBrowser` (Platform Storage) |
//! | `/_hubgate/lti/flow_check` | 204 when this browser sent the flow cookie for `state`, else 404 |
//! | `/hub/lti13/deep_link` | auto-post of the signed deep linking response |
//! | `/hub/lti13/config` | tool configuration JSON |
//! | `/hub/lti13/jwks` | the tool's public keys |

use super::deep_linking::{self, DeepLinkContext};
use super::dynamic_registration::{self as dynreg, RegistrationError};
use super::launch::{self, Expectations, Message, UntrustedLaunch, VerifiedLaunch};
use super::login::{self, FlowSecrets, Initiation};
use super::registration::Platform;
use super::services::ags::{self, CourseRecord};
use super::services::nrps;
use super::services::routes::{self as services, ServicesCtx};
use super::settings::platform_from_json;
use super::storage::{self, StorageTarget};
use super::{form_pairs, param, registration, tool_config, tool_keys, LtiError, LtiSettings};
use crate::cache::key_sets::KeyCache;
use crate::cache::CacheSettings;
use crate::cookies::Context;
use crate::http::{IncomingRequest, Method, RequestCtx, Response, UnixTime};
use crate::identity::from_claims::{select_auth_state, Asserted, Vouch};
use crate::identity::LoginMethod;
use crate::log;
use crate::one_time::{self, Kind, OneTimeKey};
use crate::ports::{random_token, Io, KvNamespace};
use crate::session::flow_cookie::{self, Flow, FlowError, LtiFlow, FLOW_TTL};
use crate::session::{Session, SessionSettings};

/// What the LTI routes need, and nothing else.
pub struct LtiCtx<'a> {
    pub settings: &'a LtiSettings,
    pub services: ServicesCtx<'a>,
    pub session: &'a SessionSettings,
    pub cache: &'a CacheSettings,
    pub keys: &'a KeyCache,
    pub auth_state_claims: &'a [String],
}

/// What a verified launch established.
#[derive(Debug)]
pub enum Launched {
    /// A resource link: a session for `asserted`, then the hub at `next`.
    /// `course`: what the Assignment and Grade endpoint keeps of it, once
    /// the session knows the hub user.
    Session {
        asserted: Asserted,
        next: String,
        course: Option<CourseOfLaunch>,
    },
    /// Deep linking: a session for the instructor, answered with the picker.
    Picker {
        asserted: Asserted,
        picker: Box<DeepLinkPicker>,
    },
    /// No flow cookie came back, but the platform keeps storage for the
    /// tool: the page that reads the flow from it and posts the launch again.
    CheckInBrowser(Response),
}

/// A course with Assignment and Grade Services, and the launching user's `sub`.
#[derive(Debug)]
pub struct CourseOfLaunch {
    pub course: String,
    pub record: CourseRecord,
    pub sub: String,
}

/// The picker's inputs; `app` renders it once the session is known.
#[derive(Debug)]
pub struct DeepLinkPicker {
    pub context: DeepLinkContext,
    pub title: String,
}

fn form(req: &IncomingRequest) -> Vec<(String, String)> {
    req.body.as_deref().map(form_pairs).unwrap_or_default()
}

pub async fn login(
    c: &LtiCtx<'_>,
    req: &IncomingRequest,
    ctx: &RequestCtx,
    io: &impl Io,
) -> Result<Response, LtiError> {
    let pairs = match req.method {
        Method::Post => form(req),
        _ => req.url.query_pairs().into_owned().collect(),
    };
    let init = Initiation::parse(&pairs)?;
    let target = param(&pairs, "lti_storage_target")
        .map(StorageTarget::parse)
        .transpose()?;
    let secrets = FlowSecrets {
        state: random_token(io, 32),
        nonce: random_token(io, 32),
    };
    let launch_url = ctx.url_for("hub/lti13/oauth_callback");
    let (url, lti_flow) = login::start(c.settings, &init, &launch_url, secrets)?;
    let now = io.now();
    let flow = Flow::Lti(lti_flow.clone());
    let cookie = flow_cookie::mint(c.session, &flow, ctx.https, Context::Embedded, now);
    let framed = req.headers.get("sec-fetch-dest") == Some("iframe");
    if target.is_none() && !framed {
        return Ok(Response::redirect(&url).with_cookie(cookie));
    }
    // In the LMS's frame: the page that keeps the flow in platform storage,
    // or checks the cookie came back, or offers a new window.
    let platform_origin = url::Url::parse(&url)
        .map(|u| u.origin().ascii_serialization())
        .unwrap_or_default();
    let sealed = flow_cookie::seal(c.session, &flow, now);
    let check = format!(
        "{}?state={}",
        ctx.path_for("_hubgate/lti/flow_check"),
        url::form_urlencoded::byte_serialize(lti_flow.state.as_bytes()).collect::<String>()
    );
    let new_window = format!("{}?{}", ctx.url_for("hub/lti13/oauth_login"), init.query());
    let page = storage::initiation_page(&storage::InitiationPage {
        target: target.as_ref(),
        platform_origin: &platform_origin,
        authorize: &url,
        state_key: storage::state_key(&lti_flow.state),
        state_value: &sealed,
        nonce_key: storage::nonce_key(&lti_flow.nonce),
        nonce: &lti_flow.nonce,
        flow_check: check,
        new_window: &new_window,
        target_link_uri: &init.target_link_uri,
        frame_ancestors: &c.settings.frame_ancestors,
    });
    Ok(page.with_cookie(cookie))
}

/// `/_hubgate/lti/flow_check?state=`: whether this browser sent back the
/// flow cookie for `state` (the initiation page asks before leaving for the
/// platform). The flow is not consumed.
pub fn flow_check(
    c: &LtiCtx<'_>,
    req: &IncomingRequest,
    ctx: &RequestCtx,
    now: UnixTime,
) -> Response {
    let state = req.query_param("state");
    let found =
        flow_cookie::take_lti(c.session, state.as_deref(), &req.headers, ctx.https, now).is_ok();
    let mut r = Response::new(if found { 204 } else { 404 });
    r.headers.set("Cache-Control", "no-store");
    r
}

/// The state a launch form carries (to clear its flow cookie on failure).
pub fn launch_state(req: &IncomingRequest) -> Option<String> {
    param(&form(req), "state").map(str::to_string)
}

pub async fn launch(
    c: &LtiCtx<'_>,
    req: &IncomingRequest,
    ctx: &RequestCtx,
    io: &impl Io,
) -> Result<Launched, LtiError> {
    let lti = c.settings;
    let pairs = form(req);
    let now = io.now();
    // LTI Platform Storage: when the platform keeps storage for the tool,
    // the launch is first answered with the page that reads the flow back.
    if param(&pairs, storage::FLOW_FIELD).is_none() && param(&pairs, "lti_storage_target").is_some()
    {
        return Ok(Launched::CheckInBrowser(check_page(c, ctx, &pairs)?));
    }
    // IMS Security Framework 5.1.1.3 / RFC 6749 10.12: the state is checked
    // before anything else, against the flow this browser holds.
    let flow = browser_flow(c, req, ctx, &pairs, now)?;
    if let Some(error) = param(&pairs, "error") {
        return Err(LtiError::PlatformError(error.to_string()));
    }
    let id_token = param(&pairs, "id_token").ok_or(LtiError::MissingParameter("id_token"))?;
    let reg = registration::by_key(lti, &flow.registration).ok_or(LtiError::RegistrationGone)?;
    let untrusted = UntrustedLaunch(id_token);
    let keys = c
        .keys
        .get(
            io,
            c.cache,
            reg.platform.jwks_url.as_str(),
            untrusted.kid().as_deref(),
        )
        .await?;
    let verified = untrusted.verify(
        &keys,
        &Expectations {
            registration: reg,
            nonce: &flow.nonce,
            now,
            leeway: lti.leeway,
        },
    )?;
    // The nonce is good for one launch, checked and recorded in one step. It
    // only ever matches the flow cookie, which expires after FLOW_TTL.
    one_time::take(io, &OneTimeKey::new(Kind::LtiNonce, &flow.nonce), FLOW_TTL).await?;

    let mut asserted = asserted(c, &verified, reg.platform)?;
    asserted
        .groups
        .extend(roster_groups(c, &reg, &verified, io).await);
    let course = course_of(&reg, &verified);
    io.log(&log::line(
        "lti_launch",
        &[
            ("issuer", verified.issuer()),
            ("client_id", verified.client_id()),
            ("deployment_id", verified.deployment_id()),
            (
                "message_type",
                match verified.message() {
                    Message::ResourceLink { .. } => "LtiResourceLinkRequest",
                    Message::DeepLinking(_) => "LtiDeepLinkingRequest",
                },
            ),
        ],
    ));
    match verified.message() {
        Message::ResourceLink { .. } => Ok(Launched::Session {
            next: launch::landing(verified.target_link_uri(), &ctx.origin, &ctx.base_path),
            asserted,
            course,
        }),
        Message::DeepLinking(settings) => {
            if lti.tool_key.is_none() {
                return Err(LtiError::NoToolKey);
            }
            let context = DeepLinkContext::new(
                verified.issuer(),
                verified.client_id(),
                verified.deployment_id(),
                settings,
            );
            let title = settings
                .title
                .clone()
                .unwrap_or_else(|| lti.tool_name.clone());
            Ok(Launched::Picker {
                asserted,
                picker: Box::new(DeepLinkPicker { context, title }),
            })
        }
    }
}

/// Names and Roles: the user's roles in the course roster as course groups,
/// when the launch carries the service and the platform a token URL. A
/// roster that cannot be read costs the launch nothing but those groups.
async fn roster_groups(
    c: &LtiCtx<'_>,
    reg: &registration::Registration<'_>,
    v: &VerifiedLaunch,
    io: &impl Io,
) -> Vec<String> {
    let (Some(url), Some(context), Some(sub)) = (
        nrps::memberships_url(v.claims()),
        v.context_id(),
        v.subject(),
    ) else {
        return Vec::new();
    };
    if c.settings.roster_ttl == 0 || reg.platform.token_url.is_none() {
        return Vec::new();
    }
    let course_group = format!("lti:{}:{context}", reg.platform.name);
    match services::roster_groups(&c.services, reg, &url, &sub, &course_group, io).await {
        Ok(groups) => groups,
        Err(e) => {
            io.log(&log::line(
                "nrps_failed",
                &[
                    ("issuer", v.issuer()),
                    ("course", &course_group),
                    ("error", &e.to_string()),
                ],
            ));
            Vec::new()
        }
    }
}

fn course_of(reg: &registration::Registration<'_>, v: &VerifiedLaunch) -> Option<CourseOfLaunch> {
    reg.platform.token_url.as_ref()?;
    let record = ags::from_claims(v.claims(), &reg.key())?;
    Some(CourseOfLaunch {
        course: format!("{}:{}", reg.platform.name, v.context_id()?),
        record,
        sub: v.subject()?,
    })
}

/// The flow this browser holds for the launch's state: from its cookie,
/// from platform storage (posted back by the check page, same-origin), or
/// both, and then both must agree.
fn browser_flow(
    c: &LtiCtx<'_>,
    req: &IncomingRequest,
    ctx: &RequestCtx,
    pairs: &[(String, String)],
    now: UnixTime,
) -> Result<LtiFlow, LtiError> {
    let state = param(pairs, "state");
    let cookie = flow_cookie::take_lti(c.session, state, &req.headers, ctx.https, now);
    let Some(sealed) = param(pairs, storage::FLOW_FIELD) else {
        return Ok(cookie?);
    };
    if !storage::is_same_origin_post(&req.headers, &ctx.origin) {
        return Err(LtiError::StorageCrossOrigin);
    }
    let stored = flow_cookie::open_lti(c.session, sealed, state, now)?;
    match cookie {
        Err(FlowError::MissingCookie) => Ok(stored),
        Ok(f) if f == stored => Ok(stored),
        Ok(_) => Err(FlowError::StateMismatch.into()),
        Err(e) => Err(e.into()),
    }
}

/// The check page (first leg of a Platform Storage launch). Only a
/// registered platform's id_token gets one: its origin is the one the page
/// talks to.
fn check_page(
    c: &LtiCtx<'_>,
    ctx: &RequestCtx,
    pairs: &[(String, String)],
) -> Result<Response, LtiError> {
    let target = StorageTarget::parse(param(pairs, "lti_storage_target").unwrap_or_default())?;
    let state = param(pairs, "state").ok_or(FlowError::MissingState)?;
    if let Some(error) = param(pairs, "error") {
        return Err(LtiError::PlatformError(error.to_string()));
    }
    let id_token = param(pairs, "id_token").ok_or(LtiError::MissingParameter("id_token"))?;
    let iss = crate::jose::keys::unverified_string_claim(id_token, "iss")
        .ok_or(LtiError::MissingParameter("id_token"))?;
    let platform = c
        .settings
        .platforms
        .iter()
        .find(|p| p.issuer == iss)
        .ok_or(LtiError::UnknownIssuer(iss))?;
    let platform_origin = platform.authorize_url.origin().ascii_serialization();
    let nonce = UntrustedLaunch(id_token).unverified_nonce();
    let action = ctx.path_for("hub/lti13/oauth_callback");
    Ok(storage::check_page(&storage::CheckPage {
        target: &target,
        platform_origin: &platform_origin,
        state_key: storage::state_key(state),
        nonce_key: nonce.as_deref().map(storage::nonce_key),
        nonce: nonce.as_deref(),
        action: &action,
        id_token,
        state,
        frame_ancestors: &c.settings.frame_ancestors,
    }))
}

fn asserted(c: &LtiCtx<'_>, v: &VerifiedLaunch, p: &Platform) -> Result<Asserted, LtiError> {
    let platform = p.name.as_str();
    let lti = c.settings;
    let raw_username = v
        .username(&lti.username_key)
        .ok_or_else(|| LtiError::NoUsername {
            key: lti.username_key.clone(),
        })?;
    let claims = serde_json::Value::Object(v.claims().clone());
    Ok(Asserted {
        method: LoginMethod::Lti,
        vouch: Vouch::Platform {
            name: platform.to_string(),
            // A registered platform is trusted with its users, never with
            // the hub's administration: bind it to let its roles make admins.
            admin_by_role: v.is_admin(&lti.admin_roles) && !p.registered,
        },
        raw_username,
        email: v.email(),
        groups: v.groups(platform),
        auth_state: select_auth_state(&claims, c.auth_state_claims),
        allowed_by_provider: false,
    })
}

/// The picker page for `user`, whose session `app` just started.
pub fn picker_page(
    c: &LtiCtx<'_>,
    ctx: &RequestCtx,
    p: &DeepLinkPicker,
    user: &str,
    io: &impl Io,
) -> Response {
    let sealed = p.context.clone().for_user(user).seal(c.session, io.now());
    deep_linking::picker_page(
        &ctx.path_for("hub/lti13/deep_link"),
        &sealed,
        &ctx.path_for("hub/"),
        &p.title,
    )
}

/// The picker's answer, posted with the instructor's session.
pub async fn deep_link(
    c: &LtiCtx<'_>,
    req: &IncomingRequest,
    ctx: &RequestCtx,
    session: Option<&Session>,
    io: &impl Io,
) -> Result<Response, LtiError> {
    let key = c.settings.tool_key.as_ref().ok_or(LtiError::NoToolKey)?;
    let pairs = form(req);
    let now = io.now();
    let sealed = param(&pairs, "context").ok_or(LtiError::MissingParameter("context"))?;
    let dl = DeepLinkContext::open(c.session, sealed, now)?;
    let s = session.ok_or(LtiError::DeepLinkSession)?;
    if s.identity.method != LoginMethod::Lti || s.identity.username != dl.user {
        return Err(LtiError::DeepLinkSession);
    }
    let item = deep_linking::content_item(
        &ctx.origin,
        &ctx.base_path,
        param(&pairs, "path"),
        param(&pairs, "title"),
    )?;
    let jwt = deep_linking::response_jwt(key, &dl, vec![item], &random_token(io, 16), now);
    io.log(&log::line(
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

pub fn config(c: &LtiCtx<'_>, req: &IncomingRequest, ctx: &RequestCtx) -> Response {
    let origin = tool_config::public_origin(req);
    let mut r = Response::json(
        200,
        &tool_config::build(c.settings, &origin, &ctx.base_path),
    );
    r.headers.set("Cache-Control", "public, max-age=300");
    r
}

pub fn jwks(c: &LtiCtx<'_>) -> Response {
    let mut r = Response::json(200, &tool_keys::jwks(c.settings.tool_key.as_ref()));
    r.headers.set("Cache-Control", "public, max-age=300");
    r
}

/// Platforms registered through dynamic registration (KV `NONCES`); an
/// entry that no longer parses is logged and left out.
pub async fn registered_platforms(io: &impl Io) -> Vec<Platform> {
    let Some(raw) = io.kv_get(KvNamespace::State, dynreg::KV_KEY).await else {
        return Vec::new();
    };
    let entries: Vec<serde_json::Value> = serde_json::from_str(&raw).unwrap_or_default();
    entries
        .iter()
        .filter_map(|e| match platform_from_json(e) {
            Ok(mut p) => {
                p.registered = true;
                Some(p)
            }
            Err(reason) => {
                io.log(&log::line(
                    "lti_registration_unusable",
                    &[("reason", &reason)],
                ));
                None
            }
        })
        .collect()
}

/// `/hub/lti13/register` once the caller is allowed (see `app`).
pub async fn register(
    settings: &LtiSettings,
    state_kv: bool,
    req: &IncomingRequest,
    ctx: &RequestCtx,
    io: &impl Io,
) -> Result<Response, RegistrationError> {
    if !state_kv {
        return Err(RegistrationError::NoStore);
    }
    let config_url = req
        .query_param("openid_configuration")
        .ok_or(RegistrationError::Missing("openid_configuration"))?;
    let config_url = url::Url::parse(&config_url).map_err(|_| {
        RegistrationError::BadConfiguration("openid_configuration is not a URL".into())
    })?;
    let token = req.query_param("registration_token");
    let fetched = io
        .fetch(dynreg::configuration_request(
            &config_url,
            token.as_deref(),
        )?)
        .await
        .map_err(|e| RegistrationError::Unreachable(e.to_string()))?;
    let platform = dynreg::check_configuration(&fetched, &config_url)?;
    // The name is checked against the bindings and what KV holds now (an
    // isolate's copy may be a minute old).
    // What KV holds now, entry by entry: an entry that does not parse is kept
    // as it is (an operator's typo is theirs to fix, not ours to drop), and a
    // value that is no array at all stops the registration.
    let raw_entries: Vec<serde_json::Value> = match io.kv_get(KvNamespace::State, dynreg::KV_KEY).await {
        None => Vec::new(),
        Some(raw) => serde_json::from_str(&raw).map_err(|_| {
            RegistrationError::Conflict(format!(
                "the stored registrations (KV NONCES, key {}) are not a JSON array: fix or delete them first",
                dynreg::KV_KEY
            ))
        })?,
    };
    let stored: Vec<Platform> = raw_entries
        .iter()
        .filter_map(|e| platform_from_json(e).ok())
        .collect();
    let taken: Vec<Platform> = settings
        .platforms
        .iter()
        .filter(|p| !p.registered)
        .cloned()
        .chain(stored.iter().cloned())
        .collect();
    let name = dynreg::name_for(&platform.issuer, &taken)?;
    let answer = io
        .fetch(dynreg::registration_request(
            settings,
            &platform,
            &ctx.origin,
            &ctx.base_path,
            token.as_deref(),
        ))
        .await
        .map_err(|e| RegistrationError::Unreachable(e.to_string()))?;
    let registered = dynreg::registered_platform(&answer, &platform, name)?;
    let replaced = |e: &serde_json::Value| {
        platform_from_json(e).is_ok_and(|p| {
            p.issuer == registered.issuer
                && p.client_ids
                    .iter()
                    .any(|c| registered.client_ids.contains(c))
        })
    };
    let mut kept: Vec<serde_json::Value> =
        raw_entries.into_iter().filter(|e| !replaced(e)).collect();
    kept.push(dynreg::to_json(&registered));
    io.kv_put(
        KvNamespace::State,
        dynreg::KV_KEY,
        &serde_json::Value::Array(kept).to_string(),
        dynreg::KV_TTL,
    )
    .await;
    io.log(&log::line(
        "lti_registered",
        &[
            ("issuer", &registered.issuer),
            (
                "client_id",
                registered
                    .client_ids
                    .first()
                    .map(String::as_str)
                    .unwrap_or_default(),
            ),
            (
                "deployment_id",
                registered
                    .deployment_ids
                    .first()
                    .map(String::as_str)
                    .unwrap_or_default(),
            ),
            ("name", &registered.name),
        ],
    ));
    Ok(dynreg::done_page(&registered))
}
