//! The services' I/O: the platform token, the roster at launch, the course
//! records a launch leaves, and the Assignment and Grade endpoint a hub
//! service calls (`app` authenticates the caller first).

use super::ags::{self, CourseRecord, UserRecord};
use super::nrps::{self, Roster};
use super::platform_token::{self, TokenCache};
use super::ServiceError;
use crate::http::{Method, Response, UnixTime};
use crate::log;
use crate::lti::registration::{self, Registration};
use crate::lti::LtiSettings;
use crate::ports::{random_token, Io, KvNamespace};
use crate::secret::PlatformToken;
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

/// Rosters per memberships URL, for this isolate.
#[derive(Default)]
pub struct RosterCache {
    rosters: RefCell<HashMap<String, (Rc<Roster>, UnixTime)>>,
}

pub struct ServicesCtx<'a> {
    pub settings: &'a LtiSettings,
    pub tokens: &'a TokenCache,
    pub rosters: &'a RosterCache,
    /// KV `NONCES` is bound (course records live there).
    pub state_kv: bool,
}

pub async fn platform_token(
    c: &ServicesCtx<'_>,
    reg: &Registration<'_>,
    scopes: &[&str],
    io: &impl Io,
) -> Result<PlatformToken, ServiceError> {
    let now = io.now();
    let key = reg.key();
    if let Some(t) = c.tokens.get(&key, scopes, now) {
        return Ok(t);
    }
    let (Some(token_url), Some(tool_key)) = (&reg.platform.token_url, &c.settings.tool_key) else {
        return Err(ServiceError::NotConfigured);
    };
    let audience = reg
        .platform
        .token_audience
        .clone()
        .unwrap_or_else(|| token_url.to_string());
    let assertion = platform_token::client_assertion(
        tool_key,
        reg.client_id,
        &audience,
        &random_token(io, 16),
        now,
    );
    let resp = io
        .fetch(platform_token::request(
            token_url.as_str(),
            &assertion,
            scopes,
        ))
        .await
        .map_err(|e| ServiceError::Token(e.to_string()))?;
    let granted = platform_token::parse(&resp, now)?;
    let token = granted.token.clone();
    c.tokens.put(&key, scopes, granted);
    Ok(token)
}

/// The user's roles in the course roster, as course groups. Read once per
/// `LTI13_ROSTER_TTL` per course, all pages.
pub async fn roster_groups(
    c: &ServicesCtx<'_>,
    reg: &Registration<'_>,
    memberships: &url::Url,
    sub: &str,
    course_group: &str,
    io: &impl Io,
) -> Result<Vec<String>, ServiceError> {
    let now = io.now();
    let cached = c
        .rosters
        .rosters
        .borrow()
        .get(memberships.as_str())
        .filter(|(_, until)| *until > now)
        .map(|(r, _)| r.clone());
    let roster = match cached {
        Some(r) => r,
        None => {
            let token = platform_token(c, reg, &[nrps::SCOPE], io).await?;
            let mut roster = Roster::default();
            let mut next = Some(memberships.clone());
            let mut pages = 0;
            while let Some(url) = next {
                pages += 1;
                if pages > nrps::MAX_PAGES {
                    return Err(ServiceError::Platform(format!(
                        "the roster has more than {} pages",
                        nrps::MAX_PAGES
                    )));
                }
                let resp = io.fetch(nrps::request(url.as_str(), &token)).await?;
                next = nrps::parse_page(&resp, &url, &mut roster)?;
            }
            let roster = Rc::new(roster);
            let mut all = c.rosters.rosters.borrow_mut();
            if all.len() > 1024 {
                all.clear();
            }
            all.insert(
                memberships.to_string(),
                (roster.clone(), now.plus(c.settings.roster_ttl)),
            );
            roster
        }
    };
    Ok(roster.role_groups(sub, course_group))
}

/// What a launch leaves for the Assignment and Grade endpoint: the course's
/// service URLs, and this user's `sub` in it.
pub async fn remember_course(
    c: &ServicesCtx<'_>,
    course: &str,
    record: &CourseRecord,
    user: &str,
    sub: &str,
    io: &impl Io,
) {
    if !c.state_kv {
        return;
    }
    let course_json = serde_json::to_string(record).unwrap_or_default();
    let user_json = serde_json::to_string(&UserRecord { sub: sub.into() }).unwrap_or_default();
    io.kv_put(
        KvNamespace::State,
        &ags::course_key(course),
        &course_json,
        ags::RECORD_TTL,
    )
    .await;
    io.kv_put(
        KvNamespace::State,
        &ags::user_key(course, user),
        &user_json,
        ags::RECORD_TTL,
    )
    .await;
}

/// The Assignment and Grade operations a hub service may ask for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AgsOp {
    ListLineItems,
    CreateLineItem,
    PostScore,
}

/// `/_hubgate/lti/ags/…` for an authenticated caller (`who`, for the log).
pub async fn ags_call(
    c: &ServicesCtx<'_>,
    op: AgsOp,
    query: &[(String, String)],
    body: Option<&[u8]>,
    who: &str,
    io: &impl Io,
) -> Result<Response, ServiceError> {
    if !c.state_kv {
        return Err(ServiceError::NoStore);
    }
    let q = |n: &str| {
        query
            .iter()
            .find(|(k, _)| k == n)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    };
    let course = q("course").ok_or_else(|| {
        ServiceError::BadRequest("course is required (<platform name>:<context id>)".into())
    })?;
    let record: CourseRecord = io
        .kv_get(KvNamespace::State, &ags::course_key(course))
        .await
        .and_then(|s| serde_json::from_str(&s).ok())
        .ok_or_else(|| ServiceError::UnknownCourse(course.to_string()))?;
    let reg = registration::by_key(c.settings, &record.registration)
        .ok_or_else(|| ServiceError::UnknownCourse(course.to_string()))?;
    let now = io.now();
    let request = match op {
        AgsOp::ListLineItems => {
            let scope = record.read_scope()?;
            let token = platform_token(c, &reg, &[scope], io).await?;
            ags::list_request(record.lineitems()?, &token)
        }
        AgsOp::CreateLineItem => {
            let scope = record.require(ags::SCOPE_LINEITEM)?;
            let lineitems = record.lineitems()?;
            let body = body
                .ok_or_else(|| ServiceError::BadRequest("a JSON line item is required".into()))?;
            let prepared = ags::prepare_create(lineitems, body)?;
            prepared.with_token(&platform_token(c, &reg, &[scope], io).await?)
        }
        AgsOp::PostScore => {
            let scope = record.require(ags::SCOPE_SCORE)?;
            let user = q("user").ok_or_else(|| {
                ServiceError::BadRequest("user is required (the hub user name)".into())
            })?;
            let lineitem = record.lineitem(q("lineitem"))?;
            let sub = io
                .kv_get(KvNamespace::State, &ags::user_key(course, user))
                .await
                .and_then(|s| serde_json::from_str::<UserRecord>(&s).ok())
                .ok_or_else(|| ServiceError::UnknownUser {
                    user: user.to_string(),
                    course: course.to_string(),
                })?
                .sub;
            let body = body.unwrap_or(b"{}");
            let prepared = ags::prepare_score(&lineitem, &sub, body, now)?;
            prepared.with_token(&platform_token(c, &reg, &[scope], io).await?)
        }
    };
    let (method, url) = (request.method, request.url.clone());
    let resp = io.fetch(request).await?;
    let (status, body) = ags::answer(resp)?;
    io.log(&log::line(
        "lti_ags",
        &[
            ("op", &format!("{op:?}")),
            ("course", course),
            ("caller", who),
            (
                "method",
                if method == Method::Post {
                    "POST"
                } else {
                    "GET"
                },
            ),
            ("url", &url),
            ("status", &status.to_string()),
        ],
    ));
    let mut r = Response::new(status);
    r.headers.set("Content-Type", "application/json");
    r.headers.set("Cache-Control", "no-store");
    r.body = body;
    Ok(r)
}
