// Enclave's key schedule and data envelope, version 1: byte for byte what crates/e2ee implements
// (and what crates/e2ee/vectors/v1.json pins). Only WebCrypto (globalThis.crypto.subtle), so the
// same code runs in the browser and in Node's unit tests.
//
//   stretched = PBKDF2-HMAC-SHA-256(secret (UTF-8), salt "enclave-e2ee-v1|" + sid, 600 000, 32 B)
//   media  = HKDF-SHA-256(stretched, salt = sid, info "enclave media v1",        32 B)
//   data   = HKDF-SHA-256(stretched, salt = sid, info "enclave data v1",         32 B)
//   check  = HKDF-SHA-256(stretched, salt = sid, info "enclave key-check v1",    16 B)
//   verify = HKDF-SHA-256(stretched, salt = sid, info "enclave verification v1",  5 B)
//
//   envelope = 0x01 ‖ IV (12, random) ‖ AES-256-GCM(plaintext) (ciphertext ‖ 16-byte tag)
//   AAD      = "enclave-data-v1|" + sid + "|" + sender identity
//
// Key epochs (server-generated-key rooms; crates/e2ee/vectors/epoch.json): the server draws a new
// random secret whenever someone joins or leaves, numbered 1, 2, … (the generation):
//
//   stretched = HKDF-SHA-256(secret (UTF-8), salt "enclave-e2ee-v1|" + sid, info "enclave epoch <g>", 32 B)
//   media, data, check, verify: as above, from this `stretched`
//   envelope v2 = 0x02 ‖ g (u32 BE) ‖ IV ‖ AES-256-GCM(plaintext)
//   AAD         = "enclave-data-v2|" + sid + "|" + g + "|" + sender identity
//
// A passphrase (self-inserted key) is generation 0 and seals envelope v1.
//
// Nothing here logs, stores or sends a secret or a key. The data key is imported as a
// non-extractable CryptoKey; the media key stays as bytes only because livekit-client's
// ExternalE2EEKeyProvider takes raw bytes (it imports them into its worker itself).

/** PBKDF2 iterations (OWASP's 2023 figure for PBKDF2-HMAC-SHA-256). */
export const ITERATIONS = 600_000;
/** Envelope format version byte. */
export const ENVELOPE_V1 = 1;
/** Envelope format version byte of a key epoch (carries the generation). */
export const ENVELOPE_V2 = 2;
const SALT_PREFIX = 'enclave-e2ee-v1|';
const AAD_PREFIX = 'enclave-data-v1|';
const IV_BYTES = 12;
const TAG_BYTES = 16;

const utf8 = new TextEncoder();

function subtle(): SubtleCrypto {
  const c = globalThis.crypto;
  if (!c || !c.subtle) {
    // WebCrypto exists only in secure contexts (https:// or http://localhost).
    throw new Error('WebCrypto is not available (the page must be served over https or from localhost)');
  }
  return c.subtle;
}

/** The raw output of the key schedule. Tests compare it with the fixed vectors. */
export interface KeyMaterial {
  media: Uint8Array<ArrayBuffer>;
  data: Uint8Array<ArrayBuffer>;
  check: Uint8Array<ArrayBuffer>;
  verify: Uint8Array<ArrayBuffer>;
}

/** Runs the key schedule. `iterations` other than ITERATIONS is for tests of the schedule only. */
export async function deriveKeyMaterial(
  secret: string,
  sessionId: string,
  iterations: number = ITERATIONS,
): Promise<KeyMaterial> {
  const s = subtle();
  const password = utf8.encode(secret);
  const pbkdf2Key = await s.importKey('raw', password, 'PBKDF2', false, ['deriveBits']);
  password.fill(0);
  const stretched = new Uint8Array(
    await s.deriveBits(
      { name: 'PBKDF2', hash: 'SHA-256', salt: utf8.encode(SALT_PREFIX + sessionId), iterations },
      pbkdf2Key,
      256,
    ),
  );
  return expandStretched(stretched, sessionId);
}

/** Runs the key schedule of key epoch `generation` (≥ 1) from the epoch's secret. */
export async function deriveEpochMaterial(secret: string, sessionId: string, generation: number): Promise<KeyMaterial> {
  if (!Number.isInteger(generation) || generation < 1 || generation > 0xffffffff) throw new Error('bad key generation');
  const s = subtle();
  const ikm = utf8.encode(secret);
  const key = await s.importKey('raw', ikm, 'HKDF', false, ['deriveBits']);
  ikm.fill(0);
  const stretched = new Uint8Array(
    await s.deriveBits(
      { name: 'HKDF', hash: 'SHA-256', salt: utf8.encode(SALT_PREFIX + sessionId), info: utf8.encode(`enclave epoch ${generation}`) },
      key,
      256,
    ),
  );
  return expandStretched(stretched, sessionId);
}

async function expandStretched(stretched: Uint8Array<ArrayBuffer>, sessionId: string): Promise<KeyMaterial> {
  const s = subtle();
  const hkdfKey = await s.importKey('raw', stretched, 'HKDF', false, ['deriveBits']);
  stretched.fill(0);
  const salt = utf8.encode(sessionId);
  const expand = async (info: string, bytes: number): Promise<Uint8Array<ArrayBuffer>> =>
    new Uint8Array(
      await s.deriveBits({ name: 'HKDF', hash: 'SHA-256', salt, info: utf8.encode(info) }, hkdfKey, bytes * 8),
    );
  return {
    media: await expand('enclave media v1', 32),
    data: await expand('enclave data v1', 32),
    check: await expand('enclave key-check v1', 16),
    verify: await expand('enclave verification v1', 5),
  };
}

/** An AES-256-GCM key from one of the session's secrets: HKDF-SHA-256(secret, salt "enclave-e2ee-v1|" + sid, info), non-extractable. */
async function deriveSecretKey(secret: string, sessionId: string, info: string): Promise<CryptoKey> {
  const s = subtle();
  const ikm = utf8.encode(secret);
  const key = await s.importKey('raw', ikm, 'HKDF', false, ['deriveKey']);
  ikm.fill(0);
  return s.deriveKey(
    { name: 'HKDF', hash: 'SHA-256', salt: utf8.encode(SALT_PREFIX + sessionId), info: utf8.encode(info) },
    key,
    { name: 'AES-GCM', length: 256 },
    false,
    ['encrypt', 'decrypt'],
  );
}

/**
 * The key that seals the chat history a browser keeps in a server-key room, from the history
 * secret the server gives this user (the same at every admission in the session): info
 * "enclave local history v1".
 */
export function deriveHistoryKey(secret: string, sessionId: string): Promise<CryptoKey> {
  return deriveSecretKey(secret, sessionId, 'enclave local history v1');
}

/**
 * The key that seals what late joiners must read too (poll texts) in a server-key room, from the
 * session's content secret (the same for everyone, all session): info "enclave content v1". An
 * epoch's data key cannot do this: a newcomer never holds the epochs before their arrival.
 */
export function deriveContentKey(secret: string, sessionId: string): Promise<CryptoKey> {
  return deriveSecretKey(secret, sessionId, 'enclave content v1');
}

/** Lowercase hex of `bytes`. */
export function toHex(bytes: Uint8Array): string {
  let out = '';
  for (const b of bytes) out += b.toString(16).padStart(2, '0');
  return out;
}

/** Bytes of a hex string (tests, fixed vectors). Throws on malformed input. */
export function fromHex(hex: string): Uint8Array<ArrayBuffer> {
  if (hex.length % 2 !== 0 || /[^0-9a-fA-F]/.test(hex)) throw new Error('malformed hex');
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return out;
}

/**
 * The verification code: the 5 bytes as a big-endian integer, mod 10^10, as two groups of five
 * digits (`%05d-%05d`). 40 bits fit exactly in a double, so plain numbers are exact here.
 */
export function verificationCode(verify: Uint8Array): string {
  let v = 0;
  for (const b of verify) v = v * 256 + b;
  const n = v % 10_000_000_000;
  const hi = Math.floor(n / 100_000);
  const lo = n % 100_000;
  return `${String(hi).padStart(5, '0')}-${String(lo).padStart(5, '0')}`;
}

function aad(sessionId: string, generation: number, sender: string): Uint8Array<ArrayBuffer> {
  return generation === 0
    ? utf8.encode(`${AAD_PREFIX}${sessionId}|${sender}`)
    : utf8.encode(`enclave-data-v2|${sessionId}|${generation}|${sender}`);
}

/** Why an envelope did not open (mirrors crates/e2ee's OpenError). */
export type OpenError = 'too-short' | 'unknown-version' | 'other-generation' | 'malformed' | 'forged';

export class EnvelopeError extends Error {
  constructor(readonly reason: OpenError) {
    super(`envelope did not open: ${reason}`);
    this.name = 'EnvelopeError';
  }
}

/** The key generation an envelope was sealed under and where its IV starts. Throws EnvelopeError. */
export function envelopeGeneration(envelope: Uint8Array): { generation: number; body: number } {
  if (envelope.length < 1) throw new EnvelopeError('too-short');
  if (envelope[0] === ENVELOPE_V1) return { generation: 0, body: 1 };
  if (envelope[0] !== ENVELOPE_V2) throw new EnvelopeError('unknown-version');
  if (envelope.length < 5) throw new EnvelopeError('too-short');
  const g = new DataView(envelope.buffer, envelope.byteOffset + 1, 4).getUint32(0);
  if (g === 0) throw new EnvelopeError('malformed');
  return { generation: g, body: 5 };
}

/**
 * The keys of one participant in one session, in memory only. Holds no secret: the data key is a
 * non-extractable CryptoKey, the check and the code are public one-way values.
 */
export class SessionKeys {
  private constructor(
    readonly sessionId: string,
    /** 0 for a passphrase, 1… for the server's key epochs. */
    readonly generation: number,
    private readonly dataKey: CryptoKey,
    private mediaKey: Uint8Array<ArrayBuffer> | null,
    /** Lowercase hex of the 16-byte key-check value (safe to publish). */
    readonly checkHex: string,
    /** The code people compare out of band, e.g. `76335-08526`. */
    readonly verificationCode: string,
  ) {}

  /** Derives the session's keys from `secret`. The caller drops its reference to the secret. */
  static async derive(secret: string, sessionId: string, iterations: number = ITERATIONS): Promise<SessionKeys> {
    const m = await deriveKeyMaterial(secret, sessionId, iterations);
    return SessionKeys.fromMaterial(m, sessionId);
  }

  /** Derives the keys of key epoch `generation` from the epoch's secret (fast: no stretching). */
  static async deriveEpoch(secret: string, sessionId: string, generation: number): Promise<SessionKeys> {
    const m = await deriveEpochMaterial(secret, sessionId, generation);
    return SessionKeys.fromMaterial(m, sessionId, generation);
  }

  /** Imports already derived material, then wipes the copies of it that it does not keep. */
  static async fromMaterial(m: KeyMaterial, sessionId: string, generation = 0): Promise<SessionKeys> {
    const dataKey = await subtle().importKey('raw', m.data, { name: 'AES-GCM' }, false, ['encrypt', 'decrypt']);
    m.data.fill(0);
    const keys = new SessionKeys(sessionId, generation, dataKey, m.media, toHex(m.check), verificationCode(m.verify));
    m.verify.fill(0);
    return keys;
  }

  /**
   * A copy of the media key as a fresh ArrayBuffer, for ExternalE2EEKeyProvider.setKey. The
   * caller wipes it once set (setKey imports it into a CryptoKey).
   */
  mediaKeyBuffer(): ArrayBuffer {
    if (!this.mediaKey) throw new Error('the media key was wiped');
    return this.mediaKey.slice().buffer;
  }

  /** Forgets the media key bytes (at the end of the session). */
  wipe(): void {
    this.mediaKey?.fill(0);
    this.mediaKey = null;
  }

  /** Seals a data message from `sender` (our own identity). `iv` is for fixed vectors only. */
  async seal(sender: string, plaintext: Uint8Array, iv?: Uint8Array): Promise<Uint8Array<ArrayBuffer>> {
    return sealWith(this.dataKey, this.sessionId, sender, plaintext, iv, this.generation);
  }

  /** Opens a message from `sender`; throws EnvelopeError when it does not open. */
  async open(sender: string, envelope: Uint8Array): Promise<Uint8Array<ArrayBuffer>> {
    return openWith(this.dataKey, this.sessionId, sender, envelope, this.generation);
  }
}

/** Seals with an AES-256-GCM key (see the envelope at the top). */
export async function sealWith(
  key: CryptoKey,
  sessionId: string,
  sender: string,
  plaintext: Uint8Array,
  iv?: Uint8Array,
  generation = 0,
): Promise<Uint8Array<ArrayBuffer>> {
  const nonce = new Uint8Array(IV_BYTES);
  if (iv) {
    if (iv.length !== IV_BYTES) throw new Error('the IV must be 12 bytes');
    nonce.set(iv);
  } else {
    globalThis.crypto.getRandomValues(nonce);
  }
  const ct = new Uint8Array(
    await subtle().encrypt(
      { name: 'AES-GCM', iv: nonce, additionalData: aad(sessionId, generation, sender), tagLength: 128 },
      key,
      new Uint8Array(plaintext),
    ),
  );
  const head = generation === 0 ? 1 : 5;
  const out = new Uint8Array(head + IV_BYTES + ct.length);
  if (generation === 0) {
    out[0] = ENVELOPE_V1;
  } else {
    out[0] = ENVELOPE_V2;
    new DataView(out.buffer).setUint32(1, generation);
  }
  out.set(nonce, head);
  out.set(ct, head + IV_BYTES);
  return out;
}

/** Opens with an AES-256-GCM key; throws EnvelopeError. */
export async function openWith(
  key: CryptoKey,
  sessionId: string,
  sender: string,
  envelope: Uint8Array,
  generation = 0,
): Promise<Uint8Array<ArrayBuffer>> {
  const { generation: sealedUnder, body } = envelopeGeneration(envelope);
  if (sealedUnder !== generation) throw new EnvelopeError('other-generation');
  if (envelope.length < body + IV_BYTES + TAG_BYTES) throw new EnvelopeError('too-short');
  const iv = envelope.slice(body, body + IV_BYTES);
  const ct = envelope.slice(body + IV_BYTES);
  try {
    return new Uint8Array(
      await subtle().decrypt(
        { name: 'AES-GCM', iv, additionalData: aad(sessionId, generation, sender), tagLength: 128 },
        key,
        ct,
      ),
    );
  } catch {
    throw new EnvelopeError('forged');
  }
}
