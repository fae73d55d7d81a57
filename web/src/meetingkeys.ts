// The keys of one meeting: the epochs this page holds, the LiveKit key provider they feed, and
// the rules for moving from one epoch to the next (see epochs.ts and docs/e2ee.md, guarantee
// 11). The meeting asks it to seal and open data envelopes and tells it what the server says;
// it tells the meeting when the key in use changed.

import { EnvelopeError, SessionKeys, envelopeGeneration } from './e2ee';
import { EpochRing, SWITCH_DELAY_MS } from './epochs';
import type { EpochKeyProvider } from './keyprovider';
import type { KeyStatus } from './keystatus';

export interface MeetingKeysOptions {
  sessionId: string;
  /** A server-generated-key room: epochs move on; otherwise one key (a passphrase). */
  serverKey: boolean;
  /** The keys the page joined with (verifyToken's epoch, or the passphrase's). */
  initial: SessionKeys;
  provider: EpochKeyProvider;
  keyStatus: KeyStatus;
  /** The room's current epoch from the server (`/api/e2eeKey`). */
  fetchCurrent: () => Promise<{ generation: number; secret: string }>;
  /** Runs `fn` after `ms` unless the meeting has ended by then. */
  later: (ms: number, fn: () => void) => void;
  ended: () => boolean;
  /** The key in use changed (a new code to show, a new key check to publish). */
  onSwitched: (keys: SessionKeys) => void;
}

export class MeetingKeys {
  private readonly ring = new EpochRing();
  private fetching: Promise<void> | null = null;

  constructor(private readonly o: MeetingKeysOptions) {
    this.ring.add(o.initial);
    this.ring.use(o.initial.generation);
  }

  /** The keys we seal and send with. */
  get current(): SessionKeys {
    return this.ring.current ?? this.o.initial;
  }

  get serverKey(): boolean {
    return this.o.serverKey;
  }

  /** Gives the provider the key we joined with, ready to send with. */
  async start(): Promise<void> {
    const buf = this.o.initial.mediaKeyBuffer();
    try {
      await this.o.provider.install(buf, this.o.initial.generation, true);
    } finally {
      new Uint8Array(buf).fill(0);
    }
  }

  /** Seals a data message from `sender` (or an AAD sender such as a private message's). */
  seal(sender: string, plaintext: Uint8Array): Promise<Uint8Array<ArrayBuffer>> {
    return this.current.seal(sender, plaintext);
  }

  /**
   * Opens an envelope with the epoch it names: one we hold, or a newer one we missed (fetched
   * first). Sealed under an epoch older than those we keep: `null`, not a key mismatch.
   */
  async open(sender: string, payload: Uint8Array): Promise<Uint8Array<ArrayBuffer> | null> {
    const { generation } = envelopeGeneration(payload);
    let keys = this.ring.get(generation);
    if (!keys && this.o.serverKey && generation > this.ring.newest) {
      await this.fetch();
      keys = this.ring.get(generation);
    }
    if (!keys) {
      if (generation > this.ring.newest || !this.o.serverKey) throw new EnvelopeError('other-generation');
      return null;
    }
    return keys.open(sender, payload);
  }

  /** A peer's key check names `generation`: fetch it if it is newer than anything we hold. */
  sawGeneration(generation: number): void {
    if (this.o.serverKey && generation > this.ring.newest) void this.fetch();
  }

  /**
   * A new epoch from the server. Pushed to everyone at once: install it now, send with it after
   * SWITCH_DELAY_MS (by then everyone can decrypt it). Fetched because we fell behind: the others
   * already send with it, so use it at once.
   */
  async onEpoch(generation: number, secret: string, how: 'pushed' | 'fetched'): Promise<void> {
    if (!this.o.serverKey || this.o.ended() || generation <= this.ring.newest) return;
    const keys = await SessionKeys.deriveEpoch(secret, this.o.sessionId, generation);
    if (this.o.ended() || !this.ring.add(keys)) {
      keys.wipe();
      return;
    }
    const buf = keys.mediaKeyBuffer();
    try {
      await this.o.provider.install(buf, generation, false);
    } finally {
      new Uint8Array(buf).fill(0);
      keys.wipe();
    }
    if (how === 'fetched') this.use(generation);
    else this.o.later(SWITCH_DELAY_MS, () => this.use(generation));
  }

  /** Asks the server for the current epoch (we missed one); one request at a time. */
  fetch(): Promise<void> {
    if (!this.o.serverKey) return Promise.resolve();
    if (this.fetching) return this.fetching;
    const p = this.o
      .fetchCurrent()
      .then((r) => this.onEpoch(r.generation, r.secret, 'fetched'))
      .catch(() => {})
      .finally(() => {
        this.fetching = null;
      });
    this.fetching = p;
    return p;
  }

  /** Forgets every key (the end of the meeting). */
  clear(): void {
    this.ring.clear();
  }

  private use(generation: number): void {
    const keys = this.ring.use(generation);
    if (!keys) return;
    this.o.provider.send(generation);
    this.o.keyStatus.rekeyed(keys.checkHex, generation);
    this.o.onSwitched(keys);
  }
}
