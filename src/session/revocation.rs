//! Ended sessions: by the identity provider (Back-Channel Logout), by a
//! refresh that failed, or by the user's logout. A session of an OpenID
//! Connect login carries digests of its provider `sub` and `sid`
//! (`ProviderRefs`); a revocation is recorded under the matching digest (or
//! the session's own id) in KV `NONCES`, and every request of a session
//! consults it: from isolate memory, re-read from KV at most every
//! `recheck` seconds (DESIGN.md, "Sessions, state and keys").

use crate::http::UnixTime;
use crate::ports::{Io, KvNamespace};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::cell::RefCell;
use std::collections::HashMap;

const MEMORY_LIMIT: usize = 4096;

/// What a session knows of the provider's session, as digests: the
/// cookie never shows the provider's identifiers.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProviderRefs {
    /// Digest of (issuer, sub).
    pub sub: String,
    /// Digest of (issuer, sid), when the provider named its session.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    /// When the session refreshes next (`oauth::refresh`), if it can.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rat: Option<u64>,
    /// The `OAUTH_PROVIDERS` entry that logged the user in (`""`: the
    /// top-level provider).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub p: String,
}

fn digest(kind: &str, issuer: &str, value: &str) -> String {
    let mut h = Sha256::new();
    for part in [kind, issuer, value] {
        h.update((part.len() as u64).to_be_bytes());
        h.update(part.as_bytes());
    }
    h.finalize()
        .iter()
        .take(16)
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl ProviderRefs {
    pub fn new(issuer: &str, sub: &str, sid: Option<&str>) -> Self {
        ProviderRefs {
            sub: digest("sub", issuer, sub),
            sid: sid.map(|s| digest("sid", issuer, s)),
            rat: None,
            p: String::new(),
        }
    }
}

/// What a logout token revokes (OIDC Back-Channel Logout 1.0, 2.7): with a
/// `sid`, that provider session only; with only a `sub`, every session of
/// the user that started before the token was received.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Revoke {
    ProviderSession(String),
    UserBefore(String),
    /// One worker session (a refresh that failed ends it everywhere).
    Session(String),
}

impl Revoke {
    pub fn from_logout(issuer: &str, sub: Option<&str>, sid: Option<&str>) -> Option<Revoke> {
        match (sid, sub) {
            (Some(sid), _) => Some(Revoke::ProviderSession(digest("sid", issuer, sid))),
            (None, Some(sub)) => Some(Revoke::UserBefore(digest("sub", issuer, sub))),
            (None, None) => None,
        }
    }

    pub fn session(sid: &str) -> Revoke {
        Revoke::Session(digest("session", "", sid))
    }

    /// The digest it names (a key part for other stores, never the value).
    pub fn digest(&self) -> &str {
        match self {
            Revoke::ProviderSession(d) | Revoke::UserBefore(d) | Revoke::Session(d) => d,
        }
    }

    fn key(&self) -> String {
        match self {
            Revoke::ProviderSession(d) => format!("revoked:sid:{d}"),
            Revoke::UserBefore(d) => format!("revoked:sub:{d}"),
            Revoke::Session(d) => format!("revoked:session:{d}"),
        }
    }
}

impl Revoke {
    /// Every revocation that would name session `sid` (with `refs` when it
    /// came from an OpenID Connect login).
    fn naming(sid: &str, refs: Option<&ProviderRefs>) -> Vec<Revoke> {
        let mut out = vec![Revoke::session(sid)];
        if let Some(refs) = refs {
            out.push(Revoke::UserBefore(refs.sub.clone()));
            out.extend(refs.sid.clone().map(Revoke::ProviderSession));
        }
        out
    }

    /// Whether this revocation, recorded at `revoked_at`, ends a session it
    /// names that was issued at `issued_at` (pure).
    fn ends(&self, issued_at: UnixTime, revoked_at: u64) -> bool {
        match self {
            Revoke::UserBefore(_) => issued_at.0 <= revoked_at,
            Revoke::ProviderSession(_) | Revoke::Session(_) => true,
        }
    }
}

#[derive(Clone, Copy)]
struct Known {
    revoked_at: Option<u64>,
    checked_at: u64,
}

#[derive(Default)]
pub struct Revocations {
    memory: RefCell<HashMap<String, Known>>,
}

impl Revocations {
    /// Record a revocation for `ttl` seconds (the longest a session lives).
    pub async fn record(&self, io: &impl Io, r: &Revoke, ttl: u64) {
        let now = io.now();
        io.kv_put(KvNamespace::State, &r.key(), &now.0.to_string(), ttl)
            .await;
        self.remember(
            r.key(),
            Known {
                revoked_at: Some(now.0),
                checked_at: now.0,
            },
        );
    }

    /// Whether this session was ended (`Revoke`). Each key is read from KV at
    /// most once per `recheck` seconds on this isolate; a revocation, once
    /// seen, is kept.
    pub async fn is_revoked(
        &self,
        io: &impl Io,
        sid: &str,
        refs: Option<&ProviderRefs>,
        issued_at: UnixTime,
        recheck: u64,
    ) -> bool {
        let now = io.now().0;
        for r in Revoke::naming(sid, refs) {
            let key = r.key();
            let cached = self.memory.borrow().get(&key).copied();
            let known = match cached {
                Some(k) if k.revoked_at.is_some() || now < k.checked_at.saturating_add(recheck) => {
                    k
                }
                _ => {
                    let k = Known {
                        revoked_at: io
                            .kv_get(KvNamespace::State, &key)
                            .await
                            .and_then(|v| v.trim().parse::<u64>().ok()),
                        checked_at: now,
                    };
                    self.remember(key, k);
                    k
                }
            };
            if known.revoked_at.is_some_and(|at| r.ends(issued_at, at)) {
                return true;
            }
        }
        false
    }

    fn remember(&self, key: String, k: Known) {
        let mut m = self.memory.borrow_mut();
        if m.len() >= MEMORY_LIMIT {
            m.retain(|_, v| v.revoked_at.is_some());
            if m.len() >= MEMORY_LIMIT {
                m.clear();
            }
        }
        m.insert(key, k);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether a revocation recorded under `key` at `revoked_at` ends
    /// session `sid` with `refs`, issued at `issued_at`.
    fn ends(
        key: &str,
        sid: &str,
        refs: &ProviderRefs,
        issued_at: UnixTime,
        revoked_at: u64,
    ) -> bool {
        Revoke::naming(sid, Some(refs))
            .iter()
            .any(|r| r.key() == key && r.ends(issued_at, revoked_at))
    }

    #[test]
    fn digests_depend_on_the_issuer_and_hide_the_value() {
        let a = ProviderRefs::new("https://idp.a", "alice", Some("s1"));
        let b = ProviderRefs::new("https://idp.b", "alice", Some("s1"));
        assert_ne!(a.sub, b.sub);
        assert!(!a.sub.contains("alice"));
        assert_ne!(a.sid, b.sid);
    }

    #[test]
    fn a_sid_revocation_ends_that_provider_session_only() {
        let mine = ProviderRefs::new("I", "alice", Some("s1"));
        let other = ProviderRefs::new("I", "alice", Some("s2"));
        let r = Revoke::from_logout("I", Some("alice"), Some("s1")).unwrap();
        assert!(ends(&r.key(), "w1", &mine, UnixTime(10), 5));
        assert!(!ends(&r.key(), "w2", &other, UnixTime(10), 5));
    }

    #[test]
    fn a_sub_revocation_ends_sessions_that_started_before_it() {
        let s = ProviderRefs::new("I", "alice", Some("s1"));
        let r = Revoke::from_logout("I", Some("alice"), None).unwrap();
        assert!(ends(&r.key(), "w", &s, UnixTime(100), 100));
        assert!(!ends(&r.key(), "w", &s, UnixTime(101), 100));
        let bob = ProviderRefs::new("I", "bob", None);
        assert!(!ends(&r.key(), "w", &bob, UnixTime(1), 100));
    }

    #[test]
    fn a_session_revocation_ends_that_worker_session_only() {
        let refs = ProviderRefs::new("I", "alice", Some("s1"));
        let r = Revoke::session("w1");
        assert!(ends(&r.key(), "w1", &refs, UnixTime(1), 0));
        assert!(!ends(&r.key(), "w2", &refs, UnixTime(1), 0));
    }
}
