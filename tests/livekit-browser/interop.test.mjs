// Browser interop test: the unmodified livekit-client (UMD build, pinned in package.json) in
// headless Debian Chromium joins the embedded SFU of the real `enclave` binary over LiveKit's
// signalling protocol (dual peer connection, protocol 17, WebSocket /rtc after the client's
// /rtc/v1 attempt fails). Run with `node --test tests/livekit-browser/` (see README.md).
//
// What to assert and why: ../../../shared/docs/livekit-str0m-experiment.md sections 2, 4, 5, 6
// and 7.8; the Chromium recipe: ../../../shared/docs/sfu-research.md section 4.1.
//
// The page is served by a static server on another port than the signalling server, so it is
// cross-origin, which exercises the CORS header on /rtc/v1/validate (without it the client does
// not fall back to /rtc).

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import { setTimeout as sleep } from 'node:timers/promises';

import {
  CHROMIUM,
  CHROMIUM_ARGS,
  Deadline,
  TestLog,
  WorkDir,
  freeUdpPort,
  launchEnclave,
  livekitToken,
  packageVersion,
  requireChromium,
  waitFor,
  within,
} from '@enclave-tests/lib';
import { openParticipant, startStaticServer } from './harness.mjs';

const require = createRequire(import.meta.url);
const { chromium } = require('playwright-core');
const LK_CLIENT_VERSION = packageVersion('livekit-client');
const PLAYWRIGHT_VERSION = packageVersion('playwright-core');

const SCENARIO_MS = 40_000; // hard bound of each scenario
const JOIN_MS = 15_000; // bound of room.connect() in the page
// livekit-client's log level in the pages (its lines go to the per-test log, printed on failure).
const LK_LOG_LEVEL = process.env.LK_LOG_LEVEL ?? 'debug';

let work; // temp: data dir of the server and per-test logs (kept after a failure)
let server; // launchEnclave
let baseUrl; // http://127.0.0.1:<server port>
let wsUrl; // ws://127.0.0.1:<server port>
let statik; // static page server (another origin)
let browser;
let browserVersion;

before(async () => {
  requireChromium();
  work = new WorkDir('enclave-browser-', { label: 'browser interop', keepLogs: process.env.ENCLAVE_BROWSER_KEEP_LOGS === '1' });
  statik = await startStaticServer();
  server = await launchEnclave({ dataDir: work.dataDir, lkKey: 'enclave-browser-test', udpPort: await freeUdpPort(), keepBytes: 256 * 1024 });
  ({ baseUrl, wsUrl } = server);

  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: CHROMIUM_ARGS,
    timeout: 30_000,
  });
  browserVersion = browser.version();
});

after(async () => {
  if (browser) await browser.close().catch(() => {});
  if (statik) await statik.close().catch(() => {});
  if (server) await server.stop();
  work?.finish(); // keeps the logs of failed tests, drops the rest (the server's data dir)
});

// ---------------------------------------------------------------------------------------------
// Helpers

function createRoom(roomId, { e2ee = false } = {}) {
  const features = { allow_webcams: true, mute_on_start: false };
  if (e2ee) {
    // Self-inserted key: the participants share the passphrase; the server holds nothing.
    features.end_to_end_encryption_features = { is_enabled: true, enabled_self_insert_encryption_key: true };
  }
  return server.createRoom(roomId, { title: `browser interop ${roomId}`, features });
}

function tokenFor(identity, roomId, grants = {}) {
  return server.token(identity, roomId, { grants });
}

/**
 * Runs `body({log, open, deadline})` with a hard bound of `ms`. Browser contexts opened through
 * `open(name)` are closed afterwards. On failure the per-test log (page console, page errors,
 * failed requests, WebSocket URLs, lk events, stats samples, server output) is printed.
 */
async function scenario(name, body, ms = SCENARIO_MS) {
  const log = new TestLog(work.logDir, name);
  const serverMark = server.mark();
  const participants = [];
  const deadline = new Deadline(ms, `scenario "${name}" bound of ${ms / 1000} s`);
  const open = async (who) => {
    const p = await openParticipant(browser, statik.origin, log, who);
    participants.push(p);
    return p;
  };
  let timer;
  const bound = new Promise((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`scenario "${name}" did not finish within ${ms / 1000} s`)),
      ms + 2_000, // a little slack over the deadline that waitFor() uses
    );
  });
  try {
    await Promise.race([body({ log, open, deadline }), bound]);
  } catch (e) {
    work.keepLogs = true;
    for (const p of participants) {
      try {
        const evs = await within(3_000, p.page.evaluate(() => window.events()), 'events');
        log.add('driver', `final events of ${p.name}: ${JSON.stringify(evs)}`);
        const st = await within(3_000, p.page.evaluate(() => window.stats()), 'stats');
        log.add('driver', `final stats of ${p.name}: ${JSON.stringify(st)}`);
        // The last local and remote SDP of each open PC (the subscriber offer made by the server
        // and the publisher answer are the usual suspects).
        const sdps = await within(3_000, p.page.evaluate(() => window.__sdps || []), 'sdps');
        const open = new Set(st.pcs.filter((x) => x.connectionState !== 'closed').map((x) => x.index));
        const last = new Map();
        for (const d of sdps) if (open.has(d.pc)) last.set(`${d.pc}/${d.side}`, d);
        let file;
        for (const [key, d] of [...last.entries()].sort()) {
          file = log.attach('sdp', `${p.name} pc ${key} (${d.type}, applied at ${d.t} ms page time)`, d.sdp);
        }
        if (file) log.add('driver', `last SDPs of ${p.name}'s open PCs written to ${file}`);
      } catch (err) {
        log.add('driver', `no final events/stats of ${p.name}: ${err.message}`);
      }
    }
    const out = server.since(serverMark);
    process.stderr.write(
      `\n===== browser interop "${name}" failed: ${e.message}\n` +
        `===== log (${log.file}):\n${log.excerpt()}\n` +
        `===== enclave output during the test (last 16 KiB):\n${out.slice(-16 * 1024)}\n===== end\n`,
    );
    throw e;
  } finally {
    clearTimeout(timer);
    for (const p of participants) {
      try {
        await within(5_000, p.page.evaluate(() => window.leave()), 'leave').catch(() => {});
        await p.context.close();
      } catch {
        // already closed
      }
    }
  }
}

async function events(p) {
  return p.page.evaluate(() => window.events());
}

async function stats(p, log) {
  const s = await p.page.evaluate(() => window.stats());
  log.add('driver', `stats ${p.name}: ${JSON.stringify({ pcs: s.pcs, tracks: s.tracks })}`);
  return s;
}

async function join(p, roomId, log, { e2eeKey, videoCodec, grants } = {}) {
  const token = tokenFor(p.name, roomId, grants);
  log.add('driver', `${p.name} joins ${wsUrl} room ${roomId}${e2eeKey ? ' with E2EE' : ''}`);
  try {
    const r = await p.page.evaluate(([url, tok, opts]) => window.join(url, tok, opts), [
      wsUrl,
      token,
      { e2eeKey, videoCodec, logLevel: LK_LOG_LEVEL, connectTimeoutMs: JOIN_MS },
    ]);
    logSignalling(log, p);
    return r;
  } catch (e) {
    logSignalling(log, p);
    // page.evaluate prefixes the message with its own text; keep the page's message.
    const m = /join failed: .*/.exec(e.message);
    throw new Error(`${p.name} could not join: ${m ? m[0] : e.message}\n  signalling seen: ${signallingSummary(p)}`);
  }
}

/**
 * The order of signalling attempts a page made, with repeats folded, e.g.
 * "WS /rtc/v1, GET /rtc/v1/validate -> 404 (ACAO *), [WS /rtc, GET /rtc/validate -> 404 (ACAO *)] x12".
 */
function signallingSummary(p) {
  const keys = p.seen.order.map((ev) => {
    const u = new URL(ev.url);
    if (ev.kind === 'ws') return `WS ${u.pathname}`;
    if (ev.kind === 'failed') return `GET ${u.pathname} failed: ${ev.error}`;
    return `GET ${u.pathname} -> ${ev.status} (ACAO ${ev.acao ?? 'missing'})`;
  });
  if (!keys.length) return 'nothing';
  const out = [];
  let i = 0;
  while (i < keys.length) {
    let folded = false;
    for (const width of [1, 2]) {
      const unit = keys.slice(i, i + width);
      if (unit.length < width) continue;
      let n = 1;
      while (keys.slice(i + n * width, i + (n + 1) * width).join('\n') === unit.join('\n')) n += 1;
      if (n > 1) {
        out.push(width === 1 ? `${unit[0]} x${n}` : `[${unit.join(', ')}] x${n}`);
        i += n * width;
        folded = true;
        break;
      }
    }
    if (!folded) {
      out.push(keys[i]);
      i += 1;
    }
  }
  return out.join(', ');
}

/** e.g. "bob/audio subscribed enc=false: 1881 packets, 167361 B; bob/video subscribed enc=false: no inbound-rtp (no RTP received)" */
function trackSummary(s) {
  if (!s.tracks.length) return `no remote publications (PCs: ${JSON.stringify(s.pcs)})`;
  return s.tracks
    .map((t) => {
      const head = `${t.identity}/${t.kind} ${t.isSubscribed ? 'subscribed' : 'NOT subscribed'} enc=${t.isEncrypted}`;
      if (!t.statsFound) return `${head}: no inbound-rtp (no RTP received for it)`;
      const frames = t.kind === 'video' ? `, framesDecoded ${t.framesDecoded}` : '';
      return `${head}: ${t.packetsReceived} packets, ${t.bytesReceived} B${frames}`;
    })
    .join('; ');
}

function remoteTrack(s, identity, kind) {
  return s.tracks.find((t) => t.identity === identity && t.kind === kind);
}

/** Waits until `p` got TrackSubscribed for the audio and video of `other`, with no failure. */
async function waitSubscribed(p, other, deadline) {
  const evs = await waitFor(
    deadline,
    `${p.name}: TrackSubscribed for ${other}'s audio and video`,
    () => events(p),
    (e) => {
      const failed = e.filter((x) => x.type === 'TrackSubscriptionFailed' || x.type === 'JoinFailed' || x.type === 'Disconnected');
      if (failed.length) return true; // stop waiting; asserted below
      const kinds = new Set(e.filter((x) => x.type === 'TrackSubscribed' && x.identity === other).map((x) => x.kind));
      return kinds.has('audio') && kinds.has('video');
    },
    (e) => JSON.stringify(e.filter((x) => x.type !== 'ConnectionStateChanged')),
  );
  const bad = evs.filter((x) => x.type === 'TrackSubscriptionFailed' || x.type === 'JoinFailed' || x.type === 'Disconnected');
  assert.deepEqual(bad, [], `${p.name}: no TrackSubscriptionFailed / Disconnected expected`);
  return evs;
}

/** SDK-level proof: the remote audio and video publications of `other` are subscribed. */
function assertSdkSubscribed(p, s, other) {
  for (const kind of ['audio', 'video']) {
    const t = remoteTrack(s, other, kind);
    assert.ok(t, `${p.name}: has a remote ${kind} publication of ${other} (${JSON.stringify(s.tracks)})`);
    assert.equal(t.isSubscribed, true, `${p.name}: ${other}'s ${kind} publication.isSubscribed`);
    assert.ok(t.statsFound, `${p.name}: an inbound-rtp entry matches ${other}'s ${kind} track (${JSON.stringify(s.inbound)})`);
  }
}

/**
 * Waits for the remote video of `other` to decode more than `minFrames` frames, then checks
 * over two samples at least 2 s apart that framesDecoded and audio packetsReceived still rise.
 */
async function assertMediaFlows(p, other, log, deadline, minFrames = 20) {
  await waitFor(
    deadline,
    `${p.name}: framesDecoded of ${other}'s video > ${minFrames}`,
    () => stats(p, log),
    (s) => (remoteTrack(s, other, 'video')?.framesDecoded ?? 0) > minFrames,
    trackSummary,
    1000,
  );
  const a = await stats(p, log);
  await sleep(2_200);
  const b = await stats(p, log);
  assertSdkSubscribed(p, b, other);
  const [va, vb] = [remoteTrack(a, other, 'video'), remoteTrack(b, other, 'video')];
  const [aa, ab] = [remoteTrack(a, other, 'audio'), remoteTrack(b, other, 'audio')];
  assert.ok(vb.framesDecoded > minFrames, `${p.name}: ${other}'s video framesDecoded ${vb.framesDecoded} > ${minFrames}`);
  assert.ok(
    vb.framesDecoded > va.framesDecoded,
    `${p.name}: ${other}'s video framesDecoded rises (${va.framesDecoded} -> ${vb.framesDecoded} over ${b.t - a.t} ms)`,
  );
  assert.ok(
    ab.packetsReceived > aa.packetsReceived,
    `${p.name}: ${other}'s audio packetsReceived rises (${aa.packetsReceived} -> ${ab.packetsReceived})`,
  );
  return b;
}

async function assertDataBothWays(a, b, deadline, tag) {
  for (const [from, to] of [
    [a, b],
    [b, a],
  ]) {
    const text = `${tag}: hello from ${from.name} ${randomBytes(3).toString('hex')}`;
    await from.page.evaluate((t) => window.sendData(t), text);
    const evs = await waitFor(
      deadline,
      `${to.name}: DataReceived ${JSON.stringify(text)}`,
      () => events(to),
      (e) => e.some((x) => x.type === 'DataReceived' && x.text === text),
      (e) => JSON.stringify(e.filter((x) => x.type === 'DataReceived')),
    );
    const got = evs.find((x) => x.type === 'DataReceived' && x.text === text);
    assert.equal(got.identity, from.name, `${to.name}: the data message's sender identity`);
  }
}

/** Logs the WebSocket URLs and /rtc responses a page saw (what the server must answer). */
function logSignalling(log, p) {
  const v0 = p.seen.sockets.find((u) => new URL(u).pathname === '/rtc');
  if (v0) log.add('driver', `${p.name} first /rtc WebSocket URL: ${v0}`);
  log.add('driver', `${p.name} signalling: ${signallingSummary(p)}`);
}

// ---------------------------------------------------------------------------------------------

describe(`livekit-client ${LK_CLIENT_VERSION} in Chromium (playwright-core ${PLAYWRIGHT_VERSION}) against enclave`, () => {
  test('harness: headless Chromium loads the page cross-origin, LivekitClient is defined, fake devices work', async () => {
    await scenario('harness', async ({ log, open }) => {
      log.add('driver', `chromium ${browserVersion}, page origin ${statik.origin}, signalling ${wsUrl}`);
      assert.notEqual(new URL(statik.origin).origin, new URL(baseUrl).origin, 'the page is cross-origin');
      const p = await open('probe');
      const info = await p.page.evaluate(() => ({
        origin: location.origin,
        secure: window.isSecureContext,
        version: window.LivekitClient.version,
        e2ee: window.LivekitClient.isE2EESupported(),
        events: window.events(),
      }));
      log.add('driver', `page: ${JSON.stringify(info)}`);
      assert.equal(info.origin, statik.origin);
      assert.equal(info.secure, true, 'http://127.0.0.1 is a secure context (getUserMedia needs one)');
      assert.equal(info.version, LK_CLIENT_VERSION, 'the page runs the pinned livekit-client');
      assert.equal(info.e2ee, true, 'E2EE (encoded transforms) is supported');
      const media = await p.page.evaluate(() => window.probeMedia());
      log.add('driver', `getUserMedia: ${JSON.stringify(media)}`);
      assert.deepEqual(media.tracks.map((t) => t.kind).sort(), ['audio', 'video']);
      assert.ok(media.tracks.every((t) => t.readyState === 'live'), 'fake tracks are live');
      // The E2EE worker loads as a classic worker from the page's origin.
      const workerOk = await p.page.evaluate(
        () =>
          new Promise((resolve) => {
            const w = new Worker('/lk/livekit-client.e2ee.worker.js');
            const done = (ok, why) => {
              w.terminate();
              resolve({ ok, why });
            };
            w.onerror = (e) => done(false, e.message);
            setTimeout(() => done(true, 'no error within 1 s'), 1000);
          }),
      );
      assert.equal(workerOk.ok, true, `E2EE worker loads: ${workerOk.why}`);
      // The RTCPeerConnection hook and stats(): a local sender -> receiver pair and a closed PC.
      const loop = await p.page.evaluate(() => window.loopbackProbe(3000));
      log.add('driver', `loopback: ${JSON.stringify(loop)}`);
      assert.equal(loop.hooked, 3, 'the init script recorded every RTCPeerConnection');
      assert.equal(loop.pcs[0].connectionState, 'closed');
      assert.ok(loop.inbound.every((x) => x.pc !== 0), 'stats() skips closed PCs');
      const video = loop.inbound.find((x) => x.kind === 'video');
      const audio = loop.inbound.find((x) => x.kind === 'audio');
      assert.ok(video && video.framesDecoded > 10, `loopback video decodes: ${JSON.stringify(loop.inbound)}`);
      assert.ok(audio && audio.packetsReceived > 10, `loopback audio arrives: ${JSON.stringify(loop.inbound)}`);
    });
  });

  test('signalling: /rtc/v1 and /rtc/v1/validate answer 404 with Access-Control-Allow-Origin: *', async () => {
    // livekit-client 2.23 tries /rtc/v1 first and falls back to /rtc only when the validate
    // request says 404; from a cross-origin page that fetch needs the CORS header.
    const roomId = `bi-sig-${randomBytes(3).toString('hex')}`;
    await createRoom(roomId);
    const q = new URLSearchParams({ access_token: tokenFor('sig', roomId), auto_subscribe: '1', sdk: 'js' });
    for (const p of ['/rtc/v1/validate', '/rtc/v1']) {
      const res = await fetch(`${baseUrl}${p}?${q}`, { headers: { Origin: statik.origin } });
      await res.arrayBuffer();
      assert.equal(res.status, 404, `GET ${p}: HTTP status`);
      assert.equal(res.headers.get('access-control-allow-origin'), '*', `GET ${p}: Access-Control-Allow-Origin`);
    }
  });

  test('signalling: /rtc/validate accepts a valid token and never answers a bare 404', async () => {
    // After the fallback, livekit-client 2.23 calls /rtc/validate whenever the /rtc upgrade
    // fails. A 404 whose body lacks "requested room does not exist" is read as "v1 path not
    // found" once more and the client retries /rtc without end (observed: connect() never
    // settles). The reference server answers 200 "success" for a token it would accept.
    const roomId = `bi-val-${randomBytes(3).toString('hex')}`;
    await createRoom(roomId);
    const query = (tok) =>
      new URLSearchParams({
        access_token: tok,
        auto_subscribe: '1',
        sdk: 'js',
        version: LK_CLIENT_VERSION,
        protocol: '17',
        client_protocol: '2',
      });
    const get = async (tok) => {
      const res = await fetch(`${baseUrl}/rtc/validate?${query(tok)}`, { headers: { Origin: statik.origin } });
      return { status: res.status, body: await res.text(), acao: res.headers.get('access-control-allow-origin') };
    };
    const ok = await get(tokenFor('validator', roomId));
    assert.deepEqual(
      { status: ok.status, acao: ok.acao },
      { status: 200, acao: '*' },
      `GET /rtc/validate with a valid token: ${JSON.stringify(ok)}`,
    );
    const forged = livekitToken({ apiKey: server.lkKey, secret: `${server.lkSecret}x`, identity: 'mallory', room: roomId });
    const bad = await get(forged);
    assert.equal(bad.acao, '*', `GET /rtc/validate with a bad signature: CORS header (${JSON.stringify(bad)})`);
    assert.ok(bad.status === 401 || bad.status === 403, `GET /rtc/validate with a bad signature: 401/403, got ${JSON.stringify(bad)}`);
    const missing = await get(tokenFor('lost', `${roomId}-missing`));
    assert.ok(
      missing.status !== 404 || missing.body.includes('requested room does not exist'),
      `GET /rtc/validate for a room that does not exist: not a bare 404 (${JSON.stringify(missing)})`,
    );
    assert.notEqual(missing.status, 200, 'a token for a room that was never created is not accepted');
  });

  test('a token for a room that is not active: connect() rejects instead of retrying forever', async () => {
    await scenario('room-not-active', async ({ log, open }) => {
      const roomId = `bi-absent-${randomBytes(3).toString('hex')}`; // never created
      const carol = await open('carol');
      const t0 = Date.now();
      let error;
      try {
        await join(carol, roomId, log);
      } catch (e) {
        error = e;
      }
      assert.ok(error, 'joining a room that was never created must fail');
      assert.doesNotMatch(
        error.message,
        /ConnectTimeout/,
        'room.connect() must reject by itself (a bare 404 from /rtc/validate makes livekit-client retry /rtc without end)',
      );
      log.add('driver', `carol's join failed after ${Date.now() - t0} ms: ${error.message}`);
      assert.ok(Date.now() - t0 < JOIN_MS, 'and promptly');
    });
  });

  test('plain: two participants publish camera and microphone, subscribe, decode, exchange data', async () => {
    await scenario('plain', async ({ log, open, deadline }) => {
      const roomId = `bi-plain-${randomBytes(3).toString('hex')}`;
      await createRoom(roomId);
      const alice = await open('alice');
      const bob = await open('bob');
      await join(alice, roomId, log);
      await join(bob, roomId, log);
      await waitSubscribed(alice, 'bob', deadline);
      await waitSubscribed(bob, 'alice', deadline);
      await assertDataBothWays(alice, bob, deadline, 'plain');
      await assertMediaFlows(alice, 'bob', log, deadline);
      await assertMediaFlows(bob, 'alice', log, deadline);
      for (const p of [alice, bob]) {
        const e = await events(p);
        assert.deepEqual(
          e.filter((x) => x.type === 'TrackSubscriptionFailed'),
          [],
          `${p.name}: no TrackSubscriptionFailed`,
        );
      }
    });
  });

  test('metadata: a token that may change its own metadata and name does (everyone sees it); one that may not is refused at once', async () => {
    await scenario('metadata', async ({ log, open, deadline }) => {
      const roomId = `bi-meta-${randomBytes(3).toString('hex')}`;
      await createRoom(roomId);
      const alice = await open('alice');
      const bob = await open('bob');
      await join(alice, roomId, log, { grants: { canUpdateOwnMetadata: true } });
      await join(bob, roomId, log);
      const set = (p, what, value) =>
        p.page.evaluate(
          async ([w, v]) => {
            const me = window.lk.room.localParticipant;
            const t0 = performance.now();
            try {
              await (w === 'name' ? me.setName(v) : me.setMetadata(v));
              return { ok: true, ms: performance.now() - t0 };
            } catch (e) {
              return { ok: false, ms: performance.now() - t0, error: `${e.name}: ${e.message}` };
            }
          },
          [what, value],
        );
      const meta = JSON.stringify({ status: 'presenting', n: randomBytes(3).toString('hex') });
      const r1 = await set(alice, 'metadata', meta);
      assert.equal(r1.ok, true, JSON.stringify(r1));
      const r2 = await set(alice, 'name', 'Alice Liddell');
      assert.equal(r2.ok, true, JSON.stringify(r2));
      await waitFor(
        deadline,
        'bob sees alice’s new metadata and name',
        () => bob.page.evaluate(() => {
          const a = window.lk.room.remoteParticipants.get('alice');
          return a ? { metadata: a.metadata, name: a.name } : null;
        }),
        (a) => a && a.metadata === meta && a.name === 'Alice Liddell',
        (a) => JSON.stringify(a),
      );
      // Bob's token does not allow it: refused by the server (not a time-out on the client).
      const r3 = await set(bob, 'metadata', '{"is_admin":true}');
      assert.equal(r3.ok, false, JSON.stringify(r3));
      assert.ok(r3.ms < 4000, `refused at once, not timed out: ${JSON.stringify(r3)}`);
      assert.match(r3.error, /not|allowed|may/i, JSON.stringify(r3));
      const seen = await alice.page.evaluate(() => window.lk.room.remoteParticipants.get('bob')?.metadata ?? '');
      assert.equal(seen.includes('is_admin'), false, 'nothing changed for the others');
    });
  });

  test('resume: a signalling blip is resumed on the same session, the other side never sees a departure', async () => {
    await scenario('resume', async ({ log, open, deadline }) => {
      const roomId = `bi-resume-${randomBytes(3).toString('hex')}`;
      await createRoom(roomId);
      const alice = await open('alice');
      const bob = await open('bob');
      await join(alice, roomId, log);
      const joined = await join(bob, roomId, log);
      await waitSubscribed(alice, 'bob', deadline);
      await waitSubscribed(bob, 'alice', deadline);
      await assertMediaFlows(alice, 'bob', log, deadline);
      const socketsBefore = bob.seen.sockets.length;

      // The client closes its WebSocket as a network blip would, then resumes.
      await bob.page.evaluate(() => window.simulate('signal-reconnect'));
      const evs = await waitFor(
        deadline,
        'bob: Reconnected',
        () => events(bob),
        (e) => e.some((x) => x.type === 'Reconnected' || x.type === 'Disconnected'),
        (e) => JSON.stringify(e.filter((x) => x.type !== 'ConnectionStateChanged').slice(-8)),
      );
      assert.ok(!evs.some((x) => x.type === 'Disconnected'), 'bob is not disconnected');
      const reconnected = evs.find((x) => x.type === 'Reconnected');
      assert.equal(reconnected.sid, joined.sid, 'bob keeps his participant sid: a resume, not a rejoin');
      const resumeUrls = bob.seen.sockets.slice(socketsBefore).map((u) => new URL(u));
      log.add('driver', `bob's sockets after the blip: ${resumeUrls.map((u) => u.pathname + u.search.replace(/access_token=[^&]*/, 'access_token=…')).join(', ')}`);
      assert.ok(
        resumeUrls.some((u) => u.pathname === '/rtc' && u.searchParams.get('reconnect') === '1' && u.searchParams.get('sid') === joined.sid),
        'bob reconnected with reconnect=1 and his sid',
      );
      const aliceEvents = await events(alice);
      assert.deepEqual(
        aliceEvents.filter((x) => x.type === 'ParticipantDisconnected'),
        [],
        'alice never saw bob leave',
      );
      // Media and data keep working both ways over the ICE-restarted peer connections.
      await assertDataBothWays(alice, bob, deadline, 'resume');
      await assertMediaFlows(alice, 'bob', log, deadline);
      await assertMediaFlows(bob, 'alice', log, deadline);
    });
  });

  for (const codec of ['h264', 'vp9', 'av1']) {
    test(`codec ${codec}: a camera published with ${codec.toUpperCase()} reaches the other participant and decodes`, async () => {
      await scenario(`codec-${codec}`, async ({ log, open, deadline }) => {
        const roomId = `bi-${codec}-${randomBytes(3).toString('hex')}`;
        await createRoom(roomId);
        const alice = await open('alice');
        const bob = await open('bob');
        await join(alice, roomId, log, { videoCodec: codec });
        await join(bob, roomId, log);
        await waitSubscribed(bob, 'alice', deadline);
        const s = await assertMediaFlows(bob, 'alice', log, deadline);
        const video = remoteTrack(s, 'alice', 'video');
        const inbound = s.inbound.filter((x) => x.kind === 'video' && x.trackIdentifier === video.mediaStreamTrackId);
        log.add('driver', `bob's inbound video of alice: ${JSON.stringify(inbound)}`);
        assert.ok(
          inbound.length > 0 && inbound.every((x) => (x.codec ?? '').toLowerCase() === `video/${codec}`),
          `bob decodes alice's camera as video/${codec}: ${JSON.stringify(inbound.map((x) => x.codec))}`,
        );
      });
    });
  }

  test('screen share: a ScreenShare track reaches the other participant, decodes, and is withdrawn on stop', async () => {
    await scenario('screen-share', async ({ log, open, deadline }) => {
      const roomId = `bi-screen-${randomBytes(3).toString('hex')}`;
      await createRoom(roomId);
      const alice = await open('alice');
      const bob = await open('bob');
      await join(alice, roomId, log);
      await join(bob, roomId, log);
      await waitSubscribed(bob, 'alice', deadline);
      const sid = await alice.page.evaluate(() => window.shareScreen());
      await waitFor(
        deadline,
        `bob: TrackSubscribed for alice's screen share ${sid}`,
        () => events(bob),
        (e) => e.some((x) => x.type === 'TrackSubscribed' && x.trackSid === sid && x.source === 'screen_share'),
        (e) => JSON.stringify(e.filter((x) => x.type.startsWith('Track'))),
      );
      const screen = (s) => s.tracks.find((t) => t.trackSid === sid);
      await waitFor(
        deadline,
        "bob: framesDecoded of alice's screen share > 10",
        () => stats(bob, log),
        (s) => (screen(s)?.framesDecoded ?? 0) > 10,
        trackSummary,
        1000,
      );
      await alice.page.evaluate(() => window.stopScreenShare());
      await waitFor(
        deadline,
        "bob: alice's screen share is withdrawn",
        () => events(bob),
        (e) => e.some((x) => x.type === 'TrackUnsubscribed' && x.trackSid === sid),
        (e) => JSON.stringify(e.filter((x) => x.type.startsWith('Track'))),
      );
      // The camera keeps flowing after the share stops.
      await assertMediaFlows(bob, 'alice', log, deadline);
    });
  });

  test('e2ee, same key: frames decode on both sides, encryption status true', async () => {
    await scenario('e2ee-same-key', async ({ log, open, deadline }) => {
      const roomId = `bi-e2ee-${randomBytes(3).toString('hex')}`;
      await createRoom(roomId, { e2ee: true });
      const alice = await open('alice');
      const bob = await open('bob');
      await join(alice, roomId, log, { e2eeKey: 'correct horse' });
      await join(bob, roomId, log, { e2eeKey: 'correct horse' });
      await waitSubscribed(alice, 'bob', deadline);
      await waitSubscribed(bob, 'alice', deadline);
      const pairs = [
        [alice, 'bob'],
        [bob, 'alice'],
      ];
      for (const [p, other] of pairs) {
        // The server copied add_track.encryption into the TrackInfo it announces.
        const s = await stats(p, log);
        for (const kind of ['audio', 'video']) {
          const t = remoteTrack(s, other, kind);
          assert.ok(t, `${p.name}: has a remote ${kind} publication of ${other}`);
          assert.equal(t.isEncrypted, true, `${p.name}: ${other}'s ${kind} publication.isEncrypted`);
        }
        await waitFor(
          deadline,
          `${p.name}: ParticipantEncryptionStatusChanged(true) for ${other}`,
          () => events(p),
          (e) => e.some((x) => x.type === 'ParticipantEncryptionStatusChanged' && x.encrypted === true && x.identity === other),
          (e) => JSON.stringify(e.filter((x) => x.type.includes('Encryption'))),
        );
      }
      // Encrypted data packets are relayed opaquely and decrypted by the receiver.
      await assertDataBothWays(alice, bob, deadline, 'e2ee');
      for (const [p, other] of pairs) await assertMediaFlows(p, other, log, deadline);
      for (const [p] of pairs) {
        const e = await events(p);
        assert.deepEqual(e.filter((x) => x.type === 'EncryptionError'), [], `${p.name}: no EncryptionError`);
      }
    });
  });

  test('e2ee, wrong key: encrypted video arrives but never decodes', async () => {
    await scenario('e2ee-wrong-key', async ({ log, open, deadline }) => {
      const roomId = `bi-e2ee-bad-${randomBytes(3).toString('hex')}`;
      await createRoom(roomId, { e2ee: true });
      const alice = await open('alice');
      const bob = await open('bob');
      await join(alice, roomId, log, { e2eeKey: 'key-one' });
      await join(bob, roomId, log, { e2eeKey: 'key-two' });
      await waitSubscribed(alice, 'bob', deadline);
      await waitSubscribed(bob, 'alice', deadline);
      const pairs = [
        [alice, 'bob'],
        [bob, 'alice'],
      ];
      const first = [];
      for (const [p, other] of pairs) {
        // Wait until encrypted video is really arriving (so "0 frames" is not "no media").
        first.push(
          await waitFor(
            deadline,
            `${p.name}: bytes of ${other}'s video arrive`,
            () => stats(p, log),
            (s) => (remoteTrack(s, other, 'video')?.bytesReceived ?? 0) > 0,
            trackSummary,
            1000,
          ),
        );
      }
      await sleep(8_000);
      for (const [i, [p, other]] of pairs.entries()) {
        const s = await stats(p, log);
        assertSdkSubscribed(p, s, other);
        const v0 = remoteTrack(first[i], other, 'video');
        const v1 = remoteTrack(s, other, 'video');
        assert.ok(
          v1.bytesReceived > v0.bytesReceived + 10_000,
          `${p.name}: ${other}'s video bytesReceived rises (${v0.bytesReceived} -> ${v1.bytesReceived})`,
        );
        assert.equal(v1.framesDecoded, 0, `${p.name}: ${other}'s video must not decode with the wrong key`);
        const e = await events(p);
        assert.ok(
          e.some((x) => x.type === 'EncryptionError'),
          `${p.name}: RoomEvent.EncryptionError fired (${JSON.stringify(e.filter((x) => x.type.includes('Encryption')))})`,
        );
      }
    });
  });
});
