// Native interop test: LiveKit's Node SDK `@livekit/rtc-node` (pinned in package.json; a thin
// JS layer over LiveKit's Rust SDK, shipped as the `@livekit/rtc-ffi-bindings` native binding)
// joins the embedded SFU of the real `enclave` binary — no browser. Two bots in this process:
// "pub" publishes a synthetic audio track (48 kHz mono sine) and a synthetic video track
// (320x240 I420, changing pattern, ~15 fps) and sends reliable data; "sub" auto-subscribes,
// reads the decoded frames through AudioStream / VideoStream and receives the data.
// Scenarios: plain, E2EE with the same shared key, E2EE with different keys.
// The bots, the SDK's FFI tap and the synthetic media live in bots.mjs (shared with
// recording.test.mjs). Run with `node --test --test-concurrency=1 tests/livekit-native/` (see README.md).
//
// What the Rust SDK does on the wire: ../../../shared/docs/livekit-protocol.md §1.4, §1.5, §2
// (tries /rtc/v1 first, falls back to /rtc on HTTP 404 without calling validate, Bearer token,
// protocol 17 in rtc-node 1.1.0).

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';

import { WorkDir, launchEnclave } from '@enclave-tests/lib';
import { waitFor } from './harness.mjs';
import { FFI_VERSION, RTC_NODE_VERSION, assertMediaFlows, rtc, waitSubscribed } from './bots.mjs';
import { botScenarios } from './scenario.mjs';

const { EncryptionType, dispose } = rtc;

const SCENARIO_MS = 40_000; // hard bound of each scenario

let work; // temp: data dir of the server and per-test logs (kept after a failure)
let server; // launchEnclave
const summary = []; // one line per scenario, printed at the end

// ---------------------------------------------------------------------------------------------

before(async () => {
  work = new WorkDir('enclave-native-', { label: 'native interop', keepLogs: process.env.ENCLAVE_NATIVE_KEEP_LOGS === '1' });
  server = await launchEnclave({
    dataDir: work.dataDir,
    lkKey: 'enclave-native-test',
    env: process.env.ENCLAVE_LOG ? { RUST_LOG: process.env.ENCLAVE_LOG } : {},
  });
});

after(async () => {
  if (server) await server.stop();
  try {
    await dispose();
  } catch {
    // the FFI was never initialised
  }
  process.stdout.write(
    `\nnative interop summary (@livekit/rtc-node ${RTC_NODE_VERSION}, rtc-ffi-bindings ${FFI_VERSION}, ` +
      `enclave ${server?.bin}):\n${summary.map((l) => `  ${l}`).join('\n') || '  (no scenario finished)'}\n`,
  );
  work?.finish();
});

// ---------------------------------------------------------------------------------------------
// Helpers

function createRoom(roomId, { e2ee = false } = {}) {
  const features = { allow_webcams: true, mute_on_start: false };
  if (e2ee) {
    // Self-inserted key: the participants share the key; the server holds nothing.
    features.end_to_end_encryption_features = { is_enabled: true, enabled_self_insert_encryption_key: true };
  }
  return server.createRoom(roomId, { title: `native interop ${roomId}`, features });
}

/**
 * Runs `body({log, bot, deadline})` with a hard bound of `ms` (scenario.mjs). On failure: the
 * per-test log (bot events, FFI log records, stats) and the server output during the test are
 * printed.
 */
const scenarioIn = botScenarios({
  current: () => ({ server, work }),
  summary,
  title: 'native interop',
  async dumpBot(b, log) {
    log.add('driver', `final events of ${b.name}: ${JSON.stringify(b.events)}`);
    log.add('driver', `final counters of ${b.name}: ${JSON.stringify(Object.fromEntries([...b.remote.keys()].map((k) => [k, b.counters(...k.split('/'))])))}`);
    try {
      log.add('driver', `final inbound stats of ${b.name}: ${JSON.stringify(await b.stats())}`);
    } catch (err) {
      log.add('driver', `no final stats of ${b.name}: ${err.message}`);
    }
  },
});
const scenario = (name, body, ms = SCENARIO_MS) => scenarioIn(name, body, ms);

/**
 * `from` sends `count` reliable data messages 200 ms apart; `to` must get every one of them, in
 * order, with `from`'s identity and the topic. Returns what `to` received.
 */
async function assertData(from, to, deadline, tag, count = 3) {
  const nonce = randomBytes(3).toString('hex');
  const texts = Array.from({ length: count }, (_, i) => `${tag}: hello ${i + 1}/${count} from ${from.name} ${nonce}`);
  for (const text of texts) {
    await from.sendData(text);
    await sleep(200);
  }
  const mine = () => to.data.filter((d) => texts.includes(d.text));
  await waitFor(
    deadline,
    `${to.name}: ${count} data messages from ${from.name}`,
    mine,
    (got) => got.length >= count,
    (got) => JSON.stringify(got),
  );
  const got = mine();
  assert.deepEqual(got.map((d) => d.text), texts, `${to.name}: every reliable data message, once, in order`);
  for (const d of got) {
    assert.equal(d.identity, from.name, `${to.name}: the data message's sender identity`);
    assert.equal(d.topic, 'enclave-native', `${to.name}: the data message's topic`);
  }
  return { count: got.length, identity: got[0].identity };
}

/** Sets up pub (publishing) and sub (subscribing) in a fresh room. */
async function pubSub(bot, log, deadline, roomId, { pubKey, subKey, failureTolerance } = {}) {
  const pub = bot('pub');
  const sub = bot('sub');
  await pub.connect(roomId, { e2eeKey: pubKey, failureTolerance });
  const pubs = await pub.publishMedia();
  await sub.connect(roomId, { e2eeKey: subKey, failureTolerance });
  await waitSubscribed(sub, 'pub', deadline);
  return { pub, sub, pubs };
}

// ---------------------------------------------------------------------------------------------

describe(`@livekit/rtc-node ${RTC_NODE_VERSION} (rtc-ffi-bindings ${FFI_VERSION}) against enclave`, () => {
  test('plain: pub publishes audio + video + data, sub decodes frames and gets the data', async () => {
    await scenario('plain', async ({ log, bot, deadline }) => {
      const roomId = `nt-plain-${randomBytes(3).toString('hex')}`;
      await createRoom(roomId);
      const { pub, sub } = await pubSub(bot, log, deadline, roomId);
      assert.ok(sub.room.remoteParticipants.has('pub'), 'sub sees pub as a remote participant');
      await waitFor(deadline, 'pub sees sub as a remote participant', () => pub.room.remoteParticipants.has('sub'), (x) => x);
      const data = await assertData(pub, sub, deadline, 'plain');
      const m = await assertMediaFlows(sub, 'pub', log, deadline);
      assert.deepEqual(sub.events.filter((x) => x.type === 'EncryptionError'), []);
      summary.push(
        `plain: PASS — sub decoded ${m.video} video frames (${m.fps} fps, ${m.distinctLuma} distinct mean-luma values), ${m.audio} audio frames ` +
          `(${m.toneAudio} with the tone, ~${m.toneHz} Hz), ${data.count}/3 reliable data messages from "${data.identity}" received in order`,
      );
    });
  });

  test('e2ee, same shared key: frames decode on the subscriber, encryption is on', async () => {
    await scenario('e2ee-same-key', async ({ log, bot, deadline }) => {
      const roomId = `nt-e2ee-${randomBytes(3).toString('hex')}`;
      await createRoom(roomId, { e2ee: true });
      const { pub, sub, pubs } = await pubSub(bot, log, deadline, roomId, { pubKey: 'correct horse', subKey: 'correct horse' });
      assert.equal(pubs.video.encryptionType, EncryptionType.GCM, 'pub: local video publication is GCM-encrypted');
      assert.equal(pubs.audio.encryptionType, EncryptionType.GCM, 'pub: local audio publication is GCM-encrypted');
      for (const kind of ['audio', 'video']) {
        // The server copied add_track.encryption into the TrackInfo the subscriber got.
        assert.equal(sub.counters('pub', kind).encryptionType, EncryptionType.GCM, `sub: pub's ${kind} publication encryptionType`);
      }
      assert.equal(sub.room.e2eeManager?.enabled, true, 'sub: e2eeManager.enabled');
      const m = await assertMediaFlows(sub, 'pub', log, deadline);
      const data = await assertData(pub, sub, deadline, 'e2ee');
      // The frame cryptors of pub's tracks at sub report OK once a frame decrypted (raw FFI
      // e2eeStateChanged; rtc-node has no Room event for it), and the SDK marks pub encrypted.
      const states = sub.e2eeStates.filter((s) => s.identity === 'pub').map((s) => s.state);
      assert.ok(states.includes('OK'), `sub: E2EE state OK for pub's frame cryptors (states: [${states}])`);
      assert.ok(!states.includes('DECRYPTION_FAILED'), `sub: no DECRYPTION_FAILED for pub (${states})`);
      assert.deepEqual(sub.events.filter((x) => x.type === 'EncryptionError'), [], 'sub: no EncryptionError');
      const encStatus = sub.events.filter((x) => x.type === 'ParticipantEncryptionStatusChanged' && x.identity === 'pub');
      assert.equal(encStatus.at(-1)?.encrypted, true, `sub: ParticipantEncryptionStatusChanged(true) for pub (${JSON.stringify(encStatus)})`);
      summary.push(
        `e2ee-same-key: PASS — sub decoded ${m.video} video frames (${m.fps} fps, ${m.distinctLuma} distinct mean-luma values), ${m.audio} audio frames ` +
          `(${m.toneAudio} with the tone, ~${m.toneHz} Hz); tracks GCM; e2ee states for pub: [${states}]; ` +
          `ParticipantEncryptionStatusChanged: ${JSON.stringify(encStatus.map((x) => x.encrypted))}; ${data.count}/3 reliable data messages from "${data.identity}" received and decrypted in order`,
      );
    });
  });

  test('resume: the signalling connections drop mid-meeting; both bots resume on the same sessions', async () => {
    await scenario('resume', async ({ log, bot, deadline }) => {
      const roomId = `nt-resume-${randomBytes(3).toString('hex')}`;
      await createRoom(roomId);
      const { pub, sub } = await pubSub(bot, log, deadline, roomId);
      await assertMediaFlows(sub, 'pub', log, deadline);
      const sids = { pub: pub.room.localParticipant.sid, sub: sub.room.localParticipant.sid };
      const mark = server.mark();

      // A network blip, as the server sees it: abort the server's side of every established
      // TCP connection on its port (the bots' signalling WebSockets; the test's own HTTP
      // requests are finished). The peers get a reset; UDP media is untouched.
      const { port } = server;
      const killed = spawnSync('ss', ['-K', '-t', 'state', 'established', `( sport = :${port} )`], { encoding: 'utf8' });
      assert.equal(killed.status, 0, `ss -K: ${killed.stderr}`);
      log.add('driver', `aborted the server side of the signalling connections:\n${killed.stdout}`);

      for (const b of [pub, sub]) {
        await waitFor(
          deadline,
          `${b.name}: Reconnected`,
          () => b.events,
          (e) => e.some((x) => x.type === 'Reconnected' || x.type === 'Disconnected'),
          (e) => JSON.stringify(e.slice(-6)),
        );
        assert.deepEqual(b.events.filter((x) => x.type === 'Disconnected'), [], `${b.name} is not disconnected`);
        assert.equal(b.room.localParticipant.sid, sids[b.name], `${b.name} keeps its participant sid: a resume, not a rejoin`);
      }
      const out = server.since(mark);
      assert.equal((out.match(/media session resumed/g) ?? []).length, 2, 'the server resumed both sessions');
      assert.ok(!/media session started/.test(out), 'no new join');
      for (const b of [pub, sub]) {
        const other = b === pub ? 'sub' : 'pub';
        assert.deepEqual(
          b.events.filter((x) => x.type === 'ParticipantDisconnected' && x.identity === other),
          [],
          `${b.name} never saw ${other} leave`,
        );
      }
      // Both peer connections were ICE-restarted; media and data keep flowing.
      const data = await assertData(pub, sub, deadline, 'resume');
      const m = await assertMediaFlows(sub, 'pub', log, deadline, { minVideo: 60 });
      summary.push(
        `resume: PASS — both bots resumed with their sids after their WebSockets were reset; sub then decoded ${m.video} video frames in total, ${data.count}/3 data messages`,
      );
    });
  });

  test('e2ee, wrong key: tracks subscribe, encrypted video arrives, (almost) nothing decodes', async () => {
    await scenario('e2ee-wrong-key', async ({ log, bot, deadline }) => {
      const roomId = `nt-e2ee-bad-${randomBytes(3).toString('hex')}`;
      await createRoom(roomId, { e2ee: true });
      // rtc-node's default failureTolerance is -1: the frame cryptor then drops undecryptable
      // frames silently and never reports DECRYPTION_FAILED (ParticipantKeyHandler::
      // DecryptionFailure() returns false for a negative tolerance). With a tolerance of 10 it
      // reports the state after the 11th failed frame.
      const { pub, sub } = await pubSub(bot, log, deadline, roomId, { pubKey: 'key-one', subKey: 'key-two', failureTolerance: 10 });
      const inVideo = async () => (await sub.stats()).find((x) => x.kind === 'video') ?? { bytes: 0, packets: 0, framesDecoded: 0 };
      // Encrypted video must be arriving (so "nothing decodes" is not "nothing sent").
      const first = await waitFor(deadline, 'sub: inbound video RTP', inVideo, (s) => s.bytes > 0, JSON.stringify, 500);
      await sleep(8_000);
      const last = await inVideo();
      const v = sub.counters('pub', 'video');
      const a = sub.counters('pub', 'audio');
      log.add('driver', `wrong key: inbound video ${JSON.stringify(first)} -> ${JSON.stringify(last)}; counters video ${JSON.stringify(v)} audio ${JSON.stringify(a)}`);
      assert.ok(last.bytes - first.bytes > 10_000, `sub: encrypted video keeps arriving (${first.bytes} -> ${last.bytes} bytes in 8 s)`);
      assert.ok(v.frames <= 2, `sub: video frames decoded with the wrong key: ${v.frames} (expected ≤ 2)`);
      assert.ok(a.toneFrames <= 2, `sub: audio frames carrying the tone with the wrong key: ${a.toneFrames} (expected ≤ 2)`);
      const states = sub.e2eeStates.filter((s) => s.identity === 'pub').map((s) => s.state);
      assert.ok(states.includes('DECRYPTION_FAILED'), `sub: an E2EE state DECRYPTION_FAILED for pub is reported (states: [${states}])`);
      // Data packets are end-to-end encrypted too (EncryptedPacket, relayed opaquely): with the
      // wrong key the message must not surface as plaintext.
      const secret = `wrong-key: hello from pub ${randomBytes(3).toString('hex')}`;
      await pub.sendData(secret);
      await sleep(1_500);
      assert.deepEqual(sub.data.filter((d) => d.text === secret), [], 'sub: a data message under the wrong key is not delivered as plaintext');
      // The SDK's own log proves the EncryptedPacket reached sub and failed to decrypt there
      // (rather than being dropped by the server): "Failed to decrypt data packet from pub".
      const dataDecryptFailures = await waitFor(
        deadline,
        'sub: the SDK log line "Failed to decrypt data packet from pub"',
        () => log.lines.filter((l) => l.includes('Failed to decrypt data packet from pub')).length,
        (n) => n > 0,
      );
      summary.push(
        `e2ee-wrong-key: PASS — sub got ${last.bytes - first.bytes} B / ${last.packets - first.packets} packets of encrypted video in 8 s, ` +
          `decoded ${v.frames} video frames (webrtc framesDecoded ${last.framesDecoded}), ${a.frames} audio frames of which ${a.toneFrames} carry the tone; ` +
          `e2ee states for pub: [${states}]; data message reached sub but did not decrypt (SDK: "Failed to decrypt data packet from pub" x${dataDecryptFailures})`,
      );
    });
  });
});
