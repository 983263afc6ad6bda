//! `config::parse` on arbitrary binding maps: never panics; a refusal lists
//! at least one problem and every problem has a message that names no
//! secret; an accepted configuration keeps the secure defaults the design
//! promises (https upstreams, a one-time store, no silent downgrade) and
//! its summary holds no secret.
//!
//! Input: lines `NAME=VALUE`; `@N=VALUE` names the N-th of
//! `bindings::NAMES`. `{tool_pem}`, `{assertion_jwk}` and `{platforms}` stand
//! for valid keys and a platform list.

use super::{fixtures, keys};
use hubgate::bindings::NAMES;
use hubgate::config::{self, OneTimeStore};
use std::collections::BTreeMap;

const SECRETS: &[&str] = &[
    "SESSION_SECRET",
    "SESSION_SECRET_PREVIOUS",
    "OAUTH_CLIENT_SECRET",
    "LTI13_PRIVATE_KEY",
    "ASSERTION_SIGNING_KEY",
    "ASSERTION_SIGNING_KEY_PREVIOUS",
];

pub fn decode(data: &[u8]) -> BTreeMap<String, String> {
    let mut m = BTreeMap::new();
    for line in super::input::lines(data) {
        let (name, value) = line.split_once('=').unwrap_or((line.as_str(), ""));
        let name = match name.strip_prefix('@').and_then(|n| n.parse::<usize>().ok()) {
            Some(i) => NAMES[i % NAMES.len()].to_string(),
            None => name.to_string(),
        };
        let value = value
            .replace("{tool_pem}", keys::TOOL_PEM)
            .replace("{assertion_jwk}", keys::ASSERTION_JWK)
            .replace("{platforms}", &platforms());
        m.insert(name, value);
    }
    m
}

fn platforms() -> String {
    serde_json::json!([{"issuer": fixtures::LMS, "client_id": "c", "authorize_url": "https://lms.example/auth", "jwks_endpoint": "https://lms.example/jwks"}]).to_string()
}

fn set(env: &BTreeMap<String, String>, name: &str) -> Option<String> {
    env.get(name)
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

/// Free-form secrets: only their length matters to the parser, so the
/// check swaps each for a canary of the same length and looks for it.
const FREE_FORM: &[&str] = &[
    "SESSION_SECRET",
    "SESSION_SECRET_PREVIOUS",
    "OAUTH_CLIENT_SECRET",
];

fn canary(len: usize) -> String {
    "CANARY"
        .chars()
        .chain(std::iter::repeat('q'))
        .take(len)
        .collect()
}

/// The same bindings with every free-form secret replaced by a canary,
/// and the canaries (none for secrets too short to tell apart).
fn with_canaries(env: &BTreeMap<String, String>) -> (BTreeMap<String, String>, Vec<String>) {
    let mut env = env.clone();
    let mut canaries = Vec::new();
    for name in FREE_FORM {
        let Some(v) = set(&env, name) else { continue };
        let c = canary(v.len());
        if v.len() >= 8 {
            canaries.push(c.clone());
        }
        env.insert(name.to_string(), c);
    }
    (env, canaries)
}

/// Key material of the structured secrets (a JWK's `d`, a PEM's body
/// lines): never in a message.
fn key_material(env: &BTreeMap<String, String>) -> Vec<String> {
    let mut out = Vec::new();
    for name in SECRETS.iter().filter(|n| !FREE_FORM.contains(n)) {
        let Some(v) = set(env, name) else { continue };
        if let Ok(serde_json::Value::Object(m)) = serde_json::from_str(&v) {
            if let Some(d) = m
                .get("d")
                .and_then(|d| d.as_str())
                .filter(|d| d.len() >= 16)
            {
                out.push(d.to_string());
            }
        }
        if v.contains("-----BEGIN") {
            let pem = hubgate::bindings::normalise_pem(&v);
            out.extend(
                pem.lines()
                    .map(str::trim)
                    // Key bytes are base64 lines; other text in the
                    // binding (the fuzzer pastes messages in) is no secret.
                    .filter(|l| {
                        l.len() >= 16
                            && l.bytes().all(|b| {
                                b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'=')
                            })
                    })
                    .map(str::to_string),
            );
        }
    }
    out
}

pub fn secure_url(raw: &str) -> bool {
    super::discovery::secure_endpoint(raw)
}

pub fn run(data: &[u8]) {
    check(&decode(data));
}

pub fn check(env: &BTreeMap<String, String>) {
    let secrets = not_in_public_bindings(env, key_material(env));
    outcome(env, &secrets);
    let (swapped, canaries) = with_canaries(env);
    let canaries = not_in_public_bindings(&swapped, canaries);
    outcome(&swapped, &[secrets, canaries].concat());
}

/// A secret whose text the operator also put into a public binding (an
/// issuer, a scope list) is public already; the summary may echo that
/// binding, so only the others are looked for.
fn not_in_public_bindings(env: &BTreeMap<String, String>, secrets: Vec<String>) -> Vec<String> {
    let public: Vec<&String> = env
        .iter()
        .filter(|(name, _)| !SECRETS.contains(&name.as_str()))
        .map(|(_, value)| value)
        .collect();
    secrets
        .into_iter()
        .filter(|s| !public.iter().any(|v| v.contains(s.as_str())))
        .collect()
}

fn outcome(env: &BTreeMap<String, String>, secrets: &[String]) {
    match config::parse(env) {
        Err(errors) => {
            assert!(!errors.is_empty(), "a refused configuration says why");
            for e in &errors {
                let msg = e.to_string();
                assert!(!msg.trim().is_empty(), "empty message for {e:?}");
                for s in secrets {
                    assert!(!msg.contains(s.as_str()), "message {msg:?} shows a secret");
                }
            }
        }
        Ok(cfg) => {
            let _ = cfg.warnings();
            let summary = cfg.summary().to_string();
            for s in secrets {
                assert!(!summary.contains(s.as_str()), "summary shows a secret");
            }
            assert!(
                cfg.base_path.starts_with('/') && cfg.base_path.ends_with('/'),
                "base path {:?}",
                cfg.base_path
            );
            assert!(secure_url(cfg.proxy.hub_origin.as_str()), "hub origin");
            let secret = set(env, "SESSION_SECRET").expect("accepted without SESSION_SECRET");
            assert!(secret.len() >= 32, "short SESSION_SECRET accepted");
            assert!(
                cfg.oauth.is_some() || cfg.lti.is_some(),
                "accepted without a login method"
            );
            assert_eq!(
                cfg.oauth.is_some(),
                set(env, "OAUTH_CLIENT_ID").is_some(),
                "OAuth is on exactly when OAUTH_CLIENT_ID is set"
            );
            assert_eq!(
                cfg.lti.is_some(),
                set(env, "LTI13_ISSUER").is_some() || set(env, "LTI13_PLATFORMS").is_some(),
                "LTI is on exactly when LTI13_ISSUER or LTI13_PLATFORMS is set"
            );
            if let Some(o) = &cfg.oauth {
                assert!(!o.client_secret.expose().trim().is_empty(), "client secret");
                for u in [
                    &o.authorize_url,
                    &o.token_url,
                    &o.userdata_url,
                    &o.jwks_url,
                    &o.callback_url,
                    &o.logout_redirect_url,
                ]
                .into_iter()
                .flatten()
                {
                    assert!(secure_url(u.as_str()), "insecure OAuth URL {u} accepted");
                }
                if let Some(i) = &o.issuer {
                    assert!(secure_url(i), "insecure OIDC_ISSUER {i:?} accepted");
                }
            }
            if let Some(l) = &cfg.lti {
                assert!(!l.platforms.is_empty(), "LTI on without a platform");
                for p in &l.platforms {
                    assert!(
                        secure_url(p.authorize_url.as_str()),
                        "platform authorize URL"
                    );
                    assert!(secure_url(p.jwks_url.as_str()), "platform JWKS URL");
                    assert!(!p.client_ids.is_empty(), "platform without client id");
                }
            }
            // A one-time store is always there; KV only when chosen.
            match cfg.one_time {
                OneTimeStore::DurableObject => {
                    assert!(set(env, "ONE_TIME").is_some(), "no Durable Object bound")
                }
                OneTimeStore::Kv => {
                    assert_eq!(set(env, "ONE_TIME_STORE").as_deref(), Some("kv"));
                    assert!(set(env, "NONCES").is_some(), "KV store without NONCES");
                }
            }
            assert!(hubgate::app::App::from_bindings(env).is_ok());
        }
    }
}
