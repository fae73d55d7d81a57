//! Arbitrary bytes as a browser-API body (participant and recorder tasks) and as an RTMP
//! target URL and stream key.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| enclave_server::fuzzing::browser_request(data));
