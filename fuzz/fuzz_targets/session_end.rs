#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| hubgate_fuzz::checks::session_end::run(data));
