// Network-namespace end-to-end suite: the real `enclave` binary runs in one network namespace
// (10.77.0.1, coturn on 10.77.0.3), and its clients run in another (10.77.0.2): LiveKit's native
// Node SDK (@livekit/rtc-node bots, as in tests/livekit-native) and livekit-client in headless Chromium
// (as in tests/livekit-browser). Nothing goes over 127.0.0.1 between them. Four scenarios:
//   1. the server in its default configuration (no rtc.node_ip): it must find and advertise its
//      own address;
//   2. UDP from the clients to the server dropped (nftables): ICE over TCP to the server's TCP
//      port;
//   3. everything to the server side dropped except signalling (TCP to the HTTP port) and UDP to
//      coturn: media through the TURN server, with the time-limited TURN REST credentials the
//      server hands out in the join response.
//   4. the server's two addresses: a check to each is answered from that same address.
// Run only through tests/network/run.sh (root), which makes the namespaces; see README.md.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { X509Certificate, createHash, createHmac, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

import {
  Coturn,
  NET,
  NsEnclaveServer,
  TestLog,
  botIce,
  checkNamespaces,
  describePageIce,
  maskSecrets,
  nftBlock,
  nftList,
  nftUnblock,
  pageIce,
  secret,
} from './harness.mjs';
import {
  CHROMIUM,
  CHROMIUM_ARGS,
  Deadline,
  ENCLAVE_BIN as BIN,
  authPost,
  binFromEnv,
  freeTcpPort,
  freeUdpPort,
  livekitToken,
  packageDir,
  packageVersion,
  requireBinary,
  requireChromium,
  waitFor as waitForMs,
  within,
} from '@enclave-tests/lib';
import { waitFor } from '../livekit-native/harness.mjs';
import { Bot, FFI_VERSION, RTC_NODE_VERSION, assertMediaFlows, rtc, setFfiLog, waitSubscribed } from '../livekit-native/bots.mjs';
import { openParticipant, startStaticServer } from '../livekit-browser/harness.mjs';
import { WEB_CHROMIUM_ARGS, User, mediaFlows, tid } from '../webclient/browser.mjs';
import { Enclave } from '../webclient/server.mjs';

checkNamespaces(); // only inside the client namespace that run.sh made

const require = createRequire(import.meta.url);
const { chromium } = require('playwright-core');
// The native binding rtc-node depends on, for its enums.
const ffi = createRequire(path.join(packageDir('@livekit/rtc-node'), 'package.json'))('@livekit/rtc-ffi-bindings');
const LK_CLIENT_VERSION = packageVersion('livekit-client');

const API_KEY = 'plugnmeet';
const SECRET = secret(24);
const LK_KEY = 'enclave-network-test';
const LK_SECRET = secret(24);

const SCENARIO_MS = 60_000; // hard bound of each scenario
const JOIN_MS = 15_000; // bound of room.connect() in a page (rtc-node's is bots.mjs's CONNECT_MS)
const LK_LOG_LEVEL = process.env.LK_LOG_LEVEL ?? 'debug';

let workDir;
let logDir;
let keepLogs = process.env.ENCLAVE_NETWORK_KEEP_LOGS === '1';
let statik; // the test page, served on 127.0.0.1 of the client namespace (a secure context)
let browser;
const summary = [];

before(async () => {
  requireBinary(BIN);
  requireChromium();
  workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'enclave-network-'));
  logDir = path.join(workDir, 'logs');
  fs.mkdirSync(logDir);
  statik = await startStaticServer();
  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS, timeout: 30_000 });
});

after(async () => {
  if (browser) await browser.close().catch(() => {});
  if (statik) await statik.close().catch(() => {});
  try {
    nftUnblock();
  } catch {
    // the namespace is deleted by run.sh anyway
  }
  try {
    await rtc.dispose();
  } catch {
    // the FFI was never initialised
  }
  process.stdout.write(
    `\nnetwork suite summary (server ${NET.serverIp} in ${NET.srvNs}, clients ${NET.clientIp} in ${NET.cliNs}; ` +
      `@livekit/rtc-node ${RTC_NODE_VERSION} / rtc-ffi-bindings ${FFI_VERSION}, livekit-client ${LK_CLIENT_VERSION}, ` +
      `Chromium ${browser?.version() ?? '?'}; enclave ${BIN}):\n${summary.map((l) => `  ${l}`).join('\n') || '  (no scenario finished)'}\n`,
  );
  if (workDir) {
    for (const d of fs.readdirSync(workDir)) if (d !== 'logs') fs.rmSync(path.join(workDir, d), { recursive: true, force: true });
    if (keepLogs) process.stderr.write(`network suite: per-test logs kept in ${logDir}\n`);
    else fs.rmSync(workDir, { recursive: true, force: true });
  }
});

// ---------------------------------------------------------------------------------------------
// One scenario: its own server (and coturn, and nftables rules), bots and pages, all torn down
// afterwards; on failure everything the clients and the server said is printed.

function tokenFor(identity, roomId) {
  return livekitToken({ apiKey: LK_KEY, secret: LK_SECRET, identity, name: identity, room: roomId });
}

async function scenario(name, body, ms = SCENARIO_MS) {
  const log = new TestLog(logDir, name);
  setFfiLog(log);
  const deadline = new Deadline(ms, `scenario "${name}" bound of ${ms / 1000} s`);
  const dir = fs.mkdtempSync(path.join(workDir, `${name}-`));
  const st = { server: null, coturn: null, blocked: false, bots: [], pages: [] };

  const ctx = {
    log,
    deadline,
    /** enclave in the server namespace; `extra` is the scenario's own configuration. */
    async startServer(extra = {}) {
      const port = await freeTcpPort();
      const env = {
        ENCLAVE_CLIENT__BIND: '0.0.0.0',
        ENCLAVE_CLIENT__PORT: String(port),
        ENCLAVE_CLIENT__API_KEY: API_KEY,
        ENCLAVE_CLIENT__SECRET: SECRET,
        ENCLAVE_LIVEKIT_INFO__API_KEY: LK_KEY,
        ENCLAVE_LIVEKIT_INFO__SECRET: LK_SECRET,
        ENCLAVE_DATABASE__DATA_DIR: path.join(dir, 'data'),
        ENCLAVE_RTC__UDP_PORT: String(await freeUdpPort()),
        ...(process.env.ENCLAVE_LOG ? { RUST_LOG: process.env.ENCLAVE_LOG } : {}),
        ...extra,
      };
      fs.mkdirSync(env.ENCLAVE_DATABASE__DATA_DIR);
      const shown = Object.entries(env)
        .filter(([k]) => k !== 'ENCLAVE_DATABASE__DATA_DIR')
        .map(([k, v]) => `${k}=${v}`)
        .join(' ');
      log.add('driver', `starting enclave in ${NET.srvNs}: ${shown}`);
      const server = new NsEnclaveServer({ bin: BIN, env, ns: NET.srvNs });
      st.server = server;
      server.start();
      const baseUrl = `http://${NET.serverIp}:${port}`;
      try {
        await server.waitHealthy(baseUrl, 20_000);
      } catch (e) {
        // The whole output is printed with the failure; the message keeps its error line.
        const out = server.since(0);
        const why = /^Error: .*$/m.exec(out)?.[0] ?? e.message.split('\n')[0];
        const extraKeys = Object.keys(extra).join(', ');
        throw new Error(
          `the server did not start with this scenario's configuration${extraKeys ? ` (${extraKeys})` : ''}` +
            `${server.running ? '' : ` (exit code ${server.child.exitCode})`}: ${maskSecrets(why)}`,
        );
      }
      const banner = server.since(0).split('\n').filter((l) => /^\s*(Media|TURN)\b|sockets? bound/.test(l));
      log.add('driver', `enclave is healthy at ${baseUrl}; banner: ${JSON.stringify(banner)}`);
      return { server, port, baseUrl, wsUrl: `ws://${NET.serverIp}:${port}` };
    },
    /** coturn in the server namespace on TURN_IP:port with TURN REST API auth. */
    async startCoturn({ port, authSecret, realm }) {
      const coturn = new Coturn({ ns: NET.srvNs, ip: NET.turnIp, port, authSecret, realm, dir: path.join(dir, 'coturn') });
      st.coturn = coturn;
      log.add('driver', `starting coturn: ${coturn.describe()}`);
      coturn.start();
      await coturn.waitReady(10_000);
      log.add('driver', `coturn answers STUN on ${NET.turnIp}:${port}`);
      return coturn;
    },
    /** nftables rules in the client namespace's output chain (removed after the scenario). */
    block(rules) {
      st.blocked = true;
      const text = nftBlock(rules);
      log.add('driver', `nftables in ${NET.cliNs}:\n${text}`);
    },
    bot(who, conn) {
      const b = new Bot(who, log, conn);
      st.bots.push(b);
      return b;
    },
    async open(who) {
      const p = await openParticipant(browser, statik.origin, log, who);
      st.pages.push(p);
      return p;
    },
  };

  let timer;
  const bound = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`scenario "${name}" did not finish within ${ms / 1000} s`)), ms + 2_000);
  });
  try {
    await Promise.race([body(ctx), bound]);
  } catch (e) {
    keepLogs = true;
    await dumpClients(log, st);
    if (st.blocked) log.add('driver', `nftables at the end (with counters):\n${nftList()}`);
    const offered = offeredCandidates(log);
    const seen = st.server ? `; ICE candidates the server offered: ${offered.length ? offered.join(', ') : 'none seen'}` : '';
    summary.push(`${name}: FAILED: ${maskSecrets(e.message.split('\n')[0])}${seen}`);
    process.stderr.write(
      `\n===== network suite "${name}" failed: ${maskSecrets(e.message)}\n` +
        (st.server ? `===== ICE candidates the server offered (from the SDPs the clients got): ${offered.join(', ') || 'none seen'}\n` : '') +
        `===== log (${log.file}):\n${log.excerpt()}\n` +
        `===== enclave output (last 24 KiB):\n${maskSecrets(st.server?.since(0).slice(-24 * 1024) ?? '(not started)')}\n` +
        (st.coturn ? `===== coturn output (last 8 KiB):\n${st.coturn.log.slice(-8 * 1024)}\n` : '') +
        '===== end\n',
    );
    throw e;
  } finally {
    clearTimeout(timer);
    for (const b of st.bots) await b.close();
    for (const p of st.pages) {
      await within(5_000, p.page.evaluate(() => window.leave()), 'leave').catch(() => {});
      await within(10_000, p.context.close(), `${p.name}: close`).catch(() => {});
    }
    if (st.blocked) {
      try {
        nftUnblock();
      } catch (e) {
        log.add('driver', e.message);
      }
    }
    if (st.coturn) {
      await st.coturn.stop();
      fs.writeFileSync(log.file.replace(/\.log$/, '.coturn.log'), st.coturn.log);
    }
    if (st.server) {
      await st.server.stop();
      fs.writeFileSync(log.file.replace(/\.log$/, '.server.log'), maskSecrets(st.server.since(0)));
    }
    setFfiLog(null);
  }
}

/**
 * The server's ICE candidates as the clients saw them, e.g. "udp 10.77.0.1:7882 host": from the
 * subscriber offers in the SDK's debug log (rtc-node) and the remote SDPs of the pages (written
 * into the log by dumpClients).
 */
function offeredCandidates(log) {
  const found = new Set();
  for (const line of log.lines) {
    for (const m of line.matchAll(/a=candidate:(\S+ \d+ (\w+) \d+ (\S+) (\d+) typ (\w+)(?: raddr \S+ rport \d+)?(?: tcptype (\w+))?)/g)) {
      found.add(`${m[2].toLowerCase()} ${m[3]}:${m[4]} ${m[5]}${m[6] ? ` ${m[6]}` : ''}`);
    }
  }
  return [...found];
}

/** Final events, counters, stats and ICE state of every client, into the log (on failure). */
async function dumpClients(log, st) {
  for (const b of st.bots) {
    log.add('driver', `final events of ${b.name}: ${JSON.stringify(b.events)}`);
    log.add('driver', `final counters of ${b.name}: ${JSON.stringify(Object.fromEntries([...b.remote.keys()].map((k) => [k, b.counters(...k.split('/'))])))}`);
    try {
      log.add('driver', `final inbound stats of ${b.name}: ${JSON.stringify(await b.stats())}`);
      log.add('driver', `final ICE of ${b.name}: ${JSON.stringify(await within(5_000, botIce(b, ffi), 'getRtcStats'))}`);
    } catch (err) {
      log.add('driver', `no final stats of ${b.name}: ${err.message}`);
    }
  }
  for (const p of st.pages) {
    try {
      log.add('driver', `final events of ${p.name}: ${JSON.stringify(await within(3_000, p.page.evaluate(() => window.events()), 'events'))}`);
      const s = await within(3_000, p.page.evaluate(() => window.stats()), 'stats');
      log.add('driver', `final stats of ${p.name}: ${JSON.stringify(s)}`);
      log.add('driver', `final ICE of ${p.name}: ${describePageIce(await within(5_000, pageIce(p.page), 'pageIce'))}`);
      const sdps = await within(3_000, p.page.evaluate(() => window.__sdps || []), 'sdps');
      let file;
      for (const d of sdps.slice(-6)) file = log.attach('sdp', `${p.name} pc ${d.pc} ${d.side} ${d.type} at ${d.t} ms`, d.sdp);
      if (file) log.add('driver', `the last SDPs of ${p.name} are in ${file}`);
    } catch (err) {
      log.add('driver', `no final state of ${p.name}: ${err.message}`);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Rooms, joining, data, media

async function createRoom(srv, roomId) {
  const res = await authPost(srv.baseUrl, API_KEY, SECRET, '/room/create', {
    room_id: roomId,
    max_participants: 10,
    empty_timeout: 300,
    metadata: { room_title: `network ${roomId}`, room_features: { allow_webcams: true, mute_on_start: false } },
  });
  assert.equal(res.status, 200, `room/create: HTTP ${res.status} ${res.text}`);
  assert.equal(res.json?.status, true, `room/create failed: ${res.text}`);
}

/** A Chromium participant joins (livekit-client connect, then camera and microphone). */
async function joinPage(p, srv, roomId, log) {
  log.add('driver', `${p.name} joins ${srv.wsUrl} room ${roomId}`);
  try {
    return await p.page.evaluate(([url, tok, opts]) => window.join(url, tok, opts), [
      srv.wsUrl,
      tokenFor(p.name, roomId),
      { logLevel: LK_LOG_LEVEL, connectTimeoutMs: JOIN_MS },
    ]);
  } catch (e) {
    const m = /join failed: .*/.exec(e.message);
    throw new Error(`${p.name} (Chromium) could not join: ${m ? m[0] : e.message}`);
  }
}

async function pageEvents(p) {
  return p.page.evaluate(() => window.events());
}

/** Waits until page `p` got TrackSubscribed for `other`'s audio and video, with no failure. */
async function pageWaitSubscribed(p, other, deadline) {
  const bad = (x) => ['TrackSubscriptionFailed', 'JoinFailed', 'Disconnected'].includes(x.type);
  const evs = await waitFor(
    deadline,
    `${p.name}: TrackSubscribed for ${other}'s audio and video`,
    () => pageEvents(p),
    (e) => {
      if (e.some(bad)) return true;
      const kinds = new Set(e.filter((x) => x.type === 'TrackSubscribed' && x.identity === other).map((x) => x.kind));
      return kinds.has('audio') && kinds.has('video');
    },
    (e) => JSON.stringify(e.filter((x) => x.type !== 'ConnectionStateChanged')),
    250,
  );
  assert.deepEqual(evs.filter(bad), [], `${p.name}: no TrackSubscriptionFailed / Disconnected expected`);
}

/**
 * Every participant (bots and pages) sends one reliable data message; every other one must
 * receive it, with the sender's identity.
 */
async function assertDataEverywhere(participants, deadline, tag) {
  const isPage = (x) => Boolean(x.page);
  const sent = [];
  for (const from of participants) {
    const text = `${tag}: hello from ${from.name} ${randomBytes(3).toString('hex')}`;
    if (isPage(from)) await within(5_000, from.page.evaluate((t) => window.sendData(t), text), `${from.name}: sendData`);
    else await from.sendData(text);
    sent.push({ from: from.name, text });
  }
  for (const to of participants) {
    for (const { from, text } of sent.filter((s) => s.from !== to.name)) {
      const got = await waitFor(
        deadline,
        `${to.name}: the reliable data message of ${from}`,
        async () => (isPage(to) ? (await pageEvents(to)).filter((x) => x.type === 'DataReceived') : to.data),
        (list) => list.some((d) => d.text === text),
        (list) => JSON.stringify(list),
      );
      const d = got.find((x) => x.text === text);
      assert.equal(d.identity, from, `${to.name}: the sender identity of ${JSON.stringify(text)}`);
    }
  }
  return sent.length;
}

function remoteTrack(s, identity, kind) {
  return s.tracks.find((t) => t.identity === identity && t.kind === kind);
}

/** Page `p` decodes `other`'s video (> 20 frames, rising) and receives its audio (rising). */
async function pageMediaFlows(p, other, log, deadline) {
  const stats = async () => p.page.evaluate(() => window.stats());
  await waitFor(
    deadline,
    `${p.name}: framesDecoded of ${other}'s video > 20`,
    stats,
    (s) => (remoteTrack(s, other, 'video')?.framesDecoded ?? 0) > 20 && (remoteTrack(s, other, 'audio')?.packetsReceived ?? 0) > 0,
    (s) => JSON.stringify(s.tracks),
    500,
  );
  const a = await stats();
  await sleep(2_000);
  const b = await stats();
  const [va, vb] = [remoteTrack(a, other, 'video'), remoteTrack(b, other, 'video')];
  const [aa, ab] = [remoteTrack(a, other, 'audio'), remoteTrack(b, other, 'audio')];
  log.add('driver', `media of ${other} at ${p.name}: video ${JSON.stringify(va)} -> ${JSON.stringify(vb)}; audio ${aa.packetsReceived} -> ${ab.packetsReceived} packets`);
  for (const t of [vb, ab]) assert.equal(t.isSubscribed, true, `${p.name}: ${other}'s ${t.kind} publication.isSubscribed`);
  assert.ok(vb.framesDecoded > va.framesDecoded, `${p.name}: ${other}'s video framesDecoded rises (${va.framesDecoded} -> ${vb.framesDecoded})`);
  assert.ok(ab.packetsReceived > aa.packetsReceived, `${p.name}: ${other}'s audio packetsReceived rises (${aa.packetsReceived} -> ${ab.packetsReceived})`);
  return { video: vb.framesDecoded, fps: (((vb.framesDecoded - va.framesDecoded) * 1000) / (b.t - a.t)).toFixed(1) };
}

/**
 * Bot `b` decodes the media of Chromium participant `other`: video frames (> 20, rising) and
 * audio frames (> 50, rising), and the RTP of that audio keeps arriving (WebRTC inbound stats:
 * the native audio sink would produce frames of silence without packets too). Chromium's fake
 * devices give a test pattern and a short beep, so the picture and the pitch are not checked.
 */
async function botGetsPageMedia(b, other, log, deadline) {
  const sample = async () => {
    const inbound = await b.stats();
    const sid = b.remote.get(`${other}/audio`)?.sid;
    return {
      t: Date.now(),
      v: b.counters(other, 'video'),
      a: b.counters(other, 'audio'),
      // The subscriber's inbound audio of `other`: libwebrtc names it by the track id of the
      // server's offer (the track sid); fall back to all audio if that does not match.
      audioPackets: inbound
        .filter((x) => x.kind === 'audio' && (x.track === sid || !inbound.some((y) => y.track === sid)))
        .reduce((n, x) => n + x.packets, 0),
    };
  };
  await waitFor(
    deadline,
    `${b.name}: > 20 video frames and > 50 audio frames of ${other}`,
    sample,
    (s) => s.v?.frames > 20 && s.a?.frames > 50,
    (s) => JSON.stringify(s),
    500,
  );
  const s1 = await sample();
  await sleep(2_000);
  const s2 = await sample();
  log.add('driver', `media of ${other} at ${b.name}: ${JSON.stringify(s1)} -> ${JSON.stringify(s2)}`);
  assert.ok(s2.v.frames > s1.v.frames, `${b.name}: ${other}'s video frames rise (${s1.v.frames} -> ${s2.v.frames})`);
  assert.ok(s2.v.dims.length > 0, `${b.name}: ${other}'s video has a size`);
  assert.ok(s2.a.frames > s1.a.frames, `${b.name}: ${other}'s audio frames rise (${s1.a.frames} -> ${s2.a.frames})`);
  assert.ok(s2.audioPackets > s1.audioPackets, `${b.name}: ${other}'s audio RTP keeps arriving (${s1.audioPackets} -> ${s2.audioPackets} packets)`);
  // Chromium's fake microphone beeps a few times a second: loud frames keep coming, so the audio
  // decodes to sound, not to the silence a sink makes up without packets.
  const loud = (s) => s.a.toneFrames + s.a.loudNoiseFrames;
  assert.ok(loud(s2) > loud(s1), `${b.name}: ${other}'s decoded audio carries sound (loud frames ${loud(s1)} -> ${loud(s2)})`);
  return { video: s2.v.frames, dims: s2.v.dims };
}

/** Every pair of participants: each decodes the other's media (checks run side by side). */
async function assertMediaEverywhere(participants, log, deadline) {
  const checks = [];
  for (const to of participants) {
    for (const from of participants) {
      if (from === to) continue;
      if (to.page) checks.push(pageMediaFlows(to, from.name, log, deadline).then((r) => `${to.name}<-${from.name} ${r.video} frames`));
      else if (from.page) checks.push(botGetsPageMedia(to, from.name, log, deadline).then((r) => `${to.name}<-${from.name} ${r.video} frames ${r.dims}`));
      else checks.push(assertMediaFlows(to, from.name, log, deadline).then((r) => `${to.name}<-${from.name} ${r.video} frames, ${r.toneHz} Hz tone`));
    }
  }
  return Promise.all(checks);
}

/** The selected candidate pairs of every connected PC of a page and of bots, logged and returned. */
async function paths(log, pages, bots) {
  const out = {};
  for (const p of pages) {
    const ice = await within(5_000, pageIce(p.page), `${p.name}: getStats`);
    log.add('driver', `ICE of ${p.name}: ${describePageIce(ice)}`);
    out[p.name] = ice;
  }
  for (const b of bots) {
    const ice = await within(5_000, botIce(b, ffi), `${b.name}: getRtcStats`);
    log.add('driver', `ICE of ${b.name}: ${JSON.stringify(ice)}`);
    out[b.name] = ice;
  }
  return out;
}

const short = (c) => (c ? `${c.candidateType}/${c.protocol} ${c.address}:${c.port}` : 'none');

/** The selected pairs of a page's connected PCs (at least two: publisher and subscriber). */
function pagePairs(name, ice) {
  const live = ice.pcs.filter((p) => p.connectionState === 'connected');
  assert.ok(live.length >= 2, `${name}: publisher and subscriber PCs connected (${JSON.stringify(ice.pcs.map((p) => p.connectionState))})`);
  for (const p of live) assert.ok(p.selected?.local && p.selected?.remote, `${name}: PC ${p.pc} has a selected candidate pair (${describePageIce(ice)})`);
  return live.map((p) => p.selected);
}

function botPairs(name, ice) {
  for (const side of ['publisher', 'subscriber']) {
    assert.ok(ice[side]?.local && ice[side]?.remote, `${name}: the ${side} PC has a selected candidate pair (${JSON.stringify(ice)})`);
  }
  return [ice.publisher, ice.subscriber];
}

// ---------------------------------------------------------------------------------------------

describe(`clients in another network namespace than enclave (@livekit/rtc-node ${RTC_NODE_VERSION}, livekit-client ${LK_CLIENT_VERSION} in Chromium)`, () => {
  test('clients on another address join with the default configuration', { timeout: SCENARIO_MS + 15_000 }, async () => {
    await scenario('default-config', async ({ log, deadline, startServer, bot, open }) => {
      // The default configuration is what this scenario asserts: no ENCLAVE_RTC__NODE_IP (keep
      // it out; no rtc setting but the UDP port). The server has to find 10.77.0.1 on its own
      // interfaces and advertise it. A server that advertises 127.0.0.1 (the old default) gives
      // the clients in the other namespace no media path: the first bot's connect() then fails
      // and the failure report lists the candidates the server offered.
      const srv = await startServer({});
      const roomId = `net-default-${randomBytes(3).toString('hex')}`;
      await createRoom(srv, roomId);
      const conn = { wsUrl: srv.wsUrl, tokenFor };
      const ann = bot('ann', conn);
      const ben = bot('ben', conn);
      await ann.connect(roomId);
      await ann.publishMedia();
      await ben.connect(roomId);
      await ben.publishMedia();
      const carol = await open('carol');
      await joinPage(carol, srv, roomId, log);
      await Promise.all([
        waitSubscribed(ann, 'ben', deadline),
        waitSubscribed(ann, 'carol', deadline),
        waitSubscribed(ben, 'ann', deadline),
        waitSubscribed(ben, 'carol', deadline),
        pageWaitSubscribed(carol, 'ann', deadline),
        pageWaitSubscribed(carol, 'ben', deadline),
      ]);
      const everyone = [ann, ben, carol];
      const messages = await assertDataEverywhere(everyone, deadline, 'default');
      const media = await assertMediaEverywhere(everyone, log, deadline);
      const ice = await paths(log, [carol], [ann, ben]);
      summary.push(
        `default-config: PASS — ${media.join('; ')}; ${messages} reliable data messages each reached the 2 others; ` +
          `carol's paths: ${ice.carol.pcs.filter((p) => p.selected).map((p) => `${short(p.selected?.local)} -> ${short(p.selected?.remote)}`).join(', ')}`,
      );
    });
  });

  test('with UDP blocked, clients connect over TCP', { timeout: SCENARIO_MS + 15_000 }, async () => {
    await scenario('udp-blocked-tcp', async ({ log, deadline, startServer, block, bot, open }) => {
      const tcpPort = await freeTcpPort();
      const srv = await startServer({ ENCLAVE_RTC__TCP_PORT: String(tcpPort) });
      // Every UDP packet leaving the client's link is dropped: to 10.77.0.1, but also to 10.77.0.3
      // and to the server's IPv6 link-local address, which are the server host's addresses too
      // (a server that advertises all its addresses would otherwise get UDP through them).
      block([`oifname "${NET.cliIf}" meta l4proto udp counter drop`]);
      const roomId = `net-tcp-${randomBytes(3).toString('hex')}`;
      await createRoom(srv, roomId);
      // Chromium first: if it cannot connect, its SDPs in the log show the server's candidates.
      const erin = await open('erin');
      await joinPage(erin, srv, roomId, log);
      const dan = bot('dan', { wsUrl: srv.wsUrl, tokenFor });
      await dan.connect(roomId);
      await dan.publishMedia();
      await Promise.all([waitSubscribed(dan, 'erin', deadline), pageWaitSubscribed(erin, 'dan', deadline)]);
      const messages = await assertDataEverywhere([dan, erin], deadline, 'tcp');
      const media = await assertMediaEverywhere([dan, erin], log, deadline);
      const ice = await paths(log, [erin], [dan]);
      log.add('driver', `nftables after the media checks:\n${nftList()}`);
      for (const pair of pagePairs('erin', ice.erin)) {
        assert.equal(pair.local.protocol, 'tcp', `erin: the selected local candidate is TCP (${short(pair.local)} -> ${short(pair.remote)})`);
        assert.equal(pair.remote.protocol, 'tcp', `erin: the selected remote candidate is TCP (${short(pair.remote)})`);
        assert.equal(pair.remote.port, tcpPort, `erin: the selected remote candidate is the server's TCP port ${tcpPort} (${short(pair.remote)})`);
      }
      for (const pair of botPairs('dan', ice.dan)) {
        assert.equal(pair.local.protocol, 'tcp', `dan: the selected local candidate is TCP (${short(pair.local)} -> ${short(pair.remote)})`);
        assert.equal(pair.remote.protocol, 'tcp', `dan: the selected remote candidate is TCP (${short(pair.remote)})`);
      }
      summary.push(
        `udp-blocked-tcp: PASS — ${media.join('; ')}; ${messages} reliable data messages; selected pairs: ` +
          `erin ${pagePairs('erin', ice.erin).map((p) => `${short(p.local)} -> ${short(p.remote)}`).join(', ')}; ` +
          `dan ${botPairs('dan', ice.dan).map((p) => `${short(p.local)} -> ${short(p.remote)}`).join(', ')}`,
      );
    });
  });

  test('with only the TURN server reachable, clients connect through it', { timeout: SCENARIO_MS + 15_000 }, async () => {
    await scenario('turn-only', async ({ log, deadline, startServer, startCoturn, block, bot, open }) => {
      const turnPort = await freeUdpPort();
      const authSecret = secret();
      const ttl = 600; // seconds; rtc.turn_servers[].ttl is a duration like the other keys: 10m
      await startCoturn({ port: turnPort, authSecret, realm: 'enclave.test' });
      const srv = await startServer({
        ENCLAVE_RTC__TURN_SERVERS: `[{host: "${NET.turnIp}", port: ${turnPort}, protocol: udp, secret: "${authSecret}", ttl: ${ttl / 60}m}]`,
      });
      // From the clients, only signalling (TCP to the server's HTTP port) and UDP to coturn leave
      // the client's link; everything else (IPv4 and IPv6, UDP and TCP, the server's media ports
      // on every address) is dropped.
      block([
        `oifname "${NET.cliIf}" ip daddr ${NET.serverIp} tcp dport ${srv.port} accept`,
        `oifname "${NET.cliIf}" ip daddr ${NET.turnIp} udp dport ${turnPort} accept`,
        `oifname "${NET.cliIf}" counter drop`,
      ]);
      const roomId = `net-turn-${randomBytes(3).toString('hex')}`;
      await createRoom(srv, roomId);
      const gina = await open('gina');
      const joinedAt = Math.floor(Date.now() / 1000);
      let joinError = null; // reported after what the join response said about TURN
      await joinPage(gina, srv, roomId, log).catch((e) => {
        joinError = e;
      });

      // The ICE servers the server handed to Chromium in the join response (livekit-client
      // configures its peer connections with them): our coturn, with TURN REST credentials
      // (username "<expiry>:<id>", credential base64(HMAC-SHA1(secret, username))) that expire
      // within the configured ttl.
      const given = (await pageIce(gina.page)).pcs.flatMap((p) => p.iceServers);
      const turn = given.find((s) => s.urls.some((u) => u.startsWith(`turn:${NET.turnIp}:${turnPort}`)));
      assert.ok(
        turn,
        `the server gave gina turn:${NET.turnIp}:${turnPort} in the join response's ice_servers (her peer connections ` +
          `have: ${JSON.stringify(given.map((s) => s.urls))})${joinError ? `; and she could not join: ${joinError.message}` : ''}`,
      );
      const expiry = Number(/^(\d+):/.exec(turn.username ?? '')?.[1]);
      assert.ok(
        expiry > joinedAt && expiry <= joinedAt + ttl + 5,
        `the TURN username starts with an expiry within ${ttl} s (username ${JSON.stringify(turn.username)}, joined at ${joinedAt})`,
      );
      assert.equal(
        turn.credential,
        createHmac('sha1', authSecret).update(turn.username).digest('base64'),
        'the TURN credential is base64(HMAC-SHA1(secret, username))',
      );
      if (joinError) throw joinError;

      const hal = bot('hal', { wsUrl: srv.wsUrl, tokenFor });
      await hal.connect(roomId);
      await hal.publishMedia();
      await Promise.all([waitSubscribed(hal, 'gina', deadline), pageWaitSubscribed(gina, 'hal', deadline)]);
      const messages = await assertDataEverywhere([hal, gina], deadline, 'turn');
      const media = await assertMediaEverywhere([hal, gina], log, deadline);
      const ice = await paths(log, [gina], [hal]);
      log.add('driver', `nftables after the media checks:\n${nftList()}`);
      for (const pair of pagePairs('gina', ice.gina)) {
        assert.equal(pair.local.candidateType, 'relay', `gina: the selected local candidate is a relay (${short(pair.local)} -> ${short(pair.remote)})`);
        assert.equal(pair.local.relayProtocol, 'udp', `gina: relayed over UDP to coturn (${JSON.stringify(pair.local)})`);
      }
      for (const pair of botPairs('hal', ice.hal)) {
        assert.equal(pair.local.candidateType, 'relay', `hal: the selected local candidate is a relay (${short(pair.local)} -> ${short(pair.remote)})`);
      }
      summary.push(
        `turn-only: PASS — ${media.join('; ')}; ${messages} reliable data messages; selected pairs: ` +
          `gina ${pagePairs('gina', ice.gina).map((p) => `${short(p.local)} -> ${short(p.remote)}`).join(', ')}; ` +
          `hal ${botPairs('hal', ice.hal).map((p) => `${short(p.local)} -> ${short(p.remote)}`).join(', ')}`,
      );
    });
  });

  test("a check to either of the server's two addresses is answered from that address", { timeout: SCENARIO_MS + 15_000 }, async () => {
    await scenario('two-addresses', async ({ log, startServer }) => {
      // The server namespace has two addresses (SERVER_IP and TURN_IP, nothing runs on the
      // second here); with the default configuration both are advertised. A str0m client
      // (`enclave-bench probe`, crates/bench/src/probe.rs) checks each from CLIENT_IP and reports
      // where every answer came from: an answer from another address than the one asked is
      // dropped by real clients (the bug of a wildcard socket without IP_PKTINFO).
      const srv = await startServer({});
      const roomId = `net-two-${randomBytes(3).toString('hex')}`;
      await createRoom(srv, roomId);
      const url = `${srv.wsUrl}/rtc?access_token=${tokenFor('probe', roomId)}&auto_subscribe=1&protocol=17`;
      const out = await runProbe(['probe', '--url', url, '--bind', NET.clientIp, '--secs', '4'], log);
      const seen = JSON.parse(out);
      log.add('driver', `probe: ${out}`);
      const udp = seen.offered_udp;
      for (const ip of [NET.serverIp, NET.turnIp]) {
        const addr = udp.find((a) => a.startsWith(`${ip}:`));
        assert.ok(addr, `${ip} is offered as a UDP candidate (offered: ${udp.join(', ')})`);
        assert.ok(seen.sent_to.includes(addr), `a check went to ${addr} (${out})`);
        assert.ok(seen.answered_from.includes(addr), `an answer came from ${addr} (${out})`);
      }
      for (const from of seen.answered_from) {
        assert.ok(seen.sent_to.includes(from), `${from} answered, but no check was sent there (${out})`);
      }
      assert.equal(seen.connected, true, `ICE connected (${out})`);
      summary.push(`two-addresses: PASS — answers from ${seen.answered_from.join(' and ')}, each to its own check`);
    });
  });
});

// ---------------------------------------------------------------------------------------------
// Our own web client from another machine, over the server's own HTTPS (its local certificate
// authority, made at the first start). Chromium trusts the authority through its pinning flag
// (--ignore-certificate-errors-spki-list with the authority's public-key hash), not by turning
// certificate checks off: a certificate from any other authority would still be refused.

describe('HTTPS out of the box: the web client from another machine', () => {
  test('plain HTTP from elsewhere shows the HTTPS page; over HTTPS three people hold a server-key E2EE meeting', { timeout: 120_000 }, async () => {
    await scenario(
      'https-webclient',
      async ({ log, startServer }) => {
        const srv = await startServer({});
        const port = srv.port;
        const https = `https://${NET.serverIp}:${port}`;
        const caFile = path.join(srv.server.env.ENCLAVE_DATABASE__DATA_DIR, 'tls', 'ca.crt');
        const ca = new X509Certificate(fs.readFileSync(caFile));
        const pin = createHash('sha256').update(ca.publicKey.export({ type: 'spki', format: 'der' })).digest('base64');
        assert.ok(ca.ca, 'the served authority is a CA certificate');
        // The banner says where to get it and its fingerprint (the one a person compares).
        // (Printed right after the listener answers: wait for it.)
        const banner = await waitForMs(5_000, 'the banner', () => srv.server.since(0), (t) => /SHA-256 /.test(t), (t) => t.slice(-2000));
        assert.ok(banner.includes(`${https}/?access_token=<token>`), `the banner gives the https link from another machine:\n${banner}`);
        assert.ok(banner.includes(ca.fingerprint256), `the banner shows the authority's SHA-256 fingerprint ${ca.fingerprint256}`);
        const served = await fetch(`${srv.baseUrl}/ca.crt`).then((r) => r.text());
        assert.equal(served, fs.readFileSync(caFile, 'utf8'), '/ca.crt serves the authority');

        const chrome = await chromium.launch({
          executablePath: CHROMIUM,
          headless: true,
          args: [...WEB_CHROMIUM_ARGS, `--ignore-certificate-errors-spki-list=${pin}`],
          timeout: 30_000,
        });
        const users = [];
        try {
          const roomId = `net-https-${randomBytes(3).toString('hex')}`;
          const api = Object.assign(Object.create(Enclave.prototype), { base: srv.baseUrl, apiKey: API_KEY, secret: SECRET });
          await api.createRoom(roomId, 'server_key');
          const env = { base: https, joinToken: (...a) => api.joinToken(...a) };

          // Plain HTTP from another machine: not a secure context. One sentence, and a link to
          // the same page over HTTPS (the token carried over).
          const token = await api.joinToken(roomId, 'eve', 'Eve');
          const ctx = await chrome.newContext();
          const page = await ctx.newPage();
          page.on('console', (m) => log.add('plain', `console.${m.type()}: ${m.text()}`));
          await page.goto(`${srv.baseUrl}/?access_token=${token}`);
          await page.waitForSelector(tid('insecure-context-page'), { timeout: 15_000 });
          assert.equal(await page.evaluate(() => window.isSecureContext), false);
          const href = await page.getAttribute(tid('insecure-context-https-link'), 'href');
          assert.equal(href, `${https}/?access_token=${token}`, 'the link is the same page over HTTPS');
          assert.equal(await page.locator(tid('prejoin')).count(), 0, 'no pre-join in an insecure context');
          assert.equal(await page.getAttribute(tid('ca-download-link'), 'href'), '/ca.crt');
          await page.click(tid('insecure-context-https-link'));
          await page.waitForSelector(tid('prejoin'), { timeout: 20_000 });
          assert.equal(await page.evaluate(() => [location.protocol, window.isSecureContext].join(' ')), 'https: true');
          await ctx.close();
          log.add('driver', 'plain HTTP: the insecure-context page linked to HTTPS; over HTTPS the pre-join loaded in a secure context');

          // Three people over HTTPS in a server-key E2EE room.
          for (const [id, name, admin] of [['ann', 'Ann', true], ['bob', 'Bob', false], ['cat', 'Cat', false]]) {
            users.push(new User(env, log, { room: roomId, id, name, admin }));
          }
          await Promise.all(users.map((u) => u.enter(chrome)));
          const seen = [];
          await Promise.all(
            users.map(async (u) => {
              const others = users.filter((o) => o !== u).map((o) => o.id);
              const { a, b } = await mediaFlows(u, others);
              for (const o of others) {
                assert.ok(b.video[o].framesDecoded > a.video[o].framesDecoded, `${u.id}: ${o}'s video framesDecoded rises`);
                assert.ok(b.audio[o].packetsReceived > a.audio[o].packetsReceived, `${u.id}: ${o}'s audio packets rise`);
                seen.push(`${u.id}←${o} ${b.video[o].framesDecoded} frames`);
              }
            }),
          );
          for (const u of users) {
            await waitForMs(10_000, `${u.id}'s e2ee-status = encrypted`, () => u.status(), (st) => st === 'encrypted', (st) => st);
            assert.equal(await u.page.evaluate(() => window.isSecureContext), true);
          }
          // Each arrival moves the key to a new epoch; everyone is on the last one within a second.
          const codes = await waitForMs(5000, 'one verification code for all', () => Promise.all(users.map((u) => u.code())), (cs) => !!cs[0] && cs.every((c) => c === cs[0]), (cs) => cs.join(' / '));
          summary.push(`https-webclient: PASS — insecure page linked to HTTPS; 3 people over ${https} (local CA pinned): encrypted, code ${codes[0]}, ${seen.join(', ')}`);
        } finally {
          for (const u of users) await u.close();
          await chrome.close().catch(() => {});
        }
      },
      110_000,
    );
  });
});

/** Runs `enclave-bench probe` (the str0m ICE probe) in this namespace; its stdout. */
function runProbe(args, log) {
  const bin = binFromEnv('SFU_BENCH_BIN', 'enclave-bench');
  if (!fs.existsSync(bin)) {
    throw new Error(`enclave-bench not found at ${bin}: run \`cargo build -p enclave-bench\` first, or set SFU_BENCH_BIN`);
  }
  return new Promise((resolve, reject) => {
    execFile(bin, args, { timeout: 20_000 }, (err, stdout, stderr) => {
      if (stderr) log.add('probe', stderr.trim());
      if (err) reject(new Error(`enclave-bench probe failed: ${err.message}\n${stderr}`));
      else resolve(stdout.trim().split('\n').pop());
    });
  });
}
