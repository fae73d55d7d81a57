// End-to-end tests of Enclave's web client, what the server sees: scenarios 4, 5 and 13 run on
// ENCLAVE_TAP_BIN (default target/debug/enclave-tap, built with `--features tap`), which writes
// every RTP payload it forwards and every data packet it relays to ENCLAVE_TAP_FILE; they prove
// that the server sees only ciphertext and never the typed passphrase. Same setting as
// calls.test.mjs otherwise (see README.md).

import { after, before, describe } from 'node:test';
import assert from 'node:assert/strict';

import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';

import path from 'node:path';

import { setTimeout as sleep } from 'node:timers/promises';

import { waitFor } from '@enclave-tests/lib';

import { pageStorage, tid } from './browser.mjs';
import { KEYRING_SIZE, analyseMedia, decryptsAudio, epochMediaKey, findIn, frameKey, hasTrailer, needles, readTap } from './ciphertext.mjs';
import { KEEP, allChat, allSeeAndHear, rand, waitStatus, webclientSuite } from './scenario.mjs';
import { Enclave, TAP_BIN, filesUnder } from './server.mjs';

let chrome; // { browser, pid, version, close }
const ctx = webclientSuite('webclient/server-view', (c) => ({ chrome } = c));
const { scenario } = ctx;

const CHI2_MAX = 400; // byte-histogram chi-square bound for "looks random" (see scenario 4a)

let tapServer; // the tap binary
let tapFile;

after(() => {
  if (tapFile && !KEEP) fs.rmSync(path.dirname(tapFile), { recursive: true, force: true });
  if (KEEP) process.stderr.write(`webclient/server-view: kept ${tapFile}\n`);
});

describe('what the server sees (tap build)', () => {
  before(async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'enclave-webclient-tap-'));
    tapFile = path.join(dir, 'tap.jsonl'); // outside the server's data dir
    tapServer = await new Enclave({ bin: TAP_BIN, tapFile, label: 'enclave-tap' }).start();
    ctx.servers.push(tapServer); // its output in failure reports; stopped after the file
  });

  const roomRecords = (room) => readTap(tapFile).filter((r) => r.room === room);

  /** Joins two users, lets media and a chat marker flow, waits for ≥ 50 KB of video payload. */
  async function callWithMarker(user, log, room, mode) {
    await tapServer.createRoom(room, mode);
    const ann = user(tapServer, { room, id: 'ann', name: 'Ann', admin: true });
    const bob = user(tapServer, { room, id: 'bob', name: 'Bob' });
    await Promise.all([ann.enter(chrome.browser), bob.enter(chrome.browser)]);
    await allSeeAndHear([ann, bob], log);
    assert.ok(
      roomRecords(room).length > 0,
      `the tap file has records of ${room} (is ${TAP_BIN} built with \`--features tap\`? output says: ${/TEST TAP ENABLED/.test(tapServer.text) ? 'tap enabled' : 'no tap'})`,
    );
    const marker = `tap-marker-${randomBytes(8).toString('hex')}`;
    await ann.say(marker);
    await bob.sees('ann', marker);
    await bob.say(`${marker}-reply`);
    await ann.sees('bob', `${marker}-reply`);
    // The control needs only some audio (one run of it once had a sender with only 50 packets
    // in the window); 4a's checks need plenty.
    const minAudio = mode === 'off' ? 20 : 150;
    const a = await waitFor(
      20_000,
      `enough tapped media (≥ ${minAudio} audio packets after the first second, ≥ 50 video frames, ≥ 50 KB of payload)`,
      () => analyseMedia(roomRecords(room)),
      (x) => x.audio.checked >= minAudio && x.video.markers >= 50 && x.video.cipherBytes >= 50_000,
      (x) => JSON.stringify({ audio: x.audio.checked, markers: x.video.markers, bytes: x.video.cipherBytes }),
      500,
    );
    log.add('driver', `tap analysis of ${room}: ${JSON.stringify(a)}`);
    return { ann, bob, marker, analysis: a };
  }

  scenario('4a. E2EE room: the tap sees only LiveKit-encrypted frames and no chat text', async ({ log, user }) => {
    const room = `tap-e2ee-${rand()}`;
    const { ann, marker, analysis: a } = await callWithMarker(user, log, room, 'server_key');
    const records = roomRecords(room);
    const all = readTap(tapFile);
    const summary = `audio: ${a.audio.withTrailer}/${a.audio.checked} packets after the first second with trailer (first second: ${a.audio.firstSecondWithTrailer}/${a.audio.firstSecond}); video: ${a.video.markersWithTrailer}/${a.video.markers} marker packets with trailer; ciphertext ${a.video.cipherBytes} B video (entropy ${a.video.entropy.toFixed(4)}, chi² ${a.video.chi2.toFixed(0)}), ${a.audio.cipherBytes} B audio (entropy ${a.audio.entropy.toFixed(4)}, chi² ${a.audio.chi2.toFixed(0)}); key frames ${a.video.keyFrames} (VP8 start code in clear: ${a.video.keyFramesWithStartCode})`;
    process.stderr.write(`webclient: tap, E2EE room: ${summary}\n`);

    // (a) the chat marker is nowhere: not in any tapped payload (of any room), not in the
    // server's output, not in any file of its data dir.
    const ns = needles(marker);
    const dataFromAnn = records.filter((r) => r.kind === 'data' && r.from === 'ann');
    assert.ok(dataFromAnn.length > 0, 'ann\'s data packets (the chat) went through the SFU');
    const hits = all.map((r) => findIn(r.bytes, ns)).filter((h) => h.length);
    assert.equal(hits.length, 0, `marker in tapped payloads: ${JSON.stringify(hits.slice(0, 3))}`);
    assert.deepEqual(findIn(tapServer.output(), ns), [], 'marker in the server output');
    for (const [f, bytes] of filesUnder(tapServer.dataDir)) assert.deepEqual(findIn(bytes, ns), [], `marker in ${f}`);

    // The session secret the server generated (the client got it from verifyToken) is not on the
    // media path either, nor in the output or data dir.
    const secret = (await ann.verifyTokenReply)?.e2ee?.secret;
    assert.ok(typeof secret === 'string' && secret.length >= 32, 'verifyToken gave the participant the session secret');
    const sn = needles(secret);
    assert.equal(all.filter((r) => findIn(r.bytes, sn).length).length, 0, 'secret in tapped payloads');
    assert.deepEqual(findIn(tapServer.output(), sn), [], 'secret in the server output');
    for (const [f, bytes] of filesUnder(tapServer.dataDir)) assert.deepEqual(findIn(bytes, sn), [], `secret in ${f}`);

    // (b) media payloads are LiveKit-encrypted frames: every Opus packet after the first second
    // and every video packet that ends a frame ends with [IV length 12, key index], and the
    // bytes between the clear codec header and the IV look random.
    assert.ok(a.audio.checked >= 150, `enough audio packets (${a.audio.checked})`);
    assert.equal(a.audio.withTrailer, a.audio.checked, `every audio packet after the first second ends with the trailer; not: ${a.audio.failures.join(' | ')}`);
    assert.equal(a.video.markersWithTrailer, a.video.markers, `every video packet with the marker bit ends with the trailer; not: ${a.video.failures.join(' | ')}`);
    assert.ok(a.video.keyFrames > 0 && a.video.keyFramesWithStartCode === a.video.keyFrames, `VP8 key frames parse (their 10 clear bytes hold the start code): ${a.video.keyFramesWithStartCode}/${a.video.keyFrames}`);
    assert.ok(a.video.cipherBytes >= 50_000, `≥ 50 KB of video ciphertext (${a.video.cipherBytes})`);
    assert.ok(a.video.entropy > 7.5, `video ciphertext entropy ${a.video.entropy.toFixed(3)} bits/byte > 7.5`);
    assert.ok(a.all.entropy > 7.5, `audio+video ciphertext entropy ${a.all.entropy.toFixed(3)} bits/byte > 7.5`);
    // Entropy alone does not tell ciphertext from compressed video (plain VP8 payload has ~7.97
    // bits/byte too); a chi-square test of the byte histogram does: 255 degrees of freedom, so
    // random bytes give 255 ± 23, and 400 is 6.4 standard deviations out. Plain VP8: thousands.
    assert.ok(a.video.chi2 < CHI2_MAX, `video ciphertext bytes are uniform: chi² ${a.video.chi2.toFixed(0)} < ${CHI2_MAX}`);
    assert.ok(a.audio.chi2 < CHI2_MAX, `audio ciphertext bytes are uniform: chi² ${a.audio.chi2.toFixed(0)} < ${CHI2_MAX}`);
  });

  /** Waits until `u`'s meeting sends with key epoch `g`. */
  const onEpoch = (u, g) => u.page.waitForSelector(`${tid('meeting')}[data-key-generation="${g}"]`, { state: 'attached', timeout: 10_000 });

  scenario('13. server-key room: a removed participant who keeps the room’s packets decodes nothing sent after the key moves on; the others keep decoding', async ({ log, user }) => {
    const room = `epoch-${rand()}`;
    await tapServer.createRoom(room, 'server_key');
    const ann = user(tapServer, { room, id: 'ann', name: 'Ann', admin: true });
    const bob = user(tapServer, { room, id: 'bob', name: 'Bob' });
    const cat = user(tapServer, { room, id: 'cat', name: 'Cat' });
    // One after the other: each admission draws a new epoch, and cat's is the last.
    for (const u of [ann, bob, cat]) await u.enter(chrome.browser);
    const reply = await cat.verifyTokenReply;
    const g = reply.e2ee.generation;
    const sid = reply.room.sid;
    assert.ok(Number.isInteger(g) && g >= 3, `cat was admitted third or later: epoch ${g}`);
    for (const u of [ann, bob, cat]) await onEpoch(u, g);
    await allSeeAndHear([ann, bob, cat], log);
    const codes = await Promise.all([ann, bob, cat].map((u) => u.code()));
    assert.deepEqual(codes, [codes[0], codes[0], codes[0]], 'one code for everyone on the same epoch');
    // What the removed participant keeps: the key of the epoch they were given.
    const catKey = frameKey(epochMediaKey(reply.e2ee.secret, sid, g));

    await ann.page.click(tid('participants-toggle'));
    await ann.page.click(`${tid('participant-item')}[data-identity="cat"] ${tid('admin-remove')}`);
    await ann.page.click(tid('confirm-ok'));
    await cat.page.waitForSelector(tid('ended-page'), { timeout: 10_000 });
    for (const u of [ann, bob]) await onEpoch(u, g + 1);
    await allSeeAndHear([ann, bob], log);
    const after = await Promise.all([ann, bob].map((u) => u.code()));
    assert.equal(after[0], after[1], 'those who stay share the new code');
    assert.notEqual(after[0], codes[0], 'the verification code changed with the key');
    await bob.page.click(tid('e2ee-badge'));
    await bob.page.waitForSelector(`${tid('security-panel')} ${tid('security-key-model')}[data-mode="server_key"]`, { state: 'visible' });
    assert.equal(await bob.page.textContent(tid('security-code')), after[1], 'the panel shows the current code');
    assert.equal(await bob.page.textContent(tid('security-epoch')), ` (key ${g + 1} of this meeting)`);

    // The new epoch as a member gets it (and the removed one cannot).
    const current = async (u) => {
      const r = await fetch(`${tapServer.base}/api/e2eeKey`, { method: 'POST', headers: { authorization: `Bearer ${u.token}`, 'content-type': 'application/json' }, body: '{}' });
      return { status: r.status, body: await r.json() };
    };
    const mine = await current(ann);
    assert.equal(mine.body.generation, g + 1, JSON.stringify({ ...mine.body, secret: undefined }));
    const theirs = await current(cat);
    assert.ok(theirs.status !== 200 && !theirs.body.secret, `the removed participant fetches no key: ${theirs.status}`);
    const newKey = frameKey(epochMediaKey(mine.body.secret, sid, g + 1));

    const [oldSlot, newSlot] = [g % KEYRING_SIZE, (g + 1) % KEYRING_SIZE];
    const audioOf = () => readTap(tapFile).filter((r) => r.room === room && r.kind === 'rtp-audio' && (r.from === 'ann' || r.from === 'bob'));
    const recs = await waitFor(
      20_000,
      '≥ 200 tapped audio packets from ann and bob under the new epoch',
      audioOf,
      (rs) => rs.filter((r) => hasTrailer(r.bytes, newSlot)).length >= 200,
      (rs) => `${rs.filter((r) => hasTrailer(r.bytes, newSlot)).length}`,
      500,
    );
    const under = (slot) => recs.filter((r) => hasTrailer(r.bytes, slot));
    const earlier = under((g - 1) % KEYRING_SIZE);
    const before = under(oldSlot);
    const since = under(newSlot);
    const count = (rs, key) => rs.filter((r) => decryptsAudio(r.bytes, key)).length;
    const summary = {
      beforeCatCame: earlier.length,
      beforeCatCameWithCatKey: count(earlier, catKey),
      before: before.length,
      beforeWithCatKey: count(before, catKey),
      since: since.length,
      sinceWithCatKey: count(since, catKey),
      sinceWithNewKey: count(since, newKey),
    };
    log.add('driver', `tap, epoch ${g} → ${g + 1}: ${JSON.stringify(summary)}`);
    process.stderr.write(`webclient: key epochs, tapped audio of ann and bob: ${JSON.stringify(summary)}\n`);
    // Control: the decryption here works, and cat's key opened everything of cat's epoch.
    assert.ok(summary.before >= 50, `audio under cat's epoch was tapped (${summary.before})`);
    assert.equal(summary.beforeWithCatKey, summary.before, "cat's key opens every frame of cat's epoch");
    // A newcomer cannot read what was said before they came.
    assert.ok(summary.beforeCatCame >= 20, `audio of the epoch before cat's was tapped (${summary.beforeCatCame})`);
    assert.equal(summary.beforeCatCameWithCatKey, 0, "no frame sent before cat was let in opens with cat's key");
    // After the switch: nothing opens with what cat holds; everything opens with the new key.
    assert.equal(summary.sinceWithCatKey, 0, "no frame sent after the switch opens with cat's key");
    assert.equal(summary.sinceWithNewKey, summary.since, 'every frame after the switch opens with the new epoch');
    // Each sender switched once and never went back to the old key.
    for (const who of ['ann', 'bob']) {
      const slots = recs.filter((r) => r.from === who && (hasTrailer(r.bytes, oldSlot) || hasTrailer(r.bytes, newSlot))).map((r) => r.bytes[r.bytes.length - 1]);
      const first = slots.indexOf(newSlot);
      assert.ok(first >= 0 && slots.slice(first).every((x) => x === newSlot), `${who} sends only the new epoch after switching (${slots.length} packets)`);
    }
  });

  scenario('4b. control: in a plain room the same checks find clear frames and the chat text', async ({ log, user }) => {
    const room = `tap-plain-${rand()}`;
    const { marker, analysis: a } = await callWithMarker(user, log, room, 'off');
    const records = roomRecords(room);
    process.stderr.write(
      `webclient: tap, plain room (control): audio ${a.audio.withTrailer}/${a.audio.checked} with the trailer pattern, video ${a.video.markersWithTrailer}/${a.video.markers}; payload entropy ${a.video.entropy.toFixed(4)} (video, chi² ${a.video.chi2.toFixed(0)}), ${a.audio.entropy.toFixed(4)} (audio, chi² ${a.audio.chi2.toFixed(0)})\n`,
    );
    assert.ok(a.audio.share < 0.5, `the trailer pattern is not consistently present in clear audio (${a.audio.withTrailer}/${a.audio.checked})`);
    assert.ok(a.video.share < 0.5, `the trailer pattern is not consistently present in clear video (${a.video.markersWithTrailer}/${a.video.markers})`);
    assert.ok(a.video.chi2 > CHI2_MAX, `the uniformity check tells clear VP8 from ciphertext: chi² ${a.video.chi2.toFixed(0)} > ${CHI2_MAX}`);
    const found = records.filter((r) => r.kind === 'data' && findIn(r.bytes, needles(marker)).includes('utf8'));
    assert.ok(found.length > 0, 'the chat marker is found in the tapped data packets of a plain room');
  });

  scenario('5. self-insert room: the typed passphrase never reaches the server nor page storage', async ({ log, user }) => {
    // The search itself finds every encoding it claims to (so a miss below means something).
    const probe = `probe phrase ${rand()} with spaces`;
    for (const [name, n] of needles(probe)) {
      const sample = Buffer.concat([Buffer.from('xx'), n, Buffer.from('yy')]);
      assert.ok(findIn(sample, needles(probe)).includes(name), `self-check: ${name}`);
    }
    assert.ok(findIn(Buffer.from(Buffer.from(`{"k":"${probe}"}`).toString('base64')), needles(probe)).length > 0, 'self-check: base64 of JSON around it');

    const room = `tap-self-${rand()}`;
    await tapServer.createRoom(room, 'self_insert');
    const pass = `correct horse battery staple ${randomBytes(6).toString('hex')}`;
    const wrong = `wrong horse battery ${randomBytes(6).toString('hex')} staple`;
    const wire = [];
    const ann = user(tapServer, { room, id: 'ann', name: 'Ann', admin: true, key: pass, wire });
    const bob = user(tapServer, { room, id: 'bob', name: 'Bob', key: pass, wire });
    await Promise.all([ann.enter(chrome.browser), bob.enter(chrome.browser)]);
    await allSeeAndHear([ann, bob], log);
    await allChat([ann, bob], rand());
    await waitStatus(ann, 'encrypted');
    const cat = user(tapServer, { room, id: 'cat', name: 'Cat', key: wrong, wire });
    await cat.enter(chrome.browser);
    await waitStatus(cat, 'wrong-key', 5000);
    await sleep(1000);

    const records = await Promise.all(wire);
    // Positive controls: the recording and the searches see what they should.
    const annToken = records.find((r) => r.who === 'ann' && r.kind === 'http' && r.url.includes('/api/verifyToken'))?.headers?.authorization;
    assert.ok(annToken && annToken.length > 100, 'request headers are recorded (the join token in Authorization)');
    assert.ok(records.some((r) => r.kind === 'ws-open' && r.url.includes('access_token=')), 'WebSocket URLs are recorded');
    assert.ok(records.some((r) => r.kind === 'ws-sent' && r.body.length > 0), 'WebSocket frames are recorded');
    assert.ok(roomRecords(room).some((r) => r.kind === 'data' && findIn(r.bytes, needles('enclave.keycheck')).length), 'the tap shows the data channel (key-check packets)');
    const secrets = [
      ['passphrase', needles(pass)],
      ['wrong passphrase', needles(wrong)],
    ];
    const leaks = [];
    const check = (where, buf) => {
      for (const [what, ns] of secrets) {
        const f = findIn(buf, ns);
        if (f.length) leaks.push(`${what} (${f.join(',')}) in ${where}`);
      }
    };
    let wsFrames = 0;
    let http = 0;
    for (const r of records) {
      if (r.kind === 'http') http++;
      if (r.kind === 'ws-sent') wsFrames++;
      check(`${r.who} ${r.kind} ${r.url.slice(0, 80)}`, Buffer.concat([Buffer.from(`${r.method ?? ''} ${r.url}\n${JSON.stringify(r.headers ?? {})}\n`), r.body]));
    }
    const tap = roomRecords(room);
    for (const r of tap) check(`tap ${r.kind} from ${r.from}`, r.bytes);
    check('server stdout/stderr', tapServer.output());
    const files = filesUnder(tapServer.dataDir);
    for (const [f, bytes] of files) check(f, bytes);
    for (const u of [ann, bob, cat]) {
      check(`${u.id}'s page storage`, Buffer.from(JSON.stringify(await pageStorage(u))));
      // Nor does the page keep it on show: the DOM and every input's value, once in the meeting.
      const dom = await u.page.evaluate(() => document.documentElement.outerHTML + [...document.querySelectorAll('input, textarea')].map((i) => i.value).join('\n'));
      check(`${u.id}'s DOM and input values`, Buffer.from(dom));
    }
    const storage = await pageStorage(ann);
    log.add('driver', `ann's storage: ${JSON.stringify(storage).slice(0, 1500)}`);
    assert.ok(storage.indexedDB.enclave, "the client's IndexedDB database was read");
    const summary = `${http} HTTP requests, ${wsFrames} WebSocket frames sent, ${tap.length} tapped packets (${tap.filter((r) => r.kind === 'data').length} data), ${tapServer.output().length} B of server output, ${files.length} data-dir files, 3 pages' storage`;
    process.stderr.write(`webclient: passphrase search covered ${summary}\n`);
    assert.ok(http > 0 && wsFrames > 0 && tap.length > 0, `something was recorded (${summary})`);
    assert.ok(records.some((r) => r.kind === 'http' && r.url.includes('/api/verifyToken')), 'the verifyToken request was recorded');
    assert.deepEqual(leaks, [], 'the passphrase appears nowhere');
  });
});
