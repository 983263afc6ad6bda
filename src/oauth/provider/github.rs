//! GitHub (and GitHub Enterprise): OAuth 2.0, not OpenID Connect. The user
//! is `/user`'s `login`; the email is `/user`'s, else the verified primary
//! of `/user/emails`; `ALLOWED_ORGANIZATIONS` (`org` or `org:team`) admits
//! members, read from `/user/orgs` and `/user/teams` (paged), which also
//! become the user's groups. GitHub's API refuses requests without a
//! `User-Agent`.

use super::{Extra, ExtraKind, Provider};
use crate::http::OutboundRequest;
use crate::oauth::settings::{OAuthSettings, Preset};
use crate::oauth::userinfo;
use crate::secret::AccessToken;
use serde_json::Value;

pub const PUBLIC_URL: &str = "https://github.com";
pub const PUBLIC_API: &str = "https://api.github.com";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitHubSettings {
    /// `https://api.github.com`, or `{GITHUB_URL}/api/v3` for Enterprise.
    pub api: String,
    /// `(org, team slug)`.
    pub allowed: Vec<(String, Option<String>)>,
}

impl GitHubSettings {
    pub fn new(github_url: &str, allowed_organizations: &[String]) -> Self {
        let base = github_url.trim_end_matches('/');
        GitHubSettings {
            api: if base == PUBLIC_URL {
                PUBLIC_API.into()
            } else {
                format!("{base}/api/v3")
            },
            allowed: allowed_organizations
                .iter()
                .map(|e| match e.split_once(':') {
                    Some((org, team)) => (org.to_lowercase(), Some(team.to_lowercase())),
                    None => (e.to_lowercase(), None),
                })
                .collect(),
        }
    }
}

const EMAILS: &str = "_github_emails";
const ORGS: &str = "_github_orgs";
const TEAMS: &str = "_github_teams";

pub struct GitHub;

fn settings(s: &OAuthSettings) -> Option<&GitHubSettings> {
    match &s.preset {
        Preset::GitHub(g) => Some(g),
        _ => None,
    }
}

/// GitHub's REST API requirements.
fn api_request(s: &OAuthSettings, url: &str, token: &AccessToken) -> OutboundRequest {
    let mut r = userinfo::request(s, url, token);
    r.headers.set("Accept", "application/vnd.github+json");
    r.headers.set("User-Agent", "hubgate");
    r.headers.set("X-GitHub-Api-Version", "2022-11-28");
    r
}

fn items<'a>(claims: &'a Value, name: &str) -> impl Iterator<Item = &'a Value> {
    claims
        .get(name)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
}

fn lower(v: Option<&Value>) -> Option<String> {
    v.and_then(Value::as_str).map(str::to_lowercase)
}

/// The user's organisations and `org:team`s, lower-cased.
fn memberships(claims: &Value) -> Vec<String> {
    let mut out: Vec<String> = items(claims, ORGS)
        .filter_map(|o| lower(o.get("login")))
        .collect();
    out.extend(items(claims, TEAMS).filter_map(|t| {
        let org = lower(t.get("organization").and_then(|o| o.get("login")))?;
        Some(format!("{org}:{}", lower(t.get("slug"))?))
    }));
    out.sort();
    out.dedup();
    out
}

impl Provider for GitHub {
    fn userinfo_request(
        &self,
        s: &OAuthSettings,
        url: &str,
        token: &AccessToken,
    ) -> OutboundRequest {
        api_request(s, url, token)
    }

    fn extra_requests(&self, s: &OAuthSettings, claims: &Value, token: &AccessToken) -> Vec<Extra> {
        let Some(g) = settings(s) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        let mut pages = |name: &str, path: &str| {
            out.push(Extra {
                name: name.into(),
                request: api_request(s, &format!("{}{path}", g.api), token),
                kind: ExtraKind::Pages,
            })
        };
        if claims
            .get("email")
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
        {
            pages(EMAILS, "/user/emails?per_page=100");
        }
        if !g.allowed.is_empty() {
            pages(ORGS, "/user/orgs?per_page=100");
            pages(TEAMS, "/user/teams?per_page=100");
        }
        out
    }

    fn username(&self, _s: &OAuthSettings, claims: &Value) -> Option<String> {
        claims
            .get("login")
            .and_then(Value::as_str)
            .map(str::to_string)
    }

    fn email(&self, claims: &Value) -> Option<String> {
        if let Some(e) = claims
            .get("email")
            .and_then(Value::as_str)
            .filter(|e| !e.is_empty())
        {
            return Some(e.to_string());
        }
        // Never an unverified address: anyone can add one to an account.
        items(claims, EMAILS)
            .find(|e| {
                e.get("primary").and_then(Value::as_bool) == Some(true)
                    && e.get("verified").and_then(Value::as_bool) == Some(true)
            })
            .and_then(|e| e.get("email").and_then(Value::as_str))
            .map(str::to_string)
    }

    /// The memberships in the organisations `ALLOWED_ORGANIZATIONS` names
    /// (`org`, and `org:team` for any team of it): a user's hundreds of
    /// other memberships would only weigh down every hub login.
    fn groups(&self, s: &OAuthSettings, _groups_claim: &str, claims: &Value) -> Vec<String> {
        let Some(g) = settings(s) else {
            return Vec::new();
        };
        memberships(claims)
            .into_iter()
            .filter(|m| {
                let org = m.split(':').next().unwrap_or_default();
                g.allowed.iter().any(|(o, _)| o == org)
            })
            .collect()
    }

    fn allows(&self, s: &OAuthSettings, claims: &Value) -> bool {
        let Some(g) = settings(s) else {
            return false;
        };
        let member = memberships(claims);
        g.allowed.iter().any(|(org, team)| match team {
            None => member.contains(org),
            Some(team) => member.contains(&format!("{org}:{team}")),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn enterprise_api_lives_under_api_v3() {
        assert_eq!(
            GitHubSettings::new("https://github.com/", &[]).api,
            PUBLIC_API
        );
        assert_eq!(
            GitHubSettings::new("https://git.uni.edu", &[]).api,
            "https://git.uni.edu/api/v3"
        );
    }

    #[test]
    fn memberships_are_orgs_and_org_teams() {
        let c = json!({
            ORGS: [{"login": "Jupyter"}, {"login": "uni"}],
            TEAMS: [{"slug": "Staff", "organization": {"login": "uni"}}, {"slug": 3}],
        });
        assert_eq!(memberships(&c), vec!["jupyter", "uni", "uni:staff"]);
    }

    #[test]
    fn the_email_is_a_verified_primary_only() {
        let g = GitHub;
        let c = json!({"email": null, EMAILS: [
            {"email": "a@x", "primary": true, "verified": false},
            {"email": "b@x", "primary": false, "verified": true},
        ]});
        assert_eq!(g.email(&c), None);
        let c = json!({"email": "", EMAILS: [{"email": "c@x", "primary": true, "verified": true}]});
        assert_eq!(g.email(&c).as_deref(), Some("c@x"));
    }
}
