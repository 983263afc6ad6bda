//! OAuth 2.0 authorization code flow with PKCE, and OpenID Connect on top.
//! `routes` performs the I/O; every decision is in the sibling modules and
//! in the `provider` hooks.

pub mod authorize;
pub mod backchannel;
pub mod extras;
pub mod id_token;
pub mod logout;
pub mod metadata;
pub mod presets;
pub mod provider;
pub mod refresh;
pub mod routes;
pub mod settings;
pub mod token;
pub mod userinfo;

pub use settings::{OAuthSettings, TokenAuth};

use crate::cache::key_sets::JwksError;
use crate::http::Failure;
use crate::jose::keys::JwtError;
use crate::one_time::OneTimeError;
use crate::session::flow_cookie::FlowError;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OAuthError {
    #[error("OAuth login is not configured")]
    NotConfigured,
    #[error("`next` is not a same-origin path")]
    UnsafeNext,
    #[error("flow state: {0}")]
    Flow(#[from] FlowError),
    #[error("state was already used")]
    StateReplayed,
    #[error("identity provider returned error {error:?}")]
    ProviderError { error: String, access_denied: bool },
    #[error("authorization response carries iss {got:?}, expected {expected:?} (RFC 9207)")]
    IssuerParamMismatch { got: String, expected: String },
    #[error("authorization response has no code")]
    MissingCode,
    #[error("discovery failed: {0}")]
    Discovery(String),
    #[error("token endpoint unreachable or unusable: {0}")]
    TokenEndpoint(String),
    #[error("token endpoint refused the grant: {0}")]
    TokenRefused(String),
    #[error("token response has no id_token (OpenID Connect)")]
    MissingIdToken,
    #[error("id_token: {0}")]
    IdToken(#[from] JwtError),
    #[error("id_token claim check failed: {0}")]
    IdTokenClaims(#[from] id_token::ClaimError),
    #[error("key set: {0}")]
    Jwks(#[from] JwksError),
    #[error("userinfo: {0}")]
    Userinfo(String),
    #[error("userinfo sub {userinfo:?} differs from id_token sub {id_token:?}")]
    UserinfoSubMismatch { userinfo: String, id_token: String },
    #[error("no username in claim {key:?} (claims present: {present})")]
    NoUsername { key: String, present: String },
    #[error("one-time store: {0}")]
    OneTimeStore(String),
    #[error("provider refused the user: {0}")]
    ProviderRule(String),
    #[error("a refresh answered for another user")]
    SubjectChanged,
    #[error("id_token issuer: {0}")]
    IdTokenIssuer(String),
    #[error(
        "the login was started with provider {started:?} and came back to {callback:?}'s callback"
    )]
    WrongProvider { started: String, callback: String },
}

impl From<OneTimeError> for OAuthError {
    fn from(e: OneTimeError) -> Self {
        match e {
            OneTimeError::Replay => OAuthError::StateReplayed,
            OneTimeError::Unavailable(u) => OAuthError::OneTimeStore(u.0),
        }
    }
}

impl Failure for OAuthError {
    fn status(&self) -> u16 {
        OAuthError::status(self)
    }
    fn kind(&self) -> &'static str {
        "oauth"
    }
}

impl OAuthError {
    /// Status codes in one place (DESIGN.md, "Status codes follow the anchors").
    pub fn status(&self) -> u16 {
        use OAuthError::*;
        match self {
            NotConfigured => 404,
            UnsafeNext
            | Flow(_)
            | StateReplayed
            | MissingCode
            | NoUsername { .. }
            | WrongProvider { .. } => 400,
            ProviderError {
                access_denied: true,
                ..
            } => 403,
            ProviderError { .. } => 400,
            IssuerParamMismatch { .. }
            | TokenRefused(_)
            | MissingIdToken
            | IdToken(_)
            | IdTokenClaims(_)
            | UserinfoSubMismatch { .. }
            | SubjectChanged
            | IdTokenIssuer(_) => 401,
            Discovery(_) | TokenEndpoint(_) | Jwks(_) | Userinfo(_) | OneTimeStore(_) => 502,
            ProviderRule(_) => 403,
        }
    }
}
