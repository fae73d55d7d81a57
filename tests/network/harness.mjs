// Helpers of the network-namespace suite (network.test.mjs): the namespaces run.sh made, the
// enclave server and coturn started inside the server namespace, nftables rules in the client
// namespace, and what the clients' WebRTC stacks say about the path media took (selected ICE
// candidate pairs, ICE servers, the server's candidates).
//
// The server process, logs, tokens and waiting come from @enclave-tests/lib; the bots from
// tests/livekit-native, the test page and its participants from tests/livekit-browser, the web
// client's users from tests/webclient.

import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import dgram from 'node:dgram';
import fs from 'node:fs';
import path from 'node:path';

import { Child, EnclaveServer, TestLog as LibTestLog, envWithoutEnclave } from '@enclave-tests/lib';

// ---------------------------------------------------------------------------------------------
// The namespaces (made by run.sh, which passes their names and addresses in the environment)

export const NET = {
  srvNs: process.env.SRV_NS,
  cliNs: process.env.CLI_NS,
  serverIp: process.env.SERVER_IP,
  turnIp: process.env.TURN_IP,
  clientIp: process.env.CLIENT_IP,
  cliIf: process.env.CLI_IF, // the client's end of the veth pair
};

/**
 * Refuses to run anywhere but in the client namespace that run.sh made: every rule and process of
 * this suite must stay inside the suite's own namespaces.
 */
export function checkNamespaces() {
  const missing = Object.entries({
    SRV_NS: NET.srvNs,
    CLI_NS: NET.cliNs,
    SERVER_IP: NET.serverIp,
    TURN_IP: NET.turnIp,
    CLIENT_IP: NET.clientIp,
    CLI_IF: NET.cliIf,
  })
    .filter(([, v]) => !v)
    .map(([k]) => k);
  if (missing.length) {
    throw new Error(
      `${missing.join(', ')} not set: this suite runs only through tests/network/run.sh (as root), ` +
        'which creates the network namespaces it needs and runs the tests inside the client one',
    );
  }
  const id = spawnSync('ip', ['netns', 'identify', String(process.pid)], { encoding: 'utf8', timeout: 5_000 });
  const here = (id.stdout ?? '').trim();
  if (id.status !== 0 || here !== NET.cliNs) {
    throw new Error(
      `this process is not in the client namespace ${NET.cliNs} (ip netns identify: ${JSON.stringify(here)} ` +
        `${id.stderr ?? ''}): run the suite through tests/network/run.sh`,
    );
  }
}

// ---------------------------------------------------------------------------------------------
// Secrets never reach a log: every secret of a run is registered here and masked.

const secrets = new Set();

export function secret(bytes = 18) {
  const s = randomBytes(bytes).toString('hex');
  secrets.add(s);
  return s;
}

export function maskSecrets(text) {
  let out = String(text);
  for (const s of secrets) out = out.split(s).join('<secret>');
  return out;
}

/** The per-test log (tokens redacted), masking our secrets too. */
export class TestLog extends LibTestLog {
  add(source, text) {
    super.add(source, maskSecrets(text));
  }

  attach(suffix, title, text) {
    return super.attach(suffix, title, maskSecrets(text));
  }
}

// ---------------------------------------------------------------------------------------------
// Processes in the server namespace. `ip netns exec NS PROG` execs PROG in place, so the child's
// pid is the program's own: it is stopped by that pid.

/** `enclave serve` in the server namespace, configured by `env` only; SIGKILL 5 s after SIGTERM. */
export class NsEnclaveServer extends EnclaveServer {
  constructor({ bin, env, ns }) {
    super({ bin, env, cleanEnv: true, wrap: ['ip', 'netns', 'exec', ns], graceMs: 5_000 });
    this.ns = ns;
  }
}

/**
 * coturn in the server namespace, TURN REST API auth (`--use-auth-secret`), UDP and TCP
 * listeners on `ip:port` only, relaying from `ip`. Its pid file and (empty) user database live in
 * `dir`, not in /var.
 */
export class Coturn extends Child {
  constructor({ ns, ip, port, authSecret, realm, dir }) {
    super({ label: 'coturn', cmd: 'ip', env: envWithoutEnclave(), keepBytes: 512 * 1024, filter: maskSecrets, graceMs: 3_000 });
    Object.assign(this, { ns, ip, port, authSecret, realm, dir });
    this.args = ['netns', 'exec', ns, 'turnserver', ...this.turnArgs()];
  }

  /** Its output so far (secrets masked). */
  get log() {
    return this.text;
  }

  turnArgs() {
    return [
      '-n', // no configuration file
      `--listening-ip=${this.ip}`,
      `--relay-ip=${this.ip}`,
      `--listening-port=${this.port}`,
      `--use-auth-secret`,
      `--static-auth-secret=${this.authSecret}`,
      `--realm=${this.realm}`,
      '--no-tls',
      '--no-dtls',
      '--no-cli',
      '--no-rfc5780', // no alternative port (listening port + 1)
      '--fingerprint',
      '--verbose', // sessions, allocations, permissions and auth failures in the log
      '--log-file=stdout',
      '--simple-log',
      `--pidfile=${path.join(this.dir, 'turnserver.pid')}`,
      `--userdb=${path.join(this.dir, 'turndb')}`,
      '--min-port=50000',
      '--max-port=50999',
    ];
  }

  /** The command line with the secret masked, for the log. */
  describe() {
    return maskSecrets(`ip netns exec ${this.ns} turnserver ${this.turnArgs().join(' ')}`);
  }

  start() {
    fs.mkdirSync(this.dir, { recursive: true });
    return super.start();
  }

  /** Waits until coturn answers a STUN Binding request on ip:port (UDP) from this namespace. */
  async waitReady(timeoutMs) {
    await this.ready(timeoutMs, `STUN on ${this.ip}:${this.port}`, async () => {
      await stunBinding(this.ip, this.port, 500);
      return true;
    });
  }
}

/** One STUN Binding request (RFC 5389) over UDP; resolves when a success response comes back. */
export function stunBinding(ip, port, timeoutMs) {
  return new Promise((resolve, reject) => {
    const sock = dgram.createSocket('udp4');
    const txid = randomBytes(12);
    const req = Buffer.alloc(20);
    req.writeUInt16BE(0x0001, 0); // Binding request
    req.writeUInt16BE(0, 2); // no attributes
    req.writeUInt32BE(0x2112a442, 4); // magic cookie
    txid.copy(req, 8);
    const timer = setTimeout(() => {
      sock.close();
      reject(new Error(`no STUN answer from ${ip}:${port} within ${timeoutMs} ms`));
    }, timeoutMs);
    sock.on('message', (msg) => {
      if (msg.length >= 20 && msg.readUInt16BE(0) === 0x0101 && msg.subarray(8, 20).equals(txid)) {
        clearTimeout(timer);
        sock.close();
        resolve();
      }
    });
    sock.on('error', (e) => {
      clearTimeout(timer);
      sock.close();
      reject(e);
    });
    sock.send(req, port, ip);
  });
}

// ---------------------------------------------------------------------------------------------
// nftables in the client namespace. Always through `ip netns exec CLI_NS` (even though this
// process is already there), so that no rule can ever land in another namespace.

export const NFT_TABLE = 'encltest';

function nft(args, input) {
  const r = spawnSync('ip', ['netns', 'exec', NET.cliNs, 'nft', ...args], {
    encoding: 'utf8',
    input,
    timeout: 10_000,
  });
  return { ok: r.status === 0, out: r.stdout ?? '', err: (r.stderr ?? '') + (r.error ? r.error.message : '') };
}

/**
 * Adds table `inet encltest` with an output chain (policy accept) holding `rules` (nft rule
 * texts, in order). Throws with nft's message if the ruleset is refused.
 */
export function nftBlock(rules) {
  const text = [
    `table inet ${NFT_TABLE} {`,
    '  chain output {',
    '    type filter hook output priority 0; policy accept;',
    ...rules.map((r) => `    ${r}`),
    '  }',
    '}',
    '',
  ].join('\n');
  const r = nft(['-f', '-'], text);
  if (!r.ok) throw new Error(`nft refused the rules of this scenario: ${r.err.trim()}\n${text}`);
  return text;
}

/** The table with its counters (for the log). */
export function nftList() {
  const r = nft(['list', 'table', 'inet', NFT_TABLE]);
  return r.ok ? r.out.trim() : `(no table: ${r.err.trim()})`;
}

/** Deletes the table if it exists. */
export function nftUnblock() {
  const r = nft(['delete', 'table', 'inet', NFT_TABLE]);
  if (!r.ok && !/No such file|does not exist/i.test(r.err)) throw new Error(`nft delete table failed: ${r.err.trim()}`);
}

// ---------------------------------------------------------------------------------------------
// What the WebRTC stacks chose.

/**
 * In a page: for every RTCPeerConnection it created, the ICE servers it was configured with
 * and its ICE state; for those not closed, the selected candidate pair
 * (transport.selectedCandidatePairId, else the nominated succeeded pair) with both candidates.
 * Plus the server's candidates from every remote SDP the page applied.
 */
export async function pageIce(page) {
  return page.evaluate(async () => {
    const pcs = window.__pcs || [];
    const out = [];
    for (let i = 0; i < pcs.length; i++) {
      const pc = pcs[i];
      const config = pc.getConfiguration();
      const entry = {
        pc: i,
        connectionState: pc.connectionState,
        iceConnectionState: pc.iceConnectionState,
        selected: null,
        iceServers: (config.iceServers || []).map((s) => ({
          urls: [].concat(s.urls || []),
          username: s.username ?? null,
          credential: s.credential ?? null,
        })),
        iceTransportPolicy: config.iceTransportPolicy,
      };
      // A closed PC (livekit-client's early /rtc/v1 one, or all of them after a failed join)
      // still tells what it was configured with; it has no stats.
      if (pc.connectionState === 'closed' || pc.signalingState === 'closed') {
        out.push(entry);
        continue;
      }
      let report;
      try {
        report = await pc.getStats();
      } catch (e) {
        entry.error = String(e);
        out.push(entry);
        continue;
      }
      let pairId = null;
      report.forEach((s) => {
        if (s.type === 'transport' && s.selectedCandidatePairId) pairId = s.selectedCandidatePairId;
      });
      if (!pairId) {
        report.forEach((s) => {
          if (!pairId && s.type === 'candidate-pair' && s.nominated && s.state === 'succeeded') pairId = s.id;
        });
      }
      const cand = (id) => {
        const c = id ? report.get(id) : null;
        if (!c) return null;
        return {
          candidateType: c.candidateType,
          protocol: c.protocol,
          address: c.address ?? c.ip ?? null,
          port: c.port,
          relayProtocol: c.relayProtocol ?? null,
          url: c.url ?? null,
          tcpType: c.tcpType ?? null,
        };
      };
      const pair = pairId ? report.get(pairId) : null;
      if (pair) {
        entry.selected = {
          state: pair.state,
          nominated: pair.nominated,
          bytesSent: pair.bytesSent,
          bytesReceived: pair.bytesReceived,
          local: cand(pair.localCandidateId),
          remote: cand(pair.remoteCandidateId),
        };
      }
      out.push(entry);
    }
    const offered = new Set();
    for (const d of window.__sdps || []) {
      if (d.side !== 'remote') continue;
      for (const line of d.sdp.split(/\r?\n/)) if (line.startsWith('a=candidate:')) offered.add(line);
    }
    return { pcs: out, serverCandidates: [...offered] };
  });
}

/** `pageIce` without credentials, for the log. */
export function describePageIce(ice) {
  return JSON.stringify({
    ...ice,
    pcs: ice.pcs.map((p) => ({
      ...p,
      iceServers: p.iceServers.map((s) => ({ ...s, credential: s.credential ? `<${s.credential.length} chars>` : null })),
    })),
  });
}

/**
 * For an rtc-node bot: the selected candidate pair of its publisher and subscriber peer
 * connections, from Room.getRtcStats() (libwebrtc's stats as protobuf). `ffi` is the module
 * @livekit/rtc-ffi-bindings (for its enums IceCandidateType and IceCandidatePairState).
 */
export async function botIce(bot, ffi) {
  const { IceCandidateType, IceCandidatePairState } = ffi;
  const s = await bot.room.getRtcStats();
  const one = (list) => {
    const byId = new Map();
    let pairId = null;
    for (const st of list ?? []) {
      const id = st.stats.value?.rtc?.id;
      if (id) byId.set(id, st.stats);
      if (st.stats.case === 'transport' && st.stats.value.transport?.selectedCandidatePairId) {
        pairId = st.stats.value.transport.selectedCandidatePairId;
      }
    }
    if (!pairId) {
      for (const st of list ?? []) {
        const p = st.stats.case === 'candidatePair' ? st.stats.value.candidatePair : null;
        if (p?.nominated && p.state === IceCandidatePairState.PAIR_SUCCEEDED) pairId = st.stats.value.rtc.id;
      }
    }
    const pair = pairId ? byId.get(pairId)?.value?.candidatePair : null;
    if (!pair) return null;
    const cand = (id) => {
      const c = id ? byId.get(id)?.value?.candidate : null;
      if (!c) return null;
      return {
        candidateType: c.candidateType === undefined ? null : (IceCandidateType[c.candidateType] ?? String(c.candidateType)).toLowerCase(),
        protocol: c.protocol ?? null,
        address: c.address ?? null,
        port: c.port ?? null,
        url: c.url || null,
      };
    };
    return {
      bytesSent: Number(pair.bytesSent ?? 0),
      bytesReceived: Number(pair.bytesReceived ?? 0),
      local: cand(pair.localCandidateId),
      remote: cand(pair.remoteCandidateId),
    };
  };
  return { publisher: one(s.publisherStats), subscriber: one(s.subscriberStats) };
}
