//! RFC 6749 4.1.3 access token request, 6 refresh request, and 5.1/5.2
//! response handling.

use super::settings::{OAuthSettings, TokenAuth};
use super::OAuthError;
use crate::http::{Headers, Method, OutboundRequest, OutboundResponse};
use crate::secret::{AccessToken, RefreshToken};
use base64::{engine::general_purpose::STANDARD, Engine};
use serde::Deserialize;

pub struct TokenResponse {
    pub access_token: AccessToken,
    pub id_token: Option<String>,
    pub refresh_token: Option<RefreshToken>,
    /// The access token's lifetime in seconds, when the provider said.
    pub expires_in: Option<u64>,
}

pub fn request(
    cfg: &OAuthSettings,
    token_endpoint: &str,
    code: &str,
    verifier: &str,
    redirect_uri: &str,
) -> OutboundRequest {
    let mut form = url::form_urlencoded::Serializer::new(String::new());
    form.append_pair("grant_type", "authorization_code")
        .append_pair("code", code)
        .append_pair("redirect_uri", redirect_uri)
        .append_pair("code_verifier", verifier);
    authenticated(cfg, token_endpoint, form)
}

/// RFC 6749 6: a new access token for the refresh token, with the client
/// authenticated as for the code.
pub fn refresh_request(
    cfg: &OAuthSettings,
    token_endpoint: &str,
    refresh_token: &RefreshToken,
) -> OutboundRequest {
    let mut form = url::form_urlencoded::Serializer::new(String::new());
    form.append_pair("grant_type", "refresh_token")
        .append_pair("refresh_token", refresh_token.expose());
    authenticated(cfg, token_endpoint, form)
}

fn authenticated(
    cfg: &OAuthSettings,
    token_endpoint: &str,
    mut form: url::form_urlencoded::Serializer<'_, String>,
) -> OutboundRequest {
    // `OAUTH_TOKEN_PARAMS` (OAuthenticator's token_params); the flow's own
    // parameters were refused at configuration.
    form.extend_pairs(cfg.token_params.iter());
    let mut headers = Headers::new();
    headers.push("Content-Type", "application/x-www-form-urlencoded");
    headers.push("Accept", "application/json");
    match cfg.token_auth {
        TokenAuth::Basic => {
            // RFC 6749 2.3.1: client id and secret are form-urlencoded before
            // being joined for Basic authentication.
            let enc =
                |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
            let pair = format!(
                "{}:{}",
                enc(&cfg.client_id),
                enc(cfg.client_secret.expose())
            );
            headers.push("Authorization", format!("Basic {}", STANDARD.encode(pair)));
            form.append_pair("client_id", &cfg.client_id);
        }
        TokenAuth::Post => {
            form.append_pair("client_id", &cfg.client_id)
                .append_pair("client_secret", cfg.client_secret.expose());
        }
    }
    OutboundRequest {
        method: Method::Post,
        url: token_endpoint.to_string(),
        headers,
        body: Some(form.finish().into_bytes()),
        timeout_ms: 10_000,
        max_body_bytes: 64 * 1024,
    }
}

#[derive(Deserialize)]
struct Raw {
    #[serde(default)]
    access_token: Option<String>,
    #[serde(default)]
    token_type: Option<String>,
    #[serde(default)]
    id_token: Option<String>,
    #[serde(default)]
    refresh_token: Option<String>,
    #[serde(default)]
    expires_in: Option<serde_json::Value>,
    #[serde(default)]
    error: Option<String>,
}

pub fn parse(resp: &OutboundResponse) -> Result<TokenResponse, OAuthError> {
    if resp.status >= 500 {
        return Err(OAuthError::TokenEndpoint(format!("status {}", resp.status)));
    }
    let raw: Result<Raw, _> = crate::json::object(&resp.body);
    // RFC 6749 5.2: an `error` member is a failure, whatever the status says.
    if let Ok(Raw { error: Some(e), .. }) = &raw {
        return Err(OAuthError::TokenRefused(e.clone()));
    }
    if (400..500).contains(&resp.status) {
        return Err(OAuthError::TokenRefused(format!("status {}", resp.status)));
    }
    if resp.status != 200 {
        return Err(OAuthError::TokenEndpoint(format!("status {}", resp.status)));
    }
    let raw = raw.map_err(|e| OAuthError::TokenEndpoint(format!("not JSON: {e}")))?;
    let access_token = raw
        .access_token
        .filter(|t| !t.is_empty())
        .ok_or_else(|| OAuthError::TokenEndpoint("no access_token".into()))?;
    if let Some(t) = &raw.token_type {
        if !t.eq_ignore_ascii_case("bearer") {
            return Err(OAuthError::TokenEndpoint(format!(
                "token_type {t:?} is not Bearer"
            )));
        }
    }
    Ok(TokenResponse {
        access_token: AccessToken::new(access_token),
        id_token: raw.id_token,
        refresh_token: raw
            .refresh_token
            .filter(|t| !t.is_empty())
            .map(RefreshToken::new),
        expires_in: raw.expires_in.as_ref().and_then(crate::json::seconds),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resp(status: u16, body: &str) -> OutboundResponse {
        OutboundResponse {
            status,
            headers: Headers::new(),
            body: body.as_bytes().to_vec(),
        }
    }

    #[test]
    fn error_field_fails_even_on_200() {
        let e = parse(&resp(
            200,
            r#"{"error":"invalid_grant","access_token":"x"}"#,
        ))
        .err()
        .unwrap();
        assert_eq!(e, OAuthError::TokenRefused("invalid_grant".into()));
        assert_eq!(e.status(), 401);
    }

    #[test]
    fn refresh_request_carries_the_grant_and_the_client_authentication() {
        let env = std::collections::BTreeMap::from([
            ("OAUTH_CLIENT_ID".to_string(), "c".to_string()),
            ("OAUTH_CLIENT_SECRET".to_string(), "s".to_string()),
            (
                "OAUTH2_AUTHORIZE_URL".to_string(),
                "https://i/a".to_string(),
            ),
            ("OAUTH2_TOKEN_URL".to_string(), "https://i/t".to_string()),
            ("OAUTH2_USERDATA_URL".to_string(), "https://i/u".to_string()),
        ]);
        let mut b = crate::bindings::Reader::new(&env);
        let cfg = super::super::settings::parse(&mut b).unwrap();
        let r = refresh_request(&cfg, "https://i/t", &RefreshToken::new("r t"));
        let body = String::from_utf8(r.body.unwrap()).unwrap();
        assert_eq!(
            body,
            "grant_type=refresh_token&refresh_token=r+t&client_id=c"
        );
        assert_eq!(r.headers.get("authorization"), Some("Basic Yzpz"));
    }

    #[test]
    fn refresh_token_and_lifetime_are_read() {
        let t = parse(&resp(
            200,
            r#"{"access_token":"a","refresh_token":"r","expires_in":"600"}"#,
        ))
        .unwrap();
        assert_eq!(t.refresh_token, Some(RefreshToken::new("r")));
        assert_eq!(t.expires_in, Some(600));
        let t = parse(&resp(200, r#"{"access_token":"a","refresh_token":""}"#)).unwrap();
        assert_eq!((t.refresh_token, t.expires_in), (None, None));
    }

    #[test]
    fn server_error_is_502_and_non_bearer_refused() {
        assert_eq!(parse(&resp(503, "down")).err().unwrap().status(), 502);
        assert!(parse(&resp(200, r#"{"access_token":"x","token_type":"mac"}"#)).is_err());
        assert!(parse(&resp(200, r#"{"access_token":"x","token_type":"bearer"}"#)).is_ok());
    }
}
