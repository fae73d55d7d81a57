// Native interop test: LiveKit's Node SDK `@livekit/rtc-node` (pinned in package.json; a thin
// JS layer over LiveKit's Rust SDK, shipped as the `@livekit/rtc-ffi-bindings` native binding)
// joins the embedded SFU of the real `enclave` binary — no browser. Two bots in this process:
// "pub" publishes a synthetic audio track (48 kHz mono sine) and a synthetic video track
// (320x240 I420, changing pattern, ~15 fps) and sends reliable data; "sub" auto-subscribes,
// reads the decoded frames through AudioStream / VideoStream and receives the data.
// Scenarios: plain, E2EE with the same shared key, E2EE with different keys.
// Run with `node --test tests/native/` (see README.md).
//
// What the Rust SDK does on the wire: ../../../shared/docs/livekit-protocol.md §1.4, §1.5, §2
// (tries /rtc/v1 first, falls back to /rtc on HTTP 404 without calling validate, Bearer token,
// protocol 17 in rtc-node 1.1.0).

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

import {
  Deadline,
  EnclaveServer,
  TestLog,
  authPost,
  freeTcpPort,
  here,
  livekitToken,
  repoRoot,
  waitFor,
  within,
} from './harness.mjs';

if (!fs.existsSync(path.join(here, 'node_modules', '@livekit', 'rtc-node'))) {
  throw new Error('tests/native/node_modules is missing: run `npm ci --prefix tests/native` first');
}

// The SDK's JS layer logs through pino at `debug` unless NODE_ENV=production; its lines would
// drown the test report on stdout. Our own taps below record what matters.
process.env.NODE_ENV ??= 'production';
const rtc = await import('@livekit/rtc-node');
const {
  AudioFrame,
  AudioSource,
  AudioStream,
  EncryptionState,
  EncryptionType,
  LocalAudioTrack,
  LocalVideoTrack,
  Room,
  RoomEvent,
  TrackKind,
  TrackPublishOptions,
  TrackSource,
  VideoBufferType,
  VideoFrame,
  VideoSource,
  VideoStream,
  dispose,
} = rtc;

const pkgVersion = (name) =>
  JSON.parse(fs.readFileSync(path.join(here, 'node_modules', name, 'package.json'), 'utf8')).version;
const RTC_NODE_VERSION = pkgVersion('@livekit/rtc-node');
const FFI_VERSION = pkgVersion('@livekit/rtc-ffi-bindings');

const BIN = process.env.ENCLAVE_BIN
  ? path.resolve(process.env.ENCLAVE_BIN)
  : path.join(repoRoot, 'target', 'debug', process.platform === 'win32' ? 'enclave.exe' : 'enclave');

const API_KEY = 'plugnmeet';
const SECRET = randomBytes(24).toString('hex'); // 48 characters
const LK_KEY = 'enclave-native-test';
const LK_SECRET = randomBytes(24).toString('hex'); // 48 characters

const SCENARIO_MS = 40_000; // hard bound of each scenario
const CONNECT_MS = 15_000; // bound of room.connect()

const WIDTH = 320;
const HEIGHT = 240;
const FPS = 15;
const SAMPLE_RATE = 48_000;
const TONE_HZ = 440;
const TONE_PEAK = 0.05 * 32767; // a 10 ms frame whose peak is below this counts as silence

let workDir; // temp: data dir of the server and per-test logs
let logDir;
let keepLogs = process.env.ENCLAVE_NATIVE_KEEP_LOGS === '1'; // else only after a failure
let server;
let baseUrl;
let wsUrl;
const summary = []; // one line per scenario, printed at the end

// ---------------------------------------------------------------------------------------------
// Raw FFI events. rtc-node hands FFI events to a process-wide emitter (globalThis
// ._ffiClientInstance, event 'ffi_event'). Two of them are not surfaced as Room events:
// `logs` (the Rust SDK's and libwebrtc's log records, forwarded at every level down to TRACE
// because rtc-node initialises the FFI with capture_logs = true; RUST_LOG does not filter
// them, keepFfiRecord() below does) and `e2eeStateChanged` states other than
// INTERNAL_ERROR (rtc-node 1.1.0 room.ts only turns INTERNAL_ERROR into EncryptionError).

let currentLog = null; // the TestLog of the running scenario
const e2eeListeners = new Map(); // room handle (bigint) -> (identity, state) => void
const e2eePending = []; // states that arrived before their room's listener was registered
let ffiTapped = false;

const LOG_LEVELS = ['ERROR', 'WARN', 'INFO', 'DEBUG', 'TRACE'];
// LK_FFI_LOG=all keeps every record (libwebrtc debug, tungstenite trace: ~1-2 MB per scenario).
// By default: everything at INFO and above, DEBUG of the livekit crates, the signalling
// handshake (the /rtc URLs), and libwebrtc lines about E2EE, SRTP, DTLS, ICE state and errors.
const FFI_LOG_ALL = process.env.LK_FFI_LOG === 'all';
const LIBWEBRTC_KEEP = /crypt|srtp|dtls|IceConnectionState|error|fail/i;
// Per-frame noise of the frame cryptor: key derivation (with key bytes), ratchet attempts.
const LIBWEBRTC_DROP = /frame_crypto_transformer\.cc:284\)|ratcheting key attempt|Failed to perform AES-GCM|sink_callback is NULL/;

function keepFfiRecord(r) {
  if (FFI_LOG_ALL || r.level <= 2) return true;
  if (r.level === 3 && r.target.startsWith('livekit')) return true;
  if (r.target === 'tungstenite::handshake::client' && r.message.startsWith('Request:')) return true;
  if (r.target === 'libwebrtc' && LIBWEBRTC_KEEP.test(r.message) && !LIBWEBRTC_DROP.test(r.message)) return true;
  return false;
}

/** libwebrtc logs derived key material at debug level; never keep it. */
const redactKeys = (text) => text.replace(/(raw_key|derived_key) \[[0-9,]*\]/g, '$1 [<redacted>]');

function tapFfi() {
  if (ffiTapped) return;
  const ffi = globalThis._ffiClientInstance;
  if (!ffi) return;
  ffiTapped = true;
  ffi.on('ffi_event', (ev) => {
    const m = ev.message;
    if (m.case === 'logs') {
      for (const r of m.value.records) {
        if (currentLog && keepFfiRecord(r)) {
          currentLog.add(`ffi ${LOG_LEVELS[r.level] ?? r.level} ${r.target}`, redactKeys(r.message));
        }
      }
    } else if (m.case === 'roomEvent' && m.value.message.case === 'e2eeStateChanged') {
      const { participantIdentity, state } = m.value.message.value;
      const listener = e2eeListeners.get(m.value.roomHandle);
      if (listener) listener(participantIdentity, state);
      else e2eePending.push({ handle: m.value.roomHandle, participantIdentity, state });
    }
  });
}

// ---------------------------------------------------------------------------------------------
// Synthetic media

/**
 * A 320x240 I420 frame of a changing pattern: a moving diagonal stripe texture whose overall
 * brightness swings with `n` (so the mean luma of decoded frames changes), plus a moving bar.
 */
function makeI420(n) {
  const ySize = WIDTH * HEIGHT;
  const cw = WIDTH / 2;
  const ch = HEIGHT / 2;
  const buf = new Uint8Array(ySize + 2 * cw * ch);
  const base = 40 + Math.round(110 * (0.5 + 0.5 * Math.sin(n / 6)));
  const shift = n * 3;
  for (let y = 0; y < HEIGHT; y += 1) {
    const row = y * WIDTH;
    for (let x = 0; x < WIDTH; x += 1) buf[row + x] = base + ((x + y + shift) & 63);
  }
  const bar = (n * 5) % WIDTH;
  for (let y = 0; y < HEIGHT; y += 1) for (let x = bar; x < Math.min(WIDTH, bar + 16); x += 1) buf[y * WIDTH + x] = 235;
  buf.fill(128 + Math.round(60 * Math.sin(n / 10)), ySize, ySize + cw * ch);
  buf.fill(128 + Math.round(60 * Math.cos(n / 10)), ySize + cw * ch);
  return new VideoFrame(buf, WIDTH, HEIGHT, VideoBufferType.I420);
}

/** Starts feeding `source` with 10 ms frames of a sine tone in real time; returns stop(). */
function feedAudio(source, log, name) {
  let stopped = false;
  let sent = 0;
  const samples = SAMPLE_RATE / 100;
  const done = (async () => {
    const t0 = performance.now();
    let phase = 0;
    while (!stopped) {
      const frame = AudioFrame.create(SAMPLE_RATE, 1, samples);
      for (let i = 0; i < samples; i += 1) {
        frame.data[i] = Math.round(0.5 * 32767 * Math.sin(phase));
        phase += (2 * Math.PI * TONE_HZ) / SAMPLE_RATE;
      }
      phase %= 2 * Math.PI;
      try {
        await source.captureFrame(frame);
      } catch (e) {
        if (!stopped) log.add(name, `audio captureFrame failed: ${e.message}`);
        return;
      }
      sent += 1;
      // Stay at most 100 ms ahead of real time.
      const ahead = sent * 10 - (performance.now() - t0);
      if (ahead > 100) await sleep(ahead - 100);
    }
  })();
  return {
    get sent() {
      return sent;
    },
    stop: async () => {
      stopped = true;
      await within(2_000, done, 'audio feeder stop').catch(() => {});
    },
  };
}

/** Feeds `source` with a changing pattern at FPS; returns stop(). */
function feedVideo(source, log, name) {
  let n = 0;
  const t0 = process.hrtime.bigint();
  const timer = setInterval(() => {
    try {
      source.captureFrame(makeI420(n), (process.hrtime.bigint() - t0) / 1000n);
      n += 1;
    } catch (e) {
      log.add(name, `video captureFrame failed: ${e.message}`);
    }
  }, Math.round(1000 / FPS));
  return {
    get sent() {
      return n;
    },
    stop: async () => clearInterval(timer),
  };
}

// ---------------------------------------------------------------------------------------------
// A bot: one Room, its events, its subscriptions and counters.

const STATE_NAME = (s) => EncryptionState[s] ?? String(s);

class Bot {
  constructor(name, log) {
    this.name = name;
    this.log = log;
    this.room = new Room();
    this.events = []; // {t, type, ...}
    this.remote = new Map(); // `${identity}/${kind}` -> counters
    this.data = []; // {text, identity, kind, topic}
    this.e2eeStates = []; // {identity, state}
    this.feeders = [];
    this.sources = [];
    this.readers = [];
    this.t0 = Date.now();
    this.wire();
  }

  ev(type, fields = {}) {
    const e = { t: Date.now() - this.t0, type, ...fields };
    this.events.push(e);
    this.log.add(this.name, `event ${type} ${JSON.stringify(fields)}`);
  }

  wire() {
    const r = this.room;
    r.on(RoomEvent.ConnectionStateChanged, (s) => this.ev('ConnectionStateChanged', { state: s }));
    r.on(RoomEvent.Disconnected, (reason) => this.ev('Disconnected', { reason }));
    r.on(RoomEvent.Reconnecting, () => this.ev('Reconnecting'));
    r.on(RoomEvent.Reconnected, () => this.ev('Reconnected'));
    r.on(RoomEvent.ParticipantConnected, (p) => this.ev('ParticipantConnected', { identity: p.identity, sid: p.sid }));
    r.on(RoomEvent.ParticipantDisconnected, (p) => this.ev('ParticipantDisconnected', { identity: p.identity }));
    r.on(RoomEvent.LocalTrackPublished, (pub) => this.ev('LocalTrackPublished', { sid: pub.sid, kind: pub.kind }));
    r.on(RoomEvent.TrackPublished, (pub, p) =>
      this.ev('TrackPublished', { identity: p?.identity, sid: pub.sid, kind: pub.kind, enc: pub.encryptionType, mime: pub.mimeType }),
    );
    r.on(RoomEvent.TrackSubscriptionFailed, (sid, p, reason) =>
      this.ev('TrackSubscriptionFailed', { sid, identity: p?.identity, reason }),
    );
    r.on(RoomEvent.ParticipantEncryptionStatusChanged, (enc, p) =>
      this.ev('ParticipantEncryptionStatusChanged', { identity: p?.identity, encrypted: enc }),
    );
    r.on(RoomEvent.EncryptionError, (e) => this.ev('EncryptionError', { message: e?.message }));
    r.on(RoomEvent.DataReceived, (payload, p, kind, topic) => {
      const text = Buffer.from(payload).toString('utf8');
      this.data.push({ text, identity: p?.identity, kind, topic });
      this.ev('DataReceived', { text, identity: p?.identity, kind, topic });
    });
    r.on(RoomEvent.TrackSubscribed, (track, pub, p) => {
      const kind = track.kind === TrackKind.KIND_VIDEO ? 'video' : track.kind === TrackKind.KIND_AUDIO ? 'audio' : String(track.kind);
      this.ev('TrackSubscribed', { identity: p.identity, kind, sid: pub.sid, enc: pub.encryptionType, mime: pub.mimeType });
      this.consume(track, pub, p.identity, kind);
    });
  }

  /** Reads the decoded frames of a subscribed remote track and counts them. */
  consume(track, pub, identity, kind) {
    const c = {
      identity,
      kind,
      sid: pub.sid,
      encryptionType: pub.encryptionType,
      frames: 0,
      firstFrameAt: null,
      // video
      dims: new Set(),
      lumaMeans: new Set(),
      // audio
      toneFrames: 0,
      toneSamples: 0,
      zeroCrossings: 0,
      sampleRate: null,
      channels: null,
    };
    this.remote.set(`${identity}/${kind}`, c);
    const stream = kind === 'video' ? new VideoStream(track) : new AudioStream(track, SAMPLE_RATE, 1);
    const reader = stream.getReader();
    this.readers.push(reader);
    (async () => {
      for (;;) {
        let r;
        try {
          r = await reader.read();
        } catch (e) {
          this.log.add(this.name, `${identity}/${kind} stream error: ${e.message}`);
          return;
        }
        if (r.done) {
          this.log.add(this.name, `${identity}/${kind} stream ended after ${c.frames} frames`);
          return;
        }
        c.frames += 1;
        if (c.firstFrameAt === null) {
          c.firstFrameAt = Date.now() - this.t0;
          this.log.add(this.name, `first ${kind} frame of ${identity}`);
        }
        if (kind === 'video') {
          const f = r.value.frame;
          c.dims.add(`${f.width}x${f.height}`);
          if (c.frames % 3 === 0 && c.lumaMeans.size < 64) {
            const i420 = f.type === VideoBufferType.I420 ? f : f.convert(VideoBufferType.I420);
            const ySize = i420.width * i420.height;
            let sum = 0;
            for (let i = 0; i < ySize; i += 7) sum += i420.data[i];
            c.lumaMeans.add(Math.round(sum / Math.ceil(ySize / 7)));
          }
        } else {
          const f = r.value;
          c.sampleRate = f.sampleRate;
          c.channels = f.channels;
          let peak = 0;
          for (let i = 0; i < f.data.length; i += 1) peak = Math.max(peak, Math.abs(f.data[i]));
          // A frame counts as the tone only if it is loud AND its zero-crossing rate matches
          // the sent frequency: garbage decoded with a wrong key can be loud, but it is noise.
          let crossings = 0;
          for (let i = f.channels; i < f.data.length; i += f.channels) {
            if ((f.data[i - f.channels] < 0) !== (f.data[i] < 0)) crossings += 1;
          }
          const hz = f.samplesPerChannel ? (crossings / 2) * (f.sampleRate / f.samplesPerChannel) : 0;
          if (peak >= TONE_PEAK && Math.abs(hz - TONE_HZ) <= TONE_HZ * 0.25) {
            c.toneFrames += 1;
            c.zeroCrossings += crossings;
            c.toneSamples += f.samplesPerChannel;
          } else if (peak >= TONE_PEAK) {
            c.loudNoiseFrames = (c.loudNoiseFrames ?? 0) + 1;
          }
        }
      }
    })();
  }

  counters(identity, kind) {
    const c = this.remote.get(`${identity}/${kind}`);
    if (!c) return null;
    return {
      frames: c.frames,
      toneFrames: c.toneFrames,
      loudNoiseFrames: c.loudNoiseFrames ?? 0,
      toneHz: c.toneSamples ? Math.round((c.zeroCrossings / 2) * (SAMPLE_RATE / c.toneSamples)) : null,
      dims: [...c.dims],
      distinctLuma: c.lumaMeans.size,
      encryptionType: c.encryptionType,
      sampleRate: c.sampleRate,
      channels: c.channels,
    };
  }

  async connect(roomId, { e2eeKey, failureTolerance } = {}) {
    const token = tokenFor(this.name, roomId);
    const opts = { autoSubscribe: true, dynacast: false };
    if (e2eeKey) {
      const keyProviderOptions = { sharedKey: new TextEncoder().encode(e2eeKey) };
      if (failureTolerance !== undefined) keyProviderOptions.failureTolerance = failureTolerance;
      opts.encryption = { keyProviderOptions, encryptionType: EncryptionType.GCM };
    }
    this.log.add(this.name, `connect ${wsUrl} room ${roomId}${e2eeKey ? ' with E2EE (shared key, GCM)' : ''}`);
    const t = Date.now();
    const p = this.room.connect(wsUrl, token, opts);
    tapFfi(); // the FFI client exists once connect() has been called
    try {
      await within(CONNECT_MS, p, `${this.name}: room.connect()`);
    } catch (e) {
      throw new Error(`${this.name} could not connect: ${e.message}`);
    }
    const handle = this.room.ffiHandle?.handle;
    if (handle !== undefined) {
      const listener = (identity, state) => {
        this.e2eeStates.push({ identity, state: STATE_NAME(state) });
        this.ev('E2eeStateChanged', { identity, state: STATE_NAME(state) });
      };
      e2eeListeners.set(handle, listener);
      for (let i = 0; i < e2eePending.length; ) {
        const p = e2eePending[i];
        if (p.handle === handle) {
          e2eePending.splice(i, 1);
          listener(p.participantIdentity, p.state);
        } else {
          i += 1;
        }
      }
    }
    const lp = this.room.localParticipant;
    this.log.add(
      this.name,
      `connected in ${Date.now() - t} ms: room ${this.room.name} sid ${await within(3000, this.room.getSid(), 'getSid').catch((e) => e.message)}, ` +
        `local ${lp?.identity} ${lp?.sid}, remotes [${[...this.room.remoteParticipants.keys()].join(', ')}], ` +
        `e2ee manager ${this.room.e2eeManager ? `enabled=${this.room.e2eeManager.enabled}` : 'none'}`,
    );
  }

  async publishMedia() {
    const audioSource = new AudioSource(SAMPLE_RATE, 1);
    const videoSource = new VideoSource(WIDTH, HEIGHT);
    this.sources.push(audioSource, videoSource);
    const audioTrack = LocalAudioTrack.createAudioTrack('sine', audioSource);
    const videoTrack = LocalVideoTrack.createVideoTrack('pattern', videoSource);
    // Feed before publishing so the encoders have input as soon as the senders exist.
    this.feeders.push(feedAudio(audioSource, this.log, this.name), feedVideo(videoSource, this.log, this.name));
    const ao = new TrackPublishOptions();
    ao.source = TrackSource.SOURCE_MICROPHONE;
    const vo = new TrackPublishOptions();
    vo.source = TrackSource.SOURCE_CAMERA;
    vo.simulcast = false;
    const lp = this.room.localParticipant;
    const a = await within(12_000, lp.publishTrack(audioTrack, ao), `${this.name}: publishTrack(audio)`);
    this.log.add(this.name, `published audio ${a.sid} mime ${a.mimeType} enc ${a.encryptionType}`);
    const v = await within(12_000, lp.publishTrack(videoTrack, vo), `${this.name}: publishTrack(video)`);
    this.log.add(this.name, `published video ${v.sid} mime ${v.mimeType} enc ${v.encryptionType}`);
    return { audio: a, video: v };
  }

  async sendData(text) {
    await within(
      5_000,
      this.room.localParticipant.publishData(new TextEncoder().encode(text), { reliable: true, topic: 'enclave-native' }),
      `${this.name}: publishData`,
    );
    this.log.add(this.name, `sent data ${JSON.stringify(text)}`);
  }

  async stats() {
    const s = await within(5_000, this.room.getRtcStats(), `${this.name}: getRtcStats`);
    const inbound = [];
    for (const st of s.subscriberStats ?? []) {
      if (st.stats.case !== 'inboundRtp') continue;
      const v = st.stats.value;
      inbound.push({
        kind: v.stream?.kind,
        track: v.inbound?.trackIdentifier,
        packets: Number(v.received?.packetsReceived ?? 0),
        bytes: Number(v.inbound?.bytesReceived ?? 0),
        framesDecoded: v.inbound?.framesDecoded ?? 0,
        keyFramesDecoded: v.inbound?.keyFramesDecoded ?? 0,
        framesDropped: v.inbound?.framesDropped ?? 0,
        pli: v.inbound?.pliCount ?? 0,
        nack: v.inbound?.nackCount ?? 0,
      });
    }
    return inbound;
  }

  async close() {
    for (const f of this.feeders) await f.stop();
    for (const r of this.readers) await r.cancel().catch(() => {});
    await within(5_000, this.room.disconnect(), `${this.name}: disconnect`).catch((e) =>
      this.log.add(this.name, `disconnect: ${e.message}`),
    );
    for (const s of this.sources) await s.close().catch(() => {});
    const h = this.room.ffiHandle?.handle;
    if (h !== undefined) e2eeListeners.delete(h);
  }
}

// ---------------------------------------------------------------------------------------------

before(async () => {
  if (!fs.existsSync(BIN)) {
    throw new Error(
      `enclave binary not found at ${BIN}. Run \`cargo build\` (or \`cargo build -p enclave\`) ` +
        'in the repository root first, or set ENCLAVE_BIN to the binary path.',
    );
  }
  workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'enclave-native-'));
  logDir = path.join(workDir, 'logs');
  fs.mkdirSync(logDir);
  const dataDir = path.join(workDir, 'data');
  fs.mkdirSync(dataDir);

  const port = await freeTcpPort();
  baseUrl = `http://127.0.0.1:${port}`;
  wsUrl = `ws://127.0.0.1:${port}`;
  server = new EnclaveServer({
    bin: BIN,
    env: {
      ENCLAVE_CLIENT__BIND: '127.0.0.1',
      ENCLAVE_CLIENT__PORT: String(port),
      ENCLAVE_CLIENT__API_KEY: API_KEY,
      ENCLAVE_CLIENT__SECRET: SECRET,
      ENCLAVE_LIVEKIT_INFO__API_KEY: LK_KEY,
      ENCLAVE_LIVEKIT_INFO__SECRET: LK_SECRET,
      ENCLAVE_DATABASE__DATA_DIR: dataDir,
      ENCLAVE_RTC__UDP_PORT: '0',
      ENCLAVE_RTC__NODE_IP: '127.0.0.1',
      ...(process.env.ENCLAVE_LOG ? { RUST_LOG: process.env.ENCLAVE_LOG } : {}),
    },
  });
  server.start();
  await server.waitHealthy(baseUrl, 30_000);
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
      `enclave ${BIN}):\n${summary.map((l) => `  ${l}`).join('\n') || '  (no scenario finished)'}\n`,
  );
  if (workDir) {
    if (keepLogs) {
      fs.rmSync(path.join(workDir, 'data'), { recursive: true, force: true });
      process.stderr.write(`native interop: per-test logs kept in ${logDir}\n`);
    } else {
      fs.rmSync(workDir, { recursive: true, force: true });
    }
  }
});

// ---------------------------------------------------------------------------------------------
// Helpers

async function createRoom(roomId, { e2ee = false } = {}) {
  const features = { allow_webcams: true, mute_on_start: false };
  if (e2ee) {
    // Self-inserted key: the participants share the key; the server holds nothing.
    features.end_to_end_encryption_features = { is_enabled: true, enabled_self_insert_encryption_key: true };
  }
  const res = await authPost(baseUrl, API_KEY, SECRET, '/room/create', {
    room_id: roomId,
    max_participants: 10,
    empty_timeout: 300,
    metadata: { room_title: `native interop ${roomId}`, room_features: features },
  });
  assert.equal(res.status, 200, `room/create: HTTP ${res.status} ${res.text}`);
  assert.equal(res.json?.status, true, `room/create failed: ${res.text}`);
  return res.json.room_info;
}

function tokenFor(identity, roomId) {
  return livekitToken({ apiKey: LK_KEY, secret: LK_SECRET, identity, name: identity, room: roomId });
}

/**
 * Runs `body({log, bot, deadline})` with a hard bound of `ms`; bots made through `bot(name)` are
 * disconnected afterwards. On failure: the per-test log (bot events, FFI log records, stats)
 * and the server output during the test are printed.
 */
async function scenario(name, body, ms = SCENARIO_MS) {
  const log = new TestLog(logDir, name);
  currentLog = log;
  const serverMark = server.mark();
  const bots = [];
  const deadline = new Deadline(ms, `scenario "${name}" bound of ${ms / 1000} s`);
  const bot = (who) => {
    const b = new Bot(who, log);
    bots.push(b);
    return b;
  };
  let timer;
  const bound = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`scenario "${name}" did not finish within ${ms / 1000} s`)), ms + 2_000);
  });
  try {
    await Promise.race([body({ log, bot, deadline }), bound]);
  } catch (e) {
    keepLogs = true;
    for (const b of bots) {
      log.add('driver', `final events of ${b.name}: ${JSON.stringify(b.events)}`);
      log.add('driver', `final counters of ${b.name}: ${JSON.stringify(Object.fromEntries([...b.remote.keys()].map((k) => [k, b.counters(...k.split('/'))])))}`);
      try {
        log.add('driver', `final inbound stats of ${b.name}: ${JSON.stringify(await b.stats())}`);
      } catch (err) {
        log.add('driver', `no final stats of ${b.name}: ${err.message}`);
      }
    }
    summary.push(`${name}: FAILED: ${e.message.split('\n')[0]}`);
    const out = server.since(serverMark);
    process.stderr.write(
      `\n===== native interop "${name}" failed: ${e.message}\n` +
        `===== log (${log.file}):\n${log.excerpt()}\n` +
        `===== enclave output during the test (last 24 KiB):\n${out.slice(-24 * 1024)}\n===== end\n`,
    );
    throw e;
  } finally {
    clearTimeout(timer);
    for (const b of bots) await b.close();
    fs.writeFileSync(log.file.replace(/\.log$/, '.server.log'), server.since(serverMark));
    currentLog = null;
  }
}

/** Waits until `b` got TrackSubscribed for `other`'s audio and video, with no failure. */
async function waitSubscribed(b, other, deadline) {
  const bad = (e) => ['TrackSubscriptionFailed', 'Disconnected'].includes(e.type);
  await waitFor(
    deadline,
    `${b.name}: TrackSubscribed for ${other}'s audio and video`,
    () => b.events,
    (evs) => evs.some(bad) || (b.remote.has(`${other}/audio`) && b.remote.has(`${other}/video`)),
    (evs) => JSON.stringify(evs.filter((x) => x.type !== 'ConnectionStateChanged')),
  );
  assert.deepEqual(b.events.filter(bad), [], `${b.name}: no TrackSubscriptionFailed / Disconnected expected`);
}

/**
 * Waits for more than `minVideo` video frames and `minAudio` audio frames carrying the tone,
 * then checks over two samples 2 s apart that both still rise. Returns the later sample.
 */
async function assertMediaFlows(b, other, log, deadline, { minVideo = 20, minAudio = 50 } = {}) {
  const sample = () => ({ t: Date.now(), v: b.counters(other, 'video'), a: b.counters(other, 'audio') });
  await waitFor(
    deadline,
    `${b.name}: > ${minVideo} video frames and > ${minAudio} tone audio frames of ${other}`,
    sample,
    (s) => s.v.frames > minVideo && s.a.toneFrames > minAudio,
    (s) => JSON.stringify(s),
    250,
  );
  const s1 = sample();
  await sleep(2_000);
  const s2 = sample();
  log.add('driver', `media of ${other} at ${b.name}: ${JSON.stringify(s1)} -> ${JSON.stringify(s2)}`);
  assert.ok(s2.v.frames > s1.v.frames, `${b.name}: ${other}'s video frames rise (${s1.v.frames} -> ${s2.v.frames})`);
  assert.ok(
    s2.a.toneFrames > s1.a.toneFrames,
    `${b.name}: ${other}'s audio tone frames rise (${s1.a.toneFrames} -> ${s2.a.toneFrames})`,
  );
  assert.deepEqual(s2.v.dims, [`${WIDTH}x${HEIGHT}`], `${b.name}: decoded video size`);
  // The publisher's brightness swings by ~110 levels every ~2.5 s; a frozen or garbage picture
  // would give one or two distinct means.
  assert.ok(s2.v.distinctLuma >= 8, `${b.name}: the decoded picture changes (distinct mean-luma values: ${s2.v.distinctLuma})`);
  assert.ok(
    Math.abs(s2.a.toneHz - TONE_HZ) <= TONE_HZ * 0.1,
    `${b.name}: the decoded audio is the ${TONE_HZ} Hz tone (estimated ${s2.a.toneHz} Hz)`,
  );
  const rate = (x1, x2) => ((x2 - x1) * 1000) / (s2.t - s1.t);
  return {
    video: s2.v.frames,
    audio: s2.a.frames,
    toneAudio: s2.a.toneFrames,
    fps: rate(s1.v.frames, s2.v.frames).toFixed(1),
    audioFps: rate(s1.a.frames, s2.a.frames).toFixed(1),
    toneHz: s2.a.toneHz,
    distinctLuma: s2.v.distinctLuma,
  };
}

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
