//! The only door from the core to the world. The edge implements it with
//! `worker` (fetch, KV, the Durable Object behind `use_once`, Date.now,
//! crypto.getRandomValues); tests implement it with fixed clocks, counters
//! and canned responses.

use crate::http::{FetchError, OutboundRequest, OutboundResponse, UnixTime};

/// KV namespaces by what they hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KvNamespace {
    /// `JWKS_CACHE`: key sets and discovery documents.
    Cache,
    /// `NONCES`: session extras too big for the cookie, and used one-time
    /// values when the operator chose the KV one-time store.
    State,
}

/// The answer of the one-time store: was this the first use of the key?
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Use {
    First,
    Replay,
}

/// How long the edge waits for one KV read or write. A read that takes
/// longer is a miss and a write that takes longer failed; both are logged
/// (`kv_error`), as a KV error is.
pub const KV_TIMEOUT_MS: u32 = 2_000;
/// How long the edge waits for the one-time store (the Durable Object, or
/// KV's read and write); after that it is `StoreUnavailable`.
pub const ONE_TIME_TIMEOUT_MS: u32 = 5_000;

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("one-time store unavailable: {0}")]
pub struct StoreUnavailable(pub String);

#[allow(async_fn_in_trait)] // single-threaded wasm: no Send bound wanted
pub trait Io {
    /// A call to the internet (IdP, platform, key sets).
    async fn fetch(&self, req: OutboundRequest) -> Result<OutboundResponse, FetchError>;
    /// A call to the hub origin (through the `HUB` service binding when bound).
    async fn fetch_hub(&self, req: OutboundRequest) -> Result<OutboundResponse, FetchError>;
    /// `None` when the key is absent, the namespace is not bound, or KV
    /// failed or did not answer within `KV_TIMEOUT_MS`.
    async fn kv_get(&self, ns: KvNamespace, key: &str) -> Option<String>;
    /// Best effort; a failed write is logged by the implementation.
    async fn kv_put(&self, ns: KvNamespace, key: &str, value: &str, ttl_secs: u64);
    /// Check and record `key` in one step: `First` exactly once per key
    /// within `ttl_secs`, `Replay` after that; `StoreUnavailable` when the
    /// store fails or does not answer within `ONE_TIME_TIMEOUT_MS`.
    async fn use_once(&self, key: &str, ttl_secs: u64) -> Result<Use, StoreUnavailable>;
    fn now(&self) -> UnixTime;
    fn fill_random(&self, buf: &mut [u8]);
    /// One JSON object per line.
    fn log(&self, line: &str);
}

/// Random bytes as URL-safe base64, for state, nonce, PKCE verifier, ids.
pub fn random_token(io: &impl Io, bytes: usize) -> String {
    use base64::Engine;
    let mut buf = vec![0u8; bytes];
    io.fill_random(&mut buf);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(buf)
}
