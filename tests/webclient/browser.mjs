// Headless Chromium for the web-client suite (launched as a Playwright browser server, so that
// its pid is ours to stop and measure), what every page runs before its own scripts, and the
// users: one browser context and page each, acting only through the client's data-testid hooks.
// Also used by tests/network.

import { createRequire } from 'node:module';
import { setTimeout as sleep } from 'node:timers/promises';

import { CHROMIUM, CHROMIUM_ARGS, alive, packageDir, requireChromium, waitFor, within } from '@enclave-tests/lib';

packageDir('playwright-core'); // says to run `npm ci --prefix tests` if it is missing
const require = createRequire(import.meta.url);
export const { chromium } = require('playwright-core');

// The flags of every suite, plus autoplay without a gesture so that remote audio plays without
// anyone clicking "Turn on sound" (it does not change what is received).
export const WEB_CHROMIUM_ARGS = [...CHROMIUM_ARGS, '--autoplay-policy=no-user-gesture-required'];

export const tid = (id) => `[data-testid="${id}"]`;

// ---------------------------------------------------------------------------------------------
// Chromium, launched as a Playwright browser server so that its pid is ours to stop and measure.

export async function launchBrowser() {
  requireChromium();
  const server = await chromium.launchServer({ executablePath: CHROMIUM, headless: true, args: WEB_CHROMIUM_ARGS, timeout: 30_000 });
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
  await within(10_000, server.close(), 'closing Chromium').catch(() => {});
  if (alive(pid)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
}

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
  /** `extraInit`: another init script for this user's pages (a test file's own observation). */
  constructor(env, log, { room, id, name, admin = false, hidden = false, key = null, wire = null, watchFrames = false, autoJoin = false, gumDelayMs = 0, extraInit = null }) {
    Object.assign(this, { env, log, room, id, name: name ?? id, admin, hidden, key, wire, watchFrames, autoJoin, gumDelayMs, extraInit });
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
    if (this.extraInit) await this.context.addInitScript({ content: this.extraInit });
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
