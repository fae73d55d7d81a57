// Session state that helps the person after a refresh, in IndexedDB, keyed by the session id:
// the layout, the chosen devices and the chat history. Never a secret, a passphrase, a token or
// a derived key. In an end-to-end encrypted room the history is kept as sealed envelopes and
// re-opened after a reload with the re-derived key (the history key of a server-key room, the
// passphrase's key of a self-insert room); only plain rooms keep plaintext. A session's records are
// deleted when the meeting ends, and those of other sessions after a day.

import type { ChatMessage } from './protocol';

const DB_NAME = 'enclave';
const DB_VERSION = 1;
const SESSIONS = 'sessions';
const CHAT = 'chat';
export const STALE_AFTER_MS = 24 * 60 * 60 * 1000;

export type Layout = 'grid' | 'spotlight';

export interface DeviceChoice {
  audioinput?: string;
  videoinput?: string;
  audiooutput?: string;
  /** Whether the camera / microphone were on when the person last joined. */
  camera?: boolean;
  microphone?: boolean;
}

export interface SessionRecord {
  sid: string;
  updated_at: number;
  layout?: Layout;
  devices?: DeviceChoice;
}

export type ChatRecord =
  | { sid: string; id: string; at: number; kind: 'plain'; message: ChatMessage }
  | { sid: string; id: string; at: number; kind: 'plain-system'; text: string }
  /** `aad`: what the envelope binds as its sender when that is not `sender` (a private message). */
  | { sid: string; id: string; at: number; kind: 'sealed'; sender: string; envelope: ArrayBuffer; aad?: string }
  | { sid: string; id: string; at: number; kind: 'sealed-system'; envelope: ArrayBuffer };

function req<T>(r: IDBRequest<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    r.onsuccess = () => resolve(r.result);
    r.onerror = () => reject(r.error);
  });
}

function done(tx: IDBTransaction): Promise<void> {
  return new Promise((resolve, reject) => {
    tx.oncomplete = () => resolve();
    tx.onerror = () => reject(tx.error);
    tx.onabort = () => reject(tx.error);
  });
}

export class SessionStore {
  private constructor(private readonly db: IDBDatabase) {}

  /** Opens the database; null where IndexedDB is unavailable (private modes, old browsers). */
  static async open(): Promise<SessionStore | null> {
    if (typeof indexedDB === 'undefined') return null;
    try {
      const r = indexedDB.open(DB_NAME, DB_VERSION);
      r.onupgradeneeded = () => {
        const db = r.result;
        if (!db.objectStoreNames.contains(SESSIONS)) db.createObjectStore(SESSIONS, { keyPath: 'sid' });
        if (!db.objectStoreNames.contains(CHAT)) {
          const chat = db.createObjectStore(CHAT, { keyPath: ['sid', 'id'] });
          chat.createIndex('by_sid', 'sid');
        }
      };
      const db = await Promise.race([
        req(r),
        new Promise<never>((_, reject) => setTimeout(() => reject(new Error('IndexedDB open timed out')), 3000)),
      ]);
      return new SessionStore(db);
    } catch {
      return null;
    }
  }

  async session(sid: string): Promise<SessionRecord | undefined> {
    const tx = this.db.transaction(SESSIONS, 'readonly');
    return (await req(tx.objectStore(SESSIONS).get(sid))) as SessionRecord | undefined;
  }

  /** Merges `patch` into the session's record. */
  async updateSession(sid: string, patch: Partial<Omit<SessionRecord, 'sid'>>): Promise<void> {
    const tx = this.db.transaction(SESSIONS, 'readwrite');
    const os = tx.objectStore(SESSIONS);
    const old = ((await req(os.get(sid))) as SessionRecord | undefined) ?? { sid, updated_at: 0 };
    const next: SessionRecord = { ...old, ...patch, sid, updated_at: Date.now() };
    if (patch.devices) next.devices = { ...old.devices, ...patch.devices };
    os.put(next);
    await done(tx);
  }

  async addChat(rec: ChatRecord): Promise<void> {
    const tx = this.db.transaction([CHAT, SESSIONS], 'readwrite');
    tx.objectStore(CHAT).put(rec);
    const sessions = tx.objectStore(SESSIONS);
    const old = ((await req(sessions.get(rec.sid))) as SessionRecord | undefined) ?? { sid: rec.sid, updated_at: 0 };
    sessions.put({ ...old, updated_at: Date.now() });
    await done(tx);
  }

  /** The session's chat records, oldest first. */
  async chat(sid: string): Promise<ChatRecord[]> {
    const tx = this.db.transaction(CHAT, 'readonly');
    const all = (await req(tx.objectStore(CHAT).index('by_sid').getAll(sid))) as ChatRecord[];
    return all.sort((a, b) => a.at - b.at);
  }

  async deleteSession(sid: string): Promise<void> {
    const tx = this.db.transaction([SESSIONS, CHAT], 'readwrite');
    tx.objectStore(SESSIONS).delete(sid);
    const idx = tx.objectStore(CHAT).index('by_sid');
    const keys = await req(idx.getAllKeys(sid));
    for (const k of keys) tx.objectStore(CHAT).delete(k);
    await done(tx);
  }

  /** Deletes every other session not touched for STALE_AFTER_MS. */
  async pruneStale(keepSid: string, now = Date.now()): Promise<number> {
    const tx = this.db.transaction(SESSIONS, 'readonly');
    const all = (await req(tx.objectStore(SESSIONS).getAll())) as SessionRecord[];
    const stale = all.filter((s) => s.sid !== keepSid && now - (s.updated_at || 0) > STALE_AFTER_MS);
    for (const s of stale) await this.deleteSession(s.sid);
    // Chat records whose session record is gone (e.g. a crash between writes).
    const tx2 = this.db.transaction([CHAT, SESSIONS], 'readwrite');
    const known = new Set(((await req(tx2.objectStore(SESSIONS).getAllKeys())) as IDBValidKey[]).map(String));
    known.add(keepSid);
    const chatKeys = (await req(tx2.objectStore(CHAT).getAllKeys())) as IDBValidKey[];
    for (const k of chatKeys) {
      const sid = Array.isArray(k) ? String(k[0]) : '';
      if (!known.has(sid)) tx2.objectStore(CHAT).delete(k);
    }
    await done(tx2);
    return stale.length;
  }

  close(): void {
    this.db.close();
  }
}
