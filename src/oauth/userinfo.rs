//! OpenID Connect Core 5.3 UserInfo (or GenericOAuthenticator's userdata URL).

use super::settings::{OAuthSettings, TokenPlacement};
use super::OAuthError;
use crate::http::{Method, OutboundRequest, OutboundResponse};
use crate::jose::claims::ClaimMap;
use crate::secret::AccessToken;

/// The user-data request, shaped by `OAUTH2_USERDATA_METHOD`,
/// `OAUTH2_USERDATA_PARAMS` and `OAUTH2_USERDATA_TOKEN_METHOD`: the token
/// in the `Authorization` header (default) or as `access_token` in the
/// query; extra parameters in the query (GET) or a form body (POST).
pub fn request(s: &OAuthSettings, url: &str, token: &AccessToken) -> OutboundRequest {
    let mut query: Vec<(String, String)> = Vec::new();
    if s.userdata_token == TokenPlacement::Query {
        query.push(("access_token".into(), token.expose().to_string()));
    }
    let mut form: Option<Vec<(String, String)>> = None;
    match s.userdata_method {
        Method::Post => form = Some(s.userdata_params.clone()),
        _ => query.extend(s.userdata_params.iter().cloned()),
    }
    let full = match url::Url::parse(url) {
        Ok(mut u) if !query.is_empty() => {
            u.query_pairs_mut().extend_pairs(query.iter());
            u.to_string()
        }
        _ => url.to_string(),
    };
    let mut r = OutboundRequest::get(&full);
    if s.userdata_token == TokenPlacement::Header {
        r.headers
            .push("Authorization", format!("Bearer {}", token.expose()));
    }
    if let Some(pairs) = form {
        r.method = Method::Post;
        r.headers
            .push("Content-Type", "application/x-www-form-urlencoded");
        r.body = Some(
            url::form_urlencoded::Serializer::new(String::new())
                .extend_pairs(pairs.iter())
                .finish()
                .into_bytes(),
        );
    }
    r
}

/// 5.3.2: the `sub` in the UserInfo response must equal the id_token's.
pub fn parse(resp: &OutboundResponse, id_token_sub: Option<&str>) -> Result<ClaimMap, OAuthError> {
    if resp.status != 200 {
        return Err(OAuthError::Userinfo(format!("status {}", resp.status)));
    }
    let v: serde_json::Value = serde_json::from_slice(&resp.body)
        .map_err(|e| OAuthError::Userinfo(format!("not JSON: {e}")))?;
    let serde_json::Value::Object(map) = v else {
        return Err(OAuthError::Userinfo("not a JSON object".into()));
    };
    if let Some(expected) = id_token_sub {
        let got = map.get("sub").and_then(|s| s.as_str()).unwrap_or_default();
        if got != expected {
            return Err(OAuthError::UserinfoSubMismatch {
                userinfo: got.into(),
                id_token: expected.into(),
            });
        }
    }
    Ok(map)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::Headers;

    #[test]
    fn refuses_userinfo_for_another_subject() {
        let r = OutboundResponse {
            status: 200,
            headers: Headers::new(),
            body: br#"{"sub":"b"}"#.to_vec(),
        };
        assert_eq!(parse(&r, Some("a")).err().unwrap().status(), 401);
        assert!(parse(&r, Some("b")).is_ok());
        assert!(parse(&r, None).is_ok());
    }
}
