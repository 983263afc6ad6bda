//! Session extras too big for the cookie (many groups, large auth_state):
//! kept in KV `NONCES` (`KvNamespace::State`) under `session:<sid>` for the
//! session's lifetime, and in isolate memory once read.

use super::{PartialSession, Session};
use crate::http::UnixTime;
use crate::identity::Identity;
use crate::ports::{Io, KvNamespace};
use serde::{Deserialize, Serialize};
use std::cell::RefCell;
use std::collections::HashMap;

const MEMORY_LIMIT: usize = 2048;

#[derive(Clone, Serialize, Deserialize)]
struct Extras {
    groups: Vec<String>,
    #[serde(default)]
    auth_state: serde_json::Map<String, serde_json::Value>,
    expires_at: u64,
}

#[derive(Default)]
pub struct SessionStore {
    memory: RefCell<HashMap<String, Extras>>,
}

fn key(sid: &str) -> String {
    format!("session:{sid}")
}

fn refresh_key(sid: &str) -> String {
    format!("session-refresh:{sid}")
}

fn id_token_key(sid: &str) -> String {
    format!("session-id-token:{sid}")
}

impl SessionStore {
    pub async fn save(&self, io: &impl Io, sid: &str, identity: &Identity, ttl: u64) {
        let extras = Extras {
            groups: identity.groups.clone(),
            auth_state: identity.auth_state.clone(),
            expires_at: io.now().plus(ttl).0,
        };
        let raw = serde_json::to_string(&extras).unwrap_or_default();
        io.kv_put(KvNamespace::State, &key(sid), &raw, ttl).await;
        self.remember(sid, extras, io.now());
    }

    /// The complete session, or `None` when its extras are gone (expired,
    /// or not yet visible in this location: KV is eventually consistent).
    pub async fn complete(&self, io: &impl Io, partial: PartialSession) -> Option<Session> {
        let mut session = partial.session;
        let sid = session.sid.clone();
        let cached = self.memory.borrow().get(&sid).cloned();
        let extras = match cached {
            Some(e) => e,
            None => {
                let raw = io.kv_get(KvNamespace::State, &key(&sid)).await?;
                let e = serde_json::from_str::<Extras>(&raw).ok()?;
                self.remember(&sid, e.clone(), io.now());
                e
            }
        };
        if extras.expires_at <= io.now().0 {
            return None;
        }
        session.identity.groups = extras.groups;
        session.identity.auth_state = extras.auth_state;
        Some(session)
    }

    /// The id_token of an OpenID Connect login, kept for the session's
    /// lifetime as the `id_token_hint` of its logout at the provider.
    pub async fn save_id_token(&self, io: &impl Io, sid: &str, id_token: &str, ttl: u64) {
        io.kv_put(KvNamespace::State, &id_token_key(sid), id_token, ttl)
            .await;
    }

    pub async fn id_token(&self, io: &impl Io, sid: &str) -> Option<String> {
        io.kv_get(KvNamespace::State, &id_token_key(sid)).await
    }

    /// The session's refresh token, sealed (`super::seal`): KV never sees it
    /// in clear, and the browser never sees it at all.
    pub async fn save_sealed_refresh(&self, io: &impl Io, sid: &str, sealed: &str, ttl: u64) {
        io.kv_put(KvNamespace::State, &refresh_key(sid), sealed, ttl)
            .await;
    }

    pub async fn sealed_refresh(&self, io: &impl Io, sid: &str) -> Option<String> {
        io.kv_get(KvNamespace::State, &refresh_key(sid)).await
    }

    fn remember(&self, sid: &str, e: Extras, now: UnixTime) {
        let mut m = self.memory.borrow_mut();
        if m.len() >= MEMORY_LIMIT {
            m.retain(|_, v| v.expires_at > now.0);
            if m.len() >= MEMORY_LIMIT {
                m.clear();
            }
        }
        m.insert(sid.to_string(), e);
    }
}
