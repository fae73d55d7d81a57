//! The whiteboard converter's readers of untrusted bytes (an upload's type, a page image's PNG
//! header), fed arbitrary bytes.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| enclave_server::fuzzing::convert_input(data));
