// End-to-end tests of Enclave's web client, files in chat (docs/content.md, "Files"): one
// participant shares a file of 2.5 MiB of random bytes (three chunks) through `chat-file-input`,
// the others download it through `chat-file-link` and get it byte for byte; in a plain room and
// in an encrypted room, with two and three participants. On the tap build (ENCLAVE_TAP_BIN, see
// server-view.test.mjs) an encrypted room's file is searched for in everything the server stored
// (its data directory, uploads/ included), everything it relayed (the tap file), everything the
// browsers sent it (HTTP bodies, WebSocket frames) and its output: neither the file's bytes nor
// its name are there, while a plain room's are (the control that shows the search finds them).
// Same setting as calls.test.mjs otherwise (see README.md).

import { after, before, describe } from 'node:test';
import assert from 'node:assert/strict';

import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { tid } from './browser.mjs';
import { findIn, needles, readTap } from './ciphertext.mjs';
import { KEEP, rand, shot, webclientSuite } from './scenario.mjs';
import { Enclave, TAP_BIN, filesUnder } from './server.mjs';

let server; // the normal binary
let chrome; // { browser, pid, version, close }
const ctx = webclientSuite('webclient/files', (c) => ({ server, chrome } = c));
const { scenario } = ctx;

const MIB = 1024 * 1024;
const FILE_BYTES = 2.5 * MIB; // three chunks of at most 1 MiB
const RUN = 64; // the length of a distinctive run of the file's bytes searched for
const sha256 = (b) => createHash('sha256').update(b).digest('hex');

/** A file of random bytes with a name no one else uses, and a 64-byte run from inside each chunk. */
function newFile() {
  const bytes = randomBytes(FILE_BYTES);
  const name = `quarterly-figures-${randomBytes(6).toString('hex')}.zip`;
  const runs = [0.5, 1.5, 2.25].map((at) => bytes.subarray(at * MIB, at * MIB + RUN));
  return { bytes, name, runs, sha: sha256(bytes) };
}

/** Needles for bytes: as they are, hex in both cases, base64 and base64url at each alignment. */
function byteNeedles(buf, label) {
  const out = [
    [`${label}:raw`, Buffer.from(buf)],
    [`${label}:hex`, Buffer.from(buf.toString('hex'))],
    [`${label}:HEX`, Buffer.from(buf.toString('hex').toUpperCase())],
  ];
  for (const k of [0, 1, 2]) {
    const padded = Buffer.concat([Buffer.alloc(k), buf]);
    for (const enc of ['base64', 'base64url']) {
      // Without the characters that depend on the padding or on what follows.
      const s = padded.toString(enc).replace(/=+$/, '');
      out.push([`${label}:${enc}@${k}`, Buffer.from(s.slice(k === 0 ? 0 : 4, s.length - 4))]);
    }
  }
  return out;
}

/** Every needle of the file: each run's bytes, and its name in every text encoding. */
const fileNeedles = (f) => [...f.runs.flatMap((r, i) => byteNeedles(Buffer.from(r), `run${i}`)), ...needles(f.name).map(([n, b]) => [`name:${n}`, b])];

/** `u` shares `f` in the chat; waits until its own message carries the finished file. Returns the file id. */
async function share(u, f) {
  await u.openChat();
  await u.page.setInputFiles(tid('chat-file-input'), { name: f.name, mimeType: 'application/zip', buffer: f.bytes });
  const link = await u.page.waitForSelector(`${tid('chat-message')}[data-from="${u.id}"] ${tid('chat-file-link')}[data-file-id]`, { timeout: 30_000 });
  const id = await link.getAttribute('data-file-id');
  assert.match(id, /^[A-Za-z0-9_-]{16,64}$/, `${u.id}'s file id`);
  return id;
}

/** `u` downloads the file `fileId` shared by `fromId` through its chat-file-link; returns the name offered and the bytes. */
async function download(u, fromId, fileId) {
  await u.openChat();
  const link = `${tid('chat-message')}[data-from="${fromId}"] ${tid('chat-file-link')}[data-file-id="${fileId}"]`;
  await u.page.waitForSelector(link, { timeout: 15_000 });
  const [dl] = await Promise.all([u.page.waitForEvent('download', { timeout: 30_000 }), u.page.click(link)]);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'enclave-webclient-dl-'));
  try {
    const p = path.join(dir, 'file');
    await dl.saveAs(p);
    return { name: dl.suggestedFilename(), bytes: fs.readFileSync(p) };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** Every other user downloads `f` and gets it byte for byte, under its own name. */
async function allGet(users, from, fileId, f, log) {
  await Promise.all(
    users
      .filter((u) => u !== from)
      .map(async (u) => {
        const got = await download(u, from.id, fileId);
        assert.equal(got.bytes.length, f.bytes.length, `${u.id}: the downloaded file's length`);
        assert.equal(sha256(got.bytes), f.sha, `${u.id}: the downloaded file's SHA-256`);
        assert.equal(got.name, f.name, `${u.id}: the name offered for saving`);
        log.add('driver', `${u.id} downloaded ${fileId}: ${got.bytes.length} bytes, SHA-256 matches`);
      }),
  );
}

/** The chunk files the server keeps of `fileId` (under uploads/<sid>/<fileId>/), by index (not its `meta.json`). */
function storedChunks(srv, fileId) {
  const out = filesUnder(path.join(srv.dataDir, 'uploads')).filter(([p]) => path.basename(path.dirname(p)) === fileId && /^\d+$/.test(path.basename(p)));
  return out.sort(([a], [b]) => Number(path.basename(a)) - Number(path.basename(b)));
}

describe('files in chat (normal build)', () => {
  scenario('F1. plain room, three participants: a shared file of three chunks reaches both others byte for byte', async ({ log, user }) => {
    const room = `files-plain-${rand()}`;
    await server.createRoom(room, 'off');
    const ann = user(server, { room, id: 'ann', name: 'Ann', admin: true });
    const bob = user(server, { room, id: 'bob', name: 'Bob' });
    const cat = user(server, { room, id: 'cat', name: 'Cat' });
    await Promise.all([ann, bob, cat].map((u) => u.enter(chrome.browser)));
    const f = newFile();
    const fileId = await share(ann, f);
    await allGet([ann, bob, cat], ann, fileId, f, log);
    // A plain room keeps the chunks as they are: three of them, the file's bytes.
    const chunks = storedChunks(server, fileId);
    assert.deepEqual(chunks.map(([p]) => path.basename(p)), ['0', '1', '2']);
    assert.equal(sha256(Buffer.concat(chunks.map(([, b]) => b))), f.sha, 'a plain room stores the file as it is');
  });

  scenario('F2. server-key E2EE room, three participants: the shared file is sealed chunk by chunk and opens for both others byte for byte', async ({ log, user }) => {
    const room = `files-e2ee-${rand()}`;
    await server.createRoom(room, 'server_key');
    const ann = user(server, { room, id: 'ann', name: 'Ann', admin: true });
    const bob = user(server, { room, id: 'bob', name: 'Bob' });
    const cat = user(server, { room, id: 'cat', name: 'Cat' });
    await Promise.all([ann, bob, cat].map((u) => u.enter(chrome.browser)));
    const f = newFile();
    const fileId = await share(bob, f);
    await allGet([ann, bob, cat], bob, fileId, f, log);
    await shot(ann, 'chat-file');
    const chunks = storedChunks(server, fileId);
    assert.equal(chunks.length, 3, 'three chunks stored');
    for (const [p, b] of chunks) assert.deepEqual(findIn(b, fileNeedles(f)), [], `the file's bytes or name in ${p}`);
  });

  scenario('F3. a file the room does not allow is refused in the browser: nothing is uploaded', async ({ user }) => {
    const room = `files-refuse-${rand()}`;
    await server.createRoom(room, 'server_key', { chat_features: { is_allow: true, is_allow_file_upload: true, allowed_file_types: ['pdf'] } });
    const ann = user(server, { room, id: 'ann', name: 'Ann', admin: true });
    await ann.enter(chrome.browser);
    const starts = [];
    ann.page.on('request', (r) => r.url().includes('/api/files/') && starts.push(r.url()));
    await ann.openChat();
    await ann.page.setInputFiles(tid('chat-file-input'), { name: 'tool.exe', mimeType: 'application/octet-stream', buffer: randomBytes(1000) });
    await ann.page.waitForSelector(`${tid('chat-file-progress')}[data-state="failed"]`, { timeout: 10_000 });
    assert.match(await ann.page.textContent(tid('chat-file-progress')), /\.exe files are not allowed here \(allowed: \.pdf\)/);
    assert.deepEqual(starts, [], 'no request to the file routes');
    assert.equal(await ann.page.locator(tid('chat-file-link')).count(), 0);
  });

  scenario('F6. a host locks file sharing for one participant: their file input is disabled and the server refuses their upload; unlocked, it works again', async ({ log, user }) => {
    const room = `files-lock-${rand()}`;
    await server.createRoom(room, 'server_key');
    const ann = user(server, { room, id: 'ann', name: 'Ann', admin: true });
    const bob = user(server, { room, id: 'bob', name: 'Bob' });
    await Promise.all([ann, bob].map((u) => u.enter(chrome.browser)));
    await bob.openChat();
    const input = tid('chat-file-input');
    assert.equal(await bob.page.isDisabled(input), false, 'bob may share files at first');
    const lock = (direction) =>
      ann.page.evaluate(
        async ([token, direction]) => {
          const r = await fetch('./api/updateLockSettings', { method: 'POST', headers: { Authorization: token, 'Content-Type': 'application/json' }, body: JSON.stringify({ user_id: 'bob', service: 'chatFile', direction }) });
          return { status: r.status, body: await r.json() };
        },
        [ann.token, direction],
      );
    const locked = await lock('lock');
    assert.equal(locked.body.status, true, `the lock was set: ${JSON.stringify(locked)}`);
    await bob.page.waitForSelector(`${input}:disabled`, { state: 'attached', timeout: 5000 });
    assert.equal(await bob.page.isDisabled(tid('chat-input')), false, 'the chat itself stays open');
    // A modified client that uploads anyway is refused by the server.
    const tried = await bob.page.evaluate(async (token) => {
      const r = await fetch('./api/files/start', { method: 'POST', headers: { Authorization: token, 'Content-Type': 'application/json' }, body: JSON.stringify({ file_id: 'abcdefghijklmnopqrstuvwx', purpose: 'chat', name: 'AQ==', mime: 'AQ==', size: 30, chunks: 1 }) });
      return { status: r.status, body: await r.json() };
    }, bob.token);
    assert.equal(tried.body.status, false, `the server refuses a locked participant's upload: ${JSON.stringify(tried)}`);
    assert.match(tried.body.msg, /locked/);
    log.add('driver', `locked: ${JSON.stringify(tried)}`);
    await lock('unlock');
    await bob.page.waitForSelector(`${input}:enabled`, { state: 'attached', timeout: 5000 });
    const f = newFile();
    const fileId = await share(bob, f);
    await allGet([ann, bob], bob, fileId, f, log);
  });

  scenario('F7. an upload whose chunk keeps failing stops with “Try again”, which continues it without sending again what the server holds', async ({ log, user }) => {
    const room = `files-resume-${rand()}`;
    await server.createRoom(room, 'server_key');
    const ann = user(server, { room, id: 'ann', name: 'Ann', admin: true });
    const bob = user(server, { room, id: 'bob', name: 'Bob' });
    await Promise.all([ann, bob].map((u) => u.enter(chrome.browser)));
    // The network drops every upload of chunk 1 until the test lets it through.
    let broken = true;
    const puts = [];
    await ann.page.route(/\/api\/files\/[A-Za-z0-9_-]+\/chunk\/\d+$/, (route) => {
      const r = route.request();
      if (r.method() !== 'PUT') return route.continue();
      const index = Number(r.url().split('/').pop());
      puts.push({ index, dropped: broken && index === 1 });
      return broken && index === 1 ? route.abort('connectionreset') : route.continue();
    });
    const f = newFile();
    await ann.openChat();
    await ann.page.setInputFiles(tid('chat-file-input'), { name: f.name, mimeType: 'application/zip', buffer: f.bytes });
    await ann.page.waitForSelector(`${tid('chat-file-progress')}[data-state="failed"]`, { timeout: 20_000 });
    assert.match(await ann.page.textContent(tid('chat-file-progress')), /stopped at chunk 2 of 3 after 3 tries/);
    assert.deepEqual(puts, [{ index: 0, dropped: false }, { index: 1, dropped: true }, { index: 1, dropped: true }, { index: 1, dropped: true }], 'chunk 0 once, chunk 1 tried three times');
    assert.equal(await ann.page.locator(tid('chat-file-link')).count(), 0, 'nothing announced yet');
    broken = false;
    await ann.page.click(tid('chat-file-retry'));
    const link = await ann.page.waitForSelector(`${tid('chat-message')}[data-from="ann"] ${tid('chat-file-link')}[data-file-id]`, { timeout: 30_000 });
    const fileId = await link.getAttribute('data-file-id');
    assert.deepEqual(
      puts.slice(4).map((p) => p.index),
      [1, 2],
      'the retry sends only what the server did not hold',
    );
    log.add('driver', `chunk PUTs: ${JSON.stringify(puts)}`);
    await allGet([ann, bob], ann, fileId, f, log);
  });
});

describe('what the server sees of a file (tap build)', () => {
  let tapServer;
  let tapFile;
  before(async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'enclave-webclient-tap-'));
    tapFile = path.join(dir, 'tap.jsonl'); // outside the server's data dir
    tapServer = await new Enclave({ bin: TAP_BIN, tapFile, label: 'enclave-tap' }).start();
    ctx.servers.push(tapServer); // its output in failure reports; stopped after the file
  });
  after(() => {
    if (tapFile && !KEEP) fs.rmSync(path.dirname(tapFile), { recursive: true, force: true });
  });

  /**
   * ann shares a new file with bob in a two-person room of `mode`; bob downloads it. Returns
   * where each needle was found: the tap, the data dir (by file), the browsers' HTTP requests
   * and WebSocket frames, the server's output.
   */
  async function shareAndScan(user, log, mode) {
    const room = `files-tap-${mode}-${rand()}`;
    await tapServer.createRoom(room, mode);
    const wire = [];
    const ann = user(tapServer, { room, id: 'ann', name: 'Ann', admin: true, wire });
    const bob = user(tapServer, { room, id: 'bob', name: 'Bob', wire });
    await Promise.all([ann.enter(chrome.browser), bob.enter(chrome.browser)]);
    const f = newFile();
    const fileId = await share(ann, f);
    await allGet([ann, bob], ann, fileId, f, log);
    // Scanned while the session lives: its files are deleted with it.
    const ns = fileNeedles(f);
    const tapRecords = readTap(tapFile);
    const stored = filesUnder(tapServer.dataDir);
    const sent = await Promise.all(wire);
    const found = {
      tap: tapRecords.map((r) => ({ r, hits: findIn(r.bytes, ns) })).filter((x) => x.hits.length).map(({ r, hits }) => `${r.kind} from ${r.from}: ${hits.join(',')}`),
      stored: stored.map(([p, b]) => ({ p, hits: findIn(b, ns) })).filter((x) => x.hits.length).map(({ p, hits }) => `${path.relative(tapServer.dataDir, p)}: ${hits.join(',')}`),
      wire: sent.map((w) => ({ w, hits: findIn(w.body, ns) })).filter((x) => x.hits.length).map(({ w, hits }) => `${w.who} ${w.kind} ${w.method ?? ''} ${new URL(w.url).pathname}: ${hits.join(',')}`),
      output: findIn(tapServer.output(), ns),
    };
    const chunks = storedChunks(tapServer, fileId);
    const chunkPuts = sent.filter((w) => w.kind === 'http' && w.method === 'PUT' && new URL(w.url).pathname.includes(`/api/files/${fileId}/chunk/`));
    const roomRecords = tapRecords.filter((r) => r.room === room);
    log.add('driver', `${mode}: ${chunks.length} chunks stored (${chunks.map(([, b]) => b.length).join(', ')} B), ${chunkPuts.length} chunk PUTs, ${roomRecords.length} tap records; found ${JSON.stringify(found).slice(0, 1500)}`);
    return { f, fileId, found, chunks, chunkPuts, roomRecords };
  }

  scenario('F4. server-key E2EE room: neither the file’s bytes nor its name are in what the server stored, relayed, was sent or logged', async ({ log, user }) => {
    const { f, found, chunks, chunkPuts, roomRecords } = await shareAndScan(user, log, 'server_key');
    // What makes the search meaningful: the file was stored (as three chunks, each sealed: its
    // plaintext and a seal's 29 bytes), its chunks went up over HTTP, and the chat message that
    // carries its name went through the SFU.
    assert.deepEqual(chunks.map(([p]) => path.basename(p)), ['0', '1', '2'], 'three chunks stored under uploads/');
    assert.deepEqual(chunks.map(([, b]) => b.length), [MIB + 29, MIB + 29, f.bytes.length - 2 * MIB + 29], 'each chunk stored sealed');
    assert.equal(chunkPuts.length, 3, 'three chunk uploads recorded');
    assert.ok(chunkPuts.every((w) => w.body.length === MIB + 29 || w.body.length === f.bytes.length - 2 * MIB + 29), 'the recorded uploads carry the chunks');
    assert.ok(roomRecords.some((r) => r.kind === 'data' && r.from === 'ann'), 'ann’s chat message went through the SFU');
    assert.deepEqual(found.stored, [], 'the file’s bytes or name in the data dir');
    assert.deepEqual(found.tap, [], 'the file’s bytes or name in what the SFU relayed');
    assert.deepEqual(found.wire, [], 'the file’s bytes or name in what the browsers sent');
    assert.deepEqual(found.output, [], 'the file’s bytes or name in the server’s output');
  });

  scenario('F5. control, plain room: the same search finds the file’s bytes in uploads/ and in the uploads sent, and its name in the chat relayed', async ({ log, user }) => {
    const { found } = await shareAndScan(user, log, 'off');
    const ranIn = (list, run) => list.some((s) => s.includes(`${run}:raw`));
    for (const run of ['run0', 'run1', 'run2']) {
      assert.ok(ranIn(found.stored, run), `${run} found in the stored chunks (${found.stored.join(' | ')})`);
      assert.ok(ranIn(found.wire, run), `${run} found in the uploads sent`);
    }
    assert.ok(found.tap.some((s) => s.includes('name:utf8')), `the name found in the chat the SFU relayed (${found.tap.join(' | ')})`);
  });
});
