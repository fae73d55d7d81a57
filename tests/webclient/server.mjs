// The server of the web-client suite: the normal binary (ENCLAVE_BIN) or the tap build
// (ENCLAVE_TAP_BIN), started by @enclave-tests/lib's launcher, with the calls a Plug-N-Meet
// integration makes to set up a meeting (room, join tokens) through the signed /auth API.

import fs from 'node:fs';
import path from 'node:path';

import { ENCLAVE_BIN, authPost, binFromEnv, launchEnclave } from '@enclave-tests/lib';

export const BIN = ENCLAVE_BIN;
export const TAP_BIN = binFromEnv('ENCLAVE_TAP_BIN', 'enclave-tap');

export class Enclave {
  /**
   * @param {{bin?: string, tapFile?: string, label?: string}} o
   */
  constructor({ bin = BIN, tapFile = null, label = 'enclave' } = {}) {
    this.bin = bin;
    this.tapFile = tapFile;
    this.label = label;
  }

  async start() {
    const t = await launchEnclave({
      bin: this.bin,
      label: this.label,
      prefix: 'enclave-webclient-',
      lkKey: 'enclave-webclient-test',
      env: { ENCLAVE_TAP_FILE: this.tapFile ?? undefined }, // never a tap file from our own environment
      keepRaw: true, // every byte, for searching secrets in it
      keepBytes: Infinity,
    });
    Object.assign(this, { t, proc: t.server, port: t.port, base: t.baseUrl, apiKey: t.apiKey, secret: t.secret, lkKey: t.lkKey, lkSecret: t.lkSecret });
    Object.assign(this, { workDir: t.workDir, dataDir: t.dataDir });
    return this;
  }

  get running() {
    return !!this.proc?.running;
  }

  get pid() {
    return this.proc?.pid;
  }

  /** stdout + stderr so far, decoded, without ANSI colours. */
  get text() {
    return this.proc?.text ?? '';
  }

  mark() {
    return this.proc.mark();
  }

  since(pos) {
    return this.proc.since(pos);
  }

  /** All stdout + stderr bytes so far. */
  output() {
    return this.proc.output();
  }

  /** SIGTERM to our child's pid, SIGKILL after 10 s; removes the work dir unless `keep`. */
  async stop({ keep = false } = {}) {
    await this.t?.stop({ keep });
  }

  /** A signed /auth call that must answer status true; its JSON. */
  async auth(p, body) {
    const r = await authPost(this.base, this.apiKey, this.secret, p, body, { signal: AbortSignal.timeout(10_000) });
    if (r.json?.status !== true) throw new Error(`/auth${p} → HTTP ${r.status} ${r.text.slice(0, 500)}`);
    return r.json;
  }

  /** mode: 'off' | 'server_key' | 'self_insert' */
  /**
   * `features`: more room features, merged over the defaults (e.g. the waiting room);
   * `metadata`: more of the room's metadata (e.g. `default_lock_settings`).
   */
  async createRoom(roomId, mode, features = {}, metadata = {}) {
    return this.auth('/room/create', {
      room_id: roomId,
      max_participants: 10,
      empty_timeout: 120,
      metadata: {
        room_title: `Room ${roomId}`,
        room_features: {
          allow_webcams: true,
          mute_on_start: false,
          allow_screen_share: true,
          chat_features: { is_allow: true },
          recording_features: { is_allow: true, is_allow_cloud: true },
          end_to_end_encryption_features: { is_enabled: mode !== 'off', enabled_self_insert_encryption_key: mode === 'self_insert' },
          ...features,
        },
        ...metadata,
      },
    });
  }

  async joinToken(roomId, userId, name, isAdmin = false, isHidden = false) {
    const r = await this.auth('/room/getJoinToken', {
      room_id: roomId,
      user_info: { user_id: userId, name, is_admin: isAdmin, is_hidden: isHidden },
    });
    return r.token;
  }
}

/** Every file under `dir` (recursively) as [path, bytes]. */
export function filesUnder(dir) {
  const out = [];
  const walk = (d) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isFile()) out.push([p, fs.readFileSync(p)]);
    }
  };
  if (fs.existsSync(dir)) walk(dir);
  return out;
}
