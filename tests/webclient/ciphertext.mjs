// What the web-client suite looks for in what the server saw: a secret in bytes, in every
// encoding we can think of; the SFU tap file (`enclave-tap`); LiveKit's E2EE frame trailer and key
// derivations (independent of the web client's); byte statistics of ciphertext.

import { createDecipheriv, hkdfSync } from 'node:crypto';
import fs from 'node:fs';

// ---------------------------------------------------------------------------------------------
// Searching for a secret in bytes, in every encoding we can think of

/** Needles for `text`: UTF-8, UTF-16LE/BE, hex (both cases), base64 and base64url at each of the
 *  three alignments (the part of the encoding that depends on the text alone), URL encodings. */
export function needles(text) {
  const raw = Buffer.from(text, 'utf8');
  const out = [
    ['utf8', raw],
    ['utf16le', Buffer.from(text, 'utf16le')],
    ['utf16be', Buffer.from(text, 'utf16le').swap16()],
    ['hex', Buffer.from(raw.toString('hex'))],
    ['HEX', Buffer.from(raw.toString('hex').toUpperCase())],
    ['uri', Buffer.from(encodeURIComponent(text))],
    ['form', Buffer.from(encodeURIComponent(text).replace(/%20/g, '+'))],
  ];
  for (const k of [0, 1, 2]) {
    const padded = Buffer.concat([Buffer.alloc(k), raw]);
    for (const enc of ['base64', 'base64url']) {
      let s = padded.toString(enc).replace(/=+$/, '');
      // Drop characters that depend on the padding bytes or on what follows the text.
      s = s.slice(k === 0 ? 0 : 4, s.length - 4);
      if (s.length >= 8) out.push([`${enc}@${k}`, Buffer.from(s)]);
    }
  }
  // De-duplicate (uri == utf8 for plain ASCII without reserved characters, etc.).
  const seen = new Set();
  return out.filter(([, b]) => {
    const k = b.toString('hex');
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}

/** Names of the encodings of `text` found in `buf` (case-sensitive byte search). */
export function findIn(buf, ns) {
  return ns.filter(([, n]) => buf.indexOf(n) !== -1).map(([name]) => name);
}

// ---------------------------------------------------------------------------------------------
// The SFU tap (`enclave-tap` with ENCLAVE_TAP_FILE): one JSON object per line,
// {"room","kind":"rtp-audio"|"rtp-video"|"data","from","marker","payload":<hex>}

export function readTap(file) {
  if (!fs.existsSync(file)) return [];
  const text = fs.readFileSync(file, 'utf8');
  const out = [];
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    let r;
    try {
      r = JSON.parse(line);
    } catch {
      continue; // a line being written right now
    }
    r.bytes = Buffer.from(r.payload, 'hex');
    out.push(r);
  }
  return out;
}

/** LiveKit's frame trailer (livekit-client e2ee worker, FrameCryptor.encodeFunction):
 *  frame = clear header ‖ AES-GCM ciphertext (incl. 16-byte tag) ‖ IV (12) ‖ [IV length = 12, key index]. */
export const IV_LENGTH = 12;
export const TRAILER = 2;
/** Whether `b` ends with LiveKit's trailer, with key index `keyIndex` (any slot of the ring when null). */
export const hasTrailer = (b, keyIndex = null) =>
  b.length >= 2 && b[b.length - 2] === IV_LENGTH && (keyIndex === null ? b[b.length - 1] < KEYRING_SIZE : b[b.length - 1] === keyIndex);
/** The web client's LiveKit key ring (web/src/epochs.ts): epoch g uses slot g mod 16. */
export const KEYRING_SIZE = 16;

/**
 * The LiveKit media key of a server key epoch (crates/e2ee, schedule of key epochs), with Node's
 * own HKDF: an implementation independent of the web client's.
 */
export function epochMediaKey(secret, sid, generation) {
  const stretched = Buffer.from(hkdfSync('sha256', Buffer.from(secret), Buffer.from(`enclave-e2ee-v1|${sid}`), Buffer.from(`enclave epoch ${generation}`), 32));
  return Buffer.from(hkdfSync('sha256', stretched, Buffer.from(sid), Buffer.from('enclave media v1'), 32));
}

/** livekit-client's frame key from raw key material: HKDF-SHA-256(salt "LKFrameEncryptionKey", info 128 zero bytes), AES-128. */
export function frameKey(material) {
  return Buffer.from(hkdfSync('sha256', material, Buffer.from('LKFrameEncryptionKey'), Buffer.alloc(128), 16));
}

/**
 * Whether an Opus RTP payload (one LiveKit-encrypted frame: TOC byte in clear ‖ ciphertext ‖ tag
 * ‖ IV ‖ trailer) decrypts with `key`; the TOC byte is the associated data.
 */
export function decryptsAudio(b, key) {
  if (!hasTrailer(b) || b.length < 1 + 16 + IV_LENGTH + TRAILER) return false;
  const ivAt = b.length - TRAILER - IV_LENGTH;
  const d = createDecipheriv('aes-128-gcm', key, b.subarray(ivAt, ivAt + IV_LENGTH));
  d.setAAD(b.subarray(0, 1));
  d.setAuthTag(b.subarray(ivAt - 16, ivAt));
  try {
    d.update(b.subarray(1, ivAt - 16));
    d.final();
    return true;
  } catch {
    return false;
  }
}

/** The VP8 RTP payload descriptor (RFC 7741 §4.2): where the VP8 data starts, and whether this
 *  packet starts a frame (S=1, PID=0). */
export function vp8Descriptor(p) {
  let i = 0;
  const b0 = p[i++];
  const x = b0 & 0x80;
  const start = !!(b0 & 0x10) && (b0 & 0x07) === 0;
  if (x) {
    const b1 = p[i++];
    if (b1 & 0x80) i += p[i] & 0x80 ? 2 : 1; // PictureID, 7 or 15 bits
    if (b1 & 0x40) i += 1; // TL0PICIDX
    if (b1 & 0x30) i += 1; // TID / KEYIDX
  }
  return { offset: i, start };
}

export function entropy(buf) {
  if (buf.length === 0) return 0;
  const h = new Array(256).fill(0);
  for (const b of buf) h[b]++;
  let e = 0;
  for (const c of h) {
    if (c) {
      const p = c / buf.length;
      e -= p * Math.log2(p);
    }
  }
  return e;
}

/**
 * Media of one room in the tap: per sender, the share of audio packets (after the first 50, i.e.
 * the first second of 20 ms Opus frames) and of video packets with the marker bit that end with
 * LiveKit's trailer, and the bytes between the clear codec header and the IV (the ciphertext if
 * the frame is encrypted): audio = payload[1 .. len-14] (Opus TOC byte in clear); video = the VP8
 * data after the descriptor, minus the 10 (key frame) / 3 (delta frame) clear bytes in the
 * packet that starts a frame, minus IV + trailer in the packet that ends it (marker).
 */
export function analyseMedia(records) {
  const audio = { total: 0, checked: 0, withTrailer: 0, firstSecond: 0, firstSecondWithTrailer: 0, empty: 0, failures: [] };
  const video = { total: 0, markers: 0, markersWithTrailer: 0, keyFrames: 0, keyFramesWithStartCode: 0, empty: 0, failures: [] };
  const perSender = new Map();
  const audioCipher = [];
  const videoCipher = [];
  for (const r of records) {
    const b = r.bytes;
    if (r.kind === 'rtp-audio') {
      audio.total++;
      if (b.length === 0) {
        audio.empty++;
        continue;
      }
      const n = (perSender.get(r.from) ?? 0) + 1;
      perSender.set(r.from, n);
      const t = hasTrailer(b);
      if (n <= 50) {
        audio.firstSecond++;
        if (t) audio.firstSecondWithTrailer++;
      } else {
        audio.checked++;
        if (t) audio.withTrailer++;
        else if (audio.failures.length < 5) audio.failures.push(`${r.from}#${n}: …${b.subarray(-16).toString('hex')} (${b.length} B)`);
      }
      if (b.length > 1 + IV_LENGTH + TRAILER) audioCipher.push(b.subarray(1, b.length - IV_LENGTH - TRAILER));
    } else if (r.kind === 'rtp-video') {
      video.total++;
      if (b.length === 0) {
        video.empty++;
        continue;
      }
      const d = vp8Descriptor(b);
      let from = d.offset;
      if (d.start) {
        const key = (b[d.offset] & 0x01) === 0; // VP8 frame tag: P bit 0 = key frame
        if (key) {
          video.keyFrames++;
          if (b[d.offset + 3] === 0x9d && b[d.offset + 4] === 0x01 && b[d.offset + 5] === 0x2a) video.keyFramesWithStartCode++;
        }
        from += key ? 10 : 3;
      }
      let to = b.length;
      if (r.marker) {
        video.markers++;
        if (hasTrailer(b)) video.markersWithTrailer++;
        else if (video.failures.length < 5) video.failures.push(`${r.from}: …${b.subarray(-16).toString('hex')} (${b.length} B)`);
        to -= IV_LENGTH + TRAILER;
      }
      if (to > from) videoCipher.push(b.subarray(from, to));
    }
  }
  const a = Buffer.concat(audioCipher);
  const v = Buffer.concat(videoCipher);
  return {
    audio: { ...audio, share: audio.checked ? audio.withTrailer / audio.checked : 0, cipherBytes: a.length, entropy: entropy(a), chi2: chiSquare(a) },
    video: { ...video, share: video.markers ? video.markersWithTrailer / video.markers : 0, cipherBytes: v.length, entropy: entropy(v), chi2: chiSquare(v) },
    all: { cipherBytes: a.length + v.length, entropy: entropy(Buffer.concat([a, v])), chi2: chiSquare(Buffer.concat([a, v])) },
  };
}

/** Pearson's chi-square statistic of the byte histogram against uniform (255 degrees of freedom:
 *  mean 255, standard deviation about 22.6 for random bytes). */
export function chiSquare(buf) {
  if (buf.length === 0) return NaN;
  const h = new Array(256).fill(0);
  for (const b of buf) h[b]++;
  const e = buf.length / 256;
  return h.reduce((s, c) => s + ((c - e) * (c - e)) / e, 0);
}
