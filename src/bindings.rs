//! Reading bindings: lists, booleans, URLs, numbers, PEM keys. Each reader
//! records its problem in the shared error list and returns a value the
//! caller can keep going with, so every problem is reported at once. Each
//! domain parses its own settings with a `Reader`; `config` composes them.

use crate::url_policy::is_secure_url;
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("missing {0}")]
    Missing(&'static str),
    #[error("{0} is not an https URL (http is allowed only on loopback hosts)")]
    NotHttps(&'static str),
    #[error("{name} {reason}")]
    Invalid { name: &'static str, reason: String },
    #[error("missing binding {binding}: {what}")]
    MissingBinding {
        binding: &'static str,
        what: &'static str,
    },
    #[error("no login method is configured: set OAUTH_CLIENT_ID (OAuth/OIDC) or LTI13_ISSUER / LTI13_PLATFORMS (LTI 1.3)")]
    NoLoginMethod,
}

/// Every binding name hubgate reads (the check CLI picks secrets out of the
/// process environment by these names).
pub const NAMES: &[&str] = &[
    "BASE_URL",
    "HUB_ORIGIN",
    "HUB_TIMEOUT",
    "SESSION_SECRET",
    "SESSION_SECRET_PREVIOUS",
    "SESSION_MAX_AGE",
    "OAUTH_CLIENT_ID",
    "OAUTH_CLIENT_SECRET",
    "OAUTH2_AUTHORIZE_URL",
    "OAUTH2_TOKEN_URL",
    "OAUTH2_USERDATA_URL",
    "OAUTH2_USERNAME_KEY",
    "OAUTH_PROVIDER",
    "OAUTH_PROVIDERS",
    "GITHUB_URL",
    "ALLOWED_ORGANIZATIONS",
    "GITLAB_URL",
    "ALLOWED_GITLAB_GROUPS",
    "ALLOWED_PROJECT_IDS",
    "HOSTED_DOMAIN",
    "AZURE_TENANT_ID",
    "AZURE_AUTHORITY_HOST",
    "AUTH0_DOMAIN",
    "CILOGON_HOST",
    "CILOGON_IDPS",
    "CILOGON_SKIN",
    "KEYCLOAK_URL",
    "KEYCLOAK_REALM",
    "OAUTH_TOKEN_PARAMS",
    "OAUTH2_USERDATA_METHOD",
    "OAUTH2_USERDATA_PARAMS",
    "OAUTH2_USERDATA_TOKEN_METHOD",
    "USER_AUTH_STATE_KEY",
    "AUTH_REFRESH_AGE",
    "OIDC_LOGOUT_AT_PROVIDER",
    "SESSION_RECHECK_INTERVAL",
    "OAUTH_CALLBACK_URL",
    "OAUTH_LOGOUT_REDIRECT_URL",
    "LOGIN_SERVICE",
    "OIDC_ISSUER",
    "OIDC_JWKS_URL",
    "OAUTH_SCOPES",
    "OAUTH_EXTRA_AUTHORIZE_PARAMS",
    "OAUTH_BASIC_AUTH",
    "OAUTH_TIME_LEEWAY",
    "ALLOW_ALL",
    "ALLOWED_USERS",
    "ADMIN_USERS",
    "BLOCKED_USERS",
    "ALLOWED_GROUPS",
    "ADMIN_GROUPS",
    "GROUPS_CLAIM",
    "USERNAME_MAP",
    "USERNAME_NAMESPACE",
    "AUTO_LOGIN",
    "PASS_AUTHORIZATION",
    "HEADER_USER",
    "HEADER_EMAIL",
    "HEADER_GROUPS",
    "HEADER_ADMIN",
    "ASSERTION_SIGNING_KEY",
    "ASSERTION_SIGNING_KEY_PREVIOUS",
    "ASSERTION_AUTH_STATE_CLAIMS",
    "KEY_SET_MAX_AGE",
    "ONE_TIME_STORE",
    "LTI13_ISSUER",
    "LTI13_CLIENT_ID",
    "LTI13_AUTHORIZE_URL",
    "LTI13_JWKS_ENDPOINT",
    "LTI13_DEPLOYMENT_IDS",
    "LTI13_PLATFORMS",
    "LTI13_USERNAME_KEY",
    "LTI13_TIME_LEEWAY",
    "LTI13_ADMIN_ROLES",
    "LTI13_TOOL_NAME",
    "LTI13_TOOL_DESCRIPTION",
    "LTI13_PRIVATE_KEY",
    "LTI13_FRAME_ANCESTORS",
    "LTI13_TOKEN_URL",
    "LTI13_TOKEN_AUDIENCE",
    "LTI13_ROSTER_TTL",
    "LTI13_SERVICE_SECRET",
    "LTI13_DYNAMIC_REGISTRATION",
    "LTI13_REGISTRATION_SECRET",
    "TRUST_FORWARDED_PROTO",
];

pub trait Bindings {
    /// The binding's value; empty strings count as absent.
    fn get(&self, name: &str) -> Option<String>;
    /// A non-string binding (KV namespace, Durable Object) is declared. A
    /// map of strings stands for one by holding its name as a key.
    fn has_binding(&self, name: &str) -> bool {
        self.get(name).is_some()
    }
}

impl Bindings for BTreeMap<String, String> {
    fn get(&self, name: &str) -> Option<String> {
        BTreeMap::get(self, name)
            .filter(|v| !v.trim().is_empty())
            .cloned()
    }
}

impl Bindings for std::collections::HashMap<String, String> {
    fn get(&self, name: &str) -> Option<String> {
        std::collections::HashMap::get(self, name)
            .filter(|v| !v.trim().is_empty())
            .cloned()
    }
}

pub struct Reader<'a, B: Bindings> {
    pub env: &'a B,
    pub errors: Vec<ConfigError>,
}

impl<'a, B: Bindings> Reader<'a, B> {
    pub fn new(env: &'a B) -> Self {
        Reader {
            env,
            errors: Vec::new(),
        }
    }

    pub fn string(&self, name: &str) -> Option<String> {
        self.env
            .get(name)
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
    }

    pub fn required(&mut self, name: &'static str) -> Option<String> {
        let v = self.string(name);
        if v.is_none() {
            self.errors.push(ConfigError::Missing(name));
        }
        v
    }

    pub fn bool(&mut self, name: &'static str, default: bool) -> bool {
        match self.string(name) {
            None => default,
            Some(v) => match parse_bool(&v) {
                Some(b) => b,
                None => {
                    self.errors.push(ConfigError::Invalid {
                        name,
                        reason: "must be true, false, 1 or 0".into(),
                    });
                    default
                }
            },
        }
    }

    pub fn list(&mut self, name: &'static str) -> Vec<String> {
        match self.string(name) {
            None => Vec::new(),
            Some(v) => match parse_list(&v) {
                Ok(l) => l,
                Err(reason) => {
                    self.errors.push(ConfigError::Invalid { name, reason });
                    Vec::new()
                }
            },
        }
    }

    pub fn u64_in(&mut self, name: &'static str, default: u64, min: u64, max: u64) -> u64 {
        match self.string(name) {
            None => default,
            Some(v) => match v.parse::<u64>() {
                Ok(n) if (min..=max).contains(&n) => n,
                _ => {
                    self.errors.push(ConfigError::Invalid {
                        name,
                        reason: format!("must be a whole number from {min} to {max}"),
                    });
                    default
                }
            },
        }
    }

    /// An absolute URL that is https, or http on a loopback host.
    pub fn url(&mut self, name: &'static str) -> Option<url::Url> {
        let raw = self.string(name)?;
        self.check_url(name, &raw)
    }

    pub fn check_url(&mut self, name: &'static str, raw: &str) -> Option<url::Url> {
        match url::Url::parse(raw) {
            Ok(u) if is_secure_url(&u) => Some(u),
            Ok(_) => {
                self.errors.push(ConfigError::NotHttps(name));
                None
            }
            Err(e) => {
                self.errors.push(ConfigError::Invalid {
                    name,
                    reason: format!("is not a URL ({e})"),
                });
                None
            }
        }
    }

    pub fn json(&mut self, name: &'static str) -> Option<serde_json::Value> {
        let raw = self.string(name)?;
        match serde_json::from_str(&raw) {
            Ok(v) => Some(v),
            Err(e) => {
                self.errors.push(ConfigError::Invalid {
                    name,
                    reason: format!("is not valid JSON ({e})"),
                });
                None
            }
        }
    }

    pub fn invalid(&mut self, name: &'static str, reason: impl Into<String>) {
        self.errors.push(ConfigError::Invalid {
            name,
            reason: reason.into(),
        });
    }
}

pub fn parse_bool(v: &str) -> Option<bool> {
    match v.trim().to_ascii_lowercase().as_str() {
        "true" | "1" => Some(true),
        "false" | "0" => Some(false),
        _ => None,
    }
}

/// Comma/whitespace separated values, or a JSON array of strings.
pub fn parse_list(v: &str) -> Result<Vec<String>, String> {
    let t = v.trim();
    if t.starts_with('[') {
        let items: Vec<serde_json::Value> =
            serde_json::from_str(t).map_err(|e| format!("is not a valid JSON array ({e})"))?;
        return items
            .into_iter()
            .map(|i| match i {
                serde_json::Value::String(s) => Ok(s.trim().to_string()),
                other => Err(format!("JSON array items must be strings, got {other}")),
            })
            .filter(|r| !matches!(r, Ok(s) if s.is_empty()))
            .collect();
    }
    Ok(t.split(|c: char| c == ',' || c.is_whitespace())
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect())
}

/// PEM with real or `\n`-escaped newlines, as secrets often arrive.
pub fn normalise_pem(v: &str) -> String {
    v.trim().replace("\\n", "\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_accepts_commas_whitespace_and_json() {
        assert_eq!(parse_list("a, b  c\nd").unwrap(), ["a", "b", "c", "d"]);
        assert_eq!(parse_list(r#"["a b", "c"]"#).unwrap(), ["a b", "c"]);
        assert!(parse_list("[1]").is_err());
    }

    #[test]
    fn bool_accepts_only_the_four_spellings() {
        assert_eq!(parse_bool("TRUE"), Some(true));
        assert_eq!(parse_bool("0"), Some(false));
        assert_eq!(parse_bool("yes"), None);
    }

    #[test]
    fn pem_escaped_newlines_are_restored() {
        assert_eq!(normalise_pem("-----A-----\\nabc\\n"), "-----A-----\nabc\n");
    }
}
