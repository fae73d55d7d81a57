// End-to-end tests of Enclave's web client, the meeting tools: raised hands, presenter and
// reactions, polls, private chat, breakout rooms, and the client embedded in another site's page.
// Same setting as calls.test.mjs (see README.md).

import { describe } from 'node:test';
import assert from 'node:assert/strict';

import http from 'node:http';

import { waitFor } from '@enclave-tests/lib';

import { tid } from './browser.mjs';
import { findIn, needles } from './ciphertext.mjs';
import { allChat, allSeeAndHear, rand, shot, waitStatus, webclientSuite } from './scenario.mjs';

let server; // the normal binary
let chrome; // { browser, pid, version, close }
const ctx = webclientSuite('webclient/meeting-tools', (c) => ({ server, chrome } = c));
const { scenario } = ctx;

describe('web client against enclave', () => {
  scenario('15. raised hands, presenter and reactions: a participant raises theirs, everyone sees it, the host sees the queue in order and lowers one, then all; a reaction shows on the sender’s tile for everyone', async ({ log, user }) => {
    const room = `hand-${rand()}`;
    await server.createRoom(room, 'server_key');
    const ann = user(server, { room, id: 'ann', name: 'Ann', admin: true });
    const bob = user(server, { room, id: 'bob', name: 'Bob' });
    const cat = user(server, { room, id: 'cat', name: 'Cat' });
    await Promise.all([ann, bob, cat].map((u) => u.enter(chrome.browser)));
    const handOn = (u, id) => `${tid(u === id ? 'local-tile' : 'remote-tile')}[data-identity="${id}"][data-hand="true"]`;
    await bob.page.click(tid('raise-hand-button'));
    await bob.page.waitForSelector(`${tid('raise-hand-button')}[aria-pressed="true"]`);
    for (const u of [ann, cat]) await u.page.waitForSelector(handOn(null, 'bob'), { timeout: 5000 });
    await ann.page.waitForSelector(`${tid('remote-tile')}[data-identity="bob"] ${tid('hand-raised-indicator')}`, { state: 'visible' });
    await bob.page.waitForSelector(handOn('bob', 'bob'));
    await cat.page.click(tid('raise-hand-button'));
    await ann.page.waitForSelector(handOn(null, 'cat'), { timeout: 5000 });
    // The host's queue, in the order the hands went up.
    await ann.page.click(tid('participants-toggle'));
    // The first host presents; she hands it to bob, and everyone sees who presents.
    await bob.page.waitForSelector(`${tid('remote-tile')}[data-identity="ann"][data-presenter="true"]`, { timeout: 5000 });
    await ann.page.click(`${tid('participant-item')}[data-identity="bob"] ${tid('make-presenter-button')}`);
    await cat.page.waitForSelector(`${tid('remote-tile')}[data-identity="bob"][data-presenter="true"]`, { timeout: 5000 });
    await cat.page.waitForSelector(`${tid('remote-tile')}[data-identity="ann"][data-presenter="false"]`, { timeout: 5000 });
    await ann.page.waitForSelector(tid('hand-queue'), { state: 'visible' });
    assert.match(await ann.page.textContent(tid('hand-queue')), /2 raised hands: Bob, Cat/);
    const order = await ann.page.$$eval(`${tid('participant-item')}`, (els) => els.map((e) => e.dataset.identity));
    assert.deepEqual(order.slice(0, 2), ['bob', 'cat'], `raised hands first, in order: ${order}`);
    await shot(ann, 'hands-queue');
    // The host lowers one hand, then all (the server refuses that to anyone else:
    // browser_api::hands_are_raised_by_their_owner_and_lowered_by_them_or_an_admin).
    await ann.page.click(`${tid('participant-item')}[data-identity="bob"] ${tid('lower-hand-button')}`);
    await bob.page.waitForSelector(`${tid('raise-hand-button')}[aria-pressed="false"]`, { timeout: 5000 });
    await ann.page.waitForSelector(`${tid('remote-tile')}[data-identity="bob"][data-hand="false"]`);
    await ann.page.click(tid('lower-all-hands-button'));
    await cat.page.waitForSelector(`${tid('raise-hand-button')}[aria-pressed="false"]`, { timeout: 5000 });
    await ann.page.waitForSelector(tid('hand-queue'), { state: 'hidden' });
    log.add('driver', 'hands: raised by bob and cat, queue in order, lowered by the host');

    // Reactions: sealed like chat, shown over the sender's tile for everyone.
    await bob.page.click(tid('reaction-button'));
    await bob.page.click(tid('reaction-clap'));
    for (const u of [ann, cat]) {
      await u.page.waitForSelector(`${tid('remote-tile')}[data-identity="bob"] ${tid('reaction-bubble')}[data-reaction="clap"]`, { state: 'attached', timeout: 5000 });
    }
    await bob.page.waitForSelector(`${tid('local-tile')} ${tid('reaction-bubble')}[data-reaction="clap"]`, { state: 'attached' });
  });

  /** Opens the polls panel (the button shows for participants once there is a poll). */
  const openPolls = async (u) => {
    if (await u.page.isVisible(tid('polls-panel'))) return;
    await u.page.click(tid('polls-toggle'), { timeout: 10_000 });
    await u.page.waitForSelector(tid('polls-panel'), { state: 'visible' });
  };
  /** A download's bytes (the browser is driven over CDP: no local path). */
  const readDownload = async (d) => {
    const chunks = [];
    for await (const c of await d.createReadStream()) chunks.push(c);
    return Buffer.concat(chunks).toString('utf8');
  };
  const pollOf = (question) => `${tid('poll')}:has(${tid('poll-question')}:text-is("${question}"))`;

  scenario('17a. polls in a server-key room: a host asks, two answer once, results at close; a late joiner reads the question; the server holds only ciphertext, and the session’s analytics hold no text', async ({ log, user }) => {
    const room = `poll-${rand()}`;
    await server.createRoom(room, 'server_key');
    const ann = user(server, { room, id: 'ann', name: 'Ann', admin: true });
    const bob = user(server, { room, id: 'bob', name: 'Bob' });
    const cat = user(server, { room, id: 'cat', name: 'Cat' });
    await Promise.all([ann, bob, cat].map((u) => u.enter(chrome.browser)));
    const tag = rand();
    const question = `Which day works ${tag}?`;
    await openPolls(ann);
    await ann.page.click(tid('poll-create-button'));
    await ann.page.fill(tid('poll-question-input'), question);
    const inputs = await ann.page.$$(tid('poll-option-input'));
    await inputs[0].fill(`Monday ${tag}`);
    await inputs[1].fill(`Tuesday ${tag}`);
    await shot(ann, 'poll-create');
    await ann.page.click(tid('poll-submit'));
    await ann.page.waitForSelector(pollOf(question));
    for (const [u, option] of [[bob, 2], [cat, 1]]) {
      await openPolls(u);
      await u.page.click(`${pollOf(question)} ${tid('poll-vote-option')}[data-option-id="${option}"]`);
    }
    await bob.page.waitForSelector(`${pollOf(question)} ${tid('poll-my-vote')}:has-text("You chose: Tuesday ${tag}")`);
    assert.equal(await bob.page.isVisible(`${pollOf(question)} ${tid('poll-vote-option')}`), false, 'one vote: the choices are gone');
    assert.equal(await bob.page.isVisible(`${pollOf(question)} ${tid('poll-results')}`), false, 'no results for participants while it runs');
    // Hosts follow the count as it runs, then close the poll.
    await ann.page.waitForSelector(`${pollOf(question)} ${tid('poll-total')}:text-is("2 responses")`, { timeout: 5000 });
    await ann.page.click(`${pollOf(question)} ${tid('poll-close-button')}`);
    for (const u of [bob, cat]) {
      await u.page.waitForSelector(`${pollOf(question)}[data-running="false"] ${tid('poll-results')} [data-option-id="2"][data-votes="1"]`, { timeout: 5000 });
    }
    log.add('driver', 'poll: asked, answered by bob and cat, closed; results shown');
    await shot(bob, 'poll-results-encrypted');

    // A late joiner (a new key epoch) reads the question and the results: the content key.
    const dan = user(server, { room, id: 'dan', name: 'Dan' });
    await dan.enter(chrome.browser);
    await openPolls(dan);
    await dan.page.waitForSelector(`${pollOf(question)} ${tid('poll-results')} [data-option-id="1"][data-votes="1"]`, { timeout: 5000 });

    // The export (in the host's browser, where the texts are open).
    const [download] = await Promise.all([ann.page.waitForEvent('download'), ann.page.click(`${pollOf(question)} ${tid('poll-export')}`)]);
    const csv = await readDownload(download);
    assert.ok(csv.includes(question) && csv.includes(`"Bob","Tuesday ${tag}"`), csv);

    // What the server holds and hands out: sealed texts only, and nothing of them in its output.
    const res = await fetch(`${server.base}/api/polls/listPolls`, { headers: { Authorization: dan.token } });
    const body = Buffer.from(await res.arrayBuffer());
    const stored = JSON.parse(body.toString());
    assert.equal(stored.polls[0].is_sealed, true);
    assert.deepEqual(findIn(body, needles(tag)), [], 'no poll text in what the server stores');
    assert.deepEqual(findIn(Buffer.from(server.output()), needles(tag)), [], 'no poll text in the server output');

    // A chat message, sealed like everything else; then the host ends the meeting and the
    // integrator reads the session's analytics: counts, times and choices, no text.
    await bob.say(`chat ${tag}`);
    await ann.sees('bob', `chat ${tag}`);
    await ann.page.click(tid('end-meeting-button'));
    await ann.page.click(tid('confirm-ok'));
    await ann.page.waitForSelector(tid('ended-page'), { timeout: 10_000 });
    const list = await server.auth('/analytics/fetch', { room_ids: [room] });
    const { token } = await server.auth('/analytics/getDownloadToken', { file_id: list.result.analytics_list[0].file_id });
    const file = Buffer.from(await (await fetch(`${server.base}/download/analytics/${token}`)).arrayBuffer());
    assert.deepEqual(findIn(file, needles(tag)), [], 'no chat or poll text in the analytics');
    const analytics = JSON.parse(file.toString());
    assert.equal(analytics.room.enabled_e2ee, true);
    const events = (id) => Object.fromEntries(analytics.users.find((u) => u.user_id === id).events.map((e) => [e.name, e]));
    assert.equal(events('bob').public_chat?.total, 1, JSON.stringify(events('bob')));
    assert.equal(JSON.parse(events('bob').voted_poll.values[0].value).selected_option, 2);
    assert.equal(analytics.users.length, 4, 'ann, bob, cat and dan attended');
    log.add('driver', `analytics: ${file.length} bytes, no text of the room in them`);
  });

  scenario('17b. polls in a plain room: a live anonymous poll shows the count to everyone as it runs', async ({ user }) => {
    const room = `pollp-${rand()}`;
    await server.createRoom(room, 'off');
    const ann = user(server, { room, id: 'ann', name: 'Ann', admin: true });
    const bob = user(server, { room, id: 'bob', name: 'Bob' });
    await Promise.all([ann, bob].map((u) => u.enter(chrome.browser)));
    const question = `Coffee or tea ${rand()}?`;
    await openPolls(ann);
    await ann.page.click(tid('poll-create-button'));
    await ann.page.fill(tid('poll-question-input'), question);
    const inputs = await ann.page.$$(tid('poll-option-input'));
    await inputs[0].fill('Coffee');
    await inputs[1].fill('Tea');
    await ann.page.check(tid('poll-anonymous'));
    await ann.page.check(tid('poll-live-results'));
    await ann.page.click(tid('poll-submit'));
    await bob.page.waitForSelector(`${tid('polls-unanswered')}:text-is("1")`, { timeout: 5000 });
    await openPolls(bob);
    await bob.page.click(`${pollOf(question)} ${tid('poll-vote-option')}[data-option-id="2"]`);
    // Live: the count is there for everyone before the poll closes.
    for (const u of [ann, bob]) {
      await u.page.waitForSelector(`${pollOf(question)}[data-running="true"] ${tid('poll-results')} [data-option-id="2"][data-votes="1"]`, { timeout: 5000 });
    }
    // Anonymous: the host's export has the counts and no names.
    const [download] = await Promise.all([ann.page.waitForEvent('download'), ann.page.click(`${pollOf(question)} ${tid('poll-export')}`)]);
    const csv = await readDownload(download);
    assert.ok(csv.includes('"Tea","1","100%"') && !csv.includes('Bob'), csv);
  });

  scenario('18. embedded in another site’s page as an LMS plugin builds it (getClientFiles, #plugNmeet-app, plugNmeetConfig.serverUrl): an encrypted meeting with someone on the server’s own page', async ({ log, user }) => {
    const files = await server.auth('/getClientFiles', {});
    assert.deepEqual([files.js, files.css], [['app.js'], ['app.css']], JSON.stringify(files));
    // The LMS: another origin (another port) serving the page an LMS plugin builds from the
    // lists: the styles, the scripts (deferred), the server's URL, a mount element.
    const assets = `${server.base}/assets`;
    const page = [
      '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Course 101</title>',
      ...files.css.map((f) => `<link href="${assets}/css/${f}" rel="stylesheet" />`),
      ...files.js.map((f) => `<script src="${assets}/js/${f}" defer="defer"></script>`),
      `<script>window.plugNmeetConfig = ${JSON.stringify({ serverUrl: server.base, staticAssetsPath: assets })};</script>`,
      '</head><body><div id="plugNmeet-app"></div></body></html>',
    ].join('\n');
    const lms = http.createServer((req, res) => {
      res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' });
      res.end(page);
    });
    await new Promise((ok) => lms.listen(0, '127.0.0.1', ok));
    const lmsBase = `http://127.0.0.1:${lms.address().port}`;
    try {
      const room = `lms-${rand()}`;
      await server.createRoom(room, 'server_key');
      const ann = user(server, { room, id: 'ann', name: 'Ann', admin: true });
      // Bob opens the LMS page (its own origin) with his join token in its URL.
      const lmsEnv = { base: lmsBase, joinToken: (...a) => server.joinToken(...a) };
      const bob = user(lmsEnv, { room, id: 'bob', name: 'Bob' });
      await Promise.all([ann, bob].map((u) => u.enter(chrome.browser)));
      assert.equal(new URL(bob.page.url()).origin, lmsBase, 'bob is on the LMS page');
      assert.equal(await bob.page.locator(`#plugNmeet-app ${tid('meeting')}`).count(), 1, 'mounted in the LMS element');
      await allSeeAndHear([ann, bob], log);
      for (const u of [ann, bob]) await waitStatus(u, 'encrypted');
      await waitFor(5000, 'the same verification code', () => Promise.all([ann.code(), bob.code()]), ([a, b]) => a === b, (cs) => cs.join(', '));
      await allChat([ann, bob], rand());
    } finally {
      lms.closeAllConnections();
      await new Promise((ok) => lms.close(ok));
    }
  });

  scenario('19. breakout rooms in a server-key room: a host sends a guest to a room of its own (new session, new keys) and one click takes the guest there and back, again, and back from the ended page when the host ends the rooms', async ({ log, user }) => {
    const room = `bko-${rand()}`;
    await server.createRoom(room, 'server_key');
    const ann = user(server, { room, id: 'ann', name: 'Ann', admin: true });
    const bob = user(server, { room, id: 'bob', name: 'Bob' });
    await Promise.all([ann, bob].map((u) => u.enter(chrome.browser)));
    const mainCode = await waitFor(5000, 'one code in the main room', () => Promise.all([ann.code(), bob.code()]), ([a, b]) => a === b, (cs) => cs.join(', ')).then((cs) => cs[0]);
    // The host plans one room for bob.
    await ann.page.click(tid('breakout-toggle'));
    await ann.page.click(tid('breakout-create-button'));
    await ann.page.fill(tid('breakout-room-count'), '1');
    await ann.page.dispatchEvent(tid('breakout-room-count'), 'change');
    await ann.page.selectOption(`${tid('breakout-assign')}[data-identity="bob"]`, '1');
    await ann.page.click(tid('breakout-start'));
    await ann.page.waitForSelector(`${tid('breakout-room')}[data-room-id="${room}-1"]`);
    await shot(ann, 'breakout-host-panel');
    // Bob is invited; one click takes him there (a new page: pre-join, then the room).
    // One click: the next page joins by itself (no second click on its pre-join screen). The
    // page title names the room, so the old page is never taken for the new one.
    const connectedIn = (u, title) =>
      u.page.waitForFunction(
        (t) => document.title.startsWith(`${t} ·`) && !!document.querySelector('[data-testid="meeting"] [data-testid="connection-state"][data-state="connected"]'),
        title,
        { timeout: 25_000 },
      );
    const joinBreakout = async () => {
      await bob.page.click(`${tid('breakout-banner')} ${tid('breakout-join-button')}`, { timeout: 10_000 });
      await connectedIn(bob, 'Room 1');
      await bob.page.waitForSelector(`${tid('breakout-banner')} ${tid('breakout-return-button')}`);
      await waitStatus(bob, 'encrypted');
      const code = await bob.code();
      assert.notEqual(code, mainCode, 'a session of its own has keys of its own');
      assert.match(await bob.page.textContent(tid('breakout-banner-text')), /Breakout room “Room 1”\. Time left: \d+:\d\d/);
    };
    const backInMain = async () => {
      await connectedIn(bob, `Room ${room}`);
      await ann.page.waitForSelector(`${tid('remote-tile')}[data-identity="bob"]`, { timeout: 10_000 });
      await waitFor(5000, 'one code in the main room again', () => Promise.all([ann.code(), bob.code()]), ([a, b]) => a === b, (cs) => cs.join(', '));
    };
    await joinBreakout();
    await ann.page.waitForSelector(`${tid('remote-tile')}[data-identity="bob"]`, { state: 'detached', timeout: 10_000 });
    log.add('driver', 'bob is in breakout room 1');
    await shot(bob, 'breakout-room-inside');
    await bob.page.click(`${tid('breakout-banner')} ${tid('breakout-return-button')}`);
    await backInMain();
    log.add('driver', 'bob is back in the main room');
    // Still assigned: the invitation is there after the reload; he goes again, and the host
    // ends the rooms: the ended page leads back.
    await joinBreakout();
    await ann.page.click(tid('breakout-end-all'));
    await bob.page.waitForSelector(tid('ended-page'), { timeout: 10_000 });
    await bob.page.click(tid('breakout-return-button'));
    await backInMain();
    assert.equal(await bob.page.locator(tid('breakout-banner')).isVisible(), false, 'no invitation once the rooms ended');
  });

  scenario('19b. breakout rooms in a plain room: people dealt at random into two rooms, a host’s message reaches every room, a host joins one', async ({ log, user }) => {
    const room = `bkp-${rand()}`;
    await server.createRoom(room, 'off');
    const ann = user(server, { room, id: 'ann', name: 'Ann', admin: true });
    const bob = user(server, { room, id: 'bob', name: 'Bob' });
    const cat = user(server, { room, id: 'cat', name: 'Cat' });
    await Promise.all([ann, bob, cat].map((u) => u.enter(chrome.browser)));
    await ann.page.waitForSelector(`${tid('remote-tile')}[data-identity="cat"]`);
    await ann.page.click(tid('breakout-toggle'));
    await ann.page.click(tid('breakout-create-button'));
    await ann.page.click(tid('breakout-assign-random'));
    const dealt = await ann.page.$$eval(tid('breakout-assign'), (els) => Object.fromEntries(els.map((e) => [e.dataset.identity, e.value])));
    assert.deepEqual([dealt.ann, [dealt.bob, dealt.cat].sort().join()], ['0', '1,2'], `hosts stay, guests split: ${JSON.stringify(dealt)}`);
    await ann.page.click(tid('breakout-start'));
    for (const u of [bob, cat]) {
      await u.page.click(`${tid('breakout-banner')} ${tid('breakout-join-button')}`, { timeout: 10_000 });
      await u.page.waitForSelector(`${tid('breakout-banner')} ${tid('breakout-return-button')}`, { timeout: 25_000 });
    }
    // In different rooms: neither sees the other.
    assert.equal(await bob.page.locator(`${tid('remote-tile')}[data-identity="cat"]`).count(), 0);
    const text = `five minutes left ${rand()}`;
    await ann.page.fill(tid('breakout-message-input'), text);
    await ann.page.click(tid('breakout-message-send'));
    for (const u of [bob, cat]) {
      await u.openChat();
      await u.page.waitForFunction((t) => [...document.querySelectorAll('[data-testid="chat-message"]')].some((m) => m.textContent.includes(t)), text, { timeout: 10_000 });
    }
    log.add('driver', 'the host’s message reached both breakout rooms');
    // The host joins bob's room and sees him there.
    const bobsRoom = `${room}-${dealt.bob}`;
    await ann.page.click(`${tid('breakout-room')}[data-room-id="${bobsRoom}"] ${tid('breakout-join-button')}`);
    await ann.page.waitForSelector(`${tid('remote-tile')}[data-identity="bob"]`, { timeout: 10_000 });
  });

  scenario('16. private chat in an encrypted room: only the recipient reads it, the hosts can be written to, and a host’s private-chat lock leaves only the public chat', async ({ log, user }) => {
    const room = `priv-${rand()}`;
    await server.createRoom(room, 'server_key');
    const ann = user(server, { room, id: 'ann', name: 'Ann', admin: true });
    const bob = user(server, { room, id: 'bob', name: 'Bob' });
    const cat = user(server, { room, id: 'cat', name: 'Cat' });
    await Promise.all([ann, bob, cat].map((u) => u.enter(chrome.browser)));
    for (const u of [ann, bob, cat]) await u.openChat();
    const tag = rand();
    const sendTo = async (u, value, text) => {
      await u.page.waitForSelector(`${tid('private-chat-select')} option[value="${value}"]`, { state: 'attached', timeout: 10_000 });
      await u.page.selectOption(tid('private-chat-select'), value);
      await u.say(text);
    };
    await sendTo(bob, 'ann', `psst ${tag}`);
    await ann.sees('bob', `psst ${tag}`);
    const privateAt = (u, text) =>
      u.page.evaluate((t) => {
        const m = [...document.querySelectorAll('[data-testid="chat-message"]')].find((x) => x.textContent.includes(t));
        return m ? { private: m.dataset.private, label: m.querySelector('[data-testid="chat-private-label"]')?.textContent ?? '' } : null;
      }, text);
    assert.deepEqual(await privateAt(ann, `psst ${tag}`), { private: 'true', label: 'Private · to you' });
    assert.deepEqual(await privateAt(bob, `psst ${tag}`), { private: 'true', label: 'Private · to Ann' });
    // Then a public message: once cat has it, the private one had every chance to arrive.
    await sendTo(bob, '', `public ${tag}`);
    await cat.sees('bob', `public ${tag}`);
    assert.equal(await privateAt(cat, `psst ${tag}`), null, 'cat never sees a message to ann');
    // To the hosts.
    await sendTo(cat, '@hosts', `to the hosts ${tag}`);
    await ann.sees('cat', `to the hosts ${tag}`);
    assert.equal((await privateAt(ann, `to the hosts ${tag}`)).label, 'Private · to the hosts');
    // The host locks private chat for everyone: only "Everyone" is left to bob (the server
    // drops private messages from him: sfu::permissions, rooms::locks).
    await ann.page.click(tid('participants-toggle'));
    await ann.page.check(tid('lock-private-chat-all'));
    await bob.page.waitForFunction(() => document.querySelectorAll('[data-testid="private-chat-select"] option').length === 1, null, { timeout: 5000 });
    await bob.say(`still public ${tag}`);
    await ann.sees('bob', `still public ${tag}`);
    log.add('driver', 'private chat: to ann only, to the hosts, and locked');
  });
});
