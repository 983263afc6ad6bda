//! The hook points of OAuthenticator's "writing your own" guide, as a trait:
//! each login calls them in this order, and a provider differs from another
//! only in what these return (data plus a few hooks, never `if provider ==`
//! in the callback). Every hook has the generic behaviour as its default;
//! a preset overrides the few it needs.
//!
//! | OAuthenticator | here |
//! |---|---|
//! | `extra_authorize_params` | `authorize_params` |
//! | `build_access_tokens_request_params` | `token_request` |
//! | `get_token_info` | `parse_token_response` |
//! | `token_to_user` | `userinfo_request` + `parse_userinfo` |
//! | `update_auth_model` (extra API calls) | `extra_requests` |
//! | `user_info_to_username` | `username` |
//! | `build_auth_state_dict` | `auth_state` |
//! | `check_blocked_users` (provider rules) | `check_claims` |
//! | `check_allowed` (provider rules) | `allows` |

pub mod azuread;
pub mod cilogon;
pub mod generic;
pub mod github;
pub mod gitlab;
pub mod google;

use super::settings::OAuthSettings;
use super::token::{self, TokenResponse};
use super::{userinfo, OAuthError};
use crate::http::{OutboundRequest, OutboundResponse};
use crate::identity::from_claims::{groups_claim, select_auth_state, string_claim};
use crate::jose::claims::ClaimMap;
use crate::secret::{AccessToken, RefreshToken};
use serde_json::{Map, Value};

/// What the token request needs from the callback.
pub struct TokenExchange<'a> {
    pub endpoint: &'a str,
    pub code: &'a str,
    pub pkce_verifier: &'a str,
    pub redirect_uri: &'a str,
}

/// A request a provider needs after the user data (GitHub's organisations,
/// GitLab's memberships); its answer goes into the claims under `name`.
#[derive(Debug, Clone)]
pub struct Extra {
    pub name: String,
    pub request: OutboundRequest,
    pub kind: ExtraKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExtraKind {
    /// A JSON array, paged with `Link: <…>; rel="next"` on the same origin:
    /// the pages' items, concatenated.
    Pages,
    /// A membership probe: the JSON body on 2xx, `null` on 404 or 403.
    Probe,
}

pub trait Provider {
    /// Extra authorize parameters (the flow's own are added by `authorize`).
    fn authorize_params(&self, s: &OAuthSettings) -> Vec<(String, String)> {
        s.extra_authorize_params.clone()
    }
    /// RFC 6749 4.1.3: the access token request.
    fn token_request(&self, s: &OAuthSettings, x: &TokenExchange<'_>) -> OutboundRequest {
        token::request(s, x.endpoint, x.code, x.pkce_verifier, x.redirect_uri)
    }
    /// RFC 6749 6: the refresh request.
    fn refresh_request(
        &self,
        s: &OAuthSettings,
        endpoint: &str,
        refresh_token: &RefreshToken,
    ) -> OutboundRequest {
        token::refresh_request(s, endpoint, refresh_token)
    }
    /// RFC 6749 5.1/5.2: the token response.
    fn parse_token_response(&self, resp: &OutboundResponse) -> Result<TokenResponse, OAuthError> {
        token::parse(resp)
    }
    /// The issuer an id_token must name: the configured one, or for a
    /// multi-tenant provider the one its tenant claim selects.
    fn expected_issuer(
        &self,
        _s: &OAuthSettings,
        configured: &str,
        _unverified_id_token: &str,
    ) -> Result<String, OAuthError> {
        Ok(configured.to_string())
    }
    /// The user-data request made with the access token.
    fn userinfo_request(
        &self,
        s: &OAuthSettings,
        url: &str,
        token: &AccessToken,
    ) -> OutboundRequest {
        userinfo::request(s, url, token)
    }
    /// The user data, checked against the id_token's `sub` when there is one.
    fn parse_userinfo(
        &self,
        resp: &OutboundResponse,
        id_token_sub: Option<&str>,
    ) -> Result<ClaimMap, OAuthError> {
        userinfo::parse(resp, id_token_sub)
    }
    /// Requests made after the user data, with what it said.
    fn extra_requests(
        &self,
        _s: &OAuthSettings,
        _claims: &Value,
        _token: &AccessToken,
    ) -> Vec<Extra> {
        Vec::new()
    }
    /// The username as asserted (before normalisation and the map).
    fn username(&self, s: &OAuthSettings, claims: &Value) -> Option<String> {
        string_claim(claims, &s.username_key)
    }
    fn email(&self, claims: &Value) -> Option<String> {
        string_claim(claims, "email")
    }
    fn groups(&self, _s: &OAuthSettings, groups_claim_path: &str, claims: &Value) -> Vec<String> {
        groups_claim(claims, groups_claim_path)
    }
    /// A provider's own refusal (a hosted domain, an unverified email, ...).
    fn check_claims(&self, _s: &OAuthSettings, _claims: &Value) -> Result<(), OAuthError> {
        Ok(())
    }
    /// A provider's own allow rule (an organisation, a project, ...).
    fn allows(&self, _s: &OAuthSettings, _claims: &Value) -> bool {
        false
    }
    /// The claims handed to the hub as auth_state.
    fn auth_state(&self, claims: &Value, names: &[String]) -> Map<String, Value> {
        select_auth_state(claims, names)
    }
}
