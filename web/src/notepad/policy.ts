// The shared notepad's sending rules, kept apart from Yjs so they are plain to test: how local
// edits are batched into appends, and who compacts the log.
//
// Typing makes one Yjs update per keystroke. Sent one by one they would cost a request and a
// stored log entry each (and meet the server's 50 updates per second per participant); merged
// over ~50 ms they stay small and few. One append is in flight at a time, so our updates reach
// the server in the order we made them (Yjs does not need it, but a refusal then names a
// definite tail of our edits).

/** How long local edits gather before they go out as one update. */
export const BATCH_MS = 50;
/**
 * The largest merged update sent as one append. A body is at most 64 KiB of base64 (docs/
 * content.md); sealed bytes grow by 29 and base64 by a third: 64 KiB · 3/4 = 48 KiB, less room.
 */
export const MAX_UPDATE_BYTES = 46 * 1024;
/** Updates beyond the last snapshot after which a writer compacts the log. */
export const COMPACT_AFTER = 200;

export interface BatcherOptions {
  delayMs?: number;
  maxBytes?: number;
  /** Merges updates into one (Y.mergeUpdates). */
  merge: (updates: Uint8Array[]) => Uint8Array;
  /** Sends one merged update; rejects when the server refused it. */
  send: (update: Uint8Array) => Promise<unknown>;
  /** A send failed (`update`: what was lost), or one update alone is too large to send. */
  failed: (err: unknown, update: Uint8Array) => void;
  setTimer?: (f: () => void, ms: number) => unknown;
  clearTimer?: (t: unknown) => void;
}

/** An update larger than one append may carry. */
export class UpdateTooLarge extends Error {
  constructor(readonly bytes: number, readonly max: number) {
    super(`the change is ${Math.ceil(bytes / 1024)} KiB, more than the ${Math.floor(max / 1024)} KiB one update may carry`);
    this.name = 'UpdateTooLarge';
  }
}

/** Gathers local updates for `delayMs`, merges them and sends them, one send at a time. */
export class UpdateBatcher {
  private queued: Uint8Array[] = [];
  private timer: unknown = null;
  private sending: Promise<void> | null = null;
  private stopped = false;
  private readonly delay: number;
  private readonly max: number;
  private readonly setT: (f: () => void, ms: number) => unknown;
  private readonly clearT: (t: unknown) => void;

  constructor(private readonly o: BatcherOptions) {
    this.delay = o.delayMs ?? BATCH_MS;
    this.max = o.maxBytes ?? MAX_UPDATE_BYTES;
    this.setT = o.setTimer ?? ((f, ms) => setTimeout(f, ms));
    this.clearT = o.clearTimer ?? ((t) => clearTimeout(t as ReturnType<typeof setTimeout>));
  }

  /** Nothing waits to be sent and nothing is in flight. */
  get idle(): boolean {
    return this.queued.length === 0 && this.sending === null;
  }

  push(update: Uint8Array): void {
    if (this.stopped) return;
    this.queued.push(update);
    if (this.timer === null && this.sending === null) this.timer = this.setT(() => void this.flush(), this.delay);
  }

  /** Sends what is queued now (after the send in flight); resolves when all of it went. */
  async flush(): Promise<void> {
    if (this.timer !== null) {
      this.clearT(this.timer);
      this.timer = null;
    }
    while (this.sending) await this.sending;
    if (this.stopped || this.queued.length === 0) return;
    const batch = this.queued;
    this.queued = [];
    this.sending = this.sendAll(batch);
    try {
      await this.sending;
    } finally {
      this.sending = null;
    }
    // What was typed while that was in flight goes next, after its own delay.
    if (this.queued.length > 0 && this.timer === null && !this.stopped) this.timer = this.setT(() => void this.flush(), this.delay);
  }

  /** Drops what is queued and sends nothing more. */
  stop(): void {
    this.stopped = true;
    this.queued = [];
    if (this.timer !== null) this.clearT(this.timer);
    this.timer = null;
  }

  private async sendAll(batch: Uint8Array[]): Promise<void> {
    for (const group of groupBySize(batch, this.max)) {
      if (this.stopped) return;
      const merged = group.length === 1 ? group[0] : this.o.merge(group);
      if (merged.length > this.max) {
        this.o.failed(new UpdateTooLarge(merged.length, this.max), merged);
        continue;
      }
      try {
        await this.o.send(merged);
      } catch (e) {
        this.o.failed(e, merged);
      }
    }
  }
}

/**
 * Splits `updates` (in order) into runs whose summed size stays within `max`; an update larger
 * than `max` is a run of its own. A merged update is about as large as its parts together (less
 * what later edits delete), so a run merges to at most `max`.
 */
export function groupBySize(updates: Uint8Array[], max: number): Uint8Array[][] {
  const out: Uint8Array[][] = [];
  let run: Uint8Array[] = [];
  let size = 0;
  for (const u of updates) {
    if (run.length > 0 && size + u.length > max) {
      out.push(run);
      run = [];
      size = 0;
    }
    run.push(u);
    size += u.length;
  }
  if (run.length > 0) out.push(run);
  return out;
}

export interface Present {
  identity: string;
  isAdmin: boolean;
}

/**
 * Whether we are the one who compacts: the lowest identity among the admins present (admins
 * may always write), or, with no admin present, among the writers present (those whose updates
 * we applied, and we ourselves when we may write). One compactor at a time keeps two
 * snapshots from racing; were two to send one anyway, both are the full state and either does.
 */
export function isCompactor(o: { me: string; meAdmin: boolean; meWriter: boolean; present: Present[]; writers: ReadonlySet<string> }): boolean {
  const admins = o.present.filter((p) => p.isAdmin).map((p) => p.identity);
  if (o.meAdmin) admins.push(o.me);
  if (admins.length > 0) return o.meAdmin && lowest(admins) === o.me;
  if (!o.meWriter) return false;
  const writers = o.present.filter((p) => o.writers.has(p.identity)).map((p) => p.identity);
  writers.push(o.me);
  return lowest(writers) === o.me;
}

/** Whether to compact now: the log grew past `threshold` since the last snapshot. */
export function shouldCompact(o: { sinceSnapshot: number; threshold?: number; compactor: boolean; busy: boolean }): boolean {
  return o.compactor && !o.busy && o.sinceSnapshot >= (o.threshold ?? COMPACT_AFTER);
}

function lowest(ids: string[]): string {
  return ids.reduce((a, b) => (b < a ? b : a));
}
