//! The key schedule and data envelope of Enclave's end-to-end encryption, as the web client
//! implements them (`web/src/e2ee.ts`). The server never runs this code on a room's secret; it
//! exists for tests (fixed vectors shared with the browser, and proofs that what the server
//! relays is ciphertext) and for native tools.
//!
//! Key schedule, version 1 (`docs/e2ee.md`):
//!
//! ```text
//! stretched = PBKDF2-HMAC-SHA-256(password = secret (UTF-8),
//!                                 salt = "enclave-e2ee-v1|" + session id,
//!                                 iterations = 600 000, 32 bytes)
//! media  = HKDF-SHA-256(ikm = stretched, salt = session id, info = "enclave media v1",        32)
//! data   = HKDF-SHA-256(ikm = stretched, salt = session id, info = "enclave data v1",         32)
//! check  = HKDF-SHA-256(ikm = stretched, salt = session id, info = "enclave key-check v1",    16)
//! verify = HKDF-SHA-256(ikm = stretched, salt = session id, info = "enclave verification v1",  5)
//! ```
//!
//! The session id salts everything, so the same secret in a new session of the same room gives
//! unrelated keys. `media` goes to livekit-client's `ExternalE2EEKeyProvider` as raw bytes;
//! `data` seals chat and other data messages; `check` is published so that a participant whose
//! key differs learns it at once; `verify` becomes the code people compare out of band.
//!
//! Key epochs (server-generated-key rooms): the server draws a new random secret for the
//! session whenever someone joins or leaves, numbered from 1 (the *generation*), and hands it
//! only to the members at that moment. An epoch secret is 32 random characters, so it needs no
//! stretching; the generation is bound into every key derived from it:
//!
//! ```text
//! stretched = HKDF-SHA-256(ikm = epoch secret (UTF-8), salt = "enclave-e2ee-v1|" + session id,
//!                          info = "enclave epoch " + generation (decimal), 32)
//! media, data, check, verify: as above, from this `stretched`
//! envelope v2 = 0x02 ‖ generation (u32, big-endian) ‖ IV (12) ‖ AES-256-GCM(ciphertext ‖ tag)
//!               AAD = "enclave-data-v2|" + session id + "|" + generation + "|" + sender
//! ```
//!
//! Generation 0 is the passphrase schedule above (self-inserted keys), sealed as envelope v1.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use hkdf::Hkdf;
use rand::RngCore;
use sha2::Sha256;
use zeroize::{Zeroize, ZeroizeOnDrop};

/// PBKDF2 iterations (OWASP's 2023 figure for PBKDF2-HMAC-SHA-256).
pub const ITERATIONS: u32 = 600_000;
/// Envelope format version byte.
pub const ENVELOPE_V1: u8 = 1;
/// Envelope format version byte of a key epoch (carries the generation).
pub const ENVELOPE_V2: u8 = 2;
const SALT_PREFIX: &str = "enclave-e2ee-v1|";

/// The keys of one participant in one session. Zeroed on drop.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct SessionKeys {
    pub media: [u8; 32],
    pub data: [u8; 32],
    pub check: [u8; 16],
    verify: [u8; 5],
    /// The key epoch: 0 for a passphrase, 1… for the server's epoch secrets.
    #[zeroize(skip)]
    pub generation: u32,
}

impl std::fmt::Debug for SessionKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionKeys(<redacted>)")
    }
}

impl SessionKeys {
    /// Derives the keys of `session_id` from `secret` with [`ITERATIONS`].
    pub fn derive(secret: &str, session_id: &str) -> Self {
        Self::derive_with(secret, session_id, ITERATIONS)
    }

    /// Derives with a chosen iteration count (tests of the schedule itself use fewer).
    pub fn derive_with(secret: &str, session_id: &str, iterations: u32) -> Self {
        let mut stretched = [0u8; 32];
        let salt = format!("{SALT_PREFIX}{session_id}");
        pbkdf2::pbkdf2_hmac::<Sha256>(
            secret.as_bytes(),
            salt.as_bytes(),
            iterations,
            &mut stretched,
        );
        let keys = Self::expand(&stretched, session_id, 0);
        stretched.zeroize();
        keys
    }

    /// Derives the keys of key epoch `generation` (≥ 1) of `session_id` from the epoch's
    /// secret, a random value the server drew (no stretching: it has ~190 bits).
    pub fn derive_epoch(secret: &str, session_id: &str, generation: u32) -> Self {
        let salt = format!("{SALT_PREFIX}{session_id}");
        let hk = Hkdf::<Sha256>::new(Some(salt.as_bytes()), secret.as_bytes());
        let mut stretched = [0u8; 32];
        hk.expand(
            format!("enclave epoch {generation}").as_bytes(),
            &mut stretched,
        )
        .expect("32 bytes is far below HKDF's limit");
        let keys = Self::expand(&stretched, session_id, generation);
        stretched.zeroize();
        keys
    }

    fn expand(stretched: &[u8; 32], session_id: &str, generation: u32) -> Self {
        let hk = Hkdf::<Sha256>::new(Some(session_id.as_bytes()), stretched);
        let mut keys = Self {
            media: [0; 32],
            data: [0; 32],
            check: [0; 16],
            verify: [0; 5],
            generation,
        };
        let expand = |info: &str, out: &mut [u8]| {
            hk.expand(info.as_bytes(), out)
                .expect("lengths are far below HKDF's limit")
        };
        expand("enclave media v1", &mut keys.media);
        expand("enclave data v1", &mut keys.data);
        expand("enclave key-check v1", &mut keys.check);
        expand("enclave verification v1", &mut keys.verify);
        keys
    }

    /// The key-check value as lowercase hex (what participants publish to compare keys).
    pub fn check_hex(&self) -> String {
        hex::encode(self.check)
    }

    /// The verification code: 40 bits as ten decimal digits in two groups, e.g. `04815-16234`.
    /// Everyone with the same key sees the same code.
    pub fn verification_code(&self) -> String {
        let mut v: u64 = 0;
        for b in self.verify {
            v = (v << 8) | u64::from(b);
        }
        let n = v % 10_000_000_000;
        format!("{:05}-{:05}", n / 100_000, n % 100_000)
    }

    /// Seals a data message: `0x01 ‖ IV (12) ‖ AES-256-GCM(ciphertext ‖ tag)` (generation 0) or
    /// `0x02 ‖ generation ‖ IV ‖ …` (a key epoch), with a random IV and associated data binding
    /// the session, the generation and the sender.
    pub fn seal(&self, session_id: &str, sender: &str, plaintext: &[u8]) -> Vec<u8> {
        let mut iv = [0u8; 12];
        rand::rngs::OsRng.fill_bytes(&mut iv);
        self.seal_with_iv(session_id, sender, plaintext, iv)
    }

    /// [`SessionKeys::seal`] with a given IV (fixed vectors only; never reuse an IV).
    pub fn seal_with_iv(
        &self,
        session_id: &str,
        sender: &str,
        plaintext: &[u8],
        iv: [u8; 12],
    ) -> Vec<u8> {
        let cipher = Aes256Gcm::new_from_slice(&self.data).expect("32-byte key");
        let aad = aad(session_id, self.generation, sender);
        let ct = cipher
            .encrypt(
                Nonce::from_slice(&iv),
                Payload {
                    msg: plaintext,
                    aad: &aad,
                },
            )
            .expect("AES-GCM encryption of an in-memory buffer cannot fail");
        let mut out = Vec::with_capacity(5 + 12 + ct.len());
        if self.generation == 0 {
            out.push(ENVELOPE_V1);
        } else {
            out.push(ENVELOPE_V2);
            out.extend_from_slice(&self.generation.to_be_bytes());
        }
        out.extend_from_slice(&iv);
        out.extend_from_slice(&ct);
        out
    }

    /// Opens a sealed message from `sender`.
    pub fn open(
        &self,
        session_id: &str,
        sender: &str,
        envelope: &[u8],
    ) -> Result<Vec<u8>, OpenError> {
        let (generation, rest) = envelope_generation(envelope)?;
        if generation != self.generation {
            return Err(OpenError::OtherGeneration(generation));
        }
        if rest.len() < 12 + 16 {
            return Err(OpenError::TooShort);
        }
        let (iv, ct) = rest.split_at(12);
        let cipher = Aes256Gcm::new_from_slice(&self.data).expect("32-byte key");
        cipher
            .decrypt(
                Nonce::from_slice(iv),
                Payload {
                    msg: ct,
                    aad: &aad(session_id, self.generation, sender),
                },
            )
            .map_err(|_| OpenError::Forged)
    }
}

fn aad(session_id: &str, generation: u32, sender: &str) -> Vec<u8> {
    if generation == 0 {
        format!("enclave-data-v1|{session_id}|{sender}").into_bytes()
    } else {
        format!("enclave-data-v2|{session_id}|{generation}|{sender}").into_bytes()
    }
}

/// The key generation an envelope was sealed under, and the rest of it (IV and ciphertext).
pub fn envelope_generation(envelope: &[u8]) -> Result<(u32, &[u8]), OpenError> {
    match envelope.split_first() {
        None => Err(OpenError::TooShort),
        Some((&ENVELOPE_V1, rest)) => Ok((0, rest)),
        Some((&ENVELOPE_V2, rest)) => {
            let (g, rest) = rest.split_first_chunk::<4>().ok_or(OpenError::TooShort)?;
            match u32::from_be_bytes(*g) {
                0 => Err(OpenError::Malformed),
                g => Ok((g, rest)),
            }
        }
        Some((&v, _)) => Err(OpenError::UnknownVersion(v)),
    }
}

/// Why an envelope did not open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum OpenError {
    #[error("envelope too short")]
    TooShort,
    #[error("unknown envelope version {0}")]
    UnknownVersion(u8),
    #[error("sealed under key generation {0}, not this key's")]
    OtherGeneration(u32),
    #[error("envelope v2 with generation 0")]
    Malformed,
    #[error("wrong key, wrong session or sender, or altered message")]
    Forged,
}

#[cfg(test)]
mod tests {
    use super::*;

    const SID: &str = "8d5e3f2a-1b2c-4d3e-9f40-5a6b7c8d9e0f";

    /// `vectors/v1.json` was computed with an independent implementation (Python's hashlib,
    /// hmac and `cryptography`); the web client's test derives the same file with WebCrypto.
    #[test]
    fn fixed_vectors_shared_with_the_browser() {
        let v: serde_json::Value =
            serde_json::from_str(include_str!("../vectors/v1.json")).unwrap();
        let s = |k: &str| v[k].as_str().unwrap().to_owned();
        assert_eq!(v["iterations"], ITERATIONS);
        let k = SessionKeys::derive(&s("secret"), &s("session_id"));
        assert_eq!(hex::encode(k.media), s("media"));
        assert_eq!(hex::encode(k.data), s("data"));
        assert_eq!(k.check_hex(), s("check"));
        assert_eq!(k.verification_code(), s("verification_code"));
        let seal = &v["seal"];
        let iv: [u8; 12] = hex::decode(seal["iv"].as_str().unwrap())
            .unwrap()
            .try_into()
            .unwrap();
        let sender = seal["sender"].as_str().unwrap();
        let sealed = k.seal_with_iv(
            &s("session_id"),
            sender,
            seal["plaintext"].as_str().unwrap().as_bytes(),
            iv,
        );
        assert_eq!(hex::encode(&sealed), seal["sealed"].as_str().unwrap());
        assert_eq!(
            k.open(&s("session_id"), sender, &sealed).unwrap(),
            seal["plaintext"].as_str().unwrap().as_bytes()
        );
    }

    /// `vectors/epoch.json` comes from `vectors/epoch.py` (Python's hmac and `cryptography`).
    #[test]
    fn fixed_epoch_vectors_shared_with_the_browser() {
        let v: serde_json::Value =
            serde_json::from_str(include_str!("../vectors/epoch.json")).unwrap();
        let s = |k: &str| v[k].as_str().unwrap().to_owned();
        let generation = v["generation"].as_u64().unwrap() as u32;
        let k = SessionKeys::derive_epoch(&s("secret"), &s("session_id"), generation);
        assert_eq!(hex::encode(k.media), s("media"));
        assert_eq!(hex::encode(k.data), s("data"));
        assert_eq!(k.check_hex(), s("check"));
        assert_eq!(k.verification_code(), s("verification_code"));
        let seal = &v["seal"];
        let iv: [u8; 12] = hex::decode(seal["iv"].as_str().unwrap())
            .unwrap()
            .try_into()
            .unwrap();
        let sender = seal["sender"].as_str().unwrap();
        let plaintext = seal["plaintext"].as_str().unwrap().as_bytes();
        let sealed = k.seal_with_iv(&s("session_id"), sender, plaintext, iv);
        assert_eq!(hex::encode(&sealed), seal["sealed"].as_str().unwrap());
        assert_eq!(
            k.open(&s("session_id"), sender, &sealed).unwrap(),
            plaintext
        );
        assert_eq!(envelope_generation(&sealed).unwrap().0, generation);
    }

    #[test]
    fn each_epoch_has_unrelated_keys_and_its_own_envelopes() {
        let e1 = SessionKeys::derive_epoch("same secret", SID, 1);
        let e2 = SessionKeys::derive_epoch("same secret", SID, 2);
        let pass = SessionKeys::derive_with("same secret", SID, 1000);
        assert_ne!(e1.media, e2.media);
        assert_ne!(e1.data, e2.data);
        assert_ne!(e1.check, e2.check);
        assert_ne!(e1.verification_code(), e2.verification_code());
        assert_ne!(e1.media, pass.media);
        let sealed = e1.seal(SID, "alice", b"x");
        assert_eq!(sealed[0], ENVELOPE_V2);
        assert_eq!(
            e2.open(SID, "alice", &sealed),
            Err(OpenError::OtherGeneration(1))
        );
        assert_eq!(
            pass.open(SID, "alice", &sealed),
            Err(OpenError::OtherGeneration(1))
        );
        assert_eq!(
            e1.open(SID, "alice", &pass.seal(SID, "alice", b"x")),
            Err(OpenError::OtherGeneration(0))
        );
        // The generation in the header is bound: rewriting it does not make it open elsewhere.
        let mut relabelled = sealed.clone();
        relabelled[4] = 2;
        assert_eq!(e2.open(SID, "alice", &relabelled), Err(OpenError::Forged));
        let mut zero = sealed.clone();
        zero[4] = 0;
        assert_eq!(e1.open(SID, "alice", &zero), Err(OpenError::Malformed));
        assert_eq!(e1.open(SID, "alice", &[2, 0, 0]), Err(OpenError::TooShort));
    }

    #[test]
    fn another_session_gets_unrelated_keys() {
        let a = SessionKeys::derive_with("same secret", SID, 1000);
        let b =
            SessionKeys::derive_with("same secret", "0b1c2d3e-4f50-4a6b-8c7d-9e0f1a2b3c4d", 1000);
        assert_ne!(a.media, b.media);
        assert_ne!(a.data, b.data);
        assert_ne!(a.check, b.check);
        assert_ne!(a.verification_code(), b.verification_code());
    }

    #[test]
    fn keys_are_separated_by_purpose() {
        let k = SessionKeys::derive_with("s", SID, 1000);
        assert_ne!(k.media, k.data);
        assert_ne!(&k.media[..16], &k.check[..]);
    }

    #[test]
    fn envelope_round_trips_and_binds_session_and_sender() {
        let k = SessionKeys::derive_with("s", SID, 1000);
        let sealed = k.seal(SID, "alice", b"secret chat");
        assert_eq!(k.open(SID, "alice", &sealed).unwrap(), b"secret chat");
        assert!(
            !sealed.windows(11).any(|w| w == b"secret chat"),
            "ciphertext does not contain the text"
        );
        assert_eq!(
            k.open(SID, "mallory", &sealed),
            Err(OpenError::Forged),
            "sender is bound"
        );
        assert_eq!(
            k.open("other-session", "alice", &sealed),
            Err(OpenError::Forged),
            "session is bound"
        );
        let wrong = SessionKeys::derive_with("t", SID, 1000);
        assert_eq!(wrong.open(SID, "alice", &sealed), Err(OpenError::Forged));
        let mut tampered = sealed.clone();
        *tampered.last_mut().unwrap() ^= 1;
        assert_eq!(k.open(SID, "alice", &tampered), Err(OpenError::Forged));
        assert_eq!(k.open(SID, "alice", &[1, 2, 3]), Err(OpenError::TooShort));
        assert_eq!(
            k.open(SID, "alice", &[9; 40]),
            Err(OpenError::UnknownVersion(9))
        );
        assert_ne!(
            k.seal(SID, "alice", b"x"),
            k.seal(SID, "alice", b"x"),
            "random IVs"
        );
    }

    #[test]
    fn verification_code_has_two_groups_of_five_digits() {
        let c = SessionKeys::derive_with("s", SID, 1000).verification_code();
        assert_eq!(c.len(), 11);
        assert!(
            c.chars().enumerate().all(|(i, ch)| if i == 5 {
                ch == '-'
            } else {
                ch.is_ascii_digit()
            }),
            "{c}"
        );
    }
}
