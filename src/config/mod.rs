//! Bindings → `Config`, parsed once per isolate with every problem reported
//! together. After this point nothing reads a raw binding again.

mod lti;
mod oauth;
mod values;

pub use lti::LtiConfig;
pub use oauth::{OAuthConfig, TokenAuth};
pub use values::{is_loopback_host, is_secure_url, normalise_pem, parse_list, Bindings, Reader};

use crate::secret::SessionSecret;
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("missing {0}")]
    Missing(&'static str),
    #[error("{0} is not an https URL (http is allowed only on loopback hosts)")]
    NotHttps(&'static str),
    #[error("{name} {reason}")]
    Invalid { name: &'static str, reason: String },
    #[error("no login method is configured: set OAUTH_CLIENT_ID (OAuth/OIDC) or LTI13_ISSUER / LTI13_PLATFORMS (LTI 1.3)")]
    NoLoginMethod,
}

#[derive(Debug)]
pub struct Config {
    /// Path prefix every route lives under, always starting and ending with `/`.
    pub base_path: String,
    pub hub_origin: url::Url,
    pub session: SessionConfig,
    pub oauth: Option<OAuthConfig>,
    pub lti: Option<LtiConfig>,
    pub access: AccessRules,
    pub auto_login: bool,
    pub pass_authorization: bool,
    pub headers: IdentityHeaderNames,
    pub login_service: String,
    /// Signs `X-Hubgate-Assertion`; absent: no assertion is sent.
    pub assertion: Option<crate::assertion::AssertionKeys>,
    /// Claims copied into the session and the assertion's `auth_state`.
    pub auth_state_claims: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct SessionConfig {
    pub secret: SessionSecret,
    pub previous: Option<SessionSecret>,
    pub max_age: u64,
}

/// OAuthenticator's allow/admin/block rules (nothing is allowed unless a
/// rule allows it).
#[derive(Debug, Clone, Default)]
pub struct AccessRules {
    pub allow_all: bool,
    pub allowed_users: Vec<String>,
    pub admin_users: Vec<String>,
    pub blocked_users: Vec<String>,
    pub allowed_groups: Vec<String>,
    pub admin_groups: Vec<String>,
    /// Dotted path into the merged claims.
    pub groups_claim: String,
    pub username_map: BTreeMap<String, String>,
}

#[derive(Debug, Clone)]
pub struct IdentityHeaderNames {
    pub user: String,
    pub email: String,
    pub groups: String,
    pub admin: String,
}

pub const MIN_SESSION_SECRET_BYTES: usize = 32;

pub fn parse(env: &impl Bindings) -> Result<Config, Vec<ConfigError>> {
    let mut r = Reader::new(env);

    let base_path = normalise_base_path(r.string("BASE_URL").as_deref().unwrap_or("/"));
    let hub_origin = match r.required("HUB_ORIGIN") {
        Some(raw) => r.check_url("HUB_ORIGIN", &raw),
        None => None,
    };
    if let Some(h) = &hub_origin {
        if h.path() != "/" || h.query().is_some() {
            r.invalid(
                "HUB_ORIGIN",
                "must be an origin (scheme, host, port) without a path",
            );
        }
    }

    let secret = r.required("SESSION_SECRET");
    for (name, v) in [
        ("SESSION_SECRET", secret.clone()),
        (
            "SESSION_SECRET_PREVIOUS",
            r.string("SESSION_SECRET_PREVIOUS"),
        ),
    ] {
        if let Some(v) = v {
            if v.len() < MIN_SESSION_SECRET_BYTES {
                r.invalid(
                    name,
                    format!(
                        "must be at least {MIN_SESSION_SECRET_BYTES} characters of random data"
                    ),
                );
            }
        }
    }
    let previous = r.string("SESSION_SECRET_PREVIOUS").map(SessionSecret::new);
    let max_age = r.u64_in("SESSION_MAX_AGE", 86_400, 60, 30 * 86_400);

    let oauth = oauth::parse(&mut r);
    let lti = lti::parse(&mut r);
    if oauth.is_none() && lti.is_none() {
        r.errors.push(ConfigError::NoLoginMethod);
    }

    let access = AccessRules {
        allow_all: r.bool("ALLOW_ALL", false),
        allowed_users: lower(r.list("ALLOWED_USERS")),
        admin_users: lower(r.list("ADMIN_USERS")),
        blocked_users: lower(r.list("BLOCKED_USERS")),
        allowed_groups: r.list("ALLOWED_GROUPS"),
        admin_groups: r.list("ADMIN_GROUPS"),
        groups_claim: r.string("GROUPS_CLAIM").unwrap_or_else(|| "groups".into()),
        username_map: username_map(&mut r),
    };
    let headers = IdentityHeaderNames {
        user: header_name(&mut r, "HEADER_USER", "X-Forwarded-User"),
        email: header_name(&mut r, "HEADER_EMAIL", "X-Forwarded-Email"),
        groups: header_name(&mut r, "HEADER_GROUPS", "X-Forwarded-Groups"),
        admin: header_name(&mut r, "HEADER_ADMIN", "X-Forwarded-Admin"),
    };
    let auto_login = r.bool("AUTO_LOGIN", false);
    let pass_authorization = r.bool("PASS_AUTHORIZATION", true);
    let login_service = r
        .string("LOGIN_SERVICE")
        .unwrap_or_else(|| "OAuth 2.0".into());

    let assertion = crate::assertion::parse_config(&mut r);
    let auth_state_claims = r.list("ASSERTION_AUTH_STATE_CLAIMS");

    if !r.errors.is_empty() {
        return Err(r.errors);
    }
    Ok(Config {
        base_path,
        hub_origin: hub_origin.expect("checked above"),
        session: SessionConfig {
            secret: SessionSecret::new(secret.expect("checked above")),
            previous,
            max_age,
        },
        oauth,
        lti,
        access,
        auto_login,
        pass_authorization,
        headers,
        login_service,
        assertion,
        auth_state_claims,
    })
}

fn lower(v: Vec<String>) -> Vec<String> {
    v.into_iter().map(|s| s.to_lowercase()).collect()
}

fn normalise_base_path(raw: &str) -> String {
    let trimmed = raw.trim().trim_matches('/');
    if trimmed.is_empty() {
        "/".into()
    } else {
        format!("/{trimmed}/")
    }
}

fn username_map<B: Bindings>(r: &mut Reader<'_, B>) -> BTreeMap<String, String> {
    let Some(v) = r.json("USERNAME_MAP") else {
        return BTreeMap::new();
    };
    match serde_json::from_value::<BTreeMap<String, String>>(v) {
        Ok(m) => m,
        Err(_) => {
            r.invalid("USERNAME_MAP", "must be a JSON object of strings");
            BTreeMap::new()
        }
    }
}

fn header_name<B: Bindings>(r: &mut Reader<'_, B>, name: &'static str, default: &str) -> String {
    let v = r.string(name).unwrap_or_else(|| default.into());
    let token_ok = !v.is_empty()
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !token_ok {
        r.invalid(name, "must be a header name (letters, digits, '-')");
    }
    v
}

impl Config {
    /// Settings that parse but are probably not what the operator meant.
    pub fn warnings(&self) -> Vec<String> {
        let a = &self.access;
        let mut w = Vec::new();
        if self.oauth.is_some()
            && !a.allow_all
            && a.allowed_users.is_empty()
            && a.admin_users.is_empty()
            && a.allowed_groups.is_empty()
            && a.admin_groups.is_empty()
        {
            w.push("no OAuth user can log in: set ALLOW_ALL, ALLOWED_USERS, ALLOWED_GROUPS or ADMIN_USERS".into());
        }
        if self.assertion.is_none() {
            w.push("ASSERTION_SIGNING_KEY is not set: the hub must trust the X-Forwarded-* headers (network isolation)".into());
        }
        w
    }

    /// Secret-free summary for `/_hubgate/health` and `hubgate-check`.
    pub fn summary(&self) -> serde_json::Value {
        serde_json::json!({
            "base_url": self.base_path,
            "hub_origin": self.hub_origin.as_str(),
            "login_methods": {
                "oauth": self.oauth.as_ref().map(|o| serde_json::json!({
                    "client_id": o.client_id,
                    "oidc_issuer": o.issuer,
                    "scopes": o.scopes,
                    "username_key": o.username_key,
                })),
                "lti13": self.lti.as_ref().map(|l| serde_json::json!({
                    "platforms": l.platforms.iter().map(|p| serde_json::json!({
                        "issuer": p.issuer,
                        "client_ids": p.client_ids,
                        "deployment_ids": p.deployment_ids,
                    })).collect::<Vec<_>>(),
                    "username_key": l.username_key,
                    "tool_kid": l.tool_key.as_ref().map(|k| k.kid.clone()),
                })),
            },
            "auto_login": self.auto_login,
            "pass_authorization": self.pass_authorization,
            "allow_all": self.access.allow_all,
            "allowed_users": self.access.allowed_users.len(),
            "admin_users": self.access.admin_users.len(),
            "allowed_groups": self.access.allowed_groups.len(),
            "session_max_age": self.session.max_age,
            "session_secret_previous": self.session.previous.is_some(),
            "warnings": self.warnings(),
            "assertion_kids": self.assertion.as_ref().map(|a| {
                std::iter::once(a.current.kid.clone()).chain(a.previous.as_ref().map(|p| p.kid.clone())).collect::<Vec<_>>()
            }),
        })
    }
}
