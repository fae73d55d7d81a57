// Conformance test: the official npm package `plugnmeet-sdk-js` 1.4.1 against the real
// `enclave` binary. Run with `node --test` from this directory (see README.md).
//
// Every public method of the SDK is called; the replies are checked against what a
// Plug-N-Meet compatible server must answer (../../../shared/docs/plugnmeet-server-spec.md,
// sections 1, 2, 3, 5.1 and 9).

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac, hkdfSync, randomBytes, timingSafeEqual } from 'node:crypto';
import { createRequire } from 'node:module';
import { setTimeout as sleep } from 'node:timers/promises';

import { authPost, launchEnclave } from '@enclave-tests/lib';

const require = createRequire(import.meta.url);
const { PlugNmeet } = require('plugnmeet-sdk-js');
const sdkVersion = require('plugnmeet-sdk-js/package.json').version;

let API_KEY; // 'plugnmeet'
let SECRET; // 48 random hex characters
const UUID_V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
// RFC 3339 date-time: full-date "T" full-time, with a mandatory offset.
const RFC3339 = /^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$/;
// "encryption_key" as a whole name (so `enabled_self_insert_encryption_key` does not match).
const ENCRYPTION_KEY_NAME = /(?<![A-Za-z0-9_])encryption_key/;

// The methods 1.4.1 exposes (dist/index.d.ts, class PlugNmeet). A test checks that this list is
// exactly the SDK's, and the last test checks that each one was called at least once.
const SDK_METHODS = [
  'createRoom',
  'getJoinToken',
  'isRoomActive',
  'getActiveRoomInfo',
  'getActiveRoomsInfo',
  'fetchPastRoomsInfo',
  'endRoom',
  'fetchAnalytics',
  'deleteAnalytics',
  'getAnalyticsDownloadToken',
  'fetchRecordings',
  'deleteRecordings',
  'getRecordingDownloadToken',
  'getClientFiles',
];

let server; // the server under test (launchEnclave)
let baseUrl;
let pnm; // the SDK, wrapped to record which methods were called
const called = new Set();

function tracked(sdk) {
  return new Proxy(sdk, {
    get(target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver);
      if (typeof value === 'function' && SDK_METHODS.includes(prop)) {
        return (...args) => {
          called.add(prop);
          return value.apply(target, args);
        };
      }
      return value;
    },
  });
}

/** A signed raw request (same signing as the SDK), to see HTTP status codes the SDK hides. */
function rawAuthPost(p, bodyObj, secret = SECRET) {
  return authPost(baseUrl, API_KEY, secret, p, bodyObj);
}

function b64urlJson(part) {
  return JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));
}

/** The key the server signs join tokens with (docs/security.md): never the API secret itself. */
function joinTokenKey(apiSecret) {
  return Buffer.from(hkdfSync('sha256', Buffer.from(apiSecret, 'utf8'), Buffer.from('enclave/token-keys/v1'), Buffer.from('join-token'), 32));
}

function verifyHs256(token, secret) {
  const parts = token.split('.');
  assert.equal(parts.length, 3, 'a JWT has three dot-separated parts');
  for (const p of parts) assert.match(p, /^[A-Za-z0-9_-]+$/, 'JWT parts are unpadded base64url');
  const [h, p, s] = parts;
  const header = b64urlJson(h);
  assert.equal(header.alg, 'HS256');
  const expected = createHmac('sha256', secret).update(`${h}.${p}`).digest();
  const got = Buffer.from(s, 'base64url');
  assert.equal(got.length, expected.length, 'signature length');
  assert.ok(timingSafeEqual(got, expected), 'HS256 signature must verify with the API secret');
  return { header, claims: b64urlJson(p) };
}

function parseMetadata(roomInfo) {
  assert.equal(typeof roomInfo.metadata, 'string', 'room_info.metadata is a JSON string');
  return JSON.parse(roomInfo.metadata);
}

function keyNamesDeep(value, out = new Set()) {
  if (value && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) {
      out.add(k);
      keyNamesDeep(v, out);
    }
  }
  return out;
}

before(async () => {
  // No livekit_info key and no advertised address: the SDK needs neither.
  server = await launchEnclave({ label: 'enclave', prefix: 'enclave-plugnmeet-sdk-', nodeIp: null, keepBytes: 64 * 1024 });
  ({ baseUrl, apiKey: API_KEY, secret: SECRET } = server);
  pnm = tracked(new PlugNmeet(baseUrl, API_KEY, SECRET));
});

after(async () => {
  await server?.stop();
});

describe(`plugnmeet-sdk-js ${sdkVersion} against enclave`, () => {
  const roomId = `sdkjs-${randomBytes(4).toString('hex')}`;
  const unknownRoom = `sdkjs-missing-${randomBytes(4).toString('hex')}`;
  let sid;

  test('the installed SDK is 1.4.1 and exposes exactly the expected methods', () => {
    assert.equal(sdkVersion, '1.4.1');
    const methods = Object.getOwnPropertyNames(PlugNmeet.prototype).filter((n) => n !== 'constructor');
    assert.deepEqual([...methods].sort(), [...SDK_METHODS].sort());
  });

  test('createRoom creates a room', async () => {
    const res = await pnm.createRoom({
      room_id: roomId,
      max_participants: 10,
      empty_timeout: 300,
      metadata: {
        room_title: 'SDK JS conformance',
        welcome_message: 'Welcome!',
        room_features: {
          allow_webcams: true,
          mute_on_start: false,
          allow_screen_share: true,
          allow_view_other_webcams: true,
          allow_view_other_users_list: true,
          admin_only_webcams: false,
          allow_virtual_bg: true,
          allow_raise_hand: true,
          enable_analytics: false,
          recording_features: {
            is_allow: true,
            is_allow_cloud: true,
            is_allow_local: true,
            enable_auto_cloud_recording: false,
          },
          // The 1.4.1 SDK's (old) field names; today's server must ignore unknown fields.
          chat_features: { allow_chat: true, allow_file_upload: true },
        },
        default_lock_settings: { lock_microphone: false, lock_webcam: false },
      },
    });
    assert.equal(res.status, true, `createRoom failed: ${JSON.stringify(res)}`);
    assert.equal(res.msg, 'success');
    const ri = res.room_info;
    assert.ok(ri && typeof ri === 'object', 'room_info is an object');
    assert.equal(ri.room_id, roomId);
    assert.equal(ri.room_title, 'SDK JS conformance');
    assert.match(ri.sid, UUID_V4);
    assert.match(ri.creation_time, /^\d+$/, 'creation_time is int64 as a string of digits');
    const created = Number(ri.creation_time);
    assert.ok(Math.abs(created - Date.now() / 1000) < 120, `creation_time ${created} is about now`);
    assert.equal(ri.joined_participants, '0');
    assert.equal(ri.is_running, 1);
    const md = parseMetadata(ri);
    assert.ok(md.room_features && typeof md.room_features === 'object', 'metadata.room_features exists');
    assert.equal(md.room_title, 'SDK JS conformance');
    assert.equal(md.room_features.allow_webcams, true);
    sid = ri.sid;
  });

  test('createRoom again with the same id is idempotent (same sid)', async () => {
    assert.ok(sid, 'depends on the createRoom test');
    const res = await pnm.createRoom({
      room_id: roomId,
      metadata: { room_title: 'Second title', room_features: { allow_webcams: true } },
    });
    assert.equal(res.status, true, JSON.stringify(res));
    assert.equal(res.msg, 'success');
    assert.equal(res.room_info.room_id, roomId);
    assert.equal(res.room_info.sid, sid);
  });

  test('getJoinToken returns an HS256 JWT signed with a key derived from the API secret, never with the secret itself', async () => {
    const res = await pnm.getJoinToken({
      room_id: roomId,
      user_info: { name: 'Ann', user_id: 'ann-1', is_admin: true, is_hidden: false },
    });
    assert.equal(res.status, true, JSON.stringify(res));
    assert.equal(res.msg, 'success');
    assert.equal(typeof res.token, 'string');
    const { header, claims } = verifyHs256(res.token, joinTokenKey(SECRET));
    assert.equal(header.typ, 'JWT');
    assert.equal(claims.aud, 'enclave:join', 'the token names its kind');
    // Signed with the API secret, its signature would be a valid /auth signature of its own
    // first two parts (the forgery docs/security.md describes).
    assert.throws(() => verifyHs256(res.token, SECRET), assert.AssertionError);
    assert.equal(claims.iss, API_KEY);
    assert.equal(claims.sub, 'ann-1');
    assert.equal(claims.user_id, 'ann-1');
    assert.equal(claims.room_id, roomId);
    assert.equal(claims.name, 'Ann');
    assert.equal(claims.is_admin, true);
    assert.notEqual(claims.is_hidden, true, 'is_hidden:false must not become true');
    assert.equal(typeof claims.nbf, 'number');
    assert.equal(typeof claims.exp, 'number');
    assert.ok(claims.exp > claims.nbf, 'exp > nbf');
    assert.equal(claims.exp - claims.nbf, 600, 'default token validity is 10 minutes');
    assert.ok(Math.abs(claims.nbf - Date.now() / 1000) < 120, 'nbf is about now');
    // A token signed with another secret must not verify (the check above can fail).
    assert.throws(() => verifyHs256(res.token, joinTokenKey(`${SECRET}x`)), assert.AssertionError);
  });

  test('getJoinToken for a room that does not exist', async () => {
    const res = await pnm.getJoinToken({
      room_id: unknownRoom,
      user_info: { name: 'Bob', user_id: 'bob-1', is_admin: false, is_hidden: false },
    });
    assert.equal(res.status, false);
    assert.equal(res.msg, 'room is not active');
    assert.equal(res.token, undefined, 'token is an optional field, omitted on failure');
  });

  test('isRoomActive', async () => {
    const res = await pnm.isRoomActive({ room_id: roomId });
    assert.deepEqual(res, { status: true, is_active: true, msg: 'room is active' });
    const missing = await pnm.isRoomActive({ room_id: unknownRoom });
    assert.deepEqual(missing, { status: true, is_active: false, msg: 'room not found' });
  });

  test('getActiveRoomInfo', async () => {
    const res = await pnm.getActiveRoomInfo({ room_id: roomId });
    assert.equal(res.status, true, JSON.stringify(res));
    assert.equal(res.msg, 'success');
    assert.equal(res.room.room_info.room_id, roomId);
    assert.equal(res.room.room_info.sid, sid);
    assert.ok(Array.isArray(res.room.participants_info), 'participants_info is an array');
    const md = parseMetadata(res.room.room_info);
    assert.ok(md.room_features, 'metadata.room_features exists');

    const missing = await pnm.getActiveRoomInfo({ room_id: unknownRoom });
    assert.equal(missing.status, false);
    assert.equal(missing.msg, 'room not found in active state');
    assert.equal(missing.room, null, 'room is emitted as null on failure');
  });

  test('getActiveRoomsInfo lists the room', async () => {
    const res = await pnm.getActiveRoomsInfo();
    assert.equal(res.status, true, JSON.stringify(res));
    assert.equal(res.msg, 'success');
    assert.ok(Array.isArray(res.rooms), 'rooms is an array');
    const ours = res.rooms.filter((r) => r.room_info.room_id === roomId);
    assert.equal(ours.length, 1, 'our room is listed once');
    assert.equal(ours[0].room_info.sid, sid);
    assert.ok(Array.isArray(ours[0].participants_info));
  });

  test('fetchRecordings: no recording yet', async () => {
    const res = await pnm.fetchRecordings({ room_ids: [roomId] });
    assert.equal(res.status, false);
    assert.equal(res.msg, 'no recording found');
  });

  test('deleteRecordings: unknown record', async () => {
    const res = await pnm.deleteRecordings({ record_id: 'nope' });
    assert.deepEqual(res, { status: false, msg: 'recording not found' });
  });

  test('getRecordingDownloadToken: unknown record', async () => {
    const res = await pnm.getRecordingDownloadToken({ record_id: 'nope' });
    assert.equal(res.status, false);
    assert.equal(res.msg, 'recording not found');
    assert.ok(!res.token, 'no token');
  });

  test('getClientFiles', async () => {
    const res = await pnm.getClientFiles();
    assert.equal(res.status, true, JSON.stringify(res));
    assert.equal(res.msg, 'success');
    // The embedded client's files, from which an LMS plugin builds its page
    // (<server>/assets/js/<file>, <server>/assets/css/<file>).
    assert.deepEqual(res.js, ['app.js']);
    assert.deepEqual(res.css, ['app.css']);
    const script = await fetch(`${baseUrl}/assets/js/${res.js[0]}`);
    assert.equal(script.status, 200);
    assert.match(script.headers.get('content-type'), /javascript/);
  });

  test('a wrong API secret is refused', async () => {
    const raw = await rawAuthPost('/room/create', { room_id: 'x' }, 'wrong-secret');
    assert.equal(raw.status, 401);
    assert.deepEqual(JSON.parse(raw.text), {
      status: false,
      msg: 'Failed to verify provided authentication details.',
      status_code: 'INVALID_TOKEN_OR_SIGNATURE',
    });

    const bad = new PlugNmeet(baseUrl, API_KEY, `${SECRET.slice(0, -1)}X`);
    const res = await bad.createRoom({
      room_id: `sdkjs-bad-${randomBytes(3).toString('hex')}`,
      metadata: { room_title: 'nope', room_features: { allow_webcams: true } },
    });
    // 1.4.1 parses the 401 JSON envelope like a normal reply.
    assert.equal(res.status, false);
    assert.equal(res.msg, 'Failed to verify provided authentication details.');
    assert.equal(res.room_info, undefined);
  });

  for (const [label, e2ee] of [
    ['server-generated key', { is_enabled: true }],
    ['self-insert key', { is_enabled: true, enabled_self_insert_encryption_key: true }],
  ]) {
    test(`E2EE (${label}): no key in the reply, cloud recording and broadcasting off`, async () => {
      const id = `sdkjs-e2ee-${randomBytes(4).toString('hex')}`;
      const res = await pnm.createRoom({
        room_id: id,
        metadata: {
          room_title: `E2EE ${label}`,
          room_features: { allow_webcams: true, end_to_end_encryption_features: e2ee },
        },
      });
      assert.equal(res.status, true, JSON.stringify(res));
      assert.equal(res.msg, 'success');
      assert.equal(res.room_info.room_id, id);
      assert.match(res.room_info.sid, UUID_V4);
      const md = parseMetadata(res.room_info);
      const e = md.room_features.end_to_end_encryption_features;
      assert.equal(e.is_enabled, true);
      assert.equal(
        e.enabled_self_insert_encryption_key ?? false,
        e2ee.enabled_self_insert_encryption_key ?? false,
      );
      assert.ok(!keyNamesDeep(md).has('encryption_key'), 'no encryption_key in the metadata');
      assert.doesNotMatch(JSON.stringify(res), ENCRYPTION_KEY_NAME, 'no encryption_key in the reply');
      assert.doesNotMatch(res.room_info.metadata, ENCRYPTION_KEY_NAME);
      assert.equal(md.room_features.recording_features.is_allow_cloud, false);
      assert.equal(md.room_features.external_broadcasting_features.is_allow, false);
      // Spec 4.2: with E2EE (either mode) ingress and SIP dial-in are switched off too.
      assert.equal(md.room_features.ingress_features.is_allow, false);
      assert.equal(md.room_features.sip_dial_in_features.is_allow, false);

      // The key must not leak through the other room-info endpoints either.
      const info = await pnm.getActiveRoomInfo({ room_id: id });
      assert.equal(info.status, true, JSON.stringify(info));
      assert.doesNotMatch(JSON.stringify(info), ENCRYPTION_KEY_NAME, 'getActiveRoomInfo leaks no key');
      const all = await pnm.getActiveRoomsInfo();
      assert.equal(all.status, true);
      assert.ok(all.rooms.some((r) => r.room_info.room_id === id));
      assert.doesNotMatch(JSON.stringify(all), ENCRYPTION_KEY_NAME, 'getActiveRoomsInfo leaks no key');

      const end = await pnm.endRoom({ room_id: id });
      assert.equal(end.status, true, JSON.stringify(end));
    });
  }

  test('endRoom ends the room; a second endRoom fails', async () => {
    const res = await pnm.endRoom({ room_id: roomId });
    assert.deepEqual(res, { status: true, msg: 'success' });
    const active = await pnm.isRoomActive({ room_id: roomId });
    assert.equal(active.status, true);
    assert.equal(active.is_active, false);
    const again = await pnm.endRoom({ room_id: roomId });
    assert.deepEqual(again, { status: false, msg: 'room not found or not active' });
  });

  test('fetchPastRoomsInfo lists the ended room', async () => {
    assert.ok(sid, 'depends on the createRoom test');
    const params = { room_ids: [roomId], from: 0, limit: 10, order_by: 'DESC' };
    let res;
    const deadline = Date.now() + 5000;
    for (;;) {
      res = await pnm.fetchPastRoomsInfo(params);
      if (res.status === true || Date.now() > deadline) break;
      await sleep(100);
    }
    assert.equal(res.status, true, JSON.stringify(res));
    assert.equal(res.msg, 'success');
    const r = res.result;
    assert.equal(r.total_rooms, '1', 'total_rooms is int64 as a string');
    assert.equal(r.from, 0);
    assert.equal(r.limit, 10);
    assert.equal(r.order_by, 'DESC');
    assert.equal(r.rooms_list.length, 1);
    const past = r.rooms_list[0];
    assert.equal(past.room_id, roomId);
    assert.equal(past.room_sid, sid);
    assert.match(past.created, RFC3339);
    assert.match(past.ended, RFC3339);
    assert.ok(Date.parse(past.ended) >= Date.parse(past.created), 'ended is not before created');
  });

  test('analytics: a session leaves its MEETING_ANALYTICS file; fetch, download, delete', async () => {
    // The conformance room was created with enable_analytics: false, so it left none.
    const none = await pnm.fetchAnalytics({ room_ids: [roomId] });
    assert.deepEqual(none, { status: false, msg: 'no artifact found', result: null });
    const id = `sdkjs-an-${randomBytes(4).toString('hex')}`;
    const created = await pnm.createRoom({ room_id: id, metadata: { room_title: 'Analytics', room_features: {} } });
    assert.equal(created.status, true, JSON.stringify(created));
    assert.equal((await pnm.endRoom({ room_id: id })).status, true);
    const res = await pnm.fetchAnalytics({ room_ids: [id], from: 0, limit: 10 });
    assert.equal(res.status, true, JSON.stringify(res));
    assert.equal(res.result.total_analytics, '1', 'int64 as a string');
    const a = res.result.analytics_list[0];
    assert.equal(a.room_id, id);
    assert.match(a.file_id, UUID_V4);
    assert.match(a.file_name, /^analytics-.+\.json$/);
    assert.ok(a.file_size > 0, `file_size ${a.file_size}`);
    assert.match(a.creation_time, /^\d+$/);

    const t = await pnm.getAnalyticsDownloadToken({ file_id: a.file_id });
    assert.equal(t.status, true, JSON.stringify(t));
    const file = await fetch(`${baseUrl}/download/analytics/${t.token}`);
    assert.equal(file.status, 200);
    const body = await file.json();
    assert.equal(body.room.room_id, id);
    assert.equal(body.room.room_title, 'Analytics');
    assert.equal(body.room.enabled_e2ee, false);
    assert.deepEqual(body.users, [], 'nobody joined');

    assert.deepEqual(await pnm.deleteAnalytics({ file_id: a.file_id }), { status: true, msg: 'success' });
    assert.deepEqual(await pnm.fetchAnalytics({ room_ids: [id] }), { status: false, msg: 'no artifact found', result: null });
    assert.deepEqual(await pnm.deleteAnalytics({ file_id: 'nope' }), { status: false, msg: 'artifact not found' });
    const gone = await pnm.getAnalyticsDownloadToken({ file_id: a.file_id });
    assert.equal(gone.status, false);
    assert.equal(gone.msg, 'artifact not found');
  });

  test('every SDK method was called', () => {
    assert.deepEqual([...called].sort(), [...SDK_METHODS].sort());
  });
});
