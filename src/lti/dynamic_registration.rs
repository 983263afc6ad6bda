//! LTI Dynamic Registration 1.0: an administrator pastes the tool's
//! registration URL into the LMS; the LMS opens it with
//! `openid_configuration` (and a `registration_token`); the tool reads the
//! platform's configuration (3.4), checks it (3.5.1), posts its own client
//! registration (3.5.2), keeps the `client_id` and deployment the platform
//! returns (3.6), and closes the LMS's window (`org.imsglobal.lti.close`).
//!
//! Pure: the I/O is in `routes::register`.

use super::registration::Platform;
use super::services::{ags, nrps};
use super::LtiSettings;
use crate::http::{Headers, Method, OutboundRequest, OutboundResponse, Response};
use crate::pages::escape;
use crate::url_policy::is_secure_url;
use base64::Engine;
use serde::Deserialize;
use sha2::{Digest, Sha256};

pub const PLATFORM_CONFIGURATION: &str =
    "https://purl.imsglobal.org/spec/lti-platform-configuration";
pub const TOOL_CONFIGURATION: &str = "https://purl.imsglobal.org/spec/lti-tool-configuration";
/// Where registered platforms live (KV `NONCES`), as `LTI13_PLATFORMS` entries.
pub const KV_KEY: &str = "lti-registrations:v1";
/// KV keeps them until an operator removes them.
pub const KV_TTL: u64 = 10 * 365 * 24 * 3600;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistrationError {
    #[error("dynamic registration is off (LTI13_DYNAMIC_REGISTRATION)")]
    Off,
    #[error("open this URL from the LMS's tool registration with the registration secret, or signed in as a hub admin")]
    NotAllowed,
    #[error("missing parameter {0:?}")]
    Missing(&'static str),
    #[error("the platform's configuration is unusable: {0}")]
    BadConfiguration(String),
    #[error("the platform refused the registration: {0}")]
    Refused(String),
    #[error("the platform could not be reached: {0}")]
    Unreachable(String),
    #[error("{0}")]
    Conflict(String),
    #[error("registrations are kept in KV NONCES, which is not bound")]
    NoStore,
}

impl RegistrationError {
    pub fn status(&self) -> u16 {
        use RegistrationError::*;
        match self {
            Off => 404,
            NotAllowed => 403,
            Missing(_) | BadConfiguration(_) => 400,
            Conflict(_) => 409,
            Refused(_) | Unreachable(_) => 502,
            NoStore => 500,
        }
    }
}

impl crate::http::Failure for RegistrationError {
    fn status(&self) -> u16 {
        RegistrationError::status(self)
    }
    fn kind(&self) -> &'static str {
        "lti_registration"
    }
}

/// The platform's OpenID configuration, as far as registration needs it.
#[derive(Debug, Clone, Deserialize)]
pub struct PlatformConfig {
    pub issuer: String,
    pub authorization_endpoint: String,
    pub token_endpoint: String,
    pub jwks_uri: String,
    pub registration_endpoint: String,
    #[serde(default)]
    pub scopes_supported: Vec<String>,
}

fn get(url: &str, token: Option<&str>) -> OutboundRequest {
    let mut r = OutboundRequest::get(url);
    if let Some(t) = token {
        r.headers.push("Authorization", format!("Bearer {t}"));
    }
    r
}

pub fn configuration_request(
    url: &url::Url,
    token: Option<&str>,
) -> Result<OutboundRequest, RegistrationError> {
    if !is_secure_url(url) {
        return Err(RegistrationError::BadConfiguration(
            "openid_configuration is not an https URL".into(),
        ));
    }
    Ok(get(url.as_str(), token))
}

/// 3.5.1: every endpoint is https; the issuer is a prefix of the
/// configuration's own URL (so a platform vouches only for itself).
pub fn check_configuration(
    resp: &OutboundResponse,
    fetched_from: &url::Url,
) -> Result<PlatformConfig, RegistrationError> {
    if resp.status != 200 {
        return Err(RegistrationError::Refused(format!(
            "openid_configuration answered status {}",
            resp.status
        )));
    }
    let c: PlatformConfig = crate::json::object(&resp.body)
        .map_err(|e| RegistrationError::BadConfiguration(e.to_string()))?;
    let issuer = url::Url::parse(&c.issuer)
        .ok()
        .filter(is_secure_url)
        .ok_or_else(|| RegistrationError::BadConfiguration("issuer is not an https URL".into()))?;
    let prefix = c.issuer.trim_end_matches('/');
    let from = fetched_from.as_str();
    let under_issuer = from == prefix
        || from
            .strip_prefix(prefix)
            .is_some_and(|rest| rest.starts_with('/') || rest.starts_with('?'));
    if issuer.origin() != fetched_from.origin() || !under_issuer {
        return Err(RegistrationError::BadConfiguration(format!(
            "issuer {:?} is not a prefix of the configuration URL {from:?}",
            c.issuer
        )));
    }
    for (name, u) in [
        ("authorization_endpoint", &c.authorization_endpoint),
        ("token_endpoint", &c.token_endpoint),
        ("jwks_uri", &c.jwks_uri),
        ("registration_endpoint", &c.registration_endpoint),
    ] {
        url::Url::parse(u)
            .ok()
            .filter(is_secure_url)
            .ok_or_else(|| {
                RegistrationError::BadConfiguration(format!("{name} is not an https URL"))
            })?;
    }
    Ok(c)
}

/// 3.5.2: the tool's client registration, with its LTI tool configuration.
pub fn registration_request(
    cfg: &LtiSettings,
    platform: &PlatformConfig,
    origin: &str,
    base_path: &str,
    token: Option<&str>,
) -> OutboundRequest {
    let url_for = |p: &str| format!("{origin}{base_path}{p}");
    let host = url::Url::parse(origin)
        .ok()
        .and_then(|u| u.host_str().map(str::to_string))
        .unwrap_or_default();
    let mut messages = vec![serde_json::json!({"type": "LtiResourceLinkRequest"})];
    if cfg.tool_key.is_some() {
        messages.push(serde_json::json!({
            "type": "LtiDeepLinkingRequest",
            "target_link_uri": url_for("hub/"),
            "label": cfg.tool_name,
        }));
    }
    let scopes = [
        nrps::SCOPE,
        ags::SCOPE_LINEITEM,
        ags::SCOPE_LINEITEM_READ,
        ags::SCOPE_SCORE,
    ];
    let body = serde_json::json!({
        "application_type": "web",
        "response_types": ["id_token"],
        "grant_types": ["implicit", "client_credentials"],
        "initiate_login_uri": url_for("hub/lti13/oauth_login"),
        "redirect_uris": [url_for("hub/lti13/oauth_callback")],
        "client_name": cfg.tool_name,
        "jwks_uri": url_for("hub/lti13/jwks"),
        "token_endpoint_auth_method": "private_key_jwt",
        "scope": scopes.join(" "),
        TOOL_CONFIGURATION: {
            "domain": host,
            "description": cfg.tool_description,
            "target_link_uri": url_for("hub/"),
            "claims": ["iss", "sub", "name", "given_name", "family_name", "email"],
            "messages": messages,
        },
    });
    let mut headers = Headers::new();
    headers.push("Content-Type", "application/json");
    headers.push("Accept", "application/json");
    if let Some(t) = token {
        headers.push("Authorization", format!("Bearer {t}"));
    }
    OutboundRequest {
        method: Method::Post,
        url: platform.registration_endpoint.clone(),
        headers,
        body: Some(body.to_string().into_bytes()),
        timeout_ms: 10_000,
        max_body_bytes: 256 * 1024,
    }
}

#[derive(Deserialize)]
struct Registered {
    client_id: String,
    #[serde(
        default,
        rename = "https://purl.imsglobal.org/spec/lti-tool-configuration"
    )]
    tool: Option<RegisteredTool>,
}

#[derive(Deserialize)]
struct RegisteredTool {
    #[serde(default)]
    deployment_id: Option<String>,
}

/// 3.6: the platform's answer; the new registration as a platform entry.
pub fn registered_platform(
    resp: &OutboundResponse,
    platform: &PlatformConfig,
    name: String,
) -> Result<Platform, RegistrationError> {
    if !(200..300).contains(&resp.status) {
        let detail =
            String::from_utf8_lossy(resp.body.get(..200).unwrap_or(&resp.body)).into_owned();
        return Err(RegistrationError::Refused(format!(
            "status {}: {detail}",
            resp.status
        )));
    }
    let r: Registered = crate::json::object(&resp.body).map_err(|e| {
        RegistrationError::Refused(format!("the answer is not a registration: {e}"))
    })?;
    if r.client_id.trim().is_empty() {
        return Err(RegistrationError::Refused("no client_id".into()));
    }
    let url = |u: &str| {
        url::Url::parse(u).map_err(|e| RegistrationError::BadConfiguration(e.to_string()))
    };
    Ok(Platform {
        name,
        issuer: platform.issuer.clone(),
        client_ids: vec![r.client_id],
        authorize_url: url(&platform.authorization_endpoint)?,
        jwks_url: url(&platform.jwks_uri)?,
        deployment_ids: r
            .tool
            .and_then(|t| t.deployment_id)
            .filter(|d| !d.is_empty())
            .into_iter()
            .collect(),
        token_url: Some(url(&platform.token_endpoint)?),
        token_audience: None,
        registered: true,
    })
}

/// A platform entry as `LTI13_PLATFORMS` writes it (and KV keeps it).
pub fn to_json(p: &Platform) -> serde_json::Value {
    let mut v = serde_json::json!({
        "name": p.name,
        "issuer": p.issuer,
        "client_id": p.client_ids,
        "authorize_url": p.authorize_url.as_str(),
        "jwks_endpoint": p.jwks_url.as_str(),
        "deployment_ids": p.deployment_ids,
    });
    if let Some(t) = &p.token_url {
        v["token_url"] = t.as_str().into();
    }
    v
}

/// The name a registered platform gets: the issuer's host, unless another
/// issuer already has it (its users and course groups would merge).
pub fn name_for(issuer: &str, taken: &[Platform]) -> Result<String, RegistrationError> {
    let host = url::Url::parse(issuer)
        .ok()
        .and_then(|u| u.host_str().map(str::to_string))
        .unwrap_or_else(|| "lti".into());
    match taken.iter().find(|p| p.name == host && p.issuer != issuer) {
        Some(other) => Err(RegistrationError::Conflict(format!(
            "the platform name {host:?} is already used by issuer {:?}; register this platform through LTI13_PLATFORMS with its own name",
            other.issuer
        ))),
        None => Ok(host),
    }
}

const CLOSE: &str =
    "(window.opener||window.parent).postMessage({subject:'org.imsglobal.lti.close'},'*');";

/// The last page: tells the LMS the registration is done.
pub fn done_page(platform: &Platform) -> Response {
    let body = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Registered</title>\
<style>body{{font-family:system-ui,sans-serif;max-width:32rem;margin:3rem auto;padding:0 1rem;color:#222}}</style></head>\
<body><main><h1>Registered</h1><p>The tool is registered with {issuer} as client {client}.</p>\
<p>You can close this window.</p></main><script>{CLOSE}</script></body></html>",
        issuer = escape(&platform.issuer),
        client = escape(platform.client_ids.first().map(String::as_str).unwrap_or_default()),
    );
    let mut r = Response::html(200, body);
    let hash = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(CLOSE.as_bytes()));
    r.headers.set(
        "Content-Security-Policy",
        format!("default-src 'none'; style-src 'unsafe-inline'; script-src 'sha256-{hash}'; base-uri 'none'; frame-ancestors *"),
    );
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resp(status: u16, body: serde_json::Value) -> OutboundResponse {
        OutboundResponse {
            status,
            headers: Headers::new(),
            body: body.to_string().into_bytes(),
        }
    }

    fn config(issuer: &str) -> serde_json::Value {
        serde_json::json!({
            "issuer": issuer,
            "authorization_endpoint": "https://lms.example.edu/auth",
            "token_endpoint": "https://lms.example.edu/token",
            "jwks_uri": "https://lms.example.edu/jwks",
            "registration_endpoint": "https://lms.example.edu/register",
        })
    }

    #[test]
    fn the_issuer_must_be_a_prefix_of_the_configuration_url() {
        let from =
            url::Url::parse("https://lms.example.edu/.well-known/openid-configuration").unwrap();
        assert!(check_configuration(&resp(200, config("https://lms.example.edu")), &from).is_ok());
        assert!(check_configuration(&resp(200, config("https://lms.example.edu/")), &from).is_ok());
        for bad in [
            "https://other.example.edu",
            "https://lms.example.edu.evil.net",
            "http://lms.example.edu",
            "https://lms.example.edu/tenant2",
        ] {
            assert!(
                check_configuration(&resp(200, config(bad)), &from).is_err(),
                "{bad}"
            );
        }
        let mut c = config("https://lms.example.edu");
        c["token_endpoint"] = "http://lms.example.edu/token".into();
        assert!(check_configuration(&resp(200, c), &from).is_err());
    }

    #[test]
    fn a_name_taken_by_another_issuer_is_a_conflict() {
        let p = Platform {
            name: "lms.example.edu".into(),
            issuer: "https://lms.example.edu/a".into(),
            client_ids: vec!["c".into()],
            authorize_url: url::Url::parse("https://lms.example.edu/auth").unwrap(),
            jwks_url: url::Url::parse("https://lms.example.edu/jwks").unwrap(),
            deployment_ids: vec![],
            token_url: None,
            token_audience: None,
            registered: true,
        };
        assert!(matches!(
            name_for("https://lms.example.edu/b", std::slice::from_ref(&p)),
            Err(RegistrationError::Conflict(_))
        ));
        assert_eq!(
            name_for("https://lms.example.edu/a", &[p]).unwrap(),
            "lms.example.edu"
        );
    }
}
