// Documents the server keeps for the session (docs/content.md): the whiteboard's pages, the
// shared notepad. Each is an append-only log; the server numbers updates (seq), stamps their
// sender and tells the room (CONTENT_UPDATE). This module keeps one open document in order:
// it loads what the server holds (a snapshot and the updates since), applies live updates in
// seq order, and catches up from the server whenever it sees a gap — so a late joiner, a
// reconnect or a lost data packet all end in the same state.
//
// Bodies are bytes to the caller. On the wire they are base64; in an encrypted room sealed
// with the session's content key, the associated data naming the kind, the document and the
// sender as the server stamps it, so the server can neither read an update nor pass one off as
// another participant's or another document's.

import type { Api, ContentKind, ContentLogReply } from './api';
import { fromBase64, toBase64, type ContentSealer } from './content';

/** What an open document does with what arrives, in seq order. */
export interface DocHandlers {
  /** A snapshot (`snapshot` true: replaces the state) or an update; may be ours (`from`). */
  apply(bytes: Uint8Array, from: string, seq: number, snapshot: boolean): void | Promise<void>;
  /** An admin cleared the document (or every document of its kind). */
  cleared(): void;
  /** An update that does not open (another key, forged, moved): skipped. */
  unreadable?(from: string, seq: number, err: unknown): void;
}

export interface DocHandle {
  readonly doc: string;
  /** The last seq applied. */
  readonly head: number;
  /** Appends an update; resolves to its seq (it also comes back live, like everyone's). */
  append(bytes: Uint8Array): Promise<number>;
  /** Replaces what the server keeps up to `upto` with `bytes` (the state at `upto`). */
  snapshot(bytes: Uint8Array, upto: number): Promise<void>;
  /** Updates the server holds beyond the last snapshot we know of (a hint for compaction). */
  readonly sinceSnapshot: number;
  close(): void;
}

/** Associated data of a document's update or snapshot. */
export function contentAad(kind: ContentKind, doc: string, from: string): string[] {
  return ['content', kind, doc, from];
}

interface Live {
  seq: number;
  from: string;
  body: string;
}

class OpenDoc implements DocHandle {
  head = 0;
  sinceSnapshot = 0;
  private pending = new Map<number, Live>();
  private chain: Promise<void> = Promise.resolve();
  private catchingUp = false;
  private closed = false;

  constructor(
    private readonly o: ContentDocsOptions,
    readonly doc: string,
    private readonly h: DocHandlers,
    private readonly onClose: () => void,
  ) {}

  async append(bytes: Uint8Array): Promise<number> {
    const { api, sealer, kind, me } = this.o;
    const sealed = await sealer.sealBytes(contentAad(kind, this.doc, me), bytes);
    const r = await api.contentAppend(kind, this.doc, toBase64(sealed));
    return r.seq;
  }

  async snapshot(bytes: Uint8Array, upto: number): Promise<void> {
    const { api, sealer, kind, me } = this.o;
    const sealed = await sealer.sealBytes(contentAad(kind, this.doc, me), bytes);
    await api.contentSnapshot(kind, this.doc, upto, toBase64(sealed));
    this.sinceSnapshot = Math.max(0, this.head - upto);
  }

  close(): void {
    this.closed = true;
    this.pending.clear();
    this.onClose();
  }

  /** Runs `f` after everything queued before it (applies never interleave). */
  private serial(f: () => Promise<void>): Promise<void> {
    const next = this.chain.then(f, f);
    this.chain = next.catch(() => undefined);
    return next;
  }

  private async openBody(from: string, body: string): Promise<Uint8Array> {
    const { sealer, kind } = this.o;
    return sealer.openBytes(contentAad(kind, this.doc, from), fromBase64(body));
  }

  private async applyOne(u: Live, snapshot: boolean): Promise<void> {
    let bytes: Uint8Array;
    try {
      bytes = await this.openBody(u.from, u.body);
    } catch (e) {
      this.h.unreadable?.(u.from, u.seq, e);
      return;
    }
    await this.h.apply(bytes, u.from, u.seq, snapshot);
  }

  /** Loads everything after `head` from the server, then what arrived meanwhile. */
  catchUp(): Promise<void> {
    if (this.catchingUp) return this.chain;
    this.catchingUp = true;
    return this.serial(async () => {
      try {
        const { api, kind } = this.o;
        const r: ContentLogReply = await api.contentLog(kind, this.doc, this.head);
        if (this.closed) return;
        if (r.snapshot && r.snapshot.upto > this.head) {
          await this.applyOne({ seq: r.snapshot.upto, from: r.snapshot.from, body: r.snapshot.body }, true);
          this.head = r.snapshot.upto;
          this.sinceSnapshot = 0;
        }
        for (const u of r.updates) {
          if (this.closed) return;
          if (u.seq <= this.head) continue;
          await this.applyOne(u, false);
          this.head = u.seq;
          this.sinceSnapshot++;
        }
        await this.drain();
      } finally {
        this.catchingUp = false;
      }
    });
  }

  /** Applies buffered live updates that now follow on. */
  private async drain(): Promise<void> {
    for (;;) {
      const next = this.pending.get(this.head + 1);
      for (const s of [...this.pending.keys()]) if (s <= this.head) this.pending.delete(s);
      if (!next) break;
      this.pending.delete(next.seq);
      await this.applyOne(next, false);
      this.head = next.seq;
      this.sinceSnapshot++;
    }
  }

  live(u: Live): void {
    if (this.closed || u.seq <= this.head) return;
    this.pending.set(u.seq, u);
    void this.serial(async () => {
      await this.drain();
    }).then(() => {
      // Something is still missing before the next one we hold: ask the server for it.
      if (this.pending.size > 0 && !this.pending.has(this.head + 1)) void this.catchUp();
    });
  }

  clear(): void {
    void this.serial(async () => {
      this.head = 0;
      this.sinceSnapshot = 0;
      this.pending.clear();
      this.h.cleared();
    });
  }
}

export interface ContentDocsOptions {
  api: Api;
  sealer: ContentSealer;
  kind: ContentKind;
  /** Our identity: what the server stamps on our updates. */
  me: string;
}

/** The open documents of one kind; fed with the server's CONTENT_* messages. */
export class ContentDocs {
  private readonly open_ = new Map<string, OpenDoc>();

  constructor(private readonly o: ContentDocsOptions) {}

  /** Opens `doc`: resolves once what the server holds is applied; live updates follow. */
  async open(doc: string, handlers: DocHandlers): Promise<DocHandle> {
    this.open_.get(doc)?.close();
    const d = new OpenDoc(this.o, doc, handlers, () => {
      if (this.open_.get(doc) === d) this.open_.delete(doc);
    });
    this.open_.set(doc, d);
    await d.catchUp();
    return d;
  }

  /** A CONTENT_UPDATE for this kind. */
  update(doc: string, seq: number, from: string, body: string): void {
    this.open_.get(doc)?.live({ seq, from, body });
  }

  /** A CONTENT_CLEARED for this kind (`doc` empty: all). */
  cleared(doc: string): void {
    for (const [id, d] of this.open_) if (!doc || doc === id) d.clear();
  }

  /** After a reconnect: whatever was missed comes from the server. */
  resync(): void {
    for (const d of this.open_.values()) void d.catchUp();
  }

  close(): void {
    for (const d of [...this.open_.values()]) d.close();
  }
}
