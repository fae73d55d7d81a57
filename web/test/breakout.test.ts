// Breakout plans: people dealt at random across rooms (hosts stay), the create request, the
// time left, and the address a move goes to.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { addressWithToken } from '../src/breakout';
import { planFor, randomAssignment, timeLeft, type Person } from '../src/ui/breakout';

const people: Person[] = ['ann', 'bob', 'cat', 'dan', 'eve'].map((id, i) => ({ identity: id, name: id.toUpperCase(), isAdmin: i === 0 }));

test('a random plan deals every guest into a room, evenly, and leaves the hosts in the main room', () => {
  let seed = 7;
  const random = () => ((seed = (seed * 16807) % 2147483647) - 1) / 2147483646;
  const a = randomAssignment(people, 2, random);
  assert.equal(a.has('ann'), false, 'the host stays');
  assert.deepEqual([...a.keys()].sort(), ['bob', 'cat', 'dan', 'eve']);
  const sizes = [1, 2].map((n) => [...a.values()].filter((v) => v === n).length);
  assert.deepEqual(sizes, [2, 2]);
  const plan = planFor(people, a, 2, 15);
  assert.equal(plan.duration, 15);
  assert.deepEqual(plan.rooms.map((r) => [r.id, r.title]), [['1', 'Room 1'], ['2', 'Room 2']]);
  assert.equal(plan.rooms.flatMap((r) => r.users).length, 4);
  assert.deepEqual(planFor(people, new Map([['bob', 1]]), 1, 5).rooms[0].users, [{ id: 'bob', name: 'BOB' }]);
});

test('time left and the address of a move', () => {
  assert.equal(timeLeft(1000, 1000 * 1000 - 65_000), '1:05');
  assert.equal(timeLeft(10_000, 0), '2:46:40');
  assert.equal(timeLeft(1, 5000), '0:00', 'never negative');
  assert.equal(addressWithToken('https://m.example/?access_token=old#x', 'new'), 'https://m.example/?access_token=new');
  assert.equal(addressWithToken('https://m.example/?access_token=old', 'new', true), 'https://m.example/?access_token=new#enter', 'a move joins at once');
  assert.equal(
    addressWithToken('https://lms.example/mod/plugnmeet/conference.php?id=3', 'tok'),
    'https://lms.example/mod/plugnmeet/conference.php?id=3&access_token=tok',
    'an embedding page keeps its own parameters',
  );
});
