// Child processes of a test: output kept (for failure reports and for searching), waited for
// until ready, stopped by their own pid (SIGTERM, then SIGKILL after a grace period). Every pid
// started here is also killed if the test process exits without its after() hooks (the runner
// interrupted); nothing else is ever signalled.

import { spawn } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';

const children = new Set();
let exitHook = false;

function track(pid) {
  children.add(pid);
  if (exitHook) return;
  exitHook = true;
  process.once('exit', () => {
    for (const p of children) {
      try {
        process.kill(p, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  });
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.once(sig, () => process.exit(130));
}

/** Whether a process with this pid exists (signal 0). */
export function alive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Tracks a pid started elsewhere (e.g. a browser server), so that an interrupted run kills it. */
export function trackPid(pid) {
  if (pid) track(pid);
  return () => children.delete(pid);
}

export class Child {
  /**
   * @param {object} o
   * @param {string} o.label  names the process in errors
   * @param {string} o.cmd
   * @param {string[]} [o.args]
   * @param {object} [o.env]  the whole environment of the child (default: ours)
   * @param {string} [o.cwd]
   * @param {number} [o.keepBytes]  how much of the output text is kept (the latest)
   * @param {boolean} [o.keepRaw]  also keep every output byte (`output()`)
   * @param {(text: string) => string} [o.filter]  applied to output before it is kept
   * @param {number} [o.graceMs]  SIGTERM → SIGKILL delay of `stop()`
   */
  constructor({ label, cmd, args = [], env = process.env, cwd, keepBytes = Infinity, keepRaw = false, filter = (s) => s, graceMs = 10_000 }) {
    Object.assign(this, { label, cmd, args, env, cwd, keepBytes, keepRaw, filter, graceMs });
    this.text = ''; // the output, without ANSI colours (the last keepBytes of it)
    this.total = 0; // characters of output ever kept
    this.chunks = [];
    this.child = null;
    this.exited = null;
  }

  start() {
    this.child = spawn(this.cmd, this.args, { env: this.env, cwd: this.cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    const { pid } = this.child;
    if (pid) track(pid);
    this.exited = new Promise((resolve) => {
      this.child.once('exit', (code, signal) => {
        children.delete(pid);
        resolve({ code, signal });
      });
      // A program that cannot be started (ENOENT) may never emit 'exit'.
      this.child.once('error', (e) => {
        this.spawnError = e;
        this.keep(`\nspawn error: ${e.message}\n`);
        if (!pid) resolve({ code: null, signal: null, error: e.message });
      });
    });
    this.child.stdout.on('data', (c) => this.keep(c));
    this.child.stderr.on('data', (c) => this.keep(c));
    return this;
  }

  keep(chunk) {
    if (this.keepRaw) this.chunks.push(Buffer.from(chunk));
    // eslint-disable-next-line no-control-regex
    const text = this.filter(chunk.toString().replace(/\x1b\[[0-9;]*m/g, '')); // no ANSI colours in reports
    this.total += text.length;
    this.text += text;
    if (this.text.length > this.keepBytes) this.text = this.text.slice(-this.keepBytes);
  }

  /** A position in the output, for `since`. */
  mark() {
    return this.total;
  }

  /** Output written after `mark()` returned `pos` (as much as is still kept). */
  since(pos) {
    const n = this.total - pos;
    return n <= 0 ? '' : this.text.slice(-Math.min(n, this.text.length));
  }

  /** Every output byte so far (with `keepRaw`). */
  output() {
    return Buffer.concat(this.chunks);
  }

  get pid() {
    return this.child?.pid;
  }

  get running() {
    return !!this.child?.pid && !this.spawnError && this.child.exitCode === null && this.child.signalCode === null;
  }

  /**
   * Waits until `probe()` resolves true (anything else, or a throw, is described as the last
   * answer); fails at once if the process exits, and after `ms`.
   */
  async ready(ms, what, probe) {
    const end = Date.now() + ms;
    let last = 'no answer';
    while (Date.now() < end) {
      if (!this.running) throw new Error(`${this.label} exited early (${JSON.stringify(await this.exited)}). Output:\n${this.text}`);
      try {
        const r = await probe();
        if (r === true) return;
        last = typeof r === 'string' ? r : 'not ready';
      } catch (e) {
        last = e.message;
      }
      await sleep(100);
    }
    throw new Error(`${this.label}: ${what} not ready within ${ms} ms (last: ${last}). Output:\n${this.text}`);
  }

  /** SIGTERM to the child's own pid, SIGKILL after `graceMs`. */
  async stop(graceMs = this.graceMs) {
    if (!this.running) return;
    process.kill(this.child.pid, 'SIGTERM');
    const done = await Promise.race([this.exited, sleep(graceMs, null, { ref: false })]);
    if (done === null && this.running) {
      process.kill(this.child.pid, 'SIGKILL');
      await this.exited;
    }
  }
}
