//! Arbitrary bytes as a LiveKit signalling frame into a room with two participants.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| enclave_sfu::fuzzing::signal_frame(data));
