//! The launch: an id_token posted by the platform (LTI Core 1.3, 5.1;
//! IMS Security Framework 1.0, 5.1.3). `UntrustedLaunch` is what arrived;
//! only `UntrustedLaunch::verify` makes a `VerifiedLaunch`, and only a
//! `VerifiedLaunch` becomes a session.

use super::registration::Registration;
use super::{LtiError, CLAIM, DL_CLAIM};
use crate::http::UnixTime;
use crate::jose::claims::{self, ClaimMap};
use crate::jose::keys::{verify_jwt, Alg, KeySet};
use serde_json::Value;

/// The signature algorithm is fixed by the registration, never taken from
/// the token header alone (IMS Security Framework 6.1: RS256).
pub const LAUNCH_ALGS: &[Alg] = &[Alg::Rs256];
pub const LTI_VERSION: &str = "1.3.0";

/// An id_token as posted: nothing about it is trusted yet.
pub struct UntrustedLaunch<'a>(pub &'a str);

/// What the launch must match, all from the flow cookie and configuration.
pub struct Expectations<'a> {
    pub registration: Registration<'a>,
    /// The nonce the flow cookie holds (sent in the authentication request).
    /// Whether it was used before is the one-time store's to say, after
    /// verification.
    pub nonce: &'a str,
    pub now: UnixTime,
    pub leeway: u64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct DeepLinkingSettings {
    pub return_url: url::Url,
    /// Opaque; must be sent back unchanged (LTI Deep Linking 2.0, 4.4.1).
    pub data: Option<Value>,
    pub accept_types: Vec<String>,
    pub title: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    ResourceLink { id: String },
    DeepLinking(DeepLinkingSettings),
}

/// A launch whose signature, issuer, audience, time window, nonce and LTI
/// claims were all checked. Only `UntrustedLaunch::verify` makes one.
#[derive(Debug)]
pub struct VerifiedLaunch {
    issuer: String,
    client_id: String,
    deployment_id: String,
    message: Message,
    target_link_uri: String,
    roles: Vec<String>,
    claims: ClaimMap,
}

fn lti(claims: &ClaimMap, name: &str) -> Option<Value> {
    claims.get(&format!("{CLAIM}{name}")).cloned()
}

fn bad(claim: &'static str, reason: impl Into<String>) -> LtiError {
    LtiError::LaunchClaim {
        claim,
        reason: reason.into(),
    }
}

fn non_empty_str(v: Option<&Value>) -> Option<String> {
    v.and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

impl UntrustedLaunch<'_> {
    /// `kid` from the header, to pick (or refetch) the platform's key set.
    pub fn kid(&self) -> Option<String> {
        crate::jose::keys::header_kid(self.0)
    }

    /// The `nonce` as sent, unverified: it names the storage entry the check
    /// page compares (Platform Storage); the verified nonce decides.
    pub fn unverified_nonce(&self) -> Option<String> {
        crate::jose::keys::unverified_string_claim(self.0, "nonce")
    }

    pub fn verify(self, keys: &KeySet, exp: &Expectations<'_>) -> Result<VerifiedLaunch, LtiError> {
        let reg = exp.registration;
        // IMS Security Framework 5.1.3 step 1 (and RFC 7515): the signature
        // verifies with the platform's key named by `kid`, RS256 only.
        let (_, c) = verify_jwt::<ClaimMap>(self.0, keys, LAUNCH_ALGS)?;
        // 5.1.3 steps 2-4: `iss` is the registered platform; `aud` contains
        // our client_id; with several audiences `azp` is required and equal.
        claims::check_issuer_and_audience(&c.custom, &reg.platform.issuer, reg.client_id)?;
        // 5.1.3 steps 5-7: `exp` in the future, `iat` not in the future,
        // `nbf` passed, each within LTI13_TIME_LEEWAY.
        claims::check_time(&c, exp.now, exp.leeway)?;
        // 5.1.3 step 9: `nonce` is the one sent with the authentication
        // request (its single use is checked by the caller, once verified).
        claims::check_nonce(&c.custom, exp.nonce)?;
        let claims = c.custom;

        // LTI Core 1.3, 5.3.3: deployment_id present (and registered when
        // the registration lists deployments).
        let deployment_id = non_empty_str(lti(&claims, "deployment_id").as_ref())
            .ok_or_else(|| bad("deployment_id", "missing"))?;
        if deployment_id.len() > 255 {
            return Err(bad("deployment_id", "longer than 255 characters"));
        }
        if !reg.platform.accepts_deployment(&deployment_id) {
            return Err(LtiError::UnknownDeployment(deployment_id));
        }
        // LTI Core 1.3, 5.3.2: version is 1.3.0.
        match lti(&claims, "version") {
            Some(Value::String(v)) if v == LTI_VERSION => {}
            Some(other) => return Err(bad("version", format!("{other} is not \"1.3.0\""))),
            None => return Err(bad("version", "missing")),
        }
        // LTI Core 1.3, 5.3.1 (message_type) and 5.3.5 (resource_link.id);
        // LTI Deep Linking 2.0, 4.4 (deep_linking_settings).
        let message = match non_empty_str(lti(&claims, "message_type").as_ref()).as_deref() {
            Some("LtiResourceLinkRequest") => {
                let link =
                    lti(&claims, "resource_link").ok_or_else(|| bad("resource_link", "missing"))?;
                let id = non_empty_str(link.get("id"))
                    .ok_or_else(|| bad("resource_link", "id is missing or empty"))?;
                if id.len() > 255 {
                    return Err(bad("resource_link", "id longer than 255 characters"));
                }
                Message::ResourceLink { id }
            }
            Some("LtiDeepLinkingRequest") => Message::DeepLinking(deep_linking_settings(&claims)?),
            Some(other) => return Err(bad("message_type", format!("{other:?} is not supported"))),
            None => return Err(bad("message_type", "missing")),
        };
        // LTI Core 1.3, 5.3.4: target_link_uri present.
        let target_link_uri = non_empty_str(lti(&claims, "target_link_uri").as_ref())
            .ok_or_else(|| bad("target_link_uri", "missing"))?;
        // LTI Core 1.3, 5.3.7: roles present (it may be an empty array).
        let roles = match lti(&claims, "roles") {
            Some(Value::Array(items)) => items
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect(),
            Some(_) => return Err(bad("roles", "is not an array")),
            None => return Err(bad("roles", "missing")),
        };
        Ok(VerifiedLaunch {
            issuer: reg.platform.issuer.clone(),
            client_id: reg.client_id.to_string(),
            deployment_id,
            message,
            target_link_uri,
            roles,
            claims,
        })
    }
}

fn deep_linking_settings(claims: &ClaimMap) -> Result<DeepLinkingSettings, LtiError> {
    let s = claims
        .get(&format!("{DL_CLAIM}deep_linking_settings"))
        .and_then(Value::as_object)
        .ok_or_else(|| bad("deep_linking_settings", "missing"))?;
    let raw = non_empty_str(s.get("deep_link_return_url"))
        .ok_or_else(|| bad("deep_linking_settings", "deep_link_return_url is missing"))?;
    let return_url = url::Url::parse(&raw)
        .ok()
        .filter(crate::url_policy::is_secure_url)
        .ok_or_else(|| {
            bad(
                "deep_linking_settings",
                "deep_link_return_url is not an https URL",
            )
        })?;
    let accept_types = s
        .get("accept_types")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    Ok(DeepLinkingSettings {
        return_url,
        data: s.get("data").filter(|d| !d.is_null()).cloned(),
        accept_types,
        title: non_empty_str(s.get("title")),
    })
}

impl VerifiedLaunch {
    pub fn issuer(&self) -> &str {
        &self.issuer
    }
    pub fn client_id(&self) -> &str {
        &self.client_id
    }
    pub fn deployment_id(&self) -> &str {
        &self.deployment_id
    }
    pub fn message(&self) -> &Message {
        &self.message
    }
    pub fn target_link_uri(&self) -> &str {
        &self.target_link_uri
    }
    pub fn roles(&self) -> &[String] {
        &self.roles
    }
    pub fn claims(&self) -> &ClaimMap {
        &self.claims
    }

    /// `LTI13_USERNAME_KEY`: a top-level claim, or `custom_X` for the custom
    /// claim's `X`; `sub` when that is absent or empty (ltiauthenticator's
    /// rule). `None` when neither is there.
    pub fn username(&self, key: &str) -> Option<String> {
        let from_key = match key.strip_prefix("custom_") {
            Some(name) => self
                .claims
                .get(&format!("{CLAIM}custom"))
                .and_then(|c| c.get(name))
                .and_then(scalar),
            None => self.claims.get(key).and_then(scalar),
        };
        from_key.or_else(|| self.claims.get("sub").and_then(scalar))
    }

    /// A role in `admin_roles` makes the user an admin. A configured short
    /// name (`Instructor`) also matches the full role URI ending in
    /// `#Instructor` (a sub-role such as `…/Instructor#TeachingAssistant`
    /// ends in its own name, so it does not).
    pub fn is_admin(&self, admin_roles: &[String]) -> bool {
        self.roles.iter().any(|role| {
            admin_roles.iter().any(|a| {
                role == a
                    || (!a.contains(['#', '/', ':'])
                        && role.rsplit_once('#').is_some_and(|(_, name)| name == a))
            })
        })
    }

    /// Groups from the course context (LTI Core 1.3, 5.4.1): its `id` and
    /// its `label`, when present, namespaced by platform
    /// (`lti:<platform>:<id>`) so a course can never be named like an
    /// identity provider's group, nor like another platform's course.
    pub fn groups(&self, platform: &str) -> Vec<String> {
        let Some(ctx) = lti(&self.claims, "context") else {
            return Vec::new();
        };
        let mut out: Vec<String> = Vec::new();
        for f in ["id", "label"] {
            if let Some(v) = non_empty_str(ctx.get(f)) {
                let v = format!("lti:{platform}:{v}");
                if !out.contains(&v) {
                    out.push(v);
                }
            }
        }
        out
    }

    /// The course group of the context's id (`lti:<platform>:<context id>`),
    /// which roster roles extend and Assignment and Grade records name.
    pub fn context_id(&self) -> Option<String> {
        non_empty_str(lti(&self.claims, "context")?.get("id"))
    }

    /// `sub`: the user at the platform (a score's `userId`, a roster's `user_id`).
    pub fn subject(&self) -> Option<String> {
        non_empty_str(self.claims.get("sub"))
    }

    pub fn email(&self) -> Option<String> {
        non_empty_str(self.claims.get("email"))
    }
}

fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Where a launch lands: `target_link_uri` when it is on this hub (same
/// origin, under BASE_URL, a safe path); the hub's home otherwise. A target
/// naming the worker's own LTI routes (ltiauthenticator registrations use the
/// launch URL as target) lands on its `next` query parameter or the home.
pub fn landing(target_link_uri: &str, origin: &str, base_path: &str) -> String {
    let home = format!("{base_path}hub/");
    let Ok(u) = url::Url::parse(target_link_uri) else {
        return home;
    };
    if u.origin().ascii_serialization() != origin || !u.path().starts_with(base_path) {
        return home;
    }
    let lti_routes = format!("{base_path}hub/lti13/");
    if u.path().starts_with(&lti_routes) {
        let next = u
            .query_pairs()
            .find(|(k, _)| k == "next")
            .map(|(_, v)| v.into_owned());
        return match next.as_deref().and_then(crate::url_policy::safe_path) {
            Some(n) if n.starts_with(base_path) && !n.starts_with(&lti_routes) => n.to_string(),
            _ => home,
        };
    }
    let mut path = u.path().to_string();
    if let Some(q) = u.query() {
        path.push('?');
        path.push_str(q);
    }
    match crate::url_policy::safe_path(&path) {
        Some(p) => p.to_string(),
        None => home,
    }
}
