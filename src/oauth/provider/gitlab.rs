//! GitLab (gitlab.com or self-hosted): OAuth 2.0 with `/api/v4/user`.
//! `ALLOWED_GITLAB_GROUPS` and `ALLOWED_PROJECT_IDS` admit members, asked
//! per group and project (`…/members/all/{user id}`; a project needs
//! Developer access, level 30, as OAuthenticator requires).

use super::{Extra, ExtraKind, Provider};
use crate::http::OutboundRequest;
use crate::oauth::settings::{OAuthSettings, Preset};
use crate::oauth::userinfo;
use crate::secret::AccessToken;
use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};
use serde_json::Value;

pub const PUBLIC_URL: &str = "https://gitlab.com";
const DEVELOPER: u64 = 30;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitLabSettings {
    /// `{GITLAB_URL}/api/v4`.
    pub api: String,
    pub groups: Vec<String>,
    pub project_ids: Vec<u64>,
}

pub struct GitLab;

fn settings(s: &OAuthSettings) -> Option<&GitLabSettings> {
    match &s.preset {
        Preset::GitLab(g) => Some(g),
        _ => None,
    }
}

fn group_claim(path: &str) -> String {
    format!("_gitlab_group:{path}")
}

fn project_claim(id: u64) -> String {
    format!("_gitlab_project:{id}")
}

fn probe(s: &OAuthSettings, name: String, url: String, token: &AccessToken) -> Extra {
    let mut request: OutboundRequest = userinfo::request(s, &url, token);
    request.headers.set("Accept", "application/json");
    Extra {
        name,
        request,
        kind: ExtraKind::Probe,
    }
}

impl Provider for GitLab {
    fn extra_requests(&self, s: &OAuthSettings, claims: &Value, token: &AccessToken) -> Vec<Extra> {
        let (Some(g), Some(id)) = (settings(s), claims.get("id").and_then(Value::as_u64)) else {
            return Vec::new();
        };
        let mut out: Vec<Extra> = g
            .groups
            .iter()
            .map(|path| {
                // A subgroup's full path (`org/sub`) is one URL segment.
                let seg = utf8_percent_encode(path, NON_ALPHANUMERIC);
                let url = format!("{}/groups/{seg}/members/all/{id}", g.api);
                probe(s, group_claim(path), url, token)
            })
            .collect();
        out.extend(g.project_ids.iter().map(|p| {
            let url = format!("{}/projects/{p}/members/all/{id}", g.api);
            probe(s, project_claim(*p), url, token)
        }));
        out
    }

    fn allows(&self, s: &OAuthSettings, claims: &Value) -> bool {
        let Some(g) = settings(s) else {
            return false;
        };
        let present = |name: String| claims.get(&name).is_some_and(|v| !v.is_null());
        g.groups.iter().any(|p| present(group_claim(p)))
            || g.project_ids.iter().any(|p| {
                claims
                    .get(project_claim(*p))
                    .and_then(|m| m.get("access_level"))
                    .and_then(Value::as_u64)
                    .is_some_and(|level| level >= DEVELOPER)
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claim_names_carry_the_group_path_and_the_project() {
        assert_eq!(group_claim("org/sub"), "_gitlab_group:org/sub");
        assert_eq!(project_claim(7), "_gitlab_project:7");
    }
}
