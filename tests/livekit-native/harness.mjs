// Helpers of the native suite (native.test.mjs, recording.test.mjs; tests/network uses them too):
// polling at the bots' pace and bounded runs of external tools. The server, ports, tokens, logs
// and waiting come from @enclave-tests/lib; the bots from bots.mjs, their scenario frame from
// scenario.mjs.

import { spawn } from 'node:child_process';

import { waitFor as waitForEvery } from '@enclave-tests/lib';

/** The lib's waitFor, polling every 100 ms unless told (the bots' counters move fast). */
export function waitFor(deadline, what, probe, ok, describe = (v) => JSON.stringify(v), intervalMs = 100) {
  return waitForEvery(deadline, what, probe, ok, describe, intervalMs);
}

/**
 * Runs `cmd args` and collects its output. After `timeoutMs` the child (its own pid, nothing
 * else) gets SIGKILL and the result says `timedOut`. Resolves `{code, signal, stdout (Buffer),
 * stderr (string), timedOut, ms}`; rejects only when the program cannot be started at all
 * (e.g. ENOENT: not installed).
 */
export function runTool(cmd, args, { timeoutMs = 30_000, maxStdout = 256 * 1024 * 1024 } = {}) {
  return new Promise((resolve, reject) => {
    const t0 = Date.now();
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const out = [];
    let outLen = 0;
    let err = '';
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      if (child.exitCode === null && child.signalCode === null) process.kill(child.pid, 'SIGKILL');
    }, timeoutMs);
    child.stdout.on('data', (c) => {
      outLen += c.length;
      if (outLen <= maxStdout) out.push(c);
    });
    child.stderr.on('data', (c) => {
      err += c.toString();
      if (err.length > 256 * 1024) err = err.slice(-256 * 1024);
    });
    child.once('error', (e) => {
      clearTimeout(timer);
      reject(new Error(`cannot run ${cmd}: ${e.message}`));
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout: Buffer.concat(out), stderr: err, timedOut, ms: Date.now() - t0 });
    });
  });
}
