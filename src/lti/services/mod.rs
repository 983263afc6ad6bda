//! LTI Advantage services the worker calls on the platform with its own
//! credentials: Names and Roles Provisioning (the course roster at launch)
//! and Assignment and Grade Services (line items and scores, for hub
//! services through `/_hubgate/lti/ags/…`).
//!
//! `platform_token` obtains the platform's access token (OAuth 2.0 client
//! credentials with an RFC 7523 JWT assertion signed by the tool key);
//! `nrps` and `ags` are pure request builders and response parsers;
//! `routes` performs their I/O.

pub mod ags;
pub mod nrps;
pub mod platform_token;
pub mod routes;

use crate::http::{Failure, FetchError};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ServiceError {
    #[error("the platform has no token_url, or the tool no LTI13_PRIVATE_KEY: LTI Advantage services are off")]
    NotConfigured,
    #[error("LTI Advantage services keep their course records in KV NONCES, which is not bound")]
    NoStore,
    #[error("no credentials: send Authorization: Bearer <LTI13_SERVICE_SECRET> or token <JupyterHub API token>")]
    Unauthenticated,
    #[error("credentials refused: {0}")]
    Forbidden(String),
    #[error("bad request: {0}")]
    BadRequest(String),
    #[error("no launch from course {0:?} carried the Assignment and Grade Services claim")]
    UnknownCourse(String),
    #[error("user {user:?} never launched from course {course:?}")]
    UnknownUser { user: String, course: String },
    #[error("line item {0:?} is not on the origin of the course's line items")]
    ForeignLineItem(String),
    #[error("the platform granted no access token: {0}")]
    Token(String),
    #[error("the platform's service failed: {0}")]
    Platform(String),
    #[error("the hub could not check the API token: {0}")]
    Hub(String),
}

impl ServiceError {
    pub fn status(&self) -> u16 {
        use ServiceError::*;
        match self {
            NotConfigured | NoStore => 500,
            Unauthenticated => 401,
            Forbidden(_) => 403,
            BadRequest(_) | ForeignLineItem(_) => 400,
            UnknownCourse(_) | UnknownUser { .. } => 404,
            Token(_) | Platform(_) | Hub(_) => 502,
        }
    }
}

impl Failure for ServiceError {
    fn status(&self) -> u16 {
        ServiceError::status(self)
    }
    fn kind(&self) -> &'static str {
        "lti_service"
    }
}

impl From<FetchError> for ServiceError {
    fn from(e: FetchError) -> Self {
        ServiceError::Platform(e.to_string())
    }
}
