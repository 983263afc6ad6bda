//! Identity providers' and platforms' key sets, cached by URL.

use super::store::{DocumentCache, Lookup, Unavailable};
use super::CacheSettings;
use crate::http::OutboundRequest;
use crate::jose::keys::{has_kid, parse_key_set, KeySet};
use crate::ports::Io;
use std::rc::Rc;

pub const MAX_JWKS_BYTES: usize = 128 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwksError {
    #[error("key set at {url} could not be fetched: {detail}")]
    Unavailable { url: String, detail: String },
}

impl From<Unavailable> for JwksError {
    fn from(u: Unavailable) -> Self {
        JwksError::Unavailable {
            url: u.url,
            detail: u.detail,
        }
    }
}

pub struct KeyCache {
    docs: DocumentCache<KeySet>,
}

impl Default for KeyCache {
    fn default() -> Self {
        KeyCache {
            docs: DocumentCache::new("jwks"),
        }
    }
}

/// A body is a usable key set when it parses and holds a signing key.
pub fn parse_usable(body: &str) -> Result<KeySet, String> {
    let keys = parse_key_set(body)?;
    if keys.keys.is_empty() {
        return Err("key set holds no usable signing key".into());
    }
    Ok(keys)
}

impl KeyCache {
    /// The key set at `url` that should verify a token with `kid`, fetching
    /// only when the policy says so.
    pub async fn get(
        &self,
        io: &impl Io,
        settings: &CacheSettings,
        url: &str,
        kid: Option<&str>,
    ) -> Result<Rc<KeySet>, JwksError> {
        let mut request = OutboundRequest::get(url);
        request.max_body_bytes = MAX_JWKS_BYTES;
        let has_needed = |k: &KeySet| has_kid(k, kid);
        Ok(self
            .docs
            .get(
                io,
                settings,
                Lookup {
                    request,
                    has_needed: &has_needed,
                    parse: &parse_usable,
                },
            )
            .await?)
    }
}
