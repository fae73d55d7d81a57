//! Arbitrary bytes as a UDP datagram (STUN, DTLS, SRTP, SRTCP demultiplexing) into a room.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| enclave_sfu::fuzzing::datagram(data));
