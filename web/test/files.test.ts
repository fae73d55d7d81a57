// Files in chunks: each chunk sealed on its own and bound to its file, uploader, place and count;
// reassembled in order; a chunk moved or grafted fails the whole download; a failed chunk is tried
// again and an interrupted upload resumes without sending what the server holds; the room's
// limits are checked before anything is sealed or sent.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';

import { ApiError, type FileInfo, type FileStart, type RoomFeatures } from '../src/api';
import { PLAIN, keySealer } from '../src/content';
import { newChat, parseChat } from '../src/protocol';
import { deriveContentKey } from '../src/e2ee';
import { CHUNK_BYTES, CHUNK_TRIES, FileCheckError, FileOpenError, UploadError, checkFile, chunkAad, downloadFile, isFileId, nameAad, newFileId, uploadFile, type FileApi } from '../src/files';

const SID = '3f0c9a7e-2b1d-4c5e-8f60-7a8b9c0d1e2f';
const ME = 'ann';
const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

interface Stored {
  start: FileStart;
  from: string;
  parts: Map<number, Uint8Array<ArrayBuffer>>;
  complete: boolean;
}

/** A server keeping files in memory and answering as the real one does; `fail` makes chunk PUTs fail. */
function fakeServer(from = ME) {
  const files = new Map<string, Stored>();
  const puts: Array<[string, number]> = [];
  let calls = 0;
  /** index → how many PUTs of that chunk fail next, and with what. */
  const fail = new Map<number, { times: number; error: ApiError }>();
  const info = (id: string): FileInfo & { status: true } => {
    const f = files.get(id);
    if (!f) throw new ApiError(404, 'no such file');
    return { status: true, file_id: id, purpose: f.start.purpose, name: f.start.name, mime: f.start.mime, size: f.start.size, chunks: f.start.chunks, from: f.from, complete: f.complete, received: [...f.parts.keys()].sort((a, b) => a - b) };
  };
  const api: FileApi = {
    fileStart: async (req) => {
      calls++;
      if (files.has(req.file_id)) throw new ApiError(409, 'file exists');
      files.set(req.file_id, { start: req, from, parts: new Map(), complete: false });
      return { status: true, file_id: req.file_id };
    },
    fileChunkPut: async (id, index, bytes) => {
      calls++;
      puts.push([id, index]);
      const f = files.get(id);
      if (!f || f.complete) throw new ApiError(400, 'no unfinished file');
      const bad = fail.get(index);
      if (bad && bad.times > 0) {
        bad.times--;
        throw bad.error;
      }
      f.parts.set(index, new Uint8Array(bytes));
      return { received: f.parts.size };
    },
    fileFinish: async (id) => {
      calls++;
      const f = files.get(id)!;
      const sum = [...f.parts.values()].reduce((n, p) => n + p.byteLength, 0);
      if (f.parts.size !== f.start.chunks || sum !== f.start.size) throw new ApiError(400, 'chunks missing or sizes do not add up');
      f.complete = true;
      return info(id);
    },
    fileInfo: async (id) => {
      calls++;
      return info(id);
    },
    fileChunk: async (id, index) => {
      calls++;
      const p = files.get(id)?.parts.get(index);
      if (!p) throw new ApiError(404, 'no such chunk');
      return new Uint8Array(p);
    },
  };
  return { api, files, puts, fail, calls: () => calls };
}

const sealer = async (secret = 'a'.repeat(43)) => keySealer(await deriveContentKey(secret, SID), SID);
const instant = () => Promise.resolve();

test('file ids are random, 24 of A-Za-z0-9_-', () => {
  const a = newFileId();
  const b = newFileId();
  assert.match(a, /^[A-Za-z0-9_-]{24}$/);
  assert.notEqual(a, b);
  assert.ok(isFileId(a));
  assert.ok(!isFileId('short'));
  assert.ok(!isFileId('a'.repeat(20) + '/..'));
});

test('encrypted room: every chunk sealed on its own, name and type sealed, the download is byte for byte', async () => {
  const srv = fakeServer();
  const s = await sealer();
  const bytes = new Uint8Array(randomBytes(2.5 * CHUNK_BYTES));
  const progress: number[] = [];
  const up = await uploadFile({ api: srv.api, sealer: s, me: ME, purpose: 'chat', file: new Blob([bytes]), name: 'plan.zip', mime: 'application/zip', onProgress: (n, t) => progress.push(n / t), sleep: instant });
  assert.equal(up.chunks, 3);
  assert.equal(up.name, 'plan.zip');
  const f = srv.files.get(up.file_id)!;
  assert.equal(f.start.chunks, 3);
  assert.notEqual(f.start.name, 'plan.zip', 'the server gets the name sealed');
  assert.ok(!f.start.name.includes('plan') && !f.start.mime.includes('zip'));
  assert.equal(await s.open(nameAad(up.file_id, ME), f.start.name), 'plan.zip');
  // Sizes: the sealed chunks as uploaded, what the server checks at finish.
  const stored = [...f.parts.values()].reduce((n, p) => n + p.byteLength, 0);
  assert.equal(up.size, stored);
  assert.equal(f.start.size, stored);
  assert.ok(stored > bytes.byteLength, 'each chunk carries its seal');
  // Each chunk opens alone with its own associated data, and holds no plaintext.
  for (let i = 0; i < 3; i++) {
    const sealed = f.parts.get(i)!;
    const plain = await s.openBytes(chunkAad(up.file_id, ME, i, 3), sealed);
    assert.equal(sha(plain), sha(bytes.subarray(i * CHUNK_BYTES, Math.min((i + 1) * CHUNK_BYTES, bytes.byteLength))));
    assert.equal(Buffer.from(sealed).indexOf(Buffer.from(bytes.subarray(i * CHUNK_BYTES + 1000, i * CHUNK_BYTES + 1064))), -1, `chunk ${i} stored as plaintext`);
  }
  assert.deepEqual(progress.map((p) => Math.round(p * 10) / 10), [0.4, 0.8, 1]);

  const got: number[] = [];
  const down = await downloadFile({ api: srv.api, sealer: s, fileId: up.file_id, onProgress: (d) => got.push(d) });
  assert.equal(sha(down.bytes), sha(bytes));
  assert.equal(down.name, 'plan.zip');
  assert.equal(down.mime, 'application/zip');
  assert.deepEqual(got, [1, 2, 3]);
});

test('plain room: chunks, name and type go as they are and come back whole', async () => {
  const srv = fakeServer();
  const bytes = new Uint8Array(randomBytes(CHUNK_BYTES + 17));
  const up = await uploadFile({ api: srv.api, sealer: PLAIN, me: ME, purpose: 'chat', file: bytes, name: 'notes.txt', mime: 'text/plain' });
  const f = srv.files.get(up.file_id)!;
  assert.equal(f.start.name, 'notes.txt');
  assert.equal(up.size, bytes.byteLength);
  assert.equal(f.parts.get(1)!.byteLength, 17);
  const down = await downloadFile({ api: srv.api, sealer: PLAIN, fileId: up.file_id });
  assert.equal(sha(down.bytes), sha(bytes));
  assert.equal(down.name, 'notes.txt');
});

test('an empty file is one empty chunk', async () => {
  const srv = fakeServer();
  const s = await sealer();
  const up = await uploadFile({ api: srv.api, sealer: s, me: ME, purpose: 'chat', file: new Uint8Array(0), name: 'empty.txt', mime: 'text/plain' });
  assert.equal(up.chunks, 1);
  const down = await downloadFile({ api: srv.api, sealer: s, fileId: up.file_id });
  assert.equal(down.bytes.byteLength, 0);
});

test('a chunk moved to another place, grafted from another file, or passed off as another uploader’s fails the whole download', async () => {
  const s = await sealer();
  const bytes = new Uint8Array(randomBytes(2.5 * CHUNK_BYTES));
  const fail = async (api: FileApi, fileId: string, what: string) => {
    await assert.rejects(downloadFile({ api, sealer: s, fileId }), (e: unknown) => {
      assert.ok(e instanceof FileOpenError, `${what}: ${String(e)}`);
      assert.match(e.message, /does not open with this session’s key/);
      return true;
    });
  };

  // Swapped chunks 0 and 1.
  let srv = fakeServer();
  let up = await uploadFile({ api: srv.api, sealer: s, me: ME, purpose: 'chat', file: bytes, name: 'a.zip', mime: 'application/zip' });
  let parts = srv.files.get(up.file_id)!.parts;
  const [c0, c1] = [parts.get(0)!, parts.get(1)!];
  parts.set(0, c1);
  parts.set(1, c0);
  await fail(srv.api, up.file_id, 'swapped');

  // Chunk 1 of another file of the same shape (same uploader, same chunk count).
  srv = fakeServer();
  up = await uploadFile({ api: srv.api, sealer: s, me: ME, purpose: 'chat', file: bytes, name: 'a.zip', mime: 'application/zip' });
  const other = await uploadFile({ api: srv.api, sealer: s, me: ME, purpose: 'chat', file: new Uint8Array(randomBytes(2.5 * CHUNK_BYTES)), name: 'b.zip', mime: 'application/zip' });
  srv.files.get(up.file_id)!.parts.set(1, srv.files.get(other.file_id)!.parts.get(1)!);
  await fail(srv.api, up.file_id, 'grafted');
  assert.equal(sha((await downloadFile({ api: srv.api, sealer: s, fileId: other.file_id })).bytes).length, 64, 'the other file is intact');

  // The last chunk dropped and the count lowered: the count is bound too.
  srv = fakeServer();
  up = await uploadFile({ api: srv.api, sealer: s, me: ME, purpose: 'chat', file: bytes, name: 'a.zip', mime: 'application/zip' });
  const st = srv.files.get(up.file_id)!;
  st.parts.delete(2);
  st.start = { ...st.start, chunks: 2 };
  await fail(srv.api, up.file_id, 'truncated');

  // The server says someone else uploaded it.
  srv = fakeServer();
  up = await uploadFile({ api: srv.api, sealer: s, me: ME, purpose: 'chat', file: bytes, name: 'a.zip', mime: 'application/zip' });
  srv.files.get(up.file_id)!.from = 'bob';
  await fail(srv.api, up.file_id, 'other uploader');

  // Another session key.
  srv = fakeServer();
  up = await uploadFile({ api: srv.api, sealer: s, me: ME, purpose: 'chat', file: bytes, name: 'a.zip', mime: 'application/zip' });
  await assert.rejects(downloadFile({ api: srv.api, sealer: await sealer('b'.repeat(43)), fileId: up.file_id }), FileOpenError);
});

test('a chunk that fails is tried again with growing pauses; a refusal is not', async () => {
  const srv = fakeServer();
  const s = await sealer();
  const pauses: number[] = [];
  const sleep = (ms: number) => (pauses.push(ms), Promise.resolve());
  srv.fail.set(1, { times: CHUNK_TRIES - 1, error: new ApiError(0, 'network error') });
  const bytes = new Uint8Array(randomBytes(2 * CHUNK_BYTES + 5));
  const up = await uploadFile({ api: srv.api, sealer: s, me: ME, purpose: 'chat', file: bytes, name: 'a.zip', mime: 'application/zip', sleep });
  assert.deepEqual(pauses, [500, 1000]);
  assert.equal(srv.puts.filter(([, i]) => i === 1).length, CHUNK_TRIES);
  assert.equal(sha((await downloadFile({ api: srv.api, sealer: s, fileId: up.file_id })).bytes), sha(bytes));

  const srv2 = fakeServer();
  srv2.fail.set(0, { times: 1, error: new ApiError(403, 'chat file sharing is locked') });
  await assert.rejects(uploadFile({ api: srv2.api, sealer: s, me: ME, purpose: 'chat', file: bytes, name: 'a.zip', mime: 'application/zip', sleep }), /chunk 1 of 3 after 1 try: chat file sharing is locked/);
  // A finish that fails can be continued too: every chunk is there, so only finish is asked again.
  const srv3 = fakeServer();
  const finish = srv3.api.fileFinish;
  srv3.api.fileFinish = () => Promise.reject(new ApiError(0, 'network error'));
  let id3 = '';
  await assert.rejects(uploadFile({ api: srv3.api, sealer: s, me: ME, purpose: 'chat', file: bytes, name: 'a.zip', mime: 'application/zip', sleep }), (e: unknown) => {
    assert.ok(e instanceof UploadError && /did not finish: network error/.test(e.message), String(e));
    id3 = e.fileId;
    return true;
  });
  srv3.api.fileFinish = finish;
  const puts = srv3.puts.length;
  await uploadFile({ api: srv3.api, sealer: s, me: ME, purpose: 'chat', file: bytes, name: 'a.zip', mime: 'application/zip', resume: id3 });
  assert.equal(srv3.puts.length, puts, 'no chunk sent again');
  assert.equal(srv3.files.get(id3)!.complete, true);
  assert.equal(srv2.puts.length, 1);
});

test('an interrupted upload resumes: the chunks the server holds are not sent again', async () => {
  const srv = fakeServer();
  const s = await sealer();
  const bytes = new Uint8Array(randomBytes(3 * CHUNK_BYTES + 100));
  let fileId = '';
  srv.fail.set(2, { times: CHUNK_TRIES, error: new ApiError(503, 'busy') });
  await assert.rejects(uploadFile({ api: srv.api, sealer: s, me: ME, purpose: 'chat', file: bytes, name: 'a.zip', mime: 'application/zip', sleep: instant }), (e: unknown) => {
    assert.ok(e instanceof UploadError, String(e));
    assert.match(e.message, /stopped at chunk 3 of 4 after 3 tries: busy/);
    fileId = e.fileId;
    return true;
  });
  assert.ok(isFileId(fileId));
  assert.equal(fileId, srv.puts[0]![0], 'the error names the upload to continue');
  assert.equal(srv.files.get(fileId)!.complete, false);
  const before = srv.puts.length;
  const up = await uploadFile({ api: srv.api, sealer: s, me: ME, purpose: 'chat', file: bytes, name: 'a.zip', mime: 'application/zip', resume: fileId, sleep: instant });
  assert.equal(up.file_id, fileId);
  assert.deepEqual(
    srv.puts.slice(before).map(([, i]) => i),
    [2, 3],
    'only the chunks the server did not hold',
  );
  assert.equal(sha((await downloadFile({ api: srv.api, sealer: s, fileId })).bytes), sha(bytes));

  // Another file under that id is refused, not mixed in.
  const srv2 = fakeServer();
  srv2.fail.set(1, { times: CHUNK_TRIES, error: new ApiError(0, 'network error') });
  let id2 = '';
  await assert.rejects(uploadFile({ api: srv2.api, sealer: s, me: ME, purpose: 'chat', file: bytes, name: 'a.zip', mime: 'application/zip', sleep: instant }), (e: unknown) => {
    id2 = (e as UploadError).fileId;
    return e instanceof UploadError;
  });
  await assert.rejects(uploadFile({ api: srv2.api, sealer: s, me: ME, purpose: 'chat', file: bytes.subarray(0, CHUNK_BYTES * 2), name: 'a.zip', mime: 'application/zip', resume: id2 }), /the server holds a different file/);
});

test('the room’s limits are checked in the browser before anything is sealed or sent', async () => {
  const features: RoomFeatures = { chat_features: { is_allow: true, is_allow_file_upload: true, allowed_file_types: ['jpg', 'zip', '.PDF'], max_file_size: '2' } };
  checkFile({ name: 'ok.zip', size: 2 * 1024 * 1024 }, 'chat', features);
  checkFile({ name: 'Scan.pdf', size: 10 }, 'chat', features);
  assert.throws(() => checkFile({ name: 'big.zip', size: 2 * 1024 * 1024 + 1 }, 'chat', features), (e: unknown) => e instanceof FileCheckError && /too large to share: 2\.0 MB, the limit is 2 MB/.test(e.message));
  assert.throws(() => checkFile({ name: 'run.exe', size: 10 }, 'chat', features), (e: unknown) => e instanceof FileCheckError && /\.exe files are not allowed here \(allowed: \.jpg, \.zip, \.pdf\)/.test(e.message));
  assert.throws(() => checkFile({ name: 'README', size: 10 }, 'chat', features), /files without an extension are not allowed/);
  assert.throws(() => checkFile({ name: 'a.zip', size: 10 }, 'chat', { chat_features: { is_allow_file_upload: false } }), /File sharing is turned off/);
  assert.throws(() => checkFile({ name: 'p.png', size: 11 << 20 }, 'page', {}), /larger than the 10 MiB/);
  assert.throws(() => checkFile({ name: 'd.pdf', size: 31 << 20 }, 'whiteboard', { whiteboard_features: { max_allowed_file_size: '30' } }), /too large for the whiteboard/);
  checkFile({ name: 'anything', size: 10 }, 'chat', {}); // no limits given: the server's defaults apply there

  const srv = fakeServer();
  let sealed = 0;
  const s = await sealer();
  const counting = { ...s, sealBytes: (w: string[], b: Uint8Array) => (sealed++, s.sealBytes(w, b)), seal: (w: string[], t: string) => (sealed++, s.seal(w, t)) };
  await assert.rejects(uploadFile({ api: srv.api, sealer: counting, me: ME, purpose: 'chat', file: new Uint8Array(3 << 20), name: 'big.zip', mime: 'application/zip', features }), FileCheckError);
  await assert.rejects(uploadFile({ api: srv.api, sealer: counting, me: ME, purpose: 'chat', file: new Uint8Array(10), name: 'x.exe', mime: 'application/octet-stream', features }), FileCheckError);
  assert.equal(sealed, 0, 'nothing sealed');
  assert.equal(srv.calls(), 0, 'nothing sent');
});

test('a chat message’s file is checked strictly: id, name, size and type', () => {
  const file = { file_id: newFileId(), name: 'plan.zip', size: 2621527, mime: 'application/zip' };
  const m = { ...newChat('ann', 'Ann', '', 1000), file };
  assert.deepEqual(parseChat(m, 'ann')?.file, file, 'a file needs no text with it');
  assert.equal(parseChat({ ...m, file: undefined }, 'ann'), null, 'without a file, an empty text is refused');
  const bad: unknown[] = [
    null,
    'plan.zip',
    { ...file, file_id: 'short' },
    { ...file, file_id: '../../etc/passwd/../../x' },
    { ...file, name: '' },
    { ...file, name: '  ' },
    { ...file, name: 'x'.repeat(256) },
    { ...file, size: -1 },
    { ...file, size: 1.5 },
    { ...file, size: '10' },
    { ...file, size: 3 * 1024 ** 3 },
    { ...file, mime: 7 },
    { ...file, mime: 'x'.repeat(256) },
  ];
  for (const f of bad) assert.equal(parseChat({ ...m, file: f }, 'ann'), null, `refused: ${JSON.stringify(f)?.slice(0, 60)}`);
  const extra = parseChat({ ...m, file: { ...file, evil: '<script>' } }, 'ann');
  assert.deepEqual(Object.keys(extra!.file!).sort(), ['file_id', 'mime', 'name', 'size'], 'only the known fields are kept');
});
