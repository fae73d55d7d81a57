//! What a STUN server answers (`rtc.use_external_ip`), fed arbitrary bytes.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| enclave_server::fuzzing::stun_response(data));
