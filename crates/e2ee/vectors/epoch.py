#!/usr/bin/env python3
"""Computes vectors/epoch.json, independently of crates/e2ee and web/src/e2ee.ts: Python's hmac
and hashlib for HKDF (RFC 5869), the `cryptography` package for AES-256-GCM.

    python3 crates/e2ee/vectors/epoch.py > crates/e2ee/vectors/epoch.json
"""
import hashlib
import hmac
import json

from cryptography.hazmat.primitives.ciphers.aead import AESGCM


def hkdf(ikm: bytes, salt: bytes, info: bytes, length: int) -> bytes:
    prk = hmac.new(salt, ikm, hashlib.sha256).digest()
    out, block, i = b"", b"", 1
    while len(out) < length:
        block = hmac.new(prk, block + info + bytes([i]), hashlib.sha256).digest()
        out += block
        i += 1
    return out[:length]


SECRET = "Qm7rT2xW9kLp4ZsV8nB3cY6dF1gH5jK0"
SID = "8d5e3f2a-1b2c-4d3e-9f40-5a6b7c8d9e0f"
GENERATION = 7
SENDER = "alice"
PLAINTEXT = "hello, world"
IV = bytes([7] * 12)

stretched = hkdf(
    SECRET.encode(), ("enclave-e2ee-v1|" + SID).encode(), f"enclave epoch {GENERATION}".encode(), 32
)
sid = SID.encode()
media = hkdf(stretched, sid, b"enclave media v1", 32)
data = hkdf(stretched, sid, b"enclave data v1", 32)
check = hkdf(stretched, sid, b"enclave key-check v1", 16)
verify = hkdf(stretched, sid, b"enclave verification v1", 5)
n = int.from_bytes(verify, "big") % 10_000_000_000
code = f"{n // 100_000:05d}-{n % 100_000:05d}"
aad = f"enclave-data-v2|{SID}|{GENERATION}|{SENDER}".encode()
sealed = bytes([2]) + GENERATION.to_bytes(4, "big") + IV + AESGCM(data).encrypt(IV, PLAINTEXT.encode(), aad)

print(
    json.dumps(
        {
            "secret": SECRET,
            "session_id": SID,
            "generation": GENERATION,
            "media": media.hex(),
            "data": data.hex(),
            "check": check.hex(),
            "verification_code": code,
            "seal": {"sender": SENDER, "plaintext": PLAINTEXT, "iv": IV.hex(), "sealed": sealed.hex()},
        },
        indent=2,
    )
)
