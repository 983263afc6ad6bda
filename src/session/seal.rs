//! Refresh tokens at rest: sealed with ChaCha20-Poly1305 under a key of
//! their own derived from `SESSION_SECRET` (a purpose label, as the
//! cookies' keys are), and bound to their session's `sid` as associated
//! data, so a sealed token moved to another session does not open.

use crate::secret::{RefreshToken, SessionSecret};
use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Nonce};
use hmac::{Hmac, Mac};
use sha2::Sha256;

const LABEL: &[u8] = b"hubgate/v1/refresh-token-seal";
pub const NONCE_BYTES: usize = 12;

fn cipher(secret: &SessionSecret) -> Option<ChaCha20Poly1305> {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret.expose().as_bytes()).ok()?;
    mac.update(LABEL);
    let key = mac.finalize().into_bytes();
    ChaCha20Poly1305::new_from_slice(&key).ok()
}

/// `nonce` must be fresh random bytes for every seal.
pub fn seal(
    secret: &SessionSecret,
    sid: &str,
    token: &RefreshToken,
    nonce: [u8; NONCE_BYTES],
) -> Option<String> {
    let sealed = cipher(secret)?
        .encrypt(
            &Nonce::from(nonce),
            Payload {
                msg: token.expose().as_bytes(),
                aad: sid.as_bytes(),
            },
        )
        .ok()?;
    let mut out = nonce.to_vec();
    out.extend(sealed);
    Some(URL_SAFE_NO_PAD.encode(out))
}

/// Opens with the current secret, then the previous one (a rotation).
pub fn open(
    secret: &SessionSecret,
    previous: Option<&SessionSecret>,
    sid: &str,
    sealed: &str,
) -> Option<RefreshToken> {
    let bytes = URL_SAFE_NO_PAD.decode(sealed.trim()).ok()?;
    let (nonce, body) = (bytes.get(..NONCE_BYTES)?, bytes.get(NONCE_BYTES..)?);
    let nonce = Nonce::from(<[u8; NONCE_BYTES]>::try_from(nonce).ok()?);
    std::iter::once(secret)
        .chain(previous)
        .find_map(|s| {
            cipher(s)?
                .decrypt(
                    &nonce,
                    Payload {
                        msg: body,
                        aad: sid.as_bytes(),
                    },
                )
                .ok()
        })
        .and_then(|plain| String::from_utf8(plain).ok())
        .map(RefreshToken::new)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &str) -> SessionSecret {
        SessionSecret::new(v)
    }

    #[test]
    fn opens_for_its_session_only_and_hides_the_token() {
        let rt = RefreshToken::new("rt-secret-value");
        let sealed = seal(&s("k1"), "sid-a", &rt, [7; 12]).unwrap();
        assert!(!sealed.contains("rt-secret"));
        assert_eq!(open(&s("k1"), None, "sid-a", &sealed), Some(rt));
        assert_eq!(open(&s("k1"), None, "sid-b", &sealed), None);
        assert_eq!(open(&s("k2"), None, "sid-a", &sealed), None);
    }

    #[test]
    fn opens_after_a_secret_rotation_and_refuses_tampering() {
        let rt = RefreshToken::new("rt");
        let sealed = seal(&s("old"), "sid", &rt, [1; 12]).unwrap();
        assert_eq!(open(&s("new"), Some(&s("old")), "sid", &sealed), Some(rt));
        let mut bytes = URL_SAFE_NO_PAD.decode(&sealed).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        let tampered = URL_SAFE_NO_PAD.encode(bytes);
        assert_eq!(open(&s("old"), None, "sid", &tampered), None);
        assert_eq!(open(&s("old"), None, "sid", "short"), None);
        assert_eq!(open(&s("old"), None, "sid", "!!"), None);
    }
}
