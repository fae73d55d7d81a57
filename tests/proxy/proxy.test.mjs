// Enclave behind nginx and Caddy, each run from its documented configuration (docs/deploy/):
// signed /auth calls, the /rtc WebSocket, and the failed-credential throttle keyed on the
// client address the proxy forwards (X-Forwarded-For from a trusted proxy). See README.md.

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import fs from 'node:fs';

import { Enclave, FAILURE_BUDGET, HOST, auth, makeCertificate, openWebSocket, request, startCaddy, startNginx, tempDir } from './harness.mjs';

// `PROXY_TEST_TRUSTED_PROXIES=` (empty) runs the suite against a server that trusts no proxy,
// to see the X-Forwarded-For test fail.
const trusted = (process.env.PROXY_TEST_TRUSTED_PROXIES ?? '127.0.0.1')
  .split(',')
  .map((s) => s.trim())
  .filter(Boolean);

const T = { timeout: 60_000 };

let enclave;
let tlsDir;
let tls;

before(async () => {
  tlsDir = tempDir('tls');
  tls = makeCertificate(tlsDir);
  enclave = await new Enclave({ trustedProxies: trusted }).start();
}, T);

after(async () => {
  await enclave?.stop();
  if (tlsDir) fs.rmSync(tlsDir, { recursive: true, force: true });
}, T);

/** Prints the children's output when a test fails, then rethrows. */
async function explained(proxy, fn) {
  try {
    await fn();
  } catch (e) {
    const tail = (s) => s.split('\n').slice(-40).join('\n');
    e.message += `\n--- enclave (last lines)\n${tail(enclave.text)}\n--- ${proxy.name} (last lines)\n${tail(proxy.proc.text)}`;
    throw e;
  }
}

// Each proxy gets its own loopback addresses for the throttle test: the server's failure
// windows outlive one proxy's tests.
const PROXIES = [
  { name: 'nginx', start: startNginx, client: '127.0.0.2', other: '127.0.0.3' },
  { name: 'caddy', start: startCaddy, client: '127.0.0.4', other: '127.0.0.5' },
];

for (const p of PROXIES) {
  describe(`behind ${p.name}`, () => {
    let proxy;

    before(async () => {
      proxy = await p.start(enclave, tls);
    }, T);

    after(async () => {
      await proxy?.stop();
    }, T);

    test('HTTPS: signed /auth calls work, a body too large gets the server\'s own 413, plain HTTP is redirected, /metrics is not public', T, () =>
      explained(proxy, async () => {
        const roomId = `proxy-${p.name}-${randomBytes(3).toString('hex')}`;
        const created = await auth(proxy, enclave, '/room/create', {
          room_id: roomId,
          metadata: { room_title: 'Behind a proxy', room_features: { allow_webcams: true } },
        });
        assert.equal(created.status, 200, created.text);
        assert.equal(created.json?.status, true, created.text);
        const active = await auth(proxy, enclave, '/room/isRoomActive', { room_id: roomId });
        assert.equal(active.json?.status, true, active.text);

        // 1.5 MB: above client.max_body_bytes (1 MiB), below the proxies' 2 MB.
        const big = JSON.stringify({ room_id: roomId, pad: 'x'.repeat(1_500_000) });
        const tooLarge = await request(proxy, {
          method: 'POST',
          path: '/auth/room/isRoomActive',
          body: big,
          headers: { 'Content-Type': 'application/json', 'API-KEY': enclave.apiKey, 'HASH-SIGNATURE': enclave.sign(big) },
        });
        assert.equal(tooLarge.status, 413, tooLarge.text.slice(0, 300));
        assert.match(tooLarge.text, /larger than the limit/);

        const plain = await request(proxy, { path: '/healthCheck', plain: true });
        assert.ok([301, 302, 307, 308].includes(plain.status), `plain HTTP answered ${plain.status}`);
        assert.ok(plain.headers.location?.startsWith(`https://${HOST}`), `Location: ${plain.headers.location}`);

        const metrics = await request(proxy, { path: '/metrics' });
        assert.equal(metrics.status, 404);
      }),
    );

    test('/rtc: the WebSocket upgrades, the join response arrives, pings are answered', T, () =>
      explained(proxy, async () => {
        const roomId = `proxy-ws-${p.name}-${randomBytes(3).toString('hex')}`;
        const created = await auth(proxy, enclave, '/room/create', {
          room_id: roomId,
          metadata: { room_title: 'Signalling', room_features: { allow_webcams: true } },
        });
        assert.equal(created.json?.status, true, created.text);
        const token = enclave.livekitToken(`user-${p.name}`, roomId);
        const ws = await openWebSocket(proxy, `/rtc?access_token=${token}&auto_subscribe=1&protocol=17&sdk=js`);
        try {
          assert.equal(ws.status, 101);
          // SignalResponse { join = 1 }: a length-delimited field 1, tag byte 0x0a.
          const first = await ws.next((f) => f.opcode !== 0x9, 10_000, 'the first signalling message');
          assert.equal(first.opcode, 0x2, 'a binary frame');
          assert.equal(first.payload[0], 0x0a, `a JoinResponse first, got ${first.payload.subarray(0, 8).toString('hex')}`);
          const nonce = randomBytes(8);
          ws.send(0x9, nonce);
          const pong = await ws.next((f) => f.opcode === 0xa, 10_000, 'a pong');
          assert.deepEqual(pong.payload, nonce);
        } finally {
          ws.close();
        }
      }),
    );

    test('X-Forwarded-For from the trusted proxy: failed credentials are throttled per client address, not per proxy', T, () =>
      explained(proxy, async () => {
        const wrong = 'not-the-secret-at-all';
        const body = { room_id: 'nope' };
        for (let i = 1; i <= FAILURE_BUDGET; i++) {
          const r = await auth(proxy, enclave, '/room/isRoomActive', body, { from: p.client, secret: wrong });
          assert.equal(r.status, 401, `failure ${i} from ${p.client}: ${r.text}`);
        }
        const throttled = await auth(proxy, enclave, '/room/isRoomActive', body, { from: p.client, secret: wrong });
        assert.equal(throttled.status, 429, `after ${FAILURE_BUDGET} failures from ${p.client}: ${throttled.text}`);
        assert.ok(Number(throttled.headers['retry-after']) >= 1, `Retry-After: ${throttled.headers['retry-after']}`);
        // The log line travels through the server's stdout pipe: it may arrive after the reply.
        const loggedNow = () =>
          enclave.text.split('\n').some((l) => l.includes('too many failed credentials') && l.includes(`ip=${p.client} `));
        for (let waited = 0; !loggedNow() && waited < 5_000; waited += 50) {
          await new Promise((r) => setTimeout(r, 50));
        }
        assert.ok(loggedNow(), `the server should log the throttle for ip=${p.client}`);

        // Another client behind the same proxy has a budget of its own.
        const other = await auth(proxy, enclave, '/room/isRoomActive', body, { from: p.other, secret: wrong });
        assert.equal(other.status, 401, `first failure from ${p.other}: ${other.text}`);
        const ok = await auth(proxy, enclave, '/room/isRoomActive', body, { from: p.other });
        assert.equal(ok.status, 200, ok.text);

        // A header a client writes itself changes nothing: the throttled client stays
        // throttled, and the other one cannot be made to look like it.
        const escape = await auth(proxy, enclave, '/room/isRoomActive', body, {
          from: p.client,
          secret: wrong,
          headers: { 'X-Forwarded-For': '198.51.100.23' },
        });
        assert.equal(escape.status, 429, `throttled client with its own X-Forwarded-For: ${escape.text}`);
        const framed = await auth(proxy, enclave, '/room/isRoomActive', body, {
          from: p.other,
          headers: { 'X-Forwarded-For': p.client },
        });
        assert.equal(framed.status, 200, `other client claiming ${p.client}: ${framed.text}`);
      }),
    );
  });
}
