//! The one renderer for every failure: the client gets a short page (HTML
//! or JSON by `Accept`) with the status and a correlation id; the log gets
//! one JSON line with the detail.

use crate::http::{Failure, Headers, Response};
use crate::log;
use crate::pages;
use crate::ports::{random_token, Io};

/// A failure the edge itself meets (a body too large, the hub down) or one
/// with no enum of its own.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{detail}")]
pub struct EdgeFailure {
    pub status: u16,
    pub kind: &'static str,
    pub detail: String,
}

impl Failure for EdgeFailure {
    fn status(&self) -> u16 {
        self.status
    }
    fn kind(&self) -> &'static str {
        self.kind
    }
}

/// Log `f` and answer with its generic page.
pub fn fail(io: &impl Io, headers: &Headers, path: &str, f: &dyn Failure) -> Response {
    let id = random_token(io, 9);
    let status = f.status();
    io.log(&log::line(
        "error",
        &[
            ("kind", f.kind()),
            ("status", &status.to_string()),
            ("detail", &f.to_string()),
            ("correlation_id", &id),
            ("path", path),
        ],
    ));
    pages::error(status, &id, headers, None)
}
