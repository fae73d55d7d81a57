// The whiteboard's wire format and merge: every browser settles on the same elements whatever
// the order updates arrive in; nothing malformed gets through; updates fit the server's limit;
// our own changes go out once, and what others sent is not echoed.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { FIRST_PAGE, PageList, decodeDocument, decodePageOp, decodeView, documentPageId, encodeDocument, pageDoc } from '../src/whiteboard/pages';
import { Outbox, UpdateError, decodeUpdate, encodeUpdate, reconcile, splitUpdates, wins, type WireElement } from '../src/whiteboard/scene';

const enc = new TextEncoder();

function el(id: string, version: number, versionNonce: number, extra: Partial<WireElement> = {}): WireElement {
  return { id, type: 'rectangle', version, versionNonce, x: 0, y: 0, width: 10, height: 10, ...extra };
}

test('higher version wins; on equal versions the lower nonce wins', () => {
  assert.equal(wins(el('a', 3, 9), el('a', 2, 1)), true);
  assert.equal(wins(el('a', 2, 1), el('a', 3, 9)), false);
  assert.equal(wins(el('a', 2, 5), el('a', 2, 7)), true);
  assert.equal(wins(el('a', 2, 7), el('a', 2, 5)), false);
  assert.equal(wins(el('a', 2, 5), el('a', 2, 5)), false);
});

test('reconcile converges whatever the order of arrival', () => {
  const updates = [[el('a', 1, 10)], [el('a', 2, 30), el('b', 1, 4)], [el('a', 2, 20)], [el('b', 3, 1, { isDeleted: true })], [el('c', 1, 1)]];
  const orders = [
    [0, 1, 2, 3, 4],
    [4, 3, 2, 1, 0],
    [2, 0, 4, 1, 3],
  ];
  const results = orders.map((order) => {
    let scene: WireElement[] = [];
    for (const i of order) scene = reconcile(scene, updates[i]) ?? scene;
    return Object.fromEntries(scene.map((e) => [e.id, [e.version, e.versionNonce, !!e.isDeleted]]));
  });
  for (const r of results) assert.deepEqual(r, { a: [2, 20, false], b: [3, 1, true], c: [1, 1, false] });
});

test('reconcile reports no change for an echo, and keeps what we are drawing', () => {
  const scene = [el('a', 2, 5), el('b', 1, 1)];
  assert.equal(reconcile(scene, [el('a', 2, 5)]), null);
  assert.equal(reconcile(scene, [el('a', 1, 0)]), null);
  assert.equal(reconcile(scene, [el('b', 9, 0)], new Set(['b'])), null);
  const next = reconcile(scene, [el('b', 2, 0)]);
  assert.ok(next);
  assert.equal(next.find((e) => e.id === 'b')?.version, 2);
});

test('reconcile orders by fractional index', () => {
  const next = reconcile([el('x', 1, 1, { index: 'a2' })], [el('y', 1, 1, { index: 'a1' }), el('z', 1, 1, { index: 'a3' })]);
  assert.deepEqual(
    next?.map((e) => e.id),
    ['y', 'x', 'z'],
  );
});

test('an update round-trips; malformed ones are refused with the reason', () => {
  const e = el('abc', 4, -77, { text: 'hello', index: 'a0' });
  assert.deepEqual(decodeUpdate(encodeUpdate([e])), [e]);
  const bad = (v: unknown) => enc.encode(typeof v === 'string' ? v : JSON.stringify(v));
  assert.throws(() => decodeUpdate(new Uint8Array([0xff, 0xfe])), UpdateError);
  assert.throws(() => decodeUpdate(bad('[1,2]')), /version/);
  assert.throws(() => decodeUpdate(bad({ v: 2, elements: [] })), /version 2/);
  assert.throws(() => decodeUpdate(bad({ v: 1 })), /no elements/);
  assert.throws(() => decodeUpdate(bad({ v: 1, elements: [{ id: 'a', type: 'rectangle', version: '1', versionNonce: 1 }] })), /element 0/);
  assert.throws(() => decodeUpdate(bad({ v: 1, elements: [el('ok', 1, 1), { ...el('a', 1, 1), x: 'NaN' }] })), /element 1/);
  assert.throws(() => decodeUpdate(bad({ v: 1, elements: [{ ...el('a b/../', 1, 1) }] })), /element 0/);
  assert.throws(() => decodeUpdate(bad({ v: 1, elements: [null] })), /element 0/);
  assert.throws(() => decodeUpdate(bad({ v: 1, elements: [{ ...el('a', 1.5, 1) }] })), /element 0/);
});

test('splitUpdates keeps each update under the limit and sets aside what cannot fit', () => {
  const els = Array.from({ length: 50 }, (_, i) => el(`e${i}`, 1, i, { text: 'x'.repeat(200) }));
  const huge = el('huge', 1, 1, { points: Array.from({ length: 2000 }, (_, i) => [i, i]) });
  const { updates, tooBig } = splitUpdates([...els, huge], 2048);
  assert.deepEqual(
    tooBig.map((e) => e.id),
    ['huge'],
  );
  assert.ok(updates.length > 1);
  const back = updates.flatMap((u) => {
    assert.ok(u.length <= 2048, `an update of ${u.length} bytes`);
    return decodeUpdate(u);
  });
  assert.deepEqual(
    back.map((e) => e.id),
    els.map((e) => e.id),
  );
});

test('the outbox sends each change once and does not echo what arrived', () => {
  const box = new Outbox();
  const a1 = el('a', 1, 1);
  assert.deepEqual(box.take([a1]), [a1]);
  assert.deepEqual(box.take([a1]), []);
  const a2 = el('a', 2, 9);
  assert.deepEqual(box.take([a2]), [a2]);
  // Someone else's element, shown here: not ours to send.
  const b = el('b', 5, 5);
  box.saw([b]);
  assert.deepEqual(box.take([a2, b]), []);
  // Skipped (a page's background) and forgotten (a refused send) elements.
  assert.deepEqual(box.take([el('bg-x', 1, 0)], (e) => e.id.startsWith('bg-')), []);
  box.forget(['a']);
  assert.deepEqual(box.take([a2]), [a2]);
});

test('pages: ops, documents and views are checked off the wire', () => {
  assert.deepEqual(decodePageOp(enc.encode('{"op":"add","id":"p1"}')), { op: 'add', id: 'p1' });
  assert.equal(decodePageOp(enc.encode('{"op":"add","id":"../x"}')), null);
  assert.equal(decodePageOp(enc.encode('{"op":"drop","id":"p1"}')), null);
  assert.equal(decodePageOp(enc.encode('not json')), null);
  const d = { document_id: 'doc_1', name: 'Slides.pdf', pages: [{ file_id: 'A'.repeat(22), width: 800, height: 600 }] };
  assert.deepEqual(decodeDocument(encodeDocument(d)), d);
  assert.equal(decodeDocument(encodeDocument({ ...d, pages: [] })), null);
  assert.equal(decodeDocument(encodeDocument({ ...d, pages: [{ file_id: 'short', width: 800, height: 600 }] })), null);
  assert.equal(decodeDocument(encodeDocument({ ...d, pages: [{ file_id: 'A'.repeat(22), width: -1, height: 600 }] })), null);
  assert.deepEqual(decodeView(enc.encode('{"page":"main","scrollX":5,"scrollY":-3,"zoom":2}')), { page: 'main', scrollX: 5, scrollY: -3, zoom: 2 });
  assert.deepEqual(decodeView(enc.encode('{"page":"main","scrollX":"5","zoom":99}')), { page: 'main' });
  assert.equal(decodeView(enc.encode('{"page":""}')), null);
});

test('the page list: the first page, added pages, then documents; page documents are valid ids', () => {
  const l = new PageList();
  l.op({ op: 'add', id: 'p2' });
  l.document({ document_id: 'f47ac10b-58cc-4372-a567-0e02b2c3d479', name: 'D', pages: [{ file_id: 'A'.repeat(22), width: 1, height: 1 }, { file_id: 'B'.repeat(22), width: 1, height: 1 }] });
  l.op({ op: 'add', id: 'p3' });
  l.op({ op: 'remove', id: 'p2' });
  l.op({ op: 'remove', id: FIRST_PAGE });
  const ids = l.pages().map((p) => p.id);
  assert.deepEqual(ids.slice(0, 2), [FIRST_PAGE, 'p3']);
  assert.equal(ids.length, 4);
  for (const id of ids) assert.match(pageDoc(id), /^[A-Za-z0-9_-]{1,64}$/);
  assert.equal(documentPageId('f47ac10b-58cc-4372-a567-0e02b2c3d479', 1), ids[3]);
  assert.equal(l.pages()[3].document?.page, 2);
});
