// The frame of a bot scenario, shared by native.test.mjs and recording.test.mjs.

import fs from 'node:fs';

import { Deadline, TestLog } from '@enclave-tests/lib';

import { Bot, setFfiLog } from './bots.mjs';

/**
 * `scenario(name, body, ms)` runs `body({log, bot, deadline, serverMark})` with a hard bound of
 * `ms`; bots made through `bot(name)` connect to `current().server` (a launchEnclave server) with
 * its LiveKit tokens and are always closed afterwards; the SDK's log records go to the per-test
 * log in `current().work.logDir` (a WorkDir), and the server's output during the test is written beside it. On failure each
 * bot's final state (`dumpBot(b, log)`), the log (`excerpt` = [head, tail]), the last
 * `serverTail` characters of the server's output and what `watch()`, called at the start, returns
 * when called again (e.g. another program's log of the test) are printed, a FAILED line
 * goes to `summary`, and the logs are kept. A body that returns a string passes with
 * `<name>: PASS (<s>) — <string>` in `summary`.
 */
export function botScenarios({ current, summary, title, serverTail = 24 * 1024, excerpt = [], dumpBot = async () => {}, watch = () => () => '' }) {
  return async function scenario(name, body, ms) {
    const { server: srv, work } = current();
    const tokenFor = (identity, roomId) => srv.token(identity, roomId);
    const log = new TestLog(work.logDir, name);
    setFfiLog(log);
    const serverMark = srv.mark();
    const extraReport = watch();
    const bots = [];
    const deadline = new Deadline(ms, `scenario "${name}" bound of ${ms / 1000} s`);
    const bot = (who) => {
      const b = new Bot(who, log, { wsUrl: srv.wsUrl, tokenFor });
      bots.push(b);
      return b;
    };
    const t0 = Date.now();
    let timer;
    const bound = new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`scenario "${name}" did not finish within ${ms / 1000} s`)), ms + 2_000);
    });
    try {
      const line = await Promise.race([body({ log, bot, deadline, serverMark }), bound]);
      if (typeof line === 'string') summary.push(`${name}: PASS (${((Date.now() - t0) / 1000).toFixed(1)} s) — ${line}`);
    } catch (e) {
      work.keepLogs = true;
      for (const b of bots) await dumpBot(b, log);
      summary.push(`${name}: FAILED: ${e.message.split('\n')[0]}`);
      process.stderr.write(
        `\n===== ${title} "${name}" failed: ${e.stack ?? e.message}\n` +
          `===== log (${log.file}):\n${log.excerpt(...excerpt)}\n` +
          `===== enclave output during the test (last ${serverTail / 1024} KiB):\n${srv.since(serverMark).slice(-serverTail)}\n` +
          `${extraReport()}===== end\n`,
      );
      throw e;
    } finally {
      clearTimeout(timer);
      for (const b of bots) await b.close();
      fs.writeFileSync(log.file.replace(/\.log$/, '.server.log'), srv.since(serverMark));
      setFfiLog(null);
    }
  };
}
