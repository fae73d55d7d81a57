// End-to-end tests of the whiteboard (web/src/whiteboard/, docs/content.md) on the tap build
// (ENCLAVE_TAP_BIN): participants draw with the mouse and the keyboard on Excalidraw, the
// others see each element, a late joiner gets the board from the server's log, a PDF's pages
// go on the board; in an end-to-end encrypted room nothing the server stored (its data dir,
// uploads included), relayed (the tap file), printed or was sent (every request body and
// WebSocket frame of every page) holds the drawn text, while in a plain room the same search
// finds it (so the search can fail).
//
// The canvas has no DOM to read: each page gets an init script that makes
// `window.__enclaveTestHooks`, where the board lists the elements it shows (observation only).

import { after, before, describe } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { waitFor } from '@enclave-tests/lib';

import { tid } from './browser.mjs';
import { findIn, needles, readTap } from './ciphertext.mjs';
import { KEEP, rand, shot, webclientSuite } from './scenario.mjs';
import { Enclave, TAP_BIN, filesUnder } from './server.mjs';

let chrome;
const ctx = webclientSuite('webclient/whiteboard', (c) => ({ chrome } = c));
const { scenario } = ctx;

const HOOKS = 'window.__enclaveTestHooks = {};';
const BOARD_MS = 90_000;

/** A PDF of `n` pages, each a coloured band and a line of text (PDF 1.4, Helvetica). */
export function tinyPdf(n, label) {
  const objs = [];
  const kids = [];
  objs[1] = '<< /Type /Catalog /Pages 2 0 R >>';
  objs[3] = '<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>';
  for (let i = 0; i < n; i++) {
    const page = 4 + 2 * i;
    const content = page + 1;
    kids.push(`${page} 0 R`);
    const stream = `0.2 0.4 0.9 rg 40 300 520 80 re f 0 0 0 rg BT /F1 28 Tf 60 200 Td (${label} page ${i + 1}) Tj ET`;
    objs[page] = `<< /Type /Page /Parent 2 0 R /MediaBox [0 0 600 420] /Resources << /Font << /F1 3 0 R >> >> /Contents ${content} 0 R >>`;
    objs[content] = `<< /Length ${stream.length} >>\nstream\n${stream}\nendstream`;
  }
  objs[2] = `<< /Type /Pages /Kids [${kids.join(' ')}] /Count ${n} >>`;
  let out = '%PDF-1.4\n';
  const offsets = [];
  for (let i = 1; i < objs.length; i++) {
    offsets[i] = out.length;
    out += `${i} 0 obj\n${objs[i]}\nendobj\n`;
  }
  const xref = out.length;
  out += `xref\n0 ${objs.length}\n0000000000 65535 f \n`;
  for (let i = 1; i < objs.length; i++) out += `${String(offsets[i]).padStart(10, '0')} 00000 n \n`;
  out += `trailer\n<< /Size ${objs.length} /Root 1 0 R >>\nstartxref\n${xref}\n%%EOF\n`;
  return Buffer.from(out, 'latin1');
}

/** What `u`'s board shows (the test hook): {page, ready, elements: [{id, type, text, isDeleted, fileId}], images}. */
const boardOf = (u) => u.page.evaluate(() => window.__enclaveTestHooks?.whiteboard?.() ?? null);

async function openBoard(u) {
  await u.page.click(tid('whiteboard-toggle'));
  await u.page.waitForSelector(`${tid('whiteboard')}[data-ready="true"]`, { timeout: 30_000 });
  // Excalidraw has drawn its canvas.
  await u.page.waitForSelector(`${tid('whiteboard-canvas')} canvas.interactive`, { timeout: 10_000 });
}

/**
 * Draws a rectangle with the rectangle tool (key R) and a mouse drag at (fx, fy) of the board
 * (right of the style panel a chosen tool opens at the left).
 */
async function drawRectangle(u, fx, fy) {
  const box = await u.page.locator(`${tid('whiteboard-canvas')} canvas.interactive`).boundingBox();
  const x = box.x + box.width * fx;
  const y = box.y + box.height * fy;
  await u.page.mouse.click(box.x + box.width * 0.9, box.y + box.height * 0.9); // focus the board
  await u.page.keyboard.press('r');
  await u.page.mouse.move(x, y);
  await u.page.mouse.down();
  await u.page.mouse.move(x + 80, y + 50, { steps: 6 });
  await u.page.mouse.move(x + 140, y + 90, { steps: 6 });
  await u.page.mouse.up();
}

/** Writes `text` with the text tool (from the toolbar): a click, typing, Escape to finish. */
async function writeText(u, text, fx, fy) {
  const box = await u.page.locator(`${tid('whiteboard-canvas')} canvas.interactive`).boundingBox();
  // Excalidraw's own toolbar button (its radio input sits under the icon).
  await u.page.click(`${tid('whiteboard-canvas')} [data-testid="toolbar-text"]`, { force: true });
  await u.page.mouse.click(box.x + box.width * fx, box.y + box.height * fy);
  await u.page.waitForSelector('textarea.excalidraw-wysiwyg', { timeout: 5000 });
  await u.page.keyboard.type(text, { delay: 10 });
  await u.page.keyboard.press('Escape');
}

/** Waits until `u`'s board shows a live element matching `match` (a description for errors). */
function sees(u, what, match, ms = 15_000) {
  return waitFor(
    ms,
    `${u.id}'s board shows ${what}`,
    () => boardOf(u),
    (b) => !!b && b.elements.some((e) => !e.isDeleted && match(e)),
    (b) => JSON.stringify(b?.elements?.map((e) => [e.type, e.text]) ?? b),
    100,
  );
}

const isText = (text) => (e) => e.type === 'text' && typeof e.text === 'string' && e.text.includes(text);
const isRect = (e) => e.type === 'rectangle';

/** A download's bytes (the browser runs behind playwright's server: no local path). */
async function downloaded(d) {
  const chunks = [];
  for await (const c of await d.createReadStream()) chunks.push(c);
  return Buffer.concat(chunks);
}

/** An admin (`admin`, a User) unlocks the whiteboard for everyone, as a host's tool would. */
async function unlockWhiteboard(server, admin) {
  const r = await fetch(`${server.base}/api/updateLockSettings`, {
    method: 'POST',
    headers: { authorization: admin.token, 'content-type': 'application/json' },
    body: JSON.stringify({ user_id: 'all', service: 'whiteboard', direction: 'unlock' }),
  });
  const body = await r.json();
  assert.equal(body.status, true, `updateLockSettings whiteboard unlock: ${JSON.stringify(body)}`);
}

/** Everything the pages sent (request bodies, WebSocket frames), as [label, bytes]. */
async function wireOf(wire) {
  const recs = await Promise.all(wire);
  return recs.map((r) => [`${r.who} ${r.kind} ${r.url.replace(/access_token=[^&]+/, 'access_token=…')}`, r.body]);
}

scenario(
  'W3. plain room: pages (added, followed), PNG and PDF export, a PDF put on the board (converted by the server or rendered in the browser), an admin clears a page for everyone',
  async ({ log, user }) => {
    const server = ctx.server;
    const room = `wb-tools-${rand()}`;
    await server.createRoom(room, 'off', { whiteboard_features: { is_allow: true } });
    const ann = user(server, { room, id: 'ann', name: 'Ann', admin: true, extraInit: HOOKS });
    const bob = user(server, { room, id: 'bob', name: 'Bob', extraInit: HOOKS });
    await Promise.all([ann, bob].map((u) => u.enter(chrome.browser)));
    await Promise.all([ann, bob].map(openBoard));
    await drawRectangle(ann, 0.45, 0.3);
    await sees(bob, 'ann’s rectangle', isRect);
    const label = (u) => u.page.textContent(tid('whiteboard-page-label'));
    const onLabel = (u, re) => waitFor(15_000, `${u.id}'s page label matches ${re}`, () => label(u), (t) => re.test(t), (t) => t, 100);

    // A new page: the presenter goes there, bob follows.
    await ann.page.click(tid('whiteboard-page-add'));
    await onLabel(ann, /^Page 2 of 2/);
    await onLabel(bob, /^Page 2 of 2/);
    const onSecond = await boardOf(bob);
    assert.equal(onSecond.elements.filter((e) => !e.isDeleted).length, 0, 'the new page is empty');
    await ann.page.click(tid('whiteboard-page-prev'));
    await onLabel(bob, /^Page 1 of 2/);
    await sees(bob, 'the rectangle on the first page again', isRect);

    // Export: this page as PNG, every page as one PDF.
    const [png] = await Promise.all([ann.page.waitForEvent('download'), ann.page.click(tid('whiteboard-export-png'))]);
    const pngBytes = await downloaded(png);
    assert.equal(pngBytes.subarray(1, 4).toString(), 'PNG', `the PNG export is a PNG (${png.suggestedFilename()})`);
    const [pdf] = await Promise.all([ann.page.waitForEvent('download', { timeout: 30_000 }), ann.page.click(tid('whiteboard-export-pdf'))]);
    const pdfBytes = (await downloaded(pdf)).toString('latin1');
    assert.ok(pdfBytes.startsWith('%PDF-'), 'the PDF export is a PDF');
    assert.equal((pdfBytes.match(/\/Type \/Page\b/g) ?? []).length, 2, 'one PDF page per board page');

    // A PDF in a plain room: the server converts it, or (no converter) the browser renders it.
    await ann.page.setInputFiles(tid('whiteboard-upload'), { name: 'slides.pdf', mimeType: 'application/pdf', buffer: tinyPdf(1, 'plain') });
    await onLabel(ann, /^Page 3 of 3/);
    await onLabel(bob, /^Page 3 of 3/);
    await waitFor(20_000, "bob's board shows the document page's image", () => boardOf(bob), (b) => b.elements.some((e) => e.type === 'image' && b.images.includes(e.fileId)), (b) => JSON.stringify(b), 200);

    // An admin clears the first page: it is empty for everyone.
    await ann.page.click(tid('whiteboard-page-prev'));
    await ann.page.click(tid('whiteboard-page-prev'));
    await onLabel(bob, /^Page 1 of 3/);
    await sees(bob, 'the rectangle before the clear', isRect);
    await ann.page.click(tid('whiteboard-clear'));
    await ann.page.click(tid('confirm-ok'));
    for (const u of [ann, bob]) {
      await waitFor(10_000, `${u.id}'s first page is empty after the clear`, () => boardOf(u), (b) => b.page === 'main' && b.elements.filter((e) => !e.isDeleted).length === 0, (b) => JSON.stringify(b), 100);
    }
    log.add('driver', 'pages, export, document and clear done');
  },
  { ms: BOARD_MS },
);

describe('whiteboard (tap build)', () => {
  let tapServer;
  let tapFile;
  before(async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'enclave-webclient-wb-'));
    tapFile = path.join(dir, 'tap.jsonl');
    tapServer = await new Enclave({ bin: TAP_BIN, tapFile, label: 'enclave-tap' }).start();
    ctx.servers.push(tapServer);
  });
  after(() => {
    if (tapFile && !KEEP) fs.rmSync(path.dirname(tapFile), { recursive: true, force: true });
  });

  const features = { whiteboard_features: { is_allow: true } };

  scenario(
    'W1. plain room, three participants: each one’s drawing reaches the others, a late joiner gets the board, and the drawn text is on the wire (the control for W2)',
    async ({ log, user }) => {
      const room = `wb-plain-${rand()}`;
      await tapServer.createRoom(room, 'off', features);
      const wire = [];
      const ann = user(tapServer, { room, id: 'ann', name: 'Ann', admin: true, extraInit: HOOKS, wire });
      const bob = user(tapServer, { room, id: 'bob', name: 'Bob', extraInit: HOOKS, wire });
      const cat = user(tapServer, { room, id: 'cat', name: 'Cat', extraInit: HOOKS, wire });
      await Promise.all([ann, bob, cat].map((u) => u.enter(chrome.browser)));
      await Promise.all([ann, bob, cat].map(openBoard));
      // The first admin presents.
      await waitFor(10_000, "bob's board names ann as the presenter", () => bob.page.getAttribute(tid('whiteboard-presenter'), 'data-identity'), (v) => v === 'ann');

      const marker = `wb-plain-${randomBytes(6).toString('hex')}`;
      await drawRectangle(ann, 0.45, 0.3);
      await sees(ann, 'the rectangle ann drew', isRect, 5000);
      await writeText(ann, marker, 0.5, 0.65);
      await Promise.all([bob, cat].map((u) => Promise.all([sees(u, 'ann’s rectangle', isRect), sees(u, `the text ${marker}`, isText(marker))])));
      log.add('driver', 'bob and cat see ann’s rectangle and text');

      // The room's default locks make the board view only for participants; an admin's unlock
      // reaches bob live (LOCK_SETTINGS), and bob may draw.
      assert.equal(await bob.page.getAttribute(tid('whiteboard'), 'data-locked'), 'true', 'the whiteboard starts view only for bob (the default lock)');
      await bob.page.waitForSelector(tid('whiteboard-locked'), { state: 'visible' });
      await unlockWhiteboard(tapServer, ann);
      await bob.page.waitForSelector(`${tid('whiteboard')}[data-locked="false"]`, { timeout: 10_000 });
      await bob.page.waitForSelector(tid('whiteboard-locked'), { state: 'hidden' });

      // And the other way: bob draws, ann and cat see it.
      const reply = `wb-reply-${randomBytes(4).toString('hex')}`;
      await writeText(bob, reply, 0.6, 0.8);
      await Promise.all([ann, cat].map((u) => sees(u, `bob’s text ${reply}`, isText(reply))));
      await shot(ann, 'whiteboard-plain');

      // A late joiner opens the board: everything is there, from the server's log.
      const dan = user(tapServer, { room, id: 'dan', name: 'Dan', extraInit: HOOKS });
      await dan.enter(chrome.browser);
      await openBoard(dan);
      await Promise.all([sees(dan, 'the rectangle', isRect), sees(dan, `ann’s text ${marker}`, isText(marker)), sees(dan, `bob’s text ${reply}`, isText(reply))]);
      const b = await boardOf(dan);
      assert.equal(b.elements.filter((e) => !e.isDeleted && e.type === 'text').length, 2, `dan sees exactly the two texts: ${JSON.stringify(b.elements)}`);

      // No echo loop: cat drew nothing. Excalidraw may re-measure a text it received once its
      // font is loaded (a new version of that element, which goes out like any change), so a
      // text or two may come back from cat, but not the stream of updates an echo would make.
      const sent = await wireOf(wire);
      const catAppends = sent.filter(([label, body]) => label.startsWith('cat http') && /\/api\/content\/append/.test(label) && /"doc":"page-/.test(body.toString()));
      log.add('driver', `cat (who only watched) sent ${catAppends.length} page update(s)`);
      assert.ok(catAppends.length <= 2, `cat, who only watched, sent ${catAppends.length} page updates`);

      // Control: in a plain room the drawn text travels as it is, and the search finds it.
      const ns = needles(marker);
      const hits = sent.filter(([, body]) => findIn(body, ns).length);
      assert.ok(hits.length > 0, 'the drawn text is found in what the pages sent (a plain room)');
      log.add('driver', `control: the marker is in ${hits.length} request(s), e.g. ${hits[0][0]}`);
    },
    { ms: BOARD_MS },
  );

  scenario(
    'W2. E2EE room: drawing reaches the other and a late joiner, a PDF’s pages go on the board (followed by the other), and the server never sees the drawn text or the document',
    async ({ log, user }) => {
      const room = `wb-e2ee-${rand()}`;
      await tapServer.createRoom(room, 'server_key', features);
      const wire = [];
      const ann = user(tapServer, { room, id: 'ann', name: 'Ann', admin: true, extraInit: HOOKS, wire });
      const bob = user(tapServer, { room, id: 'bob', name: 'Bob', extraInit: HOOKS, wire });
      await Promise.all([ann, bob].map((u) => u.enter(chrome.browser)));
      await Promise.all([ann, bob].map(openBoard));

      const marker = `wb-secret-${randomBytes(6).toString('hex')}`;
      await drawRectangle(ann, 0.45, 0.3);
      await sees(ann, 'the rectangle ann drew', isRect, 5000);
      await writeText(ann, marker, 0.5, 0.65);
      await Promise.all([sees(bob, 'ann’s rectangle', isRect), sees(bob, `the text ${marker}`, isText(marker))]);

      // A two-page PDF, rendered in ann's browser, each page sealed and uploaded as an image.
      const docLabel = `wb-doc-${randomBytes(4).toString('hex')}`;
      await ann.page.setInputFiles(tid('whiteboard-upload'), { name: `${docLabel}.pdf`, mimeType: 'application/pdf', buffer: tinyPdf(2, docLabel) });
      const onDocPage = (u) =>
        waitFor(
          30_000,
          `${u.id}'s board shows the document's first page with its image`,
          async () => ({ b: await boardOf(u), label: await u.page.textContent(tid('whiteboard-page-label')) }),
          ({ b, label }) => !!b && /^Page 2 of 3/.test(label) && b.elements.some((e) => e.type === 'image' && e.fileId && b.images.includes(e.fileId)),
          ({ b, label }) => `${label} ${JSON.stringify(b)}`,
          200,
        );
      await onDocPage(ann);
      // Bob follows the presenter (ann) onto the document's page.
      await onDocPage(bob);
      await shot(bob, 'whiteboard-e2ee-pdf');
      await bob.page.click(tid('whiteboard-page-next'));
      await waitFor(10_000, "bob's next page is the document's second", () => bob.page.textContent(tid('whiteboard-page-label')), (t) => /^Page 3 of 3/.test(t));

      // A late joiner: the drawing on the first page, and the document's pages.
      const cat = user(tapServer, { room, id: 'cat', name: 'Cat', extraInit: HOOKS, wire });
      await cat.enter(chrome.browser);
      await openBoard(cat);
      await onDocPage(cat); // follows ann, who is on the document
      await cat.page.click(tid('whiteboard-follow')); // stop following, go back to the first page
      await cat.page.click(tid('whiteboard-page-prev'));
      await Promise.all([sees(cat, 'the rectangle', isRect), sees(cat, `the text ${marker}`, isText(marker))]);

      // What the server saw. Uploads exist (the control that the data dir holds the pages).
      const stored = filesUnder(tapServer.dataDir);
      const uploads = stored.filter(([f]) => f.split(path.sep).includes('uploads'));
      assert.ok(uploads.length >= 2, `the page images are stored under uploads/ (${uploads.length} files)`);
      const pagesWire = await wireOf(wire);
      assert.ok(pagesWire.some(([label]) => /\/api\/content\/append/.test(label)), 'the pages sent whiteboard updates');
      for (const secret of [marker, docLabel]) {
        const ns = needles(secret);
        for (const [f, bytes] of stored) assert.deepEqual(findIn(bytes, ns), [], `${secret} in ${f}`);
        const tapHits = readTap(tapFile).filter((r) => findIn(r.bytes, ns).length);
        assert.equal(tapHits.length, 0, `${secret} in tapped payloads`);
        assert.deepEqual(findIn(tapServer.output(), ns), [], `${secret} in the server output`);
        const sent = pagesWire.filter(([, body]) => findIn(body, ns).length).map(([label]) => label);
        assert.deepEqual(sent, [], `${secret} in what the pages sent`);
      }
      log.add('driver', `ciphertext: ${stored.length} stored files (${uploads.length} uploads), ${pagesWire.length} requests/frames searched`);
    },
    { ms: BOARD_MS },
  );
});
