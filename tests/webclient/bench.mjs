// Benchmarks of the web client against the real server (not a test: it measures and prints).
//
//   node tests/webclient/bench.mjs [--runs 7] [--rounds 3] [--window 20] [--settle 5] [--only latency,cpu]
//
// 1. latency: time from opening the join link to the first decoded remote frame, server-key E2EE
//    and plain rooms alternately, `--runs` each: ann joins first and publishes; bob opens the
//    link, clicks Join the moment the button is enabled, and we take the breakdown from his page
//    (navigation and resource timing, and a timeline of the testid hooks kept by a
//    MutationObserver; the first decoded frame by polling the remote tile's <video> every 5 ms).
//    Plus the bare PBKDF2-HMAC-SHA-256 (600 000 rounds) cost in the same Chromium.
// 2. cpu: the same two-party call with and without E2EE, alternating, `--rounds` each: a fresh
//    Chromium per round; once media flows both ways and `--settle` seconds have passed, the CPU
//    time (utime + stime from /proc) of the Chromium process tree over a `--window`-second window.
//
// 3. rekey (`--only rekey`): what the people who stay lose when a participant is removed. Three
//    people (ann, bob, cat); ann removes cat; bob's page samples ann's decoded video frames every
//    5 ms and his audio from ann's concealment counters (getStats). Server-key rooms (the key
//    moves to a new epoch at the removal) alternate with self-insert rooms (the same removal,
//    no key change: the control), `--runs` each. Reported: video frames decoded and the longest
//    gap between two decoded frames in the `--span` seconds before and after the removal, and
//    the audio concealed (ms) in each.
//
// ENCLAVE_BIN (default target/debug/enclave), CHROMIUM_BIN (default /usr/bin/chromium).

import { randomBytes } from 'node:crypto';
import os from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';

import { TestLog } from '@enclave-tests/lib';

import { User, firstOf, launchBrowser, mediaFlows, tid, timeline } from './browser.mjs';
import { cpuBetween, cpuByKind, machineBusy, median, treeCpu } from './cpu.mjs';
import { Enclave } from './server.mjs';

const { values: opt } = parseArgs({
  options: {
    runs: { type: 'string', default: '7' },
    rounds: { type: 'string', default: '3' },
    window: { type: 'string', default: '20' },
    settle: { type: 'string', default: '5' },
    only: { type: 'string', default: 'latency,cpu' },
    span: { type: 'string', default: '4' },
  },
});
const RUNS = Number(opt.runs);
const ROUNDS = Number(opt.rounds);
const WINDOW_S = Number(opt.window);
const SETTLE_S = Number(opt.settle);
const only = new Set(opt.only.split(','));
const SPAN_S = Number(opt.span);
const rand = () => randomBytes(4).toString('hex');
const f0 = (x) => (Number.isFinite(x) ? Math.round(x).toString() : '–');
const err = (s) => process.stderr.write(`${s}\n`);

const server = await new Enclave().start();
const log = new TestLog(null, 'bench', { maxLine: 2000, head: 60, tail: 300 });
err(`bench: enclave ${server.base} (pid ${server.pid}); ${os.cpus().length} CPUs (${os.cpus()[0]?.model}); load ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}`);

async function latencyRun(browser, mode) {
  const room = `lat-${mode}-${rand()}`;
  await server.createRoom(room, mode);
  const ann = new User(server, log, { room, id: 'ann', admin: true });
  const bob = new User(server, log, { room, id: 'bob', watchFrames: true, autoJoin: true });
  try {
    await ann.enter(browser);
    await sleep(1000); // ann publishes
    const tOpen = await bob.open(browser);
    // bob's page clicks join-button itself the moment it is enabled (autoJoin), so the figures
    // are the client's, not Playwright's actionability checks (300–800 ms here).
    await bob.page.waitForFunction(() => window.__firstFrame && window.__firstFrame.ann && window.__frames30 && window.__frames30.ann, null, { timeout: 30_000 });
    const tl = await timeline(bob.page);
    const p = await bob.page.evaluate(() => {
      const nav = performance.getEntriesByType('navigation')[0];
      const vt = performance.getEntriesByType('resource').find((e) => e.name.includes('/api/verifyToken'));
      const o = performance.timeOrigin;
      return {
        origin: o,
        domContentLoaded: nav ? o + nav.domContentLoadedEventEnd : null,
        vtStart: vt ? o + vt.startTime : null,
        vtEnd: vt ? o + vt.responseEnd : null,
        first: window.__firstFrame.ann,
        frames30: window.__frames30.ann,
      };
    });
    const at = (t) => (t == null ? NaN : t - tOpen);
    const keysReady = firstOf(tl, 'e2ee-key-ready', true);
    const r = {
      mode,
      dcl: at(p.domContentLoaded),
      vtStart: at(p.vtStart),
      vtEnd: at(p.vtEnd),
      keys: mode === 'off' ? NaN : at(keysReady),
      joinEnabled: at(firstOf(tl, 'join-enabled', true)),
      click: at(firstOf(tl, 'join-click', true)),
      connected: at(firstOf(tl, 'connection-state', 'connected')),
      first: at(p.first),
      frames30: at(p.frames30),
    };
    r.verify = r.vtEnd - r.vtStart;
    r.derive = r.keys - r.vtEnd;
    r.connect = r.connected - r.click;
    r.toFirst = r.first - r.connected;
    return r;
  } finally {
    await ann.close();
    await bob.close();
    await server.auth('/room/endRoom', { room_id: room }).catch(() => {});
  }
}

async function pbkdf2Cost(browser) {
  const ctx = await browser.newContext();
  const page = await ctx.newPage();
  await page.goto(`${server.base}/healthCheck`); // any page of this origin: a secure context
  const ms = await page.evaluate(async () => {
    const out = [];
    for (let i = 0; i < 3; i++) {
      const key = await crypto.subtle.importKey('raw', new TextEncoder().encode('0123456789abcdefghijABCDEFGHIJkl'), 'PBKDF2', false, ['deriveBits']);
      const t = performance.now();
      await crypto.subtle.deriveBits({ name: 'PBKDF2', hash: 'SHA-256', salt: new TextEncoder().encode('enclave-e2ee-v1|some-sid'), iterations: 600000 }, key, 256);
      out.push(performance.now() - t);
    }
    return out;
  });
  await ctx.close();
  return ms;
}

async function latency() {
  const chrome = await launchBrowser();
  const rows = [];
  try {
    err(`bench latency: Chromium ${chrome.version}; ${RUNS} runs per mode, alternating`);
    await latencyRun(chrome.browser, 'server_key').catch((e) => err(`warm-up run failed: ${e.message}`)); // warm-up, not counted
    for (let i = 0; i < RUNS; i++) {
      for (const mode of i % 2 ? ['off', 'server_key'] : ['server_key', 'off']) {
        const r = await latencyRun(chrome.browser, mode);
        rows.push(r);
        err(`  ${mode.padEnd(10)} verifyToken ${f0(r.verify)} ms (done at ${f0(r.vtEnd)}), keys at ${f0(r.keys)} (derive ${f0(r.derive)}), join enabled ${f0(r.joinEnabled)}, click ${f0(r.click)}, connected ${f0(r.connected)} (connect ${f0(r.connect)}), first frame ${f0(r.first)}, 30 frames ${f0(r.frames30)}`);
      }
    }
    const pb = await pbkdf2Cost(chrome.browser);
    err(`  bare PBKDF2-SHA-256 600k in this Chromium: ${pb.map(f0).join(', ')} ms`);
    const cols = ['dcl', 'vtEnd', 'verify', 'keys', 'derive', 'joinEnabled', 'click', 'connect', 'connected', 'toFirst', 'first', 'frames30'];
    const table = ['| mode | ' + cols.join(' | ') + ' |', '|---|' + cols.map(() => '---:').join('|') + '|'];
    for (const mode of ['server_key', 'off']) {
      const rs = rows.filter((r) => r.mode === mode);
      table.push(`| ${mode} (median of ${rs.length}) | ${cols.map((c) => f0(median(rs.map((r) => r[c]).filter(Number.isFinite)))).join(' | ')} |`);
      const firsts = rs.map((r) => r.first);
      table.push(`| ${mode} first frame min–max | ${f0(Math.min(...firsts))}–${f0(Math.max(...firsts))} ms |`);
    }
    table.push(`| PBKDF2 600k alone | ${pb.map(f0).join(', ')} ms (median ${f0(median(pb))}) |`);
    console.log('\n## latency (ms from opening the join link)\n');
    console.log(table.join('\n'));
    return rows;
  } finally {
    await chrome.close();
  }
}

async function cpuRound(mode) {
  const chrome = await launchBrowser();
  const room = `cpu-${mode}-${rand()}`;
  await server.createRoom(room, mode);
  const ann = new User(server, log, { room, id: 'ann', admin: true });
  const bob = new User(server, log, { room, id: 'bob' });
  try {
    await Promise.all([ann.enter(chrome.browser), bob.enter(chrome.browser)]);
    await Promise.all([mediaFlows(ann, ['bob']), mediaFlows(bob, ['ann'])]);
    await sleep(SETTLE_S * 1000);
    const enc = async (u) =>
      u.page.evaluate(async () => {
        let fe = 0;
        const lim = new Set();
        const w = [];
        let fd = 0;
        for (const pc of window.__pcs) {
          if (pc.signalingState === 'closed') continue;
          (await pc.getStats()).forEach((s) => {
            if (s.type === 'outbound-rtp' && s.kind === 'video') {
              fe += s.framesEncoded ?? 0;
              if (s.qualityLimitationReason) lim.add(s.qualityLimitationReason);
              w.push(`${s.rid}:${s.frameWidth ?? 0}`);
            }
            if (s.type === 'inbound-rtp' && s.kind === 'video') fd += s.framesDecoded ?? 0;
          });
        }
        return { fe, fd, lim: [...lim].join('/'), w: w.sort().join(',') };
      });
    const s0 = [await enc(ann), await enc(bob)];
    const c0 = treeCpu(chrome.pid);
    const srv0 = treeCpu(server.pid);
    const m0 = machineBusy();
    const t0 = Date.now();
    await sleep(WINDOW_S * 1000);
    const c1 = treeCpu(chrome.pid);
    const srv1 = treeCpu(server.pid);
    const m1 = machineBusy();
    const secs = (Date.now() - t0) / 1000;
    const s1 = [await enc(ann), await enc(bob)];
    const chromium = cpuBetween(c0, c1);
    const kinds = cpuByKind(c0, c1);
    const srv = cpuBetween(srv0, srv1);
    const others = m1 - m0 - chromium - srv;
    const r = {
      mode,
      secs,
      cores: chromium / secs,
      server: srv / secs,
      others: others / secs,
      procs: c1.size,
      encoded: s1[0].fe - s0[0].fe + s1[1].fe - s0[1].fe,
      decoded: s1[0].fd - s0[0].fd + s1[1].fd - s0[1].fd,
      limitation: `${s1[0].lim}|${s1[1].lim}`,
      widths: s1[0].w,
      kinds: Object.fromEntries(Object.entries(kinds).map(([k, v]) => [k, v / secs])),
    };
    err(`  ${mode.padEnd(10)} Chromium ${r.cores.toFixed(3)} cores (${chromium.toFixed(2)} s CPU in ${secs.toFixed(1)} s, ${r.procs} processes), server ${r.server.toFixed(3)}, others ${r.others.toFixed(3)}; frames encoded ${r.encoded}, decoded ${r.decoded}; quality limitation ${r.limitation}; ann's layers ${r.widths}; by process kind (cores): ${Object.entries(r.kinds).map(([k, v]) => `${k} ${v.toFixed(3)}`).join(', ')}`);
    return r;
  } finally {
    await ann.close();
    await bob.close();
    await chrome.close();
    await server.auth('/room/endRoom', { room_id: room }).catch(() => {});
  }
}

async function cpu() {
  err(`bench cpu: ${ROUNDS} rounds per mode, alternating; window ${WINDOW_S} s after media flows + ${SETTLE_S} s`);
  const rows = [];
  for (let i = 0; i < ROUNDS; i++) {
    for (const mode of i % 2 ? ['off', 'server_key'] : ['server_key', 'off']) rows.push(await cpuRound(mode));
  }
  const e = rows.filter((r) => r.mode === 'server_key');
  const p = rows.filter((r) => r.mode === 'off');
  const pairs = [];
  for (let i = 0; i < ROUNDS; i++) pairs.push(e[i].cores / p[i].cores);
  console.log('\n## CPU of the Chromium process tree, two-party call (cores = CPU s per wall s)\n');
  console.log('| round | E2EE cores | plain cores | ratio | E2EE frames enc/dec | plain frames enc/dec | others (E2EE/plain) |');
  console.log('|---:|---:|---:|---:|---:|---:|---:|');
  for (let i = 0; i < ROUNDS; i++) {
    console.log(`| ${i + 1} | ${e[i].cores.toFixed(3)} | ${p[i].cores.toFixed(3)} | ${pairs[i].toFixed(3)} | ${e[i].encoded}/${e[i].decoded} | ${p[i].encoded}/${p[i].decoded} | ${e[i].others.toFixed(2)}/${p[i].others.toFixed(2)} |`);
  }
  const kinds = [...new Set(rows.flatMap((r) => Object.keys(r.kinds)))].sort();
  console.log('\nBy Chromium process kind (median cores):\n');
  console.log('| process kind | E2EE | plain | difference |');
  console.log('|---|---:|---:|---:|');
  for (const k of kinds) {
    const a = median(e.map((r) => r.kinds[k] ?? 0));
    const b = median(p.map((r) => r.kinds[k] ?? 0));
    console.log(`| ${k} | ${a.toFixed(3)} | ${b.toFixed(3)} | ${(a - b >= 0 ? '+' : '') + (a - b).toFixed(3)} |`);
  }
  const me = median(e.map((r) => r.cores));
  const mp = median(p.map((r) => r.cores));
  console.log(`\nmedian E2EE ${me.toFixed(3)} cores, median plain ${mp.toFixed(3)} cores → ratio of medians ${(me / mp).toFixed(3)} (${((me / mp - 1) * 100).toFixed(1)}%), median of per-round ratios ${median(pairs).toFixed(3)}`);
  return rows;
}

/** Bob's audio from ann, as getStats says: concealed samples and the sample rate. */
const audioFromAnn = (page) =>
  page.evaluate(async () => {
    const a = document.querySelector('[data-testid="meeting"] audio[data-identity="ann"]');
    const t = a && a.srcObject ? a.srcObject.getAudioTracks()[0] : null;
    for (const pc of window.__pcs || []) {
      if (!t || pc.connectionState === 'closed') continue;
      const rep = await pc.getStats().catch(() => null);
      let out = null;
      rep?.forEach((s) => {
        if (s.type === 'inbound-rtp' && s.trackIdentifier === t.id) out = { concealed: s.concealedSamples ?? 0, total: s.totalSamplesReceived ?? 0 };
      });
      if (out) return out;
    }
    return { concealed: 0, total: 0 };
  });

async function rekeyRun(browser, mode) {
  const room = `rk-${mode}-${rand()}`;
  await server.createRoom(room, mode);
  const key = mode === 'self_insert' ? `bench ${rand()}` : null;
  const us = ['ann', 'bob', 'cat'].map((id) => new User(server, log, { room, id, admin: id === 'ann', key }));
  const [ann, bob, cat] = us;
  try {
    for (const u of us) await u.enter(browser);
    await mediaFlows(bob, ['ann', 'cat']);
    await sleep(SPAN_S * 1000);
    const gen0 = await bob.page.getAttribute(tid('meeting'), 'data-key-generation');
    await bob.page.evaluate((ms) => {
      window.__fr = [];
      const t0 = performance.now();
      const poll = setInterval(() => {
        const v = document.querySelector('[data-testid="remote-tile"][data-identity="ann"] video');
        const g = document.querySelector('[data-testid="meeting"]')?.dataset.keyGeneration ?? '';
        window.__fr.push([performance.now(), v ? v.webkitDecodedFrameCount : -1, g]);
        if (performance.now() - t0 > ms) clearInterval(poll);
      }, 5);
    }, (2 * SPAN_S + 1) * 1000);
    const a0 = await audioFromAnn(bob.page);
    await sleep(SPAN_S * 1000);
    const a1 = await audioFromAnn(bob.page);
    const tRemove = await bob.page.evaluate(() => performance.now());
    const r = await fetch(`${server.base}/api/removeParticipant`, { method: 'POST', headers: { authorization: `Bearer ${ann.token}`, 'content-type': 'application/json' }, body: JSON.stringify({ user_id: 'cat' }) });
    if (!r.ok) throw new Error(`removeParticipant: HTTP ${r.status}`);
    await sleep(SPAN_S * 1000);
    const a2 = await audioFromAnn(bob.page);
    await sleep(1200);
    const fr = await bob.page.evaluate(() => window.__fr);
    const window_ = (from, to) => {
      const xs = fr.filter(([t, n]) => t >= from && t < to && n >= 0);
      let gap = 0;
      let last = xs[0]?.[0] ?? from;
      for (let i = 1; i < xs.length; i++) {
        if (xs[i][1] > xs[i - 1][1]) {
          gap = Math.max(gap, xs[i][0] - last);
          last = xs[i][0];
        }
      }
      return { frames: xs.length ? xs[xs.length - 1][1] - xs[0][1] : 0, gap };
    };
    const before = window_(tRemove - SPAN_S * 1000, tRemove);
    const after = window_(tRemove, tRemove + SPAN_S * 1000);
    const switched = fr.find(([t, , g]) => t >= tRemove && g !== gen0);
    const rate = 48; // samples per ms (Opus at 48 kHz)
    const row = {
      mode,
      before,
      after,
      concealedBefore: (a1.concealed - a0.concealed) / rate,
      concealedAfter: (a2.concealed - a1.concealed) / rate,
      switchMs: switched ? switched[0] - tRemove : null,
      generations: `${gen0}→${fr[fr.length - 1]?.[2]}`,
    };
    err(`  ${mode.padEnd(11)} frames ${before.frames} → ${after.frames}, longest gap ${f0(before.gap)} → ${f0(after.gap)} ms, audio concealed ${f0(row.concealedBefore)} → ${f0(row.concealedAfter)} ms; key ${row.generations}${row.switchMs === null ? '' : ` (switched ${f0(row.switchMs)} ms after the removal)`}`);
    return row;
  } finally {
    for (const u of us) await u.close();
    await server.auth('/room/endRoom', { room_id: room }).catch(() => {});
  }
}

async function rekey() {
  err(`bench rekey: ${RUNS} runs per mode, alternating; ${SPAN_S} s before and after the removal`);
  const chrome = await launchBrowser();
  const rows = [];
  try {
    for (let i = 0; i < RUNS; i++) {
      for (const mode of i % 2 ? ['self_insert', 'server_key'] : ['server_key', 'self_insert']) rows.push(await rekeyRun(chrome.browser, mode));
    }
  } finally {
    await chrome.close();
  }
  console.log(`\n## A participant is removed: what bob receives from ann in the ${SPAN_S} s before and after (medians of ${RUNS} runs)\n`);
  console.log('| room | key at the removal | video frames before | after | longest gap before (ms) | after (ms) | audio concealed before (ms) | after (ms) |');
  console.log('|---|---|---:|---:|---:|---:|---:|---:|');
  for (const mode of ['server_key', 'self_insert']) {
    const rs = rows.filter((r) => r.mode === mode);
    const m = (f) => f0(median(rs.map(f)));
    console.log(`| ${mode} | ${mode === 'server_key' ? `new epoch (switch after ${m((r) => r.switchMs ?? NaN)} ms)` : 'unchanged'} | ${m((r) => r.before.frames)} | ${m((r) => r.after.frames)} | ${m((r) => r.before.gap)} | ${m((r) => r.after.gap)} | ${m((r) => r.concealedBefore)} | ${m((r) => r.concealedAfter)} |`);
  }
  const lost = (rs) => median(rs.map((r) => r.before.frames - r.after.frames));
  console.log(`\nmedian frames lost at the removal (before − after): server key ${f0(lost(rows.filter((r) => r.mode === 'server_key')))}, self-insert ${f0(lost(rows.filter((r) => r.mode === 'self_insert')))}`);
  return rows;
}

try {
  if (only.has('latency')) await latency();
  if (only.has('cpu')) await cpu();
  if (only.has('rekey')) await rekey();
} catch (e) {
  err(`bench failed: ${e.stack}\n--- driver/page log ---\n${log.excerpt(20, 80)}\n--- server output (tail) ---\n${server.text.split('\n').slice(-80).join('\n')}`);
  process.exitCode = 1;
} finally {
  await server.stop();
}
