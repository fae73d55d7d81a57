// Per-test log: every line is kept in memory (and, given a directory, appended to a file),
// timestamped from the start of the test; printed on failure. Tokens never reach it.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/**
 * Log lines without tokens: access_token=<jwt>, join_request=<N chars>, Bearer <jwt>, and any
 * other JWT-shaped text.
 */
export function redact(text) {
  return String(text)
    .replace(/access_token=(?!%3Credacted|<jwt>)[A-Za-z0-9._~%-]+/g, 'access_token=<jwt>')
    .replace(/join_request=[A-Za-z0-9._~%+/=-]+/g, (m) => `join_request=<${m.length - 13} chars>`)
    .replace(/Bearer\s+[A-Za-z0-9._~+/=-]+/g, 'Bearer <jwt>')
    .replace(/eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]+/g, '<jwt>');
}

export class TestLog {
  /**
   * `dir`: where `<name>.log` is written (null: memory only). `maxLine`: longer lines are cut.
   * `head`/`tail`: what `excerpt()` prints by default.
   */
  constructor(dir, name, { maxLine = Infinity, head = 80, tail = 240 } = {}) {
    this.name = name;
    this.lines = [];
    this.start = Date.now();
    this.maxLine = maxLine;
    this.head = head;
    this.tail = tail;
    this.file = dir ? path.join(dir, `${name.replace(/[^A-Za-z0-9_.-]+/g, '_')}.log`) : null;
    if (this.file) fs.writeFileSync(this.file, '');
  }

  add(source, text) {
    const ms = String(Date.now() - this.start).padStart(6, ' ');
    let s = redact(text);
    if (s.length > this.maxLine) s = `${s.slice(0, this.maxLine)}…`;
    const line = `${ms} ms [${source}] ${s}`;
    this.lines.push(line);
    if (!this.file) return;
    try {
      fs.appendFileSync(this.file, `${line}\n`);
    } catch {
      // the log directory may already be gone during teardown
    }
  }

  /** Appends a long text (e.g. SDP) to the side file `<test>.<suffix>.log`; returns its path. */
  attach(suffix, title, text) {
    const file = this.file.replace(/\.log$/, `.${suffix}.log`);
    const ms = String(Date.now() - this.start).padStart(6, ' ');
    fs.appendFileSync(file, `===== ${ms} ms ${title}\n${redact(text).trimEnd()}\n\n`);
    return file;
  }

  /** The first `head` and the last `tail` lines, for printing on failure. */
  excerpt(head = this.head, tail = this.tail) {
    if (this.lines.length <= head + tail) return this.lines.join('\n');
    const skipped = this.lines.length - head - tail;
    const where = this.file ? ` (all of them are in ${this.file})` : '';
    return [...this.lines.slice(0, head), `… ${skipped} lines left out here${where} …`, ...this.lines.slice(-tail)].join('\n');
  }
}

/**
 * A work directory for a suite: `<tmp>/<prefix>XXXX` with data/ (the server's) and logs/ (the
 * per-test logs). `finish()` removes it, or, once `keepLogs` is set (a test failed, or the
 * suite's KEEP variable), removes only data/ and says where the logs are.
 */
export class WorkDir {
  constructor(prefix, { keepLogs = false, label = prefix } = {}) {
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
    this.logDir = path.join(this.dir, 'logs');
    this.dataDir = path.join(this.dir, 'data');
    fs.mkdirSync(this.logDir);
    fs.mkdirSync(this.dataDir);
    this.keepLogs = keepLogs;
    this.label = label;
  }

  finish(note = '') {
    if (this.keepLogs) {
      fs.rmSync(this.dataDir, { recursive: true, force: true });
      process.stderr.write(`${this.label}: per-test logs kept in ${this.logDir}${note}\n`);
    } else {
      fs.rmSync(this.dir, { recursive: true, force: true });
    }
  }
}
