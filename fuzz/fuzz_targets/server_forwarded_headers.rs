//! Arbitrary bytes as `X-Forwarded-For` lines from a trusted and an untrusted peer, and as the
//! `Host` of a plain-HTTP request redirected to HTTPS.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| enclave_server::fuzzing::forwarded_headers(data));
