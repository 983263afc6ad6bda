//! Who the worker vouches for, once a login or launch has been verified:
//! the access rules (`access`) and the one claims → `Identity` pipeline
//! every login method goes through (`from_claims`).

pub mod access;
pub mod from_claims;

use crate::cookies::Context;
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LoginMethod {
    Oauth,
    Lti,
}

impl LoginMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            LoginMethod::Oauth => "oauth",
            LoginMethod::Lti => "lti",
        }
    }

    /// Where a session's cookies live: an LTI launch's in the LMS frame.
    pub fn cookie_context(self) -> Context {
        match self {
            LoginMethod::Lti => Context::Embedded,
            LoginMethod::Oauth => Context::TopLevel,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Identity {
    pub username: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default)]
    pub groups: Vec<String>,
    #[serde(default)]
    pub admin: bool,
    pub method: LoginMethod,
    /// Claims the operator chose to hand to the hub as auth_state
    /// (`ASSERTION_AUTH_STATE_CLAIMS`).
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub auth_state: serde_json::Map<String, serde_json::Value>,
}
