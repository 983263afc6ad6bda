//! GenericOAuthenticator's behaviour: any OAuth 2.0 provider with a userdata
//! URL, or any OpenID Connect issuer.

use super::{Provider, TokenExchange};
use crate::http::{OutboundRequest, OutboundResponse};
use crate::identity::from_claims::{groups_claim, select_auth_state, string_claim};
use crate::jose::claims::ClaimMap;
use crate::oauth::settings::OAuthSettings;
use crate::oauth::token::{self, TokenResponse};
use crate::oauth::{userinfo, OAuthError};
use crate::secret::AccessToken;
use serde_json::{Map, Value};

pub struct Generic;

impl Provider for Generic {
    fn authorize_params(&self, s: &OAuthSettings) -> Vec<(String, String)> {
        s.extra_authorize_params.clone()
    }

    fn token_request(&self, s: &OAuthSettings, x: &TokenExchange<'_>) -> OutboundRequest {
        token::request(s, x.endpoint, x.code, x.pkce_verifier, x.redirect_uri)
    }

    fn parse_token_response(&self, resp: &OutboundResponse) -> Result<TokenResponse, OAuthError> {
        token::parse(resp)
    }

    fn userinfo_request(&self, url: &str, token: &AccessToken) -> OutboundRequest {
        userinfo::request(url, token)
    }

    fn parse_userinfo(
        &self,
        resp: &OutboundResponse,
        id_token_sub: Option<&str>,
    ) -> Result<ClaimMap, OAuthError> {
        userinfo::parse(resp, id_token_sub)
    }

    fn username(&self, s: &OAuthSettings, claims: &Value) -> Option<String> {
        string_claim(claims, &s.username_key)
    }

    fn email(&self, claims: &Value) -> Option<String> {
        string_claim(claims, "email")
    }

    fn groups(&self, groups_claim_path: &str, claims: &Value) -> Vec<String> {
        groups_claim(claims, groups_claim_path)
    }

    fn check_claims(&self, _s: &OAuthSettings, _claims: &Value) -> Result<(), OAuthError> {
        Ok(())
    }

    fn auth_state(&self, claims: &Value, names: &[String]) -> Map<String, Value> {
        select_auth_state(claims, names)
    }
}
