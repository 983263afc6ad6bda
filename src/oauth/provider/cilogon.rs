//! CILogon: OpenID Connect in front of many identity providers. As in
//! OAuthenticator, `CILOGON_IDPS` names the providers allowed (the `idp`
//! claim), how each one's username is derived, and whom each admits
//! (`allow_all`, `allowed_domains` with `*`/`?` wildcards).

use super::Provider;
use crate::identity::from_claims::string_claim;
use crate::oauth::settings::{OAuthSettings, Preset};
use crate::oauth::OAuthError;
use serde::Deserialize;
use serde_json::Value;

pub const HOST: &str = "cilogon.org";

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Derivation {
    pub username_claim: String,
    #[serde(default)]
    pub action: Option<Action>,
    #[serde(default)]
    pub domain: Option<String>,
    #[serde(default)]
    pub prefix: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    StripIdpDomain,
    Prefix,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdpRule {
    pub username_derivation: Derivation,
    #[serde(default)]
    pub allow_all: bool,
    #[serde(default)]
    pub allowed_domains: Vec<String>,
    #[serde(default)]
    pub allowed_domains_claim: Option<String>,
    #[serde(default)]
    pub default: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CILogonSettings {
    pub idps: Vec<(String, IdpRule)>,
    pub skin: Option<String>,
}

impl CILogonSettings {
    /// `selected_idp`: the default provider first, then the others.
    pub fn selected_idp(&self) -> String {
        let default = self.idps.iter().position(|(_, r)| r.default).unwrap_or(0);
        let mut keys: Vec<&str> = self.idps.iter().map(|(k, _)| k.as_str()).collect();
        if default < keys.len() {
            let d = keys.remove(default);
            keys.insert(0, d);
        }
        keys.join(",")
    }
}

pub struct CILogon;

fn settings(s: &OAuthSettings) -> Option<&CILogonSettings> {
    match &s.preset {
        Preset::CILogon(c) => Some(c),
        _ => None,
    }
}

fn rule<'a>(s: &'a OAuthSettings, claims: &Value) -> Option<&'a IdpRule> {
    let idp = claims.get("idp").and_then(Value::as_str)?;
    settings(s)?
        .idps
        .iter()
        .find(|(k, _)| k == idp)
        .map(|(_, r)| r)
}

/// Python's `fnmatch` for `*` and `?` (case already folded by the caller).
pub fn glob(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        match p.get(pi) {
            Some('*') => {
                star = Some((pi, ti));
                pi += 1;
            }
            Some(&c) if c == '?' || Some(&c) == t.get(ti) => {
                pi += 1;
                ti += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    pi = sp + 1;
                    ti = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    p.get(pi..)
        .is_some_and(|rest| rest.iter().all(|c| *c == '*'))
}

impl Provider for CILogon {
    fn authorize_params(&self, s: &OAuthSettings) -> Vec<(String, String)> {
        let mut out = s.extra_authorize_params.clone();
        if let Some(c) = settings(s) {
            out.push(("selected_idp".into(), c.selected_idp()));
            if let Some(skin) = &c.skin {
                out.push(("skin".into(), skin.clone()));
            }
        }
        out
    }

    fn username(&self, s: &OAuthSettings, claims: &Value) -> Option<String> {
        let d = &rule(s, claims)?.username_derivation;
        let name = string_claim(claims, &d.username_claim)?;
        Some(match (d.action, &d.domain, &d.prefix) {
            (Some(Action::StripIdpDomain), Some(domain), _) => match name.rsplit_once('@') {
                Some((local, dom)) if dom.eq_ignore_ascii_case(domain) => local.to_string(),
                _ => name,
            },
            (Some(Action::Prefix), _, Some(prefix)) => format!("{prefix}:{name}"),
            _ => name,
        })
    }

    fn check_claims(&self, s: &OAuthSettings, claims: &Value) -> Result<(), OAuthError> {
        match claims.get("idp").and_then(Value::as_str) {
            None => Err(OAuthError::ProviderRule("CILogon sent no idp claim".into())),
            Some(idp) if rule(s, claims).is_none() => Err(OAuthError::ProviderRule(format!(
                "login through identity provider {idp:?} is not configured here"
            ))),
            Some(_) => Ok(()),
        }
    }

    fn allows(&self, s: &OAuthSettings, claims: &Value) -> bool {
        let Some(r) = rule(s, claims) else {
            return false;
        };
        if r.allow_all {
            return true;
        }
        let claim = r
            .allowed_domains_claim
            .as_deref()
            .unwrap_or(&r.username_derivation.username_claim);
        let Some(raw) = string_claim(claims, claim) else {
            return false;
        };
        let domain = raw.rsplit('@').next().unwrap_or_default().to_lowercase();
        r.allowed_domains
            .iter()
            .any(|p| glob(&p.to_lowercase(), &domain))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_matches_as_fnmatch_does_for_star_and_question_mark() {
        assert!(glob("uni.edu", "uni.edu"));
        assert!(glob("*.uni.edu", "cs.uni.edu"));
        assert!(!glob("*.uni.edu", "uni.edu"));
        assert!(!glob("uni.edu", "evil-uni.edu"));
        assert!(glob("u?i.edu", "uni.edu"));
        assert!(glob("*", ""));
        assert!(!glob("a*b", "acd"));
    }

    #[test]
    fn the_default_idp_is_selected_first() {
        let rule = |default| IdpRule {
            username_derivation: Derivation {
                username_claim: "email".into(),
                action: None,
                domain: None,
                prefix: None,
            },
            allow_all: false,
            allowed_domains: vec![],
            allowed_domains_claim: None,
            default,
        };
        let c = CILogonSettings {
            idps: vec![("a".into(), rule(false)), ("b".into(), rule(true))],
            skin: None,
        };
        assert_eq!(c.selected_idp(), "b,a");
    }
}
