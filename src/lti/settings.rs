//! The LTI 1.3 part of the configuration (ltiauthenticator's names).
//!
//! One platform through `LTI13_ISSUER`, `LTI13_CLIENT_ID`,
//! `LTI13_AUTHORIZE_URL`, `LTI13_JWKS_ENDPOINT`, `LTI13_DEPLOYMENT_IDS`; or
//! several through `LTI13_PLATFORMS`, a JSON array of objects with the same
//! fields in lower case without the prefix (`issuer`, `client_id`,
//! `authorize_url`, `jwks_endpoint`, `deployment_ids`). Both may be set; the
//! registrations are then added together.

use super::registration::Platform;
use super::tool_keys::ToolKey;
use crate::bindings::{normalise_pem, parse_list, Bindings, ConfigError, Reader};
use crate::secret::ServiceSecret;
use crate::url_policy::is_secure_url;

/// Roles that make a launch an admin by default: instructors of the course
/// and administrators of the institution or the system (LTI Core 1.3, A.2).
pub const DEFAULT_ADMIN_ROLES: &[&str] = &[
    "http://purl.imsglobal.org/vocab/lis/v2/membership#Instructor",
    "http://purl.imsglobal.org/vocab/lis/v2/membership#Administrator",
    "http://purl.imsglobal.org/vocab/lis/v2/institution/person#Administrator",
    "http://purl.imsglobal.org/vocab/lis/v2/system/person#Administrator",
];

#[derive(Debug, Clone)]
pub struct LtiSettings {
    pub platforms: Vec<Platform>,
    /// A top-level claim of the id_token, or `custom_X` for the custom claim
    /// `X`; `sub` when the claim is absent.
    pub username_key: String,
    /// Allowed clock skew for `exp`/`iat`/`nbf`, seconds.
    pub leeway: u64,
    pub admin_roles: Vec<String>,
    pub tool_name: String,
    pub tool_description: String,
    /// The tool's signing key (deep linking responses, `/hub/lti13/jwks`).
    pub tool_key: Option<ToolKey>,
    /// Origins that may frame the hub for an LTI session (CSP
    /// `frame-ancestors`): `LTI13_FRAME_ANCESTORS`, or by default the origins
    /// of every platform's issuer and authorize URL.
    pub frame_ancestors: Vec<String>,
    /// Seconds a course roster (Names and Roles) is kept; 0: never fetched.
    pub roster_ttl: u64,
    /// `LTI13_SERVICE_SECRET`: what a hub service presents to the
    /// Assignment and Grade endpoint (besides a JupyterHub API token).
    pub service_secret: Option<ServiceSecret>,
    /// `LTI13_DYNAMIC_REGISTRATION`: `/hub/lti13/register` is open (to the
    /// registration secret or a hub admin) and registered platforms count.
    pub dynamic_registration: bool,
    /// `LTI13_REGISTRATION_SECRET`: the `secret` the registration URL carries.
    pub registration_secret: Option<ServiceSecret>,
    /// `LTI13_FRAME_ANCESTORS` was set: registered platforms add no origins.
    pub frame_ancestors_explicit: bool,
}

impl LtiSettings {
    /// These settings with platforms registered through dynamic
    /// registration added. Bindings win: a registered issuer + client id the
    /// bindings already have, or a name another issuer of the bindings uses,
    /// is left out.
    pub fn with_registered(&self, registered: Vec<Platform>) -> LtiSettings {
        let mut out = self.clone();
        for p in registered {
            let known = out.platforms.iter().any(|s| {
                (s.issuer == p.issuer && p.client_ids.iter().any(|c| s.client_ids.contains(c)))
                    || (s.name == p.name && s.issuer != p.issuer)
            });
            if known {
                continue;
            }
            if !self.frame_ancestors_explicit {
                out.frame_ancestors.extend(default_origins(&p));
            }
            out.platforms.push(p);
        }
        out.frame_ancestors.sort();
        out.frame_ancestors.dedup();
        out
    }
}

/// A platform's own origins (issuer and authorize URL): who may frame the hub
/// when nothing else is configured.
fn default_origins(p: &Platform) -> Vec<String> {
    let issuer = url::Url::parse(&p.issuer).ok().filter(is_secure_url);
    issuer
        .into_iter()
        .chain(std::iter::once(p.authorize_url.clone()))
        .map(|u| u.origin().ascii_serialization())
        .collect()
}

const PLATFORM_FIELDS: &[&str] = &[
    "name",
    "issuer",
    "client_id",
    "authorize_url",
    "jwks_endpoint",
    "deployment_ids",
    "token_url",
    "token_audience",
];

pub fn parse<B: Bindings>(r: &mut Reader<'_, B>) -> Option<LtiSettings> {
    let single = r.string("LTI13_ISSUER").is_some();
    let many = r.string("LTI13_PLATFORMS").is_some();
    let dynamic_registration = r.bool("LTI13_DYNAMIC_REGISTRATION", false);
    if !single && !many && !dynamic_registration {
        return None;
    }
    let mut platforms = Vec::new();
    if single {
        platforms.extend(single_platform(r));
    }
    if many {
        platforms.extend(listed_platforms(r));
    }
    check_unique(r, &platforms);

    let username_key = r
        .string("LTI13_USERNAME_KEY")
        .unwrap_or_else(|| "email".into());
    let leeway = r.u64_in("LTI13_TIME_LEEWAY", 0, 0, 600);
    let mut admin_roles = r.list("LTI13_ADMIN_ROLES");
    if r.string("LTI13_ADMIN_ROLES").is_none() {
        admin_roles = DEFAULT_ADMIN_ROLES.iter().map(|s| s.to_string()).collect();
    }
    let tool_name = r
        .string("LTI13_TOOL_NAME")
        .unwrap_or_else(|| "JupyterHub".into());
    let tool_description = r
        .string("LTI13_TOOL_DESCRIPTION")
        .unwrap_or_else(|| "Interactive computing with JupyterHub".into());
    let tool_key = match r.string("LTI13_PRIVATE_KEY") {
        None => None,
        Some(raw) => match ToolKey::from_pem(&normalise_pem(&raw)) {
            Ok(k) => Some(k),
            Err(reason) => {
                r.invalid("LTI13_PRIVATE_KEY", reason);
                None
            }
        },
    };
    let frame_ancestors = frame_ancestors(r, &platforms);
    let roster_ttl = r.u64_in("LTI13_ROSTER_TTL", 300, 0, 86_400);
    let service_secret = long_secret(r, "LTI13_SERVICE_SECRET");
    let registration_secret = long_secret(r, "LTI13_REGISTRATION_SECRET");
    let frame_ancestors_explicit = r.string("LTI13_FRAME_ANCESTORS").is_some();
    Some(LtiSettings {
        platforms,
        username_key,
        leeway,
        admin_roles,
        tool_name,
        tool_description,
        tool_key,
        frame_ancestors,
        roster_ttl,
        service_secret,
        dynamic_registration,
        registration_secret,
        frame_ancestors_explicit,
    })
}

fn long_secret<B: Bindings>(r: &mut Reader<'_, B>, name: &'static str) -> Option<ServiceSecret> {
    let s = r.string(name).map(ServiceSecret::new)?;
    if s.expose().len() < 32 {
        r.invalid(
            name,
            "must be at least 32 characters (e.g. `openssl rand -base64 32`)",
        );
    }
    Some(s)
}

/// `LTI13_FRAME_ANCESTORS`: origins (https, or http on loopback), or
/// `https://*.example.edu` for every subdomain (CSP host wildcards, as a
/// Canvas or Brightspace tenant's course pages live on their own host).
fn frame_ancestors<B: Bindings>(r: &mut Reader<'_, B>, platforms: &[Platform]) -> Vec<String> {
    let mut out: Vec<String> = if r.string("LTI13_FRAME_ANCESTORS").is_some() {
        let listed = r.list("LTI13_FRAME_ANCESTORS");
        let mut ok = Vec::new();
        for entry in listed {
            match frame_ancestor(&entry) {
                Some(o) => ok.push(o),
                None => r.invalid(
                    "LTI13_FRAME_ANCESTORS",
                    format!("{entry:?} is not an origin (https://host[:port], https://*.host, or http on loopback)"),
                ),
            }
        }
        ok
    } else {
        platforms.iter().flat_map(default_origins).collect()
    };
    out.sort();
    out.dedup();
    out
}

fn frame_ancestor(entry: &str) -> Option<String> {
    let (wildcard, concrete) = match entry.strip_prefix("https://*.") {
        Some(rest) => (true, format!("https://{rest}")),
        None => (false, entry.to_string()),
    };
    let u = url::Url::parse(&concrete).ok().filter(is_secure_url)?;
    if u.path() != "/" || u.query().is_some() || u.fragment().is_some() || !u.username().is_empty()
    {
        return None;
    }
    let origin = u.origin().ascii_serialization();
    Some(if wildcard {
        origin.replacen("https://", "https://*.", 1)
    } else {
        origin
    })
}

/// The platform's short name when none is given: the issuer's host (an
/// issuer need not be a URL; then the authorize URL's host).
fn default_name_of(issuer: &str, authorize_url: &url::Url) -> String {
    url::Url::parse(issuer)
        .ok()
        .and_then(|u| u.host_str().map(str::to_string))
        .or_else(|| authorize_url.host_str().map(str::to_string))
        .unwrap_or_else(|| "lti".into())
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
}

pub fn platform_from_json(v: &serde_json::Value) -> Result<Platform, String> {
    let obj = v.as_object().ok_or("is not a JSON object")?;
    if let Some(unknown) = obj.keys().find(|k| !PLATFORM_FIELDS.contains(&k.as_str())) {
        return Err(format!(
            "unknown field {unknown:?} (expected {})",
            PLATFORM_FIELDS.join(", ")
        ));
    }
    let text = |name: &str| -> Result<String, String> {
        obj.get(name)
            .and_then(|x| x.as_str())
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .ok_or_else(|| format!("missing {name}"))
    };
    let list = |name: &str| -> Result<Vec<String>, String> {
        match obj.get(name) {
            None | Some(serde_json::Value::Null) => Ok(Vec::new()),
            Some(serde_json::Value::String(s)) => parse_list(s).map_err(|e| format!("{name} {e}")),
            Some(serde_json::Value::Array(a)) => a
                .iter()
                .map(|x| match x {
                    serde_json::Value::String(s) if !s.trim().is_empty() => {
                        Ok(s.trim().to_string())
                    }
                    other => Err(format!(
                        "{name} items must be non-empty strings, got {other}"
                    )),
                })
                .collect(),
            Some(other) => Err(format!(
                "{name} must be a string or an array of strings, got {other}"
            )),
        }
    };
    let url = |name: &str| -> Result<url::Url, String> {
        let raw = text(name)?;
        let u = url::Url::parse(&raw).map_err(|e| format!("{name} is not a URL ({e})"))?;
        if !is_secure_url(&u) {
            return Err(format!(
                "{name} is not an https URL (http is allowed only on loopback hosts)"
            ));
        }
        Ok(u)
    };
    let issuer = text("issuer")?;
    let client_ids = list("client_id")?;
    if client_ids.is_empty() {
        return Err("missing client_id".into());
    }
    let authorize_url = url("authorize_url")?;
    let name = match obj.get("name") {
        None => default_name_of(&issuer, &authorize_url),
        Some(_) => text("name")?,
    };
    if !valid_name(&name) {
        return Err(format!(
            "name {name:?} may hold only letters, digits, '.', '-' and '_'"
        ));
    }
    let token_url = match obj.get("token_url") {
        None => None,
        Some(_) => Some(url("token_url")?),
    };
    let token_audience = match obj.get("token_audience") {
        None => None,
        Some(_) => Some(text("token_audience")?),
    };
    Ok(Platform {
        name,
        issuer,
        client_ids,
        authorize_url,
        jwks_url: url("jwks_endpoint")?,
        deployment_ids: list("deployment_ids")?,
        token_url,
        token_audience,
        registered: false,
    })
}

/// `LTI13_ISSUER`, `LTI13_CLIENT_ID`, `LTI13_AUTHORIZE_URL`,
/// `LTI13_JWKS_ENDPOINT`, `LTI13_DEPLOYMENT_IDS`.
fn single_platform<B: Bindings>(r: &mut Reader<'_, B>) -> Option<Platform> {
    let issuer = r.required("LTI13_ISSUER");
    let client_ids = r.list("LTI13_CLIENT_ID");
    if client_ids.is_empty() {
        r.errors.push(ConfigError::Missing("LTI13_CLIENT_ID"));
    }
    let authorize = match r.required("LTI13_AUTHORIZE_URL") {
        Some(raw) => r.check_url("LTI13_AUTHORIZE_URL", &raw),
        None => None,
    };
    let jwks = match r.required("LTI13_JWKS_ENDPOINT") {
        Some(raw) => r.check_url("LTI13_JWKS_ENDPOINT", &raw),
        None => None,
    };
    let deployment_ids = r.list("LTI13_DEPLOYMENT_IDS");
    let token_url = r
        .string("LTI13_TOKEN_URL")
        .and_then(|raw| r.check_url("LTI13_TOKEN_URL", &raw));
    let token_audience = r.string("LTI13_TOKEN_AUDIENCE");
    if client_ids.is_empty() {
        return None;
    }
    let (issuer, authorize_url, jwks_url) = (issuer?, authorize?, jwks?);
    Some(Platform {
        name: default_name_of(&issuer, &authorize_url),
        issuer,
        client_ids,
        authorize_url,
        jwks_url,
        deployment_ids,
        token_url,
        token_audience,
        registered: false,
    })
}

/// `LTI13_PLATFORMS`: a JSON array of platform objects.
fn listed_platforms<B: Bindings>(r: &mut Reader<'_, B>) -> Vec<Platform> {
    let mut platforms = Vec::new();
    if let Some(v) = r.json("LTI13_PLATFORMS") {
        match v {
            serde_json::Value::Array(items) if !items.is_empty() => {
                for (i, item) in items.iter().enumerate() {
                    match platform_from_json(item) {
                        Ok(p) => platforms.push(p),
                        Err(reason) => r.invalid("LTI13_PLATFORMS", format!("entry {i}: {reason}")),
                    }
                }
            }
            _ => r.invalid(
                "LTI13_PLATFORMS",
                "must be a non-empty JSON array of platform objects",
            ),
        }
    }
    platforms
}

/// A launch is matched on issuer + client_id: each pair must be unique.
/// Usernames and course groups are namespaced by the platform's name, so
/// two issuers may not share one: `student1` at one LMS would become
/// `student1` of the other. The same issuer registered twice (two client
/// ids) is one user base and may.
fn check_unique<B: Bindings>(r: &mut Reader<'_, B>, platforms: &[Platform]) {
    let mut issuer_of_name = std::collections::BTreeMap::new();
    for p in platforms {
        match issuer_of_name.insert(p.name.as_str(), p.issuer.as_str()) {
            Some(other) if other != p.issuer => r.invalid(
                "LTI13_PLATFORMS",
                format!(
                    "issuers {other:?} and {:?} share the platform name {:?}; give each a distinct \"name\"",
                    p.issuer, p.name
                ),
            ),
            _ => {}
        }
    }
    let mut seen = std::collections::BTreeSet::new();
    for p in platforms {
        for c in &p.client_ids {
            if !seen.insert((p.issuer.clone(), c.clone())) {
                r.invalid(
                    "LTI13_PLATFORMS",
                    format!(
                        "issuer {:?} with client_id {c:?} is registered twice",
                        p.issuer
                    ),
                );
            }
        }
    }
}
