// What the client knows about whether everyone in the meeting uses the same key. Pure state, so
// it is unit-tested in Node; the meeting feeds it LiveKit's events and our data messages.
//
// Signals, strongest first:
//  - a participant's published key-check value: equal to ours means the same key (it is a
//    one-way function of the key and the session), different means a different key;
//  - without a key check from that participant: a LiveKit decryption error for their media, a
//    data envelope of theirs that does not open, or their tracks announced without encryption.
// A participant whose key check matches is not marked by the weaker signals (a transient
// decryption error at the start of a stream is not a wrong key). Our own key is "wrong" only
// when it matches nobody's; when some share it and others differ, the status stays encrypted
// and the others are marked.

export type E2eeStatus = 'encrypted' | 'wrong-key' | 'waiting-for-key' | 'not-encrypted';

interface Peer {
  check?: 'match' | 'mismatch';
  mediaFailure: boolean;
  dataFailure: boolean;
  unencrypted: boolean;
}

export interface KeySummary {
  status: E2eeStatus;
  /** Identities whose key differs from ours (or who we cannot decrypt). */
  mismatched: string[];
  /** Identities whose key check equals ours. */
  matched: string[];
}

export class KeyStatus {
  private ownCheck: string | null = null;
  private ownGeneration = 0;
  private readonly peers = new Map<string, Peer>();
  private listeners: Array<() => void> = [];

  constructor(readonly encrypted: boolean) {}

  onChange(fn: () => void): () => void {
    this.listeners.push(fn);
    return () => {
      this.listeners = this.listeners.filter((l) => l !== fn);
    };
  }

  private changed(): void {
    for (const l of this.listeners) l();
  }

  /** Our keys are derived; `check` is our key-check value (hex) of key epoch `generation`. */
  setOwnCheck(check: string | null, generation = 0): void {
    this.ownCheck = check;
    this.ownGeneration = generation;
    // A new key invalidates what we learnt with the old one.
    this.peers.clear();
    this.changed();
  }

  /**
   * The room moved to key epoch `generation` (the server's key, so everyone who matched still
   * does): peers keep their match until their new check arrives; failures seen with the old
   * epoch are forgotten.
   */
  rekeyed(check: string, generation: number): void {
    this.ownCheck = check;
    this.ownGeneration = generation;
    for (const p of this.peers.values()) {
      p.mediaFailure = false;
      p.dataFailure = false;
    }
    this.changed();
  }

  get generation(): number {
    return this.ownGeneration;
  }

  get hasKey(): boolean {
    return this.ownCheck !== null;
  }

  private peer(identity: string): Peer {
    let p = this.peers.get(identity);
    if (!p) {
      p = { mediaFailure: false, dataFailure: false, unencrypted: false };
      this.peers.set(identity, p);
    }
    return p;
  }

  /**
   * A key check from `identity` for epoch `generation`. Returns whether it matches ours (null if
   * we have no key yet, or it belongs to another epoch: it says nothing about ours).
   */
  keyCheck(identity: string, check: string, generation = 0): boolean | null {
    if (!this.encrypted || this.ownCheck === null || generation !== this.ownGeneration) return null;
    const p = this.peer(identity);
    const match = check === this.ownCheck;
    const before = p.check;
    p.check = match ? 'match' : 'mismatch';
    if (match) {
      p.mediaFailure = false;
      p.dataFailure = false;
    }
    if (before !== p.check) this.changed();
    return match;
  }

  mediaDecryptionFailed(identity: string): void {
    this.signal(identity, 'mediaFailure', true);
  }

  dataOpenFailed(identity: string): void {
    this.signal(identity, 'dataFailure', true);
  }

  participantEncryption(identity: string, encrypted: boolean): void {
    this.signal(identity, 'unencrypted', !encrypted);
  }

  /** One of the weaker signals about `identity` (see the top); listeners hear of a change. */
  private signal(identity: string, what: 'mediaFailure' | 'dataFailure' | 'unencrypted', value: boolean): void {
    if (!this.encrypted || !identity) return;
    const p = this.peer(identity);
    if (p[what] !== value) {
      p[what] = value;
      this.changed();
    }
  }

  participantLeft(identity: string): void {
    if (this.peers.delete(identity)) this.changed();
  }

  /** Forgets every participant (a new connection). */
  reset(): void {
    this.peers.clear();
    this.changed();
  }

  isMismatched(identity: string): boolean {
    const p = this.peers.get(identity);
    if (!p) return false;
    if (p.check === 'mismatch') return true;
    if (p.check === 'match') return false;
    return p.mediaFailure || p.dataFailure || p.unencrypted;
  }

  summary(): KeySummary {
    if (!this.encrypted) return { status: 'not-encrypted', mismatched: [], matched: [] };
    if (this.ownCheck === null) return { status: 'waiting-for-key', mismatched: [], matched: [] };
    const mismatched: string[] = [];
    const matched: string[] = [];
    for (const [id, p] of this.peers) {
      if (this.isMismatched(id)) mismatched.push(id);
      else if (p.check === 'match') matched.push(id);
    }
    // Wrong only when our key matches nobody's: with someone sharing it, it is the others who
    // differ (the meeting marks them and says how many share our key).
    const wrong = mismatched.length > 0 && matched.length === 0;
    return { status: wrong ? 'wrong-key' : 'encrypted', mismatched, matched };
  }

  get status(): E2eeStatus {
    return this.summary().status;
  }
}
