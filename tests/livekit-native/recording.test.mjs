// Cloud recording and RTMP broadcasting, end to end, against the real `enclave` binary:
// @livekit/rtc-node bots (bots.mjs) publish a sine tone and a moving pattern into a room, an
// admin drives the browser API (/api/recording, /api/rtmp) with a Plug-N-Meet join token, and
// what comes out is checked with Debian's ffprobe/ffmpeg: the finished MP4 (fetched through the
// signed /auth/recording API and /download/recording/<token>) and an RTMP stream received by a
// local nginx with the RTMP module (played back live and recorded to FLV by nginx).
//
// Scenarios: a 10 s recording of two publishers (streams, duration, picture, both tones mixed,
// download, info, metadata, delete); a recording that survives a join, a leave and the end of
// the room; RTMP to nginx and RTMP to a port where nothing listens; E2EE rooms of both key
// models refuse recording and RTMP everywhere; refusals of bad requests.
//
// Needs ffmpeg, ffprobe, nginx and its RTMP module (Debian: ffmpeg nginx-light
// libnginx-mod-rtmp); a missing one is a failure, not a skip. Every scenario is bounded; every
// process started here (the server, nginx, ffmpeg/ffprobe) is stopped by its own pid. Only
// 127.0.0.1 is used. Run with `node --test --test-concurrency=1 tests/livekit-native/` (see README.md).

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

import { Deadline, WorkDir, freeTcpPort, launchEnclave } from '@enclave-tests/lib';
import { waitFor } from './harness.mjs';
import { FFI_VERSION, RTC_NODE_VERSION, TONE_HZ, assertMediaFlows, rtc, waitSubscribed } from './bots.mjs';
import { NGINX_BIN, ffprobe, frameStats, kinds, readOr, requireTool, startNginx, toneLevels } from './recording-tools.mjs';
import { botScenarios } from './scenario.mjs';

const { dispose } = rtc;

const TONE_A = TONE_HZ; // 440 Hz: bot "alice"
const TONE_B = 660; // bot "bob", so the recording shows whose audio was mixed in
const CONTROL_HZ = [300, 1000]; // no bot sends these
const RECORD_SECONDS = 10;
const FINALISE_MS = 60_000; // bound of "stopped" -> "listed by recording/fetch"

let work; // temp: the server's data dir, per-test logs, nginx (logs kept after a failure)
let dataDir;
let server; // launchEnclave
let baseUrl;
let nginx; // startNginx: { port, dir, recDir, errorLog, lines(), access(), recordings(), stop() }
const summary = [];

// ---------------------------------------------------------------------------------------------
// The server's APIs

function auth(p, body) {
  return server.post(p, body);
}

function recordingFeatures({ cloud = true, auto = false, rtmp = true } = {}) {
  return {
    allow_webcams: true,
    mute_on_start: false,
    allow_rtmp: rtmp,
    recording_features: { is_allow: true, is_allow_cloud: cloud, enable_auto_cloud_recording: auto },
  };
}

function createRoom(roomId, features) {
  return server.createRoom(roomId, { title: `recording test ${roomId}`, features });
}

function joinToken(roomId, userId, isAdmin) {
  return server.joinToken(roomId, { user_id: userId, name: userId, is_admin: isAdmin });
}

/** POST /api/<p> with a join token; `{status, json, text}`. */
async function browserApi(token, p, body = {}) {
  const headers = { 'Content-Type': 'application/json' };
  if (token) headers.Authorization = token;
  const res = await fetch(`${baseUrl}/api/${p}`, { method: 'POST', headers, body: JSON.stringify(body), signal: AbortSignal.timeout(15_000) });
  const text = await res.text();
  let json = null;
  try {
    json = JSON.parse(text);
  } catch {
    // not JSON
  }
  return { status: res.status, json, text };
}

async function activeInfo(roomId) {
  const res = await auth('/room/getActiveRoomInfo', { room_id: roomId });
  assert.equal(res.json?.status, true, `getActiveRoomInfo(${roomId}): ${res.text}`);
  return res.json.room.room_info;
}

async function fetchRecordings(roomId) {
  return auth('/recording/fetch', { room_ids: [roomId] });
}

/** Polls recording/fetch until the room has `count` recordings; returns them and the wait. */
async function waitRecordings(roomId, count = 1, boundMs = FINALISE_MS) {
  const t0 = Date.now();
  const d = new Deadline(boundMs, `${boundMs / 1000} s for the recording to be finalised and listed`);
  const res = await waitFor(
    d,
    `recording/fetch to list ${count} recording(s) of ${roomId}`,
    () => fetchRecordings(roomId),
    (r) => r.json?.status === true && (r.json.result?.recordings_list?.length ?? 0) >= count,
    (r) => r.text,
    500,
  );
  return { list: res.json.result.recordings_list, waitedMs: Date.now() - t0, result: res.json.result };
}

function listFiles(dir) {
  const out = [];
  const walk = (d) => {
    let entries;
    try {
      entries = fs.readdirSync(d, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else out.push(p);
    }
  };
  walk(dir);
  return out;
}

const partFiles = () => listFiles(dataDir).filter((f) => f.endsWith('.part'));
const sha256 = (buf) => createHash('sha256').update(buf).digest('hex');

/** The server's log lines since `mark` that say a recorder job started. */
function recorderStarts(mark) {
  return server
    .since(mark)
    .split('\n')
    .filter((l) => /\bstarted\b/.test(l) && /job[=:]\s*"?(recording|rtmp)"?/.test(l));
}

// ---------------------------------------------------------------------------------------------
// Scenario frame: a bound, bots that are always closed, logs kept and printed on failure.

const scenario = botScenarios({
  current: () => ({ server, work }),
  summary,
  title: 'recording test',
  excerpt: [40, 120],
  async dumpBot(b, log) {
    log.add('driver', `final events of ${b.name}: ${JSON.stringify(b.events)}`);
  },
  watch() {
    const nginxMark = readOr(nginx.errorLog).length;
    return () => `===== nginx error log during the test (last 8 KiB):\n${readOr(nginx.errorLog).slice(nginxMark).slice(-8 * 1024)}\n`;
  },
});

/** The system data packets (topic enclave.system) a bot received, parsed. */
const systemMessages = (b) =>
  b.data
    .filter((d) => d.topic === 'enclave.system')
    .map((d) => {
      try {
        return JSON.parse(d.text);
      } catch {
        return { unparsable: d.text };
      }
    });

/** alice (440 Hz) and bob (660 Hz) publish; bob decodes alice's media. */
async function twoPublishers(bot, log, deadline, roomId) {
  const alice = bot('alice');
  const bob = bot('bob');
  await alice.connect(roomId);
  await alice.publishMedia({ toneHz: TONE_A });
  await bob.connect(roomId);
  await bob.publishMedia({ toneHz: TONE_B });
  await waitSubscribed(bob, 'alice', deadline);
  const m = await assertMediaFlows(bob, 'alice', log, deadline);
  return { alice, bob, m };
}

function assertRefusedE2ee(res, what) {
  assert.equal(res.status, 403, `${what}: HTTP 403 in an E2EE room (got ${res.status} ${res.text})`);
  assert.equal(res.json?.status, false, `${what}: status false (${res.text})`);
  assert.match(res.json?.msg ?? '', /end-to-end encrypted/i, `${what}: the message names end-to-end encryption (${res.text})`);
}

// ---------------------------------------------------------------------------------------------

before(async () => {
  const tools = [
    await requireTool('ffmpeg', ['-hide_banner', '-version'], 'ffmpeg'),
    await requireTool('ffprobe', ['-hide_banner', '-version'], 'ffmpeg'),
    await requireTool(NGINX_BIN, ['-v'], 'nginx-light'),
  ];
  process.stdout.write(`recording tests: ${tools.join(' | ')}\n`);
  work = new WorkDir('enclave-recording-', { label: 'recording tests', keepLogs: process.env.ENCLAVE_NATIVE_KEEP_LOGS === '1' });
  ({ dataDir } = work);
  nginx = await startNginx(work.dir);
  server = await launchEnclave({
    dataDir,
    lkKey: 'enclave-recording-test',
    env: {
      // The test's nginx-rtmp listens on 127.0.0.1, which the server refuses by default.
      ENCLAVE_RECORDER_INFO__RTMP_ALLOW_PRIVATE_TARGETS: 'true',
      ...(process.env.ENCLAVE_LOG ? { RUST_LOG: process.env.ENCLAVE_LOG } : {}),
    },
  });
  ({ baseUrl } = server);
});

after(async () => {
  if (server) await server.stop();
  if (nginx) await nginx.stop();
  try {
    await dispose();
  } catch {
    // the FFI was never initialised
  }
  process.stdout.write(
    `\nrecording/RTMP summary (@livekit/rtc-node ${RTC_NODE_VERSION}, rtc-ffi-bindings ${FFI_VERSION}, enclave ${server?.bin}):\n` +
      `${summary.map((l) => `  ${l}`).join('\n') || '  (no scenario finished)'}\n`,
  );
  if (work?.keepLogs && server) fs.writeFileSync(path.join(work.logDir, 'enclave.full.log'), server.server.log);
  work?.finish(` (nginx: ${nginx?.dir})`);
});

// ---------------------------------------------------------------------------------------------

describe('cloud recording and RTMP broadcasting against enclave', () => {
  test('a 10-second meeting of two publishers is recorded, downloadable, annotatable, deletable', async () => {
    await scenario(
      'recording-10s',
      async ({ log, bot, deadline, serverMark }) => {
        const roomId = `rec-${randomBytes(3).toString('hex')}`;
        const room = await createRoom(roomId, recordingFeatures());
        const { alice, bob, m } = await twoPublishers(bot, log, deadline, roomId);
        const admin = await joinToken(roomId, 'admin', true);

        let v = await browserApi(admin, 'verifyToken');
        assert.equal(v.json?.status, true, `verifyToken: ${v.text}`);
        assert.equal(v.json.is_recording, false, 'verifyToken: is_recording before the start');

        const start = await browserApi(admin, 'recording', { task: 'START_RECORDING' });
        const startedAt = Date.now();
        assert.equal(start.status, 200, `START_RECORDING: HTTP ${start.status} ${start.text}`);
        assert.equal(start.json?.status, true, `START_RECORDING: ${start.text}`);
        log.add('driver', `START_RECORDING -> ${start.text}`);
        assert.equal((await activeInfo(roomId)).is_recording, 1, 'getActiveRoomInfo: is_recording = 1 while recording');
        v = await browserApi(admin, 'verifyToken');
        assert.equal(v.json?.is_recording, true, `verifyToken: is_recording while recording (${v.text})`);
        const again = await browserApi(admin, 'recording', { task: 'START_RECORDING' });
        assert.equal(again.status, 409, `a second START_RECORDING: HTTP 409 (got ${again.status} ${again.text})`);
        assert.equal(again.json?.status, false);
        // While it records: a .part file in recordings/<room_sid>/, no finished .mp4 yet, and the
        // server logged the job's start (the E2EE scenarios assert that no such line appears).
        const sessionDir = path.join(dataDir, 'recordings', room.sid);
        const writing = await waitFor(
          new Deadline(5_000, '5 s for the recording file to appear'),
          `a .part file in ${sessionDir}`,
          () => listFiles(sessionDir),
          (files) => files.some((f) => f.endsWith('.mp4.part')),
          JSON.stringify,
          200,
        );
        assert.deepEqual(writing.filter((f) => f.endsWith('.mp4')), [], 'no finished .mp4 while recording');
        assert.equal(recorderStarts(serverMark).length, 1, `the server logged one recorder start: ${JSON.stringify(recorderStarts(serverMark))}`);

        await sleep(RECORD_SECONDS * 1000 - (Date.now() - startedAt));
        const stop = await browserApi(admin, 'recording', { task: 'STOP_RECORDING' });
        const stoppedAt = Date.now();
        const recordedWall = (stoppedAt - startedAt) / 1000;
        assert.equal(stop.status, 200, `STOP_RECORDING: HTTP ${stop.status} ${stop.text}`);
        assert.equal(stop.json?.status, true, `STOP_RECORDING: ${stop.text}`);

        const { list, waitedMs } = await waitRecordings(roomId);
        log.add('driver', `listed after ${waitedMs} ms: ${JSON.stringify(list)}`);
        assert.equal(list.length, 1, 'exactly one recording of the room');
        const rec = list[0];
        assert.equal(rec.room_id, roomId);
        assert.equal(rec.room_sid, room.sid, 'the recording belongs to this session');
        assert.equal(rec.file_path, `${room.sid}/${rec.record_id}.mp4`, 'file_path is <room_sid>/<record_id>.mp4');
        assert.equal((await activeInfo(roomId)).is_recording, 0, 'getActiveRoomInfo: is_recording = 0 once finished');
        const onDisk = path.join(dataDir, 'recordings', rec.file_path);
        assert.ok(fs.existsSync(onDisk), `the file is at ${onDisk}`);
        assert.deepEqual(partFiles(), [], 'no .part file is left under the data dir');
        const diskBytes = fs.readFileSync(onDisk);
        assert.ok(Math.abs(rec.file_size - diskBytes.length / 1048576) <= 0.01, `file_size ${rec.file_size} MB matches ${diskBytes.length} B on disk`);

        // The room was told: RECORDER_STATE on, then off.
        const states = systemMessages(bob).filter((x) => x.type === 'RECORDER_STATE');
        assert.ok(states.some((x) => x.is_recording === true), `bob got RECORDER_STATE is_recording=true (${JSON.stringify(states)})`);
        assert.equal(states.at(-1)?.is_recording, false, `the last RECORDER_STATE bob got says not recording (${JSON.stringify(states)})`);

        // Download through a download token.
        const tok = await auth('/recording/getDownloadToken', { record_id: rec.record_id });
        assert.equal(tok.json?.status, true, `getDownloadToken: ${tok.text}`);
        const dl = await fetch(`${baseUrl}/download/recording/${tok.json.token}`, { signal: AbortSignal.timeout(30_000) });
        assert.equal(dl.status, 200, `download: HTTP ${dl.status}`);
        const got = Buffer.from(await dl.arrayBuffer());
        assert.equal(got.length, diskBytes.length, 'download: as many bytes as the file');
        assert.equal(sha256(got), sha256(diskBytes), 'download: the same bytes as the file');
        const file = path.join(work.dir, `${rec.record_id}.mp4`);
        fs.writeFileSync(file, got);

        const probe = await ffprobe(file, 'stream=codec_type,codec_name,width,height,sample_rate,channels:format=duration,format_name');
        log.add('driver', `ffprobe: ${JSON.stringify(probe)}`);
        assert.deepEqual(kinds(probe), ['audio', 'video'], `exactly one audio and one video stream (${JSON.stringify(probe.streams)})`);
        const vs = probe.streams.find((s) => s.codec_type === 'video');
        const as = probe.streams.find((s) => s.codec_type === 'audio');
        assert.equal(vs.codec_name, 'h264', 'video codec');
        assert.equal(as.codec_name, 'aac', 'audio codec');
        assert.match(probe.format.format_name, /mp4/, 'an MP4 container');
        const duration = Number(probe.format.duration);
        // The recorder's timeline follows the wall clock whatever the machine's load (a slow
        // compositor repeats frames): the file lasts from START to STOP, within 0.5 s.
        assert.ok(Math.abs(duration - recordedWall) <= 0.5, `duration ${duration} s is START→STOP ${recordedWall} s ± 0.5 s`);

        // The picture: the bots' textured, brightness-swinging pattern, not black/grey/frozen.
        const frames = await frameStats(file, vs.width, vs.height);
        log.add('driver', `frames (1/s): ${JSON.stringify(frames)}`);
        assert.ok(frames.length >= RECORD_SECONDS - 1, `${frames.length} frames at 1 fps`);
        const inner = frames.slice(1, -1);
        const flat = inner.filter((f) => f.variance < 100);
        assert.deepEqual(flat, [], `no flat (black/grey) frame among 1..${frames.length - 2} s: ${JSON.stringify(frames)}`);
        const means = inner.map((f) => f.mean);
        const swing = Math.max(...means) - Math.min(...means);
        assert.ok(swing >= 3, `the picture changes over time (mean luma range ${swing.toFixed(1)})`);

        // The sound: both publishers' tones are mixed in, nothing at the control frequencies.
        const tones = await toneLevels(file, 2, 6, [TONE_A, TONE_B, ...CONTROL_HZ]);
        log.add('driver', `tone levels 2..8 s: ${JSON.stringify(tones)}`);
        const noise = Math.max(...CONTROL_HZ.map((f) => tones[f]));
        for (const [who, f] of [['alice', TONE_A], ['bob', TONE_B]]) {
          assert.ok(tones[f] >= 0.02 && tones[f] >= 10 * noise, `${who}'s ${f} Hz tone is in the recording (level ${tones[f]}, control ${noise})`);
        }

        // Info, metadata, delete.
        const info = await auth('/recording/info', { record_id: rec.record_id });
        assert.equal(info.json?.status, true, `recording/info: ${info.text}`);
        assert.equal(info.json.recording_info?.record_id, rec.record_id);
        assert.equal(info.json.recording_info?.room_id, roomId);
        const title = `Meeting ${randomBytes(2).toString('hex')}`;
        const upd = await auth('/recording/updateMetadata', {
          record_id: rec.record_id,
          metadata: { title, description: 'recorded by the native test', extra_data: { k: 'v' } },
        });
        assert.equal(upd.json?.status, true, `updateMetadata: ${upd.text}`);
        const info2 = await auth('/recording/info', { record_id: rec.record_id });
        assert.equal(info2.json?.recording_info?.metadata?.title, title, `info shows the new title (${info2.text})`);
        assert.equal(info2.json.recording_info.metadata.description, 'recorded by the native test');
        const del = await auth('/recording/delete', { record_id: rec.record_id });
        assert.equal(del.json?.status, true, `delete: ${del.text}`);
        const after = await fetchRecordings(roomId);
        assert.equal(after.json?.status, false, `fetch after delete: ${after.text}`);
        assert.match(after.json?.msg ?? '', /no recording found/i, `fetch after delete says so (${after.text})`);
        assert.ok(!fs.existsSync(onDisk), `${onDisk} is gone after delete`);
        const dl2 = await fetch(`${baseUrl}/download/recording/${tok.json.token}`, { signal: AbortSignal.timeout(10_000) });
        await dl2.arrayBuffer();
        assert.equal(dl2.status, 404, 'download after delete: 404');
        assert.deepEqual(partFiles(), [], 'no .part file anywhere under the data dir');
        assert.ok(alice.room.isConnected && bob.room.isConnected, 'the bots stayed connected');

        return (
          `bob decoded alice at ${m.fps} fps before; START→STOP ${recordedWall.toFixed(1)} s; listed ${waitedMs} ms after STOP; ` +
          `${(diskBytes.length / 1024).toFixed(0)} KiB h264 ${vs.width}x${vs.height} + aac ${as.sample_rate} Hz/${as.channels} ch, duration ${duration.toFixed(2)} s; ` +
          `luma variance min ${Math.min(...inner.map((f) => f.variance))}, mean-luma range ${swing.toFixed(1)}; ` +
          `tone levels ${TONE_A} Hz ${tones[TONE_A]}, ${TONE_B} Hz ${tones[TONE_B]}, control ≤ ${noise}; download identical; info/metadata/delete OK`
        );
      },
      90_000,
    );
  });

  test('a recording survives a join, a leave and the end of the room', async () => {
    await scenario(
      'recording-join-leave-end',
      async ({ log, bot, deadline }) => {
        const roomId = `rec-end-${randomBytes(3).toString('hex')}`;
        const room = await createRoom(roomId, recordingFeatures());
        const alice = bot('alice');
        await alice.connect(roomId, { autoSubscribe: false });
        await alice.publishMedia({ toneHz: TONE_A });
        await sleep(1_500); // alice's media reaches the SFU
        const admin = await joinToken(roomId, 'admin', true);
        const start = await browserApi(admin, 'recording', { task: 'START_RECORDING' });
        const t0 = Date.now();
        assert.equal(start.json?.status, true, `START_RECORDING: HTTP ${start.status} ${start.text}`);
        const at = () => ((Date.now() - t0) / 1000).toFixed(1);

        await sleep(3_000 - (Date.now() - t0));
        const bob = bot('bob');
        await bob.connect(roomId, { autoSubscribe: false });
        await bob.publishMedia({ toneHz: TONE_B });
        const bobIn = at();
        log.add('driver', `bob published at ${bobIn} s`);
        await sleep(9_000 - (Date.now() - t0));
        await bob.close();
        const bobOut = at();
        log.add('driver', `bob left at ${bobOut} s`);
        await sleep(13_000 - (Date.now() - t0));
        assert.equal((await activeInfo(roomId)).is_recording, 1, 'still recording before the room ends');
        const end = await auth('/room/endRoom', { room_id: roomId });
        const endedAt = (Date.now() - t0) / 1000;
        assert.equal(end.json?.status, true, `endRoom: ${end.text}`);
        log.add('driver', `room ended at ${endedAt} s`);

        const { list, waitedMs } = await waitRecordings(roomId);
        assert.equal(list.length, 1, 'one recording');
        const rec = list[0];
        assert.equal(rec.room_sid, room.sid);
        const file = path.join(dataDir, 'recordings', rec.file_path);
        assert.ok(fs.existsSync(file), `${file} exists`);
        assert.deepEqual(partFiles(), [], 'no .part file is left');
        const gone = await auth('/room/getActiveRoomInfo', { room_id: roomId });
        assert.equal(gone.json?.status, false, `the room has ended (${gone.text})`);

        const probe = await ffprobe(file, 'stream=codec_type,codec_name:format=duration');
        log.add('driver', `ffprobe: ${JSON.stringify(probe)}`);
        assert.deepEqual(kinds(probe), ['audio', 'video'], `audio and video (${JSON.stringify(probe.streams)})`);
        const duration = Number(probe.format.duration);
        assert.ok(Math.abs(duration - endedAt) <= 0.5, `duration ${duration} s is start→endRoom ${endedAt.toFixed(2)} s ± 0.5 s`);

        // bob's 660 Hz tone is there while he was in the room and gone after he left; alice's
        // 440 Hz tone runs from start to end.
        const during = await toneLevels(file, 5.5, 2.5, [TONE_A, TONE_B, ...CONTROL_HZ]);
        const afterLeave = await toneLevels(file, 10.5, 2, [TONE_A, TONE_B, ...CONTROL_HZ]);
        const early = await toneLevels(file, 0.5, 2, [TONE_A, TONE_B]);
        log.add('driver', `tone levels: 0.5-2.5 s ${JSON.stringify(early)}; 5.5-8 s ${JSON.stringify(during)}; 10.5-12.5 s ${JSON.stringify(afterLeave)}`);
        assert.ok(during[TONE_B] >= 0.02, `bob's tone while he is in the room (level ${during[TONE_B]})`);
        assert.ok(afterLeave[TONE_B] <= during[TONE_B] / 10, `bob's tone is gone after he left (${afterLeave[TONE_B]} vs ${during[TONE_B]})`);
        assert.ok(early[TONE_B] <= during[TONE_B] / 10, `bob's tone is absent before he joined (${early[TONE_B]} vs ${during[TONE_B]})`);
        for (const [label, t] of [['0.5-2.5 s', early], ['5.5-8 s', during], ['10.5-12.5 s', afterLeave]]) {
          assert.ok(t[TONE_A] >= 0.02, `alice's tone at ${label} (level ${t[TONE_A]})`);
        }
        return (
          `bob in at ${bobIn} s, out at ${bobOut} s, endRoom at ${endedAt.toFixed(1)} s; listed ${waitedMs} ms after the end; ` +
          `duration ${duration.toFixed(2)} s, streams ${probe.streams.map((s) => `${s.codec_type}/${s.codec_name}`).join(', ')}; ` +
          `bob's ${TONE_B} Hz level before/during/after ${early[TONE_B]}/${during[TONE_B]}/${afterLeave[TONE_B]}, alice's ${TONE_A} Hz ${early[TONE_A]}/${during[TONE_A]}/${afterLeave[TONE_A]}`
        );
      },
      90_000,
    );
  });

  test('RTMP to a local nginx-rtmp plays live and records; RTMP to a dead port fails cleanly', async () => {
    await scenario(
      'rtmp',
      async ({ log, bot, deadline, serverMark }) => {
        const roomId = `rtmp-${randomBytes(3).toString('hex')}`;
        await createRoom(roomId, recordingFeatures());
        const { alice, bob } = await twoPublishers(bot, log, deadline, roomId);
        const admin = await joinToken(roomId, 'admin', true);
        const key = `k${randomBytes(4).toString('hex')}`;
        const url = `rtmp://127.0.0.1:${nginx.port}/live`;

        const start = await browserApi(admin, 'rtmp', { task: 'START_RTMP', url, stream_key: key });
        const t0 = Date.now();
        assert.equal(start.status, 200, `START_RTMP: HTTP ${start.status} ${start.text}`);
        assert.equal(start.json?.status, true, `START_RTMP: ${start.text}`);
        assert.equal((await activeInfo(roomId)).is_active_rtmp, 1, 'getActiveRoomInfo: is_active_rtmp = 1');
        const v = await browserApi(admin, 'verifyToken');
        assert.equal(v.json?.is_active_rtmp, true, `verifyToken: is_active_rtmp (${v.text})`);
        const again = await browserApi(admin, 'rtmp', { task: 'START_RTMP', url, stream_key: key });
        assert.equal(again.status, 409, `a second START_RTMP: 409 (got ${again.status} ${again.text})`);

        await waitFor(
          new Deadline(15_000, '15 s for the broadcast to reach nginx'),
          `nginx: publish of "${key}"`,
          () => nginx.lines(key),
          (ls) => ls.some((l) => l.includes('publish:')),
          (ls) => JSON.stringify(ls),
          250,
        );
        const publishMs = Date.now() - t0;
        await sleep(Math.max(0, 6_000 - (Date.now() - t0)));
        const live = await ffprobe(`${url}/${key}`, 'stream=codec_type,codec_name,width,height', {
          extra: ['-rw_timeout', '5000000'],
          timeoutMs: 20_000,
        });
        log.add('driver', `live ffprobe (${live.ms} ms): ${JSON.stringify(live.streams)}`);
        assert.deepEqual(kinds(live), ['audio', 'video'], `the live stream has audio and video (${JSON.stringify(live.streams)})`);
        assert.ok((await activeInfo(roomId)).is_active_rtmp === 1, 'still broadcasting after playback');

        const stop = await browserApi(admin, 'rtmp', { task: 'STOP_RTMP' });
        const stopAt = Date.now();
        assert.equal(stop.json?.status, true, `STOP_RTMP: HTTP ${stop.status} ${stop.text}`);
        await waitFor(new Deadline(15_000, '15 s for the broadcast to end'), 'is_active_rtmp = 0', () => activeInfo(roomId), (i) => i.is_active_rtmp === 0, JSON.stringify, 250);
        const stoppedMs = Date.now() - stopAt;
        const stop2 = await browserApi(admin, 'rtmp', { task: 'STOP_RTMP' });
        assert.equal(stop2.status, 409, `STOP_RTMP when none runs: 409 (got ${stop2.status} ${stop2.text})`);
        // nginx writes its access-log line when the publisher disconnects: the FLV is closed.
        await waitFor(new Deadline(15_000, '15 s for nginx to see the publisher go'), `nginx access log: PUBLISH of "${key}"`, () => nginx.access(key), (ls) => ls.some((l) => l.includes('PUBLISH')), JSON.stringify, 250);
        const flvs = nginx.recordings(key);
        assert.equal(flvs.length, 1, `nginx recorded one FLV for ${key} (${JSON.stringify(fs.readdirSync(nginx.recDir))})`);
        const flv = path.join(nginx.recDir, flvs[0]);
        const rec = await ffprobe(flv, 'stream=codec_type,codec_name:format=duration');
        log.add('driver', `nginx FLV ${flvs[0]}: ${JSON.stringify(rec)}`);
        assert.deepEqual(kinds(rec), ['audio', 'video'], `the FLV nginx recorded has audio and video (${JSON.stringify(rec.streams)})`);
        const flvSeconds = Number(rec.format.duration);
        const broadcastWall = (stopAt - t0) / 1000;
        // The broadcast's timeline follows the wall clock too: START→STOP within 0.5 s.
        assert.ok(Math.abs(flvSeconds - broadcastWall) <= 0.5, `the FLV lasts START→STOP: ${flvSeconds} s vs ${broadcastWall} s ± 0.5 s`);
        const flvTones = await toneLevels(flv, 1, 2, [TONE_A, TONE_B, ...CONTROL_HZ]);
        log.add('driver', `FLV tone levels: ${JSON.stringify(flvTones)}`);
        assert.ok(flvTones[TONE_A] >= 0.02 && flvTones[TONE_B] >= 0.02, `both tones are in the broadcast (${JSON.stringify(flvTones)})`);

        // A target where nothing listens: the broadcast ends by itself and says why.
        const deadPort = await freeTcpPort();
        const mark = server.mark();
        const bad = await browserApi(admin, 'rtmp', { task: 'START_RTMP', url: `rtmp://127.0.0.1:${deadPort}/live`, stream_key: 'nobody' });
        const t1 = Date.now();
        log.add('driver', `START_RTMP to dead port ${deadPort} -> HTTP ${bad.status} ${bad.text}`);
        assert.equal(bad.status, 200, `START_RTMP to a dead port is accepted first (HTTP ${bad.status} ${bad.text})`);
        await waitFor(new Deadline(15_000, '15 s for the failed broadcast to end'), 'is_active_rtmp = 0 after the failure', () => activeInfo(roomId), (i) => i.is_active_rtmp === 0, JSON.stringify, 250);
        const failMs = Date.now() - t1;
        const failLines = server
          .since(mark)
          .split('\n')
          .filter((l) => /rtmp/i.test(l) && /fail|error/i.test(l));
        log.add('driver', `server lines about the failure: ${JSON.stringify(failLines)}`);
        assert.ok(failLines.length > 0, `the server log reports the RTMP failure: ${server.since(mark).slice(-3000)}`);
        const notes = await waitFor(
          new Deadline(5_000, '5 s for the failure notification'),
          'bob: a SYSTEM_NOTIFICATION of type error about the broadcast',
          () => systemMessages(bob).filter((x) => x.type === 'SYSTEM_NOTIFICATION' && x.notification_type === 'error'),
          (xs) => xs.length > 0,
          () => JSON.stringify(systemMessages(bob)),
        );
        // The room is told what kind of failure it was, never ffmpeg's own words or the target.
        assert.match(notes[0].msg, /RTMP target refused or dropped the connection/, `the notification says why: ${notes[0].msg}`);
        assert.ok(!/127\.0\.0\.1|ffmpeg|Connection refused|exited/i.test(notes[0].msg), `no encoder output or address in the notification: ${notes[0].msg}`);
        // The meeting goes on.
        assert.ok(alice.room.isConnected && bob.room.isConnected, 'the bots stay connected');
        assert.deepEqual([...alice.events, ...bob.events].filter((e) => e.type === 'Disconnected'), [], 'no bot was disconnected');
        const after = await assertMediaFlows(bob, 'alice', log, new Deadline(10_000, '10 s of media after the failure'));
        assert.deepEqual(nginx.lines('nobody'), [], 'nothing reached nginx under the dead-port key');
        assert.equal(recorderStarts(serverMark).length, 2, `the server logged two RTMP starts: ${JSON.stringify(recorderStarts(serverMark))}`);
        // The stream key is a credential: the server must not write it to its log.
        assert.ok(!server.since(serverMark).includes(key), `the stream key ${key} does not appear in the server log`);
        return (
          `nginx saw the publish ${publishMs} ms after START_RTMP; live ffprobe ${live.streams.map((s) => `${s.codec_type}/${s.codec_name}${s.width ? ` ${s.width}x${s.height}` : ''}`).join(', ')} in ${live.ms} ms; ` +
          `is_active_rtmp=0 ${stoppedMs} ms after STOP; nginx FLV ${flvSeconds.toFixed(1)} s ${rec.streams.map((s) => `${s.codec_type}/${s.codec_name}`).join(', ')}, tones ${TONE_A}/${TONE_B} Hz ${flvTones[TONE_A]}/${flvTones[TONE_B]}; ` +
          `dead port: ended after ${failMs} ms, server said ${JSON.stringify(failLines[0]?.slice(0, 200))}; bots kept ${after.fps} fps`
        );
      },
      90_000,
    );
  });

  for (const selfInsert of [false, true]) {
    const model = selfInsert ? 'self-inserted key' : 'server-generated key';
    test(`E2EE room (${model}): recording, auto recording and RTMP are off and refused; nothing is recorded or sent`, async () => {
      await scenario(
        `e2ee-${selfInsert ? 'self-insert' : 'server-key'}`,
        async ({ log, bot, deadline, serverMark }) => {
          const roomId = `rec-e2ee-${randomBytes(3).toString('hex')}`;
          const features = {
            ...recordingFeatures({ cloud: true, auto: true, rtmp: true }),
            end_to_end_encryption_features: { is_enabled: true, enabled_self_insert_encryption_key: selfInsert },
          };
          const created = await createRoom(roomId, features);
          const check = (metaJson, where) => {
            const f = JSON.parse(metaJson).room_features;
            const r = f.recording_features;
            const b = f.external_broadcasting_features;
            assert.deepEqual(
              {
                e2ee: f.end_to_end_encryption_features.is_enabled,
                self_insert: f.end_to_end_encryption_features.enabled_self_insert_encryption_key,
                is_allow: r.is_allow,
                is_allow_cloud: r.is_allow_cloud,
                enable_auto_cloud_recording: r.enable_auto_cloud_recording,
                is_allow_local: r.is_allow_local,
                allow_rtmp: f.allow_rtmp,
                bc_is_allow: b.is_allow,
                bc_is_allow_rtmp: b.is_allow_rtmp,
              },
              {
                e2ee: true,
                self_insert: selfInsert,
                is_allow: true,
                is_allow_cloud: false,
                enable_auto_cloud_recording: false,
                is_allow_local: true,
                allow_rtmp: false,
                bc_is_allow: false,
                bc_is_allow_rtmp: false,
              },
              `${where}: server-side media off in the E2EE room's features`,
            );
          };
          check(created.metadata, 'room/create reply');
          check((await activeInfo(roomId)).metadata, 'getActiveRoomInfo');

          const admin = await joinToken(roomId, 'admin', true);
          const v = await browserApi(admin, 'verifyToken');
          assert.equal(v.json?.status, true, `verifyToken: ${v.text}`);
          assert.equal(v.json.e2ee?.mode, selfInsert ? 'self_insert' : 'server_key');
          assert.equal(v.json.room?.features?.recording_features?.is_allow_cloud, false, 'verifyToken: features say no cloud recording');
          let key = 'correct horse battery';
          if (!selfInsert) {
            assert.ok(typeof v.json.e2ee.secret === 'string' && v.json.e2ee.secret.length > 0, 'server_key: verifyToken hands the room secret to the participant');
            key = v.json.e2ee.secret;
          } else {
            assert.equal(v.json.e2ee.secret, undefined, 'self_insert: no secret from the server');
          }

          const nginxKey = `e${randomBytes(4).toString('hex')}`;
          const url = `rtmp://127.0.0.1:${nginx.port}/live`;
          assertRefusedE2ee(await browserApi(admin, 'recording', { task: 'START_RECORDING' }), 'START_RECORDING before anyone joined');
          assertRefusedE2ee(await browserApi(admin, 'rtmp', { task: 'START_RTMP', url, stream_key: nginxKey }), 'START_RTMP before anyone joined');

          const pub = bot('pub');
          const sub = bot('sub');
          await pub.connect(roomId, { e2eeKey: key });
          await pub.publishMedia();
          await sub.connect(roomId, { e2eeKey: key });
          await waitSubscribed(sub, 'pub', deadline);
          const m = await assertMediaFlows(sub, 'pub', log, deadline); // E2EE media decodes: the meeting works

          assertRefusedE2ee(await browserApi(admin, 'recording', { task: 'START_RECORDING' }), 'START_RECORDING during the meeting');
          assertRefusedE2ee(await browserApi(admin, 'rtmp', { task: 'START_RTMP', url, stream_key: nginxKey }), 'START_RTMP during the meeting');
          await sleep(2_000);

          const info = await activeInfo(roomId);
          assert.equal(info.is_recording, 0, 'getActiveRoomInfo: is_recording = 0');
          assert.equal(info.is_active_rtmp, 0, 'getActiveRoomInfo: is_active_rtmp = 0');
          const files = listFiles(path.join(dataDir, 'recordings')).filter((f) => f.includes(created.sid));
          assert.deepEqual(files, [], 'no file of this session under <data_dir>/recordings');
          assert.ok(!fs.existsSync(path.join(dataDir, 'recordings', created.sid)), 'no directory for this session under recordings/');
          const fr = await fetchRecordings(roomId);
          assert.equal(fr.json?.status, false, `recording/fetch: ${fr.text}`);
          assert.match(fr.json.msg, /no recording found/i);
          assert.deepEqual(nginx.recordings(nginxKey), [], 'nginx recorded nothing under the key');
          assert.deepEqual(nginx.lines(nginxKey), [], 'nginx saw no connect/publish under the key');
          assert.deepEqual(nginx.access(nginxKey), [], 'nginx access log has nothing under the key');
          const starts = recorderStarts(serverMark);
          assert.deepEqual(starts, [], 'the server started no recorder job (auto recording included)');
          const states = systemMessages(sub).filter((x) => x.type === 'RECORDER_STATE');
          assert.deepEqual(states, [], 'no RECORDER_STATE was announced in the room');

          // End the room: a recorder that ran unseen would now be finalised and listed, and an
          // RTMP session would now be closed and in nginx's access log.
          const end = await auth('/room/endRoom', { room_id: roomId });
          assert.equal(end.json?.status, true, `endRoom: ${end.text}`);
          await waitFor(deadline, 'the room to end', () => auth('/room/getActiveRoomInfo', { room_id: roomId }), (r) => r.json?.status === false, (r) => r.text, 200);
          await sleep(2_000);
          const fr2 = await fetchRecordings(roomId);
          assert.equal(fr2.json?.status, false, `recording/fetch after the room ended: ${fr2.text}`);
          assert.deepEqual(listFiles(path.join(dataDir, 'recordings')).filter((f) => f.includes(created.sid)), [], 'still no file of this session');
          assert.deepEqual(nginx.access(nginxKey), [], 'nginx access log has nothing under the key after the room ended');
          assert.deepEqual(recorderStarts(serverMark), [], 'no recorder job started up to the end of the room');
          return (
            `features forced off (cloud, auto, rtmp); START_RECORDING/START_RTMP 403 before and during the meeting; ` +
            `E2EE media flowed (${m.video} video frames decoded at ${m.fps} fps, ~${m.toneHz} Hz); no file, no fetch result (also after endRoom), nothing at nginx, no recorder start in the server log`
          );
        },
        45_000,
      );
    });
  }

  test('bad requests: bad URL, nothing to stop, not an admin, feature off, no token', async () => {
    await scenario(
      'bad-requests',
      async () => {
        const roomId = `rec-bad-${randomBytes(3).toString('hex')}`;
        await createRoom(roomId, recordingFeatures());
        const admin = await joinToken(roomId, 'admin', true);
        const user = await joinToken(roomId, 'guest', false);

        const badUrl = await browserApi(admin, 'rtmp', { task: 'START_RTMP', url: 'http://x', stream_key: 'k' });
        assert.equal(badUrl.status, 400, `START_RTMP with url "http://x": HTTP 400 (got ${badUrl.status} ${badUrl.text})`);
        assert.equal(badUrl.json?.status, false);
        const stopRec = await browserApi(admin, 'recording', { task: 'STOP_RECORDING' });
        assert.equal(stopRec.status, 409, `STOP_RECORDING when none runs: HTTP 409 (got ${stopRec.status} ${stopRec.text})`);
        assert.equal(stopRec.json?.status, false);
        const stopRtmp = await browserApi(admin, 'rtmp', { task: 'STOP_RTMP' });
        assert.equal(stopRtmp.status, 409, `STOP_RTMP when none runs: HTTP 409 (got ${stopRtmp.status} ${stopRtmp.text})`);
        for (const [p, body] of [
          ['recording', { task: 'START_RECORDING' }],
          ['rtmp', { task: 'START_RTMP', url: `rtmp://127.0.0.1:${nginx.port}/live`, stream_key: 'guest' }],
        ]) {
          const r = await browserApi(user, p, body);
          assert.equal(r.status, 403, `${body.task} by a non-admin: HTTP 403 (got ${r.status} ${r.text})`);
          assert.equal(r.json?.status, false);
          const anon = await browserApi(null, p, body);
          assert.equal(anon.status, 401, `${body.task} without a token: HTTP 401 (got ${anon.status} ${anon.text})`);
        }
        const info = await activeInfo(roomId);
        assert.deepEqual([info.is_recording, info.is_active_rtmp], [0, 0], 'nothing runs after the refusals');
        assert.deepEqual(nginx.lines('guest'), [], 'nothing reached nginx');

        // A room created with cloud recording and RTMP off refuses both.
        const offId = `rec-off-${randomBytes(3).toString('hex')}`;
        await createRoom(offId, recordingFeatures({ cloud: false, rtmp: false }));
        const offAdmin = await joinToken(offId, 'admin', true);
        const r1 = await browserApi(offAdmin, 'recording', { task: 'START_RECORDING' });
        assert.equal(r1.status, 403, `START_RECORDING with cloud recording off: 403 (got ${r1.status} ${r1.text})`);
        const r2 = await browserApi(offAdmin, 'rtmp', { task: 'START_RTMP', url: `rtmp://127.0.0.1:${nginx.port}/live`, stream_key: 'off' });
        assert.equal(r2.status, 403, `START_RTMP with RTMP off: 403 (got ${r2.status} ${r2.text})`);
        return `"http://x" ${badUrl.status} (${badUrl.json?.msg}); STOP without a job 409 (${stopRec.json?.msg}); non-admin 403; no token 401; features off 403 (${r1.json?.msg} / ${r2.json?.msg})`;
      },
      20_000,
    );
  });
});
