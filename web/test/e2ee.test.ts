// The web client's key schedule against crates/e2ee/vectors/v1.json: the Rust crate, an
// independent Python implementation and this WebCrypto code must agree byte for byte.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';

import {
  EnvelopeError,
  ITERATIONS,
  SessionKeys,
  deriveEpochMaterial,
  deriveHistoryKey,
  deriveKeyMaterial,
  envelopeGeneration,
  fromHex,
  openWith,
  sealWith,
  toHex,
  verificationCode,
} from '../src/e2ee';

interface Vectors {
  secret: string;
  session_id: string;
  iterations: number;
  media: string;
  data: string;
  check: string;
  verification_code: string;
  seal: { sender: string; plaintext: string; iv: string; sealed: string };
}

const vectorsPath = path.resolve(process.cwd(), '..', 'crates', 'e2ee', 'vectors', 'v1.json');
const v: Vectors = JSON.parse(fs.readFileSync(vectorsPath, 'utf8'));
const SID = '8d5e3f2a-1b2c-4d3e-9f40-5a6b7c8d9e0f';
const enc = new TextEncoder();
const dec = new TextDecoder();

test('vectors/v1.json: media, data, check and verification code (600 000 iterations)', async () => {
  assert.equal(v.iterations, ITERATIONS);
  const m = await deriveKeyMaterial(v.secret, v.session_id);
  assert.equal(toHex(m.media), v.media, 'media key');
  assert.equal(toHex(m.data), v.data, 'data key');
  assert.equal(toHex(m.check), v.check, 'key-check value');
  assert.equal(verificationCode(m.verify), v.verification_code, 'verification code');
});

test('vectors/v1.json: sealed envelope with the fixed IV, and it opens', async () => {
  const keys = await SessionKeys.derive(v.secret, v.session_id);
  assert.equal(keys.checkHex, v.check);
  assert.equal(keys.verificationCode, v.verification_code);
  assert.equal(toHex(new Uint8Array(keys.mediaKeyBuffer())), v.media);
  const sealed = await keys.seal(v.seal.sender, enc.encode(v.seal.plaintext), fromHex(v.seal.iv));
  assert.equal(toHex(sealed), v.seal.sealed, 'sealed');
  assert.equal(dec.decode(await keys.open(v.seal.sender, fromHex(v.seal.sealed))), v.seal.plaintext);
});

interface EpochVectors extends Omit<Vectors, 'iterations'> {
  generation: number;
}
const ev: EpochVectors = JSON.parse(fs.readFileSync(path.resolve(vectorsPath, '..', 'epoch.json'), 'utf8'));

test('vectors/epoch.json: a key epoch of the server, its keys and its v2 envelope', async () => {
  const m = await deriveEpochMaterial(ev.secret, ev.session_id, ev.generation);
  assert.equal(toHex(m.media), ev.media, 'media key');
  assert.equal(toHex(m.data), ev.data, 'data key');
  assert.equal(toHex(m.check), ev.check, 'key-check value');
  assert.equal(verificationCode(m.verify), ev.verification_code, 'verification code');
  const keys = await SessionKeys.deriveEpoch(ev.secret, ev.session_id, ev.generation);
  assert.equal(keys.generation, ev.generation);
  const sealed = await keys.seal(ev.seal.sender, enc.encode(ev.seal.plaintext), fromHex(ev.seal.iv));
  assert.equal(toHex(sealed), ev.seal.sealed, 'sealed');
  assert.equal(dec.decode(await keys.open(ev.seal.sender, sealed)), ev.seal.plaintext);
  assert.deepEqual(envelopeGeneration(sealed), { generation: ev.generation, body: 5 });
});

test('each epoch has its own keys, and an envelope opens only under its own generation', async () => {
  const e1 = await SessionKeys.deriveEpoch('same secret', SID, 1);
  const e2 = await SessionKeys.deriveEpoch('same secret', SID, 2);
  const pass = await SessionKeys.derive('same secret', SID, 1000);
  assert.notEqual(e1.checkHex, e2.checkHex);
  assert.notEqual(e1.verificationCode, e2.verificationCode);
  assert.notEqual(toHex(new Uint8Array(e1.mediaKeyBuffer())), toHex(new Uint8Array(e2.mediaKeyBuffer())));
  const sealed = await e1.seal('alice', enc.encode('x'));
  const reason = async (p: Promise<unknown>) => p.then(() => 'opened', (e) => (e instanceof EnvelopeError ? e.reason : String(e)));
  assert.equal(await reason(e2.open('alice', sealed)), 'other-generation');
  assert.equal(await reason(pass.open('alice', sealed)), 'other-generation');
  assert.equal(await reason(e1.open('alice', await pass.seal('alice', enc.encode('x')))), 'other-generation');
  const relabelled = sealed.slice();
  relabelled[4] = 2;
  assert.equal(await reason(e2.open('alice', relabelled)), 'forged', 'the generation is bound');
  const zero = sealed.slice();
  zero[4] = 0;
  assert.equal(await reason(e1.open('alice', zero)), 'malformed');
  assert.equal(await reason(e1.open('alice', new Uint8Array([2, 0, 0]))), 'too-short');
  await assert.rejects(SessionKeys.deriveEpoch('s', SID, 0), /generation/);
});

test('another session gets unrelated keys', async () => {
  const a = await deriveKeyMaterial('same secret', SID, 1000);
  const b = await deriveKeyMaterial('same secret', '0b1c2d3e-4f50-4a6b-8c7d-9e0f1a2b3c4d', 1000);
  assert.notEqual(toHex(a.media), toHex(b.media));
  assert.notEqual(toHex(a.data), toHex(b.data));
  assert.notEqual(toHex(a.check), toHex(b.check));
  assert.notEqual(verificationCode(a.verify), verificationCode(b.verify));
});

test('keys are separated by purpose', async () => {
  const k = await deriveKeyMaterial('s', SID, 1000);
  assert.notEqual(toHex(k.media), toHex(k.data));
  assert.notEqual(toHex(k.media.slice(0, 16)), toHex(k.check));
});

test('envelope round-trips and binds session, sender and key', async () => {
  const k = await SessionKeys.derive('s', SID, 1000);
  const sealed = await k.seal('alice', enc.encode('secret chat'));
  assert.equal(dec.decode(await k.open('alice', sealed)), 'secret chat');
  assert.ok(!Buffer.from(sealed).includes(Buffer.from('secret chat')), 'ciphertext does not contain the text');
  const reason = async (p: Promise<unknown>) => {
    try {
      await p;
      return 'opened';
    } catch (e) {
      assert.ok(e instanceof EnvelopeError);
      return e.reason;
    }
  };
  assert.equal(await reason(k.open('mallory', sealed)), 'forged', 'sender is bound');
  const otherSession = await SessionKeys.derive('s', 'other-session', 1000);
  assert.equal(await reason(otherSession.open('alice', sealed)), 'forged', 'session is bound');
  const wrong = await SessionKeys.derive('t', SID, 1000);
  assert.equal(await reason(wrong.open('alice', sealed)), 'forged', 'key is bound');
  const tampered = sealed.slice();
  tampered[tampered.length - 1]! ^= 1;
  assert.equal(await reason(k.open('alice', tampered)), 'forged', 'tampering is detected');
  assert.equal(await reason(k.open('alice', new Uint8Array([1, 2, 3]))), 'too-short');
  assert.equal(await reason(k.open('alice', new Uint8Array(0))), 'too-short');
  assert.equal(await reason(k.open('alice', new Uint8Array(40).fill(9))), 'unknown-version');
  const a = await k.seal('alice', enc.encode('x'));
  const b = await k.seal('alice', enc.encode('x'));
  assert.notEqual(toHex(a), toHex(b), 'random IVs');
  assert.equal(a.length, 1 + 12 + 1 + 16);
});

test('verification code: two groups of five digits, big-endian, mod 10^10', () => {
  assert.equal(verificationCode(new Uint8Array([0, 0, 0, 0, 0])), '00000-00000');
  assert.equal(verificationCode(new Uint8Array([0, 0, 0, 0, 1])), '00000-00001');
  // 2^40 - 1 = 1099511627775 → mod 10^10 = 9511627775
  assert.equal(verificationCode(new Uint8Array([255, 255, 255, 255, 255])), '95116-27775');
  // 0x02540be400 = 10^10 → 0
  assert.equal(verificationCode(fromHex('02540be400')), '00000-00000');
  assert.match(verificationCode(fromHex('0123456789')), /^\d{5}-\d{5}$/);
});

test('the media key can be wiped', async () => {
  const k = await SessionKeys.derive('s', SID, 1000);
  k.wipe();
  assert.throws(() => k.mediaKeyBuffer());
});

test('the history key: the same from the same secret and session, another for another session', async () => {
  const sid2 = '0b1c2d3e-4f50-4a6b-8c7d-9e0f1a2b3c4d';
  const a = await deriveHistoryKey('Qm7rT2xW9kLp4ZsV8nB3cY6dF1gH5jK0', SID);
  const b = await deriveHistoryKey('Qm7rT2xW9kLp4ZsV8nB3cY6dF1gH5jK0', SID);
  const c = await deriveHistoryKey('Qm7rT2xW9kLp4ZsV8nB3cY6dF1gH5jK0', sid2);
  assert.equal(a.extractable, false);
  const sealed = await sealWith(a, SID, 'ann', enc.encode('kept'));
  assert.equal(dec.decode(await openWith(b, SID, 'ann', sealed)), 'kept', 'a reload derives the same key');
  await assert.rejects(openWith(c, SID, 'ann', sealed), EnvelopeError);
  await assert.rejects(openWith(b, SID, 'bob', sealed), EnvelopeError, 'the sender is bound');
});
