//! `jose::keys::{header_kid, verify_jwt}` on arbitrary tokens against a
//! fixed key set: never panics, never verifies anything but the genuine
//! tokens signed here (the seeds carry them; comparing the signed part
//! allows for signature malleability, which changes no claim), and then
//! only with an allowed algorithm. A genuine token with an allowed
//! algorithm does verify.
//!
//! Input: a flags byte (the allowed algorithms, one bit each in the order
//! RS256 RS384 RS512 PS256 PS384 PS512 ES256 EdDSA; none set means all),
//! then the token.

use super::fixtures::{self, fixed_key_set, genuine_jwts, signed_part};
use hubgate::jose::keys::{header_kid, verify_jwt, Alg};

const ALGS: [Alg; 8] = [
    Alg::Rs256,
    Alg::Rs384,
    Alg::Rs512,
    Alg::Ps256,
    Alg::Ps384,
    Alg::Ps512,
    Alg::Es256,
    Alg::EdDsa,
];

pub fn allowed(flags: u8) -> Vec<Alg> {
    let picked: Vec<Alg> = (0..8)
        .filter(|i| flags & (1 << i) != 0)
        .map(|i| ALGS[i])
        .collect();
    if picked.is_empty() {
        ALGS.to_vec()
    } else {
        picked
    }
}

pub fn run(data: &[u8]) {
    let (flags, rest) = super::input::flags(data);
    let token = String::from_utf8_lossy(rest);
    let allowed = allowed(flags);
    let kid = header_kid(&token);
    let genuine = genuine_jwts()
        .iter()
        .find(|g| signed_part(g) == signed_part(&token));
    match verify_jwt::<serde_json::Value>(&token, fixed_key_set(), &allowed) {
        Ok((header, claims)) => {
            let g = genuine.unwrap_or_else(|| panic!("a forged token verified: {token:?}"));
            let alg = Alg::parse(
                jwt_compact::UntrustedToken::new(g.as_str())
                    .expect("genuine")
                    .algorithm(),
            )
            .expect("genuine alg");
            assert!(allowed.contains(&alg), "{alg:?} is not allowed");
            assert_eq!(header.key_id, kid, "header_kid disagrees with the header");
            assert_eq!(claims.custom, fixtures::genuine_claims());
        }
        Err(e) => {
            assert!(!e.to_string().is_empty());
            // Completeness: the genuine tokens themselves verify.
            if token.as_ref() == genuine.map_or("", |g| g.as_str()) {
                let alg = jwt_compact::UntrustedToken::new(token.as_ref())
                    .ok()
                    .and_then(|t| Alg::parse(t.algorithm()));
                assert!(
                    !alg.is_some_and(|a| allowed.contains(&a)),
                    "a genuine token was refused: {e}"
                );
            }
        }
    }
}
