//! Every `/auth` request decoder, fed arbitrary bytes.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| enclave_proto::fuzzing::api_request(data));
