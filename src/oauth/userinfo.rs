//! OpenID Connect Core 5.3 UserInfo (or GenericOAuthenticator's userdata URL).

use super::OAuthError;
use crate::http::{OutboundRequest, OutboundResponse};
use crate::jose::claims::ClaimMap;
use crate::secret::AccessToken;

pub fn request(url: &str, token: &AccessToken) -> OutboundRequest {
    let mut r = OutboundRequest::get(url);
    r.headers
        .push("Authorization", format!("Bearer {}", token.expose()));
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
