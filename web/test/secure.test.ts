import { test } from 'node:test';
import assert from 'node:assert/strict';

import { NO_TLS, fetchTlsInfo, httpsUrlFor, parseTlsInfo, planStart, type LocationParts } from '../src/secure';

const TOKEN = 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbm4ifQ.c2ln';
const at = (hostname: string, search = `?access_token=${TOKEN}`, pathname = '/'): LocationParts => ({ hostname, pathname, search });

test('a secure context goes on to the app; the start page offers the CA only for a local CA', () => {
  assert.deepEqual(planStart({ isSecureContext: true, location: at('meet.example.org'), tls: { https_port: 443, local_ca: false } }), {
    page: 'app',
    caDownload: false,
  });
  assert.deepEqual(planStart({ isSecureContext: true, location: at('192.168.1.20'), tls: { https_port: 8443, local_ca: true } }), {
    page: 'app',
    caDownload: true,
  });
  assert.deepEqual(planStart({ isSecureContext: true, location: at('localhost'), tls: NO_TLS }), { page: 'app', caDownload: false });
});

test('insecure, IPv4 host: a link to the same page over HTTPS, with the join token', () => {
  const plan = planStart({ isSecureContext: false, location: at('192.168.1.20'), tls: { https_port: 8443, local_ca: false } });
  assert.deepEqual(plan, { page: 'insecure', httpsUrl: `https://192.168.1.20:8443/?access_token=${TOKEN}`, caDownload: false });
});

test('insecure, IPv6 host: the brackets of location.hostname are kept', () => {
  const plan = planStart({ isSecureContext: false, location: at('[fd00::1:20]'), tls: { https_port: 8443, local_ca: false } });
  assert.equal(plan.page, 'insecure');
  assert.equal(plan.page === 'insecure' && plan.httpsUrl, `https://[fd00::1:20]:8443/?access_token=${TOKEN}`);
  // A bare IPv6 address (not what browsers give, but not a broken URL either).
  assert.equal(httpsUrlFor(at('fe80::1', ''), 8443), 'https://[fe80::1]:8443/');
});

test('port 443 is left out of the address; other ports are kept', () => {
  assert.equal(httpsUrlFor(at('meet.example.org'), 443), `https://meet.example.org/?access_token=${TOKEN}`);
  assert.equal(httpsUrlFor(at('[::1]', ''), 443), 'https://[::1]/');
  assert.equal(httpsUrlFor(at('meet.example.org', ''), 4443), 'https://meet.example.org:4443/');
  assert.equal(new URL(httpsUrlFor(at('meet.example.org'), 443)).searchParams.get('access_token'), TOKEN);
});

test('the path and the query string are carried over as they are; an empty query adds nothing', () => {
  assert.equal(
    httpsUrlFor(at('10.0.0.5', `?access_token=${TOKEN}&x=1`, '/room/weekly'), 8443),
    `https://10.0.0.5:8443/room/weekly?access_token=${TOKEN}&x=1`,
  );
  assert.equal(httpsUrlFor(at('10.0.0.5', '', '/'), 8443), 'https://10.0.0.5:8443/');
  assert.equal(httpsUrlFor(at('10.0.0.5', '?', '/'), 8443), 'https://10.0.0.5:8443/');
});

test('insecure, no HTTPS on the server: no link and no CA download', () => {
  assert.deepEqual(planStart({ isSecureContext: false, location: at('192.168.1.20'), tls: { https_port: null, local_ca: false } }), {
    page: 'insecure',
    httpsUrl: null,
    caDownload: false,
  });
  // A local CA without HTTPS offers nothing to trust it for.
  assert.deepEqual(planStart({ isSecureContext: false, location: at('192.168.1.20'), tls: { https_port: null, local_ca: true } }), {
    page: 'insecure',
    httpsUrl: null,
    caDownload: false,
  });
});

test('insecure, HTTPS with the server’s own CA: the link and the CA download', () => {
  assert.deepEqual(planStart({ isSecureContext: false, location: at('192.168.1.20'), tls: { https_port: 443, local_ca: true } }), {
    page: 'insecure',
    httpsUrl: `https://192.168.1.20/?access_token=${TOKEN}`,
    caDownload: true,
  });
});

test('/api/tls replies are checked: anything odd means no HTTPS and no local CA', () => {
  assert.deepEqual(parseTlsInfo({ https_port: 8443, local_ca: true }), { https_port: 8443, local_ca: true });
  assert.deepEqual(parseTlsInfo({ https_port: null, local_ca: false }), { https_port: null, local_ca: false });
  assert.deepEqual(parseTlsInfo({ https_port: '8443', local_ca: 'true' }), NO_TLS);
  assert.deepEqual(parseTlsInfo({ https_port: 0, local_ca: 1 }), NO_TLS);
  assert.deepEqual(parseTlsInfo({ https_port: 65536 }), NO_TLS);
  assert.deepEqual(parseTlsInfo({ https_port: 8443.5 }), NO_TLS);
  assert.deepEqual(parseTlsInfo({ local_ca: true }), { https_port: null, local_ca: true });
  assert.deepEqual(parseTlsInfo(null), NO_TLS);
  assert.deepEqual(parseTlsInfo([8443, true]), NO_TLS);
  assert.deepEqual(parseTlsInfo('not json'), NO_TLS);
});

test('fetchTlsInfo: an older server, an error or a network failure give no HTTPS', async () => {
  const reply = (status: number, body: string, type = 'application/json') =>
    (async () => new Response(body, { status, headers: { 'Content-Type': type } })) as unknown as typeof fetch;
  const seen: Array<{ url: string; init: RequestInit | undefined }> = [];
  const ok: typeof fetch = (async (url: string, init?: RequestInit) => {
    seen.push({ url, init });
    return new Response(JSON.stringify({ https_port: 8443, local_ca: true }), { status: 200 });
  }) as unknown as typeof fetch;
  assert.deepEqual(await fetchTlsInfo('./', ok), { https_port: 8443, local_ca: true });
  assert.equal(seen[0]?.url, './api/tls');
  assert.equal(seen[0]?.init?.method, 'GET');
  assert.equal(seen[0]?.init?.credentials, 'omit');
  assert.equal(new Headers(seen[0]?.init?.headers).get('authorization'), null, 'no credentials of any kind');

  // An older server answers the client's index.html (or a 404 text) instead of JSON.
  assert.deepEqual(await fetchTlsInfo('./', reply(200, '<!doctype html><html></html>', 'text/html')), NO_TLS);
  assert.deepEqual(await fetchTlsInfo('./', reply(404, 'not found', 'text/plain')), NO_TLS);
  assert.deepEqual(await fetchTlsInfo('./', reply(500, JSON.stringify({ https_port: 8443, local_ca: true }))), NO_TLS);
  const down = (async () => {
    throw new TypeError('Failed to fetch');
  }) as unknown as typeof fetch;
  assert.deepEqual(await fetchTlsInfo('./', down), NO_TLS);
});

test('fetchTlsInfo gives up after its timeout', async () => {
  const hang: typeof fetch = ((_url: string, init?: RequestInit) =>
    new Promise((_resolve, reject) => {
      init?.signal?.addEventListener('abort', () => reject(new DOMException('aborted', 'AbortError')));
    })) as unknown as typeof fetch;
  const started = Date.now();
  assert.deepEqual(await fetchTlsInfo('./', hang, 50), NO_TLS);
  assert.ok(Date.now() - started < 2000);
});
