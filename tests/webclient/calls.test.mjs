// End-to-end tests of Enclave's web client, calls: people join a room through the pre-join
// screen, see, hear and chat, in server-key, self-insert and plain rooms; keys that match and keys
// that do not; a reload; an observer; a slow microphone. The real `enclave` binary serves the
// embedded client at /?access_token=<join token>; headless Debian Chromium users act only through
// the client's data-testid hooks; rooms and join tokens come from the signed /auth API.
// Run: `node --test --test-concurrency=1 tests/webclient/` (see README.md).

import { describe } from 'node:test';
import assert from 'node:assert/strict';

import { setTimeout as sleep } from 'node:timers/promises';

import { waitFor } from '@enclave-tests/lib';

import { firstOf, mediaStats, pageStorage, tid, timeline } from './browser.mjs';
import { allChat, allSeeAndHear, rand, waitStatus, webclientSuite } from './scenario.mjs';

let server; // the normal binary
let chrome; // { browser, pid, version, close }
const ctx = webclientSuite('webclient/calls', (c) => ({ server, chrome } = c));
const { scenario } = ctx;

describe('web client against enclave', () => {
  scenario('1. server-key E2EE room: three participants see, hear and chat; encrypted; same code', async ({ log, user }) => {
    const room = `srv-${rand()}`;
    await server.createRoom(room, 'server_key');
    const us = [
      user(server, { room, id: 'ann', name: 'Ann', admin: true }),
      user(server, { room, id: 'bob', name: 'Bob' }),
      user(server, { room, id: 'cat', name: 'Cat' }),
    ];
    await Promise.all(us.map((u) => u.enter(chrome.browser)));
    await allSeeAndHear(us, log);
    for (const u of us) await waitStatus(u, 'encrypted');
    // Each arrival moves the key to a new epoch; everyone is on the last one within a second.
    const codes = await waitFor(5000, 'the same verification code for all three', () => Promise.all(us.map((u) => u.code())), (cs) => cs.every((c) => c === cs[0]), (cs) => cs.join(', '));
    log.add('driver', `verification codes: ${codes.join(', ')}`);
    assert.match(codes[0], /^\d{5}-\d{5}$/, 'a verification code is shown');
    await allChat(us, rand());
    for (const u of us) assert.equal(await u.status(), 'encrypted', `${u.id} still encrypted after chat`);
  });

  scenario('2. self-insert E2EE room: right key works; a wrong key shows wrong-key within 3 s and decodes nothing', async ({ log, user }) => {
    const room = `self-${rand()}`;
    await server.createRoom(room, 'self_insert');
    const key = `correct horse ${rand()}`;
    const ann = user(server, { room, id: 'ann', name: 'Ann', admin: true, key });
    const bob = user(server, { room, id: 'bob', name: 'Bob', key });
    await Promise.all([ann.enter(chrome.browser), bob.enter(chrome.browser)]);
    await allSeeAndHear([ann, bob], log);
    await waitStatus(ann, 'encrypted');
    await waitStatus(bob, 'encrypted');
    assert.equal(await ann.code(), await bob.code(), 'same key → same verification code');
    await allChat([ann, bob], rand());
    // The security panel says what a passphrase cannot do when someone is removed.
    await ann.page.click(tid('e2ee-badge'));
    await ann.page.waitForSelector(`${tid('security-panel')} ${tid('security-key-model')}[data-mode="self_insert"]`, { state: 'visible' });
    assert.match(await ann.page.textContent(tid('security-key-model')), /stays the same for the whole meeting.*removed keeps it/s);
    await ann.page.click(tid('e2ee-badge'));

    const cat = user(server, { room, id: 'cat', name: 'Cat', key: `wrong horse ${rand()}` });
    await cat.enter(chrome.browser);
    const tl = await waitFor(8000, "cat's e2ee-status to become wrong-key", () => timeline(cat.page), (t) => firstOf(t, 'e2ee-status', 'wrong-key') !== null, (t) => JSON.stringify(t.slice(-8)));
    const tConn = firstOf(tl, 'connection-state', 'connected');
    const tWrong = firstOf(tl, 'e2ee-status', 'wrong-key');
    const delay = Math.round(tWrong - tConn);
    log.add('driver', `cat: connected → wrong-key in ${delay} ms`);
    process.stderr.write(`webclient: wrong key detected ${delay} ms after connection-state = connected\n`);
    assert.ok(tConn !== null, 'cat reached connection-state = connected');
    assert.ok(delay <= 3000, `wrong-key shown ${delay} ms after connecting (must be ≤ 3000 ms)`);
    assert.equal(await cat.status(), 'wrong-key');
    await cat.page.waitForSelector(tid('wrong-key-banner'), { state: 'visible', timeout: 3000 });
    assert.notEqual(await cat.code(), await ann.code(), 'a different key shows a different code');

    // No frame of ann or bob decodes for cat over ~5 s, while their encrypted media does arrive.
    await cat.page.waitForSelector(`${tid('remote-tile')}[data-identity="ann"]`);
    await cat.page.waitForSelector(`${tid('remote-tile')}[data-identity="bob"]`);
    const samples = [];
    for (let i = 0; i < 6; i++) {
      if (i) await sleep(1000);
      samples.push(await mediaStats(cat.page));
    }
    log.add('driver', `cat's media over 5 s: ${JSON.stringify(samples)}`);
    for (const s of samples) {
      for (const id of ['ann', 'bob']) {
        assert.ok(s.video[id], `cat has a remote tile for ${id}`);
        assert.equal(s.video[id].framesDecoded, 0, `no frame of ${id} decodes for cat (stats)`);
        assert.ok(!s.video[id].elementDecoded, `no frame of ${id} decodes for cat (video element)`);
      }
    }
    const first = samples[0];
    const last = samples.at(-1);
    const grew = ['ann', 'bob'].map((id) => `${id}: ${first.video[id].bytesReceived} → ${last.video[id].bytesReceived} B`);
    process.stderr.write(`webclient: wrong-key cat's encrypted video over 5 s (framesDecoded 0): ${grew.join(', ')}\n`);
    assert.ok(['ann', 'bob'].some((id) => last.video[id].bytesReceived > first.video[id].bytesReceived), `encrypted video reaches cat but does not decode (${grew.join(', ')})`);
    // The others learn of it, but their own key is not wrong: they share it with each other.
    await ann.page.waitForSelector(`${tid('remote-tile')}[data-identity="cat"][data-key-mismatch="true"]`, { timeout: 3000 });
    await ann.page.waitForSelector(`${tid('key-share-banner')}[data-sharing="2"]`, { state: 'visible', timeout: 3000 });
    assert.match(await ann.page.textContent(tid('key-share-text')), /^2 of 3 share your encryption key\. Cat uses a different key/);
    for (const u of [ann, bob]) assert.equal(await u.status(), 'encrypted', `${u.id} keeps encrypted: the key they share is not wrong`);
    assert.equal(await ann.page.isVisible(tid('wrong-key-banner')), false);
    await allSeeAndHear([ann, bob], log);
  });

  scenario('3. plain room: three participants see, hear and chat; not-encrypted', async ({ log, user }) => {
    const room = `plain-${rand()}`;
    await server.createRoom(room, 'off');
    const us = [
      user(server, { room, id: 'ann', name: 'Ann', admin: true }),
      user(server, { room, id: 'bob', name: 'Bob' }),
      user(server, { room, id: 'cat', name: 'Cat' }),
    ];
    await Promise.all(us.map((u) => u.enter(chrome.browser)));
    await allSeeAndHear(us, log);
    for (const u of us) {
      assert.equal(await u.status(), 'not-encrypted', `${u.id}: e2ee-status`);
      assert.equal((await u.code()) ?? '', '', `${u.id}: no verification code in a plain room`);
    }
    await allChat(us, rand());
    // Control for scenario 6: the recording controls exist for hosts of plain rooms.
    assert.equal(await us[0].page.locator(tid('record-button')).count(), 1, 'plain room: record-button for the host');
    assert.equal(await us[0].page.locator(tid('rtmp-button')).count(), 1, 'plain room: rtmp-button for the host');
  });

  scenario('14. server-key room: a reload is a new key epoch, and the chat kept before it is shown again, sealed at rest', async ({ log, user }) => {
    const room = `hist-${rand()}`;
    await server.createRoom(room, 'server_key');
    const ann = user(server, { room, id: 'ann', name: 'Ann', admin: true });
    const bob = user(server, { room, id: 'bob', name: 'Bob' });
    for (const u of [ann, bob]) await u.enter(chrome.browser);
    const tag = rand();
    await ann.say(`before the reload ${tag} (ann)`);
    await bob.sees('ann', `before the reload ${tag} (ann)`);
    await bob.say(`before the reload ${tag} (bob)`);
    await ann.sees('bob', `before the reload ${tag} (bob)`);
    // Someone else comes in (bob's page moves to cat's epoch), so that bob's reload is an
    // admission that draws a new one: the kept chat must survive two epochs.
    const cat = user(server, { room, id: 'cat', name: 'Cat' });
    await cat.enter(chrome.browser);
    const gCat = (await cat.verifyTokenReply).e2ee.generation;
    await bob.page.waitForSelector(`${tid('meeting')}[data-key-generation="${gCat}"]`, { state: 'attached', timeout: 10_000 });
    const g0 = Number(await bob.page.getAttribute(tid('meeting'), 'data-key-generation'));
    // Kept sealed: the text is nowhere in bob's page storage.
    await waitFor(5000, "bob's chat history is kept", () => pageStorage(bob), (st) => JSON.stringify(st).includes('sealed'), () => 'no sealed record yet');
    assert.ok(!JSON.stringify(await pageStorage(bob)).includes(`before the reload ${tag}`), 'the kept chat is sealed at rest');

    await bob.page.goto(`${server.base}/?access_token=${bob.token}`);
    await bob.page.waitForSelector(tid('prejoin'));
    await bob.join();
    const g1 = Number(await bob.page.getAttribute(tid('meeting'), 'data-key-generation'));
    assert.ok(g1 > g0, `the reload was an admission: epoch ${g0} → ${g1}`);
    await bob.sees('ann', `before the reload ${tag} (ann)`);
    await bob.sees('bob', `before the reload ${tag} (bob)`);
    // And the meeting goes on under the new epoch.
    await ann.say(`after the reload ${tag}`);
    await bob.sees('ann', `after the reload ${tag}`);
    log.add('driver', `bob reloaded: epoch ${g0} → ${g1}; the chat kept before is shown again`);
  });

  scenario('11. encrypted room: a user who asked to be hidden is shown to everyone as an observer with the same code', async ({ log, user }) => {
    const room = `obs-${rand()}`;
    await server.createRoom(room, 'server_key');
    const ann = user(server, { room, id: 'ann', name: 'Ann', admin: true });
    const eve = user(server, { room, id: 'eve', name: 'Eve', admin: true, hidden: true });
    await Promise.all([ann, eve].map((u) => u.enter(chrome.browser)));
    await ann.page.click(tid('participants-toggle'));
    const item = `${tid('participant-item')}[data-identity="eve"]`;
    await ann.page.waitForSelector(`${item} ${tid('observer-pill')}`, { timeout: 10_000 });
    await ann.page.waitForSelector(`${tid('remote-tile')}[data-identity="eve"]`);
    await waitStatus(eve, 'encrypted', 15_000);
    await waitFor(5000, 'the observer holds the key, and everyone can see it', () => Promise.all([eve.code(), ann.code()]), ([e, a]) => e === a, (cs) => cs.join(' vs '));
    assert.equal(await eve.page.isDisabled(tid('mic-toggle')), true, 'an observer sends nothing');
    log.add('driver', 'eve is listed as an observer at ann');
  });

  /**
   * Self-insert key status with one mistyped key among several: the one whose key matches
   * nobody is told so; the others stay encrypted, are told how many share their key, see the
   * mark on the mistyped one's tile, and keep decoding each other.
   */
  async function oneMistyped({ log, user }, { right, wrong, order }) {
    const room = `mix-${rand()}`;
    await server.createRoom(room, 'self_insert');
    const key = `correct horse ${rand()}`;
    const good = right.map((id) => user(server, { room, id, name: id[0].toUpperCase() + id.slice(1), admin: id === right[0], key }));
    const bad = user(server, { room, id: wrong, name: wrong[0].toUpperCase() + wrong.slice(1), key: `wrong horse ${rand()}` });
    if (order === 'first') {
      await bad.enter(chrome.browser);
      for (const u of good) await u.enter(chrome.browser);
    } else {
      await Promise.all([bad, ...good].map((u) => u.enter(chrome.browser)));
    }
    await allSeeAndHear(good, log);
    const n = good.length + 1;
    for (const u of good) {
      await waitStatus(u, 'encrypted', 8000);
      await u.page.waitForSelector(`${tid('remote-tile')}[data-identity="${wrong}"][data-key-mismatch="true"]`, { timeout: 8000 });
      await u.page.waitForSelector(`${tid('key-share-banner')}[data-sharing="${good.length}"]`, { state: 'visible', timeout: 8000 });
      const text = await u.page.textContent(tid('key-share-text'));
      assert.ok(text.startsWith(`${good.length} of ${n} share your encryption key.`), `${u.id}: ${text}`);
    }
    await waitStatus(bad, 'wrong-key', 8000);
    await bad.page.waitForSelector(tid('wrong-key-banner'), { state: 'visible' });
    // Still, after the verdicts: the right-key participants decode each other, and keep
    // their status.
    await allSeeAndHear(good, log);
    for (const u of good) assert.equal(await u.status(), 'encrypted', `${u.id} after the mistyped participant's frames kept arriving`);
    const codes = await Promise.all(good.map((u) => u.code()));
    assert.ok(codes.every((c) => c === codes[0]), `the right-key participants share a code: ${codes}`);
    assert.notEqual(await bad.code(), codes[0]);
  }

  scenario('12a. self-insert room of four, the mistyped key arriving first: only its holder is told the key is wrong; the others decode each other', (ctx) =>
    oneMistyped(ctx, { right: ['ann', 'bob', 'cat'], wrong: 'dan', order: 'first' }),
  );

  scenario('12b. self-insert room of three, all arriving together with one mistyped key: the same verdicts', (ctx) =>
    oneMistyped(ctx, { right: ['ann', 'bob'], wrong: 'cat', order: 'together' }),
  );

  // A regression test: the pre-join screen once let people join before getUserMedia resolved,
  // and they came in without the microphone or camera it showed as on.
  scenario(
    '7. joining before a slow microphone/camera has opened still publishes what the pre-join screen shows as on',
    async ({ log, user }) => {
      const problems = [];
      for (const mode of ['off', 'server_key']) {
        const room = `slow-${mode}-${rand()}`;
        await server.createRoom(room, mode);
        // getUserMedia resolves 1.5 s late (real headsets and busy machines take 0.5–2 s); the
        // user clicks Join as soon as it is enabled.
        const u = user(server, { room, id: `ann-${mode}`, name: 'Ann', admin: true, gumDelayMs: 1500 });
        await u.open(chrome.browser);
        const pre = {
          mic: await u.page.getAttribute(tid('prejoin-mic-toggle'), 'aria-pressed'),
          cam: await u.page.getAttribute(tid('prejoin-camera-toggle'), 'aria-pressed'),
        };
        await u.join({ hurry: true });
        const pressed = (id) => u.page.getAttribute(tid(id), 'aria-pressed');
        const now = async () => ({ mic: await pressed('mic-toggle'), cam: await pressed('camera-toggle') });
        const inMeeting = await waitFor(5000, 'mic and camera on', now, (x) => x.mic === 'true' && x.cam === 'true').catch(now);
        log.add('driver', `${mode}: pre-join mic/cam ${pre.mic}/${pre.cam} → meeting mic/cam ${inMeeting.mic}/${inMeeting.cam}`);
        if (pre.mic === 'true' && inMeeting.mic !== 'true') problems.push(`${mode} room: the pre-join screen showed the microphone on; in the meeting it is off (never published)`);
        if (pre.cam === 'true' && inMeeting.cam !== 'true') problems.push(`${mode} room: the pre-join screen showed the camera on; in the meeting it is off (never published)`);
        await u.close();
      }
      if (problems.length) process.stderr.write(`webclient: scenario 7: ${problems.join('; ')}\n`);
      assert.deepEqual(problems, [], 'what the pre-join screen shows as on is published');
    },
    {},
  );
});
