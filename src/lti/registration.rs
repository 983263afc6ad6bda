//! Platform registrations and how a request is matched to one.
//!
//! A launch is matched on issuer + client_id (+ deployment when the
//! registration lists deployment ids). The flow cookie remembers which
//! registration started the flow, so the launch is verified against exactly
//! that one's keys and identifiers.

use super::LtiError;
use super::LtiSettings;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Platform {
    /// A short name: in course groups (`lti:<name>:<course>`) and, when
    /// usernames are namespaced, in usernames. Defaults to the issuer's host.
    pub name: String,
    /// `iss` of the platform, compared exactly.
    pub issuer: String,
    /// The tool's client ids at this platform (one registration each).
    pub client_ids: Vec<String>,
    pub authorize_url: url::Url,
    pub jwks_url: url::Url,
    /// The platform's OAuth 2.0 token endpoint (LTI Advantage services:
    /// Names and Roles, Assignment and Grade); services are off without it.
    pub token_url: Option<url::Url>,
    /// `aud` of the tool's client assertion; the token URL when unset.
    pub token_audience: Option<String>,
    /// Added by dynamic registration, not by the operator's bindings: its
    /// roles never make hub admins.
    pub registered: bool,
    /// Empty: any deployment of a registered client is accepted.
    pub deployment_ids: Vec<String>,
}

impl Platform {
    pub fn accepts_deployment(&self, deployment_id: &str) -> bool {
        self.deployment_ids.is_empty() || self.deployment_ids.iter().any(|d| d == deployment_id)
    }
}

/// One registration: a platform and one of its client ids.
#[derive(Debug, Clone, Copy)]
pub struct Registration<'a> {
    pub platform: &'a Platform,
    pub client_id: &'a str,
}

impl<'a> Registration<'a> {
    /// The compact key the flow cookie carries (`LtiFlow::registration`).
    pub fn key(&self) -> String {
        serde_json::json!([self.platform.issuer, self.client_id]).to_string()
    }
}

/// LTI Core 1.3, 5.1.1 / IMS Security Framework 5.1.1 (third-party initiated
/// login): the issuer must be registered; `client_id`, when sent, must be one
/// of its registrations; without it the issuer must have exactly one;
/// `lti_deployment_id`, when sent, must be accepted by the registration.
pub fn match_login<'a>(
    cfg: &'a LtiSettings,
    issuer: &str,
    client_id: Option<&str>,
    deployment_id: Option<&str>,
) -> Result<Registration<'a>, LtiError> {
    let candidates: Vec<Registration<'a>> = cfg
        .platforms
        .iter()
        .filter(|p| p.issuer == issuer)
        .flat_map(|p| {
            p.client_ids.iter().map(move |c| Registration {
                platform: p,
                client_id: c.as_str(),
            })
        })
        .collect();
    if candidates.is_empty() {
        return Err(LtiError::UnknownIssuer(issuer.into()));
    }
    let reg = match client_id {
        Some(cid) => *candidates
            .iter()
            .find(|r| r.client_id == cid)
            .ok_or_else(|| LtiError::UnknownClientId {
                issuer: issuer.into(),
                client_id: cid.into(),
            })?,
        None => match candidates.as_slice() {
            [only] => *only,
            _ => return Err(LtiError::AmbiguousClientId(issuer.into())),
        },
    };
    if let Some(d) = deployment_id {
        if !reg.platform.accepts_deployment(d) {
            return Err(LtiError::UnknownDeployment(d.into()));
        }
    }
    Ok(reg)
}

/// The registration a flow cookie names, if it is still configured.
pub fn by_key<'a>(cfg: &'a LtiSettings, key: &str) -> Option<Registration<'a>> {
    let [issuer, client_id]: [String; 2] = serde_json::from_str(key).ok()?;
    cfg.platforms
        .iter()
        .filter(|p| p.issuer == issuer)
        .find_map(|p| {
            p.client_ids
                .iter()
                .find(|c| **c == client_id)
                .map(|c| Registration {
                    platform: p,
                    client_id: c.as_str(),
                })
        })
}
