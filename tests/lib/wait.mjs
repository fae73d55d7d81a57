// Waiting, always bounded: a deadline shared by the steps of a scenario, polling until a
// condition holds, and a bound on one promise.

import { setTimeout as sleep } from 'node:timers/promises';

export { sleep };

export class Deadline {
  /** `what` names the bound in the error of a wait that runs past it. */
  constructor(ms, what = `${ms} ms`) {
    this.end = Date.now() + ms;
    this.what = what;
  }

  left() {
    return this.end - Date.now();
  }
}

/**
 * Polls `probe` (sync or async) every `intervalMs` until `ok(value)` holds and returns that value;
 * past `deadline` (a Deadline, or a number of ms from now) throws with `describe(value)` of the
 * last value.
 */
export async function waitFor(deadline, what, probe, ok = (v) => !!v, describe = (v) => JSON.stringify(v), intervalMs = 250) {
  const d = typeof deadline === 'number' ? new Deadline(deadline, `after ${deadline} ms`) : deadline;
  let last;
  for (;;) {
    last = await probe();
    if (ok(last)) return last;
    if (d.left() <= 0) throw new Error(`timed out (${d.what}) waiting for ${what}; last value: ${describe(last)}`);
    await sleep(Math.min(intervalMs, Math.max(10, d.left())));
  }
}

/** `promise`, or a rejection after `ms` naming `what`. */
export function within(ms, promise, what = 'operation') {
  let timer;
  return Promise.race([
    promise,
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}
