//! The one claims → `Identity` pipeline every login method goes through:
//! username (key, normalisation, namespace, map), email, groups, header
//! safety, the access decision, auth_state. OAuth and LTI differ only in
//! what they assert (`Asserted`) and in who vouches for the user (`Vouch`).

use super::access::{decide_with, AccessError, AccessRules};
use super::{Identity, LoginMethod};
use crate::bindings::{Bindings, Reader};
use serde_json::{Map, Value};

/// auth_state rides in the session (cookie or KV) and the assertion.
pub const MAX_AUTH_STATE_BYTES: usize = 1536;

/// How usernames of LTI platforms and of `OAUTH_PROVIDERS` entries are kept
/// apart from other sources' (`USERNAME_NAMESPACE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Namespace {
    /// Usernames as asserted: the same email from an LMS and an IdP is one account.
    None,
    /// `lti:<name>` for every LTI launch.
    Method,
    /// `<platform name>:<name>` per registered platform.
    Platform,
}

#[derive(Debug, Clone)]
pub struct IdentitySettings {
    pub rules: AccessRules,
    pub namespace: Namespace,
    /// Claims copied into auth_state (`ASSERTION_AUTH_STATE_CLAIMS`).
    pub auth_state_claims: Vec<String>,
}

impl IdentitySettings {
    /// `several_sources`: more than one of OAuth and the LTI platforms is
    /// configured, so a username could be asserted by two parties.
    pub fn parse<B: Bindings>(r: &mut Reader<'_, B>, several_sources: bool) -> IdentitySettings {
        let rules = AccessRules::parse(r);
        let namespace = match r.string("USERNAME_NAMESPACE").as_deref() {
            None if several_sources => Namespace::Platform,
            None => Namespace::None,
            Some("none") => Namespace::None,
            Some("method") => Namespace::Method,
            Some("platform") => Namespace::Platform,
            Some(_) => {
                r.invalid("USERNAME_NAMESPACE", "must be none, method or platform");
                Namespace::None
            }
        };
        IdentitySettings {
            rules,
            namespace,
            auth_state_claims: r.list("ASSERTION_AUTH_STATE_CLAIMS"),
        }
    }
}

/// Who vouches for the user, which decides the access rules that apply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Vouch {
    /// An identity provider: OAuthenticator's allow/admin/block rules.
    /// `name` is its `OAUTH_PROVIDERS` entry (`""`: the top-level provider).
    IdentityProvider { name: String },
    /// A registered LTI platform (as with ltiauthenticator): every launch
    /// is allowed unless `BLOCKED_USERS` names the user; admin comes from
    /// the launch's roles only, never from course names.
    Platform { name: String, admin_by_role: bool },
}

/// What a verified login or launch asserts, before any policy.
#[derive(Debug, Clone)]
pub struct Asserted {
    pub method: LoginMethod,
    pub vouch: Vouch,
    pub raw_username: String,
    pub email: Option<String>,
    pub groups: Vec<String>,
    /// The claims the operator chose to hand to the hub, as the method's
    /// own hook selected them (`select_auth_state` by default).
    pub auth_state: Map<String, Value>,
    /// The provider's own allow rule admitted this user (`access::decide_with`).
    pub allowed_by_provider: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentityError {
    #[error("username contains control characters")]
    UnsafeUsername,
    #[error("username is empty")]
    EmptyUsername,
    #[error(transparent)]
    Access(#[from] AccessError),
}

/// The identity, and the claims left out on the way (for the log).
#[derive(Debug, Clone, PartialEq)]
pub struct Built {
    pub identity: Identity,
    pub dropped: Vec<&'static str>,
}

/// Header values the hub will receive: no control characters (CR/LF would
/// make every request to the hub fail, or worse, split headers).
pub fn header_safe(v: &str) -> bool {
    !v.chars().any(char::is_control)
}

pub fn build(settings: &IdentitySettings, a: Asserted) -> Result<Built, IdentityError> {
    let mut dropped = Vec::new();
    let raw = a.raw_username.trim().to_lowercase();
    if raw.is_empty() {
        return Err(IdentityError::EmptyUsername);
    }
    let namespaced = match (&a.vouch, settings.namespace) {
        (Vouch::Platform { .. }, Namespace::Method) => format!("lti:{raw}"),
        (Vouch::Platform { name, .. }, Namespace::Platform) => format!("{name}:{raw}"),
        // A second identity provider may assert any username: its users are
        // `<name>:<user>`, so it can never name a user of the top-level
        // provider (USERNAME_NAMESPACE=none merges them on purpose).
        (Vouch::IdentityProvider { name }, Namespace::Method | Namespace::Platform)
            if !name.is_empty() =>
        {
            format!("{name}:{raw}")
        }
        _ => raw,
    };
    let username = settings
        .rules
        .username_map
        .get(&namespaced)
        .cloned()
        .unwrap_or(namespaced);
    if !header_safe(&username) {
        return Err(IdentityError::UnsafeUsername);
    }
    let email = match a.email {
        Some(e) if !header_safe(&e) => {
            dropped.push("email");
            None
        }
        other => other,
    };
    let before = a.groups.len();
    let groups: Vec<String> = a
        .groups
        .into_iter()
        .filter(|g| header_safe(g) && !g.contains(','))
        .collect();
    if groups.len() != before {
        dropped.push("groups");
    }
    let admin = match &a.vouch {
        Vouch::IdentityProvider { .. } => {
            decide_with(&settings.rules, &username, &groups, a.allowed_by_provider)?.admin
        }
        Vouch::Platform { admin_by_role, .. } => {
            if settings.rules.blocked_users.contains(&username) {
                return Err(AccessError::Blocked(username).into());
            }
            *admin_by_role
        }
    };
    let auth_state = a.auth_state;
    Ok(Built {
        identity: Identity {
            username,
            email,
            groups,
            admin,
            method: a.method,
            auth_state,
        },
        dropped,
    })
}

/// Dotted path lookup (`realm_access.roles`) in a JSON object.
pub fn claim_at<'a>(claims: &'a Value, path: &str) -> Option<&'a Value> {
    if let Some(v) = claims.get(path) {
        return Some(v);
    }
    path.split('.').try_fold(claims, |v, part| v.get(part))
}

pub fn string_claim(claims: &Value, path: &str) -> Option<String> {
    match claim_at(claims, path)? {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

pub fn groups_claim(claims: &Value, path: &str) -> Vec<String> {
    match claim_at(claims, path) {
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(|i| match i {
                Value::String(s) => Some(s.clone()),
                Value::Number(n) => Some(n.to_string()),
                _ => None,
            })
            .collect(),
        Some(Value::String(s)) => s
            .split(',')
            .map(|g| g.trim().to_string())
            .filter(|g| !g.is_empty())
            .collect(),
        _ => Vec::new(),
    }
}

/// The claims named in `ASSERTION_AUTH_STATE_CLAIMS`, as many as fit.
pub fn select_auth_state(claims: &Value, names: &[String]) -> Map<String, Value> {
    let size =
        |m: &Map<String, Value>| serde_json::to_vec(m).map(|b| b.len()).unwrap_or(usize::MAX);
    let mut out = Map::new();
    for n in names {
        if let Some(v) = claim_at(claims, n) {
            out.insert(n.clone(), v.clone());
            if size(&out) > MAX_AUTH_STATE_BYTES {
                out.remove(n);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn settings(namespace: Namespace) -> IdentitySettings {
        IdentitySettings {
            rules: AccessRules {
                allow_all: true,
                admin_groups: vec!["staff".into()],
                blocked_users: vec!["eve@x".into()],
                ..Default::default()
            },
            namespace,
            auth_state_claims: vec![],
        }
    }

    fn launch(user: &str, groups: &[&str], admin_by_role: bool) -> Asserted {
        Asserted {
            method: LoginMethod::Lti,
            vouch: Vouch::Platform {
                name: "lms.example".into(),
                admin_by_role,
            },
            raw_username: user.into(),
            email: None,
            groups: groups.iter().map(|g| g.to_string()).collect(),
            auth_state: Map::new(),
            allowed_by_provider: false,
        }
    }

    #[test]
    fn dotted_claims_and_username_normalisation() {
        let c = json!({"realm": {"roles": ["a", "b"]}, "preferred_username": " Alice ", "n": 42});
        assert_eq!(groups_claim(&c, "realm.roles"), ["a", "b"]);
        assert_eq!(string_claim(&c, "n").as_deref(), Some("42"));
    }

    #[test]
    fn a_course_named_like_an_admin_group_makes_nobody_admin() {
        let b = build(
            &settings(Namespace::None),
            launch("al@x", &["staff"], false),
        )
        .unwrap();
        assert!(!b.identity.admin);
    }

    #[test]
    fn lti_admin_comes_from_roles() {
        let b = build(&settings(Namespace::None), launch("al@x", &[], true)).unwrap();
        assert!(b.identity.admin);
    }

    #[test]
    fn blocked_users_are_refused_even_when_a_platform_vouches() {
        assert_eq!(
            build(&settings(Namespace::None), launch("Eve@X", &[], true)).err(),
            Some(IdentityError::Access(AccessError::Blocked("eve@x".into())))
        );
    }

    #[test]
    fn lti_usernames_are_namespaced_by_platform_or_method() {
        let p = build(&settings(Namespace::Platform), launch("al@x", &[], false)).unwrap();
        assert_eq!(p.identity.username, "lms.example:al@x");
        let m = build(&settings(Namespace::Method), launch("al@x", &[], false)).unwrap();
        assert_eq!(m.identity.username, "lti:al@x");
    }

    #[test]
    fn username_map_applies_after_the_namespace() {
        let mut s = settings(Namespace::Platform);
        s.rules
            .username_map
            .insert("lms.example:al@x".into(), "alice".into());
        assert_eq!(
            build(&s, launch("AL@x", &[], false))
                .unwrap()
                .identity
                .username,
            "alice"
        );
    }

    #[test]
    fn refuses_username_with_control_characters() {
        assert_eq!(
            build(&settings(Namespace::None), launch("a\r\nb", &[], false)).err(),
            Some(IdentityError::UnsafeUsername)
        );
    }

    #[test]
    fn drops_unsafe_email_and_groups() {
        let mut a = launch("al@x", &["ok", "a,b", "c\nd"], false);
        a.email = Some("x\r@y".into());
        let b = build(&settings(Namespace::None), a).unwrap();
        assert_eq!(b.identity.groups, ["ok"]);
        assert_eq!(b.identity.email, None);
        assert_eq!(b.dropped, ["email", "groups"]);
    }
}
