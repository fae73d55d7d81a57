// End-to-end tests of the shared notepad (web/src/notepad/, docs/content.md): real keyboard
// input into `notepad-editor` in headless Chromium against the real server.
//
// N1/N2. Plain, server-key and passphrase (N2b) E2EE rooms: two people type at the same time, three end with
//        the same text containing both (read through the Markdown export), and a late joiner
//        reads it.
// N3.    A participant the notes are locked for cannot edit (read-only editor, nothing of what
//        they type reaches the others); unlocked through the API, they can, live. The host
//        clears the notes: empty everywhere, and writing goes on from there.
// N5.    Past 200 updates the log is compacted (the server holds a snapshot), and a late
//        joiner reads the notes from it.
// N4.    Tap build, server-key room: the typed note text is in nothing the server received
//        (HTTP bodies), relayed (the tap: data packets) or stored (its data dir), nor in its
//        output. Controls: the search finds the text where it is in clear (a plain room's
//        append), and the notepad's requests and data packets were recorded.
//
// Rooms are created with `default_lock_settings.lock_shared_notepad` false: by Plug-N-Meet's
// defaults participants who are not admins join with the notepad locked.

import { after, before, describe } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

import { waitFor } from '@enclave-tests/lib';

import { tid } from './browser.mjs';
import { findIn, needles, readTap } from './ciphertext.mjs';
import { KEEP, rand, shot, webclientSuite } from './scenario.mjs';
import { Enclave, TAP_BIN, filesUnder } from './server.mjs';

let chrome;
let server;
const ctx = webclientSuite('webclient/notepad', (c) => ({ chrome, server } = c));
const { scenario } = ctx;

/** A room as an integration creates it, with the notepad unlocked (or locked) for participants. */
function createRoom(env, roomId, mode, { notepadLocked = false } = {}) {
  return env.createRoom(roomId, mode, { shared_note_pad_features: { is_allow: true } }, { default_lock_settings: { lock_shared_notepad: notepadLocked } });
}

/** Opens the notes panel and waits until the editor is loaded. */
async function openNotes(u) {
  await u.page.click(tid('notepad-toggle'));
  await u.page.waitForSelector(`${tid('notepad-panel')}[data-state="ready"] ${tid('notepad-editor')}`, { timeout: 15_000 });
}

/** Types `text` with the keyboard at the end of the notes (a key event per character). */
async function typeNotes(u, text, delay = 25) {
  await u.page.click(tid('notepad-editor'));
  await u.page.keyboard.press('Control+End');
  await u.page.keyboard.type(text, { delay });
}

/** The notes as the Markdown export gives them (the shared text itself, no cursor labels). */
async function exported(u) {
  const [download] = await Promise.all([u.page.waitForEvent('download', { timeout: 10_000 }), u.page.click(tid('notepad-export-md'))]);
  assert.equal(download.suggestedFilename(), 'notes.md');
  // The browser runs as a server of its own: the file comes over the connection.
  const chunks = [];
  for await (const c of await download.createReadStream()) chunks.push(c);
  return Buffer.concat(chunks).toString('utf8');
}

/** Waits until the editor of `u` shows every one of `parts`. */
async function showsAll(u, parts, timeout = 15_000) {
  await u.page.waitForFunction(
    (ps) => {
      const t = document.querySelector('[data-testid="notepad-editor"]')?.textContent ?? '';
      return ps.every((p) => t.includes(p));
    },
    parts,
    { timeout },
  );
}

/** N1/N2 and N4: ann and bob type at once, cat watches; all three export the same text; dan joins late. */
async function typeTogether(env, user, room, mode) {
  await createRoom(env, room, mode);
  // A passphrase room: everyone types the same passphrase.
  const key = mode === 'self_insert' ? `notes passphrase ${rand()}` : null;
  const ann = user(env, { room, id: 'ann', name: 'Ann', admin: true, key });
  const bob = user(env, { room, id: 'bob', name: 'Bob', key });
  const cat = user(env, { room, id: 'cat', name: 'Cat', key });
  await Promise.all([ann.enter(chrome.browser), bob.enter(chrome.browser), cat.enter(chrome.browser)]);
  await Promise.all([ann, bob, cat].map(openNotes));
  const tag = rand();
  const annText = `Ann writes the agenda ${tag}.`;
  const bobText = `Bob adds his points ${tag}.`;
  await Promise.all([typeNotes(ann, annText), typeNotes(bob, bobText)]);
  await Promise.all([ann, bob, cat].map((u) => showsAll(u, [annText, bobText])));
  // Everyone's last batch has gone out and come back: the same text everywhere.
  await sleep(500);
  const texts = await Promise.all([ann, bob, cat].map(exported));
  assert.ok(texts[0].includes(annText) && texts[0].includes(bobText), `both edits are in the notes: ${JSON.stringify(texts[0])}`);
  assert.equal(texts[1], texts[0], "bob's notes are ann's");
  assert.equal(texts[2], texts[0], "cat's notes are ann's");

  // Presence: ann sees bob and cat in the notes, by name.
  await ann.page.waitForSelector(`${tid('notepad-presence-user')}[data-identity="bob"]`, { timeout: 10_000 });
  await ann.page.waitForSelector(`${tid('notepad-presence-user')}[data-identity="cat"]`, { timeout: 10_000 });
  await shot(ann, `notepad-${mode === 'off' ? 'plain' : 'e2ee'}`);

  const dan = user(env, { room, id: 'dan', name: 'Dan', key });
  await dan.enter(chrome.browser);
  await openNotes(dan);
  await showsAll(dan, [annText, bobText]);
  assert.equal(await exported(dan), texts[0], 'the late joiner reads the same notes');
  return { ann, bob, cat, dan, annText, bobText, text: texts[0] };
}

scenario('N1. plain room: two type at once, three end with the same notes, a late joiner reads them; the print view shows them', async ({ user }) => {
  const { bob, text } = await typeTogether(server, user, `notes-plain-${rand()}`, 'off');
  // PDF is the browser's print dialog on a print view of the notes. Headless, the dialog would
  // block: window.print is replaced here by one that notes what the print view holds.
  await bob.page.evaluate(() => {
    window.print = () => {
      window.__printed = document.querySelector('[data-testid="notepad-print-view"]')?.textContent ?? null;
    };
  });
  await bob.page.click(tid('notepad-export-pdf'));
  const printed = await bob.page.evaluate(() => window.__printed);
  assert.equal(printed, `Notes${text}`, 'the print view holds the notes');
});

scenario('N2. E2EE room (server key): two type at once, three end with the same notes, a late joiner reads them', async ({ user }) => {
  const { ann } = await typeTogether(server, user, `notes-e2ee-${rand()}`, 'server_key');
  assert.equal(await ann.page.textContent(tid('e2ee-status')), 'encrypted');
});

scenario('N2b. E2EE room (passphrase): two type at once, three end with the same notes, a late joiner reads them', async ({ user }) => {
  const { ann, dan } = await typeTogether(server, user, `notes-pass-${rand()}`, 'self_insert');
  assert.equal(await ann.page.textContent(tid('e2ee-status')), 'encrypted');
  assert.equal(await dan.page.textContent(tid('e2ee-status')), 'encrypted');
});

scenario('N3. a participant the notes are locked for cannot edit; unlocked, they can; a host clears them', async ({ user }) => {
  const room = `notes-lock-${rand()}`;
  await createRoom(server, room, 'server_key', { notepadLocked: true });
  const ann = user(server, { room, id: 'ann', name: 'Ann', admin: true });
  const bob = user(server, { room, id: 'bob', name: 'Bob' });
  await Promise.all([ann.enter(chrome.browser), bob.enter(chrome.browser)]);
  await Promise.all([openNotes(ann), openNotes(bob)]);
  assert.equal(await bob.page.getAttribute(tid('notepad-panel'), 'data-locked'), 'true');
  assert.ok(await bob.page.isVisible(tid('notepad-locked')), 'bob is told the notes are locked');
  assert.equal(await bob.page.getAttribute(tid('notepad-editor'), 'contenteditable'), 'false', "bob's editor is read-only");
  assert.equal(await ann.page.getAttribute(tid('notepad-panel'), 'data-locked'), 'false', 'an admin is never locked');

  const tag = rand();
  await typeNotes(ann, `Only hosts write here ${tag}.`);
  await showsAll(bob, [`Only hosts write here ${tag}.`]);
  // Bob types anyway: nothing changes, here or at ann's.
  await typeNotes(bob, `bob was locked ${tag}`);
  await sleep(1500);
  const annSees = await exported(ann);
  assert.ok(!annSees.includes('bob was locked'), `nothing bob typed while locked reached ann: ${JSON.stringify(annSees)}`);
  assert.ok(!(await exported(bob)).includes('bob was locked'), "nor is it in bob's own notes");

  // Unlocked by the host through the API: bob's editor follows live.
  const r = await fetch(`${server.base}/api/updateLockSettings`, {
    method: 'POST',
    headers: { Authorization: ann.token, 'Content-Type': 'application/json' },
    body: JSON.stringify({ service: 'sharedNotepad', direction: 'unlock', user_id: 'bob' }),
  });
  assert.equal(r.status, 200, `unlock: HTTP ${r.status} ${await r.text()}`);
  await bob.page.waitForSelector(`${tid('notepad-panel')}[data-locked="false"]`, { timeout: 10_000 });
  assert.equal(await bob.page.getAttribute(tid('notepad-editor'), 'contenteditable'), 'true');
  await typeNotes(bob, ` Bob may write now ${tag}.`);
  await showsAll(ann, [`Bob may write now ${tag}.`]);

  // The host clears the notes: empty for both (bob has no Clear), and they go on from there.
  assert.equal(await bob.page.$(tid('notepad-clear')), null, 'only hosts may clear the notes');
  await ann.page.click(tid('notepad-clear'));
  await ann.page.click(tid('confirm-ok'));
  await waitFor(10_000, "bob's notes to be empty", () => exported(bob), (t) => t === '', (t) => JSON.stringify(t), 300);
  assert.equal(await exported(ann), '');
  await typeNotes(bob, `After the clear ${tag}.`);
  await showsAll(ann, [`After the clear ${tag}.`]);
  assert.equal(await exported(ann), `After the clear ${tag}.`);
});

scenario(
  'N5. past 200 updates one writer compacts the log; a late joiner reads the notes from the snapshot',
  async ({ user }) => {
    const room = `notes-compact-${rand()}`;
    await createRoom(server, room, 'off');
    const ann = user(server, { room, id: 'ann', name: 'Ann', admin: true });
    await ann.enter(chrome.browser);
    await openNotes(ann);
    // One keystroke per batch (80 ms apart, batches gather for 50 ms): about one append each.
    const text = Array.from({ length: 30 }, (_, i) => `line ${String(i).padStart(2, '0')}`).join(' ');
    await typeNotes(ann, text, 80);
    await showsAll(ann, [text]);
    const log = async () => {
      const r = await fetch(`${server.base}/api/content/log`, {
        method: 'POST',
        headers: { Authorization: ann.token, 'Content-Type': 'application/json' },
        body: JSON.stringify({ kind: 'notepad', doc: 'main', after: 0 }),
      });
      return r.json();
    };
    const got = await waitFor(10_000, 'a snapshot of the notes on the server', log, (j) => j.status === true && j.snapshot !== null, (j) => JSON.stringify({ head: j.head, snapshot: j.snapshot?.upto ?? null, updates: j.updates?.length }));
    assert.ok(got.snapshot.upto >= 200, `the snapshot covers the first 200 updates or more (upto ${got.snapshot.upto}, head ${got.head})`);
    assert.equal(got.snapshot.from, 'ann', 'the only writer compacted');
    assert.ok(got.updates.length < got.head, `updates up to the snapshot were dropped (${got.updates.length} left of ${got.head})`);

    const bob = user(server, { room, id: 'bob', name: 'Bob' });
    await bob.enter(chrome.browser);
    await openNotes(bob);
    await showsAll(bob, [text]);
    assert.equal(await exported(bob), await exported(ann));
  },
  { ms: 90_000 },
);

describe('what the server sees of the notes (tap build)', () => {
  let tapServer;
  let tapFile;
  before(async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'enclave-notepad-tap-'));
    tapFile = path.join(dir, 'tap.jsonl'); // outside the server's data dir
    tapServer = await new Enclave({ bin: TAP_BIN, tapFile, label: 'enclave-tap' }).start();
    ctx.servers.push(tapServer);
  });
  after(() => {
    if (tapFile && !KEEP) fs.rmSync(path.dirname(tapFile), { recursive: true, force: true });
  });

  scenario('N4. E2EE room: the typed notes are in nothing the server received, relayed or stored', async ({ log, user }) => {
    // The search finds what it claims to (so a miss below means something).
    const probe = `probe notes ${rand()} with spaces`;
    for (const [name, n] of needles(probe)) assert.ok(findIn(Buffer.concat([Buffer.from('xx'), n, Buffer.from('yy')]), needles(probe)).includes(name), `self-check: ${name}`);

    // Control: in a plain room the same recording finds a note in clear. insertText is one input
    // event, so the note is one Yjs update and one append, whose base64 the search matches.
    const wire = [];
    const plainRoom = `notes-tap-plain-${rand()}`;
    await createRoom(tapServer, plainRoom, 'off');
    const pat = user(tapServer, { room: plainRoom, id: 'pat', name: 'Pat', admin: true, wire });
    await pat.enter(chrome.browser);
    await openNotes(pat);
    const clear = `clear note ${rand()} in a plain room`;
    await pat.page.click(tid('notepad-editor'));
    await pat.page.keyboard.insertText(clear);
    await showsAll(pat, [clear]);
    await sleep(500);
    const plainRecords = await Promise.all(wire);
    const appends = plainRecords.filter((r) => r.kind === 'http' && r.url.includes('/api/content/append'));
    assert.ok(appends.length > 0, 'the plain room appended');
    assert.ok(
      appends.some((r) => findIn(r.body, needles(clear)).length > 0),
      'control: the plain note is found in what the server received',
    );
    await pat.close();

    const encWire = [];
    const room = `notes-tap-e2ee-${rand()}`;
    await createRoom(tapServer, room, 'server_key');
    const users = ['ann', 'bob', 'cat'].map((id, i) => user(tapServer, { room, id, name: id[0].toUpperCase() + id.slice(1), admin: i === 0, wire: encWire }));
    await Promise.all(users.map((u) => u.enter(chrome.browser)));
    await Promise.all(users.map(openNotes));
    const [ann, bob, cat] = users;
    const secrets = [`secret agenda ${rand()} for ann`, `confidential point ${rand()} by bob`];
    await Promise.all([typeNotes(ann, secrets[0]), typeNotes(bob, secrets[1])]);
    await Promise.all(users.map((u) => showsAll(u, secrets)));
    await sleep(1000);
    const texts = await Promise.all(users.map(exported));
    assert.equal(texts[1], texts[0]);
    assert.equal(texts[2], texts[0]);
    // A word of each, too: a batch may cut the text anywhere, so the whole line might be in no
    // single update while a word of it is.
    const words = secrets.flatMap((s) => s.split(' ').filter((w) => w.length >= 8));
    const searched = [...secrets, ...words];

    const records = await Promise.all(encWire);
    const tap = readTap(tapFile).filter((r) => r.room === room);
    const encAppends = records.filter((r) => r.kind === 'http' && r.url.includes('/api/content/append'));
    assert.ok(encAppends.length >= 2, `the notepad's appends were recorded (${encAppends.length})`);
    assert.ok(
      tap.some((r) => r.kind === 'data' && findIn(r.bytes, needles('enclave.notepad')).length),
      'control: the tap shows the notepad presence packets',
    );
    const leaks = [];
    const check = (where, buf) => {
      for (const s of searched) {
        const f = findIn(buf, needles(s));
        if (f.length) leaks.push(`${JSON.stringify(s)} (${f.join(',')}) in ${where}`);
      }
    };
    for (const r of records) check(`${r.who} ${r.kind} ${r.url.slice(0, 80)}`, Buffer.concat([Buffer.from(`${r.method ?? ''} ${r.url}\n`), r.body]));
    for (const r of tap) check(`tap ${r.kind} from ${r.from}`, r.bytes);
    check('server stdout/stderr', tapServer.output());
    const files = filesUnder(tapServer.dataDir);
    for (const [f, bytes] of files) check(f, bytes);
    const summary = `${records.length} requests and frames (${encAppends.length} appends), ${tap.length} tapped packets (${tap.filter((r) => r.kind === 'data').length} data), ${files.length} data-dir files, ${tapServer.output().length} B of server output`;
    log.add('driver', `notes search covered ${summary}`);
    process.stderr.write(`webclient/notepad: note-text search covered ${summary}\n`);
    assert.deepEqual(leaks, [], 'the typed notes appear nowhere the server could see');
    void cat;
  });
});
