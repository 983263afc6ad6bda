//! Names and Roles Provisioning Services 2.0: the course roster, read with
//! the platform token when a launch carries the service's claim, and the
//! launching user's roles in it as course groups.

use super::ServiceError;
use crate::http::{Headers, Method, OutboundRequest, OutboundResponse};
use crate::secret::PlatformToken;
use serde::Deserialize;
use std::collections::HashMap;

pub const CLAIM: &str = "https://purl.imsglobal.org/spec/lti-nrps/claim/namesroleservice";
pub const SCOPE: &str = "https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly";
const MEDIA_TYPE: &str = "application/vnd.ims.lti-nrps.v2.membershipcontainer+json";
/// A roster is read page by page; these bound what one launch may cost.
pub const MAX_PAGES: usize = 50;
pub const MAX_MEMBERS: usize = 20_000;
const PAGE_BYTES: usize = 1024 * 1024;

/// The service's claim: where the course's memberships are.
pub fn memberships_url(claims: &serde_json::Map<String, serde_json::Value>) -> Option<url::Url> {
    let raw = claims
        .get(CLAIM)?
        .get("context_memberships_url")?
        .as_str()?;
    url::Url::parse(raw).ok()
}

pub fn request(url: &str, token: &PlatformToken) -> OutboundRequest {
    let mut headers = Headers::new();
    headers.push("Accept", MEDIA_TYPE);
    headers.push("Authorization", format!("Bearer {}", token.expose()));
    OutboundRequest {
        method: Method::Get,
        url: url.to_string(),
        headers,
        body: None,
        timeout_ms: 5_000,
        max_body_bytes: PAGE_BYTES,
    }
}

#[derive(Deserialize)]
struct Container {
    /// Values first: serde would read a member written as an array as the
    /// struct's fields in order.
    #[serde(default)]
    members: Vec<serde_json::Value>,
}

#[derive(Deserialize)]
struct RawMember {
    #[serde(default)]
    user_id: Option<String>,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    roles: Vec<String>,
}

/// Who has which roles in the course: active members only (NRPS 2.0,
/// 3.6: a member without `status` is active).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Roster {
    roles: HashMap<String, Vec<String>>,
    pub members: usize,
}

impl Roster {
    /// The groups a member's roles give: `<course group>:<Role>`.
    pub fn role_groups(&self, user_id: &str, course_group: &str) -> Vec<String> {
        let mut out: Vec<String> = self
            .roles
            .get(user_id)
            .into_iter()
            .flatten()
            .filter_map(|r| short_role(r))
            .map(|r| format!("{course_group}:{r}"))
            .collect();
        out.sort();
        out.dedup();
        out
    }
}

/// `…/membership#Instructor` → `Instructor`; `…/membership/Instructor#TeachingAssistant`
/// → `TeachingAssistant`; a bare `Learner` stays. Anything else is no group.
fn short_role(role: &str) -> Option<&str> {
    let short = role
        .rsplit_once('#')
        .map(|(_, r)| r)
        .or_else(|| role.rsplit_once('/').map(|(_, r)| r))
        .unwrap_or(role);
    let ok = !short.is_empty()
        && short.len() <= 64
        && short
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'));
    ok.then_some(short)
}

/// One page into `roster`; the next page's URL when there is one.
pub fn parse_page(
    resp: &OutboundResponse,
    page_url: &url::Url,
    roster: &mut Roster,
) -> Result<Option<url::Url>, ServiceError> {
    if resp.status != 200 {
        return Err(ServiceError::Platform(format!(
            "memberships answered status {}",
            resp.status
        )));
    }
    let c: Container = crate::json::object(&resp.body)
        .map_err(|e| ServiceError::Platform(format!("memberships are not a JSON object: {e}")))?;
    for m in c.members {
        let m: RawMember = match m {
            serde_json::Value::Object(_) => serde_json::from_value(m).map_err(|e| {
                ServiceError::Platform(format!("a roster member is malformed: {e}"))
            })?,
            _ => {
                return Err(ServiceError::Platform(
                    "a roster member is not a JSON object".into(),
                ))
            }
        };
        let active = m
            .status
            .as_deref()
            .is_none_or(|s| s.eq_ignore_ascii_case("active"));
        if let (Some(id), true) = (m.user_id, active) {
            roster.roles.insert(id, m.roles);
        }
        roster.members += 1;
        if roster.members > MAX_MEMBERS {
            return Err(ServiceError::Platform(format!(
                "the roster has more than {MAX_MEMBERS} members"
            )));
        }
    }
    Ok(resp
        .headers
        .get_all("link")
        .find_map(next_link)
        .and_then(|u| page_url.join(&u).ok())
        // The token goes only where the roster is: a `next` elsewhere ends it.
        .filter(|u| u.origin() == page_url.origin()))
}

/// The `rel="next"` target of one `Link` header value (RFC 8288).
fn next_link(value: &str) -> Option<String> {
    let mut rest = value;
    while let Some(open) = rest.find('<') {
        let after = rest.get(open + 1..)?;
        let close = after.find('>')?;
        let target = after.get(..close)?;
        let params_and_more = after.get(close + 1..)?;
        let params = params_and_more
            .find('<')
            .and_then(|i| params_and_more.get(..i))
            .unwrap_or(params_and_more);
        let is_next = params.split(';').any(|p| {
            let Some((name, v)) = p.split_once('=') else {
                return false;
            };
            name.trim().eq_ignore_ascii_case("rel")
                && v.trim()
                    .trim_matches('"')
                    .split_ascii_whitespace()
                    .any(|r| r.eq_ignore_ascii_case("next"))
        });
        if is_next {
            return Some(target.to_string());
        }
        rest = params_and_more;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(body: &str, link: Option<&str>) -> OutboundResponse {
        let mut headers = Headers::new();
        if let Some(l) = link {
            headers.push("Link", l);
        }
        OutboundResponse {
            status: 200,
            headers,
            body: body.as_bytes().to_vec(),
        }
    }

    #[test]
    fn next_links_are_found_among_others_and_resolved_on_the_same_origin_only() {
        let base =
            url::Url::parse("https://lms.example.edu/api/lti/courses/7/names_and_roles").unwrap();
        let mut r = Roster::default();
        let cases = [
            (
                r#"<https://lms.example.edu/x?page=2>; rel="next""#,
                Some("https://lms.example.edu/x?page=2"),
            ),
            (
                r#"<https://lms.example.edu/x?p=1>; rel="first", </x?page=3>; rel="next""#,
                Some("https://lms.example.edu/x?page=3"),
            ),
            (r#"<https://lms.example.edu/d>; rel="differences""#, None),
            (r#"<https://evil.example.net/x>; rel="next""#, None),
            (
                r#"<https://lms.example.edu/a,b>; rel=next"#,
                Some("https://lms.example.edu/a,b"),
            ),
            ("<unterminated; rel=next", None),
        ];
        for (link, want) in cases {
            let next = parse_page(&page(r#"{"members":[]}"#, Some(link)), &base, &mut r).unwrap();
            assert_eq!(next.as_ref().map(|u| u.as_str()), want, "{link}");
        }
    }

    #[test]
    fn active_members_roles_become_course_groups() {
        let base = url::Url::parse("https://lms.example.edu/m").unwrap();
        let mut r = Roster::default();
        let body = r#"{"id":"x","context":{"id":"c"},"members":[
            {"user_id":"u1","roles":["http://purl.imsglobal.org/vocab/lis/v2/membership#Instructor",
              "http://purl.imsglobal.org/vocab/lis/v2/membership/Instructor#TeachingAssistant","Learner","bad role!"]},
            {"user_id":"u2","status":"Inactive","roles":["http://purl.imsglobal.org/vocab/lis/v2/membership#Learner"]},
            {"status":"Active","roles":["Learner"]}]}"#;
        assert_eq!(parse_page(&page(body, None), &base, &mut r).unwrap(), None);
        assert_eq!(r.members, 3);
        assert_eq!(
            r.role_groups("u1", "lti:lms:c"),
            vec![
                "lti:lms:c:Instructor",
                "lti:lms:c:Learner",
                "lti:lms:c:TeachingAssistant"
            ]
        );
        assert!(r.role_groups("u2", "lti:lms:c").is_empty(), "inactive");
        assert!(r.role_groups("nobody", "lti:lms:c").is_empty());
    }

    #[test]
    fn a_roster_that_is_not_an_object_or_not_200_is_a_platform_error() {
        let base = url::Url::parse("https://lms.example.edu/m").unwrap();
        let mut r = Roster::default();
        assert!(parse_page(&page("[1]", None), &base, &mut r).is_err());
        let mut denied = page("{}", None);
        denied.status = 403;
        assert!(parse_page(&denied, &base, &mut r).is_err());
    }
}
