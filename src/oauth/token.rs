//! RFC 6749 4.1.3 access token request and 5.1/5.2 response handling.

use super::settings::{OAuthSettings, TokenAuth};
use super::OAuthError;
use crate::http::{Headers, Method, OutboundRequest, OutboundResponse};
use crate::secret::AccessToken;
use base64::{engine::general_purpose::STANDARD, Engine};
use serde::Deserialize;

pub struct TokenResponse {
    pub access_token: AccessToken,
    pub id_token: Option<String>,
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
    fn server_error_is_502_and_non_bearer_refused() {
        assert_eq!(parse(&resp(503, "down")).err().unwrap().status(), 502);
        assert!(parse(&resp(200, r#"{"access_token":"x","token_type":"mac"}"#)).is_err());
        assert!(parse(&resp(200, r#"{"access_token":"x","token_type":"bearer"}"#)).is_ok());
    }
}
