//! OpenID Connect Core 1.0, 3.1.3.7: ID Token validation.

use crate::http::UnixTime;
pub use crate::jose::claims::ClaimError;
use crate::jose::claims::{self, ClaimMap};
use crate::jose::keys::{verify_jwt, Alg, JwtError, KeySet};

/// An id_token as received: nothing about it is trusted yet.
pub struct UntrustedIdToken<'a>(pub &'a str);

/// An id_token whose signature, issuer, audience, time and nonce were
/// checked. Only `UntrustedIdToken::verify` makes one.
#[derive(Debug)]
pub struct VerifiedIdToken {
    sub: String,
    claims: ClaimMap,
}

impl VerifiedIdToken {
    pub fn sub(&self) -> &str {
        &self.sub
    }
    pub fn into_claims(self) -> ClaimMap {
        self.claims
    }
}

pub struct Expectations<'a> {
    pub issuer: &'a str,
    pub client_id: &'a str,
    /// The flow's nonce; `None` for an id_token from a refresh (OIDC Core
    /// 12.2: it comes from the token endpoint, not through the browser).
    pub nonce: Option<&'a str>,
    pub algs: &'a [Alg],
    pub now: UnixTime,
    pub leeway: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum IdTokenError {
    #[error(transparent)]
    Jwt(#[from] JwtError),
    #[error(transparent)]
    Claims(#[from] ClaimError),
}

impl UntrustedIdToken<'_> {
    /// `kid` from the header, to pick (or refetch) the key set.
    pub fn kid(&self) -> Option<String> {
        crate::jose::keys::header_kid(self.0)
    }

    pub fn verify(
        self,
        keys: &KeySet,
        exp: &Expectations<'_>,
    ) -> Result<VerifiedIdToken, IdTokenError> {
        // Steps 6-8: signature with a key of the issuer, algorithm chosen by
        // code from the provider's list and the key's type.
        let (_, c) = verify_jwt::<ClaimMap>(self.0, keys, exp.algs)?;
        // Steps 2-5: iss, aud, azp.
        claims::check_issuer_and_audience(&c.custom, exp.issuer, exp.client_id)?;
        // Steps 9-10: exp, iat.
        claims::check_time(&c, exp.now, exp.leeway)?;
        // Step 11: nonce equals the one sent in the authorization request.
        if let Some(nonce) = exp.nonce {
            claims::check_nonce(&c.custom, nonce)?;
        }
        let sub = claims::str_claim(&c.custom, "sub")
            .filter(|s| !s.is_empty())
            .ok_or(ClaimError::MissingSub)?
            .to_string();
        let mut map = c.custom;
        map.remove("nonce");
        Ok(VerifiedIdToken { sub, claims: map })
    }
}
