// The meeting's chat: what we send (to everyone, or privately to one person or to the hosts), what
// arrives, the server's notices, a host's chat locks, the unread count, and the history this
// browser keeps of the session (sealed in an encrypted room), shown again after a reload.
// ui/chat.ts draws it.
import type { Room } from 'livekit-client';

import type { RoomFeatures } from './api';
import type { ContentSealer } from './content';
import { sealJson } from './data';
import { openWith, sealWith } from './e2ee';
import { downloadFile, safeFileName, uploadFile, type FileApi } from './files';
import type { MeetingKeys } from './meetingkeys';
import { TOPIC_CHAT, TOPIC_PRIVATE, decodeJson, encodeJson, newChat, parseChat, privateAad, randomId, type ChatFile, type ChatMessage } from './protocol';
import type { Roster } from './roster';
import type { SessionStore } from './store';
import { ChatPanel, type ChatTarget } from './ui/chat';
import { toast } from './ui/toasts';

/** Who "sends" the server's notices kept in an encrypted room's history (the AAD they are sealed with). */
const SYSTEM_SENDER = 'enclave.system';

export interface MeetingChatOptions {
  room: Room;
  keys: MeetingKeys | null;
  encrypted: boolean;
  store: SessionStore | null;
  /**
   * Server-key rooms: seals the chat history this browser keeps (the same key at every
   * admission of this user in the session, so a reload opens what was kept before it).
   */
  historyKey: CryptoKey | null;
  sessionId: string;
  /** The name we chose. */
  name: string;
  roster: Roster;
  /** Whether the chat panel is open (nothing is unread then). */
  isOpen: () => boolean;
  closePanel: () => void;
  /** How many messages are unread. */
  onUnread: (n: number) => void;
  /**
   * File sharing (absent or null: the room has it off): the file routes, the session's content
   * sealer (files outlive key epochs, so late joiners can open them), our identity as the server
   * stamps it, and the room's features (the limits checked before sealing).
   */
  files?: { api: FileApi; sealer: ContentSealer; me: string; features: RoomFeatures } | null;
}

export class MeetingChat {
  readonly panel: ChatPanel;
  private unread = 0;
  /** Whether a host has locked our chat (the server drops what we would send). */
  private locked = false;

  constructor(private readonly o: MeetingChatOptions) {
    this.panel = new ChatPanel(o.encrypted, (t, target) => this.send(t, target), o.closePanel);
    const files = o.files;
    if (files) {
      this.panel.enableFiles(
        {
          share: (file, target, progress, resume) => this.shareFile(files, file, target, progress, resume),
          fetch: (f) => this.fetchFile(files, f),
        },
        o.encrypted,
      );
    }
  }

  /** A host locked (or unlocked) file sharing in the chat for us (the server refuses uploads then). */
  fileLock(locked: boolean): void {
    this.panel.setFileLocked(locked);
  }

  /**
   * Uploads a file (sealed chunk by chunk in an encrypted room) and announces it with a chat
   * message to `target`: its name travels only inside that message (sealed with the data key in
   * an encrypted room) and inside the file's own sealed name.
   */
  private async shareFile(files: NonNullable<MeetingChatOptions['files']>, file: File, target: ChatTarget, progress: (fraction: number) => void, resume?: string): Promise<void> {
    const up = await uploadFile({
      api: files.api,
      sealer: files.sealer,
      me: files.me,
      purpose: 'chat',
      file,
      name: file.name,
      mime: file.type || 'application/octet-stream',
      features: files.features,
      onProgress: (sent, total) => progress(total ? sent / total : 1),
      resume,
    });
    await this.send('', target, { file_id: up.file_id, name: up.name, size: up.size, mime: up.mime });
  }

  /** Fetches a shared file, opens it, and hands it to the browser to save under its own name. */
  private async fetchFile(files: NonNullable<MeetingChatOptions['files']>, f: ChatFile): Promise<void> {
    let got;
    try {
      got = await downloadFile({ api: files.api, sealer: files.sealer, fileId: f.file_id });
    } catch (e) {
      const msg = e instanceof Error ? e.message : String(e);
      toast(`“${f.name}” could not be downloaded: ${msg}.`, 'error');
      throw e;
    }
    // A type from another participant decides nothing here: the link only saves the bytes.
    const type = /^[\w.+-]+\/[\w.+-]+$/.test(got.mime) ? got.mime : 'application/octet-stream';
    const url = URL.createObjectURL(new Blob([got.bytes], { type }));
    const a = document.createElement('a');
    a.href = url;
    a.download = safeFileName(got.name);
    a.rel = 'noopener';
    a.hidden = true;
    document.body.appendChild(a);
    a.click();
    a.remove();
    // The browser has taken the bytes once the click is handled; nothing keeps them after.
    setTimeout(() => URL.revokeObjectURL(url), 60_000);
  }

  /** The panel opened: everything is read. */
  read(): void {
    this.unread = 0;
    this.o.onUnread(0);
  }

  /** The room's welcome message, first in the list. */
  welcome(text: string): void {
    this.panel.add({ id: `welcome-${this.o.sessionId}`, fromIdentity: '', fromName: '', text, at: 0, self: false, system: true });
  }

  /** The locks a host had set when we joined (no notice). */
  lockedAtJoin(chat: boolean, privateChat: boolean): void {
    if (chat) {
      this.locked = true;
      this.panel.setLocked(true);
    }
    if (privateChat) this.panel.setPrivateLocked(true);
  }

  /** A host changed the chat locks. */
  lockSettings(chat: boolean, privateChat: boolean): void {
    if (this.locked !== chat) {
      this.locked = chat;
      this.panel.setLocked(chat);
      toast(chat ? 'A host locked the chat: you can read it but not send.' : 'A host unlocked the chat.', chat ? 'warning' : 'info');
    }
    this.panel.setPrivateLocked(privateChat);
  }

  /** A message of `sender` arrived (`aad`: the private copy's). */
  received(msg: ChatMessage, sender: string, envelope: Uint8Array, aad?: string): void {
    if (this.panel.has(msg.id)) return;
    this.show(msg, false);
    void this.keep(msg, sender, envelope, aad);
  }

  /** A notice of the server, kept with the chat (a toast too unless the chat is open). */
  async notice(text: string): Promise<void> {
    const { keys, store, historyKey, sessionId: sid } = this.o;
    const id = randomId();
    const at = Date.now();
    this.panel.add({ id, fromIdentity: '', fromName: '', text, at, self: false, system: true });
    this.bumpUnread();
    if (!this.o.isOpen()) toast(text, 'info');
    const current = keys?.current;
    if (current) {
      // Kept sealed like everything else in an encrypted room's history.
      const plain = encodeJson({ text, at });
      const env = historyKey ? await sealWith(historyKey, sid, SYSTEM_SENDER, plain) : await current.seal(SYSTEM_SENDER, plain);
      void store?.addChat({ sid, id, at, kind: 'sealed-system', envelope: env.buffer }).catch(() => {});
    } else {
      void store?.addChat({ sid, id, at, kind: 'plain-system', text }).catch(() => {});
    }
  }

  /** Shows again what this browser kept of the session's chat. */
  async restore(): Promise<void> {
    const { store, sessionId, encrypted } = this.o;
    if (!store) return;
    let records;
    try {
      records = await store.chat(sessionId);
    } catch {
      return;
    }
    const me = this.o.room.localParticipant.identity;
    for (const r of records) {
      try {
        if (r.kind === 'plain' && !encrypted) {
          const m = parseChat(r.message, r.message.from_user_id);
          if (m) this.show(m, m.from_user_id === me, true);
        } else if (r.kind === 'plain-system' && !encrypted) {
          this.panel.add({ id: r.id, fromIdentity: '', fromName: '', text: r.text, at: r.at, self: false, system: true });
        } else if (r.kind === 'sealed' && encrypted) {
          const opened = await this.openKept(r.aad ?? r.sender, r.envelope);
          const m = opened && parseChat(decodeJson(opened), r.sender);
          if (m) this.show(m, r.sender === me, true);
        } else if (r.kind === 'sealed-system' && encrypted) {
          const opened = await this.openKept(SYSTEM_SENDER, r.envelope);
          const v = (opened && decodeJson(opened)) as { text?: unknown; at?: unknown } | null | undefined;
          if (v && typeof v.text === 'string') {
            this.panel.add({ id: r.id, fromIdentity: '', fromName: '', text: v.text, at: typeof v.at === 'number' ? v.at : r.at, self: false, system: true });
          }
        }
      } catch {
        // Sealed with another key (e.g. a different self-inserted key): not shown.
      }
    }
  }

  private async send(text: string, target: ChatTarget = { kind: 'everyone' }, file?: ChatFile): Promise<void> {
    if (target.kind !== 'everyone') return this.sendPrivate(text, target, file);
    const me = this.o.room.localParticipant;
    const msg = newChat(me.identity, this.o.name, text);
    if (file) msg.file = file;
    const payload = await sealJson(this.o.keys, me.identity, msg);
    try {
      await me.publishData(payload, { reliable: true, topic: TOPIC_CHAT });
    } catch {
      toast('The message could not be sent. Check your connection.', 'error');
      throw new Error('send failed');
    }
    this.show(msg, true);
    void this.keep(msg, me.identity, payload);
  }

  /**
   * A private message: one copy per recipient, addressed to them alone (the media server relays
   * nothing on this topic without recipients), each sealed for its recipient in an encrypted room.
   */
  private async sendPrivate(text: string, target: Exclude<ChatTarget, { kind: 'everyone' }>, file?: ChatFile): Promise<void> {
    const { room, roster } = this.o;
    const me = room.localParticipant;
    const to = target.kind === 'one' ? [target.identity] : [...room.remoteParticipants.values()].filter((p) => roster.isHost(p)).map((p) => p.identity);
    if (to.length === 0) {
      toast(target.kind === 'hosts' ? 'No host is in the meeting right now.' : 'They have left the meeting.', 'warning');
      throw new Error('no recipient');
    }
    const msg = newChat(me.identity, this.o.name, text, Date.now(), to, target.kind === 'hosts');
    if (file) msg.file = file;
    const keys = this.o.keys?.current;
    let first: Uint8Array | null = null;
    try {
      for (const r of to) {
        const aad = privateAad(me.identity, r);
        const payload = keys ? await keys.seal(aad, encodeJson(msg)) : encodeJson(msg);
        first ??= payload;
        await me.publishData(payload, { reliable: true, topic: TOPIC_PRIVATE, destinationIdentities: [r] });
      }
    } catch {
      toast('The message could not be sent. Check your connection.', 'error');
      throw new Error('send failed');
    }
    this.show(msg, true);
    void this.keep(msg, me.identity, first ?? encodeJson(msg), privateAad(me.identity, to[0]!));
  }

  private show(msg: ChatMessage, self: boolean, restoring = false): void {
    const { roster } = this.o;
    const privateLabel = !msg.to ? undefined : msg.to_hosts ? 'Private · to the hosts' : self ? `Private · to ${roster.displayName(msg.to[0]!)}` : 'Private · to you';
    const name = self ? this.o.name : msg.from_name || roster.displayName(msg.from_user_id);
    const added = this.panel.add({ id: msg.id, fromIdentity: msg.from_user_id, fromName: name, text: msg.text, at: msg.sent_at, self, system: false, privateLabel, file: msg.file });
    if (added && !self && !restoring) this.bumpUnread();
  }

  private bumpUnread(): void {
    if (this.o.isOpen()) return;
    this.unread += 1;
    this.o.onUnread(this.unread);
  }

  /**
   * Keeps a chat message in the page's history: in clear in a plain room; in an encrypted room
   * sealed, with the history key (server key: epochs change, the history key does not) or as
   * it came (a passphrase: the same key after a reload).
   */
  private async keep(msg: ChatMessage, sender: string, envelope: Uint8Array, aad?: string): Promise<void> {
    const { store, historyKey, sessionId: sid } = this.o;
    if (!store) return;
    const at = Date.now();
    try {
      if (!this.o.encrypted) {
        await store.addChat({ sid, id: msg.id, at, kind: 'plain', message: msg });
      } else {
        const sealed = historyKey ? await sealWith(historyKey, sid, aad ?? sender, encodeJson(msg)) : envelope.slice();
        await store.addChat({ sid, id: msg.id, at, kind: 'sealed', sender, envelope: sealed.buffer, aad });
      }
    } catch {
      // History is a convenience: a failure to keep it does not disturb the meeting.
    }
  }

  /** Opens what `keep` (or `notice`) sealed; null when it does not open. */
  private async openKept(sender: string, envelope: ArrayBuffer): Promise<Uint8Array | null> {
    const { historyKey, sessionId } = this.o;
    const bytes = new Uint8Array(envelope);
    if (historyKey) return openWith(historyKey, sessionId, sender, bytes);
    return this.o.keys ? this.o.keys.open(sender, bytes) : null;
  }
}
