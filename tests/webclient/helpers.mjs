// Helpers of the web-client end-to-end suite (webclient.test.mjs) and its benchmark (bench.mjs):
// the enclave child process, the signed /auth API, headless Chromium (launched as a server so we
// know its pid), users that act only through the client's data-testid hooks, in-page
// observation (WebRTC stats per remote tile, a timeline of the testid hooks), searching bytes in
// many encodings, the SFU tap file, and CPU time of a process tree from /proc.
// Only Node 20 built-ins and playwright-core.

import { spawn } from 'node:child_process';
import { createDecipheriv, createHmac, hkdfSync, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';

export const here = path.dirname(fileURLToPath(import.meta.url));
export const repoRoot = path.resolve(here, '..', '..');

if (!fs.existsSync(path.join(here, 'node_modules', 'playwright-core'))) {
  throw new Error('tests/webclient/node_modules is missing: run `npm ci --prefix tests/webclient` first');
}
const require = createRequire(import.meta.url);
export const { chromium } = require('playwright-core');

export const BIN = path.resolve(process.env.ENCLAVE_BIN ?? path.join(repoRoot, 'target', 'debug', 'enclave'));
export const TAP_BIN = path.resolve(process.env.ENCLAVE_TAP_BIN ?? path.join(repoRoot, 'target', 'debug', 'enclave-tap'));
export const CHROMIUM = process.env.CHROMIUM_BIN ?? '/usr/bin/chromium';

// The flags of tests/browser (harness.mjs), plus autoplay without a gesture so that remote audio
// plays without anyone clicking "Turn on sound" (it does not change what is received).
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
  '--autoplay-policy=no-user-gesture-required',
];

export const tid = (id) => `[data-testid="${id}"]`;

// ---------------------------------------------------------------------------------------------
// Small utilities

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

export const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

/** Rejects with "<what> took longer than <ms> ms" unless `promise` settles first. */
export async function within(ms, what, promise) {
  let timer;
  try {
    return await Promise.race([
      promise,
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${what} took longer than ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** Polls `probe` until `ok(value)`; throws with the last value when `ms` have passed. */
export async function waitFor(ms, what, probe, ok = (v) => !!v, describe = (v) => JSON.stringify(v), every = 250) {
  const end = Date.now() + ms;
  let last;
  for (;;) {
    last = await probe();
    if (ok(last)) return last;
    if (Date.now() >= end) throw new Error(`timed out after ${ms} ms waiting for ${what}; last: ${describe(last)}`.slice(0, 4000));
    await sleep(Math.min(every, Math.max(10, end - Date.now())));
  }
}

/** Per-scenario log: every line kept in memory, printed when the scenario fails. */
export class Log {
  constructor(name) {
    this.name = name;
    this.t0 = Date.now();
    this.lines = [];
  }

  add(source, text) {
    const t = String(Date.now() - this.t0).padStart(6);
    const s = String(text).replace(/access_token=[A-Za-z0-9._~%-]+/g, 'access_token=<jwt>');
    this.lines.push(`${t} ms [${source}] ${s.length > 2000 ? `${s.slice(0, 2000)}…` : s}`);
  }

  excerpt(head = 60, tail = 300) {
    if (this.lines.length <= head + tail) return this.lines.join('\n');
    return [...this.lines.slice(0, head), `… ${this.lines.length - head - tail} lines left out …`, ...this.lines.slice(-tail)].join('\n');
  }
}

// ---------------------------------------------------------------------------------------------
// Children we started, stopped by pid if this process exits without its after() hooks (e.g. the
// test runner is interrupted). Playwright does the same for the browsers it launched.

const children = new Set();
process.once('exit', () => {
  for (const pid of children) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
});
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.once(sig, () => process.exit(128 + 2));

// ---------------------------------------------------------------------------------------------
// The enclave binary

export class Enclave {
  /**
   * @param {{bin?: string, tapFile?: string, label?: string}} o
   */
  constructor({ bin = BIN, tapFile = null, label = 'enclave' } = {}) {
    this.bin = bin;
    this.tapFile = tapFile;
    this.label = label;
    this.apiKey = 'plugnmeet';
    this.secret = randomBytes(24).toString('hex');
    this.lkKey = 'enclave-webclient-test';
    this.lkSecret = randomBytes(24).toString('hex');
    this.chunks = []; // every byte of stdout and stderr, for searching
    this.text = ''; // the same, decoded, without ANSI colours
    this.child = null;
  }

  async start() {
    if (!fs.existsSync(this.bin)) {
      throw new Error(`${this.label} binary not found at ${this.bin}: build it first (see tests/webclient/README.md)`);
    }
    this.workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'enclave-webclient-'));
    this.dataDir = path.join(this.workDir, 'data');
    fs.mkdirSync(this.dataDir);
    this.port = await freeTcpPort();
    this.base = `http://127.0.0.1:${this.port}`;
    const env = {
      ...process.env,
      ENCLAVE_CLIENT__BIND: '127.0.0.1',
      ENCLAVE_CLIENT__PORT: String(this.port),
      ENCLAVE_CLIENT__API_KEY: this.apiKey,
      ENCLAVE_CLIENT__SECRET: this.secret,
      ENCLAVE_LIVEKIT_INFO__API_KEY: this.lkKey,
      ENCLAVE_LIVEKIT_INFO__SECRET: this.lkSecret,
      ENCLAVE_DATABASE__DATA_DIR: this.dataDir,
      ENCLAVE_RTC__UDP_PORT: '0',
      // No ICE over TCP: tests run several servers, and 7881 is the default.
      ENCLAVE_RTC__TCP_PORT: '0',
      ENCLAVE_RTC__NODE_IP: '127.0.0.1',
    };
    if (this.tapFile) env.ENCLAVE_TAP_FILE = this.tapFile;
    else delete env.ENCLAVE_TAP_FILE;
    this.child = spawn(this.bin, ['serve'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    const { pid } = this.child;
    if (pid) children.add(pid);
    this.exited = new Promise((resolve) =>
      this.child.once('exit', (code, signal) => {
        children.delete(pid);
        resolve({ code, signal });
      }),
    );
    const keep = (c) => {
      this.chunks.push(Buffer.from(c));
      // eslint-disable-next-line no-control-regex
      this.text += c.toString().replace(/\x1b\[[0-9;]*m/g, '');
    };
    this.child.stdout.on('data', keep);
    this.child.stderr.on('data', keep);
    this.child.once('error', (e) => keep(Buffer.from(`spawn error: ${e.message}\n`)));
    const end = Date.now() + 30_000;
    let last = 'no answer';
    while (Date.now() < end) {
      if (!this.running) throw new Error(`${this.label} exited early: ${JSON.stringify(await this.exited)}\n${this.text}`);
      try {
        const r = await fetch(`${this.base}/healthCheck`, { signal: AbortSignal.timeout(1000) });
        if (r.status === 200) return this;
        last = `HTTP ${r.status}`;
      } catch (e) {
        last = e.message;
      }
      await sleep(100);
    }
    throw new Error(`${this.label} not healthy within 30 s (${last})\n${this.text}`);
  }

  get running() {
    return !!this.child && this.child.exitCode === null && this.child.signalCode === null;
  }

  get pid() {
    return this.child?.pid;
  }

  mark() {
    return this.text.length;
  }

  since(pos) {
    return this.text.slice(pos);
  }

  /** All stdout + stderr bytes so far. */
  output() {
    return Buffer.concat(this.chunks);
  }

  /** SIGTERM to our child's pid, SIGKILL after 10 s; removes the work dir unless `keep`. */
  async stop({ keep = false } = {}) {
    if (this.running) {
      process.kill(this.child.pid, 'SIGTERM');
      const done = await Promise.race([this.exited, sleep(10_000, null, { ref: false })]);
      if (done === null && this.running) {
        process.kill(this.child.pid, 'SIGKILL');
        await this.exited;
      }
    }
    if (!keep && this.workDir) fs.rmSync(this.workDir, { recursive: true, force: true });
  }

  async auth(p, body) {
    const text = JSON.stringify(body);
    const res = await fetch(`${this.base}/auth${p}`, {
      method: 'POST',
      headers: {
        'Content-Type': 'application/json',
        'API-KEY': this.apiKey,
        'HASH-SIGNATURE': createHmac('sha256', this.secret).update(text).digest('hex'),
      },
      body: text,
      signal: AbortSignal.timeout(10_000),
    });
    const reply = await res.text();
    let json = null;
    try {
      json = JSON.parse(reply);
    } catch {
      // reported below
    }
    if (!json || json.status !== true) throw new Error(`/auth${p} → HTTP ${res.status} ${reply.slice(0, 500)}`);
    return json;
  }

  /** mode: 'off' | 'server_key' | 'self_insert' */
  /** `features`: more room features, merged over the defaults (e.g. the waiting room). */
  async createRoom(roomId, mode, features = {}) {
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

// ---------------------------------------------------------------------------------------------
// Chromium, launched as a Playwright browser server so that its pid is ours to stop and measure.

export async function launchBrowser() {
  if (!fs.existsSync(CHROMIUM)) throw new Error(`Chromium not found at ${CHROMIUM}: apt-get install -y chromium (or set CHROMIUM_BIN)`);
  const server = await chromium.launchServer({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS, timeout: 30_000 });
  const pid = server.process().pid;
  let browser;
  try {
    browser = await chromium.connect(server.wsEndpoint(), { timeout: 30_000 });
  } catch (e) {
    await killBrowser(server, pid);
    throw e;
  }
  return {
    browser,
    pid,
    version: browser.version(),
    async close() {
      await browser.close().catch(() => {});
      await killBrowser(server, pid);
    },
  };
}

async function killBrowser(server, pid) {
  await within(10_000, 'closing Chromium', server.close()).catch(() => {});
  if (alive(pid)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
}

const alive = (pid) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

// ---------------------------------------------------------------------------------------------
// What runs in every page before its own scripts (observation only; nothing here acts):
//  * every RTCPeerConnection is recorded (window.__pcs), so WebRTC stats can be read;
//  * a timeline of the testid hooks (window.__tl: {t (epoch ms), what, value}) kept by a
//    MutationObserver: connection-state, e2ee-status, e2ee-key-ready, join-button enabled,
//    prejoin/meeting/ended-page presence; and clicks on join-button;
//  * with `gumDelayMs`, getUserMedia resolves that much later (a slow microphone or camera);
//  * with `autoJoin` (bench only), a click on join-button the moment it is enabled;
//  * with `watchFrames`, the first time a remote tile's <video> has decoded a frame, per
//    identity (window.__firstFrame), and the time it has decoded 30 (window.__frames30), polled
//    every 5 ms.
export const INIT_SCRIPT = ({ watchFrames = false, autoJoin = false, gumDelayMs = 0 } = {}) => `(() => {
  if (${Number(gumDelayMs) || 0} > 0 && navigator.mediaDevices) {
    // A device that takes a while to open (a headset, a busy OS): getUserMedia resolves late.
    const md = navigator.mediaDevices;
    const gum = md.getUserMedia.bind(md);
    md.getUserMedia = (c) => gum(c).then((s) => new Promise((r) => setTimeout(() => r(s), ${Number(gumDelayMs) || 0})));
  }
  const Orig = window.RTCPeerConnection;
  if (Orig && !Orig.__wcHooked) {
    window.__pcs = [];
    class Hooked extends Orig {
      constructor(...a) { super(...a); window.__pcs.push(this); }
    }
    Hooked.__wcHooked = true;
    window.RTCPeerConnection = Hooked;
  }
  window.__tl = [];
  const last = {};
  const note = (what, value) => {
    if (last[what] === value) return;
    last[what] = value;
    window.__tl.push({ t: performance.timeOrigin + performance.now(), what, value });
  };
  const q = (s) => document.querySelector(s);
  const watch = () => {
    const conn = q('[data-testid="meeting"] [data-testid="connection-state"]');
    note('connection-state', conn ? conn.dataset.state : null);
    const st = q('[data-testid="e2ee-status"]');
    note('e2ee-status', st ? st.textContent : null);
    note('prejoin', !!q('[data-testid="prejoin"]'));
    note('e2ee-key-ready', !!q('[data-testid="e2ee-key-ready"]'));
    const jb = q('[data-testid="join-button"]');
    note('join-enabled', !!jb && !jb.disabled);
    note('meeting', !!q('[data-testid="meeting"]'));
    note('ended-page', !!q('[data-testid="ended-page"]'));
  };
  new MutationObserver(watch).observe(document, { subtree: true, childList: true, attributes: true, characterData: true });
  if (${autoJoin ? 'true' : 'false'}) {
    // Bench only: click join-button the moment it is enabled (no driver round trip).
    let clicked = false;
    new MutationObserver(() => {
      const b = q('[data-testid="join-button"]');
      if (!clicked && b && !b.disabled) {
        clicked = true;
        b.click();
      }
    }).observe(document, { subtree: true, childList: true, attributes: true });
  }
  document.addEventListener('click', (e) => {
    const b = e.target && e.target.closest && e.target.closest('[data-testid="join-button"]');
    if (b) window.__tl.push({ t: performance.timeOrigin + performance.now(), what: 'join-click', value: true });
  }, true);
  if (${watchFrames ? 'true' : 'false'}) {
    window.__firstFrame = {};
    window.__frames30 = {};
    const poll = setInterval(() => {
      for (const tile of document.querySelectorAll('[data-testid="remote-tile"]')) {
        const v = tile.querySelector('video');
        const id = tile.dataset.identity;
        if (!v) continue;
        const now = performance.timeOrigin + performance.now();
        if (!window.__firstFrame[id] && (v.webkitDecodedFrameCount > 0 || v.videoWidth > 0)) window.__firstFrame[id] = now;
        if (!window.__frames30[id] && v.webkitDecodedFrameCount >= 30) window.__frames30[id] = now;
      }
    }, 5);
    setTimeout(() => clearInterval(poll), 120000);
  }
})();`;

/** Inbound media per remote identity, read from the page: video per remote tile, audio per <audio>. */
export async function mediaStats(page) {
  return page.evaluate(async () => {
    const byTrack = new Map();
    for (const pc of window.__pcs || []) {
      if (pc.connectionState === 'closed' || pc.signalingState === 'closed') continue;
      let rep;
      try {
        rep = await pc.getStats();
      } catch {
        continue;
      }
      rep.forEach((s) => {
        if (s.type === 'inbound-rtp' && s.trackIdentifier) byTrack.set(s.trackIdentifier, s);
      });
    }
    const out = { video: {}, audio: {} };
    for (const tile of document.querySelectorAll('[data-testid="remote-tile"]')) {
      const v = tile.querySelector('video');
      const t = v && v.srcObject && v.srcObject.getVideoTracks ? v.srcObject.getVideoTracks()[0] : null;
      const s = t ? byTrack.get(t.id) : null;
      out.video[tile.dataset.identity] = {
        track: !!t,
        framesDecoded: s ? s.framesDecoded ?? 0 : 0,
        packetsReceived: s ? s.packetsReceived ?? 0 : 0,
        bytesReceived: s ? s.bytesReceived ?? 0 : 0,
        elementDecoded: v ? v.webkitDecodedFrameCount ?? null : null,
        width: v ? v.videoWidth : 0,
        keyMismatch: tile.dataset.keyMismatch,
      };
    }
    // The client plays remote audio with one <audio> per track (data-identity), in the meeting.
    for (const a of document.querySelectorAll('[data-testid="meeting"] audio')) {
      const t = a.srcObject && a.srcObject.getAudioTracks ? a.srcObject.getAudioTracks()[0] : null;
      const s = t ? byTrack.get(t.id) : null;
      const id = a.dataset.identity || '?';
      out.audio[id] = {
        track: !!t,
        packetsReceived: s ? s.packetsReceived ?? 0 : 0,
        bytesReceived: s ? s.bytesReceived ?? 0 : 0,
      };
    }
    return out;
  });
}

export const timeline = (page) => page.evaluate(() => window.__tl || []);
export const firstOf = (tl, what, value) => tl.find((e) => e.what === what && (value === undefined || e.value === value))?.t ?? null;

// ---------------------------------------------------------------------------------------------
// Users: one browser context and page each; they act through data-testid hooks only.

export class User {
  constructor(env, log, { room, id, name, admin = false, hidden = false, key = null, wire = null, watchFrames = false, autoJoin = false, gumDelayMs = 0 }) {
    Object.assign(this, { env, log, room, id, name: name ?? id, admin, hidden, key, wire, watchFrames, autoJoin, gumDelayMs });
  }

  /**
   * Opens the join link; stops at the pre-join screen, or at `until` (a selector), and returns
   * the time the link was opened.
   */
  async open(browser, { until = null } = {}) {
    const token = await this.env.joinToken(this.room, this.id, this.name, this.admin, this.hidden);
    this.token = token; // for calls the page's own API would make (never logged)
    this.context = await browser.newContext({ viewport: { width: 1280, height: 720 } });
    await this.context.grantPermissions(['camera', 'microphone'], { origin: this.env.base });
    await this.context.addInitScript({ content: INIT_SCRIPT({ watchFrames: this.watchFrames, autoJoin: this.autoJoin, gumDelayMs: this.gumDelayMs }) });
    const page = (this.page = await this.context.newPage());
    page.setDefaultTimeout(20_000);
    const { log, id } = this;
    page.on('console', (m) => log.add(id, `console.${m.type()}: ${m.text()}`));
    page.on('pageerror', (e) => log.add(id, `pageerror: ${e.stack || e.message}`));
    page.on('crash', () => log.add(id, 'page crashed'));
    page.on('requestfailed', (r) => log.add(id, `requestfailed: ${r.method()} ${r.url()} ${r.failure()?.errorText ?? ''}`));
    page.on('worker', (w) => w.on('console', (m) => log.add(`${id}/worker`, `console.${m.type()}: ${m.text()}`)));
    page.on('response', (r) => {
      if (r.url().includes('/api/verifyToken')) {
        this.verifyTokenReply = r.json().catch(() => null); // for the tap test: the server-key secret
      }
    });
    if (this.wire) this.recordWire(this.wire);
    this.openedAt = Date.now();
    await page.goto(`${this.env.base}/?access_token=${token}`);
    // With autoJoin the pre-join screen may already be gone when we look.
    await page.waitForSelector(until ?? (this.autoJoin ? `${tid('prejoin')}, ${tid('meeting')}` : tid('prejoin')));
    return this.openedAt;
  }

  /** Records everything the page sends (HTTP incl. workers' requests, WebSocket frames). */
  recordWire(wire) {
    const { id } = this;
    this.context.on('request', (r) => {
      wire.push(
        (async () => {
          const headers = await r.allHeaders().catch(() => r.headers());
          return { who: id, kind: 'http', url: r.url(), method: r.method(), headers, body: r.postDataBuffer() ?? Buffer.alloc(0) };
        })(),
      );
    });
    this.page.on('websocket', (ws) => {
      wire.push(Promise.resolve({ who: id, kind: 'ws-open', url: ws.url(), body: Buffer.alloc(0) }));
      ws.on('framesent', (f) => {
        const body = typeof f.payload === 'string' ? Buffer.from(f.payload, 'utf8') : Buffer.from(f.payload);
        wire.push(Promise.resolve({ who: id, kind: 'ws-sent', url: ws.url(), body }));
      });
    });
  }

  /**
   * Pre-join: the key (self-insert), then Join; waits for connection-state = connected.
   * Like a person, it first waits (up to 10 s) until the preview is live: the camera preview
   * shows frames and the mic-level meter runs. Clicking Join before that makes the client join
   * without the microphone and/or camera it shows as on (see README, "Found"); `hurry` clicks
   * at once, for the scenario that shows it.
   */
  async join({ hurry = false } = {}) {
    const { page } = this;
    if (!hurry) {
      const live = await page
        .waitForFunction(
          () => {
            const v = document.querySelector('[data-testid="prejoin"] video');
            const fill = document.querySelector('[data-testid="mic-level"] > *');
            return !!v && v.videoWidth > 0 && !!fill && /scaleX\(\d\.\d{3}\)/.test(fill.style.transform);
          },
          null,
          { timeout: 10_000, polling: 50 },
        )
        .then(() => true, () => false);
      if (!live) this.log.add('driver', `${this.id}: the pre-join preview was not live after 10 s; joining anyway`);
    }
    if (this.key !== null) {
      await page.fill(tid('e2ee-key-input'), this.key);
      await page.click(tid('e2ee-key-submit'));
      await page.waitForSelector(tid('e2ee-key-ready'));
    }
    await page.click(tid('join-button')); // waits until enabled (name given, keys derived)
    await page.waitForSelector(`${tid('meeting')} ${tid('connection-state')}[data-state="connected"]`, { timeout: 25_000 });
    this.log.add('driver', `${this.id} connected`);
    return this;
  }

  async enter(browser) {
    await this.open(browser);
    return this.join();
  }

  status() {
    return this.page.textContent(tid('e2ee-status'));
  }

  code() {
    return this.page.textContent(tid('verification-code'));
  }

  async openChat() {
    if (!(await this.page.isVisible(tid('chat-input')))) await this.page.click(tid('chat-toggle'));
    await this.page.waitForSelector(tid('chat-input'), { state: 'visible' });
  }

  async say(text) {
    await this.openChat();
    await this.page.fill(tid('chat-input'), text);
    await this.page.click(tid('chat-send'));
  }

  /** Waits until a chat-message from `fromId` containing `text` is shown. */
  async sees(fromId, text, timeout = 10_000) {
    await this.openChat();
    await this.page.waitForFunction(
      ([t, from]) => [...document.querySelectorAll(`[data-testid="chat-message"][data-from="${from}"]`)].some((m) => m.textContent.includes(t)),
      [text, fromId],
      { timeout },
    );
  }

  async close() {
    await this.context?.close().catch(() => {});
  }
}

/**
 * Waits until `u` decodes video of every identity in `others` and receives their audio, then
 * samples twice `gapMs` apart and returns both samples (the caller asserts that they rise).
 */
export async function mediaFlows(u, others, { timeout = 25_000, gapMs = 2000, riseMs = 10_000 } = {}) {
  const ok = (s) => others.every((o) => (s.video[o]?.framesDecoded ?? 0) > 0 && (s.audio[o]?.packetsReceived ?? 0) > 0);
  await waitFor(timeout, `${u.id} to decode video and receive audio of ${others.join(', ')}`, () => mediaStats(u.page), ok);
  const a = await mediaStats(u.page);
  const t0 = Date.now();
  // Sample every 250 ms for gapMs; if a counter has not risen by then, keep sampling up to
  // riseMs (the caller asserts the rise; stalls longer than 1 s are reported).
  const lastRise = new Map(others.map((o) => [o, [t0, a.video[o].framesDecoded]]));
  const stalls = new Map(others.map((o) => [o, 0]));
  let b = a;
  for (;;) {
    await sleep(250);
    b = await mediaStats(u.page);
    const now = Date.now();
    for (const o of others) {
      const m = b.video[o]?.framesDecoded ?? 0;
      if (m > lastRise.get(o)[1]) lastRise.set(o, [now, m]);
      stalls.set(o, Math.max(stalls.get(o), now - lastRise.get(o)[0]));
    }
    const risen = others.every((o) => (b.video[o]?.framesDecoded ?? 0) > a.video[o].framesDecoded && (b.audio[o]?.packetsReceived ?? 0) > a.audio[o].packetsReceived);
    if ((now - t0 >= gapMs && risen) || now - t0 >= riseMs) break;
  }
  for (const [o, ms] of stalls) {
    if (ms > 1000) {
      const line = `${u.id}: ${o}'s video did not advance for ${ms} ms (framesDecoded ${a.video[o].framesDecoded} → ${b.video[o]?.framesDecoded})`;
      u.log.add('driver', line);
      process.stderr.write(`webclient: NOTE ${line}\n`);
    }
  }
  u.log.add('driver', `${u.id} media: ${JSON.stringify({ a, b })}`);
  return { a, b, stalls };
}

// ---------------------------------------------------------------------------------------------
// Searching for a secret in bytes, in every encoding we can think of

/** Needles for `text`: UTF-8, UTF-16LE/BE, hex (both cases), base64 and base64url at each of the
 *  three alignments (the part of the encoding that depends on the text alone), URL encodings. */
export function needles(text) {
  const raw = Buffer.from(text, 'utf8');
  const out = [
    ['utf8', raw],
    ['utf16le', Buffer.from(text, 'utf16le')],
    ['utf16be', Buffer.from(text, 'utf16le').swap16()],
    ['hex', Buffer.from(raw.toString('hex'))],
    ['HEX', Buffer.from(raw.toString('hex').toUpperCase())],
    ['uri', Buffer.from(encodeURIComponent(text))],
    ['form', Buffer.from(encodeURIComponent(text).replace(/%20/g, '+'))],
  ];
  for (const k of [0, 1, 2]) {
    const padded = Buffer.concat([Buffer.alloc(k), raw]);
    for (const enc of ['base64', 'base64url']) {
      let s = padded.toString(enc).replace(/=+$/, '');
      // Drop characters that depend on the padding bytes or on what follows the text.
      s = s.slice(k === 0 ? 0 : 4, s.length - 4);
      if (s.length >= 8) out.push([`${enc}@${k}`, Buffer.from(s)]);
    }
  }
  // De-duplicate (uri == utf8 for plain ASCII without reserved characters, etc.).
  const seen = new Set();
  return out.filter(([, b]) => {
    const k = b.toString('hex');
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}

/** Names of the encodings of `text` found in `buf` (case-sensitive byte search). */
export function findIn(buf, ns) {
  return ns.filter(([, n]) => buf.indexOf(n) !== -1).map(([name]) => name);
}

// ---------------------------------------------------------------------------------------------
// The SFU tap (`enclave-tap` with ENCLAVE_TAP_FILE): one JSON object per line,
// {"room","kind":"rtp-audio"|"rtp-video"|"data","from","marker","payload":<hex>}

export function readTap(file) {
  if (!fs.existsSync(file)) return [];
  const text = fs.readFileSync(file, 'utf8');
  const out = [];
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    let r;
    try {
      r = JSON.parse(line);
    } catch {
      continue; // a line being written right now
    }
    r.bytes = Buffer.from(r.payload, 'hex');
    out.push(r);
  }
  return out;
}

/** LiveKit's frame trailer (livekit-client e2ee worker, FrameCryptor.encodeFunction):
 *  frame = clear header ‖ AES-GCM ciphertext (incl. 16-byte tag) ‖ IV (12) ‖ [IV length = 12, key index]. */
export const IV_LENGTH = 12;
export const TRAILER = 2;
/** Whether `b` ends with LiveKit's trailer, with key index `keyIndex` (any slot of the ring when null). */
export const hasTrailer = (b, keyIndex = null) =>
  b.length >= 2 && b[b.length - 2] === IV_LENGTH && (keyIndex === null ? b[b.length - 1] < KEYRING_SIZE : b[b.length - 1] === keyIndex);
/** The web client's LiveKit key ring (web/src/epochs.ts): epoch g uses slot g mod 16. */
export const KEYRING_SIZE = 16;

/**
 * The LiveKit media key of a server key epoch (crates/e2ee, schedule of key epochs), with Node's
 * own HKDF: an implementation independent of the web client's.
 */
export function epochMediaKey(secret, sid, generation) {
  const stretched = Buffer.from(hkdfSync('sha256', Buffer.from(secret), Buffer.from(`enclave-e2ee-v1|${sid}`), Buffer.from(`enclave epoch ${generation}`), 32));
  return Buffer.from(hkdfSync('sha256', stretched, Buffer.from(sid), Buffer.from('enclave media v1'), 32));
}

/** livekit-client's frame key from raw key material: HKDF-SHA-256(salt "LKFrameEncryptionKey", info 128 zero bytes), AES-128. */
export function frameKey(material) {
  return Buffer.from(hkdfSync('sha256', material, Buffer.from('LKFrameEncryptionKey'), Buffer.alloc(128), 16));
}

/**
 * Whether an Opus RTP payload (one LiveKit-encrypted frame: TOC byte in clear ‖ ciphertext ‖ tag
 * ‖ IV ‖ trailer) decrypts with `key`; the TOC byte is the associated data.
 */
export function decryptsAudio(b, key) {
  if (!hasTrailer(b) || b.length < 1 + 16 + IV_LENGTH + TRAILER) return false;
  const ivAt = b.length - TRAILER - IV_LENGTH;
  const d = createDecipheriv('aes-128-gcm', key, b.subarray(ivAt, ivAt + IV_LENGTH));
  d.setAAD(b.subarray(0, 1));
  d.setAuthTag(b.subarray(ivAt - 16, ivAt));
  try {
    d.update(b.subarray(1, ivAt - 16));
    d.final();
    return true;
  } catch {
    return false;
  }
}

/** The VP8 RTP payload descriptor (RFC 7741 §4.2): where the VP8 data starts, and whether this
 *  packet starts a frame (S=1, PID=0). */
export function vp8Descriptor(p) {
  let i = 0;
  const b0 = p[i++];
  const x = b0 & 0x80;
  const start = !!(b0 & 0x10) && (b0 & 0x07) === 0;
  if (x) {
    const b1 = p[i++];
    if (b1 & 0x80) i += p[i] & 0x80 ? 2 : 1; // PictureID, 7 or 15 bits
    if (b1 & 0x40) i += 1; // TL0PICIDX
    if (b1 & 0x30) i += 1; // TID / KEYIDX
  }
  return { offset: i, start };
}

export function entropy(buf) {
  if (buf.length === 0) return 0;
  const h = new Array(256).fill(0);
  for (const b of buf) h[b]++;
  let e = 0;
  for (const c of h) {
    if (c) {
      const p = c / buf.length;
      e -= p * Math.log2(p);
    }
  }
  return e;
}

/**
 * Media of one room in the tap: per sender, the share of audio packets (after the first 50, i.e.
 * the first second of 20 ms Opus frames) and of video packets with the marker bit that end with
 * LiveKit's trailer, and the bytes between the clear codec header and the IV (the ciphertext if
 * the frame is encrypted): audio = payload[1 .. len-14] (Opus TOC byte in clear); video = the VP8
 * data after the descriptor, minus the 10 (key frame) / 3 (delta frame) clear bytes in the
 * packet that starts a frame, minus IV + trailer in the packet that ends it (marker).
 */
export function analyseMedia(records) {
  const audio = { total: 0, checked: 0, withTrailer: 0, firstSecond: 0, firstSecondWithTrailer: 0, empty: 0, failures: [] };
  const video = { total: 0, markers: 0, markersWithTrailer: 0, keyFrames: 0, keyFramesWithStartCode: 0, empty: 0, failures: [] };
  const perSender = new Map();
  const audioCipher = [];
  const videoCipher = [];
  for (const r of records) {
    const b = r.bytes;
    if (r.kind === 'rtp-audio') {
      audio.total++;
      if (b.length === 0) {
        audio.empty++;
        continue;
      }
      const n = (perSender.get(r.from) ?? 0) + 1;
      perSender.set(r.from, n);
      const t = hasTrailer(b);
      if (n <= 50) {
        audio.firstSecond++;
        if (t) audio.firstSecondWithTrailer++;
      } else {
        audio.checked++;
        if (t) audio.withTrailer++;
        else if (audio.failures.length < 5) audio.failures.push(`${r.from}#${n}: …${b.subarray(-16).toString('hex')} (${b.length} B)`);
      }
      if (b.length > 1 + IV_LENGTH + TRAILER) audioCipher.push(b.subarray(1, b.length - IV_LENGTH - TRAILER));
    } else if (r.kind === 'rtp-video') {
      video.total++;
      if (b.length === 0) {
        video.empty++;
        continue;
      }
      const d = vp8Descriptor(b);
      let from = d.offset;
      if (d.start) {
        const key = (b[d.offset] & 0x01) === 0; // VP8 frame tag: P bit 0 = key frame
        if (key) {
          video.keyFrames++;
          if (b[d.offset + 3] === 0x9d && b[d.offset + 4] === 0x01 && b[d.offset + 5] === 0x2a) video.keyFramesWithStartCode++;
        }
        from += key ? 10 : 3;
      }
      let to = b.length;
      if (r.marker) {
        video.markers++;
        if (hasTrailer(b)) video.markersWithTrailer++;
        else if (video.failures.length < 5) video.failures.push(`${r.from}: …${b.subarray(-16).toString('hex')} (${b.length} B)`);
        to -= IV_LENGTH + TRAILER;
      }
      if (to > from) videoCipher.push(b.subarray(from, to));
    }
  }
  const a = Buffer.concat(audioCipher);
  const v = Buffer.concat(videoCipher);
  return {
    audio: { ...audio, share: audio.checked ? audio.withTrailer / audio.checked : 0, cipherBytes: a.length, entropy: entropy(a), chi2: chiSquare(a) },
    video: { ...video, share: video.markers ? video.markersWithTrailer / video.markers : 0, cipherBytes: v.length, entropy: entropy(v), chi2: chiSquare(v) },
    all: { cipherBytes: a.length + v.length, entropy: entropy(Buffer.concat([a, v])), chi2: chiSquare(Buffer.concat([a, v])) },
  };
}

// ---------------------------------------------------------------------------------------------
// Page storage: localStorage, sessionStorage, every IndexedDB database (all records, binary values
// as hex and as latin1 text), cookies and Cache Storage keys, as one string to search.

export async function pageStorage(u) {
  const inPage = await u.page.evaluate(async () => {
    const ser = (v, depth = 0) => {
      if (depth > 12) return '…';
      if (v === null || v === undefined) return String(v);
      if (v instanceof ArrayBuffer || ArrayBuffer.isView(v)) {
        const b = new Uint8Array(v instanceof ArrayBuffer ? v : v.buffer.slice(v.byteOffset, v.byteOffset + v.byteLength));
        let hex = '';
        let latin = '';
        for (const x of b) {
          hex += x.toString(16).padStart(2, '0');
          latin += String.fromCharCode(x);
        }
        return `bytes(${hex})latin1(${latin})`;
      }
      if (v instanceof Blob) return `blob(${v.size})`;
      if (v instanceof Date) return v.toISOString();
      if (v instanceof CryptoKey) return `CryptoKey(${v.type},${v.extractable},${JSON.stringify(v.algorithm)})`;
      if (Array.isArray(v)) return `[${v.map((x) => ser(x, depth + 1)).join(',')}]`;
      if (v instanceof Map) return `Map{${[...v].map(([k, x]) => `${ser(k, depth + 1)}:${ser(x, depth + 1)}`).join(',')}}`;
      if (typeof v === 'object') return `{${Object.keys(v).map((k) => `${JSON.stringify(k)}:${ser(v[k], depth + 1)}`).join(',')}}`;
      return JSON.stringify(v);
    };
    const ls = {};
    for (let i = 0; i < localStorage.length; i++) ls[localStorage.key(i)] = localStorage.getItem(localStorage.key(i));
    const ss = {};
    for (let i = 0; i < sessionStorage.length; i++) ss[sessionStorage.key(i)] = sessionStorage.getItem(sessionStorage.key(i));
    const idb = {};
    const dbs = indexedDB.databases ? await indexedDB.databases() : [];
    for (const { name } of dbs) {
      const db = await new Promise((res, rej) => {
        const r = indexedDB.open(name);
        r.onsuccess = () => res(r.result);
        r.onerror = () => rej(r.error);
      });
      const stores = {};
      for (const s of db.objectStoreNames) {
        stores[s] = await new Promise((res) => {
          const tx = db.transaction(s, 'readonly');
          const all = tx.objectStore(s).getAll();
          const keys = tx.objectStore(s).getAllKeys();
          tx.oncomplete = () => res(ser({ keys: keys.result, values: all.result }));
          tx.onerror = () => res(`error: ${tx.error}`);
        });
      }
      db.close();
      idb[name] = stores;
    }
    const cacheKeys = [];
    if (self.caches) {
      for (const c of await caches.keys()) {
        const cache = await caches.open(c);
        for (const req of await cache.keys()) cacheKeys.push(`${c}:${req.url}`);
      }
    }
    return { localStorage: ls, sessionStorage: ss, indexedDB: idb, caches: cacheKeys };
  });
  const cookies = await u.context.cookies();
  return { ...inPage, cookies };
}

// ---------------------------------------------------------------------------------------------
// CPU time of a process tree, from /proc (utime + stime, in clock ticks; USER_HZ = 100 on Linux)

export const CLK_TCK = 100;

function procStat(pid) {
  try {
    const s = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const rest = s.slice(s.lastIndexOf(')') + 2).split(' ');
    // rest[0] = state (field 3); ppid = field 4; utime = 14; stime = 15
    return { ppid: Number(rest[1]), utime: Number(rest[11]), stime: Number(rest[12]), comm: s.slice(s.indexOf('(') + 1, s.lastIndexOf(')')) };
  } catch {
    return null;
  }
}

/** Map pid → CPU ticks (utime + stime) of `root` and all its descendants, now. */
export function treeCpu(root) {
  const all = new Map();
  for (const e of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    const st = procStat(Number(e));
    if (st) all.set(Number(e), st);
  }
  const kids = new Map();
  for (const [pid, st] of all) {
    if (!kids.has(st.ppid)) kids.set(st.ppid, []);
    kids.get(st.ppid).push(pid);
  }
  const out = new Map();
  const stack = [root];
  while (stack.length) {
    const p = stack.pop();
    const st = all.get(p);
    if (!st) continue;
    out.set(p, { ticks: st.utime + st.stime, comm: st.comm, kind: chromeKind(p) });
    for (const k of kids.get(p) ?? []) stack.push(k);
  }
  return out;
}

/** Chromium's process kind from its command line: browser, renderer, gpu-process, utility:<sub-type>, zygote… */
function chromeKind(pid) {
  try {
    const args = fs.readFileSync(`/proc/${pid}/cmdline`, 'latin1').split(/[\0 ]/); // Chromium rewrites its title: spaces, not NULs
    const type = args.find((a) => a.startsWith('--type='))?.slice(7);
    if (!type) return 'browser';
    const sub = args.find((a) => a.startsWith('--utility-sub-type='))?.slice(19);
    return sub ? `utility:${sub.split('.').slice(-2).join('.')}` : type;
  } catch {
    return '?';
  }
}

/** CPU seconds per process kind between two `treeCpu` snapshots. */
export function cpuByKind(a, b) {
  const out = {};
  for (const [pid, x] of b) out[x.kind] = (out[x.kind] ?? 0) + (x.ticks - (a.get(pid)?.ticks ?? 0)) / CLK_TCK;
  return out;
}

/** CPU seconds used by the tree between two `treeCpu` snapshots (processes born in between count from 0). */
export function cpuBetween(a, b) {
  let ticks = 0;
  for (const [pid, x] of b) ticks += x.ticks - (a.get(pid)?.ticks ?? 0);
  return ticks / CLK_TCK;
}

/** Busy CPU seconds of the whole machine from /proc/stat (user+nice+system+irq+softirq+steal). */
export function machineBusy() {
  const l = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  const [user, nice, system, , , irq, softirq, steal] = l;
  return (user + nice + system + irq + softirq + steal) / CLK_TCK;
}

/** Pearson's chi-square statistic of the byte histogram against uniform (255 degrees of freedom:
 *  mean 255, standard deviation about 22.6 for random bytes). */
export function chiSquare(buf) {
  if (buf.length === 0) return NaN;
  const h = new Array(256).fill(0);
  for (const b of buf) h[b]++;
  const e = buf.length / 256;
  return h.reduce((s, c) => s + ((c - e) * (c - e)) / e, 0);
}
