// Screenshots of the client's screens in headless Chromium, for looking at them.
//   node scripts/screenshots.mjs [outdir]
// Serves dist/ with scripts/serve.mjs (no API: /api/* is 404), and mocks /api/verifyToken (and
// /api/tls) per scenario with Playwright's routing. Uses playwright-core from the test workspace tests/ (no browser
// download: Debian's /usr/bin/chromium).
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { startServer } from './serve.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(path.resolve(here, '../../tests/package.json'));
const { chromium } = require('playwright-core');

const out = path.resolve(process.argv[2] ?? path.join(here, '..', 'screenshots'));
fs.mkdirSync(out, { recursive: true });

const SID = '8d5e3f2a-1b2c-4d3e-9f40-5a6b7c8d9e0f';
const verify = (mode, extra = {}) => ({
  status: true,
  msg: 'token is valid',
  room: {
    room_id: 'weekly',
    title: 'Weekly sync',
    sid: SID,
    welcome_message: 'Welcome! Please mute when you are not speaking.',
    logout_url: '',
    features: {
      allow_webcams: true,
      allow_screen_share: true,
      mute_on_start: false,
      admin_only_webcams: false,
      chat_features: { is_allow: true },
      recording_features: { is_allow: true, is_allow_cloud: true, is_allow_local: true },
      external_broadcasting_features: { is_allow: true, is_allow_rtmp: true },
      end_to_end_encryption_features: { is_enabled: mode !== 'off', enabled_self_insert_encryption_key: mode === 'self_insert' },
    },
  },
  user: { user_id: 'ann', name: 'Ann Example', is_admin: true, is_hidden: false },
  media: { url: 'ws://127.0.0.1:9', token: 'lk-token' },
  e2ee: { enabled: mode !== 'off', mode, ...(mode === 'server_key' ? { secret: 'A'.repeat(32) } : {}), included_chat_messages: true },
  expires_at: Math.floor(Date.now() / 1000) + 600,
  ...extra,
});

const scenarios = [
  { name: '01-no-api-404', token: 'x.y.z', api: null },
  { name: '02-invalid-token', token: 'bogus', api: { status: 401, body: { status: false, msg: 'notifications.invalid-token' } } },
  { name: '03-token-expired', token: 'old', api: { status: 401, body: { status: false, msg: 'notifications.token-expired' } } },
  { name: '04-no-token', token: null, api: null },
  { name: '05-prejoin-server-key', token: 't', api: { status: 200, body: verify('server_key') }, wait: '[data-testid="e2ee-key-ready"]' },
  { name: '06-prejoin-self-insert', token: 't', api: { status: 200, body: verify('self_insert') } },
  {
    name: '07-prejoin-self-insert-key-entered',
    token: 't',
    api: { status: 200, body: verify('self_insert') },
    act: async (page) => {
      await page.fill('[data-testid="e2ee-key-input"]', 'correct horse battery staple');
      await page.click('[data-testid="e2ee-key-submit"]');
      await page.waitForSelector('[data-testid="e2ee-key-ready"]');
    },
  },
  { name: '08-prejoin-plain', token: 't', api: { status: 200, body: verify('off') } },
  { name: '09-prejoin-self-insert-narrow', token: 't', api: { status: 200, body: verify('self_insert') }, viewport: { width: 390, height: 844 } },
  {
    name: '11-unsupported-browser',
    token: 't',
    api: { status: 200, body: verify('server_key') },
    // A browser without encoded transforms: livekit-client's isE2EESupported() is false.
    init: 'delete RTCRtpSender.prototype.createEncodedStreams; delete window.RTCRtpScriptTransform;',
  },
  {
    name: '12-token-renewal',
    token: 'first-token',
    api: { status: 200, body: verify('off', { expires_at: Math.floor(Date.now() / 1000) + 3 }) },
    renewIn: 3,
    act: async (page) => page.waitForTimeout(4500),
  },
  { name: '13-prejoin-plain-recording-live', token: 't', api: { status: 200, body: verify('off', { is_recording: true, is_active_rtmp: true }) }, wait: '[data-testid="prejoin-recording-note"]' },
  // Plain http:// from another machine, simulated (this server is 127.0.0.1, a secure context).
  {
    name: '14-insecure-context-https-local-ca',
    token: 't',
    api: null,
    tls: { https_port: 8443, local_ca: true },
    init: "Object.defineProperty(window, 'isSecureContext', { value: false });",
    wait: '[data-testid="ca-download-link"]',
  },
  { name: '15-insecure-context-no-https', token: 't', api: null, init: "Object.defineProperty(window, 'isSecureContext', { value: false });" },
  { name: '16-no-token-local-ca', token: null, api: null, tls: { https_port: 8443, local_ca: true }, wait: '[data-testid="ca-download-link"]' },
  { name: '10-room-not-active-narrow', token: 't', api: { status: 401, body: { status: false, msg: 'notifications.room-not-active' } }, viewport: { width: 390, height: 844 } },
];

const server = await startServer();
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM_BIN ?? '/usr/bin/chromium',
  args: ['--headless=new', '--no-sandbox', '--disable-gpu', '--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream'],
});
const results = [];
try {
  for (const s of scenarios) {
    const context = await browser.newContext({ viewport: s.viewport ?? { width: 1280, height: 800 }, deviceScaleFactor: 1 });
    await context.grantPermissions(['camera', 'microphone'], { origin: server.origin });
    const page = await context.newPage();
    const errors = [];
    page.on('pageerror', (e) => errors.push(e.message));
    page.on('console', (m) => {
      if (m.type() === 'error') errors.push(m.text());
    });
    const requests = [];
    page.on('request', (r) => {
      if (r.url().includes('/api/')) requests.push({ url: r.url(), auth: r.headers().authorization ?? null, body: r.postData() });
    });
    if (s.init) await page.addInitScript({ content: s.init });
    if (s.api) {
      await page.route('**/api/verifyToken', (route) =>
        route.fulfill({ status: s.api.status, contentType: 'application/json', body: JSON.stringify(s.api.body) }),
      );
      let renewals = 0;
      await page.route('**/api/renewToken', (route) => {
        renewals += 1;
        const body = { status: true, msg: 'token renewed', token: `renewed-${renewals}`, expires_at: Math.floor(Date.now() / 1000) + (s.renewIn ?? 600) };
        return route.fulfill({ status: 200, contentType: 'application/json', body: JSON.stringify(body) });
      });
    }
    if (s.tls) {
      await page.route('**/api/tls', (route) => route.fulfill({ status: 200, contentType: 'application/json', body: JSON.stringify(s.tls) }));
    }
    await page.goto(`${server.origin}/${s.token ? `?access_token=${encodeURIComponent(s.token)}` : ''}`);
    await page.waitForSelector('[data-testid="error-page"], [data-testid="prejoin"], [data-testid="unsupported-browser"], [data-testid="insecure-context-page"]', { timeout: 10_000 });
    if (s.wait) await page.waitForSelector(s.wait, { timeout: 10_000 });
    if (s.act) await s.act(page);
    await page.waitForTimeout(1200); // let the preview and the meter start
    const file = path.join(out, `${s.name}.png`);
    await page.screenshot({ path: file });
    const info = await page.evaluate(() => ({
      url: location.href,
      title: document.querySelector('[data-testid="page-title"]')?.textContent ?? null,
      status: document.querySelector('[data-testid="e2ee-status"]')?.textContent ?? null,
      code: document.querySelector('[data-testid="verification-code"]')?.textContent ?? null,
      storage: { local: localStorage.length, session: sessionStorage.length },
    }));
    // Nothing secret may leave the page or stay in it: not the passphrase, not the server key.
    const secrets = ['correct horse battery staple', 'A'.repeat(32)];
    const idb = await page.evaluate(
      () =>
        new Promise((resolve) => {
          const r = indexedDB.open('enclave');
          r.onsuccess = () => {
            const names = [...r.result.objectStoreNames];
            if (names.length === 0) return resolve('');
            const tx = r.result.transaction(names, 'readonly');
            const all = names.map((n) => tx.objectStore(n).getAll());
            tx.oncomplete = () => resolve(JSON.stringify(all.map((q) => q.result)));
          };
          r.onerror = () => resolve('');
        }),
    );
    const html = await page.content();
    for (const secret of secrets) {
      if (requests.some((r) => r.url.includes(secret) || (r.body ?? '').includes(secret))) throw new Error(`${s.name}: a request carried a secret`);
      if (idb.includes(secret)) throw new Error(`${s.name}: IndexedDB holds a secret`);
      if (html.includes(secret)) throw new Error(`${s.name}: the DOM holds a secret`);
    }
    if (info.storage.local || info.storage.session) throw new Error(`${s.name}: web storage was written`);
    results.push({ name: s.name, file, ...info, errors, requests });
    await context.close();
  }
} finally {
  await browser.close();
  await server.close();
}
for (const r of results) console.log(JSON.stringify(r));
