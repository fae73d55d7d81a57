// The frame of the web-client test files: one server of the normal binary and one Chromium per
// file, every scenario bounded and reported, and the checks several scenarios share.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

import { TestLog, waitFor, within } from '@enclave-tests/lib';

import { User, launchBrowser, mediaFlows } from './browser.mjs';
import { Enclave } from './server.mjs';

export const SCENARIO_MS = 60_000; // hard bound of every scenario (unless it says otherwise)
export const KEEP = process.env.ENCLAVE_WEBCLIENT_KEEP === '1'; // keep data dirs and the tap file
export const rand = () => randomBytes(4).toString('hex');

/**
 * Starts the normal server (ENCLAVE_BIN) and Chromium before the file's scenarios (then calls
 * `started(ctx)`, in the same hook) and stops them after. Returns `ctx`: `ctx.server`, `ctx.chrome` ({ browser, pid, version, close }) once
 * started; `ctx.servers`, every server whose output a failure report shows and that is stopped
 * after the file (a file may add its own); and `ctx.scenario(name, fn, {todo, ms})`: a test
 * bounded to `ms` in which `fn({ log, user })` runs, where `user(env, opts)` makes a User whose
 * browser context is closed at the end. On failure the page consoles (and the driver's notes)
 * and each server's output during the scenario are printed.
 */
export function webclientSuite(label, started = () => {}) {
  const ctx = { server: null, chrome: null, servers: [] };
  before(async () => {
    ctx.server = await new Enclave({ label: 'enclave' }).start();
    ctx.servers.push(ctx.server);
    ctx.chrome = await launchBrowser();
    process.stderr.write(`${label}: enclave on ${ctx.server.base} (pid ${ctx.server.pid}), Chromium ${ctx.chrome.version} (pid ${ctx.chrome.pid})\n`);
    started(ctx);
  });
  after(async () => {
    await ctx.chrome?.close();
    for (const s of ctx.servers) await s.stop({ keep: KEEP });
    if (KEEP) process.stderr.write(`${label}: kept ${ctx.servers.map((s) => s.workDir).join(', ')}\n`);
  });
  ctx.scenario = (name, fn, { todo, ms = SCENARIO_MS } = {}) =>
    test(name, { timeout: ms + 30_000, todo }, async () => {
      const log = new TestLog(null, name, { maxLine: 2000, head: 60, tail: 300 });
      const users = [];
      const marks = ctx.servers.map((s) => [s, s.mark()]);
      const user = (env, o) => {
        const u = new User(env, log, o);
        users.push(u);
        return u;
      };
      try {
        await within(ms, fn({ log, user }), `scenario "${name}"`);
      } catch (e) {
        if (todo) throw e; // a known bug: its own stderr line says what happened
        let report = `\n===== FAILED: ${name}\n${e.stack}\n----- page consoles and driver notes -----\n${log.excerpt()}\n`;
        for (const [s, m] of marks) {
          const out = s.since(m).split('\n');
          report += `----- ${s.label} output during the scenario (last 200 of ${out.length} lines) -----\n${out.slice(-200).join('\n')}\n`;
        }
        process.stderr.write(report);
        throw e;
      } finally {
        await Promise.all(users.map((u) => u.close()));
      }
    });
  return ctx;
}

// ENCLAVE_SCREENSHOTS=<dir>: the scenarios that show a meeting tool save a screenshot of it there
// (docs/screenshots holds the ones the README links).
const SHOTS = process.env.ENCLAVE_SCREENSHOTS ?? '';
export async function shot(u, name) {
  if (!SHOTS) return;
  fs.mkdirSync(SHOTS, { recursive: true });
  await u.page.screenshot({ path: path.join(SHOTS, `${name}.png`) });
}

/** Each user decodes every other's video and receives their audio, and both keep rising. */
export async function allSeeAndHear(users, log) {
  await Promise.all(
    users.map(async (u) => {
      const others = users.filter((o) => o !== u).map((o) => o.id);
      const { a, b } = await mediaFlows(u, others);
      for (const o of others) {
        assert.ok(b.video[o].framesDecoded > a.video[o].framesDecoded, `${u.id}: ${o}'s video framesDecoded rises (${a.video[o].framesDecoded} → ${b.video[o].framesDecoded})`);
        assert.ok(b.audio[o].packetsReceived > a.audio[o].packetsReceived, `${u.id}: ${o}'s audio packets rise (${a.audio[o].packetsReceived} → ${b.audio[o].packetsReceived})`);
        log.add('driver', `${u.id} ← ${o}: video frames ${a.video[o].framesDecoded} → ${b.video[o].framesDecoded}, audio packets ${a.audio[o].packetsReceived} → ${b.audio[o].packetsReceived}`);
      }
    }),
  );
}

/** Every user says something unique; every other user sees it as a chat-message from them. */
export async function allChat(users, tag) {
  const said = new Map();
  for (const u of users) {
    const text = `hello from ${u.id} ${tag}`;
    said.set(u.id, text);
    await u.say(text);
  }
  await Promise.all(users.flatMap((u) => users.filter((o) => o !== u).map((o) => u.sees(o.id, said.get(o.id)))));
}

export async function waitStatus(u, want, ms = 5000) {
  return waitFor(ms, `${u.id}'s e2ee-status = ${want}`, () => u.status(), (s) => s === want, (s) => s);
}
