//! The only door from the core to the world. The edge implements it with
//! `worker` (fetch, KV, Date.now, crypto.getRandomValues); tests implement it
//! with fixed clocks, counters and canned responses.

use crate::http::{FetchError, OutboundRequest, OutboundResponse, UnixTime};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KvNamespace {
    /// Key sets and discovery documents.
    JwksCache,
    /// Used LTI nonces.
    Nonces,
}

#[allow(async_fn_in_trait)] // single-threaded wasm: no Send bound wanted
pub trait Io {
    async fn fetch(&self, req: OutboundRequest) -> Result<OutboundResponse, FetchError>;
    /// `None` when the key is absent or the namespace is not bound.
    async fn kv_get(&self, ns: KvNamespace, key: &str) -> Option<String>;
    /// Best effort; a failed write is logged by the implementation.
    async fn kv_put(&self, ns: KvNamespace, key: &str, value: &str, ttl_secs: u64);
    fn now(&self) -> UnixTime;
    fn fill_random(&self, buf: &mut [u8]);
    /// One JSON object per line.
    fn log(&self, line: &str);
}

/// A KV key for a one-time value (state, nonce): its SHA-256, so the value
/// itself is never stored.
pub fn one_time_key(prefix: &str, value: &str) -> String {
    use sha2::{Digest, Sha256};
    let hex: String = Sha256::digest(value.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("{prefix}:{hex}")
}

/// Random bytes as URL-safe base64, for state, nonce, PKCE verifier, ids.
pub fn random_token(io: &impl Io, bytes: usize) -> String {
    use base64::Engine;
    let mut buf = vec![0u8; bytes];
    io.fill_random(&mut buf);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(buf)
}
