// The key epochs a client holds: only newer epochs are taken, the current one only moves
// forward, and old ones are wiped.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { SessionKeys } from '../src/e2ee';
import { EpochRing, KEEP_PREVIOUS, KEYRING_SIZE, keySlot } from '../src/epochs';

const SID = '8d5e3f2a-1b2c-4d3e-9f40-5a6b7c8d9e0f';
const epoch = (g: number) => SessionKeys.deriveEpoch(`secret-of-epoch-${g}-xxxxxxxxxxxx`, SID, g);

test('epochs are taken in order, used only forward, and old ones are wiped', async () => {
  const ring = new EpochRing();
  assert.equal(ring.newest, -1);
  assert.equal(ring.current, null);
  const e3 = await epoch(3);
  assert.ok(ring.add(e3));
  assert.equal(ring.use(3), e3);
  assert.equal(ring.add(await epoch(2)), false, 'an older epoch than one held is refused');
  assert.equal(ring.add(await epoch(3)), false, 'and the same one again');
  const later = [];
  for (let g = 4; g <= 4 + KEEP_PREVIOUS + 1; g++) {
    const k = await epoch(g);
    later.push(k);
    assert.ok(ring.add(k));
    assert.equal(ring.current, g === 4 ? e3 : later[later.length - 2], 'installed, not yet used');
    assert.equal(ring.use(g), k);
  }
  const newest = 4 + KEEP_PREVIOUS + 1;
  assert.equal(ring.newest, newest);
  assert.equal(ring.use(newest - 1), null, 'never back');
  assert.equal(ring.get(3), undefined, 'epochs more than KEEP_PREVIOUS below the current one are gone');
  assert.throws(() => e3.mediaKeyBuffer(), 'and wiped');
  for (let g = newest - KEEP_PREVIOUS; g <= newest; g++) assert.ok(ring.get(g), `epoch ${g} still opens what was sent under it`);
  ring.clear();
  assert.equal(ring.current, null);
  assert.equal(ring.newest, -1);
});

test('each generation has a slot in LiveKit’s key ring, reused only after KEYRING_SIZE epochs', () => {
  assert.equal(keySlot(0), 0);
  assert.equal(keySlot(5), 5);
  assert.equal(keySlot(KEYRING_SIZE + 5), 5);
  assert.ok(KEYRING_SIZE > KEEP_PREVIOUS + 1, 'every epoch held has its own slot');
});
