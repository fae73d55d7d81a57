// The notepad's text as a Yjs document kept in step with the server's log (docs/content.md,
// kind `notepad`, document `main`). Our edits go out batched (policy.ts) through the open
// document's `append`; what the log holds, ours included, comes back in seq order and is
// applied with the REMOTE origin, so it is never sent again. Applying the same update twice is
// harmless in Yjs, which is what lets our own updates come back like everyone's.
//
// The Y.Doc is replaced (never patched back) when the server's log and ours part: a host
// cleared the notes, or the server refused one of our updates (we were locked meanwhile, or
// the update was too large). A fresh document is loaded from the server then, and the editor
// binds to it (`onDoc`).
//
// Part of the lazy bundle: it imports Yjs.

import * as Y from 'yjs';

import type { DocHandle, DocHandlers } from '../contentdocs';
import { COMPACT_AFTER, UpdateBatcher, UpdateTooLarge, isCompactor, shouldCompact, type Present } from './policy';

/** The origin of updates that came from the server: they are not sent back. */
export const REMOTE = 'enclave-notepad-remote';
/** The text's name in the document. */
export const TEXT = 'notes';

export interface SyncOptions {
  me: string;
  isAdmin: boolean;
  open: (handlers: DocHandlers) => Promise<DocHandle>;
  present: () => Present[];
  /** Whether we may write now (not locked). */
  canWrite: () => boolean;
  nameOf: (identity: string) => string;
  /** A new document replaces the one before (bind the editor to it). */
  onDoc: (doc: Y.Doc, why: 'opened' | 'cleared' | 'refused') => void;
  onError: (text: string) => void;
  /** Someone's update was applied. */
  onRemote?: (from: string) => void;
  batchMs?: number;
  maxBytes?: number;
  compactAfter?: number;
}

export class NotepadSync {
  doc: Y.Doc = new Y.Doc();
  private handle: DocHandle | null = null;
  private batcher: UpdateBatcher;
  /** Who wrote what we applied (candidates for compacting). */
  private readonly writers = new Set<string>();
  private compacting = false;
  private reloading = false;
  private closed = false;
  /** Senders whose unreadable updates we already reported (one notice each). */
  private readonly unreadableFrom = new Set<string>();

  constructor(private readonly o: SyncOptions) {
    this.batcher = this.newBatcher();
  }

  /** The last seq applied. */
  get head(): number {
    return this.handle?.head ?? 0;
  }

  get text(): string {
    return this.doc.getText(TEXT).toString();
  }

  /** Loads what the server holds; live updates follow. */
  async start(): Promise<void> {
    await this.load('opened');
  }

  /** Sends what waits now (tests; leaving). */
  flush(): Promise<void> {
    return this.batcher.flush();
  }

  close(): void {
    this.closed = true;
    this.batcher.stop();
    this.doc.off('update', this.onLocal);
    this.handle?.close();
    this.handle = null;
  }

  private newBatcher(): UpdateBatcher {
    return new UpdateBatcher({
      delayMs: this.o.batchMs,
      maxBytes: this.o.maxBytes,
      merge: (us) => Y.mergeUpdates(us),
      send: (u) => this.send(u),
      failed: (e, u) => this.refused(e, u),
    });
  }

  private readonly onLocal = (update: Uint8Array, origin: unknown): void => {
    if (origin === REMOTE || this.reloading || this.closed) return;
    this.batcher.push(update);
  };

  private handlers(): DocHandlers {
    return {
      apply: (bytes, from, _seq, snapshot) => this.apply(bytes, from, snapshot),
      cleared: () => void this.replace('cleared'),
      unreadable: (from) => {
        if (this.unreadableFrom.has(from)) return;
        this.unreadableFrom.add(from);
        this.o.onError(`A change to the notes by ${this.o.nameOf(from)} could not be decrypted with your key; it is left out.`);
      },
    };
  }

  private apply(bytes: Uint8Array, from: string, snapshot: boolean): void {
    try {
      Y.applyUpdate(this.doc, bytes, REMOTE);
    } catch (e) {
      // Opened but not a Yjs update: a broken or hostile client. Skipped, like one that does not open.
      console.warn(`notepad: an update from ${from} is not a Yjs update and was skipped:`, e);
      return;
    }
    if (!snapshot && from !== this.o.me) {
      this.writers.add(from);
      this.o.onRemote?.(from);
    }
    void this.maybeCompact();
  }

  private async send(update: Uint8Array): Promise<void> {
    const h = this.handle;
    if (!h) throw new Error('the notepad is not open');
    for (let attempt = 0; ; attempt++) {
      try {
        await h.append(update);
        break;
      } catch (e) {
        // The log is full: whoever meets this compacts, then the update goes again.
        if (/compact the document/i.test(errorText(e)) && attempt === 0) {
          await this.compact(true);
          continue;
        }
        // The network or the server failed, or we wrote too fast: the same update again a
        // little later (Yjs takes a repeat as it takes the first), before giving it up.
        if (transient(e) && attempt < RETRY_MS.length && !this.closed) {
          await new Promise((r) => setTimeout(r, RETRY_MS[attempt]));
          continue;
        }
        throw e;
      }
    }
    void this.maybeCompact();
  }

  /** An update of ours the server did not take: say why, and load the shared text again. */
  private refused(e: unknown, _update: Uint8Array): void {
    if (this.closed) return;
    const why = e instanceof UpdateTooLarge ? e.message : errorText(e) || 'the server refused it';
    this.o.onError(`Your last change to the notes was not saved: ${why}.`);
    void this.replace('refused');
  }

  private async maybeCompact(): Promise<void> {
    const h = this.handle;
    if (!h) return;
    const compactor = isCompactor({
      me: this.o.me,
      meAdmin: this.o.isAdmin,
      meWriter: this.o.isAdmin || this.o.canWrite(),
      present: this.o.present(),
      writers: this.writers,
    });
    if (!shouldCompact({ sinceSnapshot: h.sinceSnapshot, threshold: this.o.compactAfter ?? COMPACT_AFTER, compactor, busy: this.compacting || this.reloading || !this.batcher.idle })) return;
    await this.compact(false);
  }

  /** Replaces the server's log up to the head we applied with our whole state. */
  private async compact(mustSucceed: boolean): Promise<void> {
    const h = this.handle;
    if (!h || this.compacting) return;
    this.compacting = true;
    try {
      await h.snapshot(Y.encodeStateAsUpdate(this.doc), h.head);
    } catch (e) {
      // Another writer may have compacted first (our head is then behind its snapshot): fine.
      if (mustSucceed) throw e;
      console.warn('notepad: compaction was refused:', errorText(e));
    } finally {
      this.compacting = false;
    }
  }

  private async replace(why: 'cleared' | 'refused'): Promise<void> {
    if (this.closed || this.reloading) return;
    if (why === 'cleared') {
      // The handle itself starts over (head 0): only the document is new.
      this.batcher.stop();
      this.batcher = this.newBatcher();
      this.swapDoc();
      this.o.onDoc(this.doc, why);
      return;
    }
    try {
      await this.load(why);
    } catch (e) {
      this.o.onError(`The notes could not be loaded again: ${errorText(e) || 'the server did not answer'}. Close and reopen them.`);
    }
  }

  private swapDoc(): void {
    this.doc.off('update', this.onLocal);
    this.doc = new Y.Doc();
    this.doc.on('update', this.onLocal);
  }

  private async load(why: 'opened' | 'refused'): Promise<void> {
    this.reloading = true;
    try {
      this.batcher.stop();
      this.batcher = this.newBatcher();
      this.handle?.close();
      this.handle = null;
      this.swapDoc();
      this.handle = await this.o.open(this.handlers());
      if (this.closed) {
        this.handle.close();
        return;
      }
    } finally {
      this.reloading = false;
    }
    this.o.onDoc(this.doc, why);
  }
}

/** Waits before sending a failed update again. */
const RETRY_MS = [300, 1000, 3000];

/** A failure that may pass: no answer, a server error, too many writes. */
function transient(e: unknown): boolean {
  if (/too many updates/i.test(errorText(e))) return true;
  if (!e || typeof e !== 'object' || !('httpStatus' in e) || typeof e.httpStatus !== 'number') return false;
  return e.httpStatus === 0 || e.httpStatus === 429 || e.httpStatus >= 500;
}

function errorText(e: unknown): string {
  if (e && typeof e === 'object' && 'serverMsg' in e && typeof e.serverMsg === 'string' && e.serverMsg) return e.serverMsg;
  if (e instanceof Error) return e.message;
  return '';
}
