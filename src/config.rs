//! Bindings → `Config`: each domain parses its own settings; this module
//! only composes them, once per isolate, with every problem reported
//! together. After this point nothing reads a raw binding again. Only
//! `app`, `edge` and the check CLI import it.

use crate::assertion::{self, AssertionKeys};
use crate::bindings::{Bindings, ConfigError, Reader};
use crate::cache::CacheSettings;
use crate::identity::from_claims::IdentitySettings;
use crate::lti::{self, LtiSettings};
use crate::oauth::{self, OAuthSettings};
use crate::proxy::ProxySettings;
use crate::session::SessionSettings;

/// Where one-time values (OAuth state, LTI nonce) are checked and recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OneTimeStore {
    /// The Durable Object bound as `ONE_TIME`: atomic and global.
    DurableObject,
    /// KV `NONCES`: eventually consistent; races and cross-location
    /// replays within KV's propagation window pass. An explicit choice.
    Kv,
}

pub const ONE_TIME_BINDING: &str = "ONE_TIME";
pub const STATE_KV_BINDING: &str = "NONCES";
pub const CACHE_KV_BINDING: &str = "JWKS_CACHE";

#[derive(Debug)]
pub struct Config {
    /// Path prefix every route lives under, always starting and ending with `/`.
    pub base_path: String,
    pub proxy: ProxySettings,
    pub session: SessionSettings,
    pub cache: CacheSettings,
    pub identity: IdentitySettings,
    pub oauth: Option<OAuthSettings>,
    /// `OAUTH_PROVIDERS`: more identity providers beside `oauth`, each on
    /// its own paths.
    pub oauth_more: Vec<OAuthSettings>,
    pub lti: Option<LtiSettings>,
    /// Signs `X-Hubgate-Assertion`; absent: header-only hub login.
    pub assertion: Option<AssertionKeys>,
    pub one_time: OneTimeStore,
    pub auto_login: bool,
    pub pass_authorization: bool,
    /// Believe `X-Forwarded-Proto` (a TLS-terminating front end sets it).
    pub trust_forwarded_proto: bool,
    pub login_service: String,
    /// Whether KV `NONCES` is bound (session extras live there).
    pub state_kv: bool,
}

pub fn parse(env: &impl Bindings) -> Result<Config, Vec<ConfigError>> {
    let mut r = Reader::new(env);
    let base_path = normalise_base_path(r.string("BASE_URL").as_deref().unwrap_or("/"));
    let proxy = ProxySettings::parse(&mut r);
    let session = SessionSettings::parse(&mut r);
    let cache = CacheSettings::parse(&mut r);
    let oauth = oauth::settings::parse(&mut r);
    let oauth_more = oauth::settings::parse_more(&mut r, env);
    let lti = lti::settings::parse(&mut r);
    if oauth.is_none() && oauth_more.is_empty() && lti.is_none() {
        r.errors.push(ConfigError::NoLoginMethod);
    }
    let sources = usize::from(oauth.is_some())
        + oauth_more.len()
        + lti.as_ref().map_or(0, |l| l.platforms.len());
    // Registered platforms are sources too, and any of them could name any
    // user: their usernames always carry the platform's name.
    let dynamic = lti.as_ref().is_some_and(|l| l.dynamic_registration);
    let identity = IdentitySettings::parse(&mut r, sources > 1 || dynamic);
    if dynamic && identity.namespace != crate::identity::from_claims::Namespace::Platform {
        r.invalid(
            "USERNAME_NAMESPACE",
            "must be platform (the default) with LTI13_DYNAMIC_REGISTRATION: otherwise a registered platform could assert any hub user",
        );
    }
    let auto_login = r.bool("AUTO_LOGIN", false);
    let pass_authorization = r.bool("PASS_AUTHORIZATION", true);
    let trust_forwarded_proto = r.bool("TRUST_FORWARDED_PROTO", false);
    let login_service = r
        .string("LOGIN_SERVICE")
        .unwrap_or_else(|| "OAuth 2.0".into());
    let assertion = assertion::parse_settings(&mut r);
    let one_time = one_time_store(&mut r);
    let state_kv = env.has_binding(STATE_KV_BINDING);

    if !r.errors.is_empty() {
        return Err(r.errors);
    }
    match (proxy, session) {
        (Some(proxy), Some(session)) => Ok(Config {
            base_path,
            proxy,
            session,
            cache,
            identity,
            oauth,
            oauth_more,
            lti,
            assertion,
            one_time,
            auto_login,
            pass_authorization,
            trust_forwarded_proto,
            login_service,
            state_kv,
        }),
        // Their parsers recorded why.
        _ => Err(vec![ConfigError::Missing("HUB_ORIGIN or SESSION_SECRET")]),
    }
}

impl Config {
    /// Every OAuth/OIDC provider: the top-level one first.
    pub fn oauth_providers(&self) -> impl Iterator<Item = &OAuthSettings> {
        self.oauth.iter().chain(self.oauth_more.iter())
    }

    /// The provider a path names (`""`: the top-level one).
    pub fn oauth_named(&self, name: &str) -> Option<&OAuthSettings> {
        self.oauth_providers().find(|o| o.name == name)
    }
}

/// A worker without a one-time store refuses to run (never downgrades).
fn one_time_store<B: Bindings>(r: &mut Reader<'_, B>) -> OneTimeStore {
    let choice = r.string("ONE_TIME_STORE");
    let (store, binding) = match choice.as_deref() {
        None | Some("durable_object") => (OneTimeStore::DurableObject, ONE_TIME_BINDING),
        Some("kv") => (OneTimeStore::Kv, STATE_KV_BINDING),
        Some(_) => {
            r.invalid("ONE_TIME_STORE", "must be durable_object or kv");
            return OneTimeStore::DurableObject;
        }
    };
    if !r.env.has_binding(binding) {
        r.errors.push(ConfigError::MissingBinding {
            binding,
            what: match store {
                OneTimeStore::DurableObject => "the Durable Object that checks OAuth state and LTI nonces once (declare it in wrangler.toml, or set ONE_TIME_STORE=kv with a KV namespace NONCES)",
                OneTimeStore::Kv => "the KV namespace ONE_TIME_STORE=kv keeps used OAuth states and LTI nonces in",
            },
        });
    }
    store
}

fn oauth_summary(o: &OAuthSettings) -> serde_json::Value {
    serde_json::json!({
        "name": o.name,
        "provider": o.preset.name(),
        "client_id": o.client_id,
        "oidc_issuer": o.issuer,
        "scopes": o.scopes,
        "username_key": o.username_key,
    })
}

fn normalise_base_path(raw: &str) -> String {
    let trimmed = raw.trim().trim_matches('/');
    if trimmed.is_empty() {
        "/".into()
    } else {
        format!("/{trimmed}/")
    }
}

impl Config {
    /// Settings that parse but are probably not what the operator meant.
    pub fn warnings(&self) -> Vec<String> {
        let mut w = Vec::new();
        let provider_admits = self.oauth_providers().any(|o| o.preset.has_allow_rule());
        let any_oauth = self.oauth_providers().next().is_some();
        if any_oauth && self.identity.rules.admits_nobody() && !provider_admits {
            w.push("no OAuth user can log in: set ALLOW_ALL, ALLOWED_USERS, ALLOWED_GROUPS or ADMIN_USERS (or the provider's own rule: ALLOWED_ORGANIZATIONS, ALLOWED_GITLAB_GROUPS, ALLOWED_PROJECT_IDS, CILOGON_IDPS allow_all/allowed_domains)".into());
        }
        if self.assertion.is_none() {
            w.push("ASSERTION_SIGNING_KEY is not set: the hub logs in whoever the X-Forwarded-User header names at /hub/login, and single-user servers can reach the hub's own port; use the signed assertion unless nothing but the worker can reach the hub".into());
        }
        if self.one_time == OneTimeStore::Kv {
            w.push("ONE_TIME_STORE=kv: KV is eventually consistent, so two racing callbacks or a replay sent to another location within KV's propagation window can both pass; the Durable Object store checks and records atomically".into());
        }
        if !self.state_kv {
            w.push("KV namespace NONCES is not bound: a session whose groups or auth_state do not fit the cookie cannot be kept (that login fails)".into());
        }
        if let Some(l) = &self.lti {
            let services =
                l.platforms.iter().any(|p| p.token_url.is_some()) || l.dynamic_registration;
            if services && l.tool_key.is_none() {
                w.push("LTI Advantage services (a platform's token_url, or dynamic registration) need LTI13_PRIVATE_KEY: without it no platform token can be asked for".into());
            }
            if l.dynamic_registration && !self.state_kv {
                w.push("LTI13_DYNAMIC_REGISTRATION keeps registered platforms in KV NONCES, which is not bound: registration answers 500".into());
            }
            if l.dynamic_registration && l.registration_secret.is_none() {
                w.push("LTI13_DYNAMIC_REGISTRATION without LTI13_REGISTRATION_SECRET: only a hub admin's session may register a platform".into());
            }
        }
        w
    }

    /// Secret-free summary for `hubgate-check` (the health endpoint says
    /// only that the worker is alive).
    pub fn summary(&self) -> serde_json::Value {
        let rules = &self.identity.rules;
        serde_json::json!({
            "base_url": self.base_path,
            "hub_origin": self.proxy.hub_origin.as_str(),
            "login_methods": {
                "oauth": self.oauth.as_ref().map(oauth_summary),
                "oauth_providers": self.oauth_more.iter().map(oauth_summary).collect::<Vec<_>>(),
                "lti13": self.lti.as_ref().map(|l| serde_json::json!({
                    "platforms": l.platforms.iter().map(|p| serde_json::json!({
                        "name": p.name,
                        "issuer": p.issuer,
                        "client_ids": p.client_ids,
                        "deployment_ids": p.deployment_ids,
                        "services": p.token_url.is_some(),
                    })).collect::<Vec<_>>(),
                    "username_key": l.username_key,
                    "tool_kid": l.tool_key.as_ref().map(|k| k.kid.clone()),
                    "roster_ttl": l.roster_ttl,
                    "grade_service_secret": l.service_secret.is_some(),
                    "dynamic_registration": l.dynamic_registration,
                })),
            },
            "one_time_store": match self.one_time {
                OneTimeStore::DurableObject => "durable_object",
                OneTimeStore::Kv => "kv",
            },
            "username_namespace": format!("{:?}", self.identity.namespace).to_lowercase(),
            "key_set_max_age": self.cache.max_ttl,
            "auto_login": self.auto_login,
            "pass_authorization": self.pass_authorization,
            "trust_forwarded_proto": self.trust_forwarded_proto,
            "allow_all": rules.allow_all,
            "allowed_users": rules.allowed_users.len(),
            "admin_users": rules.admin_users.len(),
            "allowed_groups": rules.allowed_groups.len(),
            "session_max_age": self.session.max_age,
            "session_secret_previous": self.session.previous.is_some(),
            "warnings": self.warnings(),
            "assertion_kids": self.assertion.as_ref().map(|a| {
                std::iter::once(a.current.kid.clone()).chain(a.previous.as_ref().map(|p| p.kid.clone())).collect::<Vec<_>>()
            }),
        })
    }
}
