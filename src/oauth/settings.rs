//! The OAuth 2.0 / OIDC settings (GenericOAuthenticator's names), with the
//! provider presets of `OAUTH_PROVIDER` (`presets` fills their defaults).

use super::presets;
use super::provider::azuread::{AzureAd, AzureSettings};
use super::provider::cilogon::{CILogon, CILogonSettings};
use super::provider::generic::Generic;
use super::provider::github::{GitHub, GitHubSettings};
use super::provider::gitlab::{GitLab, GitLabSettings};
use super::provider::google::{Google, GoogleSettings};
use super::provider::Provider;
use crate::bindings::{Bindings, ConfigError, Reader};
use crate::http::Method;
use crate::secret::ClientSecret;

/// `OAUTH_PROVIDER`: whose defaults and hooks a login uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Preset {
    Generic,
    GitHub(GitHubSettings),
    GitLab(GitLabSettings),
    Google(GoogleSettings),
    AzureAd(AzureSettings),
    Auth0,
    CILogon(CILogonSettings),
    Keycloak,
}

impl Preset {
    /// The preset admits users by a rule of its own (organisations,
    /// groups, projects, identity providers).
    pub fn has_allow_rule(&self) -> bool {
        match self {
            Preset::GitHub(g) => !g.allowed.is_empty(),
            Preset::GitLab(g) => !g.groups.is_empty() || !g.project_ids.is_empty(),
            Preset::CILogon(c) => c
                .idps
                .iter()
                .any(|(_, r)| r.allow_all || !r.allowed_domains.is_empty()),
            _ => false,
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Preset::Generic => "generic",
            Preset::GitHub(_) => "github",
            Preset::GitLab(_) => "gitlab",
            Preset::Google(_) => "google",
            Preset::AzureAd(_) => "azuread",
            Preset::Auth0 => "auth0",
            Preset::CILogon(_) => "cilogon",
            Preset::Keycloak => "keycloak",
        }
    }
}

/// Where the access token goes on the user-data request
/// (`OAUTH2_USERDATA_TOKEN_METHOD`, OAuthenticator's `userdata_token_method`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenPlacement {
    Header,
    Query,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenAuth {
    /// `client_secret_basic` (GenericOAuthenticator's `basic_auth = True`).
    Basic,
    /// `client_secret_post`.
    Post,
}

#[derive(Debug, Clone)]
pub struct OAuthSettings {
    /// `""` for the provider of the top-level bindings (OAuthenticator's
    /// paths); an `OAUTH_PROVIDERS` entry's `name` otherwise, which its
    /// paths carry (`/hub/oauth_login/<name>`, `/hub/oauth_callback/<name>`).
    pub name: String,
    /// The sign-in button's text (`LOGIN_SERVICE`).
    pub login_service: Option<String>,
    pub client_id: String,
    pub client_secret: ClientSecret,
    /// Set for OpenID Connect: discovery fills the endpoints left unset, and
    /// an id_token is required and verified.
    pub issuer: Option<String>,
    pub authorize_url: Option<url::Url>,
    pub token_url: Option<url::Url>,
    pub userdata_url: Option<url::Url>,
    pub jwks_url: Option<url::Url>,
    pub username_key: String,
    pub callback_url: Option<url::Url>,
    pub logout_redirect_url: Option<url::Url>,
    /// RP-Initiated Logout at the provider's `end_session_endpoint` when it
    /// has one (`OIDC_LOGOUT_AT_PROVIDER`, default on).
    pub logout_at_provider: bool,
    /// Refresh a session at most this long after its login or last refresh
    /// (`AUTH_REFRESH_AGE`, OAuthenticator's `auth_refresh_age`).
    pub refresh_age: u64,
    pub scopes: Vec<String>,
    pub extra_authorize_params: Vec<(String, String)>,
    pub token_auth: TokenAuth,
    /// Allowed clock skew for id_token `exp`/`iat`, seconds.
    pub leeway: u64,
    pub preset: Preset,
    /// The issuer the discovery document names, when it is not `issuer`
    /// (Azure AD's multi-tenant template).
    pub discovery_issuer: Option<String>,
    /// A provider logout for providers without `end_session_endpoint`
    /// (Auth0's `/v2/logout`, which takes `returnTo`).
    pub logout_fallback: Option<String>,
    /// `OAUTH_TOKEN_PARAMS`: extra token request parameters.
    pub token_params: Vec<(String, String)>,
    /// `OAUTH2_USERDATA_METHOD`, `OAUTH2_USERDATA_PARAMS`,
    /// `OAUTH2_USERDATA_TOKEN_METHOD`.
    pub userdata_method: Method,
    pub userdata_params: Vec<(String, String)>,
    pub userdata_token: TokenPlacement,
    /// `USER_AUTH_STATE_KEY`: auth_state's claims go under this key.
    pub auth_state_key: Option<String>,
}

impl OAuthSettings {
    /// The provider whose hooks shape this login.
    pub fn provider(&self) -> &'static dyn Provider {
        match &self.preset {
            Preset::Generic | Preset::Auth0 | Preset::Keycloak => &Generic,
            Preset::GitHub(_) => &GitHub,
            Preset::GitLab(_) => &GitLab,
            Preset::Google(_) => &Google,
            Preset::AzureAd(_) => &AzureAd,
            Preset::CILogon(_) => &CILogon,
        }
    }

    /// Where the IdP sends the browser back: `OAUTH_CALLBACK_URL`, or this
    /// worker's `/hub/oauth_callback` (`/hub/oauth_callback/<name>`).
    pub fn redirect_uri(&self, origin: &str, base_path: &str) -> String {
        match &self.callback_url {
            Some(u) => u.to_string(),
            None => format!("{origin}{base_path}{}", self.path("hub/oauth_callback")),
        }
    }

    /// One of the provider's paths under `BASE_URL`.
    pub fn path(&self, route: &str) -> String {
        match self.name.as_str() {
            "" => route.to_string(),
            name => format!("{route}/{name}"),
        }
    }
}

/// Parameters that carry a flow's security: an operator's extra
/// parameters may not set them.
const FLOW_AUTHORIZE_PARAMS: &[&str] = &[
    "state",
    "nonce",
    "code_challenge",
    "code_challenge_method",
    "redirect_uri",
    "client_id",
    "response_type",
];
const FLOW_TOKEN_PARAMS: &[&str] = &[
    "grant_type",
    "code",
    "code_verifier",
    "redirect_uri",
    "client_id",
    "client_secret",
    "refresh_token",
];

/// A JSON object of strings (numbers and booleans as their text).
fn string_pairs<B: Bindings>(
    r: &mut Reader<'_, B>,
    name: &'static str,
    reserved: &[&str],
) -> Vec<(String, String)> {
    match r.json(name) {
        None => Vec::new(),
        Some(serde_json::Value::Object(m)) => {
            let mut out = Vec::new();
            for (k, v) in m {
                if reserved.contains(&k.as_str()) {
                    r.invalid(name, format!("may not set `{k}`"));
                    continue;
                }
                match v {
                    serde_json::Value::String(s) => out.push((k, s)),
                    other => out.push((k, other.to_string())),
                }
            }
            out
        }
        Some(_) => {
            r.invalid(name, "must be a JSON object");
            Vec::new()
        }
    }
}

pub fn parse<B: Bindings>(r: &mut Reader<'_, B>) -> Option<OAuthSettings> {
    let client_id = r.string("OAUTH_CLIENT_ID")?;
    let client_secret = r.required("OAUTH_CLIENT_SECRET");
    let d = presets::defaults(r);
    // Kept exactly as configured: OpenID Connect compares issuers exactly,
    // and some providers' issuers end in `/` (Auth0, Azure AD B2C).
    let issuer = r.string("OIDC_ISSUER").or(d.issuer);
    if let Some(i) = &issuer {
        r.check_url("OIDC_ISSUER", i);
    }
    let or_default = |r: &mut Reader<'_, B>, name: &'static str, d: Option<String>| {
        r.url(name)
            .or_else(|| d.and_then(|u| r.check_url(name, &u)))
    };
    let authorize_url = or_default(r, "OAUTH2_AUTHORIZE_URL", d.authorize_url);
    let token_url = or_default(r, "OAUTH2_TOKEN_URL", d.token_url);
    let userdata_url = or_default(r, "OAUTH2_USERDATA_URL", d.userdata_url);
    let jwks_url = r.url("OIDC_JWKS_URL");
    if issuer.is_none() {
        // Plain OAuth 2.0: nothing to discover, so every endpoint is needed.
        for (name, v) in [
            ("OAUTH2_AUTHORIZE_URL", &authorize_url),
            ("OAUTH2_TOKEN_URL", &token_url),
            ("OAUTH2_USERDATA_URL", &userdata_url),
        ] {
            if v.is_none() && r.string(name).is_none() {
                r.errors.push(ConfigError::Missing(name));
            }
        }
    }
    let mut scopes = r.list("OAUTH_SCOPES");
    if scopes.is_empty() {
        scopes = d.scopes;
    }
    if issuer.is_some() {
        if scopes.is_empty() {
            scopes = vec!["openid".into(), "profile".into(), "email".into()];
        } else if !scopes.iter().any(|s| s == "openid") {
            scopes.insert(0, "openid".into());
        }
    }
    let extra_authorize_params =
        string_pairs(r, "OAUTH_EXTRA_AUTHORIZE_PARAMS", FLOW_AUTHORIZE_PARAMS);
    let token_params = string_pairs(r, "OAUTH_TOKEN_PARAMS", FLOW_TOKEN_PARAMS);
    let userdata_params = string_pairs(r, "OAUTH2_USERDATA_PARAMS", &["access_token"]);
    let userdata_method = match r.string("OAUTH2_USERDATA_METHOD").as_deref() {
        None => Method::Get,
        Some(m) if m.eq_ignore_ascii_case("GET") => Method::Get,
        Some(m) if m.eq_ignore_ascii_case("POST") => Method::Post,
        Some(_) => {
            r.invalid("OAUTH2_USERDATA_METHOD", "must be GET or POST");
            Method::Get
        }
    };
    let userdata_token = match r.string("OAUTH2_USERDATA_TOKEN_METHOD").as_deref() {
        None | Some("header") => TokenPlacement::Header,
        Some("url") => TokenPlacement::Query,
        Some(_) => {
            r.invalid("OAUTH2_USERDATA_TOKEN_METHOD", "must be `header` or `url`");
            TokenPlacement::Header
        }
    };
    let basic = r.bool("OAUTH_BASIC_AUTH", d.basic_auth);
    Some(OAuthSettings {
        name: String::new(),
        login_service: None,
        client_id,
        client_secret: ClientSecret::new(client_secret.unwrap_or_default()),
        issuer,
        authorize_url,
        token_url,
        userdata_url,
        jwks_url,
        username_key: r
            .string("OAUTH2_USERNAME_KEY")
            .unwrap_or_else(|| d.username_key.into()),
        callback_url: r.url("OAUTH_CALLBACK_URL"),
        logout_redirect_url: r.url("OAUTH_LOGOUT_REDIRECT_URL"),
        logout_at_provider: r.bool("OIDC_LOGOUT_AT_PROVIDER", true),
        refresh_age: r.u64_in("AUTH_REFRESH_AGE", 300, 1, 30 * 86_400),
        scopes,
        extra_authorize_params,
        token_auth: if basic {
            TokenAuth::Basic
        } else {
            TokenAuth::Post
        },
        leeway: r.u64_in("OAUTH_TIME_LEEWAY", 60, 0, 600),
        preset: d.preset,
        discovery_issuer: d.discovery_issuer,
        logout_fallback: d.logout_fallback,
        token_params,
        userdata_method,
        userdata_params,
        userdata_token,
        auth_state_key: r.string("USER_AUTH_STATE_KEY"),
    })
}

/// A provider name in a path: lower-case letters, digits and `-`.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 32
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// `OAUTH_PROVIDERS`: a JSON array of provider configurations, each an
/// object of the same binding names (`OAUTH_PROVIDER`, `OAUTH_CLIENT_ID`,
/// `OIDC_ISSUER`, ..., `LOGIN_SERVICE`) plus its `name`. A client secret
/// is named, not written: `OAUTH_CLIENT_SECRET_BINDING` is the secret
/// binding that holds it.
pub fn parse_more<B: Bindings>(r: &mut Reader<'_, B>, env: &B) -> Vec<OAuthSettings> {
    let Some(v) = r.json("OAUTH_PROVIDERS") else {
        return Vec::new();
    };
    let serde_json::Value::Array(entries) = v else {
        r.invalid("OAUTH_PROVIDERS", "must be a JSON array of objects");
        return Vec::new();
    };
    let mut out: Vec<OAuthSettings> = Vec::new();
    for (i, entry) in entries.into_iter().enumerate() {
        let serde_json::Value::Object(m) = entry else {
            r.invalid("OAUTH_PROVIDERS", format!("entry {i} is not an object"));
            continue;
        };
        let mut map = std::collections::BTreeMap::new();
        for (k, v) in m {
            let text = match v {
                serde_json::Value::String(s) => s,
                other => other.to_string(),
            };
            map.insert(k, text);
        }
        let name = map.get("name").cloned().unwrap_or_default();
        if !valid_name(&name) || out.iter().any(|o| o.name == name) {
            r.invalid(
                "OAUTH_PROVIDERS",
                format!("entry {i}: `name` must be unique, 1-32 of a-z, 0-9 and -"),
            );
            continue;
        }
        if map.contains_key("OAUTH_CLIENT_SECRET") {
            r.invalid(
                "OAUTH_PROVIDERS",
                format!("provider {name}: put the client secret in a secret binding and name it with OAUTH_CLIENT_SECRET_BINDING"),
            );
            continue;
        }
        if let Some(binding) = map.remove("OAUTH_CLIENT_SECRET_BINDING") {
            match env.get(&binding) {
                Some(secret) => {
                    map.insert("OAUTH_CLIENT_SECRET".into(), secret);
                }
                None => r.invalid(
                    "OAUTH_PROVIDERS",
                    format!("provider {name}: secret binding {binding:?} is not set"),
                ),
            }
        }
        let mut sub = Reader::new(&map);
        let parsed = parse(&mut sub);
        for e in sub.errors {
            r.invalid("OAUTH_PROVIDERS", format!("provider {name}: {e}"));
        }
        match parsed {
            Some(mut s) => {
                s.name = name;
                s.login_service = map.get("LOGIN_SERVICE").cloned();
                out.push(s);
            }
            None => r.invalid(
                "OAUTH_PROVIDERS",
                format!("provider {name}: missing OAUTH_CLIENT_ID"),
            ),
        }
    }
    out
}
