//! The platform's access token for LTI Advantage services (1EdTech
//! Security Framework 1.0, 4.1): the client-credentials grant with a JWT
//! client assertion (RFC 7523) signed by the tool key. Tokens are kept in
//! the isolate's memory, per registration and scope set, until shortly
//! before they expire; never in KV or a cookie.

use super::ServiceError;
use crate::http::{Headers, Method, OutboundRequest, OutboundResponse, UnixTime};
use crate::jose::hs256::to_datetime;
use crate::lti::tool_keys::ToolKey;
use crate::secret::PlatformToken;
use jwt_compact::Claims;
use serde::{Deserialize, Serialize};
use std::cell::RefCell;
use std::collections::HashMap;

pub const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// A token is not used in its last minute (clock skew, request time).
const EXPIRY_MARGIN: u64 = 60;
/// Without `expires_in`, a token is kept this long.
const DEFAULT_LIFETIME: u64 = 300;
const ASSERTION_LIFETIME: u64 = 300;

#[derive(Serialize)]
struct AssertionClaims<'a> {
    iss: &'a str,
    sub: &'a str,
    aud: &'a str,
    jti: &'a str,
}

/// The client assertion: `iss` = `sub` = the tool's client id, `aud` the
/// token endpoint (or the platform's stated audience), short-lived, unique.
pub fn client_assertion(
    key: &ToolKey,
    client_id: &str,
    audience: &str,
    jti: &str,
    now: UnixTime,
) -> String {
    let mut c = Claims::new(AssertionClaims {
        iss: client_id,
        sub: client_id,
        aud: audience,
        jti,
    });
    c.issued_at = Some(to_datetime(now));
    c.expiration = Some(to_datetime(now.plus(ASSERTION_LIFETIME)));
    key.sign(&c)
}

pub fn request(token_url: &str, assertion: &str, scopes: &[&str]) -> OutboundRequest {
    let body = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("grant_type", "client_credentials")
        .append_pair("client_assertion_type", ASSERTION_TYPE)
        .append_pair("client_assertion", assertion)
        .append_pair("scope", &scopes.join(" "))
        .finish();
    let mut headers = Headers::new();
    headers.push("Content-Type", "application/x-www-form-urlencoded");
    headers.push("Accept", "application/json");
    OutboundRequest {
        method: Method::Post,
        url: token_url.to_string(),
        headers,
        body: Some(body.into_bytes()),
        timeout_ms: 5_000,
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
    expires_in: Option<serde_json::Value>,
    #[serde(default)]
    error: Option<String>,
}

#[derive(Clone, Debug)]
pub struct Granted {
    pub token: PlatformToken,
    pub expires_at: UnixTime,
}

/// RFC 6749 5.1 / 5.2.
pub fn parse(resp: &OutboundResponse, now: UnixTime) -> Result<Granted, ServiceError> {
    let raw: Result<Raw, _> = crate::json::object(&resp.body);
    if let Ok(Raw { error: Some(e), .. }) = &raw {
        return Err(ServiceError::Token(format!(
            "error {e:?} (status {})",
            resp.status
        )));
    }
    if resp.status != 200 {
        return Err(ServiceError::Token(format!("status {}", resp.status)));
    }
    let raw = raw.map_err(|e| ServiceError::Token(format!("not a JSON object: {e}")))?;
    let token = raw
        .access_token
        .filter(|t| !t.is_empty())
        .ok_or_else(|| ServiceError::Token("no access_token".into()))?;
    if let Some(t) = &raw.token_type {
        if !t.eq_ignore_ascii_case("bearer") {
            return Err(ServiceError::Token(format!(
                "token_type {t:?} is not Bearer"
            )));
        }
    }
    // A token whose lifetime cannot be read is used once and not kept.
    let lifetime = match &raw.expires_in {
        None => Some(DEFAULT_LIFETIME),
        Some(v) => crate::json::seconds(v),
    }
    .unwrap_or(0);
    Ok(Granted {
        token: PlatformToken::new(token),
        expires_at: now.plus(lifetime.saturating_sub(EXPIRY_MARGIN)),
    })
}

/// Tokens per (registration, scopes), for this isolate.
#[derive(Default)]
pub struct TokenCache {
    tokens: RefCell<HashMap<(String, String), Granted>>,
}

impl TokenCache {
    pub fn get(&self, registration: &str, scopes: &[&str], now: UnixTime) -> Option<PlatformToken> {
        let key = (registration.to_string(), scopes.join(" "));
        let tokens = self.tokens.borrow();
        tokens
            .get(&key)
            .filter(|g| g.expires_at > now)
            .map(|g| g.token.clone())
    }
    pub fn put(&self, registration: &str, scopes: &[&str], granted: Granted) {
        let mut tokens = self.tokens.borrow_mut();
        // Bounded: one entry per registration and scope set in use.
        if tokens.len() > 256 {
            tokens.clear();
        }
        tokens.insert((registration.to_string(), scopes.join(" ")), granted);
    }
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
    fn a_token_is_used_until_a_minute_before_it_expires() {
        let g = parse(
            &resp(
                200,
                r#"{"access_token":"t","token_type":"bearer","expires_in":3600}"#,
            ),
            UnixTime(1000),
        )
        .unwrap();
        assert_eq!(g.expires_at, UnixTime(1000 + 3600 - 60));
        let g = parse(
            &resp(
                200,
                r#"{"access_token":"t","token_type":"Bearer","expires_in":"120"}"#,
            ),
            UnixTime(0),
        )
        .unwrap();
        assert_eq!(g.expires_at, UnixTime(60));
    }

    #[test]
    fn refusals_and_malformed_answers_are_token_errors() {
        for (status, body) in [
            (400, r#"{"error":"invalid_grant"}"#),
            (200, r#"{"error":"invalid_scope"}"#),
            (200, r#"{"token_type":"Bearer"}"#),
            (200, r#"{"access_token":"t","token_type":"mac"}"#),
            (200, r#"["access_token"]"#),
            (500, "oops"),
        ] {
            assert!(
                matches!(
                    parse(&resp(status, body), UnixTime(0)),
                    Err(ServiceError::Token(_))
                ),
                "{status} {body}"
            );
        }
    }

    #[test]
    fn the_cache_keys_on_registration_and_scopes() {
        let c = TokenCache::default();
        let g = Granted {
            token: PlatformToken::new("a"),
            expires_at: UnixTime(100),
        };
        c.put("r1", &["s1"], g);
        assert!(c.get("r1", &["s1"], UnixTime(99)).is_some());
        assert!(c.get("r1", &["s1"], UnixTime(100)).is_none());
        assert!(c.get("r1", &["s2"], UnixTime(0)).is_none());
        assert!(c.get("r2", &["s1"], UnixTime(0)).is_none());
    }
}
