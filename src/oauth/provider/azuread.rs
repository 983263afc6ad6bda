//! Microsoft Entra ID (Azure AD), identity platform v2.0: OpenID Connect.
//! For the multi-tenant authorities (`common`, `organizations`,
//! `consumers`) Microsoft publishes the issuer as a template,
//! `…/{tenantid}/v2.0`: the id_token's `iss` must be the template with the
//! token's own `tid`. OAuthenticator decodes this id_token without
//! verifying it; here it is verified like any other. A user in too many
//! groups gets no `groups` claim but a pointer to Graph (group overage):
//! with group rules configured that is refused with a message saying so.

use super::Provider;
use crate::jose::keys::unverified_string_claim;
use crate::oauth::settings::{OAuthSettings, Preset};
use crate::oauth::OAuthError;
use serde_json::Value;

pub const AUTHORITY_HOST: &str = "https://login.microsoftonline.com";
pub const TENANT_PLACEHOLDER: &str = "{tenantid}";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AzureSettings {
    /// Set for a multi-tenant authority: `{host}/{tenantid}/v2.0`.
    pub issuer_template: Option<String>,
    /// `ALLOWED_GROUPS` or `ADMIN_GROUPS` is set: missing groups matter.
    pub groups_required: bool,
}

pub fn is_multi_tenant(tenant: &str) -> bool {
    matches!(tenant, "common" | "organizations" | "consumers")
}

pub struct AzureAd;

fn settings(s: &OAuthSettings) -> Option<&AzureSettings> {
    match &s.preset {
        Preset::AzureAd(a) => Some(a),
        _ => None,
    }
}

/// A tenant id as Microsoft issues them (a GUID): nothing that could bend
/// the issuer into another URL.
fn plausible_tenant(tid: &str) -> bool {
    !tid.is_empty() && tid.len() <= 64 && tid.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
}

/// The `groups` claim overflowed into `_claim_names` (group overage).
pub fn group_overage(claims: &Value) -> bool {
    claims.get("groups").is_none()
        && claims
            .get("_claim_names")
            .and_then(|n| n.get("groups"))
            .is_some()
}

impl Provider for AzureAd {
    fn expected_issuer(
        &self,
        s: &OAuthSettings,
        configured: &str,
        unverified_id_token: &str,
    ) -> Result<String, OAuthError> {
        let Some(template) = settings(s).and_then(|a| a.issuer_template.as_ref()) else {
            return Ok(configured.to_string());
        };
        // Read before verification only to name the expected issuer; the
        // token's signature and its `iss` are checked against it next.
        match unverified_string_claim(unverified_id_token, "tid") {
            Some(tid) if plausible_tenant(&tid) => Ok(template.replace(TENANT_PLACEHOLDER, &tid)),
            _ => Err(OAuthError::IdTokenIssuer(
                "a multi-tenant Azure AD id_token must carry its tenant (tid)".into(),
            )),
        }
    }

    fn check_claims(&self, s: &OAuthSettings, claims: &Value) -> Result<(), OAuthError> {
        if settings(s).is_some_and(|a| a.groups_required) && group_overage(claims) {
            return Err(OAuthError::ProviderRule(
                "Azure AD sent no groups for this user: they are in more groups than fit in a \
                 token (group overage). Assign the groups to the application, or use app roles \
                 (GROUPS_CLAIM=roles)"
                    .into(),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn only_guid_like_tenants_fill_the_template() {
        assert!(plausible_tenant("9188040d-6c67-4c5b-b112-36a304b66dad"));
        assert!(!plausible_tenant("evil.example/x"));
        assert!(!plausible_tenant(""));
    }

    #[test]
    fn overage_is_a_pointer_instead_of_the_claim() {
        assert!(group_overage(&json!({"_claim_names": {"groups": "src1"}})));
        assert!(!group_overage(
            &json!({"groups": [], "_claim_names": {"groups": "src1"}})
        ));
        assert!(!group_overage(&json!({})));
    }
}
