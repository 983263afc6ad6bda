//! The hook points of OAuthenticator's "writing your own" guide, as a trait:
//! each login calls them in this order, and a provider differs from another
//! only in what these return (data plus a few hooks, never `if provider ==`
//! in the callback).
//!
//! | OAuthenticator | here |
//! |---|---|
//! | `extra_authorize_params` | `authorize_params` |
//! | `build_access_tokens_request_params` | `token_request` |
//! | `get_token_info` | `parse_token_response` |
//! | `token_to_user` | `userinfo_request` + `parse_userinfo` |
//! | `user_info_to_username` | `username` |
//! | `build_auth_state_dict` | `auth_state` |
//! | (`check_allowed`, provider rules) | `check_claims` |

pub mod generic;

use super::settings::OAuthSettings;
use super::token::TokenResponse;
use super::OAuthError;
use crate::http::{OutboundRequest, OutboundResponse};
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

pub trait Provider {
    /// Extra authorize parameters (the flow's own are added by `authorize`).
    fn authorize_params(&self, s: &OAuthSettings) -> Vec<(String, String)>;
    /// RFC 6749 4.1.3: the access token request.
    fn token_request(&self, s: &OAuthSettings, x: &TokenExchange<'_>) -> OutboundRequest;
    /// RFC 6749 6: the refresh request.
    fn refresh_request(
        &self,
        s: &OAuthSettings,
        endpoint: &str,
        refresh_token: &RefreshToken,
    ) -> OutboundRequest {
        super::token::refresh_request(s, endpoint, refresh_token)
    }
    /// RFC 6749 5.1/5.2: the token response.
    fn parse_token_response(&self, resp: &OutboundResponse) -> Result<TokenResponse, OAuthError>;
    /// The user-data request made with the access token.
    fn userinfo_request(&self, url: &str, token: &AccessToken) -> OutboundRequest;
    /// The user data, checked against the id_token's `sub` when there is one.
    fn parse_userinfo(
        &self,
        resp: &OutboundResponse,
        id_token_sub: Option<&str>,
    ) -> Result<ClaimMap, OAuthError>;
    /// The username as asserted (before normalisation and the map).
    fn username(&self, s: &OAuthSettings, claims: &Value) -> Option<String>;
    fn email(&self, claims: &Value) -> Option<String>;
    fn groups(&self, groups_claim: &str, claims: &Value) -> Vec<String>;
    /// A provider's own refusal (a hosted domain, an organisation, ...).
    fn check_claims(&self, s: &OAuthSettings, claims: &Value) -> Result<(), OAuthError>;
    /// The claims handed to the hub as auth_state.
    fn auth_state(&self, claims: &Value, names: &[String]) -> Map<String, Value>;
}
