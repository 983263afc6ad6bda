//! `SESSION_SECRET` (+ `SESSION_SECRET_PREVIOUS`) and `SESSION_MAX_AGE`.

use crate::bindings::{Bindings, Reader};
use crate::secret::SessionSecret;

pub const MIN_SESSION_SECRET_BYTES: usize = 32;

#[derive(Debug, Clone)]
pub struct SessionSettings {
    pub secret: SessionSecret,
    pub previous: Option<SessionSecret>,
    pub max_age: u64,
    /// How often an isolate re-reads whether the identity provider ended
    /// a session (`SESSION_RECHECK_INTERVAL`, seconds; 0: every request).
    pub recheck: u64,
}

impl SessionSettings {
    pub fn parse<B: Bindings>(r: &mut Reader<'_, B>) -> Option<SessionSettings> {
        let secret = r.required("SESSION_SECRET");
        let previous = r.string("SESSION_SECRET_PREVIOUS");
        for (name, v) in [
            ("SESSION_SECRET", &secret),
            ("SESSION_SECRET_PREVIOUS", &previous),
        ] {
            if v.as_ref()
                .is_some_and(|v| v.len() < MIN_SESSION_SECRET_BYTES)
            {
                r.invalid(
                    name,
                    format!(
                        "must be at least {MIN_SESSION_SECRET_BYTES} characters of random data"
                    ),
                );
            }
        }
        let max_age = r.u64_in("SESSION_MAX_AGE", 86_400, 60, 30 * 86_400);
        let recheck = r.u64_in("SESSION_RECHECK_INTERVAL", 30, 0, 3_600);
        Some(SessionSettings {
            secret: SessionSecret::new(secret?),
            previous: previous.map(SessionSecret::new),
            max_age,
            recheck,
        })
    }
}
