// The browser API of the Enclave server (same origin, POST + JSON, `Authorization: <join token>`).
// The join token lives only in this object's memory: never in storage, a URL or a log.

import type { E2eeMode } from './messages';
import { serverUrl } from './embed';
import { isGeneration } from './protocol';

export interface RoomFeatures {
  allow_webcams?: boolean;
  mute_on_start?: boolean;
  allow_screen_share?: boolean;
  admin_only_webcams?: boolean;
  /** `max_file_size`: MB (the server sends a decimal string); `allowed_file_types`: extensions without the dot. */
  chat_features?: { is_allow?: boolean; is_allow_file_upload?: boolean; allowed_file_types?: string[]; max_file_size?: number | string };
  shared_note_pad_features?: { is_allow?: boolean };
  waiting_room_features?: { is_active?: boolean; waiting_room_msg?: string };
  recording_features?: { is_allow?: boolean; is_allow_cloud?: boolean; is_allow_local?: boolean };
  external_broadcasting_features?: { is_allow?: boolean; is_allow_rtmp?: boolean };
  end_to_end_encryption_features?: {
    is_enabled?: boolean;
    enabled_self_insert_encryption_key?: boolean;
    included_chat_messages?: boolean;
  };
  [k: string]: unknown;
}

export interface VerifyReply {
  status: true;
  msg: string;
  room: {
    room_id: string;
    title: string;
    sid: string;
    welcome_message?: string;
    logout_url?: string;
    /** A breakout room: its main room, and when its time is up (Unix seconds; 0: no limit). */
    is_breakout_room?: boolean;
    parent_room_id?: string;
    ends_at?: number;
    features?: RoomFeatures;
    default_lock_settings?: {
      lock_microphone?: boolean;
      lock_webcam?: boolean;
      lock_screen_sharing?: boolean;
      lock_chat?: boolean;
      lock_private_chat?: boolean;
      lock_chat_file_share?: boolean;
      lock_whiteboard?: boolean;
      lock_shared_notepad?: boolean;
    };
  };
  /** `is_observer`: asked to be hidden in an encrypted room, so shown to everyone and silent. */
  user: {
    user_id: string;
    name: string;
    is_admin: boolean;
    is_hidden?: boolean;
    is_observer?: boolean;
    lock_chat?: boolean;
    lock_private_chat?: boolean;
    lock_chat_file_share?: boolean;
    lock_whiteboard?: boolean;
    lock_shared_notepad?: boolean;
  };
  media: { url: string; token: string };
  /** `secret` and `generation`: the key epoch drawn for this caller (server-generated-key rooms). */
  e2ee: { enabled: boolean; mode: E2eeMode; secret?: string; generation?: number; history_secret?: string; content_secret?: string; included_chat_messages?: boolean; included_whiteboard?: boolean };
  expires_at: number;
  /** Whether the server is recording the room / broadcasting it over RTMP right now. */
  is_recording?: boolean;
  is_active_rtmp?: boolean;
}

/** verifyToken in a waiting room before an admin lets this user in: nothing to join with yet. */
export interface WaitingReply {
  status: true;
  msg: string;
  waiting: true;
  waiting_room_msg: string;
  room: { room_id: string; title: string };
  user: { user_id: string; name: string; is_admin: boolean; is_hidden?: boolean };
  expires_at: number;
}

export function isWaiting(r: VerifyReply | WaitingReply): r is WaitingReply {
  return (r as WaitingReply).waiting === true;
}

/** Someone in the waiting room, as admins see them. */
export interface WaitingUser {
  user_id: string;
  name: string;
  waiting_seconds: number;
}

export interface WaitingListReply {
  status: true;
  is_active: boolean;
  users: WaitingUser[];
}

export interface RenewReply {
  status: true;
  token: string;
  expires_at: number;
}

/** A breakout room as its main room lists it (`id`: its room id; times in Unix seconds). */
export interface BreakoutRoom {
  id: string;
  title: string;
  duration: number;
  started?: boolean;
  created: number;
  ends_at: number;
  users: Array<{ id: string; name: string; joined: boolean }>;
}

export interface BreakoutPlan {
  duration: number;
  welcome_msg?: string;
  rooms: Array<{ id: string; title: string; users: Array<{ id: string; name: string }> }>;
}

/** A poll as the server keeps it (texts sealed in an encrypted room: `is_sealed`). */
export interface PollInfo {
  id: string;
  room_id?: string;
  question: string;
  options: Array<{ id: number; text: string }>;
  is_running: boolean;
  created: number;
  created_by: string;
  closed_by: string;
  is_anonymous: boolean;
  live_results: boolean;
  is_sealed: boolean;
}

export interface PollResult {
  question: string;
  total_responses: number;
  options: Array<{ id: number; text: string; vote_count: number }>;
  is_running: boolean;
}

export interface NewPoll {
  poll_id: string;
  question: string;
  options: Array<{ id: number; text: string }>;
  is_anonymous: boolean;
  live_results: boolean;
}

/** The reply to an admin task (recording, RTMP). */
export interface TaskReply {
  status: true;
  msg: string;
}

export type RecordingTask = 'START_RECORDING' | 'STOP_RECORDING';

export class ApiError extends Error {
  constructor(
    /** HTTP status; 0 when the server could not be reached. */
    readonly httpStatus: number,
    /** The server's `msg` (often a translation key such as notifications.token-expired). */
    readonly serverMsg: string,
  ) {
    super(`API error ${httpStatus}: ${serverMsg}`);
    this.name = 'ApiError';
  }
}

/** A reply of the browser API: its JSON when `status` is true, otherwise an ApiError with `msg`. */
async function answer<T>(res: Response): Promise<T> {
  let json: unknown;
  try {
    json = await res.json();
  } catch {
    json = undefined;
  }
  const obj = (typeof json === 'object' && json !== null ? json : {}) as { status?: unknown; msg?: unknown };
  if (!res.ok || obj.status !== true) {
    throw new ApiError(res.ok ? 400 : res.status, typeof obj.msg === 'string' ? obj.msg : '');
  }
  return obj as T;
}

export class Api {
  #token: string;

  /** `base`: the server's base URL (`./` on the server's own page; see embed.ts). */
  constructor(
    token: string,
    readonly base = './',
  ) {
    this.#token = token;
  }

  setToken(token: string): void {
    this.#token = token;
  }

  forget(): void {
    this.#token = '';
  }

  private post<T>(path: string, body: unknown): Promise<T> {
    return this.request<T>('POST', path, body);
  }

  private async request<T>(method: 'GET' | 'POST', path: string, body?: unknown): Promise<T> {
    let res: Response;
    try {
      res = await fetch(serverUrl(this.base, path), {
        method,
        headers: method === 'POST' ? { Authorization: this.#token, 'Content-Type': 'application/json' } : { Authorization: this.#token },
        body: method === 'POST' ? JSON.stringify(body ?? {}) : undefined,
        credentials: 'omit',
        cache: 'no-store',
        referrerPolicy: 'no-referrer',
      });
    } catch {
      throw new ApiError(0, 'network error');
    }
    return answer<T>(res);
  }

  verifyToken(): Promise<VerifyReply | WaitingReply> {
    return this.post<VerifyReply | WaitingReply>('./api/verifyToken', {});
  }

  /** The room's current key epoch, for a participant in it who missed one (server-generated-key rooms). */
  async e2eeKey(): Promise<{ generation: number; secret: string }> {
    const r = await this.post<{ generation?: unknown; secret?: unknown }>('./api/e2eeKey', {});
    if (!isGeneration(r.generation) || r.generation < 1 || typeof r.secret !== 'string' || !r.secret) {
      throw new ApiError(200, 'the key epoch in the reply is malformed');
    }
    return { generation: r.generation, secret: r.secret };
  }

  /** Raises or lowers our own hand; admins lower another's (`userId`) or everyone's (`all`). */
  raiseHand(raise: boolean, userId?: string): Promise<{ status: true; changed: number }> {
    return this.post('./api/raiseHand', userId ? { raise, user_id: userId } : { raise });
  }

  /** Admins: make a participant the presenter, or take it from them (the admin presents). */
  switchPresenter(userId: string, promote: boolean): Promise<{ status: true; changed: number }> {
    return this.post('./api/switchPresenter', { task: promote ? 'PROMOTE' : 'DEMOTE', user_id: userId });
  }

  /** Admins: lock or unlock a service for one participant or everyone (`all`). */
  updateLockSettings(userId: string | 'all', service: 'mic' | 'webcam' | 'screenShare' | 'chat' | 'privateChat' | 'chatFile' | 'whiteboard' | 'sharedNotepad', lock: boolean): Promise<{ status: true; changed: number }> {
    return this.post('./api/updateLockSettings', { user_id: userId, service, direction: lock ? 'lock' : 'unlock' });
  }

  /** Admins: who waits in the waiting room now. */
  waitingList(): Promise<WaitingListReply> {
    return this.post<WaitingListReply>('./api/waitingRoom/list', {});
  }

  /** Admins: let one waiting user (or everyone waiting) in. */
  approveWaiting(userId: string | 'all'): Promise<{ status: true; approved: string[] }> {
    return this.post('./api/waitingRoom/approveUsers', { user_id: userId });
  }

  /** The session's polls, oldest first, and whether the polls panel is open for everyone. */
  async listPolls(): Promise<{ polls: PollInfo[]; is_active: boolean }> {
    const r = await this.request<{ polls?: PollInfo[]; is_active?: boolean }>('GET', './api/polls/listPolls');
    return { polls: Array.isArray(r.polls) ? r.polls : [], is_active: r.is_active === true };
  }

  /** Admins: asks a poll (texts already sealed in an encrypted room). */
  createPoll(p: NewPoll): Promise<{ status: true; poll_id: string }> {
    return this.post('./api/polls/create', p);
  }

  submitPollResponse(pollId: string, option: number): Promise<unknown> {
    return this.post('./api/polls/submitResponse', { poll_id: pollId, selected_option: option });
  }

  closePoll(pollId: string): Promise<unknown> {
    return this.post('./api/polls/closePoll', { poll_id: pollId });
  }

  activatePolls(active: boolean): Promise<unknown> {
    return this.post('./api/polls/activate', { is_active: active });
  }

  /** Whether (and what, unless the poll is anonymous) `userId` voted. */
  async pollSelection(pollId: string, userId: string): Promise<{ voted: number; has_voted: boolean }> {
    const r = await this.request<{ voted?: number; has_voted?: boolean }>('GET', `./api/polls/userSelectedOption/${encodeURIComponent(pollId)}/${encodeURIComponent(userId)}`);
    return { voted: r.voted ?? 0, has_voted: r.has_voted === true };
  }

  /** The counts (refused while the poll runs unless it is live or we are an admin). */
  async pollResult(pollId: string): Promise<PollResult> {
    const r = await this.request<{ poll_responses_result?: PollResult }>('GET', `./api/polls/pollResponsesResult/${encodeURIComponent(pollId)}`);
    if (!r.poll_responses_result) throw new ApiError(200, 'the poll result is missing');
    return r.poll_responses_result;
  }

  /** Admins: who chose what (`user_id:option:name` per vote; empty for an anonymous poll). */
  async pollRespondents(pollId: string): Promise<string[]> {
    const r = await this.request<{ responses?: Record<string, string> }>('GET', `./api/polls/pollResponsesDetails/${encodeURIComponent(pollId)}`);
    try {
      const all: unknown = JSON.parse(r.responses?.all_respondents ?? '[]');
      return Array.isArray(all) ? all.filter((x): x is string => typeof x === 'string') : [];
    } catch {
      return [];
    }
  }

  /** Admins: opens breakout rooms and assigns people. */
  createBreakoutRooms(plan: BreakoutPlan): Promise<unknown> {
    return this.post('./api/breakoutRoom/create', plan);
  }

  /** Admins: the breakout rooms running, with who is in each. */
  async listBreakoutRooms(): Promise<BreakoutRoom[]> {
    const r = await this.request<{ rooms?: BreakoutRoom[] }>('GET', './api/breakoutRoom/listRooms');
    return Array.isArray(r.rooms) ? r.rooms : [];
  }

  /** The breakout room we are assigned to, if any. */
  async myBreakoutRoom(): Promise<BreakoutRoom | null> {
    const r = await this.request<{ room?: BreakoutRoom }>('GET', './api/breakoutRoom/myRooms');
    return r.room ?? null;
  }

  /** A join token for a breakout room (ours; any, for an admin). */
  async joinBreakoutRoom(id: string): Promise<string> {
    const r = await this.post<{ token?: string }>('./api/breakoutRoom/join', { breakout_room_id: id });
    if (!r.token) throw new ApiError(200, 'no token in the reply');
    return r.token;
  }

  /** Admins: a breakout room runs `minutes` longer. */
  extendBreakoutRoom(id: string, minutes: number): Promise<unknown> {
    return this.post('./api/breakoutRoom/increaseDuration', { breakout_room_id: id, duration: minutes });
  }

  endBreakoutRoom(id: string): Promise<unknown> {
    return this.post('./api/breakoutRoom/endRoom', { breakout_room_id: id });
  }

  endAllBreakoutRooms(): Promise<unknown> {
    return this.post('./api/breakoutRoom/endAllRooms', {});
  }

  /** Admins of plain rooms: a message into every breakout room's chat. */
  breakoutMessage(msg: string): Promise<unknown> {
    return this.post('./api/breakoutRoom/sendMsg', { msg });
  }

  /** From a breakout room (even one that has ended): a join token for the main room. */
  async returnFromBreakout(): Promise<string> {
    const r = await this.post<{ token?: string }>('./api/breakoutRoom/return', {});
    if (!r.token) throw new ApiError(200, 'no token in the reply');
    return r.token;
  }

  renewToken(): Promise<RenewReply> {
    return this.post<RenewReply>('./api/renewToken', {});
  }

  endRoom(): Promise<unknown> {
    return this.post('./api/endRoom', {});
  }

  removeParticipant(userId: string, block = false): Promise<unknown> {
    return this.post('./api/removeParticipant', { user_id: userId, block_user: block });
  }

  muteTrack(userId: string, trackSid: string, muted = true): Promise<unknown> {
    return this.post('./api/muteTrack', { user_id: userId, track_sid: trackSid, muted });
  }

  /** Starts or stops cloud recording (admins, plain rooms). */
  recording(task: RecordingTask): Promise<TaskReply> {
    return this.post<TaskReply>('./api/recording', { task });
  }

  /** Starts broadcasting to `target` over RTMP(S), or stops when `target` is null (admins, plain rooms). */
  rtmp(target: { url: string; streamKey: string } | null): Promise<TaskReply> {
    const body = target ? { task: 'START_RTMP', url: target.url, stream_key: target.streamKey } : { task: 'STOP_RTMP' };
    return this.post<TaskReply>('./api/rtmp', body);
  }

  // What participants create (docs/content.md): documents as append-only logs, files in chunks.

  /** Appends one update (base64 of bytes; sealed in an encrypted room) to a document. */
  contentAppend(kind: ContentKind, doc: string, body: string): Promise<{ status: true; seq: number }> {
    return this.post('./api/content/append', { kind, doc, body });
  }

  /** A document from after `after`: its snapshot (when `after` is older) and the updates since. */
  contentLog(kind: ContentKind, doc: string, after: number): Promise<ContentLogReply> {
    return this.post<ContentLogReply>('./api/content/log', { kind, doc, after });
  }

  /** Replaces what a document keeps up to `upto` with one snapshot (writers only). */
  contentSnapshot(kind: ContentKind, doc: string, upto: number, body: string): Promise<{ status: true }> {
    return this.post('./api/content/snapshot', { kind, doc, upto, body });
  }

  /** Admins: clears one document, or every document of the kind (`doc` empty). */
  contentClear(kind: ContentKind, doc: string): Promise<{ status: true; cleared: number }> {
    return this.post('./api/content/clear', { kind, doc });
  }

  /** The documents of a kind and how far each has come. */
  contentDocs(kind: ContentKind): Promise<{ status: true; docs: ContentDocInfo[] }> {
    return this.post('./api/content/docs', { kind });
  }

  /** Announces an upload: the client chooses `file_id` (random, 16–64 of A-Z a-z 0-9 _ -). */
  fileStart(req: FileStart): Promise<{ status: true; file_id: string }> {
    return this.post('./api/files/start', req);
  }

  /** Uploads (or uploads again) one chunk of an unfinished file. */
  async fileChunkPut(fileId: string, index: number, bytes: Uint8Array<ArrayBuffer>): Promise<{ received: number }> {
    return this.bytes<{ received: number }>('PUT', `./api/files/${encodeURIComponent(fileId)}/chunk/${index}`, bytes);
  }

  /** Finishes an upload: every chunk must be there. */
  fileFinish(fileId: string): Promise<FileInfo & { status: true }> {
    return this.post('./api/files/finish', { file_id: fileId });
  }

  fileInfo(fileId: string): Promise<FileInfo & { status: true }> {
    return this.post('./api/files/info', { file_id: fileId });
  }

  /** One chunk of a file, as uploaded (sealed in an encrypted room). */
  async fileChunk(fileId: string, index: number): Promise<Uint8Array<ArrayBuffer>> {
    let res: Response;
    try {
      res = await fetch(serverUrl(this.base, `./api/files/${encodeURIComponent(fileId)}/chunk/${index}`), {
        headers: { Authorization: this.#token },
        credentials: 'omit',
        cache: 'no-store',
        referrerPolicy: 'no-referrer',
      });
    } catch {
      throw new ApiError(0, 'network error');
    }
    if (!res.ok) {
      let msg = '';
      try {
        const j = (await res.json()) as { msg?: unknown };
        if (typeof j.msg === 'string') msg = j.msg;
      } catch {
        // not JSON: the status says enough
      }
      throw new ApiError(res.status, msg || `chunk ${index} of ${fileId}: HTTP ${res.status}`);
    }
    return new Uint8Array(await res.arrayBuffer());
  }

  /** Plain rooms: converts a finished `whiteboard` file; its pages arrive as a `documents` update. */
  whiteboardConvert(fileId: string): Promise<{ status: true; document_id: string }> {
    return this.post('./api/whiteboard/convert', { file_id: fileId });
  }

  private async bytes<T>(method: 'PUT', path: string, body: Uint8Array<ArrayBuffer>): Promise<T> {
    let res: Response;
    try {
      res = await fetch(serverUrl(this.base, path), {
        method,
        headers: { Authorization: this.#token, 'Content-Type': 'application/octet-stream' },
        body,
        credentials: 'omit',
        cache: 'no-store',
        referrerPolicy: 'no-referrer',
      });
    } catch {
      throw new ApiError(0, 'network error');
    }
    return answer<T>(res);
  }
}

/** What a document is about (docs/content.md). */
export type ContentKind = 'whiteboard' | 'notepad';

export interface ContentLogReply {
  status: true;
  kind: ContentKind;
  doc: string;
  /** The last seq the document has. */
  head: number;
  snapshot: { upto: number; from: string; body: string } | null;
  updates: { seq: number; from: string; body: string }[];
}

export interface ContentDocInfo {
  doc: string;
  head: number;
  bytes: number;
}

export type FilePurpose = 'chat' | 'whiteboard' | 'page';

export interface FileStart {
  file_id: string;
  purpose: FilePurpose;
  /** Sealed in an encrypted room. */
  name: string;
  mime: string;
  /** Bytes of all chunks as uploaded. */
  size: number;
  chunks: number;
}

export interface FileInfo {
  file_id: string;
  purpose: FilePurpose;
  name: string;
  mime: string;
  size: number;
  chunks: number;
  from: string;
  complete: boolean;
  received: number[];
}

/** Checks the shape of a verifyToken reply enough that the rest of the client can trust it. */
export function validateVerifyReply(r: VerifyReply): string | null {
  if (!r.room || typeof r.room.sid !== 'string' || r.room.sid.length === 0) return 'room.sid is missing';
  if (!r.user || typeof r.user.user_id !== 'string') return 'user is missing';
  if (!r.media || typeof r.media.token !== 'string' || r.media.token.length === 0) return 'media.token is missing';
  if (!r.e2ee || typeof r.e2ee.enabled !== 'boolean') return 'e2ee is missing';
  if (r.e2ee.enabled && r.e2ee.mode === 'server_key' && (typeof r.e2ee.secret !== 'string' || !r.e2ee.secret)) {
    return 'e2ee.secret is missing';
  }
  if (r.e2ee.enabled && r.e2ee.mode === 'server_key' && (!isGeneration(r.e2ee.generation) || r.e2ee.generation < 1)) {
    return 'e2ee.generation is missing';
  }
  return null;
}

/** The signalling URL: media.url, or this page's origin over ws(s). */
export function mediaUrl(url: string, loc: { protocol: string; host: string }): string {
  if (url) return url;
  return `${loc.protocol === 'https:' ? 'wss' : 'ws'}://${loc.host}`;
}
