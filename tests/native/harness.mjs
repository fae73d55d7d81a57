// Helpers of the native interop test (native.test.mjs): the enclave child process, free ports,
// the signed /auth API, LiveKit access tokens, a per-test log, waiting. Node 20 built-ins only.
// (Deliberately self-contained: tests/browser/harness.mjs carries browser-only parts.)

import { spawn } from 'node:child_process';
import { createHmac } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';

export const here = path.dirname(fileURLToPath(import.meta.url));
export const repoRoot = path.resolve(here, '..', '..');

export function freeTcpPort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

// ---------------------------------------------------------------------------------------------
// Per-test log: every line is kept in memory and appended to a file; printed on failure.

export class TestLog {
  constructor(dir, name) {
    this.lines = [];
    this.start = Date.now();
    this.file = path.join(dir, `${name.replace(/[^A-Za-z0-9_.-]+/g, '_')}.log`);
    fs.writeFileSync(this.file, '');
  }

  add(source, text) {
    const ms = String(Date.now() - this.start).padStart(6, ' ');
    const line = `${ms} ms [${source}] ${redact(text)}`;
    this.lines.push(line);
    try {
      fs.appendFileSync(this.file, `${line}\n`);
    } catch {
      // the log directory may already be gone during teardown
    }
  }

  /** The first `head` and the last `tail` lines, for printing on failure. */
  excerpt(head = 80, tail = 240) {
    if (this.lines.length <= head + tail) return this.lines.join('\n');
    const skipped = this.lines.length - head - tail;
    return [
      ...this.lines.slice(0, head),
      `… ${skipped} lines left out here (all of them are in ${this.file}) …`,
      ...this.lines.slice(-tail),
    ].join('\n');
  }
}

/** Log lines without tokens (query parameter or Bearer header). */
export function redact(text) {
  return String(text)
    .replace(/access_token=(?!<jwt>)[A-Za-z0-9._~%-]+/g, 'access_token=<jwt>')
    .replace(/Bearer\s+[A-Za-z0-9._~+/=-]+/g, 'Bearer <jwt>')
    .replace(/eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]+/g, '<jwt>');
}

// ---------------------------------------------------------------------------------------------
// The enclave binary, configured by environment variables (as tests/browser does).

export class EnclaveServer {
  constructor({ bin, env }) {
    this.bin = bin;
    this.env = env;
    this.log = '';
    this.total = 0;
    this.child = null;
    this.exited = null;
  }

  keep(chunk) {
    // eslint-disable-next-line no-control-regex
    const text = chunk.toString().replace(/\x1b\[[0-9;]*m/g, ''); // no ANSI colours in reports
    this.total += text.length;
    this.log += text;
    if (this.log.length > 1024 * 1024) this.log = this.log.slice(-1024 * 1024);
  }

  /** A position in the server output, for `since`. */
  mark() {
    return this.total;
  }

  /** Server output written after `mark()` returned `pos` (as much as is still kept). */
  since(pos) {
    const n = this.total - pos;
    return n <= 0 ? '' : this.log.slice(-Math.min(n, this.log.length));
  }

  start() {
    this.child = spawn(this.bin, ['serve'], {
      env: { ...process.env, ...this.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.exited = new Promise((resolve) =>
      this.child.once('exit', (code, signal) => resolve({ code, signal })),
    );
    this.child.stdout.on('data', (c) => this.keep(c));
    this.child.stderr.on('data', (c) => this.keep(c));
    this.child.once('error', (e) => this.keep(`\nspawn error: ${e.message}\n`));
  }

  get pid() {
    return this.child?.pid;
  }

  get running() {
    return this.child && this.child.exitCode === null && this.child.signalCode === null;
  }

  async waitHealthy(baseUrl, timeoutMs) {
    const deadline = Date.now() + timeoutMs;
    let last = 'no answer';
    while (Date.now() < deadline) {
      if (!this.running) {
        throw new Error(
          `enclave exited early (code ${this.child.exitCode}, signal ${this.child.signalCode}). ` +
            `Output:\n${this.log}`,
        );
      }
      try {
        const res = await fetch(`${baseUrl}/healthCheck`, { signal: AbortSignal.timeout(1000) });
        const text = await res.text();
        if (res.status === 200 && text === 'Healthy') return;
        last = `HTTP ${res.status} ${JSON.stringify(text)}`;
      } catch (e) {
        last = e.message;
      }
      await sleep(100);
    }
    throw new Error(`enclave did not become healthy within ${timeoutMs} ms (last: ${last}). Output:\n${this.log}`);
  }

  /** SIGTERM to the child's own pid, SIGKILL after 10 s. */
  async stop() {
    if (!this.running) return;
    process.kill(this.child.pid, 'SIGTERM');
    const done = await Promise.race([this.exited, sleep(10_000, null, { ref: false })]);
    if (done === null && this.running) {
      process.kill(this.child.pid, 'SIGKILL');
      await this.exited;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// /auth API and LiveKit access tokens

export async function authPost(baseUrl, apiKey, secret, p, bodyObj) {
  const body = JSON.stringify(bodyObj);
  const res = await fetch(`${baseUrl}/auth${p}`, {
    method: 'POST',
    headers: {
      'Content-Type': 'application/json',
      'API-KEY': apiKey,
      'HASH-SIGNATURE': createHmac('sha256', secret).update(body).digest('hex'),
    },
    body,
  });
  const text = await res.text();
  let json;
  try {
    json = JSON.parse(text);
  } catch {
    json = null;
  }
  return { status: res.status, text, json };
}

/** A LiveKit access token (JWT HS256), minted like livekit-server-sdk does. */
export function livekitToken({ apiKey, secret, identity, name, room, ttlSeconds = 600 }) {
  const now = Math.floor(Date.now() / 1000);
  const enc = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const header = enc({ alg: 'HS256', typ: 'JWT' });
  const claims = enc({
    iss: apiKey,
    sub: identity,
    name: name ?? identity,
    nbf: now - 10,
    exp: now + ttlSeconds,
    video: { roomJoin: true, room, canPublish: true, canSubscribe: true, canPublishData: true },
  });
  const sig = createHmac('sha256', secret).update(`${header}.${claims}`).digest('base64url');
  return `${header}.${claims}.${sig}`;
}

// ---------------------------------------------------------------------------------------------
// Waiting

export class Deadline {
  constructor(ms, what) {
    this.end = Date.now() + ms;
    this.what = what;
  }

  left() {
    return this.end - Date.now();
  }
}

/** Polls `probe` (sync or async) until `ok(value)` holds; throws with `describe(value)`. */
export async function waitFor(deadline, what, probe, ok, describe = (v) => JSON.stringify(v), intervalMs = 100) {
  let last;
  for (;;) {
    last = await probe();
    if (ok(last)) return last;
    if (deadline.left() <= 0) {
      throw new Error(`timed out (${deadline.what}) waiting for ${what}; last value: ${describe(last)}`);
    }
    await sleep(Math.min(intervalMs, Math.max(10, deadline.left())));
  }
}

/** `promise`, or a rejection after `ms` naming `what`. */
export function within(ms, promise, what = 'operation') {
  let timer;
  return Promise.race([
    promise,
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

// ---------------------------------------------------------------------------------------------
// External tools (ffmpeg, ffprobe, nginx), always bounded

/**
 * Runs `cmd args` and collects its output. After `timeoutMs` the child (its own pid, nothing
 * else) gets SIGKILL and the result says `timedOut`. Resolves `{code, signal, stdout (Buffer),
 * stderr (string), timedOut, ms}`; rejects only when the program cannot be started at all
 * (e.g. ENOENT: not installed).
 */
export function runTool(cmd, args, { timeoutMs = 30_000, maxStdout = 256 * 1024 * 1024 } = {}) {
  return new Promise((resolve, reject) => {
    const t0 = Date.now();
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const out = [];
    let outLen = 0;
    let err = '';
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      if (child.exitCode === null && child.signalCode === null) process.kill(child.pid, 'SIGKILL');
    }, timeoutMs);
    child.stdout.on('data', (c) => {
      outLen += c.length;
      if (outLen <= maxStdout) out.push(c);
    });
    child.stderr.on('data', (c) => {
      err += c.toString();
      if (err.length > 256 * 1024) err = err.slice(-256 * 1024);
    });
    child.once('error', (e) => {
      clearTimeout(timer);
      reject(new Error(`cannot run ${cmd}: ${e.message}`));
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout: Buffer.concat(out), stderr: err, timedOut, ms: Date.now() - t0 });
    });
  });
}
