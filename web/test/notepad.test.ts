// The shared notepad without a browser: edits are batched into few appends, one in flight at a
// time; exactly one writer compacts; two writers typing at once converge through the server's
// log, and a late joiner (after a compaction too) reads the same text, in plain and encrypted
// rooms; a refused update reloads the shared text; presence cannot speak for someone else.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as Y from 'yjs';

import { ApiError, type Api, type ContentLogReply } from '../src/api';
import { PLAIN, keySealer, type ContentSealer } from '../src/content';
import { ContentDocs } from '../src/contentdocs';
import { deriveContentKey } from '../src/e2ee';
import { parsePresence } from '../src/notepad/notepad';
import { UpdateBatcher, UpdateTooLarge, groupBySize, isCompactor, shouldCompact } from '../src/notepad/policy';
import { colorOf, decodePresence, encodePresence, sanitizePresence } from '../src/notepad/presence';
import { NotepadSync, TEXT } from '../src/notepad/sync';

const SID = '8d5e3f2a-1b2c-4d3e-9f40-5a6b7c8d9e0f';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const bytes = (...b: number[]) => new Uint8Array(b);

/** Timers run by hand. */
function manualTimers() {
  const pending = new Map<number, () => void>();
  let next = 1;
  return {
    setTimer: (f: () => void) => {
      const id = next++;
      pending.set(id, f);
      return id;
    },
    clearTimer: (id: unknown) => void pending.delete(id as number),
    fire() {
      const fs = [...pending.values()];
      pending.clear();
      for (const f of fs) f();
    },
    get count() {
      return pending.size;
    },
  };
}

test('edits within the delay go as one merged update; what is typed during a send goes next', async () => {
  const t = manualTimers();
  const sent: number[][] = [];
  let release: () => void = () => {};
  const b = new UpdateBatcher({
    merge: (us) => new Uint8Array(us.flatMap((u) => [...u])),
    send: (u) => {
      sent.push([...u]);
      return new Promise<void>((r) => (release = r));
    },
    failed: (e) => assert.fail(String(e)),
    setTimer: t.setTimer,
    clearTimer: t.clearTimer,
  });
  b.push(bytes(1));
  b.push(bytes(2));
  b.push(bytes(3));
  assert.equal(sent.length, 0, 'nothing goes before the delay');
  assert.equal(t.count, 1, 'one timer for the batch');
  t.fire();
  await sleep(0);
  assert.deepEqual(sent, [[1, 2, 3]], 'three keystrokes, one append');
  assert.equal(b.idle, false);

  // Typed while the append is in flight: held until it is answered.
  b.push(bytes(4));
  b.push(bytes(5));
  assert.equal(t.count, 0, 'no second send while one is in flight');
  release();
  await sleep(0);
  assert.equal(t.count, 1, 'the next batch waits its own delay');
  t.fire();
  await sleep(0);
  assert.deepEqual(sent, [[1, 2, 3], [4, 5]]);
  release();
  await sleep(0);
  assert.equal(b.idle, true);
});

test('a batch larger than one append is split; one update too large alone is reported, not sent', async () => {
  assert.deepEqual(
    groupBySize([bytes(1, 1), bytes(2, 2), bytes(3, 3, 3), bytes(4)], 4).map((g) => g.length),
    [2, 2],
  );
  assert.deepEqual(groupBySize([bytes(1, 1, 1, 1, 1, 1)], 4).map((g) => g.length), [1], 'a large update is a run of its own');

  const sent: number[] = [];
  const failures: unknown[] = [];
  const b = new UpdateBatcher({ maxBytes: 4, merge: (us) => new Uint8Array(us.flatMap((u) => [...u])), send: async (u) => void sent.push(u.length), failed: (e) => failures.push(e) });
  b.push(bytes(1, 1));
  b.push(bytes(2, 2));
  b.push(bytes(9, 9, 9, 9, 9, 9));
  b.push(bytes(3));
  await b.flush();
  assert.deepEqual(sent, [4, 1]);
  assert.equal(failures.length, 1);
  assert.ok(failures[0] instanceof UpdateTooLarge);
});

test('a refused send is reported with the update that was lost', async () => {
  const failures: Array<[unknown, Uint8Array]> = [];
  const b = new UpdateBatcher({ merge: (us) => us[0], send: () => Promise.reject(new ApiError(403, 'the notepad is locked for you')), failed: (e, u) => failures.push([e, u]) });
  b.push(bytes(7));
  await b.flush();
  assert.equal(failures.length, 1);
  assert.equal((failures[0][0] as ApiError).serverMsg, 'the notepad is locked for you');
  assert.deepEqual([...failures[0][1]], [7]);
});

test('one compactor: the lowest admin present, else the lowest writer present', () => {
  const present = [
    { identity: 'bob', isAdmin: false },
    { identity: 'cat', isAdmin: true },
    { identity: 'zed', isAdmin: true },
  ];
  const writers = new Set(['bob', 'cat']);
  assert.equal(isCompactor({ me: 'ann', meAdmin: false, meWriter: true, present, writers }), false, 'an admin is present');
  assert.equal(isCompactor({ me: 'dan', meAdmin: true, meWriter: true, present, writers }), false, 'cat is the lower admin');
  assert.equal(isCompactor({ me: 'cas', meAdmin: true, meWriter: true, present, writers }), true, 'the lowest admin');

  const noAdmins = [
    { identity: 'bob', isAdmin: false },
    { identity: 'aaron', isAdmin: false },
  ];
  assert.equal(isCompactor({ me: 'ann', meAdmin: false, meWriter: true, present: noAdmins, writers: new Set(['bob']) }), true, 'aaron never wrote, so ann is the lowest writer');
  assert.equal(isCompactor({ me: 'ann', meAdmin: false, meWriter: true, present: noAdmins, writers: new Set(['aaron']) }), false, 'aaron wrote and is lower');
  assert.equal(isCompactor({ me: 'ann', meAdmin: false, meWriter: true, present: [], writers: new Set(['aaron']) }), true, 'a writer who left does not count');
  assert.equal(isCompactor({ me: 'ann', meAdmin: false, meWriter: false, present: noAdmins, writers: new Set() }), false, 'a locked participant never compacts');

  assert.equal(shouldCompact({ sinceSnapshot: 199, compactor: true, busy: false }), false);
  assert.equal(shouldCompact({ sinceSnapshot: 200, compactor: true, busy: false }), true);
  assert.equal(shouldCompact({ sinceSnapshot: 500, compactor: false, busy: false }), false);
  assert.equal(shouldCompact({ sinceSnapshot: 500, compactor: true, busy: true }), false, 'not while our edits are unsent or a snapshot is in flight');
  assert.equal(shouldCompact({ sinceSnapshot: 5, threshold: 5, compactor: true, busy: false }), true);
});

/** One notepad document on a server in memory: it numbers, stamps and relays like the real one. */
function fakeServer() {
  let log: { seq: number; from: string; body: string }[] = [];
  let snapshot: ContentLogReply['snapshot'] = null;
  let head = 0;
  const clients = new Set<ContentDocs>();
  const locked = new Set<string>();
  const snapshots: Array<{ from: string; upto: number }> = [];
  /** Appends to fail before the server takes one (a network that drops requests). */
  const failNext = { count: 0, error: new ApiError(0, 'network error') };
  const apiFor = (me: string) =>
    ({
      contentAppend: async (_kind: string, doc: string, body: string) => {
        await sleep(1);
        if (locked.has(me)) throw new ApiError(403, 'the shared notepad is locked for you');
        if (failNext.count > 0) {
          failNext.count--;
          throw failNext.error;
        }
        const seq = ++head;
        log.push({ seq, from: me, body });
        // Relayed to everyone in the room, the sender too, a moment later.
        setTimeout(() => {
          for (const c of clients) c.update(doc, seq, me, body);
        }, 2);
        return { status: true as const, seq };
      },
      contentLog: async (kind: 'notepad', doc: string, after: number): Promise<ContentLogReply> => {
        await sleep(1);
        return { status: true, kind, doc, head, snapshot: snapshot && after < snapshot.upto ? snapshot : null, updates: log.filter((u) => u.seq > after) };
      },
      contentSnapshot: async (_kind: string, _doc: string, upto: number, body: string) => {
        if (locked.has(me)) throw new ApiError(403, 'the shared notepad is locked for you');
        if (upto > head || (snapshot && upto < snapshot.upto)) throw new ApiError(400, 'upto is not within the log');
        snapshot = { upto, from: me, body };
        log = log.filter((u) => u.seq > upto);
        snapshots.push({ from: me, upto });
        return { status: true as const };
      },
    }) as unknown as Api;
  return {
    locked,
    snapshots,
    failNext,
    get log() {
      return log;
    },
    join(me: string, sealer: ContentSealer, o: { isAdmin?: boolean; compactAfter?: number; present?: () => Array<{ identity: string; isAdmin: boolean }> } = {}) {
      const docs = new ContentDocs({ api: apiFor(me), sealer, kind: 'notepad', me });
      clients.add(docs);
      const errors: string[] = [];
      const reloads: string[] = [];
      const sync = new NotepadSync({
        me,
        isAdmin: !!o.isAdmin,
        open: (h) => docs.open('main', h),
        present: o.present ?? (() => []),
        canWrite: () => !locked.has(me),
        nameOf: (id) => id.toUpperCase(),
        onDoc: (_d, why) => void reloads.push(why),
        onError: (t) => void errors.push(t),
        batchMs: 5,
        compactAfter: o.compactAfter,
      });
      return { sync, docs, errors, reloads, leave: () => (sync.close(), clients.delete(docs)) };
    },
  };
}

/**
 * Types `text` into `sync`'s document from `at` on, one keystroke (one Yjs update) per character,
 * each after the one before as an editor's caret would be: remote text arriving meanwhile moves
 * the caret with it (a relative position bound to our last character).
 */
async function type(sync: NotepadSync, at: number, text: string): Promise<void> {
  let caret: Y.RelativePosition | null = null;
  for (let i = 0; i < text.length; i++) {
    const t = sync.doc.getText(TEXT);
    const pos = caret ? Y.createAbsolutePositionFromRelativePosition(caret, sync.doc)!.index : at;
    t.insert(pos, text[i]);
    caret = Y.createRelativePositionFromTypeIndex(t, pos + 1, -1);
    if (i % 3 === 0) await sleep(1);
  }
}

async function settle(...syncs: NotepadSync[]): Promise<void> {
  for (let i = 0; i < 5; i++) {
    await sleep(15);
    await Promise.all(syncs.map((s) => s.flush()));
  }
  await sleep(30);
}

for (const room of ['plain', 'encrypted'] as const) {
  test(`${room} room: two typing at once converge, and a late joiner reads the same text`, async () => {
    const sealer = room === 'plain' ? PLAIN : keySealer(await deriveContentKey('ContentSecretOfTheSession0123456', SID), SID);
    const srv = fakeServer();
    const ann = srv.join('ann', sealer);
    const bob = srv.join('bob', sealer);
    await Promise.all([ann.sync.start(), bob.sync.start()]);
    await Promise.all([type(ann.sync, 0, 'ann was here. '), type(bob.sync, 0, 'bob too. ')]);
    await settle(ann.sync, bob.sync);
    const text = ann.sync.text;
    assert.equal(bob.sync.text, text, 'both see the same text');
    assert.ok(text.includes('ann was here. ') && text.includes('bob too. '), `both edits are in it: ${JSON.stringify(text)}`);
    assert.ok(srv.log.length < 'ann was here. bob too. '.length, `keystrokes were batched (${srv.log.length} appends for ${text.length} characters)`);
    if (room === 'encrypted') {
      for (const u of srv.log) assert.ok(!Buffer.from(u.body, 'base64').toString('latin1').includes('was here'), 'the server holds ciphertext');
    }

    const cat = srv.join('cat', sealer);
    await cat.sync.start();
    assert.equal(cat.sync.text, text, 'the late joiner reads the text');
    assert.deepEqual([ann.errors, bob.errors, cat.errors], [[], [], []]);
    for (const c of [ann, bob, cat]) c.leave();
  });
}

test('past the threshold the one compactor snapshots; a late joiner starts from the snapshot', async () => {
  const srv = fakeServer();
  const present = (ids: string[]) => () => ids.map((identity) => ({ identity, isAdmin: false }));
  const ann = srv.join('ann', PLAIN, { compactAfter: 10, present: present(['bob']) });
  const bob = srv.join('bob', PLAIN, { compactAfter: 10, present: present(['ann']) });
  await Promise.all([ann.sync.start(), bob.sync.start()]);
  for (let i = 0; i < 14; i++) {
    await type(i % 2 ? bob.sync : ann.sync, 0, `${i}`);
    await settle(ann.sync, bob.sync);
  }
  assert.ok(srv.snapshots.length >= 1, 'a snapshot was sent');
  assert.ok(
    srv.snapshots.every((s) => s.from === 'ann'),
    `only ann (the lower identity of the writers) compacts: ${JSON.stringify(srv.snapshots)}`,
  );
  assert.ok(srv.log.length < 14, `the log was cut (${srv.log.length} updates left)`);
  const cat = srv.join('cat', PLAIN);
  await cat.sync.start();
  assert.equal(cat.sync.text, ann.sync.text);
  assert.equal(bob.sync.text, ann.sync.text);
  for (const c of [ann, bob, cat]) c.leave();
});

test('a refused update is reported and the shared text is loaded again (the refused edit is gone)', async () => {
  const srv = fakeServer();
  const ann = srv.join('ann', PLAIN);
  const bob = srv.join('bob', PLAIN);
  await Promise.all([ann.sync.start(), bob.sync.start()]);
  await type(ann.sync, 0, 'shared');
  await settle(ann.sync, bob.sync);
  srv.locked.add('bob');
  bob.sync.doc.getText(TEXT).insert(0, 'sneaky ');
  await settle(ann.sync, bob.sync);
  assert.equal(bob.errors.length, 1);
  assert.match(bob.errors[0], /not saved: the shared notepad is locked for you/);
  assert.deepEqual(bob.reloads, ['opened', 'refused']);
  assert.equal(bob.sync.text, 'shared', 'the refused edit is replaced by the shared text');
  assert.equal(ann.sync.text, 'shared');
  for (const c of [ann, bob]) c.leave();
});

test('a cleared notepad starts from an empty document', async () => {
  const srv = fakeServer();
  const ann = srv.join('ann', PLAIN);
  await ann.sync.start();
  await type(ann.sync, 0, 'old');
  await settle(ann.sync);
  ann.docs.cleared('main');
  await sleep(5);
  assert.equal(ann.sync.text, '');
  assert.deepEqual(ann.reloads, ['opened', 'cleared']);
  ann.leave();
});

test('presence speaks only for its own clients, with the roster name and our colour', () => {
  const owners = new Map<number, string>();
  const theirs = encodePresence([{ clientId: 11, clock: 1, state: { user: { name: 'Evil', color: 'red;background:url(x)', colorLight: '' }, cursor: { anchor: { type: null, tname: 'notes', item: { client: 11, clock: 2 }, assoc: 0 }, head: { item: { client: 11, clock: 2 }, assoc: 0 } } } }]);
  const clean = sanitizePresence(theirs, 'bob', 'Bob', owners);
  assert.ok(clean);
  const [e] = decodePresence(clean);
  assert.equal(e.state?.user.name, 'Bob', 'the name is the roster name');
  assert.equal(e.state?.user.color, colorOf('bob'), 'the colour is ours');
  assert.ok(e.state?.cursor, 'a cursor of the right shape is kept');
  assert.equal(owners.get(11), 'bob');

  // Mallory speaks for Bob's client: dropped.
  const forged = encodePresence([{ clientId: 11, clock: 9, state: null }]);
  assert.equal(sanitizePresence(forged, 'mallory', 'Mallory', owners), null);
  // A cursor of another shape is dropped, the rest kept.
  const odd = sanitizePresence(encodePresence([{ clientId: 12, clock: 1, state: { user: { name: 'x', color: '', colorLight: '' }, cursor: { anchor: 'x', head: 3 } } }]), 'cat', 'Cat', owners);
  assert.equal(decodePresence(odd!)[0].state?.cursor, null);
  // Not an awareness update at all.
  assert.equal(sanitizePresence(bytes(200, 1, 2), 'cat', 'Cat', owners), null);
  assert.equal(sanitizePresence(bytes(1, 5, 1, 3, 0x7b, 0x7d, 0x7d), 'cat', 'Cat', owners), null, 'trailing bytes');

  assert.equal(parsePresence({ type: 'notepad_presence', update: 'AQID' })?.update.length, 3);
  assert.equal(parsePresence({ type: 'notepad_presence', update: 'not base64!' }), null);
  assert.equal(parsePresence({ type: 'notepad_presence', update: 'A'.repeat(9000) }), null);
  assert.equal(parsePresence({ type: 'chat', update: 'AQID' }), null);
});

test('Y.mergeUpdates of a batch applies like its parts', () => {
  const a = new Y.Doc();
  const ups: Uint8Array[] = [];
  a.on('update', (u: Uint8Array) => ups.push(u));
  for (const ch of 'hello') a.getText(TEXT).insert(a.getText(TEXT).length, ch);
  const b = new Y.Doc();
  Y.applyUpdate(b, Y.mergeUpdates(ups));
  assert.equal(b.getText(TEXT).toString(), 'hello');
});

test('an append that meets no answer or too many writes goes again; it is given up only after the retries', async () => {
  const srv = fakeServer();
  const ann = srv.join('ann', PLAIN);
  const bob = srv.join('bob', PLAIN);
  await Promise.all([ann.sync.start(), bob.sync.start()]);
  srv.failNext.count = 2;
  srv.failNext.error = new ApiError(0, 'network error');
  ann.sync.doc.getText(TEXT).insert(0, 'kept');
  await sleep(10);
  await ann.sync.flush();
  await settle(ann.sync, bob.sync);
  assert.deepEqual(ann.errors, [], 'two lost requests are retried silently');
  assert.equal(bob.sync.text, 'kept');

  srv.failNext.count = 1;
  srv.failNext.error = new ApiError(400, 'too many updates: at most 50 per second (burst 200) per participant; retry shortly');
  ann.sync.doc.getText(TEXT).insert(4, '!');
  await sleep(10);
  await ann.sync.flush();
  await settle(ann.sync, bob.sync);
  assert.equal(bob.sync.text, 'kept!', 'a rate refusal is retried');

  srv.failNext.count = 1;
  srv.failNext.error = new ApiError(400, 'body: not a sealed envelope');
  ann.sync.doc.getText(TEXT).insert(0, 'x');
  await sleep(10);
  await ann.sync.flush();
  await settle(ann.sync, bob.sync);
  assert.equal(ann.errors.length, 1, 'a refusal that will not pass is reported at once');
  assert.equal(ann.sync.text, 'kept!');
  for (const c of [ann, bob]) c.leave();
});
