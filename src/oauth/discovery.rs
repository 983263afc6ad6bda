//! Endpoints: from the bindings, completed by OpenID Connect Discovery 1.0
//! when `OIDC_ISSUER` is set. The document is cached in isolate memory and
//! in KV `JWKS_CACHE`.

use super::OAuthError;
use crate::config::{is_secure_url, OAuthConfig};
use crate::http::{OutboundRequest, UnixTime};
use crate::io::{Io, KvNamespace};
use crate::jwks::{ttl_from_cache_control, Alg, STALE_LIMIT};
use serde::{Deserialize, Serialize};
use std::cell::RefCell;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Endpoints {
    pub authorize: String,
    pub token: String,
    pub userinfo: Option<String>,
    pub jwks: Option<String>,
    /// Signature algorithms the provider says it uses for id_tokens.
    pub id_token_algs: Vec<String>,
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
}

#[derive(Serialize, Deserialize)]
struct Cached {
    endpoints: Endpoints,
    fetched_at: u64,
    ttl: u64,
}

#[derive(Default)]
pub struct DiscoveryCache {
    entry: RefCell<Option<Cached>>,
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

fn from_bindings(cfg: &OAuthConfig) -> Option<Endpoints> {
    Some(Endpoints {
        authorize: cfg.authorize_url.as_ref()?.to_string(),
        token: cfg.token_url.as_ref()?.to_string(),
        userinfo: cfg.userdata_url.as_ref().map(|u| u.to_string()),
        jwks: cfg.jwks_url.as_ref().map(|u| u.to_string()),
        id_token_algs: Vec::new(),
    })
}

/// Explicit bindings win over discovered values.
fn merge(cfg: &OAuthConfig, d: Endpoints) -> Endpoints {
    Endpoints {
        authorize: cfg
            .authorize_url
            .as_ref()
            .map(|u| u.to_string())
            .unwrap_or(d.authorize),
        token: cfg
            .token_url
            .as_ref()
            .map(|u| u.to_string())
            .unwrap_or(d.token),
        userinfo: cfg
            .userdata_url
            .as_ref()
            .map(|u| u.to_string())
            .or(d.userinfo),
        jwks: cfg.jwks_url.as_ref().map(|u| u.to_string()).or(d.jwks),
        id_token_algs: d.id_token_algs,
    }
}

impl DiscoveryCache {
    pub async fn endpoints(
        &self,
        cfg: &OAuthConfig,
        io: &impl Io,
    ) -> Result<Endpoints, OAuthError> {
        let Some(issuer) = &cfg.issuer else {
            return from_bindings(cfg).ok_or(OAuthError::NotConfigured);
        };
        let now = io.now();
        let kv_key = format!("discovery:{issuer}");
        if self.entry.borrow().is_none() {
            if let Some(raw) = io.kv_get(KvNamespace::JwksCache, &kv_key).await {
                if let Ok(c) = serde_json::from_str::<Cached>(&raw) {
                    *self.entry.borrow_mut() = Some(c);
                }
            }
        }
        if let Some(c) = self.entry.borrow().as_ref() {
            if now.since(UnixTime(c.fetched_at)) < c.ttl {
                return Ok(merge(cfg, c.endpoints.clone()));
            }
        }
        match fetch(issuer, io).await {
            Ok((endpoints, ttl)) => {
                let c = Cached {
                    endpoints: endpoints.clone(),
                    fetched_at: now.0,
                    ttl,
                };
                io.kv_put(
                    KvNamespace::JwksCache,
                    &kv_key,
                    &serde_json::to_string(&c).unwrap_or_default(),
                    ttl + STALE_LIMIT,
                )
                .await;
                *self.entry.borrow_mut() = Some(c);
                Ok(merge(cfg, endpoints))
            }
            Err(detail) => {
                let stale = self.entry.borrow().as_ref().and_then(|c| {
                    (now.since(UnixTime(c.fetched_at)) < c.ttl + STALE_LIMIT)
                        .then(|| c.endpoints.clone())
                });
                match stale {
                    Some(e) => {
                        io.log(&crate::log::line(
                            "discovery_stale_used",
                            &[("issuer", issuer), ("error", &detail)],
                        ));
                        Ok(merge(cfg, e))
                    }
                    None => Err(OAuthError::Discovery(detail)),
                }
            }
        }
    }
}

async fn fetch(issuer: &str, io: &impl Io) -> Result<(Endpoints, u64), String> {
    let url = format!("{issuer}/.well-known/openid-configuration");
    let resp = io
        .fetch(OutboundRequest::get(&url))
        .await
        .map_err(|e| e.to_string())?;
    if resp.status != 200 {
        return Err(format!("{url} answered {}", resp.status));
    }
    let m: Metadata = serde_json::from_slice(&resp.body).map_err(|e| format!("{url}: {e}"))?;
    // OpenID Connect Discovery 1.0, 4.3: the issuer in the document must be
    // exactly the one configured.
    if m.issuer.trim_end_matches('/') != issuer {
        return Err(format!("document issuer {:?} is not {issuer:?}", m.issuer));
    }
    for u in [
        Some(&m.authorization_endpoint),
        Some(&m.token_endpoint),
        m.userinfo_endpoint.as_ref(),
        m.jwks_uri.as_ref(),
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
    let ttl = ttl_from_cache_control(resp.headers.get("cache-control"));
    Ok((
        Endpoints {
            authorize: m.authorization_endpoint,
            token: m.token_endpoint,
            userinfo: m.userinfo_endpoint,
            jwks: m.jwks_uri,
            id_token_algs: m.id_token_signing_alg_values_supported,
        },
        ttl,
    ))
}
