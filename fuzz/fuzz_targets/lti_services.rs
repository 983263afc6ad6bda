#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| hubgate_fuzz::checks::lti_services::run(data));
