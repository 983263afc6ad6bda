//! When to fetch and what to trust (DESIGN.md, "Sessions, state and keys"):
//! a document is fresh for a TTL from `Cache-Control` clamped to
//! [`MIN_TTL`, `KEY_SET_MAX_AGE`]; a document missing what a request needs
//! (an unknown `kid`) forces one refetch at most once per 30 s (the fetch
//! that first filled the cache does not start that clock); when a fetch
//! fails a stale document is used for up to 24 h and the event is logged,
//! and for `RETRY_AFTER_FAILURE` no request waits on the failing upstream
//! again (each would spend the fetch timeout) while the stale one serves.

use crate::bindings::{Bindings, Reader};
use crate::http::UnixTime;

pub const MIN_TTL: u64 = 300;
pub const HARD_MAX_TTL: u64 = 86_400;
/// A key the platform or IdP removed is trusted at most this long by
/// default (`KEY_SET_MAX_AGE`): the revocation delay.
pub const DEFAULT_MAX_TTL: u64 = 600;
pub const DEFAULT_TTL: u64 = 3_600;
pub const STALE_LIMIT: u64 = 86_400;
pub const REFETCH_COOLDOWN: u64 = 30;
pub const RETRY_AFTER_FAILURE: u64 = 30;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheSettings {
    /// The ceiling of a cached document's freshness, seconds.
    pub max_ttl: u64,
}

impl Default for CacheSettings {
    fn default() -> Self {
        CacheSettings {
            max_ttl: DEFAULT_MAX_TTL,
        }
    }
}

impl CacheSettings {
    pub fn parse<B: Bindings>(r: &mut Reader<'_, B>) -> CacheSettings {
        CacheSettings {
            max_ttl: r.u64_in("KEY_SET_MAX_AGE", DEFAULT_MAX_TTL, MIN_TTL, HARD_MAX_TTL),
        }
    }

    /// `max-age` from `Cache-Control`, clamped; `no-store`/`no-cache` mean the minimum.
    pub fn ttl_from_cache_control(&self, header: Option<&str>) -> u64 {
        let max = self.max_ttl.max(MIN_TTL);
        let Some(h) = header else {
            return DEFAULT_TTL.clamp(MIN_TTL, max);
        };
        let mut ttl = None;
        for d in h.split(',').map(|d| d.trim().to_ascii_lowercase()) {
            if d == "no-store" || d == "no-cache" {
                return MIN_TTL;
            }
            if let Some(v) = d.strip_prefix("max-age=") {
                ttl = v.trim_matches('"').parse::<u64>().ok();
            }
        }
        ttl.unwrap_or(DEFAULT_TTL).clamp(MIN_TTL, max)
    }
}

/// The times the policy needs about one cached document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Times {
    pub fetched_at: UnixTime,
    pub ttl: u64,
    /// When a missing item (unknown `kid`) last forced a refetch.
    pub forced_at: Option<UnixTime>,
    /// When the last refetch failed (the stale document was kept).
    pub failed_at: Option<UnixTime>,
}

impl Times {
    pub fn is_fresh(&self, now: UnixTime) -> bool {
        now.since(self.fetched_at) < self.ttl
    }
    pub fn usable_when_stale(&self, now: UnixTime) -> bool {
        now.since(self.fetched_at) < self.ttl.saturating_add(STALE_LIMIT)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FetchReason {
    Empty,
    Expired,
    /// The document lacks what this request needs (an unknown `kid`).
    Missing,
}

impl FetchReason {
    pub fn as_str(self) -> &'static str {
        match self {
            FetchReason::Empty => "empty",
            FetchReason::Expired => "expired",
            FetchReason::Missing => "unknown_kid",
        }
    }
}

/// The pure decision: use what is cached (`None`), or fetch (and why).
/// `has_needed` says whether the cached document holds what the request needs.
pub fn decide(entry: Option<Times>, has_needed: bool, now: UnixTime) -> Option<FetchReason> {
    let Some(e) = entry else {
        return Some(FetchReason::Empty);
    };
    if !e.is_fresh(now) {
        let backing_off = e
            .failed_at
            .is_some_and(|t| now.since(t) < RETRY_AFTER_FAILURE);
        if backing_off && has_needed && e.usable_when_stale(now) {
            return None;
        }
        return Some(FetchReason::Expired);
    }
    if has_needed {
        return None;
    }
    let cooled = e.forced_at.is_none_or(|t| now.since(t) >= REFETCH_COOLDOWN);
    cooled.then_some(FetchReason::Missing)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(fetched: u64, ttl: u64, forced: Option<u64>) -> Option<Times> {
        Some(Times {
            fetched_at: UnixTime(fetched),
            ttl,
            forced_at: forced.map(UnixTime),
            failed_at: None,
        })
    }

    fn failed(fetched: u64, ttl: u64, failed: u64) -> Option<Times> {
        at(fetched, ttl, None).map(|t| Times {
            failed_at: Some(UnixTime(failed)),
            ..t
        })
    }

    #[test]
    fn after_a_failed_refetch_the_stale_document_serves_without_waiting_on_the_upstream() {
        // expired at 400; the refetch at 500 failed
        assert_eq!(decide(failed(100, 300, 500), true, UnixTime(529)), None);
        assert_eq!(
            decide(failed(100, 300, 500), true, UnixTime(530)),
            Some(FetchReason::Expired),
            "after the back-off the upstream is tried again"
        );
        assert_eq!(
            decide(failed(100, 300, 500), false, UnixTime(510)),
            Some(FetchReason::Expired),
            "a document without what is needed is never served stale"
        );
        let too_old = 100 + 300 + STALE_LIMIT;
        assert_eq!(
            decide(failed(100, 300, too_old), true, UnixTime(too_old + 1)),
            Some(FetchReason::Expired),
            "past the stale limit nothing is served"
        );
    }

    #[test]
    fn fresh_document_with_what_is_needed_is_used() {
        assert_eq!(decide(at(100, 300, None), true, UnixTime(399)), None);
    }

    #[test]
    fn empty_and_expired_fetch() {
        assert_eq!(decide(None, false, UnixTime(1)), Some(FetchReason::Empty));
        assert_eq!(
            decide(at(100, 300, None), true, UnixTime(400)),
            Some(FetchReason::Expired)
        );
    }

    #[test]
    fn missing_item_refetches_once_per_cooldown_and_first_fill_does_not_count() {
        assert_eq!(
            decide(at(100, 300, None), false, UnixTime(101)),
            Some(FetchReason::Missing)
        );
        assert_eq!(decide(at(100, 300, Some(101)), false, UnixTime(120)), None);
        assert_eq!(
            decide(at(100, 300, Some(101)), false, UnixTime(131)),
            Some(FetchReason::Missing)
        );
    }

    #[test]
    fn ttl_is_clamped_to_the_configured_ceiling() {
        let s = CacheSettings::default();
        assert_eq!(s.ttl_from_cache_control(Some("max-age=86400")), 600);
        assert_eq!(s.ttl_from_cache_control(Some("max-age=10")), MIN_TTL);
        assert_eq!(s.ttl_from_cache_control(Some("no-store")), MIN_TTL);
        assert_eq!(s.ttl_from_cache_control(None), 600);
        let long = CacheSettings { max_ttl: 86_400 };
        assert_eq!(long.ttl_from_cache_control(Some("max-age=7200")), 7200);
        assert_eq!(long.ttl_from_cache_control(None), DEFAULT_TTL);
    }
}
