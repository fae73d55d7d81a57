// Helpers of the browser interop test (interop.test.mjs), also used by tests/network: the static
// page server (page/ and livekit-client's dist/), the RTCPeerConnection hook, and participants
// (one browser context and page each, everything they do logged). The server, ports, tokens,
// logs, waiting and the Chromium flags come from @enclave-tests/lib. Only Node 20 built-ins.

import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { packageDir } from '@enclave-tests/lib';

const here = path.dirname(fileURLToPath(import.meta.url));

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
  const lkDir = path.join(packageDir('livekit-client'), 'dist');
  if (!fs.existsSync(path.join(lkDir, 'livekit-client.umd.js'))) {
    throw new Error(`${lkDir}/livekit-client.umd.js is missing: run \`npm ci --prefix tests\` first`);
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
// Pages

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
