// An open document applies what the server holds, then live updates, in seq order: a gap is
// filled from the server, repeats are dropped, a clear starts over; in an encrypted room an
// update opens only as the sender the server stamped.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import type { Api, ContentLogReply } from '../src/api';
import { PLAIN, keySealer, toBase64 } from '../src/content';
import { ContentDocs, contentAad } from '../src/contentdocs';
import { deriveContentKey } from '../src/e2ee';

const SID = '8d5e3f2a-1b2c-4d3e-9f40-5a6b7c8d9e0f';
const enc = new TextEncoder();
const dec = new TextDecoder();

/** A server holding one document's log in memory, answering as the real one does. */
function fakeServer() {
  const log: { seq: number; from: string; body: string }[] = [];
  let snapshot: ContentLogReply['snapshot'] = null;
  let logCalls = 0;
  const api = {
    contentLog: async (kind: 'whiteboard', doc: string, after: number): Promise<ContentLogReply> => {
      logCalls++;
      const head = log.length ? log[log.length - 1].seq : (snapshot?.upto ?? 0);
      return {
        status: true,
        kind,
        doc,
        head,
        snapshot: snapshot && after < snapshot.upto ? snapshot : null,
        updates: log.filter((u) => u.seq > Math.max(after, snapshot?.upto ?? 0)),
      };
    },
    contentAppend: async (_k: string, _d: string, body: string) => {
      const seq = (log.length ? log[log.length - 1].seq : (snapshot?.upto ?? 0)) + 1;
      log.push({ seq, from: 'me', body });
      return { status: true as const, seq };
    },
  };
  return { api: api as unknown as Api, log, setSnapshot: (s: ContentLogReply['snapshot']) => (snapshot = s), calls: () => logCalls };
}

const plain = (s: string) => toBase64(enc.encode(s));
const settle = () => new Promise((r) => setTimeout(r, 10));

test('what the server holds comes first, then live updates in seq order; a gap is fetched, a repeat dropped', async () => {
  const srv = fakeServer();
  srv.setSnapshot({ upto: 2, from: 'ann', body: plain('S') });
  srv.log.push({ seq: 3, from: 'bob', body: plain('c') });
  const seen: string[] = [];
  const docs = new ContentDocs({ api: srv.api, sealer: PLAIN, kind: 'whiteboard', me: 'me' });
  const d = await docs.open('page-1', {
    apply: (b, from, seq, snap) => void seen.push(`${snap ? 'snap' : 'upd'}:${seq}:${from}:${dec.decode(b)}`),
    cleared: () => seen.push('cleared'),
  });
  assert.deepEqual(seen, ['snap:2:ann:S', 'upd:3:bob:c']);
  assert.equal(d.head, 3);

  // 5 arrives before 4: held; 4 is on the server, fetched; 3 again is dropped.
  srv.log.push({ seq: 4, from: 'cat', body: plain('d') }, { seq: 5, from: 'ann', body: plain('e') });
  docs.update('page-1', 5, 'ann', plain('e'));
  docs.update('page-1', 3, 'bob', plain('c'));
  await settle();
  assert.deepEqual(seen.slice(2), ['upd:4:cat:d', 'upd:5:ann:e']);
  assert.equal(d.head, 5);

  // In order, no fetch needed.
  const calls = srv.calls();
  docs.update('page-1', 6, 'bob', plain('f'));
  await settle();
  assert.equal(seen.at(-1), 'upd:6:bob:f');
  assert.equal(srv.calls(), calls, 'an update that follows on needs no fetch');

  docs.cleared('');
  await settle();
  assert.equal(seen.at(-1), 'cleared');
  assert.equal(d.head, 0);
  docs.update('other', 1, 'bob', plain('x'));
  await settle();
  assert.equal(seen.length, 6, 'a document not open is not ours');
});

test('in an encrypted room an update opens only as the sender the server stamped', async () => {
  const key = await deriveContentKey('ContentSecretOfTheSession0123456', SID);
  const sealer = keySealer(key, SID);
  const srv = fakeServer();
  const bobs = await sealer.sealBytes(contentAad('whiteboard', 'page-1', 'bob'), enc.encode('by bob'));
  const moved = await sealer.sealBytes(contentAad('whiteboard', 'page-2', 'bob'), enc.encode('for another page'));
  srv.log.push({ seq: 1, from: 'bob', body: toBase64(bobs) }, { seq: 2, from: 'cat', body: toBase64(bobs) }, { seq: 3, from: 'bob', body: toBase64(moved) });
  const seen: string[] = [];
  const bad: number[] = [];
  const docs = new ContentDocs({ api: srv.api, sealer, kind: 'whiteboard', me: 'me' });
  const d = await docs.open('page-1', {
    apply: (b) => void seen.push(dec.decode(b)),
    cleared: () => undefined,
    unreadable: (_from, seq) => bad.push(seq),
  });
  assert.deepEqual(seen, ['by bob']);
  assert.deepEqual(bad, [2, 3], 'restamped as cat, and moved from another page: neither opens');
  assert.equal(d.head, 3, 'an unreadable update is skipped, not waited for');

  // What we append is sealed: the server's log holds no plaintext.
  await d.append(enc.encode('secret words'));
  assert.ok(!Buffer.from(srv.log.at(-1)!.body, 'base64').toString('latin1').includes('secret words'));
});
