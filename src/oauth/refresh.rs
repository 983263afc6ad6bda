//! Refresh (RFC 6749 6; OpenID Connect Core 12): when a session is due, a
//! new token response for its refresh token, read through the same steps
//! as a login's (the id_token verified, userinfo, the provider's hooks), so
//! the allow, block and group rules apply again. A refresh that the
//! provider refuses, or that names another user, ends the session.

use super::routes::{from_tokens, FromTokens, OAuthCtx};
use super::OAuthError;
use crate::http::UnixTime;
use crate::identity::from_claims::Asserted;
use crate::ports::Io;
use crate::secret::RefreshToken;
use crate::session::revocation::ProviderRefs;

/// The access token is refreshed this long before it expires.
const EXPIRY_MARGIN: u64 = 60;
/// An access token's expiry never plans a refresh sooner than this (a
/// provider handing out tokens of a few seconds would otherwise make every
/// request one); only the operator's `AUTH_REFRESH_AGE` can.
const MIN_INTERVAL: u64 = 30;

/// When the session refreshes next: after `refresh_age`
/// (`AUTH_REFRESH_AGE`), or before the access token expires if sooner.
pub fn next_refresh_at(now: UnixTime, refresh_age: u64, expires_in: Option<u64>) -> UnixTime {
    let by_expiry = expires_in.map_or(u64::MAX, |e| {
        e.saturating_sub(EXPIRY_MARGIN).max(MIN_INTERVAL)
    });
    now.plus(refresh_age.min(by_expiry).max(1))
}

/// Whether a session with this plan is due (pure).
pub fn needs_refresh(refresh_at: Option<u64>, now: UnixTime) -> bool {
    refresh_at.is_some_and(|at| now.0 >= at)
}

/// A successful refresh.
#[derive(Debug)]
pub struct Refreshed {
    pub asserted: Asserted,
    /// The rotated refresh token, when the provider sent one.
    pub refresh_token: Option<RefreshToken>,
    pub expires_in: Option<u64>,
}

pub async fn refresh(
    c: &OAuthCtx<'_>,
    refs: &ProviderRefs,
    refresh_token: &RefreshToken,
    io: &impl Io,
) -> Result<Refreshed, OAuthError> {
    let oauth = c.settings;
    let endpoints = c.discovery.endpoints(oauth, c.cache, io).await?;
    let req = oauth
        .provider()
        .refresh_request(oauth, &endpoints.token, refresh_token);
    let resp = io
        .fetch(req)
        .await
        .map_err(|e| OAuthError::TokenEndpoint(e.to_string()))?;
    let tokens = oauth.provider().parse_token_response(&resp)?;
    let FromTokens { asserted, sub, .. } = from_tokens(c, &endpoints, &tokens, None, io).await?;
    // OIDC Core 12.2: the refreshed id_token's `sub` (or userinfo's, when
    // the refresh brought no id_token) is the original's; for plain OAuth
    // 2.0 the username the hooks derive is.
    let same = match (&oauth.issuer, sub) {
        (Some(issuer), Some(sub)) => ProviderRefs::new(issuer, &sub, None).sub == refs.sub,
        (Some(_), None) => false,
        (None, _) => {
            ProviderRefs::new(&endpoints.token, &asserted.raw_username, None).sub == refs.sub
        }
    };
    if !same {
        return Err(OAuthError::SubjectChanged);
    }
    Ok(Refreshed {
        asserted,
        refresh_token: tokens.refresh_token,
        expires_in: tokens.expires_in,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plans_by_age_or_before_expiry_whichever_is_sooner() {
        let now = UnixTime(1000);
        assert_eq!(next_refresh_at(now, 300, None), UnixTime(1300));
        assert_eq!(next_refresh_at(now, 300, Some(3600)), UnixTime(1300));
        assert_eq!(next_refresh_at(now, 3600, Some(600)), UnixTime(1540));
        assert_eq!(next_refresh_at(now, 300, Some(5)), UnixTime(1030));
        assert_eq!(next_refresh_at(now, 2, Some(5)), UnixTime(1002));
    }

    #[test]
    fn due_only_with_a_plan_that_has_come() {
        assert!(!needs_refresh(None, UnixTime(5)));
        assert!(!needs_refresh(Some(6), UnixTime(5)));
        assert!(needs_refresh(Some(5), UnixTime(5)));
    }
}
