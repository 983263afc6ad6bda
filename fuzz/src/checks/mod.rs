//! Invariants of every fuzz target, as plain functions of the input bytes:
//! each `<target>::run(data)` decodes the input the same way the fuzz
//! target does and panics when an invariant breaks. The fuzz targets call
//! them; `tests/fuzz_regressions.rs` replays the committed corpus and every
//! crash artifact through them under `cargo test`.
//!
//! Inputs are text-shaped (lines, `Name: value` headers) so the seed corpus
//! stays readable; a few `{placeholders}` (see `fixtures::expand`) stand for
//! genuine credentials the fuzzer could never forge, so it can reach the
//! code behind them.
#![allow(dead_code)]

pub mod fixtures;
pub mod input;
pub mod keys;
pub mod seeds;

pub mod bindings;
pub mod discovery;
pub mod flow_cookie;
pub mod form;
pub mod jwks;
pub mod jwt;
pub mod lti_services;
pub mod proxy_plan;
pub mod redirect_targets;
pub mod request;
pub mod request_cookies;
pub mod session_cookie;
pub mod session_end;
pub mod token_response;
pub mod userinfo;

/// Whether the finding `id` is tolerated in this run: `HUBGATE_FUZZ_TOLERATE`
/// (comma-separated ids) lets `scripts/fuzz.sh` look past findings already
/// reported and committed, so a run finds new ones. Never set under
/// `cargo test`: there every committed reproducer fails until it is fixed.
pub fn tolerated(id: &str) -> bool {
    static IDS: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    IDS.get_or_init(|| {
        std::env::var("HUBGATE_FUZZ_TOLERATE")
            .unwrap_or_default()
            .split(',')
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect()
    })
    .iter()
    .any(|i| i == id)
}

/// A finding in the code under test: panics (the fuzzer's crash) unless
/// `id` is tolerated. The message starts with `[id]` so a crash names it.
pub fn finding(id: &str, ok: bool, what: impl FnOnce() -> String) -> bool {
    if !ok && !tolerated(id) {
        panic!("[{id}] {}", what());
    }
    ok
}

/// Every target by name, in the order `scripts/fuzz.sh` runs them.
/// A target's check: decode the input, panic when an invariant breaks.
pub type Check = fn(&[u8]);

pub const TARGETS: &[(&str, Check)] = &[
    ("bindings", bindings::run),
    ("request_cookies", request_cookies::run),
    ("session_cookie", session_cookie::run),
    ("flow_cookie", flow_cookie::run),
    ("jwt", jwt::run),
    ("jwks", jwks::run),
    ("discovery", discovery::run),
    ("token_response", token_response::run),
    ("userinfo", userinfo::run),
    ("form", form::run),
    ("redirect_targets", redirect_targets::run),
    ("proxy_plan", proxy_plan::run),
    ("request", request::run),
    ("lti_services", lti_services::run),
    ("session_end", session_end::run),
];
