//! Arbitrary bytes as a sealed data envelope (v1 or a key epoch's v2): opening never panics,
//! and nothing opens that was not sealed with the key, session, generation and sender.
#![no_main]

use std::sync::OnceLock;

use enclave_e2ee::{envelope_generation, OpenError, SessionKeys};

const SID: &str = "8d5e3f2a-1b2c-4d3e-9f40-5a6b7c8d9e0f";

fn keys() -> &'static [SessionKeys; 2] {
    static K: OnceLock<[SessionKeys; 2]> = OnceLock::new();
    K.get_or_init(|| {
        [
            SessionKeys::derive_with("fuzz passphrase", SID, 1000),
            SessionKeys::derive_epoch("Qm7rT2xW9kLp4ZsV8nB3cY6dF1gH5jK0", SID, 7),
        ]
    })
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let parsed = envelope_generation(data);
    for k in keys() {
        match k.open(SID, "alice", data) {
            // Forging AES-GCM by chance is out of reach: an open envelope was sealed by us.
            Ok(_) => panic!("arbitrary bytes opened as an envelope"),
            Err(OpenError::OtherGeneration(g)) => {
                assert_eq!(parsed.map(|(pg, _)| pg), Ok(g));
                assert_ne!(g, k.generation);
            }
            Err(_) => {}
        }
    }
    // What we seal opens, whatever the plaintext.
    let k = &keys()[1];
    let sealed = k.seal(SID, "alice", data);
    assert_eq!(k.open(SID, "alice", &sealed).as_deref(), Ok(data));
});
