//! Google: OpenID Connect. `HOSTED_DOMAIN` is checked against the `hd`
//! claim (the Workspace the account belongs to), never against the email's
//! text, which anyone can choose for a consumer account; the email must be
//! verified. With one hosted domain the username is the email's local part
//! (OAuthenticator's `strip_domain` default).

use super::Provider;
use crate::identity::from_claims::string_claim;
use crate::oauth::settings::{OAuthSettings, Preset};
use crate::oauth::OAuthError;
use serde_json::Value;

pub const ISSUER: &str = "https://accounts.google.com";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GoogleSettings {
    /// Lower-cased.
    pub hosted_domains: Vec<String>,
}

pub struct Google;

fn hosted(s: &OAuthSettings) -> &[String] {
    match &s.preset {
        Preset::Google(g) => &g.hosted_domains,
        _ => &[],
    }
}

fn verified(claims: &Value) -> bool {
    match claims.get("email_verified") {
        Some(Value::Bool(b)) => *b,
        // Some Google responses carry it as a string.
        Some(Value::String(s)) => s == "true",
        _ => false,
    }
}

impl Provider for Google {
    fn username(&self, s: &OAuthSettings, claims: &Value) -> Option<String> {
        let name = string_claim(claims, &s.username_key)?;
        match (hosted(s), name.rsplit_once('@')) {
            ([only], Some((local, domain))) if domain.eq_ignore_ascii_case(only) => {
                Some(local.to_string())
            }
            _ => Some(name),
        }
    }

    fn check_claims(&self, s: &OAuthSettings, claims: &Value) -> Result<(), OAuthError> {
        if !verified(claims) {
            return Err(OAuthError::ProviderRule(
                "Google says this account's email address is not verified".into(),
            ));
        }
        let domains = hosted(s);
        if domains.is_empty() {
            return Ok(());
        }
        let hd = claims
            .get("hd")
            .and_then(Value::as_str)
            .map(str::to_lowercase)
            .unwrap_or_default();
        if domains.contains(&hd) {
            Ok(())
        } else {
            Err(OAuthError::ProviderRule(format!(
                "the Google account is not in a hosted domain allowed here (hd={hd:?})"
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_unverified_email_is_refused_even_as_a_string_false() {
        assert!(verified(&json!({"email_verified": true})));
        assert!(verified(&json!({"email_verified": "true"})));
        assert!(!verified(&json!({"email_verified": "false"})));
        assert!(!verified(&json!({})));
    }
}
