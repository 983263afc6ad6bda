//! Username, groups and the allow/admin/block decision, with
//! OAuthenticator's semantics: blocked users are refused first; then a user
//! is allowed by `ALLOW_ALL`, by being in `ALLOWED_USERS`, by being an admin
//! (`ADMIN_USERS` or `ADMIN_GROUPS`), or by a group in `ALLOWED_GROUPS`.
//! Nothing else is allowed.

use crate::config::AccessRules;
use serde_json::Value;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AccessError {
    #[error("user {0:?} is blocked")]
    Blocked(String),
    #[error("user {0:?} is not allowed by any rule")]
    NotAllowed(String),
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

/// JupyterHub's normalisation (lower case), then `USERNAME_MAP`.
pub fn normalise_username(raw: &str, rules: &AccessRules) -> String {
    let lower = raw.trim().to_lowercase();
    rules.username_map.get(&lower).cloned().unwrap_or(lower)
}

/// `Ok(admin)` when the user may log in.
pub fn decide(rules: &AccessRules, username: &str, groups: &[String]) -> Result<bool, AccessError> {
    if rules.blocked_users.iter().any(|u| u == username) {
        return Err(AccessError::Blocked(username.into()));
    }
    let in_group = |list: &[String]| groups.iter().any(|g| list.contains(g));
    let admin = rules.admin_users.iter().any(|u| u == username) || in_group(&rules.admin_groups);
    let allowed = rules.allow_all
        || admin
        || rules.allowed_users.iter().any(|u| u == username)
        || in_group(&rules.allowed_groups);
    if allowed {
        Ok(admin)
    } else {
        Err(AccessError::NotAllowed(username.into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rules() -> AccessRules {
        AccessRules {
            allowed_users: vec!["alice".into()],
            admin_users: vec!["carol".into()],
            blocked_users: vec!["eve".into()],
            allowed_groups: vec!["students".into()],
            admin_groups: vec!["staff".into()],
            groups_claim: "groups".into(),
            ..Default::default()
        }
    }

    #[test]
    fn nothing_is_allowed_unless_a_rule_allows_it() {
        assert_eq!(
            decide(&AccessRules::default(), "alice", &[]),
            Err(AccessError::NotAllowed("alice".into()))
        );
    }

    #[test]
    fn allowed_user_admin_user_and_groups() {
        let r = rules();
        assert_eq!(decide(&r, "alice", &[]), Ok(false));
        assert_eq!(decide(&r, "carol", &[]), Ok(true));
        assert_eq!(decide(&r, "dan", &["students".into()]), Ok(false));
        assert_eq!(decide(&r, "dan", &["staff".into()]), Ok(true));
        assert!(decide(&r, "dan", &["other".into()]).is_err());
    }

    #[test]
    fn blocked_wins_over_every_allow_rule() {
        let mut r = rules();
        r.allow_all = true;
        r.admin_users.push("eve".into());
        assert_eq!(
            decide(&r, "eve", &[]),
            Err(AccessError::Blocked("eve".into()))
        );
    }

    #[test]
    fn allow_all_allows_anyone_not_blocked() {
        let r = AccessRules {
            allow_all: true,
            ..Default::default()
        };
        assert_eq!(decide(&r, "zed", &[]), Ok(false));
    }

    #[test]
    fn dotted_claims_and_username_normalisation() {
        let c = json!({"realm": {"roles": ["a", "b"]}, "preferred_username": " Alice ", "n": 42});
        assert_eq!(groups_claim(&c, "realm.roles"), ["a", "b"]);
        assert_eq!(string_claim(&c, "n").as_deref(), Some("42"));
        let mut r = rules();
        r.username_map.insert("alice".into(), "alice2".into());
        assert_eq!(normalise_username(" Alice ", &r), "alice2");
        assert_eq!(normalise_username("BOB", &r), "bob");
    }
}
