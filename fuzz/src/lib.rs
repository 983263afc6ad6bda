//! The fuzz targets' invariants, shared with `tests/fuzz_regressions.rs`
//! (which includes `checks/` by path, so it builds without libFuzzer).
pub mod checks;
