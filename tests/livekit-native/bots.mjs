// Bots shared by the native tests (native.test.mjs, recording.test.mjs): LiveKit's Node SDK
// `@livekit/rtc-node` loaded once per process, the tap on its raw FFI events (SDK log records,
// E2EE states), synthetic media (a 440 Hz sine, a moving 320x240 I420 pattern), the Bot class
// (one Room, its events, subscriptions and decoded-frame counters), and two media assertions.

import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';

import { packageDir, packageVersion, within } from '@enclave-tests/lib';

import { waitFor } from './harness.mjs';

const RTC_NODE_DIR = packageDir('@livekit/rtc-node'); // says to run `npm ci --prefix tests` if missing

// The SDK's JS layer logs through pino at `debug` unless NODE_ENV=production; its lines would
// drown the test report on stdout. Our own taps below record what matters.
process.env.NODE_ENV ??= 'production';
export const rtc = await import('@livekit/rtc-node');
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
} = rtc;

export const RTC_NODE_VERSION = packageVersion('@livekit/rtc-node');
// The native binding rtc-node depends on (exactly pinned by it), looked up from rtc-node.
export const FFI_VERSION = packageVersion('@livekit/rtc-ffi-bindings', RTC_NODE_DIR);

export const CONNECT_MS = 15_000; // bound of room.connect()

export const WIDTH = 320;
export const HEIGHT = 240;
export const FPS = 15;
export const SAMPLE_RATE = 48_000;
export const TONE_HZ = 440;
export const TONE_PEAK = 0.05 * 32767; // a 10 ms frame whose peak is below this counts as silence

// ---------------------------------------------------------------------------------------------
// Raw FFI events. rtc-node hands FFI events to a process-wide emitter (globalThis
// ._ffiClientInstance, event 'ffi_event'). Two of them are not surfaced as Room events:
// `logs` (the Rust SDK's and libwebrtc's log records, forwarded at every level down to TRACE
// because rtc-node initialises the FFI with capture_logs = true; RUST_LOG does not filter
// them, keepFfiRecord() below does) and `e2eeStateChanged` states other than
// INTERNAL_ERROR (rtc-node 1.1.0 room.ts only turns INTERNAL_ERROR into EncryptionError).

let currentLog = null; // the TestLog of the running scenario (setFfiLog)

/** Where the SDK's log records go from now on (a TestLog, or null to drop them). */
export function setFfiLog(log) {
  currentLog = log;
}
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
export const redactKeys = (text) => text.replace(/(raw_key|derived_key) \[[0-9,]*\]/g, '$1 [<redacted>]');

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
export function makeI420(n) {
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

/** Starts feeding `source` with 10 ms frames of a `toneHz` sine in real time; returns stop(). */
export function feedAudio(source, log, name, toneHz = TONE_HZ) {
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
        phase += (2 * Math.PI * toneHz) / SAMPLE_RATE;
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
export function feedVideo(source, log, name) {
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

/**
 * `conn`: where and how to connect — `{ wsUrl, tokenFor(identity, roomId) }` (a LiveKit access
 * token for the room).
 */
export class Bot {
  constructor(name, log, conn) {
    this.name = name;
    this.conn = conn;
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

  async connect(roomId, { e2eeKey, failureTolerance, autoSubscribe = true } = {}) {
    const { wsUrl } = this.conn;
    const token = this.conn.tokenFor(this.name, roomId);
    const opts = { autoSubscribe, dynacast: false };
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

  /** Publishes the sine (`toneHz`, 440 Hz unless given) and the moving pattern. */
  async publishMedia({ toneHz = TONE_HZ } = {}) {
    const audioSource = new AudioSource(SAMPLE_RATE, 1);
    const videoSource = new VideoSource(WIDTH, HEIGHT);
    this.sources.push(audioSource, videoSource);
    const audioTrack = LocalAudioTrack.createAudioTrack('sine', audioSource);
    const videoTrack = LocalVideoTrack.createVideoTrack('pattern', videoSource);
    // Feed before publishing so the encoders have input as soon as the senders exist.
    this.feeders.push(feedAudio(audioSource, this.log, this.name, toneHz), feedVideo(videoSource, this.log, this.name));
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
    if (this.closed) return;
    this.closed = true;
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
// Media assertions
/** Waits until `b` got TrackSubscribed for `other`'s audio and video, with no failure. */
export async function waitSubscribed(b, other, deadline) {
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
export async function assertMediaFlows(b, other, log, deadline, { minVideo = 20, minAudio = 50 } = {}) {
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
