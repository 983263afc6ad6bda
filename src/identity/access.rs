//! Username, groups and the allow/admin/block decision, with
//! OAuthenticator's semantics: blocked users are refused first; then a user
//! is allowed by `ALLOW_ALL`, by being in `ALLOWED_USERS`, by being an admin
//! (`ADMIN_USERS` or `ADMIN_GROUPS`), or by a group in `ALLOWED_GROUPS`.
//! Nothing else is allowed.

use crate::bindings::{Bindings, Reader};
use std::collections::BTreeMap;

/// OAuthenticator's allow/admin/block rules (nothing is allowed unless a
/// rule allows it).
#[derive(Debug, Clone, Default)]
pub struct AccessRules {
    pub allow_all: bool,
    pub allowed_users: Vec<String>,
    pub admin_users: Vec<String>,
    pub blocked_users: Vec<String>,
    pub allowed_groups: Vec<String>,
    pub admin_groups: Vec<String>,
    /// Dotted path into the merged claims.
    pub groups_claim: String,
    pub username_map: BTreeMap<String, String>,
}

impl AccessRules {
    pub fn parse<B: Bindings>(r: &mut Reader<'_, B>) -> AccessRules {
        AccessRules {
            allow_all: r.bool("ALLOW_ALL", false),
            allowed_users: lower(r.list("ALLOWED_USERS")),
            admin_users: lower(r.list("ADMIN_USERS")),
            blocked_users: lower(r.list("BLOCKED_USERS")),
            allowed_groups: r.list("ALLOWED_GROUPS"),
            admin_groups: r.list("ADMIN_GROUPS"),
            groups_claim: r.string("GROUPS_CLAIM").unwrap_or_else(|| "groups".into()),
            username_map: username_map(r),
        }
    }

    /// No OAuth user could ever be admitted.
    pub fn admits_nobody(&self) -> bool {
        !self.allow_all
            && self.allowed_users.is_empty()
            && self.admin_users.is_empty()
            && self.allowed_groups.is_empty()
            && self.admin_groups.is_empty()
    }
}

fn lower(v: Vec<String>) -> Vec<String> {
    v.into_iter().map(|s| s.to_lowercase()).collect()
}

fn username_map<B: Bindings>(r: &mut Reader<'_, B>) -> BTreeMap<String, String> {
    let Some(v) = r.json("USERNAME_MAP") else {
        return BTreeMap::new();
    };
    match serde_json::from_value::<BTreeMap<String, String>>(v) {
        Ok(m) => m,
        Err(_) => {
            r.invalid("USERNAME_MAP", "must be a JSON object of strings");
            BTreeMap::new()
        }
    }
}

/// A user the rules let in, and whether as an admin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Admitted {
    pub admin: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AccessError {
    #[error("user {0:?} is blocked")]
    Blocked(String),
    #[error("user {0:?} is not allowed by any rule")]
    NotAllowed(String),
}

/// Whether an identity provider's user may log in, and as what.
pub fn decide(
    rules: &AccessRules,
    username: &str,
    groups: &[String],
) -> Result<Admitted, AccessError> {
    decide_with(rules, username, groups, false)
}

/// `decide`, with the provider's own allow rule (GitHub organisations,
/// GitLab groups and projects, CILogon identity providers) as one more way
/// in: it never overrides a block.
pub fn decide_with(
    rules: &AccessRules,
    username: &str,
    groups: &[String],
    allowed_by_provider: bool,
) -> Result<Admitted, AccessError> {
    if rules.blocked_users.iter().any(|u| u == username) {
        return Err(AccessError::Blocked(username.into()));
    }
    let in_group = |list: &[String]| groups.iter().any(|g| list.contains(g));
    let admin = rules.admin_users.iter().any(|u| u == username) || in_group(&rules.admin_groups);
    let allowed = rules.allow_all
        || allowed_by_provider
        || admin
        || rules.allowed_users.iter().any(|u| u == username)
        || in_group(&rules.allowed_groups);
    if allowed {
        Ok(Admitted { admin })
    } else {
        Err(AccessError::NotAllowed(username.into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(decide(&r, "alice", &[]), Ok(Admitted { admin: false }));
        assert_eq!(decide(&r, "carol", &[]), Ok(Admitted { admin: true }));
        assert_eq!(
            decide(&r, "dan", &["students".into()]),
            Ok(Admitted { admin: false })
        );
        assert_eq!(
            decide(&r, "dan", &["staff".into()]),
            Ok(Admitted { admin: true })
        );
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
        assert_eq!(decide(&r, "zed", &[]), Ok(Admitted { admin: false }));
    }
}
