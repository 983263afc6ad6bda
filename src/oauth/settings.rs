//! The OAuth 2.0 / OIDC settings (GenericOAuthenticator's names).

use super::provider::{generic::Generic, Provider};
use crate::bindings::{Bindings, ConfigError, Reader};
use crate::secret::ClientSecret;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenAuth {
    /// `client_secret_basic` (GenericOAuthenticator's `basic_auth = True`).
    Basic,
    /// `client_secret_post`.
    Post,
}

#[derive(Debug, Clone)]
pub struct OAuthSettings {
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
}

impl OAuthSettings {
    /// The provider whose hooks shape this login (the generic one for now).
    pub fn provider(&self) -> &'static dyn Provider {
        &Generic
    }

    /// Where the IdP sends the browser back: `OAUTH_CALLBACK_URL`, or this
    /// worker's `/hub/oauth_callback`.
    pub fn redirect_uri(&self, origin: &str, base_path: &str) -> String {
        match &self.callback_url {
            Some(u) => u.to_string(),
            None => format!("{origin}{base_path}hub/oauth_callback"),
        }
    }
}

pub fn parse<B: Bindings>(r: &mut Reader<'_, B>) -> Option<OAuthSettings> {
    let client_id = r.string("OAUTH_CLIENT_ID")?;
    let client_secret = r.required("OAUTH_CLIENT_SECRET");
    // Kept exactly as configured: OpenID Connect compares issuers exactly,
    // and some providers' issuers end in `/` (Auth0, Azure AD B2C).
    let issuer = r.string("OIDC_ISSUER");
    if let Some(i) = &issuer {
        r.check_url("OIDC_ISSUER", i);
    }
    let authorize_url = r.url("OAUTH2_AUTHORIZE_URL");
    let token_url = r.url("OAUTH2_TOKEN_URL");
    let userdata_url = r.url("OAUTH2_USERDATA_URL");
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
    if issuer.is_some() {
        if scopes.is_empty() {
            scopes = vec!["openid".into(), "profile".into(), "email".into()];
        } else if !scopes.iter().any(|s| s == "openid") {
            scopes.insert(0, "openid".into());
        }
    }
    let extra_authorize_params = match r.json("OAUTH_EXTRA_AUTHORIZE_PARAMS") {
        None => Vec::new(),
        Some(serde_json::Value::Object(m)) => {
            let mut out = Vec::new();
            for (k, v) in m {
                // These carry the flow's security; an operator must not be able to
                // weaken them by accident.
                if matches!(
                    k.as_str(),
                    "state"
                        | "nonce"
                        | "code_challenge"
                        | "code_challenge_method"
                        | "redirect_uri"
                        | "client_id"
                        | "response_type"
                ) {
                    r.invalid("OAUTH_EXTRA_AUTHORIZE_PARAMS", format!("may not set `{k}`"));
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
            r.invalid("OAUTH_EXTRA_AUTHORIZE_PARAMS", "must be a JSON object");
            Vec::new()
        }
    };
    let basic = r.bool("OAUTH_BASIC_AUTH", true);
    Some(OAuthSettings {
        client_id,
        client_secret: ClientSecret::new(client_secret.unwrap_or_default()),
        issuer,
        authorize_url,
        token_url,
        userdata_url,
        jwks_url,
        username_key: r
            .string("OAUTH2_USERNAME_KEY")
            .unwrap_or_else(|| "username".into()),
        callback_url: r.url("OAUTH_CALLBACK_URL"),
        logout_redirect_url: r.url("OAUTH_LOGOUT_REDIRECT_URL"),
        logout_at_provider: r.bool("OIDC_LOGOUT_AT_PROVIDER", true),
        refresh_age: r.u64_in("AUTH_REFRESH_AGE", 300, 30, 30 * 86_400),
        scopes,
        extra_authorize_params,
        token_auth: if basic {
            TokenAuth::Basic
        } else {
            TokenAuth::Post
        },
        leeway: r.u64_in("OAUTH_TIME_LEEWAY", 60, 0, 600),
    })
}
