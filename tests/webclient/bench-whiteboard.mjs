// Benchmark of the whiteboard (not a test: it measures and prints).
//
//   node tests/webclient/bench-whiteboard.mjs [--runs 2] [--strokes 20] [--seals 3000]
//
// 1. latency: two browsers in one room, plain and server-key E2EE rooms alternately, `--runs`
//    each. Ann draws `--strokes` rectangles with the mouse (rectangle tool, a drag of 12 steps);
//    each page polls its board every 2 ms (the test hook of whiteboard.test.mjs) and notes when
//    an element id first appears. Latency = when it appears on bob's board − when it appeared on
//    ann's (the pointer went down). Both pages are on this machine, so one clock. It includes
//    the 50 ms batching of the sender, the sealing, the HTTP append, the server's relay on the
//    data channel and the opening and merge on the receiver.
// 2. seal: CPU time of sealing one update with the client's own code (web/src/content.ts, the
//    content key of web/src/e2ee.ts, WebCrypto AES-256-GCM) in Node, for a rectangle's update
//    (one element, ~0.5 KB) and a freehand stroke's (~8 KB), `--seals` each.
//
// ENCLAVE_BIN (default target/debug/enclave), CHROMIUM_BIN (default /usr/bin/chromium).

import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { createRequire } from 'node:module';

import { TestLog, waitFor } from '@enclave-tests/lib';

import { User, launchBrowser, tid } from './browser.mjs';
import { Enclave } from './server.mjs';

const { values: opt } = parseArgs({
  options: {
    runs: { type: 'string', default: '2' },
    strokes: { type: 'string', default: '20' },
    seals: { type: 'string', default: '3000' },
  },
});
const RUNS = Number(opt.runs);
const STROKES = Number(opt.strokes);
const SEALS = Number(opt.seals);
const err = (s) => process.stderr.write(`${s}\n`);
const rand = () => randomBytes(4).toString('hex');
const pct = (xs, p) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.ceil(p * s.length) - 1)] : NaN;
};

// Every 2 ms: the time each element id first shows on this page's board.
const WATCH = `window.__enclaveTestHooks = {}; window.__seen = {};
setInterval(() => {
  const b = window.__enclaveTestHooks.whiteboard?.();
  if (!b) return;
  const t = performance.timeOrigin + performance.now();
  for (const e of b.elements) if (!(e.id in window.__seen)) window.__seen[e.id] = t;
}, 2);`;

async function openBoard(u) {
  await u.page.click(tid('whiteboard-toggle'));
  await u.page.waitForSelector(`${tid('whiteboard')}[data-ready="true"]`, { timeout: 30_000 });
  await u.page.waitForSelector(`${tid('whiteboard-canvas')} canvas.interactive`, { timeout: 10_000 });
}

async function latencyRun(server, browser, mode, log) {
  const room = `wb-bench-${mode}-${rand()}`;
  // Both hosts: the room's default lock would make bob's board view only, and bob only watches.
  await server.createRoom(room, mode, { whiteboard_features: { is_allow: true } });
  const ann = new User(server, log, { room, id: 'ann', name: 'Ann', admin: true, extraInit: WATCH });
  const bob = new User(server, log, { room, id: 'bob', name: 'Bob', admin: true, extraInit: WATCH });
  try {
    await Promise.all([ann.enter(browser), bob.enter(browser)]);
    await Promise.all([ann, bob].map(openBoard));
    const box = await ann.page.locator(`${tid('whiteboard-canvas')} canvas.interactive`).boundingBox();
    for (let i = 0; i < STROKES; i++) {
      const x = box.x + box.width * (0.3 + 0.6 * ((i % 5) / 5));
      const y = box.y + box.height * (0.15 + 0.7 * (Math.floor(i / 5) % 4) / 4);
      await ann.page.keyboard.press('r');
      await ann.page.mouse.move(x, y);
      await ann.page.mouse.down();
      await ann.page.mouse.move(x + 60, y + 40, { steps: 12 });
      await ann.page.mouse.up();
      await ann.page.keyboard.press('Escape');
    }
    const seen = (u) => u.page.evaluate(() => window.__seen);
    const a = await seen(ann);
    const ids = Object.keys(a);
    await waitFor(20_000, `bob sees all ${ids.length} rectangles`, () => seen(bob), (b) => ids.every((id) => id in b), (b) => `${Object.keys(b).length}`, 50);
    const b = await seen(bob);
    return ids.map((id) => b[id] - a[id]);
  } finally {
    await ann.close();
    await bob.close();
  }
}

/** The client's sealer, bundled from web/src for Node. */
async function clientSealer() {
  const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'web');
  const require = createRequire(path.join(root, 'package.json'));
  const esbuild = require('esbuild');
  const out = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'wb-bench-')), 'sealer.mjs');
  await esbuild.build({
    stdin: { contents: "export { keySealer } from './src/content'; export { deriveContentKey } from './src/e2ee';", resolveDir: root, loader: 'ts' },
    bundle: true,
    platform: 'node',
    format: 'esm',
    outfile: out,
    logLevel: 'warning',
  });
  const m = await import(pathToFileURL(out).href);
  fs.rmSync(path.dirname(out), { recursive: true, force: true });
  const sid = '8d5e3f2a-1b2c-4d3e-9f40-5a6b7c8d9e0f';
  return m.keySealer(await m.deriveContentKey('ContentSecretOfTheSession0123456', sid), sid);
}

function updateOf(points) {
  const el = { id: 'Xk3_9aPq', type: points ? 'freedraw' : 'rectangle', x: 312.5, y: 140, width: 140, height: 90, angle: 0, strokeColor: '#1e1e1e', backgroundColor: 'transparent', fillStyle: 'solid', strokeWidth: 2, strokeStyle: 'solid', roughness: 1, opacity: 100, groupIds: [], frameId: null, index: 'a0', roundness: { type: 3 }, seed: 1968410350, version: 12, versionNonce: 1361657674, isDeleted: false, boundElements: null, updated: 1765000000000, link: null, locked: false };
  if (points) el.points = Array.from({ length: points }, (_, i) => [i * 1.5, Math.sin(i / 7) * 40]);
  return new TextEncoder().encode(JSON.stringify({ v: 1, elements: [el] }));
}

async function sealBench() {
  const sealer = await clientSealer();
  const aad = ['content', 'whiteboard', 'page-main', 'ann'];
  const out = {};
  for (const [name, bytes] of [
    ['rectangle', updateOf(0)],
    ['freehand', updateOf(400)],
  ]) {
    for (let i = 0; i < 200; i++) await sealer.sealBytes(aad, bytes); // warm up
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    for (let i = 0; i < SEALS; i++) await sealer.sealBytes(aad, bytes);
    const c = process.cpuUsage(c0);
    out[name] = { bytes: bytes.length, cpuUsPerSeal: (c.user + c.system) / SEALS, wallUsPerSeal: ((performance.now() - t0) * 1000) / SEALS };
  }
  return out;
}

const server = await new Enclave().start();
const chrome = await launchBrowser();
const log = new TestLog(null, 'bench-whiteboard', { maxLine: 2000, head: 60, tail: 300 });
err(`bench-whiteboard: enclave ${server.base}; Chromium ${chrome.version}; ${os.cpus().length} CPUs (${os.cpus()[0]?.model}); load ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}`);
const lat = { off: [], server_key: [] };
try {
  for (let r = 0; r < RUNS; r++) {
    for (const mode of r % 2 ? ['server_key', 'off'] : ['off', 'server_key']) {
      const xs = await latencyRun(server, chrome.browser, mode, log);
      lat[mode].push(...xs);
      err(`run ${r + 1} ${mode}: ${xs.length} strokes, p50 ${pct(xs, 0.5).toFixed(1)} ms, p99 ${pct(xs, 0.99).toFixed(1)} ms`);
    }
  }
} catch (e) {
  err(`${e.stack}\n${log.excerpt()}`);
  process.exitCode = 1;
} finally {
  await chrome.close();
  await server.stop();
}
const seal = await sealBench();
const row = (mode, label) => `| ${label} | ${lat[mode].length} | ${pct(lat[mode], 0.5).toFixed(1)} | ${pct(lat[mode], 0.99).toFixed(1)} | ${Math.max(...lat[mode]).toFixed(1)} |`;
console.log(`\n| room | strokes | p50 ms | p99 ms | max ms |\n|---|---|---|---|---|\n${row('off', 'plain')}\n${row('server_key', 'E2EE (server key)')}\n`);
console.log(`| update sealed | bytes | CPU µs per seal | wall µs per seal |\n|---|---|---|---|`);
for (const [k, v] of Object.entries(seal)) console.log(`| ${k} | ${v.bytes} | ${v.cpuUsPerSeal.toFixed(1)} | ${v.wallUsPerSeal.toFixed(1)} |`);
console.log(`\n(${new Date().toISOString()}, ${os.cpus()[0]?.model}, load ${os.loadavg().map((x) => x.toFixed(2)).join(' ')})`);
