// A local end-to-end check of the built client against a real `enclave` binary: rooms are
// created through the signed /auth API, join links come from /auth/room/getJoinToken, and
// headless Chromium users join through the UI (data-testid hooks only), as a person would.
//   node scripts/e2e-local.mjs [outdir]        (ENCLAVE_BIN defaults to ../target/debug/enclave)
// dist/ is served by scripts/serve.mjs on its own port, /api/* is forwarded to enclave, and the
// media URL (livekit_info.host) points at enclave directly.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHmac, randomBytes } from 'node:crypto';
import dgram from 'node:dgram';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { startServer } from './serve.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(path.resolve(here, '../../tests/package.json'));
const { chromium } = require('playwright-core');
const BIN = process.env.ENCLAVE_BIN ?? path.resolve(here, '../../target/debug/enclave');
const out = path.resolve(process.argv[2] ?? path.join(here, '..', 'screenshots'));
fs.mkdirSync(out, { recursive: true });

const freePort = (udp = false) =>
  new Promise((resolve, reject) => {
    if (udp) {
      const s = dgram.createSocket('udp4');
      s.bind(0, '127.0.0.1', () => {
        const { port } = s.address();
        s.close(() => resolve(port));
      });
      s.on('error', reject);
    } else {
      const s = net.createServer();
      s.listen(0, '127.0.0.1', () => {
        const { port } = s.address();
        s.close(() => resolve(port));
      });
      s.on('error', reject);
    }
  });

const API_KEY = 'plugnmeet';
const SECRET = randomBytes(24).toString('hex');
const port = await freePort();
const udpPort = await freePort(true);
const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'enclave-web-e2e-'));
const base = `http://127.0.0.1:${port}`;
let serverLog = '';
const child = spawn(BIN, ['serve'], {
  env: {
    ...process.env,
    ENCLAVE_CLIENT__BIND: '127.0.0.1',
    ENCLAVE_CLIENT__PORT: String(port),
    ENCLAVE_CLIENT__API_KEY: API_KEY,
    ENCLAVE_CLIENT__SECRET: SECRET,
    ENCLAVE_LIVEKIT_INFO__HOST: `ws://127.0.0.1:${port}`,
    ENCLAVE_DATABASE__DATA_DIR: dataDir,
    ENCLAVE_RTC__UDP_PORT: String(udpPort),
    ENCLAVE_RTC__NODE_IP: '127.0.0.1',
  },
  stdio: ['ignore', 'pipe', 'pipe'],
});
child.stdout.on('data', (c) => (serverLog += c));
child.stderr.on('data', (c) => (serverLog += c));

async function auth(p, body) {
  const text = JSON.stringify(body);
  const res = await fetch(`${base}/auth${p}`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', 'API-KEY': API_KEY, 'HASH-SIGNATURE': createHmac('sha256', SECRET).update(text).digest('hex') },
    body: text,
  });
  const json = await res.json();
  assert.equal(json.status, true, `${p}: ${JSON.stringify(json)}`);
  return json;
}

async function createRoom(roomId, e2ee) {
  await auth('/room/create', {
    room_id: roomId,
    metadata: {
      room_title: `Room ${roomId}`,
      welcome_message: 'Welcome to the test room.',
      room_features: {
        allow_webcams: true,
        allow_screen_share: true,
        chat_features: { is_allow: true },
        recording_features: { is_allow: true, is_allow_cloud: true },
        end_to_end_encryption_features: { is_enabled: e2ee !== 'off', enabled_self_insert_encryption_key: e2ee === 'self_insert' },
      },
    },
  });
}

const joinToken = async (roomId, userId, name, isAdmin = false) =>
  (await auth('/room/getJoinToken', { room_id: roomId, user_info: { user_id: userId, name, is_admin: isAdmin, is_hidden: false } })).token;

const timings = [];
function step(name) {
  const t0 = Date.now();
  console.log(`• ${name}`);
  return () => timings.push(`${name}: ${Date.now() - t0} ms`);
}

let browser;
let web;
const pages = [];
const wire = [];
try {
  for (let i = 0; ; i++) {
    try {
      const r = await fetch(`${base}/healthCheck`);
      if (r.ok) break;
    } catch {}
    if (i > 100) throw new Error(`enclave did not start:\n${serverLog}`);
    await sleep(100);
  }
  web = await startServer({ api: base });
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM_BIN ?? '/usr/bin/chromium',
    args: ['--headless=new', '--no-sandbox', '--disable-gpu', '--disable-quic', '--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream', '--autoplay-policy=no-user-gesture-required', '--auto-select-desktop-capture-source=Entire screen'],
  });

  async function user(roomId, userId, name, { admin = false, key = null, viewport } = {}) {
    const token = await joinToken(roomId, userId, name, admin);
    const context = await browser.newContext({ viewport: viewport ?? { width: 1280, height: 760 } });
    await context.grantPermissions(['camera', 'microphone'], { origin: web.origin });
    const page = await context.newPage();
    page.on('pageerror', (e) => console.log(`  [${userId}] pageerror: ${e.message}`));
    page.on('console', (m) => {
      if (m.type() === 'error') console.log(`  [${userId}] console.error: ${m.text().slice(0, 300)}`);
    });
    pages.push(page);
    // Everything this page sends, to prove that no passphrase leaves it.
    page.on('request', (r) => wire.push(`${r.url()} ${r.postData() ?? ''}`));
    page.on('websocket', (ws) => ws.on('framesent', (f) => wire.push(typeof f.payload === 'string' ? f.payload : Buffer.from(f.payload).toString('latin1'))));
    await page.goto(`${web.origin}/?access_token=${token}`);
    await page.waitForSelector('[data-testid="prejoin"]');
    assert.ok(!page.url().includes('access_token'), 'the token is stripped from the address bar');
    if (key !== null) {
      await page.fill('[data-testid="e2ee-key-input"]', key);
      await page.click('[data-testid="e2ee-key-submit"]');
    }
    await page.click('[data-testid="join-button"]');
    await page.waitForSelector('[data-testid="meeting"] [data-testid="connection-state"][data-state="connected"]', { timeout: 20_000 });
    return { page, userId, context };
  }

  const status = (u) => u.page.textContent('[data-testid="e2ee-status"]');
  const code = (u) => u.page.textContent('[data-testid="verification-code"]');
  async function seesVideoOf(u, identity, timeout = 20_000) {
    await u.page.waitForFunction(
      (id) => {
        const v = document.querySelector(`[data-testid="remote-tile"][data-identity="${id}"] video`);
        return !!v && v.videoWidth > 0 && v.currentTime > 0.3;
      },
      identity,
      { timeout },
    );
  }
  async function chat(from, to, text) {
    if (!(await from.page.isVisible('[data-testid="chat-input"]'))) await from.page.click('[data-testid="chat-toggle"]');
    await from.page.fill('[data-testid="chat-input"]', text);
    await from.page.click('[data-testid="chat-send"]');
    if (!(await to.page.isVisible('[data-testid="chat-list"]'))) await to.page.click('[data-testid="chat-toggle"]');
    await to.page.waitForFunction(
      ([t, id]) => [...document.querySelectorAll(`[data-testid="chat-message"][data-from="${id}"]`)].some((m) => m.textContent.includes(t)),
      [text, from.userId],
      { timeout: 10_000 },
    );
  }
  const shot = (u, name) => u.page.screenshot({ path: path.join(out, `${name}.png`) });

  // ---- plain room
  let done = step('plain room: two users, media both ways, chat, broadcast');
  await createRoom('plain', 'off');
  const pa = await user('plain', 'ann', 'Ann', { admin: true });
  const pb = await user('plain', 'bob', 'Bob');
  assert.equal(await status(pa), 'not-encrypted');
  await seesVideoOf(pa, 'bob');
  await seesVideoOf(pb, 'ann');
  await chat(pa, pb, 'hello bob (plain)');
  await chat(pb, pa, 'hi ann (plain)');
  await auth('/room/broadcastToRoom', { room_id: 'plain', chat_msg: { message: 'The server says hello' } });
  await pa.page.waitForSelector('[data-testid="chat-message"][data-system="true"] >> text=The server says hello', { timeout: 10_000 });
  await auth('/room/broadcastToRoom', { room_id: 'plain', notification_msg: { text: 'Heads up: 5 minutes left', type: 'NATS_SYSTEM_NOTIFICATION_WARNING' } });
  await pb.page.waitForSelector('[data-testid="notification"] >> text=Heads up: 5 minutes left', { timeout: 10_000 });
  assert.equal(await pa.page.locator('[data-testid="record-button"]').count(), 1, 'plain room: record control for admins');
  await sleep(500);
  await shot(pa, '20-meeting-plain-ann');
  await pb.page.click('[data-testid="participants-toggle"]');
  await shot(pb, '21-meeting-plain-bob-people');
  done();

  done = step('plain room: screen share reaches the other side');
  await pb.page.click('[data-testid="screen-share-toggle"]');
  await pa.page.waitForSelector('[data-testid="remote-screen-tile"][data-identity="bob"]', { timeout: 15_000 });
  await pa.page.waitForFunction(() => {
    const v = document.querySelector('[data-testid="remote-screen-tile"] video');
    return !!v && v.videoWidth > 0;
  }, null, { timeout: 15_000 });
  await sleep(800);
  await shot(pa, '27-screen-share-ann');
  await pb.page.click('[data-testid="screen-share-toggle"]');
  await pa.page.waitForSelector('[data-testid="remote-screen-tile"]', { state: 'detached', timeout: 15_000 });
  done();

  done = step('plain room: admin mutes bob, then removes him');
  await pa.page.click('[data-testid="participants-toggle"]');
  await pa.page.click('[data-testid="participant-item"][data-identity="bob"] [data-testid="admin-mute"]');
  await pb.page.waitForSelector('[data-testid="mic-toggle"][aria-pressed="false"]', { timeout: 10_000 });
  await pa.page.waitForSelector('[data-testid="remote-tile"][data-identity="bob"][data-muted="true"]', { timeout: 10_000 });
  await pa.page.click('[data-testid="participant-item"][data-identity="bob"] [data-testid="admin-remove"]');
  await pa.page.click('[data-testid="confirm-ok"]');
  await pb.page.waitForSelector('[data-testid="ended-page"]', { timeout: 10_000 });
  assert.equal(await pb.page.textContent('[data-testid="page-title"]'), 'You were removed from the meeting');
  await pa.page.waitForSelector('[data-testid="remote-tile"][data-identity="bob"]', { state: 'detached', timeout: 10_000 });
  done();

  done = step('plain room: admin ends the meeting; a rejoined bob sees the end page, his session store is cleared');
  const pb2 = await user('plain', 'bob', 'Bob');
  await pa.page.click('[data-testid="end-meeting-button"]');
  await pa.page.click('[data-testid="confirm-ok"]');
  await pb2.page.waitForSelector('[data-testid="ended-page"]', { timeout: 10_000 });
  assert.equal(await pb2.page.textContent('[data-testid="page-title"]'), 'The meeting has ended');
  await pa.page.waitForSelector('[data-testid="ended-page"]', { timeout: 10_000 });
  await sleep(300);
  const left = await pb2.page.evaluate(
    () =>
      new Promise((resolve) => {
        const r = indexedDB.open('enclave');
        r.onsuccess = () => {
          const tx = r.result.transaction(['sessions', 'chat'], 'readonly');
          const a = tx.objectStore('sessions').count();
          const b = tx.objectStore('chat').count();
          tx.oncomplete = () => resolve({ sessions: a.result, chat: b.result });
        };
      }),
  );
  assert.deepEqual(left, { sessions: 0, chat: 0 }, 'the ended session is deleted from IndexedDB');
  await shot(pb2, '22-ended-bob');
  done();

  // ---- server key
  done = step('server-key E2EE room: same code, encrypted media both ways, sealed chat');
  await createRoom('srv', 'server_key');
  const sa = await user('srv', 'ann', 'Ann', { admin: true });
  const sb = await user('srv', 'bob', 'Bob');
  await seesVideoOf(sa, 'bob');
  await seesVideoOf(sb, 'ann');
  assert.equal(await status(sa), 'encrypted');
  assert.equal(await status(sb), 'encrypted');
  assert.equal(await code(sa), await code(sb));
  assert.match(await code(sa), /^\d{5}-\d{5}$/);
  await chat(sa, sb, 'sealed hello');
  assert.equal(await sa.page.locator('[data-testid="record-button"], [data-testid="rtmp-button"]').count(), 0, 'no recording/RTMP controls in E2EE rooms');
  await sleep(500);
  await shot(sa, '23-meeting-server-key-ann-chat');
  done();

  done = step('server-key room: leave and rejoin; chat history comes back (sealed in IndexedDB)');
  await sb.page.click('[data-testid="leave-button"]');
  await sb.page.waitForSelector('[data-testid="ended-page"] [data-testid="rejoin-button"]');
  await sb.page.click('[data-testid="rejoin-button"]');
  await sb.page.waitForSelector('[data-testid="meeting"] [data-testid="connection-state"][data-state="connected"]', { timeout: 20_000 });
  if (!(await sb.page.isVisible('[data-testid="chat-list"]'))) await sb.page.click('[data-testid="chat-toggle"]');
  await sb.page.waitForSelector('[data-testid="chat-message"] >> text=sealed hello', { timeout: 5000 });
  const stored = await sb.page.evaluate(
    () =>
      new Promise((resolve) => {
        const r = indexedDB.open('enclave');
        r.onsuccess = () => {
          const tx = r.result.transaction('chat', 'readonly');
          const q = tx.objectStore('chat').getAll();
          q.onsuccess = () => resolve(q.result.map((x) => ({ kind: x.kind, bytes: x.envelope ? x.envelope.byteLength : 0, plain: JSON.stringify(x).includes('sealed hello') })));
        };
      }),
  );
  assert.ok(stored.length > 0 && stored.every((s) => s.kind.startsWith('sealed') && !s.plain), `history is sealed: ${JSON.stringify(stored)}`);
  await seesVideoOf(sa, 'bob');
  done();

  // ---- self-inserted key, one wrong
  done = step('self-insert E2EE room: two with the same key, one with another → wrong-key within 3 s');
  await createRoom('self', 'self_insert');
  const xa = await user('self', 'ann', 'Ann', { admin: true, key: 'correct horse' });
  const xb = await user('self', 'bob', 'Bob', { key: 'correct horse' });
  await seesVideoOf(xa, 'bob');
  assert.equal(await status(xa), 'encrypted');
  assert.equal(await code(xa), await code(xb));
  const t0 = Date.now();
  const xc = await user('self', 'carol', 'Carol', { key: 'wrong horse' });
  await xc.page.waitForFunction(() => document.querySelector('[data-testid="e2ee-status"]')?.textContent === 'wrong-key', null, { timeout: 3000 });
  const tWrong = Date.now() - t0;
  await xc.page.waitForSelector('[data-testid="wrong-key-banner"]', { state: 'visible' });
  const bannerC = await xc.page.textContent('[data-testid="wrong-key-text"]');
  assert.equal(bannerC, "Your encryption key doesn't match the one others are using — you can't see or hear them, and they can't see or hear you. Check the key and rejoin.");
  await xa.page.waitForFunction(() => document.querySelector('[data-testid="e2ee-status"]')?.textContent === 'wrong-key', null, { timeout: 3000 });
  assert.notEqual(await code(xc), await code(xa));
  await xc.page.waitForSelector('[data-testid="remote-tile"][data-identity="ann"] [data-testid="tile-key-mismatch"]', { state: 'visible' });
  console.log(`  carol saw wrong-key ${tWrong} ms after her join started (join included)`);
  await sleep(1500);
  await shot(xc, '24-wrong-key-carol');
  await shot(xa, '25-wrong-key-ann');
  done();

  done = step('self-insert room: carol re-enters the right key from the banner → everyone encrypted');
  await xc.page.click('[data-testid="reenter-key-button"]');
  await xc.page.waitForSelector('[data-testid="prejoin"] [data-testid="e2ee-key-input"]');
  assert.equal(await status(xc), 'waiting-for-key');
  await xc.page.fill('[data-testid="e2ee-key-input"]', 'correct horse');
  await xc.page.click('[data-testid="join-button"]');
  await xc.page.waitForSelector('[data-testid="meeting"] [data-testid="connection-state"][data-state="connected"]', { timeout: 20_000 });
  await seesVideoOf(xc, 'ann');
  await xa.page.waitForFunction(() => document.querySelector('[data-testid="e2ee-status"]')?.textContent === 'encrypted', null, { timeout: 5000 });
  assert.equal(await status(xc), 'encrypted');
  assert.equal(await code(xc), await code(xa));
  done();

  done = step('self-insert room: carol leaves → ann still encrypted; no passphrase ever left a page');
  await xc.page.click('[data-testid="leave-button"]');
  await xc.page.waitForSelector('[data-testid="ended-page"]');
  assert.equal(await status(xa), 'encrypted');
  const leaked = wire.filter((w) => w.includes('correct horse') || w.includes('wrong horse'));
  assert.equal(leaked.length, 0, `passphrase on the wire: ${leaked.slice(0, 2).join(' | ').slice(0, 200)}`);
  console.log(`  checked ${wire.length} requests and WebSocket frames for the passphrases`);
  done();

  done = step('narrow screen meeting');
  const xn = await user('self', 'dan', 'Dan', { key: 'correct horse', viewport: { width: 390, height: 844 } });
  await seesVideoOf(xn, 'ann');
  await sleep(1000);
  await shot(xn, '26-meeting-narrow');
  done();

  console.log('\nALL CHECKS PASSED');
  console.log(timings.map((t) => `  ${t}`).join('\n'));
} catch (e) {
  console.log(`\nFAILED: ${e.stack}`);
  for (const [i, p] of pages.entries()) await p.screenshot({ path: path.join(out, `fail-${i}.png`) }).catch(() => {});
  console.log(`--- enclave log (tail) ---\n${serverLog.slice(-4000)}`);
  process.exitCode = 1;
} finally {
  await browser?.close().catch(() => {});
  await web?.close();
  child.kill('SIGTERM');
  fs.rmSync(dataDir, { recursive: true, force: true });
}
