//! Arbitrary bytes as a Dependency Descriptor RTP header extension (read by the room to find
//! keyframes for layer switches).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| enclave_sfu::fuzzing::dependency_descriptor(data));
