//! What the server can tell of a sealed envelope without its key.
//!
//! In an end-to-end encrypted room the server keeps texts it cannot open (poll texts,
//! whiteboard and notepad updates, file names). It cannot tell ciphertext from anything else,
//! but it can refuse what is plainly not an envelope, so that a client that forgot to seal (or
//! a tampered one) is refused rather than trusted.

use base64::Engine as _;

/// The sealed-envelope header this room's content key writes: version 1, a 12-byte IV and a
/// 16-byte tag around at least one byte (see crates/e2ee and web/src/e2ee.ts).
pub(crate) const ENVELOPE_V1: u8 = 1;
const MIN_ENVELOPE_BYTES: usize = 1 + 12 + 16 + 1;

/// Whether `text` is a sealed envelope as this room's clients write them: standard base64 of
/// version 1, IV, ciphertext and tag (words, an empty or truncated envelope are not).
pub fn is_sealed_text(text: &str) -> bool {
    match base64::engine::general_purpose::STANDARD.decode(text) {
        Ok(bytes) => bytes.len() >= MIN_ENVELOPE_BYTES && bytes[0] == ENVELOPE_V1,
        Err(_) => false,
    }
}

/// A sealed envelope of `n` ciphertext bytes (tests only).
#[cfg(test)]
pub(crate) fn sealed_for_tests(n: usize) -> String {
    let mut env = vec![ENVELOPE_V1];
    env.extend(std::iter::repeat_n(0xA5, 12 + 16 + n));
    base64::engine::general_purpose::STANDARD.encode(env)
}
