//! LTI 1.3 at the edge: third-party login initiation, the launch (an OIDC
//! implicit-flow id_token posted by the platform), deep linking, and the
//! tool's configuration and public keys.
//!
//! Decisions live in the sibling modules and take plain values; `routes`
//! performs the I/O they ask for (flow cookie, one-time nonces, the
//! platform's key set) and returns what a launch established (`Launched`).
//! LTI Advantage services will live in `services/`.

pub mod deep_linking;
pub mod dynamic_registration;
pub mod launch;
pub mod login;
pub mod registration;
pub mod routes;
pub mod services;
pub mod settings;
pub mod storage;
pub mod tool_config;
pub mod tool_keys;

pub use settings::LtiSettings;

use crate::cache::key_sets::JwksError;
use crate::http::Failure;
use crate::jose::claims::ClaimError;
use crate::jose::keys::JwtError;
use crate::one_time::OneTimeError;
use crate::session::flow_cookie::FlowError;

/// The LTI claim namespace (LTI Core 1.3, 5.3).
pub const CLAIM: &str = "https://purl.imsglobal.org/spec/lti/claim/";
/// The deep linking claim namespace (LTI Deep Linking 2.0, 4.4).
pub const DL_CLAIM: &str = "https://purl.imsglobal.org/spec/lti-dl/claim/";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LtiError {
    #[error("LTI 1.3 is not configured")]
    NotConfigured,
    #[error("missing parameter {0:?}")]
    MissingParameter(&'static str),
    #[error("issuer {0:?} is not a registered platform")]
    UnknownIssuer(String),
    #[error("client_id {client_id:?} is not registered for issuer {issuer:?}")]
    UnknownClientId { issuer: String, client_id: String },
    #[error("issuer {0:?} has several client ids registered and the login sent none")]
    AmbiguousClientId(String),
    #[error("deployment {0:?} is not registered for this platform")]
    UnknownDeployment(String),
    #[error("platform answered the authentication request with error {0:?}")]
    PlatformError(String),
    #[error("flow state: {0}")]
    Flow(#[from] FlowError),
    #[error("the flow was started for a registration that is no longer configured")]
    RegistrationGone,
    #[error("id_token: {0}")]
    IdToken(#[from] JwtError),
    #[error("id_token claim check failed: {0}")]
    Claims(#[from] ClaimError),
    #[error("nonce was already used (replayed launch)")]
    ReplayedNonce,
    #[error("launch claim {claim}: {reason}")]
    LaunchClaim { claim: &'static str, reason: String },
    #[error("no username in claim {key:?} nor in sub")]
    NoUsername { key: String },
    #[error("one-time store: {0}")]
    OneTimeStore(String),
    #[error("platform key set: {0}")]
    Jwks(#[from] JwksError),
    #[error("deep linking needs LTI13_PRIVATE_KEY (the tool's signing key)")]
    NoToolKey,
    #[error("deep linking response: {0}")]
    DeepLink(String),
    #[error("deep linking response was posted without the instructor's session")]
    DeepLinkSession,
    #[error("lti_storage_target is not a frame name")]
    BadStorageTarget,
    #[error("a launch carrying its flow from platform storage must be posted by the tool's own page (same origin)")]
    StorageCrossOrigin,
}

impl LtiError {
    /// Status codes in one place (DESIGN.md, "Status codes follow the anchors").
    pub fn status(&self) -> u16 {
        use LtiError::*;
        match self {
            NotConfigured => 404,
            MissingParameter(_)
            | AmbiguousClientId(_)
            | Flow(_)
            | RegistrationGone
            | LaunchClaim { .. }
            | NoUsername { .. }
            | BadStorageTarget
            | DeepLink(_) => 400,
            UnknownIssuer(_)
            | UnknownClientId { .. }
            | IdToken(_)
            | Claims(_)
            | ReplayedNonce
            | PlatformError(_) => 401,
            UnknownDeployment(_) | DeepLinkSession | StorageCrossOrigin => 403,
            Jwks(_) | OneTimeStore(_) => 502,
            NoToolKey => 500,
        }
    }
}

impl From<OneTimeError> for LtiError {
    fn from(e: OneTimeError) -> Self {
        match e {
            OneTimeError::Replay => LtiError::ReplayedNonce,
            OneTimeError::Unavailable(u) => LtiError::OneTimeStore(u.0),
        }
    }
}

impl Failure for LtiError {
    fn status(&self) -> u16 {
        LtiError::status(self)
    }
    fn kind(&self) -> &'static str {
        "lti"
    }
}

/// `application/x-www-form-urlencoded` pairs of a body (or a query).
pub fn form_pairs(body: &[u8]) -> Vec<(String, String)> {
    url::form_urlencoded::parse(body).into_owned().collect()
}

pub fn param<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .filter(|v| !v.is_empty())
}
