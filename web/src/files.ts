// Files the server keeps for the session (docs/content.md, "Files"): shared in chat (purpose
// `chat`), documents to put on the whiteboard (`whiteboard`) and the whiteboard's page images
// (`page`). A file goes up in chunks of 1 MiB of plaintext; in an encrypted room each chunk is
// sealed on its own, bound to its file, its uploader, its place and the chunk count, so the
// server (which sees only envelopes) cannot reorder, drop, swap or graft chunks without the
// download failing. The name and type are sealed too: the server never learns what is shared.
//
// The server cannot look inside ciphertext, so the room's limits on what may be shared (size,
// type) are checked here, before anything is sealed (`checkFile`).
//
// Nothing is cached: a download fetches the chunks again (`cache: 'no-store'` in Api), and the
// bytes live only as long as the caller keeps them.

import { ApiError, type Api, type FileInfo, type FilePurpose, type RoomFeatures } from './api';
import type { ContentSealer } from './content';

/** Plaintext bytes per chunk (the server takes at most 1 MiB + 1 KiB per chunk: room for a seal). */
export const CHUNK_BYTES = 1 << 20;
/** Tries per chunk upload before the upload fails (it can be resumed with `resume`). */
export const CHUNK_TRIES = 3;
/** A page image of the whiteboard: at most this many bytes (docs/content.md). */
export const MAX_PAGE_BYTES = 10 << 20;
/** Chunks a download accepts; 2 GiB (the session's cap) of 1 MiB chunks, so a lying server cannot make us loop for ever. */
const MAX_CHUNKS = 2048;

const FILE_ID_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-';
const FILE_ID_RE = /^[A-Za-z0-9_-]{16,64}$/;

/** The routes of Api this module uses (a fake in unit tests). */
export type FileApi = Pick<Api, 'fileStart' | 'fileChunkPut' | 'fileFinish' | 'fileInfo' | 'fileChunk'>;

/** What a finished upload is, as a chat message or a whiteboard document names it. */
export interface UploadedFile {
  file_id: string;
  name: string;
  /** Bytes stored (the sum of the chunks as uploaded: sealed in an encrypted room). */
  size: number;
  mime: string;
  chunks: number;
}

export interface DownloadedFile {
  bytes: Uint8Array<ArrayBuffer>;
  name: string;
  mime: string;
}

/** A file that is refused before anything is sent, with a message for the person sharing it. */
export class FileCheckError extends Error {
  override name = 'FileCheckError';
}

/** An upload that stopped after it started: `fileId` continues it (`resume`). */
export class UploadError extends Error {
  override name = 'UploadError';
  constructor(
    message: string,
    readonly fileId: string,
  ) {
    super(message);
  }
}

/** A download whose chunks, name or type do not open with this session's key (or were tampered with). */
export class FileOpenError extends Error {
  override name = 'FileOpenError';
}

/** A random file id: 24 of A-Z a-z 0-9 _ - (144 bits), from the browser's CSPRNG. */
export function newFileId(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(24));
  let id = '';
  for (const b of bytes) id += FILE_ID_ALPHABET[b & 63];
  return id;
}

export function isFileId(v: unknown): v is string {
  return typeof v === 'string' && FILE_ID_RE.test(v);
}

/** What a chunk's seal binds: its file, who uploaded it (as the server stamps it), its place, the count. */
export function chunkAad(fileId: string, from: string, index: number, chunks: number): string[] {
  return ['file', fileId, from, String(index), String(chunks)];
}

export function nameAad(fileId: string, from: string): string[] {
  return ['file-name', fileId, from];
}

export function mimeAad(fileId: string, from: string): string[] {
  return ['file-mime', fileId, from];
}

/** How many chunks `size` bytes of plaintext make (an empty file is one empty chunk). */
export function chunkCount(size: number): number {
  return Math.max(1, Math.ceil(size / CHUNK_BYTES));
}

/** The lower-case extension of a file name, without the dot ('' when there is none). */
export function extensionOf(name: string): string {
  const dot = name.lastIndexOf('.');
  return dot > 0 && dot < name.length - 1 ? name.slice(dot + 1).toLowerCase() : '';
}

/** A size limit in MB from the room features (a number, or the decimal string the server sends). */
function megabytes(v: unknown): number | null {
  const n = typeof v === 'string' && /^\d+$/.test(v) ? Number(v) : v;
  return typeof n === 'number' && Number.isFinite(n) && n > 0 ? n : null;
}

/**
 * Whether the room lets this file be shared for `purpose`; throws FileCheckError saying why not.
 * `chat`: file sharing on, at most `chat_features.max_file_size` MB, an extension listed in
 * `chat_features.allowed_file_types` (when the list is given). `whiteboard`: at most
 * `whiteboard_features.max_allowed_file_size` MB. `page`: at most 10 MiB.
 */
export function checkFile(f: { name: string; size: number }, purpose: FilePurpose, features: RoomFeatures | undefined): void {
  const mb = (n: number) => `${n} MB`;
  if (purpose === 'chat') {
    const chat = features?.chat_features;
    if (chat?.is_allow === false || chat?.is_allow_file_upload === false) throw new FileCheckError('File sharing is turned off in this meeting.');
    const max = megabytes(chat?.max_file_size);
    if (max !== null && f.size > max * 1024 * 1024) throw new FileCheckError(`“${f.name}” is too large to share: ${formatBytes(f.size)}, the limit is ${mb(max)}.`);
    const types = Array.isArray(chat?.allowed_file_types) ? chat.allowed_file_types.filter((t): t is string => typeof t === 'string' && t.length > 0) : [];
    if (types.length > 0) {
      const ext = extensionOf(f.name);
      const allowed = types.map((t) => t.replace(/^\./, '').toLowerCase());
      if (!ext || !allowed.includes(ext)) {
        throw new FileCheckError(`“${f.name}” cannot be shared: ${ext ? `.${ext} files are` : 'files without an extension are'} not allowed here (allowed: ${allowed.map((t) => `.${t}`).join(', ')}).`);
      }
    }
  } else if (purpose === 'whiteboard') {
    const wb = features?.whiteboard_features as { max_allowed_file_size?: unknown } | undefined;
    const max = megabytes(wb?.max_allowed_file_size);
    if (max !== null && f.size > max * 1024 * 1024) throw new FileCheckError(`“${f.name}” is too large for the whiteboard: ${formatBytes(f.size)}, the limit is ${mb(max)}.`);
  } else if (f.size > MAX_PAGE_BYTES) {
    throw new FileCheckError(`A page image of ${formatBytes(f.size)} is larger than the 10 MiB a page may be.`);
  }
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KB`;
  return `${(n / (1024 * 1024)).toFixed(1)} MB`;
}

export interface UploadOptions {
  api: FileApi;
  /** The session's content sealer (`PLAIN` in a plain room). */
  sealer: ContentSealer;
  /** Our identity: the `from` the server will stamp on the file, bound into every seal. */
  me: string;
  purpose: FilePurpose;
  file: Blob | Uint8Array;
  name: string;
  mime: string;
  /** Plaintext bytes sent so far and in all (after each chunk; chunks skipped on resume count as sent). */
  onProgress?: (sent: number, total: number) => void;
  /** The room's features: when given, `checkFile` runs before anything is sealed or sent. */
  features?: RoomFeatures;
  /** Continue an upload that stopped (same file, same name): the chunks the server holds are not sent again. */
  resume?: string;
  /** Waits between tries of a chunk (tests make it instant). */
  sleep?: (ms: number) => Promise<void>;
}

const wait = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Whether a failed request may succeed if tried again (the network, the server's load). */
function transient(e: unknown): boolean {
  if (!(e instanceof ApiError)) return true;
  return e.httpStatus === 0 || e.httpStatus === 408 || e.httpStatus === 429 || e.httpStatus >= 500;
}

async function sliceOf(file: Blob | Uint8Array, start: number, end: number): Promise<Uint8Array<ArrayBuffer>> {
  if (file instanceof Uint8Array) return new Uint8Array(file.subarray(start, end));
  return new Uint8Array(await file.slice(start, end).arrayBuffer());
}

/**
 * Uploads a file in chunks (sealed in an encrypted room) and finishes it. Returns what names it:
 * `{file_id, name, size, mime, chunks}` (`name` and `mime` in clear: the caller decides where they
 * travel, e.g. inside sealed chat). A chunk that fails is tried again up to CHUNK_TRIES times with
 * growing pauses; an upload that still fails can be continued with `resume: file_id`.
 */
export async function uploadFile(o: UploadOptions): Promise<UploadedFile> {
  const { api, sealer, me, purpose, file } = o;
  const sleep = o.sleep ?? wait;
  const total = file instanceof Uint8Array ? file.byteLength : file.size;
  if (o.features) checkFile({ name: o.name, size: total }, purpose, o.features);
  const chunks = chunkCount(total);
  const fileId = o.resume ?? newFileId();
  if (!isFileId(fileId)) throw new Error(`cannot resume upload: “${fileId}” is not a file id`);
  const plainLen = (i: number) => Math.min(CHUNK_BYTES, total - i * CHUNK_BYTES);
  const seal = async (i: number) => sealer.sealBytes(chunkAad(fileId, me, i, chunks), await sliceOf(file, i * CHUNK_BYTES, i * CHUNK_BYTES + plainLen(i)));

  // What a seal adds is the same for every chunk (version, IV, tag): the first sealed chunk
  // tells, so the size the server checks at `finish` is known before the upload starts.
  const first = await seal(0);
  const overhead = first.byteLength - plainLen(0);
  const size = total + chunks * overhead;

  let received = new Set<number>();
  if (o.resume) {
    const info = await api.fileInfo(fileId);
    if (info.complete) return { file_id: fileId, name: o.name, size: info.size, mime: o.mime, chunks: info.chunks };
    if (info.chunks !== chunks || info.size !== size || info.purpose !== purpose) {
      throw new Error(`cannot resume upload ${fileId}: the server holds a different file (${info.chunks} chunks, ${info.size} bytes; this one is ${chunks} chunks, ${size} bytes)`);
    }
    received = new Set(Array.isArray(info.received) ? info.received : []);
  } else {
    const [name, mime] = await Promise.all([sealer.seal(nameAad(fileId, me), o.name), sealer.seal(mimeAad(fileId, me), o.mime)]);
    await api.fileStart({ file_id: fileId, purpose, name, mime, size, chunks });
  }

  try {
    return await sendChunks(o, { fileId, chunks, total, size, first, received, seal, plainLen, sleep });
  } catch (e) {
    if (e instanceof UploadError) throw e;
    const why = e instanceof ApiError ? e.serverMsg || `HTTP ${e.httpStatus}` : e instanceof Error ? e.message : String(e);
    throw new UploadError(`upload of “${o.name}” did not finish: ${why}`, fileId);
  }
}

interface Pending {
  fileId: string;
  chunks: number;
  total: number;
  size: number;
  first: Uint8Array<ArrayBuffer>;
  received: Set<number>;
  seal: (i: number) => Promise<Uint8Array<ArrayBuffer>>;
  plainLen: (i: number) => number;
  sleep: (ms: number) => Promise<void>;
}

/** The chunks the server does not hold yet, each tried up to CHUNK_TRIES times, then `finish`. */
async function sendChunks(o: UploadOptions, p: Pending): Promise<UploadedFile> {
  const { api } = o;
  const { fileId, chunks, total, size, first, received, seal, plainLen, sleep } = p;
  let sent = 0;
  for (let i = 0; i < chunks; i++) {
    if (!received.has(i)) {
      const body = i === 0 ? first : await seal(i);
      for (let attempt = 1; ; attempt++) {
        try {
          await api.fileChunkPut(fileId, i, body);
          break;
        } catch (e) {
          if (attempt >= CHUNK_TRIES || !transient(e)) {
            const why = e instanceof ApiError ? e.serverMsg || `HTTP ${e.httpStatus}` : String(e);
            throw new UploadError(`upload of “${o.name}” stopped at chunk ${i + 1} of ${chunks} after ${attempt} ${attempt === 1 ? 'try' : 'tries'}: ${why}`, fileId);
          }
          await sleep(500 * 2 ** (attempt - 1));
        }
      }
    }
    sent += plainLen(i);
    o.onProgress?.(sent, total);
  }
  const done = await api.fileFinish(fileId);
  if (done.chunks !== chunks || done.size !== size) throw new Error(`the server finished ${fileId} with ${done.chunks} chunks and ${done.size} bytes, not ${chunks} and ${size}`);
  return { file_id: fileId, name: o.name, size, mime: o.mime, chunks };
}

export interface DownloadOptions {
  api: FileApi;
  sealer: ContentSealer;
  fileId: string;
  /** Chunks fetched so far and in all. */
  onProgress?: (done: number, chunks: number) => void;
}

const NO_OPEN = 'this file does not open with this session’s key';

/**
 * Fetches a finished file's chunks, opens each one (bound to the uploader the server reports, its
 * place and the count) and joins them; opens the name and type. Any part that does not open makes
 * the whole download fail with FileOpenError: a file is never handed over partly or out of order.
 */
export async function downloadFile(o: DownloadOptions): Promise<DownloadedFile> {
  const { api, sealer, fileId } = o;
  if (!isFileId(fileId)) throw new Error(`“${fileId}” is not a file id`);
  const info: FileInfo = await api.fileInfo(fileId);
  if (info.complete !== true) throw new Error(`file ${fileId} is not finished uploading yet`);
  const { chunks, from } = info;
  if (!Number.isInteger(chunks) || chunks < 1 || chunks > MAX_CHUNKS) throw new Error(`file ${fileId}: the server reports ${String(chunks)} chunks`);
  if (typeof from !== 'string' || !from) throw new Error(`file ${fileId}: the server reports no uploader`);
  if (typeof info.name !== 'string' || typeof info.mime !== 'string') throw new Error(`file ${fileId}: the server reports no name or type`);

  let name: string;
  let mime: string;
  try {
    [name, mime] = await Promise.all([sealer.open(nameAad(fileId, from), info.name), sealer.open(mimeAad(fileId, from), info.mime)]);
  } catch {
    throw new FileOpenError(`${NO_OPEN} (its name or type)`);
  }
  const parts: Uint8Array[] = [];
  let length = 0;
  for (let i = 0; i < chunks; i++) {
    const sealed = await api.fileChunk(fileId, i);
    let plain: Uint8Array;
    try {
      plain = await sealer.openBytes(chunkAad(fileId, from, i, chunks), sealed);
    } catch {
      throw new FileOpenError(`${NO_OPEN} (chunk ${i + 1} of ${chunks})`);
    }
    parts.push(plain);
    length += plain.byteLength;
    o.onProgress?.(i + 1, chunks);
  }
  const bytes = new Uint8Array(length);
  let at = 0;
  for (const p of parts) {
    bytes.set(p, at);
    at += p.byteLength;
  }
  return { bytes, name, mime };
}

/**
 * A file name that is safe to offer for saving: no path, no control characters, not empty.
 * (The name comes from another participant.)
 */
export function safeFileName(name: string): string {
  const base = name.split(/[\\/]/).pop() ?? '';
  // eslint-disable-next-line no-control-regex
  const clean = base.replace(/[\u0000-\u001f\u007f]/g, '').trim().slice(0, 200);
  return clean && clean !== '.' && clean !== '..' ? clean : 'download';
}
