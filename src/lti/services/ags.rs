//! Assignment and Grade Services 2.0: what a launch tells about a course's
//! line items, what the worker remembers of it, and the requests a hub
//! service asks for (list and create line items, post a score).

use super::ServiceError;
use crate::http::{Headers, Method, OutboundRequest, OutboundResponse, UnixTime};
use crate::jose::hs256::to_datetime;
use crate::secret::PlatformToken;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub const CLAIM: &str = "https://purl.imsglobal.org/spec/lti-ags/claim/endpoint";
pub const SCOPE_LINEITEM: &str = "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem";
pub const SCOPE_LINEITEM_READ: &str =
    "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem.readonly";
pub const SCOPE_SCORE: &str = "https://purl.imsglobal.org/spec/lti-ags/scope/score";
const LINEITEM_TYPE: &str = "application/vnd.ims.lis.v2.lineitem+json";
const CONTAINER_TYPE: &str = "application/vnd.ims.lis.v2.lineitemcontainer+json";
const SCORE_TYPE: &str = "application/vnd.ims.lis.v1.score+json";
/// Course records live as long as a course usually does.
pub const RECORD_TTL: u64 = 180 * 24 * 3600;
const ANSWER_BYTES: usize = 1024 * 1024;

/// What the worker keeps per course (`<platform name>:<context id>`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CourseRecord {
    pub registration: String,
    pub lineitems: Option<String>,
    pub lineitem: Option<String>,
    pub scope: Vec<String>,
}

/// And per user in it: their `sub` at the platform (the score's `userId`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserRecord {
    pub sub: String,
}

/// The claim of a launch, when it has a usable one.
pub fn from_claims(
    claims: &serde_json::Map<String, serde_json::Value>,
    registration: &str,
) -> Option<CourseRecord> {
    let c = claims.get(CLAIM)?.as_object()?;
    let url = |name: &str| {
        c.get(name)
            .and_then(|v| v.as_str())
            .and_then(|s| url::Url::parse(s).ok())
            .filter(crate::url_policy::is_secure_url)
            .map(|u| u.to_string())
    };
    let scope = c
        .get("scope")
        .and_then(|v| v.as_array())
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let (lineitems, lineitem) = (url("lineitems"), url("lineitem"));
    (lineitems.is_some() || lineitem.is_some()).then(|| CourseRecord {
        registration: registration.to_string(),
        lineitems,
        lineitem,
        scope,
    })
}

/// KV keys: hashed, so any context id or user name fits KV's key limit.
pub fn course_key(course: &str) -> String {
    format!("lti-ags:v1:{}", hex(course.as_bytes()))
}

pub fn user_key(course: &str, user: &str) -> String {
    format!(
        "lti-ags-user:v1:{}",
        hex(format!("{course}\n{user}").as_bytes())
    )
}

fn hex(b: &[u8]) -> String {
    Sha256::digest(b)
        .iter()
        .map(|x| format!("{x:02x}"))
        .collect()
}

impl CourseRecord {
    fn granted(&self, scope: &str) -> bool {
        self.scope.iter().any(|s| s == scope)
    }

    /// The scope to read line items with: read-only when the platform gave it.
    pub fn read_scope(&self) -> Result<&'static str, ServiceError> {
        if self.granted(SCOPE_LINEITEM_READ) {
            Ok(SCOPE_LINEITEM_READ)
        } else if self.granted(SCOPE_LINEITEM) {
            Ok(SCOPE_LINEITEM)
        } else {
            Err(ServiceError::Forbidden(
                "the platform granted no line item scope for this course".into(),
            ))
        }
    }

    pub fn require(&self, scope: &'static str) -> Result<&'static str, ServiceError> {
        if self.granted(scope) {
            Ok(scope)
        } else {
            Err(ServiceError::Forbidden(format!(
                "the platform did not grant {scope} for this course"
            )))
        }
    }

    pub fn lineitems(&self) -> Result<&str, ServiceError> {
        self.lineitems.as_deref().ok_or_else(|| {
            ServiceError::BadRequest(
                "this course has no line items container (only one line item)".into(),
            )
        })
    }

    /// The line item a score goes to: the one asked for, on the origin of
    /// the course's line items (the platform token goes nowhere else), or
    /// the launch's own.
    pub fn lineitem(&self, asked: Option<&str>) -> Result<url::Url, ServiceError> {
        let Some(asked) = asked else {
            return self
                .lineitem
                .as_deref()
                .and_then(|l| url::Url::parse(l).ok())
                .ok_or_else(|| {
                    ServiceError::BadRequest("lineitem is required (the launch named none)".into())
                });
        };
        let u = url::Url::parse(asked)
            .map_err(|_| ServiceError::BadRequest("lineitem is not a URL".into()))?;
        let home = self
            .lineitems
            .as_deref()
            .or(self.lineitem.as_deref())
            .and_then(|l| url::Url::parse(l).ok());
        match home {
            Some(h) if h.origin() == u.origin() => Ok(u),
            _ => Err(ServiceError::ForeignLineItem(asked.to_string())),
        }
    }
}

fn call(
    method: Method,
    url: &str,
    token: &PlatformToken,
    accept: &str,
    body: Option<(&str, Vec<u8>)>,
) -> OutboundRequest {
    let mut headers = Headers::new();
    headers.push("Accept", accept);
    headers.push("Authorization", format!("Bearer {}", token.expose()));
    let body = body.map(|(ct, b)| {
        headers.push("Content-Type", ct);
        b
    });
    OutboundRequest {
        method,
        url: url.to_string(),
        headers,
        body,
        timeout_ms: 5_000,
        max_body_bytes: ANSWER_BYTES,
    }
}

pub fn list_request(lineitems: &str, token: &PlatformToken) -> OutboundRequest {
    call(Method::Get, lineitems, token, CONTAINER_TYPE, None)
}

/// A POST checked and built before any token is asked for: the caller's
/// mistake costs no token request.
pub struct Prepared {
    url: String,
    accept: &'static str,
    content_type: &'static str,
    body: Vec<u8>,
}

impl Prepared {
    pub fn with_token(self, token: &PlatformToken) -> OutboundRequest {
        call(
            Method::Post,
            &self.url,
            token,
            self.accept,
            Some((self.content_type, self.body)),
        )
    }
}

pub fn create_request(
    lineitems: &str,
    token: &PlatformToken,
    item: &[u8],
) -> Result<OutboundRequest, ServiceError> {
    prepare_create(lineitems, item).map(|p| p.with_token(token))
}

/// A new line item: a JSON object with a `label` and a positive `scoreMaximum`.
pub fn prepare_create(lineitems: &str, item: &[u8]) -> Result<Prepared, ServiceError> {
    let v: serde_json::Map<String, serde_json::Value> = crate::json::object(item).map_err(|e| {
        ServiceError::BadRequest(format!("the line item is not a JSON object: {e}"))
    })?;
    let label_ok = v
        .get("label")
        .and_then(|l| l.as_str())
        .is_some_and(|l| !l.trim().is_empty());
    let max_ok = v
        .get("scoreMaximum")
        .and_then(|m| m.as_f64())
        .is_some_and(|m| m > 0.0);
    if !label_ok || !max_ok {
        return Err(ServiceError::BadRequest(
            "a line item needs a label and a scoreMaximum above 0".into(),
        ));
    }
    Ok(Prepared {
        url: lineitems.to_string(),
        accept: LINEITEM_TYPE,
        content_type: LINEITEM_TYPE,
        body: serde_json::Value::Object(v).to_string().into_bytes(),
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ScoreInput {
    #[serde(default)]
    score_given: Option<f64>,
    #[serde(default)]
    score_maximum: Option<f64>,
    #[serde(default)]
    activity_progress: Option<String>,
    #[serde(default)]
    grading_progress: Option<String>,
    #[serde(default)]
    comment: Option<String>,
}

const ACTIVITY: &[&str] = &[
    "Initialized",
    "Started",
    "InProgress",
    "Submitted",
    "Completed",
];
const GRADING: &[&str] = &[
    "FullyGraded",
    "Pending",
    "PendingManual",
    "Failed",
    "NotReady",
];

pub fn score_request(
    lineitem: &url::Url,
    token: &PlatformToken,
    user_sub: &str,
    input: &[u8],
    now: UnixTime,
) -> Result<OutboundRequest, ServiceError> {
    prepare_score(lineitem, user_sub, input, now).map(|p| p.with_token(token))
}

/// AGS 2.0, 3.4: the score for `user_sub` on `lineitem`, timestamped now.
pub fn prepare_score(
    lineitem: &url::Url,
    user_sub: &str,
    input: &[u8],
    now: UnixTime,
) -> Result<Prepared, ServiceError> {
    if lineitem.cannot_be_a_base() || !matches!(lineitem.scheme(), "https" | "http") {
        return Err(ServiceError::BadRequest(format!(
            "line item {lineitem} is not an http(s) URL"
        )));
    }
    let s: ScoreInput = crate::json::object(input)
        .map_err(|e| ServiceError::BadRequest(format!("the score is not a JSON object of scoreGiven, scoreMaximum, activityProgress, gradingProgress, comment: {e}")))?;
    let finite_non_negative = |x: f64| x.is_finite() && x >= 0.0;
    match (s.score_given, s.score_maximum) {
        (Some(g), Some(m)) if finite_non_negative(g) && m.is_finite() && m > 0.0 => {}
        (None, None) => {}
        _ => {
            return Err(ServiceError::BadRequest(
                "scoreGiven (≥ 0) and scoreMaximum (> 0) go together".into(),
            ))
        }
    }
    let activity = s.activity_progress.unwrap_or_else(|| "Completed".into());
    let grading = s.grading_progress.unwrap_or_else(|| "FullyGraded".into());
    if !ACTIVITY.contains(&activity.as_str()) || !GRADING.contains(&grading.as_str()) {
        return Err(ServiceError::BadRequest(format!(
            "activityProgress is one of {ACTIVITY:?}, gradingProgress one of {GRADING:?}"
        )));
    }
    let mut body = serde_json::json!({
        "userId": user_sub,
        "timestamp": to_datetime(now).to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "activityProgress": activity,
        "gradingProgress": grading,
    });
    if let (Some(g), Some(m)) = (s.score_given, s.score_maximum) {
        body["scoreGiven"] = g.into();
        body["scoreMaximum"] = m.into();
    }
    if let Some(c) = s.comment {
        body["comment"] = c.into();
    }
    // AGS 2.0, 3.4.2: the scores URL is the line item's path + `/scores`,
    // its query kept.
    let mut url = lineitem.clone();
    let path = format!("{}/scores", url.path().trim_end_matches('/'));
    url.set_path(&path);
    Ok(Prepared {
        url: url.to_string(),
        accept: "application/json",
        content_type: SCORE_TYPE,
        body: body.to_string().into_bytes(),
    })
}

/// The platform's answer for the hub service: a 2xx or a 4xx about the
/// request as is; the platform refusing the worker's own token, or failing,
/// is the worker's upstream failure.
pub fn answer(resp: OutboundResponse) -> Result<(u16, Vec<u8>), ServiceError> {
    match resp.status {
        200..=299 | 400 | 404 | 409 | 422 => Ok((resp.status, resp.body)),
        s => Err(ServiceError::Platform(format!(
            "the platform answered status {s}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> CourseRecord {
        CourseRecord {
            registration: "r".into(),
            lineitems: Some("https://lms.example.edu/api/lti/courses/7/line_items".into()),
            lineitem: Some("https://lms.example.edu/api/lti/courses/7/line_items/3".into()),
            scope: vec![SCOPE_LINEITEM.into(), SCOPE_SCORE.into()],
        }
    }

    #[test]
    fn a_score_goes_to_the_line_items_scores_url_with_the_users_sub_and_a_timestamp() {
        let li = url::Url::parse("https://lms.example.edu/li/3?type=x").unwrap();
        let r = score_request(
            &li,
            &PlatformToken::new("t"),
            "sub-1",
            br#"{"scoreGiven":7,"scoreMaximum":10}"#,
            UnixTime(1_760_000_000),
        )
        .unwrap();
        assert_eq!(r.url, "https://lms.example.edu/li/3/scores?type=x");
        assert_eq!(r.headers.get("content-type"), Some(SCORE_TYPE));
        let body: serde_json::Value = serde_json::from_slice(r.body.as_deref().unwrap()).unwrap();
        assert_eq!(body["userId"], "sub-1");
        assert_eq!(body["timestamp"], "2025-10-09T08:53:20.000Z");
        assert_eq!(body["activityProgress"], "Completed");
        assert_eq!(body["gradingProgress"], "FullyGraded");
        assert_eq!(body["scoreGiven"], 7.0);
    }

    #[test]
    fn bad_scores_are_refused_before_any_request() {
        let li = url::Url::parse("https://lms.example.edu/li/3").unwrap();
        for bad in [
            r#"{"scoreGiven":7}"#,
            r#"{"scoreGiven":-1,"scoreMaximum":10}"#,
            r#"{"scoreGiven":1,"scoreMaximum":0}"#,
            r#"{"activityProgress":"Done"}"#,
            r#"{"userId":"someone-else"}"#,
            r#"[1]"#,
        ] {
            assert!(
                matches!(
                    score_request(
                        &li,
                        &PlatformToken::new("t"),
                        "s",
                        bad.as_bytes(),
                        UnixTime(0)
                    ),
                    Err(ServiceError::BadRequest(_))
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn a_line_item_elsewhere_than_the_courses_origin_is_refused() {
        let r = record();
        assert!(r.lineitem(Some("https://lms.example.edu/other/9")).is_ok());
        assert_eq!(
            r.lineitem(None).unwrap().as_str(),
            "https://lms.example.edu/api/lti/courses/7/line_items/3"
        );
        for bad in [
            "https://evil.example.net/li",
            "http://lms.example.edu/li",
            "https://lms.example.edu:8443/li",
        ] {
            assert!(
                matches!(r.lineitem(Some(bad)), Err(ServiceError::ForeignLineItem(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn scopes_are_those_the_platform_granted() {
        let r = record();
        assert_eq!(r.read_scope().unwrap(), SCOPE_LINEITEM);
        assert!(r.require(SCOPE_SCORE).is_ok());
        let mut none = record();
        none.scope.clear();
        assert!(none.read_scope().is_err() && none.require(SCOPE_SCORE).is_err());
    }

    #[test]
    fn a_line_item_needs_a_label_and_a_positive_maximum() {
        let t = PlatformToken::new("t");
        assert!(create_request(
            "https://lms/li",
            &t,
            br#"{"label":"HW1","scoreMaximum":10}"#
        )
        .is_ok());
        for bad in [
            r#"{"label":"","scoreMaximum":10}"#,
            r#"{"label":"x"}"#,
            r#"{"label":"x","scoreMaximum":0}"#,
            "[]",
        ] {
            assert!(
                create_request("https://lms/li", &t, bad.as_bytes()).is_err(),
                "{bad}"
            );
        }
    }
}
