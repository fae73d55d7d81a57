//! Arbitrary bytes as a data packet from a participant (what the room may relay).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| enclave_sfu::fuzzing::data_packet(data));
