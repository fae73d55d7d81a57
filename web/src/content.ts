// What an encrypted room keeps for the whole session (poll texts, the board, notes and files):
// sealed in this browser before it goes to the server, which stores and relays base64 envelopes
// it cannot open (it refuses anything that is not one). Late joiners must open it too, so an
// epoch's data key will not do: a server-key room seals with the session's content key
// (deriveContentKey); a passphrase room with the passphrase's data key, the same all session.
//
// The associated data names what the text is, so a sealed text cannot be moved elsewhere (one
// poll's option into another poll, an option into the question): a JSON array such as
// ["poll", pollId, creator, "q"], passed where a data message passes its sender's identity.

import { openWith, sealWith, type SessionKeys } from './e2ee';

const enc = new TextEncoder();
const dec = new TextDecoder('utf-8', { fatal: true });

export interface ContentSealer {
  seal(what: string[], text: string): Promise<string>;
  /** Throws when the text does not open (another key, moved, forged, not an envelope). */
  open(what: string[], sealed: string): Promise<string>;
  /** Bytes (a Yjs update, a file's chunk): sealed in an encrypted room, as they are otherwise. */
  sealBytes(what: string[], bytes: Uint8Array): Promise<Uint8Array<ArrayBuffer>>;
  openBytes(what: string[], sealed: Uint8Array): Promise<Uint8Array<ArrayBuffer>>;
  /** Whether this sealer seals (an encrypted room) or passes things through. */
  readonly sealing: boolean;
}

export function toBase64(bytes: Uint8Array): string {
  let s = '';
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s);
}

export function fromBase64(text: string): Uint8Array<ArrayBuffer> {
  const s = atob(text);
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}

/** Seals with the content key of a server-key room. */
export function keySealer(key: CryptoKey, sessionId: string): ContentSealer {
  return {
    async seal(what, text) {
      return toBase64(await sealWith(key, sessionId, JSON.stringify(what), enc.encode(text)));
    },
    async open(what, sealed) {
      return dec.decode(await openWith(key, sessionId, JSON.stringify(what), fromBase64(sealed)));
    },
    sealBytes: (what, bytes) => sealWith(key, sessionId, JSON.stringify(what), bytes),
    openBytes: (what, sealed) => openWith(key, sessionId, JSON.stringify(what), sealed),
    sealing: true,
  };
}

/** Seals with a passphrase room's keys (generation 0: one key for the whole session). */
export function passphraseSealer(keys: () => SessionKeys): ContentSealer {
  return {
    async seal(what, text) {
      return toBase64(await keys().seal(JSON.stringify(what), enc.encode(text)));
    },
    async open(what, sealed) {
      return dec.decode(await keys().open(JSON.stringify(what), fromBase64(sealed)));
    },
    sealBytes: (what, bytes) => keys().seal(JSON.stringify(what), bytes),
    openBytes: (what, sealed) => keys().open(JSON.stringify(what), sealed),
    sealing: true,
  };
}

/** A plain room: texts go as they are. */
export const PLAIN: ContentSealer = {
  seal: (_what, text) => Promise.resolve(text),
  open: (_what, text) => Promise.resolve(text),
  sealBytes: (_what, bytes) => Promise.resolve(new Uint8Array(bytes)),
  openBytes: (_what, bytes) => Promise.resolve(new Uint8Array(bytes)),
  sealing: false,
};

/**
 * What seals a session's texts: nothing in a plain room; a passphrase room's keys; the content
 * key of a server-key room (without it, nothing can be sealed or opened).
 */
export function sessionSealer(o: { encrypted: boolean; passphrase: (() => SessionKeys) | null; contentKey: CryptoKey | null; sessionId: string }): ContentSealer {
  if (!o.encrypted) return PLAIN;
  if (o.passphrase) return passphraseSealer(o.passphrase);
  if (o.contentKey) return keySealer(o.contentKey, o.sessionId);
  const missing = () => Promise.reject(new Error('no content key for this session'));
  return { seal: missing, open: missing, sealBytes: missing, openBytes: missing, sealing: true };
}
