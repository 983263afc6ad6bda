//! Endpoints: from the bindings, completed by OpenID Connect Discovery 1.0
//! when `OIDC_ISSUER` is set. The document is checked here (issuer, https
//! endpoints) and cached by `cache::store`.

use super::settings::OAuthSettings;
use super::OAuthError;
use crate::cache::store::{DocumentCache, Lookup};
use crate::cache::CacheSettings;
use crate::http::OutboundRequest;
use crate::jose::keys::Alg;
use crate::ports::Io;
use crate::url_policy::is_secure_url;
use serde::Deserialize;

#[derive(Clone, Debug, PartialEq)]
pub struct Endpoints {
    pub authorize: String,
    pub token: String,
    pub userinfo: Option<String>,
    pub jwks: Option<String>,
    /// Signature algorithms the provider says it uses for id_tokens.
    pub id_token_algs: Vec<String>,
    /// OpenID Connect RP-Initiated Logout 1.0, 2.1.
    pub end_session: Option<String>,
}

#[derive(Deserialize)]
struct Metadata {
    issuer: String,
    authorization_endpoint: String,
    token_endpoint: String,
    #[serde(default)]
    userinfo_endpoint: Option<String>,
    #[serde(default)]
    jwks_uri: Option<String>,
    #[serde(default)]
    id_token_signing_alg_values_supported: Vec<String>,
    #[serde(default)]
    end_session_endpoint: Option<String>,
}

pub struct Discovery {
    docs: DocumentCache<Endpoints>,
}

impl Default for Discovery {
    fn default() -> Self {
        Discovery {
            docs: DocumentCache::new("discovery"),
        }
    }
}

/// Algorithms accepted for id_tokens: the provider's list, never `none`/HS*;
/// RS256 when the provider lists nothing (OIDC Core 3.1.3.7 step 7 default).
pub fn accepted_algs(e: &Endpoints) -> Vec<Alg> {
    let listed: Vec<Alg> = e
        .id_token_algs
        .iter()
        .filter_map(|a| Alg::parse(a))
        .collect();
    if listed.is_empty() {
        vec![Alg::Rs256]
    } else {
        listed
    }
}

fn from_bindings(cfg: &OAuthSettings) -> Option<Endpoints> {
    Some(Endpoints {
        authorize: cfg.authorize_url.as_ref()?.to_string(),
        token: cfg.token_url.as_ref()?.to_string(),
        userinfo: cfg.userdata_url.as_ref().map(|u| u.to_string()),
        jwks: cfg.jwks_url.as_ref().map(|u| u.to_string()),
        id_token_algs: Vec::new(),
        end_session: None,
    })
}

/// Explicit bindings win over discovered values.
fn merge(cfg: &OAuthSettings, d: &Endpoints) -> Endpoints {
    let or = |b: &Option<url::Url>, d: &str| b.as_ref().map_or(d.to_string(), |u| u.to_string());
    Endpoints {
        authorize: or(&cfg.authorize_url, &d.authorize),
        token: or(&cfg.token_url, &d.token),
        userinfo: cfg
            .userdata_url
            .as_ref()
            .map(|u| u.to_string())
            .or_else(|| d.userinfo.clone()),
        jwks: cfg
            .jwks_url
            .as_ref()
            .map(|u| u.to_string())
            .or_else(|| d.jwks.clone()),
        id_token_algs: d.id_token_algs.clone(),
        end_session: d.end_session.clone(),
    }
}

/// OpenID Connect Discovery 1.0, 4.1: the document's location.
pub fn discovery_url(issuer: &str) -> String {
    format!(
        "{}/.well-known/openid-configuration",
        issuer.trim_end_matches('/')
    )
}

/// A discovery document, checked: 4.3, its `issuer` is exactly the
/// configured one; every endpoint is https (or loopback http).
pub fn parse_document(issuer: &str, body: &str) -> Result<Endpoints, String> {
    let m: Metadata = crate::json::object(body.as_bytes())
        .map_err(|e| format!("not a discovery document: {e}"))?;
    if m.issuer != issuer {
        return Err(format!("document issuer {:?} is not {issuer:?}", m.issuer));
    }
    for u in [
        Some(&m.authorization_endpoint),
        Some(&m.token_endpoint),
        m.userinfo_endpoint.as_ref(),
        m.jwks_uri.as_ref(),
        m.end_session_endpoint.as_ref(),
    ]
    .into_iter()
    .flatten()
    {
        let ok = url::Url::parse(u)
            .map(|u| is_secure_url(&u))
            .unwrap_or(false);
        if !ok {
            return Err(format!("endpoint {u:?} is not an https URL"));
        }
    }
    Ok(Endpoints {
        authorize: m.authorization_endpoint,
        token: m.token_endpoint,
        userinfo: m.userinfo_endpoint,
        jwks: m.jwks_uri,
        id_token_algs: m.id_token_signing_alg_values_supported,
        end_session: m.end_session_endpoint,
    })
}

impl Discovery {
    pub async fn endpoints(
        &self,
        cfg: &OAuthSettings,
        cache: &CacheSettings,
        io: &impl Io,
    ) -> Result<Endpoints, OAuthError> {
        let Some(issuer) = &cfg.issuer else {
            return from_bindings(cfg).ok_or(OAuthError::NotConfigured);
        };
        // Azure AD's multi-tenant document names a template, not the
        // authority it was fetched from.
        let named = cfg.discovery_issuer.as_deref().unwrap_or(issuer);
        let parse = |body: &str| parse_document(named, body);
        let doc = self
            .docs
            .get(
                io,
                cache,
                Lookup {
                    request: OutboundRequest::get(&discovery_url(issuer)),
                    has_needed: &|_| true,
                    parse: &parse,
                },
            )
            .await
            .map_err(|e| OAuthError::Discovery(e.to_string()))?;
        Ok(merge(cfg, &doc))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_issuer_ending_in_a_slash_is_compared_exactly() {
        let doc = r#"{"issuer":"https://tenant.auth0.example/","authorization_endpoint":"https://tenant.auth0.example/authorize","token_endpoint":"https://tenant.auth0.example/oauth/token"}"#;
        assert!(parse_document("https://tenant.auth0.example/", doc).is_ok());
        assert!(parse_document("https://tenant.auth0.example", doc).is_err());
        assert_eq!(
            discovery_url("https://tenant.auth0.example/"),
            "https://tenant.auth0.example/.well-known/openid-configuration"
        );
    }
}
