// What participants create in a meeting (docs/content.md): the whiteboard's and the notepad's
// documents, files, and who may change them. One object per meeting, given to the whiteboard,
// the notepad and the chat's files: the session's sealer (nothing in a plain room, the content
// key or the passphrase in an encrypted one), our identity as the server stamps it, and our
// locks, which the server enforces and tells us about (verifyToken, then LOCK_SETTINGS).

import type { Api, ContentKind, VerifyReply } from './api';
import type { ContentSealer } from './content';
import { ContentDocs } from './contentdocs';
import type { SystemMessage } from './protocol';

export interface ContentLocks {
  whiteboard: boolean;
  notepad: boolean;
  chatFile: boolean;
}

export interface MeetingContentOptions {
  api: Api;
  sealer: ContentSealer;
  verify: VerifyReply;
  /** Whether we present now (the presenter may always draw on the whiteboard). */
  presenting: () => boolean;
}

export class MeetingContent {
  readonly api: Api;
  readonly sealer: ContentSealer;
  /** Our identity: the `from` the server stamps on what we send. */
  readonly me: string;
  readonly isAdmin: boolean;
  /** Whether the room is end-to-end encrypted (everything is sealed). */
  readonly encrypted: boolean;
  readonly verify: VerifyReply;
  private readonly docs: Record<ContentKind, ContentDocs>;
  private locks_: ContentLocks;
  private readonly listeners = new Set<(l: ContentLocks) => void>();

  constructor(private readonly o: MeetingContentOptions) {
    this.api = o.api;
    this.sealer = o.sealer;
    this.verify = o.verify;
    this.me = o.verify.user.user_id;
    this.isAdmin = o.verify.user.is_admin;
    this.encrypted = o.sealer.sealing;
    const u = o.verify.user;
    this.locks_ = {
      whiteboard: !this.isAdmin && !!u.lock_whiteboard,
      notepad: !this.isAdmin && !!u.lock_shared_notepad,
      chatFile: !this.isAdmin && (!!u.lock_chat_file_share || !!u.lock_chat),
    };
    const docs = (kind: ContentKind) => new ContentDocs({ api: o.api, sealer: o.sealer, kind, me: this.me });
    this.docs = { whiteboard: docs('whiteboard'), notepad: docs('notepad') };
  }

  /** The open documents of a kind. */
  documents(kind: ContentKind): ContentDocs {
    return this.docs[kind];
  }

  get locks(): ContentLocks {
    return { ...this.locks_ };
  }

  /** Whether we may change documents of `kind` now (the server decides the same way). */
  mayWrite(kind: ContentKind): boolean {
    if (this.isAdmin) return true;
    if (kind === 'whiteboard') return this.o.presenting() || !this.locks_.whiteboard;
    return !this.locks_.notepad;
  }

  /** Calls `f` whenever our locks change; returns the unsubscribe. */
  onLocks(f: (l: ContentLocks) => void): () => void {
    this.listeners.add(f);
    return () => this.listeners.delete(f);
  }

  /** The server's messages about content and locks. */
  onSystem(m: SystemMessage): void {
    if (m.type === 'CONTENT_UPDATE') {
      this.docs[m.kind].update(m.doc, m.seq, m.from, m.body);
    } else if (m.type === 'CONTENT_CLEARED') {
      this.docs[m.kind].cleared(m.doc);
    } else if (m.type === 'LOCK_SETTINGS') {
      this.locks_ = { whiteboard: m.lock_whiteboard, notepad: m.lock_shared_notepad, chatFile: m.lock_chat_file_share };
      for (const f of this.listeners) f(this.locks);
    }
  }

  /** The presenter changed (our right to draw may have). */
  presenterChanged(): void {
    for (const f of this.listeners) f(this.locks);
  }

  /** After a reconnect: what was missed comes from the server. */
  resync(): void {
    this.docs.whiteboard.resync();
    this.docs.notepad.resync();
  }

  close(): void {
    this.docs.whiteboard.close();
    this.docs.notepad.close();
    this.listeners.clear();
  }
}
