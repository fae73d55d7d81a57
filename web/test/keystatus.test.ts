import { test } from 'node:test';
import assert from 'node:assert/strict';

import { KeyStatus } from '../src/keystatus';

const MINE = 'a'.repeat(32);
const OTHER = 'b'.repeat(32);

test('a plain room is not-encrypted whatever happens', () => {
  const k = new KeyStatus(false);
  k.keyCheck('bob', OTHER);
  k.mediaDecryptionFailed('bob');
  assert.equal(k.status, 'not-encrypted');
});

test('an encrypted room waits for a key, then is encrypted', () => {
  const k = new KeyStatus(true);
  assert.equal(k.status, 'waiting-for-key');
  assert.equal(k.keyCheck('bob', MINE), null, 'no verdict without our own key');
  k.setOwnCheck(MINE);
  assert.equal(k.status, 'encrypted');
});

test('a different key check means wrong-key, a matching one clears weaker signals', () => {
  const k = new KeyStatus(true);
  k.setOwnCheck(MINE);
  assert.equal(k.keyCheck('bob', OTHER), false);
  assert.equal(k.status, 'wrong-key');
  assert.deepEqual(k.summary().mismatched, ['bob']);
  k.participantLeft('bob');
  assert.equal(k.status, 'encrypted', 'the mismatch leaves with the participant');

  k.mediaDecryptionFailed('carol');
  assert.equal(k.status, 'wrong-key', 'a decryption error without a key check counts');
  assert.equal(k.keyCheck('carol', MINE), true);
  assert.equal(k.status, 'encrypted', 'a matching key check outweighs a transient decryption error');
  k.mediaDecryptionFailed('carol');
  assert.equal(k.status, 'encrypted', 'and later ones from a participant whose key matches');
});

test('envelopes that do not open and unencrypted tracks are signals too', () => {
  const k = new KeyStatus(true);
  k.setOwnCheck(MINE);
  k.dataOpenFailed('dan');
  assert.deepEqual(k.summary(), { status: 'wrong-key', mismatched: ['dan'], matched: [] });
  k.participantLeft('dan');
  k.participantEncryption('eve', false);
  assert.equal(k.status, 'wrong-key');
  k.participantEncryption('eve', true);
  assert.equal(k.status, 'encrypted');
});

test('a key shared with someone is not wrong: the ones who differ are listed instead', () => {
  const k = new KeyStatus(true);
  k.setOwnCheck(MINE);
  k.keyCheck('carol', OTHER);
  assert.equal(k.status, 'wrong-key', 'matching nobody (yet) is wrong');
  k.keyCheck('ann', MINE);
  k.keyCheck('bob', MINE);
  assert.deepEqual(k.summary(), { status: 'encrypted', mismatched: ['carol'], matched: ['ann', 'bob'] });
  // Carol, from her side, matches nobody.
  const c = new KeyStatus(true);
  c.setOwnCheck(OTHER);
  for (const id of ['ann', 'bob', 'me']) c.keyCheck(id, MINE);
  assert.deepEqual(c.summary(), { status: 'wrong-key', mismatched: ['ann', 'bob', 'me'], matched: [] });
  // Decryption errors from the one who differs never outweigh a shared key.
  k.mediaDecryptionFailed('carol');
  k.mediaDecryptionFailed('dan');
  assert.equal(k.status, 'encrypted');
  assert.deepEqual(k.summary().mismatched, ['carol', 'dan']);
});

test('a new own key forgets verdicts made with the old one; listeners hear changes', () => {
  const k = new KeyStatus(true);
  let n = 0;
  const off = k.onChange(() => n++);
  k.setOwnCheck(MINE);
  k.keyCheck('bob', OTHER);
  assert.equal(k.status, 'wrong-key');
  k.setOwnCheck(OTHER);
  assert.equal(k.status, 'encrypted');
  assert.equal(k.keyCheck('bob', OTHER), true);
  assert.ok(n >= 3);
  off();
  const before = n;
  k.keyCheck('zed', MINE);
  assert.equal(n, before, 'unsubscribed');
  k.setOwnCheck(null);
  assert.equal(k.status, 'waiting-for-key');
});

test('a new key epoch keeps who matched, forgets old failures, and ignores checks of other epochs', () => {
  const k = new KeyStatus(true);
  k.setOwnCheck(MINE, 4);
  assert.equal(k.keyCheck('bob', MINE, 4), true);
  assert.equal(k.keyCheck('cat', MINE, 4), true);
  k.mediaDecryptionFailed('dan');
  k.rekeyed(OTHER, 5);
  assert.equal(k.generation, 5);
  // Frames sealed with the old epoch fail for a moment at a switch: no verdict from them.
  k.mediaDecryptionFailed('bob');
  assert.deepEqual(k.summary(), { status: 'encrypted', mismatched: [], matched: ['bob', 'cat'] });
  assert.equal(k.keyCheck('bob', MINE, 4), null, 'a check of the previous epoch says nothing');
  assert.equal(k.keyCheck('bob', OTHER, 5), true);
  assert.equal(k.keyCheck('cat', MINE, 5), false, 'a different check of the same epoch is a mismatch');
  assert.deepEqual(k.summary(), { status: 'encrypted', mismatched: ['cat'], matched: ['bob'] });
});
