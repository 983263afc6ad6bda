//! `OAUTH_PROVIDER`: each preset's defaults, from OAuthenticator's option
//! names upper-cased (`GITHUB_URL`, `ALLOWED_ORGANIZATIONS`, `GITLAB_URL`,
//! `HOSTED_DOMAIN`, ...). A preset only fills defaults: every generic
//! binding still overrides (`settings::parse` reads them first).

use super::provider::azuread::{self, AzureSettings};
use super::provider::cilogon::{self, CILogonSettings, IdpRule};
use super::provider::github::{self, GitHubSettings};
use super::provider::gitlab::{self, GitLabSettings};
use super::provider::google::{self, GoogleSettings};
use super::settings::Preset;
use crate::bindings::{Bindings, Reader};

pub struct Defaults {
    pub preset: Preset,
    pub issuer: Option<String>,
    pub authorize_url: Option<String>,
    pub token_url: Option<String>,
    pub userdata_url: Option<String>,
    pub username_key: &'static str,
    pub scopes: Vec<String>,
    pub basic_auth: bool,
    pub discovery_issuer: Option<String>,
    pub logout_fallback: Option<String>,
}

impl Defaults {
    fn generic(preset: Preset) -> Self {
        Defaults {
            preset,
            issuer: None,
            authorize_url: None,
            token_url: None,
            userdata_url: None,
            username_key: "username",
            scopes: Vec::new(),
            basic_auth: true,
            discovery_issuer: None,
            logout_fallback: None,
        }
    }
}

pub const NAMES: &[&str] = &[
    "generic", "github", "gitlab", "google", "azuread", "auth0", "cilogon", "keycloak",
];

/// A host name becomes `https://host`; a full URL (a local stand-in in
/// tests, an unusual port) is taken as is.
fn base(v: &str) -> String {
    let v = v.trim().trim_end_matches('/');
    if v.contains("://") {
        v.to_string()
    } else {
        format!("https://{v}")
    }
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

pub fn defaults<B: Bindings>(r: &mut Reader<'_, B>) -> Defaults {
    let name = r
        .string("OAUTH_PROVIDER")
        .map(|n| n.trim().to_lowercase())
        .unwrap_or_else(|| "generic".into());
    match name.as_str() {
        "generic" => Defaults::generic(Preset::Generic),
        "github" => github_defaults(r),
        "gitlab" => gitlab_defaults(r),
        "google" => google_defaults(r),
        "azuread" => azure_defaults(r),
        "auth0" => auth0_defaults(r),
        "cilogon" => cilogon_defaults(r),
        "keycloak" => keycloak_defaults(r),
        other => {
            r.invalid(
                "OAUTH_PROVIDER",
                format!("{other:?} is not one of {}", NAMES.join(", ")),
            );
            Defaults::generic(Preset::Generic)
        }
    }
}

fn github_defaults<B: Bindings>(r: &mut Reader<'_, B>) -> Defaults {
    let url = base(
        &r.string("GITHUB_URL")
            .unwrap_or_else(|| github::PUBLIC_URL.into()),
    );
    let allowed = r.list("ALLOWED_ORGANIZATIONS");
    let g = GitHubSettings::new(&url, &allowed);
    let mut scopes = strings(&["read:user", "user:email"]);
    if !allowed.is_empty() {
        scopes.push("read:org".into());
    }
    Defaults {
        authorize_url: Some(format!("{url}/login/oauth/authorize")),
        token_url: Some(format!("{url}/login/oauth/access_token")),
        userdata_url: Some(format!("{}/user", g.api)),
        username_key: "login",
        scopes,
        // GitHub takes the client secret in the body (OAuthenticator's way).
        basic_auth: false,
        ..Defaults::generic(Preset::GitHub(g))
    }
}

fn gitlab_defaults<B: Bindings>(r: &mut Reader<'_, B>) -> Defaults {
    let url = base(
        &r.string("GITLAB_URL")
            .unwrap_or_else(|| gitlab::PUBLIC_URL.into()),
    );
    let groups = r.list("ALLOWED_GITLAB_GROUPS");
    let mut project_ids = Vec::new();
    for p in r.list("ALLOWED_PROJECT_IDS") {
        match p.parse::<u64>() {
            Ok(id) => project_ids.push(id),
            Err(_) => r.invalid("ALLOWED_PROJECT_IDS", format!("{p:?} is not a project id")),
        }
    }
    let mut scopes = strings(&["read_user"]);
    if !groups.is_empty() || !project_ids.is_empty() {
        scopes.push("read_api".into());
    }
    let api = format!("{url}/api/v4");
    Defaults {
        authorize_url: Some(format!("{url}/oauth/authorize")),
        token_url: Some(format!("{url}/oauth/token")),
        userdata_url: Some(format!("{api}/user")),
        username_key: "username",
        scopes,
        ..Defaults::generic(Preset::GitLab(GitLabSettings {
            api,
            groups,
            project_ids,
        }))
    }
}

fn google_defaults<B: Bindings>(r: &mut Reader<'_, B>) -> Defaults {
    let hosted_domains = r
        .list("HOSTED_DOMAIN")
        .into_iter()
        .map(|d| d.to_lowercase())
        .collect();
    Defaults {
        issuer: Some(google::ISSUER.into()),
        username_key: "email",
        scopes: strings(&["openid", "email"]),
        ..Defaults::generic(Preset::Google(GoogleSettings { hosted_domains }))
    }
}

fn azure_defaults<B: Bindings>(r: &mut Reader<'_, B>) -> Defaults {
    let host = base(
        &r.string("AZURE_AUTHORITY_HOST")
            .unwrap_or_else(|| azuread::AUTHORITY_HOST.into()),
    );
    let tenant = r
        .string("AZURE_TENANT_ID")
        .unwrap_or_else(|| "common".into());
    if tenant.contains('/') || tenant.contains('?') || tenant.contains('#') {
        r.invalid(
            "AZURE_TENANT_ID",
            "must be a tenant id or common/organizations/consumers",
        );
    }
    let template = azuread::is_multi_tenant(&tenant)
        .then(|| format!("{host}/{}/v2.0", azuread::TENANT_PLACEHOLDER));
    let groups_required =
        !r.list("ALLOWED_GROUPS").is_empty() || !r.list("ADMIN_GROUPS").is_empty();
    Defaults {
        issuer: Some(format!("{host}/{tenant}/v2.0")),
        username_key: "name",
        scopes: strings(&["openid", "profile", "email"]),
        discovery_issuer: template.clone(),
        ..Defaults::generic(Preset::AzureAd(AzureSettings {
            issuer_template: template,
            groups_required,
        }))
    }
}

fn auth0_defaults<B: Bindings>(r: &mut Reader<'_, B>) -> Defaults {
    let Some(domain) = r.string("AUTH0_DOMAIN") else {
        r.invalid("AUTH0_DOMAIN", "is needed with OAUTH_PROVIDER=auth0");
        return Defaults::generic(Preset::Auth0);
    };
    let url = base(&domain);
    Defaults {
        // Auth0's issuer ends in `/` and is compared exactly.
        issuer: Some(format!("{url}/")),
        username_key: "email",
        scopes: strings(&["openid", "profile", "email"]),
        logout_fallback: Some(format!("{url}/v2/logout")),
        ..Defaults::generic(Preset::Auth0)
    }
}

fn cilogon_defaults<B: Bindings>(r: &mut Reader<'_, B>) -> Defaults {
    let url = base(
        &r.string("CILOGON_HOST")
            .unwrap_or_else(|| cilogon::HOST.into()),
    );
    let idps = match r.json("CILOGON_IDPS") {
        Some(serde_json::Value::Object(m)) if !m.is_empty() => {
            let mut out = Vec::new();
            for (k, v) in m {
                match serde_json::from_value::<IdpRule>(v) {
                    Ok(rule) => out.push((k, rule)),
                    Err(e) => r.invalid("CILOGON_IDPS", format!("entry {k:?}: {e}")),
                }
            }
            out
        }
        _ => {
            r.invalid(
                "CILOGON_IDPS",
                "must be a JSON object naming at least one identity provider (OAuthenticator's `idps`)",
            );
            Vec::new()
        }
    };
    Defaults {
        issuer: Some(url),
        username_key: "email",
        scopes: strings(&["openid", "email", "org.cilogon.userinfo", "profile"]),
        ..Defaults::generic(Preset::CILogon(CILogonSettings {
            idps,
            skin: r.string("CILOGON_SKIN"),
        }))
    }
}

fn keycloak_defaults<B: Bindings>(r: &mut Reader<'_, B>) -> Defaults {
    let (url, realm) = (r.string("KEYCLOAK_URL"), r.string("KEYCLOAK_REALM"));
    let issuer = match (url, realm) {
        (Some(u), Some(realm)) => Some(format!("{}/realms/{realm}", base(&u))),
        _ => {
            // Or OIDC_ISSUER directly.
            if r.string("OIDC_ISSUER").is_none() {
                r.invalid(
                    "KEYCLOAK_URL",
                    "and KEYCLOAK_REALM are needed with OAUTH_PROVIDER=keycloak (or set OIDC_ISSUER)",
                );
            }
            None
        }
    };
    Defaults {
        issuer,
        username_key: "preferred_username",
        ..Defaults::generic(Preset::Keycloak)
    }
}
