//! Arbitrary bytes as every kind of token the server verifies (join, download, LiveKit) and
//! as the headers and body of a signed `/auth` request.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| enclave_server::fuzzing::tokens(data));
