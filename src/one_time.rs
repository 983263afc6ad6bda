//! One-time values (OAuth state, LTI nonce, later logout-token `jti`):
//! checked and recorded in one step through `Io::use_once`, after the value
//! itself was verified. The store sees a digest, never the value.

use crate::ports::{Io, StoreUnavailable, Use};
use sha2::{Digest, Sha256};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    OAuthState,
    LtiNonce,
    LogoutJti,
}

impl Kind {
    fn prefix(self) -> &'static str {
        match self {
            Kind::OAuthState => "oauth-state",
            Kind::LtiNonce => "lti-nonce",
            Kind::LogoutJti => "logout-jti",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OneTimeKey {
    kind: Kind,
    digest: String,
}

impl OneTimeKey {
    pub fn new(kind: Kind, value: &str) -> Self {
        let digest = Sha256::digest(value.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        OneTimeKey { kind, digest }
    }

    pub fn as_store_key(&self) -> String {
        format!("{}:{}", self.kind.prefix(), self.digest)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum OneTimeError {
    #[error("already used")]
    Replay,
    #[error(transparent)]
    Unavailable(#[from] StoreUnavailable),
}

/// `Ok` exactly once per key within `ttl_secs`.
pub async fn take(io: &impl Io, key: &OneTimeKey, ttl_secs: u64) -> Result<(), OneTimeError> {
    match io.use_once(&key.as_store_key(), ttl_secs).await? {
        Use::First => Ok(()),
        Use::Replay => Err(OneTimeError::Replay),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_key_names_the_kind_and_hides_the_value() {
        let k = OneTimeKey::new(Kind::LtiNonce, "secret-nonce").as_store_key();
        assert!(k.starts_with("lti-nonce:"));
        assert!(!k.contains("secret-nonce"));
        assert_ne!(
            k,
            OneTimeKey::new(Kind::OAuthState, "secret-nonce").as_store_key()
        );
    }
}
