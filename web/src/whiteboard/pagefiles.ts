// Files of the board (page images of documents, and in a plain room the document to convert),
// uploaded and fetched through the file routes of docs/content.md: chunks of at most 1 MiB,
// each sealed in an encrypted room with the file, its sender, its index and the count bound
// in the associated data, as are the name and the type. A small uploader of the board's own,
// until the chat's files module (web/src/files.ts) is there to share.
import type { Api, FilePurpose } from '../api';
import type { ContentSealer } from '../content';

export const CHUNK = 1024 * 1024;
const FILE_ID_RE = /^[A-Za-z0-9_-]{16,64}$/;

export function newFileId(): string {
  const b = new Uint8Array(18);
  crypto.getRandomValues(b);
  let s = '';
  for (const x of b) s += String.fromCharCode(x);
  return btoa(s).replace(/\+/g, '-').replace(/\//g, '_');
}

export function chunkAad(fileId: string, from: string, index: number, chunks: number): string[] {
  return ['file', fileId, from, String(index), String(chunks)];
}

export interface UploadOptions {
  api: Api;
  sealer: ContentSealer;
  /** Our identity (what the server stamps as `from`). */
  me: string;
  purpose: FilePurpose;
  name: string;
  mime: string;
  bytes: Uint8Array;
  onProgress?: (sent: number, total: number) => void;
}

/** Uploads a file; resolves to its id once the server has every chunk. */
export async function uploadFile(o: UploadOptions): Promise<string> {
  const { api, sealer, me } = o;
  const fileId = newFileId();
  const chunks = Math.max(1, Math.ceil(o.bytes.length / CHUNK));
  const sealed: Uint8Array<ArrayBuffer>[] = [];
  for (let i = 0; i < chunks; i++) {
    sealed.push(await sealer.sealBytes(chunkAad(fileId, me, i, chunks), o.bytes.subarray(i * CHUNK, (i + 1) * CHUNK)));
  }
  const size = sealed.reduce((n, c) => n + c.length, 0);
  await api.fileStart({
    file_id: fileId,
    purpose: o.purpose,
    name: await sealer.seal(['file-name', fileId, me], o.name),
    mime: await sealer.seal(['file-mime', fileId, me], o.mime),
    size,
    chunks,
  });
  for (let i = 0; i < chunks; i++) {
    await api.fileChunkPut(fileId, i, sealed[i]);
    o.onProgress?.(i + 1, chunks);
  }
  await api.fileFinish(fileId);
  return fileId;
}

/** A finished file's bytes, opened (each chunk must open as its sender's, at its place). */
export async function downloadFile(api: Api, sealer: ContentSealer, fileId: string, maxBytes: number): Promise<{ bytes: Uint8Array<ArrayBuffer>; mime: string }> {
  if (!FILE_ID_RE.test(fileId)) throw new Error(`"${fileId}" is not a file id`);
  const info = await api.fileInfo(fileId);
  if (!info.complete) throw new Error(`file ${fileId} is not finished uploading`);
  if (!Number.isSafeInteger(info.chunks) || info.chunks < 1 || info.chunks * CHUNK > maxBytes + CHUNK) throw new Error(`file ${fileId} has ${String(info.chunks)} chunks, more than a page image may have`);
  const parts: Uint8Array[] = [];
  let total = 0;
  for (let i = 0; i < info.chunks; i++) {
    const c = await sealer.openBytes(chunkAad(fileId, info.from, i, info.chunks), await api.fileChunk(fileId, i));
    total += c.length;
    if (total > maxBytes) throw new Error(`file ${fileId} is larger than ${maxBytes} bytes`);
    parts.push(c);
  }
  const out = new Uint8Array(total);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  let mime = 'application/octet-stream';
  try {
    mime = await sealer.open(['file-mime', fileId, info.from], info.mime);
  } catch {
    // The type is a hint; the bytes opened, which is what counts.
  }
  return { bytes: out, mime };
}
