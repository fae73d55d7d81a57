// The enclave binary under test: `enclave serve` as a child process (EnclaveServer), and the
// usual test server on 127.0.0.1 with a temporary work directory, free ports and random secrets,
// configured by environment variables only (launchEnclave).

import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { authPost } from './auth.mjs';
import { ENCLAVE_BIN, requireBinary } from './paths.mjs';
import { freeTcpPort } from './ports.mjs';
import { Child } from './proc.mjs';
import { livekitToken } from './tokens.mjs';

/** Our environment without any ENCLAVE_* setting: the server then reads only what a test gives it. */
export function envWithoutEnclave(env = process.env) {
  return Object.fromEntries(Object.entries(env).filter(([k]) => !k.startsWith('ENCLAVE_')));
}

export class EnclaveServer extends Child {
  /**
   * @param {object} o
   * @param {string} [o.bin]  default ENCLAVE_BIN
   * @param {object} [o.env]  settings over our environment (or over `cleanEnv`'s)
   * @param {boolean} [o.cleanEnv]  drop our own ENCLAVE_* variables first
   * @param {string[]} [o.args]  default ['serve']
   * @param {string[]} [o.wrap]  a command that runs the binary (e.g. ['ip', 'netns', 'exec', ns])
   * Plus Child's label, keepBytes, keepRaw, graceMs.
   */
  constructor({ bin = ENCLAVE_BIN, env = {}, cleanEnv = false, args = ['serve'], wrap = [], label = 'enclave', keepBytes = 1024 * 1024, ...rest } = {}) {
    const cmd = wrap.length ? wrap[0] : bin;
    const argv = [...wrap.slice(1), ...(wrap.length ? [bin] : []), ...args];
    // A setting given as undefined removes that variable (e.g. ENCLAVE_TAP_FILE from our environment).
    const merged = Object.fromEntries(Object.entries({ ...(cleanEnv ? envWithoutEnclave() : process.env), ...env }).filter(([, v]) => v !== undefined));
    super({ label, cmd, args: argv, env: merged, keepBytes, ...rest });
    this.bin = bin;
  }

  /** All output still kept. */
  get log() {
    return this.text;
  }

  /** Waits until GET /healthCheck answers 200 "Healthy". */
  async waitHealthy(baseUrl, timeoutMs = 30_000) {
    await this.ready(timeoutMs, `GET ${baseUrl}/healthCheck`, async () => {
      const res = await fetch(`${baseUrl}/healthCheck`, { signal: AbortSignal.timeout(1000) });
      const text = await res.text();
      return (res.status === 200 && text === 'Healthy') || `HTTP ${res.status} ${JSON.stringify(text)}`;
    });
  }
}

/**
 * Starts the usual test server and waits until it is healthy: `enclave serve` on 127.0.0.1 and a
 * free port, its data in `dataDir`, or in data/ of a work directory `<tmp>/<prefix>XXXX`, the
 * /auth key `plugnmeet` with a random secret, the LiveKit key `lkKey` (none: no livekit_info
 * setting) with a random secret, the embedded SFU on UDP `udpPort` (0: any), no ICE over TCP, and
 * `nodeIp` as its advertised address (null: none). `env` adds or overrides settings.
 */
export async function launchEnclave({
  bin = ENCLAVE_BIN,
  label = 'enclave',
  prefix = 'enclave-test-',
  dataDir = null,
  lkKey = null,
  udpPort = 0,
  nodeIp = '127.0.0.1',
  env = {},
  healthyMs = 30_000,
  ...rest
} = {}) {
  requireBinary(bin, label);
  const t = new TestEnclave({ bin, label, prefix, dataDir, lkKey });
  t.port = await freeTcpPort();
  t.baseUrl = `http://127.0.0.1:${t.port}`;
  t.wsUrl = `ws://127.0.0.1:${t.port}`;
  t.server = new EnclaveServer({
    bin,
    label,
    env: {
      ENCLAVE_CLIENT__BIND: '127.0.0.1',
      ENCLAVE_CLIENT__PORT: String(t.port),
      ENCLAVE_CLIENT__API_KEY: t.apiKey,
      ENCLAVE_CLIENT__SECRET: t.secret,
      ...(lkKey ? { ENCLAVE_LIVEKIT_INFO__API_KEY: t.lkKey, ENCLAVE_LIVEKIT_INFO__SECRET: t.lkSecret } : {}),
      ENCLAVE_DATABASE__DATA_DIR: t.dataDir,
      // Any free UDP port for the embedded SFU unless told, so parallel runs do not collide.
      ENCLAVE_RTC__UDP_PORT: String(udpPort),
      // No ICE over TCP: tests run several servers, and 7881 is the default.
      ENCLAVE_RTC__TCP_PORT: '0',
      ...(nodeIp ? { ENCLAVE_RTC__NODE_IP: nodeIp } : {}),
      ...env,
    },
    ...rest,
  });
  t.server.start();
  try {
    await t.server.waitHealthy(t.baseUrl, healthyMs);
  } catch (e) {
    await t.stop();
    throw e;
  }
  return t;
}

/** A server started by launchEnclave: where it listens, its keys, and signed calls to it. */
export class TestEnclave {
  constructor({ bin, label, prefix, dataDir, lkKey }) {
    this.bin = bin;
    this.label = label;
    this.apiKey = 'plugnmeet';
    this.secret = randomBytes(24).toString('hex'); // 48 characters
    this.lkKey = lkKey;
    this.lkSecret = lkKey ? randomBytes(24).toString('hex') : null;
    // A data directory of the caller's (e.g. a WorkDir's), or data/ in a work directory of our own.
    this.workDir = dataDir ? null : fs.mkdtempSync(path.join(os.tmpdir(), prefix));
    this.dataDir = dataDir ?? path.join(this.workDir, 'data');
    fs.mkdirSync(this.dataDir, { recursive: true });
    this.server = null;
  }

  /** A signed /auth call: `{status, text, json}` whatever the status. */
  post(p, body, opts) {
    return authPost(this.baseUrl, this.apiKey, this.secret, p, body, opts);
  }

  /**
   * /auth/room/create of `roomId` with `features` (metadata.room_features); throws unless the
   * server answers HTTP 200 and status true. Returns the room_info.
   */
  async createRoom(roomId, { title = `test ${roomId}`, features = {}, maxParticipants = 10, emptyTimeout = 300 } = {}) {
    const res = await this.post('/room/create', {
      room_id: roomId,
      max_participants: maxParticipants,
      empty_timeout: emptyTimeout,
      metadata: { room_title: title, room_features: features },
    });
    if (res.status !== 200) throw new Error(`room/create: HTTP ${res.status} ${res.text}`);
    if (res.json?.status !== true) throw new Error(`room/create failed: ${res.text}`);
    return res.json.room_info;
  }

  /** A Plug-N-Meet join token for `userInfo` ({user_id, name, is_admin, ...}); throws unless status true. */
  async joinToken(roomId, userInfo) {
    const res = await this.post('/room/getJoinToken', { room_id: roomId, user_info: userInfo });
    if (res.json?.status !== true || !res.json.token) throw new Error(`getJoinToken(${userInfo.user_id}): HTTP ${res.status} ${res.text}`);
    return res.json.token;
  }

  /** A LiveKit access token for /rtc (see tokens.mjs). */
  token(identity, room, { grants, name, ttlSeconds } = {}) {
    return livekitToken({ apiKey: this.lkKey, secret: this.lkSecret, identity, name: name ?? identity, room, grants, ttlSeconds });
  }

  // The process, for failure reports.
  get pid() {
    return this.server?.pid;
  }

  get running() {
    return !!this.server?.running;
  }

  mark() {
    return this.server.mark();
  }

  since(pos) {
    return this.server.since(pos);
  }

  /** Stops the server (by its pid); removes the work directory unless `keep`. */
  async stop({ keep = false } = {}) {
    await this.server?.stop();
    if (!keep && this.workDir) fs.rmSync(this.workDir, { recursive: true, force: true });
  }
}
