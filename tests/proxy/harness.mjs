// Harness of the reverse-proxy suite (proxy.test.mjs): the enclave child process, nginx and
// Caddy children run from the documented configurations (docs/deploy/), a self-signed
// certificate made with openssl, and an HTTPS/WebSocket client that can choose its source
// address on the loopback network (127.0.0.2, 127.0.0.3, ...) to play distinct clients.
// Processes, ports, signing and tokens come from @enclave-tests/lib; only Node 20 built-ins.

import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';

import { Child, ENCLAVE_BIN as BIN, EnclaveServer, freeTcpPort, livekitToken, parseJson, repoRoot, requireBinary, signBody } from '@enclave-tests/lib';
export const NGINX = process.env.NGINX_BIN ?? 'nginx';
export const CADDY = process.env.CADDY_BIN ?? 'caddy';

/** The public name in the documented configurations; the test client sends it as SNI and Host. */
export const HOST = 'meet.example.org';

/** Failed credentials per minute per address, set low so that the throttle is reached fast. */
export const FAILURE_BUDGET = 3;

/** A child process whose output is kept (printed when a test fails), stopped by its pid. */
const child = (label, cmd, args, opts = {}) => new Child({ label, cmd, args, graceMs: 5000, ...opts }).start();

export function tempDir(name) {
  return fs.mkdtempSync(path.join(os.tmpdir(), `enclave-proxy-${name}-`));
}

/** `text` with `from` replaced by `to`, which must occur exactly once (the documented file changed otherwise). */
function substitute(text, file, from, to) {
  const n = text.split(from).length - 1;
  if (n !== 1) throw new Error(`${file}: expected exactly one '${from}', found ${n}; update tests/proxy/harness.mjs with the file`);
  return text.replace(from, () => to);
}

// ---------------------------------------------------------------------------------------------
// A self-signed certificate for HOST

export function makeCertificate(dir) {
  const cert = path.join(dir, 'cert.pem');
  const key = path.join(dir, 'key.pem');
  execFileSync(
    'openssl',
    [
      'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
      '-keyout', key, '-out', cert, '-days', '2', '-subj', `/CN=${HOST}`,
      '-addext', `subjectAltName=DNS:${HOST}`,
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  return { cert, key, pem: fs.readFileSync(cert) };
}

// ---------------------------------------------------------------------------------------------
// The enclave binary, with a configuration file of its own

export class Enclave {
  /** @param {{trustedProxies: string[]}} o */
  constructor({ trustedProxies }) {
    this.trustedProxies = trustedProxies;
    this.apiKey = 'plugnmeet';
    this.secret = randomBytes(24).toString('hex');
    this.lkKey = 'enclave-proxy-test';
    this.lkSecret = randomBytes(24).toString('hex');
  }

  async start() {
    requireBinary(BIN);
    this.workDir = tempDir('enclave');
    this.port = await freeTcpPort();
    this.base = `http://127.0.0.1:${this.port}`;
    const config = path.join(this.workDir, 'enclave.yaml');
    const list = this.trustedProxies.map((p) => JSON.stringify(p)).join(', ');
    fs.writeFileSync(
      config,
      [
        'client:',
        `  port: ${this.port}`,
        '  bind: 127.0.0.1',
        `  api_key: ${this.apiKey}`,
        `  secret: ${this.secret}`,
        `  trusted_proxies: [${list}]`,
        '  limits:',
        `    failed_credentials_per_minute: ${FAILURE_BUDGET}`,
        'livekit_info:',
        `  api_key: ${this.lkKey}`,
        `  secret: ${this.lkSecret}`,
        'database:',
        `  data_dir: ${JSON.stringify(path.join(this.workDir, 'data'))}`,
        'rtc:',
        '  udp_port: 0',
        '  tcp_port: 0',
        '  node_ip: 127.0.0.1',
        '',
      ].join('\n'),
    );
    // Only the file configures it: no ENCLAVE_* overrides from the calling shell.
    this.proc = new EnclaveServer({ args: ['serve', '--config', config], cleanEnv: true }).start();
    await this.proc.waitHealthy(this.base, 30_000);
    return this;
  }

  get text() {
    return this.proc?.text ?? '';
  }

  async stop() {
    await this.proc?.stop();
    if (this.workDir) fs.rmSync(this.workDir, { recursive: true, force: true });
  }

  /** `HASH-SIGNATURE`: hex HMAC-SHA256 of the body under the API secret. */
  sign(body) {
    return signBody(this.secret, body);
  }

  /** A LiveKit access token (JWT HS256) for /rtc. */
  livekitToken(identity, room) {
    return livekitToken({ apiKey: this.lkKey, secret: this.lkSecret, identity, room });
  }
}

// ---------------------------------------------------------------------------------------------
// The proxies, from the documented files

const NGINX_DOC = path.join(repoRoot, 'docs', 'deploy', 'nginx.conf');
const CADDY_DOC = path.join(repoRoot, 'docs', 'deploy', 'Caddyfile');

function requireTool(cmd, pkg) {
  try {
    execFileSync('sh', ['-c', `command -v "${cmd}"`], { stdio: 'ignore' });
  } catch {
    throw new Error(`'${cmd}' is not installed (Debian: apt-get install ${pkg})`);
  }
}

/** Answers once the proxy's HTTPS port passes a request through to Enclave. */
async function proxyHealthy(proxy) {
  const r = await request(proxy, { path: '/healthCheck' });
  return r.status === 200 && r.text === 'Healthy';
}

/** `proxy` with its `stop()` (the process by its pid, then its directory), once it passes /healthCheck through. */
async function proxyReady(proxy) {
  proxy.stop = async () => {
    await proxy.proc.stop();
    fs.rmSync(proxy.dir, { recursive: true, force: true });
  };
  try {
    await proxy.proc.ready(20_000, 'HTTPS to /healthCheck', () => proxyHealthy(proxy));
  } catch (e) {
    await proxy.stop();
    throw e;
  }
  return proxy;
}

/**
 * nginx running docs/deploy/nginx.conf (listen ports, certificate paths and the upstream port
 * changed, and listening on 127.0.0.1 only), included in a main configuration like Debian's
 * /etc/nginx/nginx.conf, in the foreground as one process.
 */
export async function startNginx(enclave, tls) {
  requireTool(NGINX, 'nginx-light');
  const dir = tempDir('nginx');
  const httpsPort = await freeTcpPort();
  const httpPort = await freeTcpPort();
  let site = fs.readFileSync(NGINX_DOC, 'utf8');
  const sub = (from, to) => (site = substitute(site, NGINX_DOC, from, to));
  sub('listen 443 ssl;', `listen 127.0.0.1:${httpsPort} ssl;`);
  sub('listen 80;', `listen 127.0.0.1:${httpPort};`);
  sub('server 127.0.0.1:8080;', `server 127.0.0.1:${enclave.port};`);
  sub('/etc/letsencrypt/live/meet.example.org/fullchain.pem', tls.cert);
  sub('/etc/letsencrypt/live/meet.example.org/privkey.pem', tls.key);
  fs.writeFileSync(path.join(dir, 'enclave.conf'), site);
  const main = path.join(dir, 'nginx.conf');
  fs.writeFileSync(
    main,
    [
      'daemon off;',
      'master_process off;',
      `pid ${path.join(dir, 'nginx.pid')};`,
      'error_log stderr notice;',
      'events { worker_connections 256; }',
      'http {',
      `    access_log ${path.join(dir, 'access.log')};`,
      `    client_body_temp_path ${path.join(dir, 'client_body')};`,
      `    proxy_temp_path ${path.join(dir, 'proxy')};`,
      `    fastcgi_temp_path ${path.join(dir, 'fastcgi')};`,
      `    uwsgi_temp_path ${path.join(dir, 'uwsgi')};`,
      `    scgi_temp_path ${path.join(dir, 'scgi')};`,
      `    include ${path.join(dir, 'enclave.conf')};`,
      '}',
      '',
    ].join('\n'),
  );
  const proc = child('nginx', NGINX, ['-e', 'stderr', '-p', dir, '-c', main]);
  return proxyReady({ name: 'nginx', proc, dir, httpsPort, httpPort, ca: tls.pem });
}

/**
 * Caddy running docs/deploy/Caddyfile (ports and the certificate changed, bound to 127.0.0.1
 * only), with its state directories in a temporary directory.
 */
export async function startCaddy(enclave, tls) {
  requireTool(CADDY, 'caddy');
  const dir = tempDir('caddy');
  const httpsPort = await freeTcpPort();
  const httpPort = await freeTcpPort();
  const adminPort = await freeTcpPort();
  let text = fs.readFileSync(CADDY_DOC, 'utf8');
  const sub = (from, to) => (text = substitute(text, CADDY_DOC, from, to));
  sub('admin localhost:2019', `admin 127.0.0.1:${adminPort}`);
  sub('http_port 80', `http_port ${httpPort}`);
  sub('https_port 443', `https_port ${httpsPort}\n\tdefault_bind 127.0.0.1`);
  sub('# tls /etc/ssl/enclave/fullchain.pem /etc/ssl/enclave/privkey.pem', `tls ${tls.cert} ${tls.key}`);
  sub('reverse_proxy 127.0.0.1:8080', `reverse_proxy 127.0.0.1:${enclave.port}`);
  const file = path.join(dir, 'Caddyfile');
  fs.writeFileSync(file, text);
  const env = {
    ...process.env,
    HOME: dir,
    XDG_DATA_HOME: path.join(dir, 'data'),
    XDG_CONFIG_HOME: path.join(dir, 'config'),
  };
  const proc = child('caddy', CADDY, ['run', '--config', file, '--adapter', 'caddyfile'], { env, cwd: dir });
  return proxyReady({ name: 'caddy', proc, dir, httpsPort, httpPort, ca: tls.pem });
}

// ---------------------------------------------------------------------------------------------
// Requests through a proxy, from a chosen loopback address

/**
 * One request to the proxy's HTTPS port (or its plain HTTP port with `plain`), on a connection
 * of its own from `from`, with SNI and Host set to HOST.
 * @returns {Promise<{status: number, headers: object, text: string}>}
 */
export function request(proxy, { method = 'GET', path: p, headers = {}, body, from = '127.0.0.1', plain = false, timeoutMs = 10_000 }) {
  return new Promise((resolve, reject) => {
    const mod = plain ? http : https;
    const req = mod.request(
      {
        host: '127.0.0.1',
        port: plain ? proxy.httpPort : proxy.httpsPort,
        method,
        path: p,
        localAddress: from,
        agent: false,
        servername: HOST,
        ca: proxy.ca,
        headers: { Host: HOST, ...headers },
        timeout: timeoutMs,
      },
      (res) => {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, text: Buffer.concat(chunks).toString() }));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`${method} ${p} through ${proxy.name}: no answer within ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end(body);
  });
}

/** A signed (or, with `secret`, wrongly signed) `/auth` call through the proxy. */
export async function auth(proxy, enclave, p, bodyObj, { from, secret, headers = {} } = {}) {
  const body = JSON.stringify(bodyObj);
  const signature = secret === undefined ? enclave.sign(body) : signBody(secret, body);
  const r = await request(proxy, {
    method: 'POST',
    path: `/auth${p}`,
    from,
    body,
    headers: { 'Content-Type': 'application/json', 'API-KEY': enclave.apiKey, 'HASH-SIGNATURE': signature, ...headers },
  });
  return { ...r, json: parseJson(r.text) }; // json null when not JSON; the caller asserts
}

// ---------------------------------------------------------------------------------------------
// A minimal WebSocket client (RFC 6455) over the proxy's HTTPS port: enough to see the upgrade,
// read frames and send a ping and a close.

const WS_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

export function openWebSocket(proxy, p, { from = '127.0.0.1', timeoutMs = 10_000 } = {}) {
  return new Promise((resolve, reject) => {
    const key = randomBytes(16).toString('base64');
    const shown = p.replace(/access_token=[^&]+/, 'access_token=<jwt>');
    const req = https.request({
      host: '127.0.0.1',
      port: proxy.httpsPort,
      path: p,
      localAddress: from,
      agent: false,
      servername: HOST,
      ca: proxy.ca,
      headers: {
        Host: HOST,
        Connection: 'Upgrade',
        Upgrade: 'websocket',
        'Sec-WebSocket-Version': '13',
        'Sec-WebSocket-Key': key,
      },
      timeout: timeoutMs,
    });
    req.on('timeout', () => req.destroy(new Error(`WebSocket ${shown} through ${proxy.name}: no upgrade within ${timeoutMs} ms`)));
    req.on('error', reject);
    req.on('response', (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => reject(new Error(`WebSocket ${shown} through ${proxy.name}: HTTP ${res.statusCode} instead of 101: ${Buffer.concat(chunks).toString().slice(0, 300)}`)));
    });
    req.on('upgrade', (res, socket, head) => {
      const expect = createHash('sha1').update(key + WS_GUID).digest('base64');
      if (res.headers['sec-websocket-accept'] !== expect) {
        socket.destroy();
        reject(new Error(`bad Sec-WebSocket-Accept: ${res.headers['sec-websocket-accept']}`));
        return;
      }
      resolve(new WebSocketConn(res.statusCode, socket, head));
    });
    req.end();
  });
}

class WebSocketConn {
  constructor(status, socket, head) {
    this.status = status;
    this.socket = socket;
    this.buf = Buffer.from(head ?? []);
    this.frames = [];
    this.waiters = [];
    this.closed = false;
    socket.on('data', (c) => {
      this.buf = Buffer.concat([this.buf, c]);
      this.parse();
    });
    const end = () => {
      this.closed = true;
      for (const w of this.waiters.splice(0)) w();
    };
    socket.on('close', end);
    socket.on('error', end);
    this.parse();
  }

  parse() {
    for (;;) {
      if (this.buf.length < 2) return;
      const opcode = this.buf[0] & 0x0f;
      const masked = (this.buf[1] & 0x80) !== 0;
      let len = this.buf[1] & 0x7f;
      let off = 2;
      if (len === 126) {
        if (this.buf.length < 4) return;
        len = this.buf.readUInt16BE(2);
        off = 4;
      } else if (len === 127) {
        if (this.buf.length < 10) return;
        len = Number(this.buf.readBigUInt64BE(2));
        off = 10;
      }
      if (masked) off += 4; // servers do not mask; tolerated anyway
      if (this.buf.length < off + len) return;
      let payload = this.buf.subarray(off, off + len);
      if (masked) {
        const mask = this.buf.subarray(off - 4, off);
        payload = Buffer.from(payload.map((b, i) => b ^ mask[i % 4]));
      }
      this.frames.push({ opcode, payload: Buffer.from(payload) });
      this.buf = this.buf.subarray(off + len);
      for (const w of this.waiters.splice(0)) w();
    }
  }

  /** The next frame for which `pred` holds (frames before it are dropped). */
  async next(pred = () => true, ms = 10_000, what = 'a frame') {
    const end = Date.now() + ms;
    for (;;) {
      const i = this.frames.findIndex(pred);
      if (i >= 0) {
        const f = this.frames[i];
        this.frames.splice(0, i + 1);
        return f;
      }
      if (this.closed) throw new Error(`WebSocket closed before ${what}`);
      const left = end - Date.now();
      if (left <= 0) throw new Error(`no ${what} within ${ms} ms`);
      await new Promise((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  /** Sends one masked frame (clients must mask). */
  send(opcode, payload = Buffer.alloc(0)) {
    if (payload.length > 125) throw new Error('only small frames here');
    const mask = randomBytes(4);
    const body = Buffer.from(payload.map((b, i) => b ^ mask[i % 4]));
    this.socket.write(Buffer.concat([Buffer.from([0x80 | opcode, 0x80 | payload.length]), mask, body]));
  }

  /** A close frame (1000), then the socket is ended. */
  close() {
    if (this.closed) return;
    const code = Buffer.alloc(2);
    code.writeUInt16BE(1000);
    try {
      this.send(0x8, code);
    } catch {
      // already broken
    }
    this.socket.end();
    setTimeout(() => this.socket.destroy(), 1000).unref();
  }
}
