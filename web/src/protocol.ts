// The client's own data messages (LiveKit data packets, reliable) and the server's broadcasts.
// Pure: parsing and validation only, so that it is unit-tested in Node.
//
// topic             payload                                         sealed in E2EE rooms
// enclave.chat      {id, from_user_id, from_name, text, sent_at}    yes (data key, AAD binds sender)
// enclave.private   the same with to: [recipients], one packet per  yes (AAD binds sender and this
//                   recipient, addressed to them alone                recipient: privateAad)
// enclave.profile   {type:"profile", name}                          yes
// enclave.keycheck  {type:"key_check", check:"<32 hex>",            no: a one-way value of the key,
//                    generation}                                    readable by those whose key differs
// enclave.reaction  {type:"reaction", name}                        yes (a room with allow_reactions
//                                                                   false: dropped by the server)
// enclave.system    {type:"SYSTEM_CHAT_MSG", message} or            no: from the server (no sender)
//                   {type:"SYSTEM_NOTIFICATION", msg, notification_type} or
//                   {type:"RECORDER_STATE", is_recording, is_active_rtmp} or
//                   {type:"LOCK_SETTINGS", lock_chat, lock_private_chat, lock_chat_file_share,
//                    lock_whiteboard, lock_shared_notepad} (to one participant: a host's locks) or
//                   {type:"E2EE_KEY", generation, secret} (a new key epoch, to the members in the room) or
//                   {type:"CONTENT_UPDATE", kind, doc, seq, from, body} /
//                   {type:"CONTENT_CLEARED", kind, doc} (documents: docs/content.md)

export const TOPIC_CHAT = 'enclave.chat';
export const TOPIC_PROFILE = 'enclave.profile';
export const TOPIC_KEYCHECK = 'enclave.keycheck';
export const TOPIC_SYSTEM = 'enclave.system';
export const TOPIC_REACTION = 'enclave.reaction';
export const TOPIC_PRIVATE = 'enclave.private';
/** Recipients one private message may name (a participant, or the hosts). */
export const MAX_PRIVATE_RECIPIENTS = 20;

/**
 * What a private message's envelope binds in place of the sender (crates/e2ee's AAD "sender"
 * field): the sender and the one recipient this copy is for, so that a copy cannot be passed
 * off as sent to someone else, nor as public.
 */
export function privateAad(from: string, to: string): string {
  return JSON.stringify(['private', from, to]);
}

/** The reactions people can send, by the name that travels. */
export const REACTIONS = {
  thumbs_up: '👍',
  clap: '👏',
  heart: '❤️',
  laugh: '😂',
  surprised: '😮',
  party: '🎉',
} as const;
export type ReactionName = keyof typeof REACTIONS;

/** A reaction, if `v` is one of the known ones. */
export function parseReaction(v: unknown): ReactionName | null {
  if (!isObject(v) || v.type !== 'reaction' || typeof v.name !== 'string') return null;
  return Object.prototype.hasOwnProperty.call(REACTIONS, v.name) ? (v.name as ReactionName) : null;
}

export const MAX_CHAT_CHARS = 4000;
export const MAX_NAME_CHARS = 64;

export interface ChatMessage {
  id: string;
  from_user_id: string;
  from_name: string;
  text: string;
  /** Milliseconds since the epoch, by the sender's clock. */
  sent_at: number;
  /** A private message: who it is for (absent: everyone). */
  to?: string[];
  /** A private message to the hosts (whoever they are as it is sent). */
  to_hosts?: boolean;
}

export interface KeyCheckMessage {
  type: 'key_check';
  check: string;
  /** The key epoch the check belongs to (0: a passphrase). */
  generation: number;
}

export interface ProfileMessage {
  type: 'profile';
  name: string;
}

export type SystemMessage =
  | { type: 'SYSTEM_CHAT_MSG'; message: string }
  | { type: 'SYSTEM_NOTIFICATION'; msg: string; notification_type: string }
  /** The whole recorder state of the room, sent whenever cloud recording or RTMP starts or stops. */
  | { type: 'RECORDER_STATE'; is_recording: boolean; is_active_rtmp: boolean }
  | {
      type: 'LOCK_SETTINGS';
      lock_chat: boolean;
      lock_private_chat: boolean;
      lock_chat_file_share: boolean;
      lock_whiteboard: boolean;
      lock_shared_notepad: boolean;
    }
  /** A new key epoch of a server-generated-key room, for the members in the room only. */
  | { type: 'E2EE_KEY'; generation: number; secret: string }
  /** Polls changed: the client fetches what it may see (`live`: the counts are for everyone). */
  | { type: 'POLL_CREATED'; poll_id: string }
  | { type: 'POLL_CLOSED'; poll_id: string }
  | { type: 'POLL_RESPONSE'; poll_id: string; total_responses: number; live: boolean }
  | { type: 'POLLS_ACTIVE'; is_active: boolean }
  /** A host assigned us to a breakout room (addressed to us alone). */
  | { type: 'JOIN_BREAKOUT_ROOM'; breakout_room_id: string; title: string; ends_at: number }
  | { type: 'BREAKOUT_ROOM_ENDED'; breakout_room_id: string }
  | { type: 'BREAKOUT_ROOMS_CHANGED' }
  /** Inside a breakout room: a host gave it more time. */
  | { type: 'BREAKOUT_ROOM_EXTENDED'; ends_at: number }
  /** A document got update `seq` (docs/content.md); `from` is stamped by the server. */
  | { type: 'CONTENT_UPDATE'; kind: ContentKind; doc: string; seq: number; from: string; body: string }
  /** An admin cleared a document (`doc` empty: every document of the kind). */
  | { type: 'CONTENT_CLEARED'; kind: ContentKind; doc: string };

/** The kinds of document the server keeps (docs/content.md). */
export type ContentKind = 'whiteboard' | 'notepad';

function isContentKind(v: unknown): v is ContentKind {
  return v === 'whiteboard' || v === 'notepad';
}

/** A document id as the server allows it (docs/content.md). */
export function isDocId(v: unknown): v is string {
  return typeof v === 'string' && /^[A-Za-z0-9_-]{1,64}$/.test(v);
}

const enc = new TextEncoder();
const dec = new TextDecoder('utf-8', { fatal: true });

export function encodeJson(v: unknown): Uint8Array<ArrayBuffer> {
  return enc.encode(JSON.stringify(v));
}

export function decodeJson(bytes: Uint8Array): unknown {
  try {
    return JSON.parse(dec.decode(bytes));
  } catch {
    return undefined;
  }
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** A chat message, if `v` is one and it claims to come from `senderIdentity` (who really sent it). */
export function parseChat(v: unknown, senderIdentity: string): ChatMessage | null {
  if (!isObject(v)) return null;
  const { id, from_user_id, from_name, text, sent_at } = v;
  if (typeof id !== 'string' || id.length === 0 || id.length > 100) return null;
  if (typeof from_user_id !== 'string' || from_user_id !== senderIdentity) return null;
  if (typeof text !== 'string' || text.trim().length === 0 || text.length > MAX_CHAT_CHARS) return null;
  const name = typeof from_name === 'string' ? cleanName(from_name) : '';
  const at = typeof sent_at === 'number' && Number.isFinite(sent_at) ? sent_at : Date.now();
  const msg: ChatMessage = { id, from_user_id, from_name: name || from_user_id, text, sent_at: at };
  if (v.to !== undefined) {
    const to = v.to;
    if (!Array.isArray(to) || to.length === 0 || to.length > MAX_PRIVATE_RECIPIENTS || !to.every((x) => typeof x === 'string' && x.length > 0 && x.length <= 200)) return null;
    msg.to = to as string[];
    if (v.to_hosts === true) msg.to_hosts = true;
  }
  return msg;
}

/**
 * A private message for `me` from `senderIdentity`: a chat message that names `me` among its
 * recipients (one that does not was not meant for us, or is a public message replayed here).
 */
export function parsePrivate(v: unknown, senderIdentity: string, me: string): ChatMessage | null {
  const m = parseChat(v, senderIdentity);
  return m && m.to && (m.to.includes(me) || senderIdentity === me) ? m : null;
}

export function newChat(fromUserId: string, fromName: string, text: string, now = Date.now(), to?: string[], toHosts = false): ChatMessage {
  const m: ChatMessage = {
    id: randomId(),
    from_user_id: fromUserId,
    from_name: fromName,
    text: text.slice(0, MAX_CHAT_CHARS),
    sent_at: now,
  };
  if (to && to.length) {
    m.to = to.slice(0, MAX_PRIVATE_RECIPIENTS);
    if (toHosts) m.to_hosts = true;
  }
  return m;
}

/** A room id as the server makes them: 1 to 128 of [A-Za-z0-9_-]. */
function isRoomId(v: unknown): v is string {
  return typeof v === 'string' && /^[A-Za-z0-9_-]{1,128}$/.test(v);
}

/** A poll id as the server accepts them: 1 to 64 of [A-Za-z0-9_-]. */
export function isPollId(v: unknown): v is string {
  return typeof v === 'string' && /^[A-Za-z0-9_-]{1,64}$/.test(v);
}

/** A key generation: an integer from 0 to 2^32 - 1. */
export function isGeneration(g: unknown): g is number {
  return typeof g === 'number' && Number.isInteger(g) && g >= 0 && g <= 0xffffffff;
}

export function parseKeyCheck(v: unknown): KeyCheckMessage | null {
  if (!isObject(v) || v.type !== 'key_check') return null;
  if (typeof v.check !== 'string' || !/^[0-9a-f]{32}$/.test(v.check)) return null;
  const generation = v.generation === undefined ? 0 : v.generation;
  if (!isGeneration(generation)) return null;
  return { type: 'key_check', check: v.check, generation };
}

export function parseProfile(v: unknown): ProfileMessage | null {
  if (!isObject(v) || v.type !== 'profile' || typeof v.name !== 'string') return null;
  const name = cleanName(v.name);
  return name ? { type: 'profile', name } : null;
}

export function parseSystem(v: unknown): SystemMessage | null {
  if (!isObject(v)) return null;
  if (v.type === 'SYSTEM_CHAT_MSG' && typeof v.message === 'string' && v.message.trim()) {
    return { type: 'SYSTEM_CHAT_MSG', message: v.message.slice(0, MAX_CHAT_CHARS) };
  }
  if (v.type === 'SYSTEM_NOTIFICATION' && typeof v.msg === 'string' && v.msg.trim()) {
    const kind = typeof v.notification_type === 'string' ? v.notification_type : 'info';
    return { type: 'SYSTEM_NOTIFICATION', msg: v.msg.slice(0, 1000), notification_type: kind };
  }
  if (v.type === 'RECORDER_STATE' && typeof v.is_recording === 'boolean' && typeof v.is_active_rtmp === 'boolean') {
    return { type: 'RECORDER_STATE', is_recording: v.is_recording, is_active_rtmp: v.is_active_rtmp };
  }
  if (v.type === 'LOCK_SETTINGS' && typeof v.lock_chat === 'boolean') {
    return {
      type: 'LOCK_SETTINGS',
      lock_chat: v.lock_chat,
      lock_private_chat: v.lock_private_chat === true || v.lock_chat,
      lock_chat_file_share: v.lock_chat_file_share === true || v.lock_chat,
      lock_whiteboard: v.lock_whiteboard === true,
      lock_shared_notepad: v.lock_shared_notepad === true,
    };
  }
  if (
    v.type === 'CONTENT_UPDATE' &&
    isContentKind(v.kind) &&
    isDocId(v.doc) &&
    typeof v.seq === 'number' &&
    Number.isSafeInteger(v.seq) &&
    v.seq >= 1 &&
    typeof v.from === 'string' &&
    v.from.length > 0 &&
    v.from.length <= 128 &&
    typeof v.body === 'string'
  ) {
    return { type: 'CONTENT_UPDATE', kind: v.kind, doc: v.doc, seq: v.seq, from: v.from, body: v.body };
  }
  if (v.type === 'CONTENT_CLEARED' && isContentKind(v.kind) && (v.doc === '' || isDocId(v.doc))) {
    return { type: 'CONTENT_CLEARED', kind: v.kind, doc: v.doc };
  }
  if ((v.type === 'POLL_CREATED' || v.type === 'POLL_CLOSED') && isPollId(v.poll_id)) {
    return v.type === 'POLL_CREATED' ? { type: 'POLL_CREATED', poll_id: v.poll_id } : { type: 'POLL_CLOSED', poll_id: v.poll_id };
  }
  if (v.type === 'POLL_RESPONSE' && isPollId(v.poll_id) && typeof v.total_responses === 'number' && Number.isInteger(v.total_responses) && v.total_responses >= 0) {
    return { type: 'POLL_RESPONSE', poll_id: v.poll_id, total_responses: v.total_responses, live: v.live === true };
  }
  if (v.type === 'JOIN_BREAKOUT_ROOM' && isRoomId(v.breakout_room_id) && typeof v.title === 'string') {
    const endsAt = typeof v.ends_at === 'number' && Number.isFinite(v.ends_at) ? v.ends_at : 0;
    return { type: 'JOIN_BREAKOUT_ROOM', breakout_room_id: v.breakout_room_id, title: v.title.slice(0, 200), ends_at: endsAt };
  }
  if (v.type === 'BREAKOUT_ROOM_ENDED' && isRoomId(v.breakout_room_id)) {
    return { type: 'BREAKOUT_ROOM_ENDED', breakout_room_id: v.breakout_room_id };
  }
  if (v.type === 'BREAKOUT_ROOMS_CHANGED') return { type: 'BREAKOUT_ROOMS_CHANGED' };
  if (v.type === 'BREAKOUT_ROOM_EXTENDED' && typeof v.ends_at === 'number' && Number.isFinite(v.ends_at)) {
    return { type: 'BREAKOUT_ROOM_EXTENDED', ends_at: v.ends_at };
  }
  if (v.type === 'POLLS_ACTIVE' && typeof v.is_active === 'boolean') {
    return { type: 'POLLS_ACTIVE', is_active: v.is_active };
  }
  if (v.type === 'E2EE_KEY' && isGeneration(v.generation) && v.generation >= 1 && typeof v.secret === 'string' && /^[0-9A-Za-z]{16,128}$/.test(v.secret)) {
    return { type: 'E2EE_KEY', generation: v.generation, secret: v.secret };
  }
  return null;
}

/**
 * When the participant whose metadata (Plug-N-Meet's UserMetadata JSON, set by the server)
 * this is raised their hand, in Unix ms; null when it is down or the metadata says nothing.
 */
export function handRaisedAt(metadata: string | undefined): number | null {
  if (!metadata) return null;
  let v: unknown;
  try {
    v = JSON.parse(metadata);
  } catch {
    return null;
  }
  if (!isObject(v) || !isObject(v.raised_hand) || v.raised_hand.is_raised !== true) return null;
  const at = Number(v.raised_hand.raised_at);
  return Number.isFinite(at) ? at : 0;
}

/** Whether the participant whose metadata this is presents (Plug-N-Meet's `is_presenter`). */
export function isPresenter(metadata: string | undefined): boolean {
  if (!metadata) return false;
  try {
    const v: unknown = JSON.parse(metadata);
    return isObject(v) && v.is_presenter === true;
  } catch {
    return false;
  }
}

/** Trims, collapses white space, drops control characters, caps the length. */
export function cleanName(name: string): string {
  return name
    // eslint-disable-next-line no-control-regex
    .replace(/[\u0000-\u001f\u007f\u200b-\u200f\u202a-\u202e\u2066-\u2069]/g, '')
    .replace(/\s+/g, ' ')
    .trim()
    .slice(0, MAX_NAME_CHARS);
}

export function randomId(): string {
  const b = new Uint8Array(12);
  globalThis.crypto.getRandomValues(b);
  let s = '';
  for (const x of b) s += x.toString(16).padStart(2, '0');
  return s;
}

/** Normalises a toast's severity from the server's notification_type. */
export function toastKind(notificationType: string): 'info' | 'warning' | 'error' | 'success' {
  const t = notificationType.toLowerCase();
  if (t.includes('error') || t.includes('danger')) return 'error';
  if (t.includes('warn')) return 'warning';
  if (t.includes('success')) return 'success';
  return 'info';
}

/** Milliseconds until the join token should be renewed: when 2/3 of its lifetime has passed. */
export function renewDelayMs(receivedAtMs: number, expiresAtSec: number, nowMs: number): number {
  const lifetime = expiresAtSec * 1000 - receivedAtMs;
  if (!Number.isFinite(lifetime) || lifetime <= 0) return 0;
  const due = receivedAtMs + (lifetime * 2) / 3;
  return Math.max(0, Math.round(due - nowMs));
}
