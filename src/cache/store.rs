//! The shell that carries out `policy::decide` for one kind of document:
//! isolate memory first, then KV `JWKS_CACHE`, then the network; on a failed
//! fetch a stale document within `STALE_LIMIT`, logged.

use super::policy::{decide, CacheSettings, FetchReason, Times, STALE_LIMIT};
use crate::http::{OutboundRequest, UnixTime};
use crate::log;
use crate::ports::{Io, KvNamespace};
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

struct Entry<T> {
    value: Rc<T>,
    times: Times,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct KvEntry {
    fetched_at: u64,
    ttl: u64,
    body: String,
}

/// Documents of one kind (`kind` names them in KV keys and log events).
pub struct DocumentCache<T> {
    kind: &'static str,
    entries: RefCell<HashMap<String, Entry<T>>>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{url} could not be fetched: {detail}")]
pub struct Unavailable {
    pub url: String,
    pub detail: String,
}

/// What one lookup needs: the request to send, whether a cached document
/// has what this caller needs, and how to parse (and check) a body.
pub struct Lookup<'a, T> {
    pub request: OutboundRequest,
    pub has_needed: &'a dyn Fn(&T) -> bool,
    pub parse: &'a dyn Fn(&str) -> Result<T, String>,
}

impl<T> DocumentCache<T> {
    pub fn new(kind: &'static str) -> Self {
        DocumentCache {
            kind,
            entries: RefCell::new(HashMap::new()),
        }
    }

    fn kv_key(&self, url: &str) -> String {
        format!("{}:{url}", self.kind)
    }

    pub async fn get(
        &self,
        io: &impl Io,
        settings: &CacheSettings,
        lookup: Lookup<'_, T>,
    ) -> Result<Rc<T>, Unavailable> {
        let url = lookup.request.url.clone();
        let now = io.now();
        if !self.entries.borrow().contains_key(&url) {
            self.load_from_kv(io, &url, lookup.parse).await;
        }
        let reason = {
            let entries = self.entries.borrow();
            let e = entries.get(&url);
            let needed = e.is_some_and(|e| (lookup.has_needed)(&e.value));
            match (decide(e.map(|e| e.times), needed, now), e) {
                (None, Some(e)) => return Ok(e.value.clone()),
                (Some(r), _) => r,
                (None, None) => FetchReason::Empty,
            }
        };
        if reason == FetchReason::Missing {
            if let Some(e) = self.entries.borrow_mut().get_mut(&url) {
                e.times.forced_at = Some(now);
            }
        }
        match fetch(io, settings, lookup.request, lookup.parse).await {
            Ok((body, value, ttl)) => {
                io.log(&log::line(
                    &format!("{}_fetched", self.kind),
                    &[("url", &url), ("reason", reason.as_str())],
                ));
                let value = Rc::new(value);
                let forced_at = self
                    .entries
                    .borrow()
                    .get(&url)
                    .and_then(|e| e.times.forced_at);
                let times = Times {
                    fetched_at: now,
                    ttl,
                    forced_at,
                    failed_at: None,
                };
                self.entries.borrow_mut().insert(
                    url.clone(),
                    Entry {
                        value: value.clone(),
                        times,
                    },
                );
                let kv = serde_json::to_string(&KvEntry {
                    fetched_at: now.0,
                    ttl,
                    body,
                })
                .unwrap_or_default();
                io.kv_put(
                    KvNamespace::Cache,
                    &self.kv_key(&url),
                    &kv,
                    ttl.saturating_add(STALE_LIMIT),
                )
                .await;
                Ok(value)
            }
            Err(detail) => {
                let mut entries = self.entries.borrow_mut();
                match entries.get_mut(&url) {
                    Some(e) if e.times.usable_when_stale(now) => {
                        e.times.failed_at = Some(now);
                        io.log(&log::line(
                            &format!("{}_stale_used", self.kind),
                            &[
                                ("url", &url),
                                ("reason", reason.as_str()),
                                ("error", &detail),
                            ],
                        ));
                        Ok(e.value.clone())
                    }
                    _ => Err(Unavailable { url, detail }),
                }
            }
        }
    }

    async fn load_from_kv(
        &self,
        io: &impl Io,
        url: &str,
        parse: &dyn Fn(&str) -> Result<T, String>,
    ) {
        let Some(raw) = io.kv_get(KvNamespace::Cache, &self.kv_key(url)).await else {
            return;
        };
        let Ok(e) = serde_json::from_str::<KvEntry>(&raw) else {
            return;
        };
        let Ok(value) = parse(&e.body) else {
            return;
        };
        self.entries.borrow_mut().insert(
            url.to_string(),
            Entry {
                value: Rc::new(value),
                times: Times {
                    fetched_at: UnixTime(e.fetched_at),
                    ttl: e.ttl,
                    forced_at: None,
                    failed_at: None,
                },
            },
        );
    }
}

async fn fetch<T>(
    io: &impl Io,
    settings: &CacheSettings,
    req: OutboundRequest,
    parse: &dyn Fn(&str) -> Result<T, String>,
) -> Result<(String, T, u64), String> {
    let resp = io.fetch(req).await.map_err(|e| e.to_string())?;
    if resp.status != 200 {
        return Err(format!("status {}", resp.status));
    }
    let body = String::from_utf8(resp.body).map_err(|_| "body is not UTF-8".to_string())?;
    let value = parse(&body)?;
    let ttl = settings.ttl_from_cache_control(resp.headers.get("cache-control"));
    Ok((body, value, ttl))
}
