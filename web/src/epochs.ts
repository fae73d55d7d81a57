// The key epochs this client holds in one session. Pure state, unit-tested in Node.
//
// Server-generated-key rooms move to a new epoch whenever someone joins or leaves (the server
// sends it to the members in the room). A switch is two steps so that nobody loses frames:
// every member first *installs* the new epoch (it can decrypt with it), and only after
// SWITCH_DELAY_MS starts *sending* with it; by then every member has installed it. Frames and
// messages sealed under the previous few epochs still open (in flight at the switch), older ones
// are wiped. A passphrase room has one epoch, generation 0, for the whole session.

import type { SessionKeys } from './e2ee';

/** How long members wait between installing a pushed epoch and sending with it. */
export const SWITCH_DELAY_MS = 1000;
/** Epochs kept below the current one, for what was sent just before a switch. */
export const KEEP_PREVIOUS = 3;
/** LiveKit's key ring: generation g uses slot g mod KEYRING_SIZE (its trailer carries the slot). */
export const KEYRING_SIZE = 16;

export function keySlot(generation: number): number {
  return generation % KEYRING_SIZE;
}

export class EpochRing {
  private readonly held = new Map<number, SessionKeys>();
  private cur: SessionKeys | null = null;

  /** The epoch we send with (seal, publish key checks, show the code of). */
  get current(): SessionKeys | null {
    return this.cur;
  }

  /** The highest generation we hold (installed, perhaps not yet in use); -1 for none. */
  get newest(): number {
    let n = -1;
    for (const g of this.held.keys()) n = Math.max(n, g);
    return n;
  }

  get(generation: number): SessionKeys | undefined {
    return this.held.get(generation);
  }

  /** Holds a newly received epoch. False (and the keys are not kept) unless it is newer than all held. */
  add(keys: SessionKeys): boolean {
    if (keys.generation <= this.newest) return false;
    this.held.set(keys.generation, keys);
    return true;
  }

  /**
   * Starts using `generation` (held, and newer than the current one); wipes epochs more than
   * KEEP_PREVIOUS below it. Returns the keys now in use, or null when nothing changed.
   */
  use(generation: number): SessionKeys | null {
    const k = this.held.get(generation);
    if (!k || (this.cur && generation <= this.cur.generation)) return null;
    this.cur = k;
    for (const [g, old] of this.held) {
      if (g < generation - KEEP_PREVIOUS) {
        old.wipe();
        this.held.delete(g);
      }
    }
    return k;
  }

  /** Forgets everything (the end of the session). */
  clear(): void {
    for (const k of this.held.values()) k.wipe();
    this.held.clear();
    this.cur = null;
  }
}
