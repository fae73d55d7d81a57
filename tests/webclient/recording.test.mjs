// End-to-end tests of cloud recording and RTMP broadcasting in Enclave's web client: the real
// `enclave` binary, headless Debian Chromium users acting only through the client's data-testid
// hooks (record-button, rtmp-button, rtmp-url-input, rtmp-key-input, rtmp-submit,
// recording-indicator, live-indicator, notification), rooms and join tokens from the signed /auth
// API. Run: `node --test tests/webclient/recording.test.mjs` (see README.md; ENCLAVE_BIN as for
// calls.test.mjs).
//
//   a. plain room: the host has Record and Go live, a participant has neither (and the server
//      refuses the participant); the Go live dialog checks the address before anything is sent
//   b. server-key and self-insert E2EE rooms: no recording or RTMP control exists in the host's
//      DOM, and the server answers the host's own token with 403 for both
//   c. plain room: Record → REC for the host and the participant within 10 s; Record again → gone;
//      the SDK API (/auth/recording/fetch) lists a recording of the room
//   d. plain room: RTMP to a closed port → an error notification for the host, and no LIVE after it

import { describe } from 'node:test';
import assert from 'node:assert/strict';

import { setTimeout as sleep } from 'node:timers/promises';

import { freeTcpPort, waitFor } from '@enclave-tests/lib';

import { tid } from './browser.mjs';
import { rand, webclientSuite } from './scenario.mjs';

const STATE_MS = 10_000; // a recorder state change reaches every page within this

// Bounded scenarios (60 s; c: 90 s, it waits for the file); on failure the page consoles and the
// server's output are printed (scenario.mjs).
let server; // the normal binary
let chrome; // { browser, pid, version, close }
const ctx = webclientSuite('webclient/recording', (c) => ({ server, chrome } = c));
const { scenario } = ctx;

const count = (u, id) => u.page.locator(tid(id)).count();
const visible = (u, id) => u.page.isVisible(tid(id));
const attr = (u, id, name) => u.page.getAttribute(tid(id), name);

/** Waits until `id` is visible (or hidden) on `u`'s page; returns the ms it took. */
async function becomes(u, id, shown, ms = STATE_MS) {
  const t0 = Date.now();
  await u.page.waitForSelector(tid(id), { state: shown ? 'visible' : 'hidden', timeout: ms });
  return Date.now() - t0;
}

/** A host control is settled: no request of it in flight, and pressed = `on`. */
async function settled(u, id, on, ms = STATE_MS) {
  await u.page.waitForSelector(`${tid(id)}[aria-pressed="${on}"]:not([aria-busy="true"])`, { timeout: ms });
}

/** POST from the page itself (same origin), with this user's join token, as the client would. */
function pageApi(u, path, body) {
  return u.page.evaluate(
    async ([p, token, b]) => {
      const r = await fetch(p, { method: 'POST', headers: { Authorization: token, 'Content-Type': 'application/json' }, body: JSON.stringify(b) });
      let json = null;
      try {
        json = await r.json();
      } catch {
        // reported as null
      }
      return { status: r.status, json };
    },
    [path, u.token, body],
  );
}

/** The room's recordings through the SDK API (HMAC-signed /auth/recording/fetch); [] when none. */
async function recordingsOf(room) {
  try {
    const r = await server.auth('/recording/fetch', { room_ids: [room], from: 0, limit: 20, order_by: 'DESC' });
    return r.result?.recordings_list ?? [];
  } catch {
    return []; // "no recording found" is status:false
  }
}

describe('web client: cloud recording and RTMP broadcasting', () => {
  scenario('a. plain room: the host has Record and Go live, a participant has neither; the Go live dialog checks the address', async ({ log, user }) => {
    const room = `rec-ui-${rand()}`;
    await server.createRoom(room, 'off');
    const ann = user(server, { room, id: 'ann', name: 'Ann', admin: true });
    const bob = user(server, { room, id: 'bob', name: 'Bob' });
    await Promise.all([ann.enter(chrome.browser), bob.enter(chrome.browser)]);

    assert.ok(await visible(ann, 'record-button'), 'the host sees record-button');
    assert.ok(await visible(ann, 'rtmp-button'), 'the host sees rtmp-button');
    assert.equal(await attr(ann, 'record-button', 'aria-pressed'), 'false', 'not recording yet');
    for (const id of ['record-button', 'rtmp-button', 'rtmp-url-input', 'rtmp-key-input', 'rtmp-submit']) {
      assert.equal(await count(bob, id), 0, `a participant has no ${id}`);
    }
    for (const u of [ann, bob]) {
      assert.equal(await visible(u, 'recording-indicator'), false, `${u.id}: no REC indicator while nothing records`);
      assert.equal(await visible(u, 'live-indicator'), false, `${u.id}: no LIVE indicator while nothing streams`);
    }
    // The server agrees: a participant cannot start a recording with their own token.
    const asBob = await pageApi(bob, './api/recording', { task: 'START_RECORDING' });
    log.add('driver', `bob START_RECORDING → ${asBob.status} ${JSON.stringify(asBob.json)}`);
    assert.equal(asBob.status, 403, 'a participant is refused');

    // The Go live dialog: opened from the control, focus in the address field, an http:// address
    // is refused in the page (nothing is sent), Escape closes it and gives focus back.
    const sent = [];
    ann.page.on('request', (r) => {
      if (r.url().includes('/api/rtmp')) sent.push(r.url());
    });
    await ann.page.click(tid('rtmp-button'));
    await ann.page.waitForSelector(tid('rtmp-url-input'), { state: 'visible' });
    assert.equal(await ann.page.evaluate(() => document.activeElement?.dataset.testid), 'rtmp-url-input', 'the address field has focus');
    await ann.page.fill(tid('rtmp-url-input'), 'http://live.example.com/app');
    await ann.page.fill(tid('rtmp-key-input'), 'key-1234');
    await ann.page.click(tid('rtmp-submit'));
    await ann.page.waitForSelector(tid('rtmp-error'), { state: 'visible', timeout: 2000 });
    const why = await ann.page.textContent(tid('rtmp-error'));
    log.add('driver', `dialog error for http://: ${why}`);
    assert.match(why, /rtmp:\/\/ or rtmps:\/\//, 'the error says what is expected');
    assert.equal(await attr(ann, 'rtmp-url-input', 'aria-invalid'), 'true', 'the address field is marked invalid');
    assert.deepEqual(sent, [], 'nothing was sent to /api/rtmp');
    await ann.page.keyboard.press('Escape');
    await ann.page.waitForSelector(tid('rtmp-url-input'), { state: 'detached', timeout: 2000 });
    assert.equal(await ann.page.evaluate(() => document.activeElement?.dataset.testid), 'rtmp-button', 'focus returns to rtmp-button');
    assert.equal(await visible(ann, 'live-indicator'), false, 'still not live');
  });

  scenario('b. E2EE rooms (server key, self-insert): no recording or RTMP control in the host\'s DOM; the server answers 403', async ({ log, user }) => {
    for (const mode of ['server_key', 'self_insert']) {
      const room = `rec-e2ee-${mode}-${rand()}`;
      await server.createRoom(room, mode);
      const ann = user(server, { room, id: `ann-${mode}`, name: 'Ann', admin: true, key: mode === 'self_insert' ? `correct horse ${rand()}` : null });
      await ann.enter(chrome.browser);
      assert.equal(await ann.status(), 'encrypted', `${mode}: e2ee-status`);
      assert.equal(await count(ann, 'end-meeting-button'), 1, `${mode}: the user is a host (control)`);
      for (const id of ['record-button', 'rtmp-button', 'rtmp-url-input', 'rtmp-key-input', 'rtmp-submit']) {
        assert.equal(await count(ann, id), 0, `${mode}: ${id} absent from the host's DOM`);
      }
      const rec = await pageApi(ann, './api/recording', { task: 'START_RECORDING' });
      const rtmp = await pageApi(ann, './api/rtmp', { task: 'START_RTMP', url: 'rtmp://127.0.0.1:1935/live', stream_key: 'k' });
      log.add('driver', `${mode}: START_RECORDING → ${rec.status} ${JSON.stringify(rec.json)}; START_RTMP → ${rtmp.status} ${JSON.stringify(rtmp.json)}`);
      for (const [what, r] of [['/api/recording', rec], ['/api/rtmp', rtmp]]) {
        assert.equal(r.status, 403, `${mode}: ${what} answers 403 to the host's token`);
        assert.equal(r.json?.status, false, `${mode}: ${what} status:false`);
        assert.match(r.json?.msg ?? '', /end-to-end encrypted/i, `${mode}: ${what} says why`);
      }
      await ann.close();
    }
  });

  scenario(
    'c. plain room: Record shows REC to everyone within 10 s, Record again removes it; the SDK API lists the recording',
    async ({ log, user }) => {
      const room = `rec-cloud-${rand()}`;
      await server.createRoom(room, 'off');
      const ann = user(server, { room, id: 'ann', name: 'Ann', admin: true });
      const bob = user(server, { room, id: 'bob', name: 'Bob' });
      await Promise.all([ann.enter(chrome.browser), bob.enter(chrome.browser)]);
      await ann.page.waitForSelector(`${tid('remote-tile')}[data-identity="bob"]`);

      /** Clicks record-button; the server must accept; then the indicator must follow for both users. */
      const toggle = async (start) => {
        const t0 = Date.now();
        const replied = ann.page.waitForResponse((r) => r.url().includes('/api/recording'), { timeout: STATE_MS });
        await ann.page.click(tid('record-button'));
        const r = await replied;
        const body = await r.text().catch(() => '');
        log.add('driver', `${start ? 'START' : 'STOP'}_RECORDING → ${r.status()} ${body.slice(0, 300)}`);
        assert.equal(r.status(), 200, `${start ? 'START' : 'STOP'}_RECORDING accepted (${body.slice(0, 200)})`);
        const left = Math.max(1, STATE_MS - (Date.now() - t0));
        await Promise.all([becomes(ann, 'recording-indicator', start, left), becomes(bob, 'recording-indicator', start, left)]);
        return Date.now() - t0;
      };
      const shown = await toggle(true);
      process.stderr.write(`webclient/recording: REC indicator shown to host and participant ${shown} ms after the click\n`);
      assert.match(await ann.page.textContent(tid('recording-indicator')), /Recording/);
      await settled(ann, 'record-button', true);

      await sleep(4000); // something to record
      const gone = await toggle(false);
      log.add('driver', `REC gone for both ${gone} ms after the click`);
      await settled(ann, 'record-button', false);

      const list = await waitFor(30_000, `a recording of ${room} in /auth/recording/fetch`, () => recordingsOf(room), (l) => l.length > 0, (l) => JSON.stringify(l), 1000);
      log.add('driver', `recordings: ${JSON.stringify(list)}`);
      process.stderr.write(`webclient/recording: /auth/recording/fetch lists ${list.length} recording(s) of the room: ${JSON.stringify(list.map((r) => ({ record_id: r.record_id, file_size: r.file_size })))}\n`);
      assert.ok(list.every((r) => r.room_id === room), 'the recordings are of this room');
    },
    { ms: 90_000 },
  );

  scenario('d. plain room: RTMP to a closed port → an error notification for the host, and no LIVE indicator after it', async ({ log, user }) => {
    const room = `rec-rtmp-${rand()}`;
    await server.createRoom(room, 'off');
    const ann = user(server, { room, id: 'ann', name: 'Ann', admin: true });
    const bob = user(server, { room, id: 'bob', name: 'Bob' });
    await Promise.all([ann.enter(chrome.browser), bob.enter(chrome.browser)]);
    await ann.page.waitForSelector(`${tid('remote-tile')}[data-identity="bob"]`);

    const port = await freeTcpPort(); // free a moment ago, nothing listens on it now
    const replied = ann.page.waitForResponse((r) => r.url().includes('/api/rtmp'), { timeout: 20_000 });
    await ann.page.click(tid('rtmp-button'));
    await ann.page.fill(tid('rtmp-url-input'), `rtmp://127.0.0.1:${port}/live`);
    await ann.page.fill(tid('rtmp-key-input'), `enclave-test-${rand()}`);
    await ann.page.click(tid('rtmp-submit'));
    const reply = await replied;
    const replyBody = await reply.text().catch(() => '');
    log.add('driver', `/api/rtmp → ${reply.status()} ${replyBody.slice(0, 300)}`);
    assert.notEqual(reply.status(), 501, `the server implements RTMP (got 501: ${replyBody.slice(0, 200)})`);

    const errorSel = `${tid('notification')}[data-kind="error"]`;
    await ann.page.waitForSelector(errorSel, { timeout: 20_000 });
    const text = await ann.page.textContent(errorSel);
    log.add('driver', `host's error notification: ${text}`);
    process.stderr.write(`webclient/recording: RTMP to a closed port: HTTP ${reply.status()}, notification "${text.trim()}"\n`);
    // After the error: not live, for the host and the participant, and it stays that way.
    for (const u of [ann, bob]) await becomes(u, 'live-indicator', false, 5000);
    await settled(ann, 'rtmp-button', false);
    for (let i = 0; i < 4; i++) {
      await sleep(500);
      for (const u of [ann, bob]) assert.equal(await visible(u, 'live-indicator'), false, `${u.id}: no LIVE indicator after the failure`);
    }
  });
});
