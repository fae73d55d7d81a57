// End-to-end tests of Enclave's web client, what hosts do to others: end the meeting for all,
// remove and block someone, admit or decline guests from the waiting room, lock cameras. Same
// setting as calls.test.mjs (see README.md).

import { describe } from 'node:test';
import assert from 'node:assert/strict';

import { tid } from './browser.mjs';
import { allSeeAndHear, rand, waitStatus, webclientSuite } from './scenario.mjs';

let server; // the normal binary
let chrome; // { browser, pid, version, close }
const ctx = webclientSuite('webclient/moderation', (c) => ({ server, chrome } = c));
const { scenario } = ctx;

describe('web client against enclave', () => {
  scenario('6. admin ends an E2EE meeting: everyone sees the ended page; no recording/RTMP controls', async ({ log, user }) => {
    const room = `end-${rand()}`;
    await server.createRoom(room, 'server_key');
    const ann = user(server, { room, id: 'ann', name: 'Ann', admin: true });
    const bob = user(server, { room, id: 'bob', name: 'Bob' });
    const cat = user(server, { room, id: 'cat', name: 'Cat', admin: true });
    await Promise.all([ann, bob, cat].map((u) => u.enter(chrome.browser)));
    await ann.page.waitForSelector(`${tid('remote-tile')}[data-identity="bob"]`);
    for (const u of [ann, bob, cat]) {
      for (const id of ['record-button', 'rtmp-button']) {
        assert.equal(await u.page.locator(tid(id)).count(), 0, `${u.id}: ${id} absent from the DOM of an E2EE room`);
      }
    }
    assert.equal(await ann.page.locator(tid('end-meeting-button')).count(), 1, 'the host has end-meeting-button');
    assert.equal(await bob.page.locator(tid('end-meeting-button')).count(), 0, 'a participant has no end-meeting-button');
    await ann.page.click(tid('end-meeting-button'));
    await ann.page.click(tid('confirm-ok'));
    await Promise.all([ann, bob, cat].map((u) => u.page.waitForSelector(tid('ended-page'), { timeout: 10_000 })));
    for (const u of [ann, bob, cat]) {
      const [title, reason] = await Promise.all([u.page.textContent(tid('page-title')), u.page.getAttribute(tid('ended-page'), 'data-reason')]);
      log.add('driver', `${u.id} ended page: "${title}" reason=${reason}`);
      assert.equal(await u.page.locator(tid('meeting')).count(), 0, `${u.id}: the meeting is gone`);
    }
    assert.equal(await bob.page.textContent(tid('page-title')), 'The meeting has ended');
    assert.equal(await cat.page.textContent(tid('page-title')), 'The meeting has ended');
    const active = await server.auth('/room/isRoomActive', { room_id: room });
    assert.equal(active.is_active, false, 'the room is no longer active');
  });

  scenario('8. a host removes and blocks a participant: removed page, the link no longer admits them, no new token for them', async ({ log, user }) => {
    const room = `ban-${rand()}`;
    await server.createRoom(room, 'server_key');
    const ann = user(server, { room, id: 'ann', name: 'Ann', admin: true });
    const bob = user(server, { room, id: 'bob', name: 'Bob' });
    await Promise.all([ann, bob].map((u) => u.enter(chrome.browser)));
    await ann.page.waitForSelector(`${tid('remote-tile')}[data-identity="bob"]`);
    await ann.page.click(tid('participants-toggle'));
    await ann.page.click(`${tid('participant-item')}[data-identity="bob"] ${tid('admin-remove')}`);
    await ann.page.check(tid('remove-block-checkbox'));
    await ann.page.click(tid('confirm-ok'));
    await bob.page.waitForSelector(tid('ended-page'), { timeout: 10_000 });
    assert.equal(await bob.page.textContent(tid('page-title')), 'You were removed from the meeting');
    await ann.page.waitForSelector(`${tid('remote-tile')}[data-identity="bob"]`, { state: 'detached', timeout: 10_000 });
    // The same join link again: the blocked page, and no media token or key reached the page.
    let replied = null;
    bob.page.on('response', (r) => {
      if (r.url().includes('/api/verifyToken')) replied = r.text().catch(() => '');
    });
    // (The client takes the token out of the address bar, so a reload alone would carry none.)
    await bob.page.goto(`${server.base}/?access_token=${bob.token}`);
    await bob.page.waitForSelector(tid('error-page'));
    assert.equal(await bob.page.getAttribute(tid('error-page'), 'data-error'), 'notifications.you-are-blocked');
    assert.equal(await bob.page.textContent(tid('page-title')), 'You cannot rejoin this meeting');
    const body = String(await replied);
    assert.ok(!body.includes('"secret"') && !body.includes('"token"'), `verifyToken after the block: ${body}`);
    // The integrator cannot issue a new link for bob in this session.
    const refused = await server.auth('/room/getJoinToken', { room_id: room, user_info: { user_id: 'bob', name: 'Bob', is_admin: false } }).then(
      (r) => `issued: ${JSON.stringify(r)}`,
      (e) => String(e.message),
    );
    log.add('driver', `getJoinToken for the blocked user: ${refused}`);
    assert.ok(refused.includes('USER_BLOCKED') && !refused.startsWith('issued'), refused);
  });

  scenario('9. waiting room: guests wait without the key until a host admits one (who then joins encrypted) and declines the other', async ({ log, user }) => {
    const room = `wait-${rand()}`;
    await server.createRoom(room, 'server_key', { waiting_room_features: { is_active: true, waiting_room_msg: 'Class starts at nine.' } });
    const ann = user(server, { room, id: 'ann', name: 'Ann', admin: true });
    await ann.enter(chrome.browser);
    const bob = user(server, { room, id: 'bob', name: 'Bob' });
    const eve = user(server, { room, id: 'eve', name: 'Eve' });
    await Promise.all([bob, eve].map((u) => u.open(chrome.browser, { until: tid('waiting-page') })));
    assert.equal(await bob.page.textContent(tid('waiting-message')), 'Class starts at nine.');
    const held = await bob.verifyTokenReply;
    assert.equal(held?.waiting, true, JSON.stringify(held));
    assert.ok(!('e2ee' in held) && !('media' in held), `a waiting guest's verifyToken carries no key or media token: ${JSON.stringify(held)}`);

    // The host is told, and lists both.
    await ann.page.waitForSelector(`${tid('waiting-badge')}:not([hidden])`, { timeout: 10_000 });
    await ann.page.click(tid('participants-toggle'));
    for (const id of ['bob', 'eve']) await ann.page.waitForSelector(`${tid('waiting-list')} ${tid('waiting-item')}[data-identity="${id}"]`);
    // Nobody got in on their own meanwhile.
    assert.equal(await bob.page.isVisible(tid('waiting-page')), true);
    assert.equal(await ann.page.locator(tid('remote-tile')).count(), 0);

    await ann.page.click(`${tid('waiting-item')}[data-identity="eve"] ${tid('waiting-reject-button')}`);
    await eve.page.waitForSelector(`${tid('error-page')}[data-error="waiting-rejected"]`, { timeout: 10_000 });
    assert.equal(await eve.page.textContent(tid('page-title')), 'The host did not let you in');

    await ann.page.click(`${tid('waiting-item')}[data-identity="bob"] ${tid('waiting-approve-button')}`);
    await bob.page.waitForSelector(tid('prejoin'), { timeout: 10_000 }); // moved on by itself
    await bob.join();
    await allSeeAndHear([ann, bob], log);
    await waitStatus(bob, 'encrypted');
    assert.equal(await bob.code(), await ann.code(), 'the admitted guest has the session key');
    await ann.page.waitForSelector(tid('waiting-list'), { state: 'hidden' });
    assert.equal(await eve.page.isVisible(tid('meeting')), false);
  });

  scenario('10. a host locks cameras for everyone: the server takes a participant’s camera down, their control follows, unlocking lets it back', async ({ log, user }) => {
    const room = `lock-${rand()}`;
    await server.createRoom(room, 'server_key');
    const ann = user(server, { room, id: 'ann', name: 'Ann', admin: true });
    const bob = user(server, { room, id: 'bob', name: 'Bob' });
    await Promise.all([ann, bob].map((u) => u.enter(chrome.browser)));
    const bobTile = `${tid('remote-tile')}[data-identity="bob"]`;
    await ann.page.waitForSelector(`${bobTile}[data-video="on"]`, { timeout: 15_000 });

    await ann.page.click(tid('participants-toggle'));
    await ann.page.check(tid('lock-webcams-all'));
    await bob.page.waitForSelector(`${tid('camera-toggle')}[data-locked="true"]`, { timeout: 5000 });
    assert.equal(await bob.page.isDisabled(tid('camera-toggle')), true, 'bob can no longer turn his camera on');
    await ann.page.waitForSelector(`${bobTile}[data-video="off"]`, { timeout: 5000 });
    log.add('driver', 'bob’s camera went off at ann after the lock');
    // Hosts are never locked; bob's microphone is untouched.
    assert.notEqual(await ann.page.getAttribute(tid('camera-toggle'), 'data-locked'), 'true');
    assert.equal(await bob.page.isDisabled(tid('mic-toggle')), false);

    await ann.page.uncheck(tid('lock-webcams-all'));
    await bob.page.waitForSelector(`${tid('camera-toggle')}[data-locked="false"]:not([disabled])`, { timeout: 5000 });
    await bob.page.click(tid('camera-toggle'));
    await ann.page.waitForSelector(`${bobTile}[data-video="on"]`, { timeout: 15_000 });

    // The chat lock: bob's input is disabled, and a message sent anyway (the page modified to
    // re-enable it) is dropped by the server; after the unlock his messages arrive again.
    await ann.page.check(tid('lock-chat-all'));
    await bob.openChat();
    await bob.page.waitForSelector(`${tid('chat-input')}:disabled`, { timeout: 5000 });
    await bob.page.evaluate(() => {
      for (const id of ['chat-input', 'chat-send']) document.querySelector(`[data-testid="${id}"]`).disabled = false;
    });
    await bob.page.fill(tid('chat-input'), 'sneaked past the lock');
    await bob.page.click(tid('chat-send'));
    await ann.page.uncheck(tid('lock-chat-all'));
    await bob.page.waitForSelector(`${tid('chat-input')}:enabled`, { timeout: 5000 });
    await bob.say('after the unlock');
    await ann.sees('bob', 'after the unlock');
    const sneaked = await ann.page.evaluate(() => [...document.querySelectorAll('[data-testid="chat-message"]')].some((m) => m.textContent.includes('sneaked past the lock')));
    assert.equal(sneaked, false, 'a chat message sent while locked reached ann');

    // One participant's microphone, from their entry in People: the button shows the lock
    // state the server announces.
    await ann.page.click(tid('participants-toggle'));
    const lockMic = `${tid('participant-item')}[data-identity="bob"] ${tid('admin-lock-mic')}`;
    await ann.page.click(lockMic);
    await bob.page.waitForSelector(`${tid('mic-toggle')}[data-locked="true"]`, { timeout: 5000 });
    await ann.page.waitForSelector(`${lockMic}[aria-pressed="true"]`, { timeout: 5000 });
    await ann.page.click(lockMic);
    await bob.page.waitForSelector(`${tid('mic-toggle')}[data-locked="false"]`, { timeout: 5000 });
  });
});
