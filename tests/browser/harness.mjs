// Helpers of the browser interop test (interop.test.mjs): the enclave child process, the static
// page server, headless Chromium through playwright-core, LiveKit access tokens, per-test logs.
// Only Node 20 built-ins and playwright-core.

import { spawn } from 'node:child_process';
import { createHmac } from 'node:crypto';
import dgram from 'node:dgram';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';

export const here = path.dirname(fileURLToPath(import.meta.url));
export const repoRoot = path.resolve(here, '..', '..');

// ---------------------------------------------------------------------------------------------
// Ports

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

export function freeUdpPort() {
  return new Promise((resolve, reject) => {
    const sock = dgram.createSocket('udp4');
    sock.unref();
    sock.on('error', reject);
    sock.bind(0, '127.0.0.1', () => {
      const { port } = sock.address();
      sock.close(() => resolve(port));
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

  /** Appends a long text (e.g. SDP) to the side file `<test>.<suffix>.log`; returns its path. */
  attach(suffix, title, text) {
    const file = this.file.replace(/\.log$/, `.${suffix}.log`);
    const ms = String(Date.now() - this.start).padStart(6, ' ');
    fs.appendFileSync(file, `===== ${ms} ms ${title}\n${redact(text).trimEnd()}\n\n`);
    return file;
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

/** Log lines without tokens: access_token=<jwt> and join_request=<N chars>. */
export function redact(text) {
  return String(text)
    .replace(/access_token=(?!%3Credacted)[A-Za-z0-9._~%-]+/g, 'access_token=<jwt>')
    .replace(/join_request=[A-Za-z0-9._~%+/=-]+/g, (m) => `join_request=<${m.length - 13} chars>`);
}

// ---------------------------------------------------------------------------------------------
// The enclave binary, configured by environment variables (as tests/sdk-js/sdk.test.mjs does).

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
    if (this.log.length > 256 * 1024) this.log = this.log.slice(-256 * 1024);
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
// Static page server: page/ and node_modules/livekit-client/dist/ under /lk/.

const TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
};

export async function startStaticServer() {
  const pageDir = path.join(here, 'page');
  const lkDir = path.join(here, 'node_modules', 'livekit-client', 'dist');
  if (!fs.existsSync(path.join(lkDir, 'livekit-client.umd.js'))) {
    throw new Error(`${lkDir}/livekit-client.umd.js is missing: run \`npm ci --prefix tests/browser\` first`);
  }
  const resolveFile = (urlPath) => {
    let root;
    let rel;
    if (urlPath === '/' || urlPath === '/index.html') {
      root = pageDir;
      rel = 'index.html';
    } else if (urlPath.startsWith('/lk/')) {
      root = lkDir;
      rel = urlPath.slice('/lk/'.length);
    } else {
      root = pageDir;
      rel = urlPath.slice(1);
    }
    const file = path.resolve(root, decodeURIComponent(rel));
    if (file !== root && !file.startsWith(root + path.sep)) return null;
    return file;
  };
  const server = http.createServer((req, res) => {
    const url = new URL(req.url, 'http://x');
    const file = req.method === 'GET' || req.method === 'HEAD' ? resolveFile(url.pathname) : null;
    let body;
    try {
      if (!file || !fs.statSync(file).isFile()) throw new Error('not a file');
      body = fs.readFileSync(file);
    } catch {
      res.writeHead(404, { 'Content-Type': 'text/plain' });
      res.end('not found');
      return;
    }
    res.writeHead(200, {
      'Content-Type': TYPES[path.extname(file)] ?? 'application/octet-stream',
      'Cache-Control': 'no-store',
    });
    res.end(req.method === 'HEAD' ? undefined : body);
  });
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const { port } = server.address();
  return {
    origin: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections?.();
        server.close(() => resolve());
      }),
  };
}

// ---------------------------------------------------------------------------------------------
// Chromium

export const CHROMIUM = process.env.CHROMIUM_BIN ?? '/usr/bin/chromium';

// Flags of ../../../shared/docs/sfu-research.md section 4.1, plus --headless=new.
export const CHROMIUM_ARGS = [
  '--headless=new',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--use-fake-device-for-media-stream',
  '--use-fake-ui-for-media-stream',
];

// Runs before any page script: records every RTCPeerConnection the page creates (including the
// early v1 publisher PC that livekit-client closes when it falls back to /rtc), and every SDP
// applied to them (window.__sdps: {pc, side, type, sdp}; dumped into the log on failure).
export const PC_HOOK = `(() => {
  const Orig = window.RTCPeerConnection;
  if (!Orig || Orig.__enclaveHooked) return;
  window.__pcs = [];
  window.__sdps = [];
  const note = (pc, side, d) => {
    if (d && d.sdp) {
      window.__sdps.push({ t: Math.round(performance.now()), pc: window.__pcs.indexOf(pc), side, type: d.type, sdp: d.sdp });
    }
  };
  class Hooked extends Orig {
    constructor(...args) {
      super(...args);
      window.__pcs.push(this);
    }
    async setRemoteDescription(d) {
      const r = await super.setRemoteDescription(d);
      note(this, 'remote', d);
      return r;
    }
    async setLocalDescription(...args) {
      const r = await super.setLocalDescription(...args);
      note(this, 'local', this.localDescription);
      return r;
    }
  }
  Hooked.__enclaveHooked = true;
  window.RTCPeerConnection = Hooked;
  if (window.webkitRTCPeerConnection) window.webkitRTCPeerConnection = Hooked;
})();`;

/**
 * A user (one browser context, one page) at `origin`, with console, page errors, failed requests,
 * WebSocket opens/closes and the HTTP status of /rtc requests written to `log` under `name`.
 */
export async function openParticipant(browser, origin, log, name) {
  const context = await browser.newContext();
  await context.grantPermissions(['camera', 'microphone'], { origin });
  await context.addInitScript({ content: PC_HOOK });
  const page = await context.newPage();
  // WebSocket URLs and /rtc* HTTP responses, in the order seen (for the failure summary).
  const seen = { sockets: [], rtcRequests: [], order: [] };
  page.on('console', (m) => log.add(name, `console.${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => log.add(name, `pageerror: ${e.stack || e.message}`));
  page.on('crash', () => log.add(name, 'page crashed'));
  page.on('requestfailed', (r) => {
    const error = r.failure()?.errorText ?? '?';
    log.add(name, `requestfailed: ${r.method()} ${r.url()} (${error})`);
    if (/\/rtc(\/|\?|$)/.test(r.url())) seen.order.push({ kind: 'failed', url: r.url(), error });
  });
  page.on('response', (r) => {
    if (/\/rtc(\/|\?|$)/.test(r.url())) {
      const h = r.headers();
      const entry = { kind: 'http', url: r.url(), status: r.status(), acao: h['access-control-allow-origin'] ?? null };
      seen.rtcRequests.push(entry);
      seen.order.push(entry);
      log.add(name, `response: ${r.status()} ${r.url()} access-control-allow-origin=${h['access-control-allow-origin'] ?? '(none)'}`);
    }
  });
  page.on('websocket', (ws) => {
    seen.sockets.push(ws.url());
    seen.order.push({ kind: 'ws', url: ws.url() });
    log.add(name, `websocket open: ${ws.url()}`);
    ws.on('close', () => log.add(name, `websocket closed: ${ws.url()}`));
    ws.on('socketerror', (e) => log.add(name, `websocket error: ${ws.url()}: ${e}`));
  });
  page.on('worker', (w) => {
    log.add(name, `worker started: ${w.url()}`);
    w.on('console', (m) => log.add(`${name}/worker`, `console.${m.type()}: ${m.text()}`));
  });
  await page.goto(`${origin}/`, { waitUntil: 'load' });
  await page.waitForFunction(() => window.LivekitClient && window.lk && typeof window.join === 'function', null, {
    timeout: 10_000,
  });
  return { name, context, page, seen };
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
export function livekitToken({ apiKey, secret, identity, name, room, ttlSeconds = 600, grants = {} }) {
  const now = Math.floor(Date.now() / 1000);
  const enc = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const header = enc({ alg: 'HS256', typ: 'JWT' });
  const claims = enc({
    iss: apiKey,
    sub: identity,
    name: name ?? identity,
    nbf: now - 10,
    exp: now + ttlSeconds,
    video: { roomJoin: true, room, canPublish: true, canSubscribe: true, canPublishData: true, ...grants },
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

/** Polls `probe` (async, returns a value) until `ok(value)` holds; throws with `describe(value)`. */
export async function waitFor(deadline, what, probe, ok, describe = (v) => JSON.stringify(v), intervalMs = 250) {
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
