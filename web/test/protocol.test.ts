import { test } from 'node:test';
import assert from 'node:assert/strict';

import { describeApiError, disconnectText, e2eeModeLine, listNames, WRONG_KEY_BANNER } from '../src/messages';
import { mediaUrl, validateVerifyReply, type VerifyReply } from '../src/api';
import { bestGrid } from '../src/layout';
import {
  cleanName,
  decodeJson,
  encodeJson,
  newChat,
  parseChat,
  handRaisedAt,
  isPresenter,
  parseKeyCheck,
  parseReaction,
  parsePrivate,
  privateAad,
  parseProfile,
  parseSystem,
  renewDelayMs,
  toastKind,
} from '../src/protocol';

test('chat messages: the claimed sender must be the real sender; limits apply', () => {
  const m = newChat('ann', 'Ann', 'hello', 1000);
  assert.deepEqual(Object.keys(m).sort(), ['from_name', 'from_user_id', 'id', 'sent_at', 'text']);
  const round = parseChat(decodeJson(encodeJson(m)), 'ann');
  assert.deepEqual(round, m);
  assert.equal(parseChat(m, 'mallory'), null, 'from_user_id must match the packet sender');
  assert.equal(parseChat({ ...m, text: '   ' }, 'ann'), null);
  assert.equal(parseChat({ ...m, text: 'x'.repeat(4001) }, 'ann'), null);
  assert.equal(parseChat({ ...m, id: '' }, 'ann'), null);
  assert.equal(parseChat('nope', 'ann'), null);
  assert.equal(parseChat({ ...m, from_name: '\u202eevil\n name ' }, 'ann')?.from_name, 'evil name');
  assert.equal(parseChat({ ...m, from_name: '' }, 'ann')?.from_name, 'ann', 'falls back to the identity');
});

test('key checks, profiles and server messages', () => {
  assert.deepEqual(parseKeyCheck({ type: 'key_check', check: '81ba2b33d3f3faadcbd0b8522dfe6c8b' }), {
    type: 'key_check',
    check: '81ba2b33d3f3faadcbd0b8522dfe6c8b',
    generation: 0,
  });
  assert.equal(parseKeyCheck({ type: 'key_check', check: '81ba2b33d3f3faadcbd0b8522dfe6c8b', generation: 7 })?.generation, 7);
  assert.equal(parseKeyCheck({ type: 'key_check', check: '81ba2b33d3f3faadcbd0b8522dfe6c8b', generation: -1 }), null);
  assert.equal(parseKeyCheck({ type: 'key_check', check: '81ba2b33d3f3faadcbd0b8522dfe6c8b', generation: 1.5 }), null);
  assert.equal(parseKeyCheck({ type: 'key_check', check: 'XYZ' }), null);
  assert.equal(parseKeyCheck({ type: 'other', check: '81ba2b33d3f3faadcbd0b8522dfe6c8b' }), null);
  assert.deepEqual(parseProfile({ type: 'profile', name: '  Ann   B ' }), { type: 'profile', name: 'Ann B' });
  assert.equal(parseProfile({ type: 'profile', name: '\u0000' }), null);
  assert.deepEqual(parseSystem({ type: 'SYSTEM_CHAT_MSG', message: 'hi' }), { type: 'SYSTEM_CHAT_MSG', message: 'hi' });
  assert.deepEqual(parseSystem({ type: 'SYSTEM_NOTIFICATION', msg: 'careful', notification_type: 'NATS_SYSTEM_NOTIFICATION_WARNING' }), {
    type: 'SYSTEM_NOTIFICATION',
    msg: 'careful',
    notification_type: 'NATS_SYSTEM_NOTIFICATION_WARNING',
  });
  assert.equal(parseSystem({ type: 'SYSTEM_CHAT_MSG' }), null);
  assert.deepEqual(parseSystem({ type: 'LOCK_SETTINGS', lock_chat: true }), { type: 'LOCK_SETTINGS', lock_chat: true, lock_private_chat: true, lock_chat_file_share: true, lock_whiteboard: false, lock_shared_notepad: false });
  assert.deepEqual(
    parseSystem({ type: 'LOCK_SETTINGS', lock_chat: false, lock_whiteboard: true, lock_shared_notepad: true, lock_chat_file_share: true }),
    { type: 'LOCK_SETTINGS', lock_chat: false, lock_private_chat: false, lock_chat_file_share: true, lock_whiteboard: true, lock_shared_notepad: true },
  );
  assert.equal(parseSystem({ type: 'LOCK_SETTINGS', lock_chat: 'yes' }), null);
  // Content: kinds, document ids and sequence numbers as the server sends them, nothing else.
  const upd = { type: 'CONTENT_UPDATE', kind: 'whiteboard', doc: 'page-1', seq: 3, from: 'ann', body: 'AQID' };
  assert.deepEqual(parseSystem(upd), upd);
  assert.equal(parseSystem({ ...upd, kind: 'slides' }), null);
  assert.equal(parseSystem({ ...upd, doc: '../x' }), null);
  assert.equal(parseSystem({ ...upd, seq: 0 }), null);
  assert.equal(parseSystem({ ...upd, seq: 1.5 }), null);
  assert.equal(parseSystem({ ...upd, from: '' }), null);
  assert.deepEqual(parseSystem({ type: 'CONTENT_CLEARED', kind: 'notepad', doc: '' }), { type: 'CONTENT_CLEARED', kind: 'notepad', doc: '' });
  assert.equal(parseSystem({ type: 'CONTENT_CLEARED', kind: 'notepad' }), null);
  assert.equal(parseSystem({ type: 'LOCK_SETTINGS', lock_chat: 'yes' }), null);
  assert.deepEqual(parseSystem({ type: 'CONTENT_UPDATE', kind: 'notepad', doc: 'n', seq: 2, from: 'ann', body: 'b' }), {
    type: 'CONTENT_UPDATE',
    kind: 'notepad',
    doc: 'n',
    seq: 2,
    from: 'ann',
    body: 'b',
  });
  assert.equal(parseSystem({ type: 'CONTENT_UPDATE', kind: 'slides', doc: 'n', seq: 2, from: 'ann', body: 'b' }), null);
  assert.equal(parseSystem({ type: 'CONTENT_UPDATE', kind: 'notepad', doc: '../n', seq: 2, from: 'ann', body: 'b' }), null);
  assert.equal(parseSystem({ type: 'CONTENT_UPDATE', kind: 'notepad', doc: 'n', seq: 0, from: 'ann', body: 'b' }), null);
  assert.deepEqual(parseSystem({ type: 'CONTENT_CLEARED', kind: 'whiteboard', doc: '' }), { type: 'CONTENT_CLEARED', kind: 'whiteboard', doc: '' });
  const secret = 'Qm7rT2xW9kLp4ZsV8nB3cY6dF1gH5jK0';
  assert.deepEqual(parseSystem({ type: 'E2EE_KEY', generation: 3, secret }), { type: 'E2EE_KEY', generation: 3, secret });
  assert.equal(parseSystem({ type: 'E2EE_KEY', generation: 0, secret }), null, 'epochs start at 1');
  assert.equal(parseSystem({ type: 'E2EE_KEY', generation: 2 ** 32, secret }), null);
  assert.equal(parseSystem({ type: 'E2EE_KEY', generation: 3, secret: 'short' }), null);
  assert.equal(parseSystem({ type: 'E2EE_KEY', generation: 3, secret: `${secret.slice(1)}/` }), null);
  assert.equal(toastKind('NATS_SYSTEM_NOTIFICATION_WARNING'), 'warning');
  assert.equal(toastKind('NATS_SYSTEM_NOTIFICATION_ERROR'), 'error');
  assert.equal(toastKind('NATS_SYSTEM_NOTIFICATION_INFO'), 'info');
  assert.equal(decodeJson(new Uint8Array([0xff, 0xfe])), undefined, 'invalid UTF-8');
  assert.equal(cleanName('x'.repeat(100)).length, 64);
});

test('the join token is renewed when 2/3 of its lifetime has passed', () => {
  const t0 = 1_700_000_000_000;
  const exp = t0 / 1000 + 600;
  assert.equal(renewDelayMs(t0, exp, t0), 400_000);
  assert.equal(renewDelayMs(t0, exp, t0 + 100_000), 300_000);
  assert.equal(renewDelayMs(t0, exp, t0 + 500_000), 0, 'overdue: now');
  assert.equal(renewDelayMs(t0, t0 / 1000 - 5, t0), 0, 'already expired');
});

test('server error keys become sentences', () => {
  assert.equal(describeApiError('notifications.invalid-token', 401).title, 'This join link is not valid');
  assert.equal(describeApiError('notifications.token-expired', 401).title, 'This join link has expired');
  assert.equal(describeApiError('notifications.auth-header-missing', 401).title, 'No join link');
  assert.equal(describeApiError('notifications.room-not-active', 401).title, 'This meeting is not running');
  assert.equal(describeApiError('notifications.something-new', 401).title, 'This join link is not valid');
  assert.equal(describeApiError('network error', 0).title, 'The server cannot be reached');
  assert.equal(describeApiError('', 404).title, 'The meeting service is not available');
  assert.equal(describeApiError('end-to-end encrypted rooms cannot be recorded', 403).body, 'End-to-end encrypted rooms cannot be recorded.');
  for (const [mode, on] of [['server_key', true], ['self_insert', true], ['off', false]] as const) {
    assert.ok(e2eeModeLine(mode, on).length > 20);
  }
  assert.equal(disconnectText(5).title, 'The meeting has ended');
  assert.equal(disconnectText(4).rejoin, false);
  assert.equal(disconnectText(undefined).rejoin, true);
  assert.equal(listNames(['A', 'B', 'C']), 'A, B and C');
  assert.match(WRONG_KEY_BANNER, /^Your encryption key doesn't match the one others are using/);
});

test('verifyToken replies are checked; the media URL defaults to this origin', () => {
  const ok = {
    status: true,
    msg: 'token is valid',
    room: { room_id: 'r', title: 't', sid: 's' },
    user: { user_id: 'u', name: 'U', is_admin: false },
    media: { url: '', token: 'lk' },
    e2ee: { enabled: true, mode: 'server_key', secret: 'x'.repeat(32), generation: 1 },
    expires_at: 1,
  } as VerifyReply;
  assert.equal(validateVerifyReply(ok), null);
  assert.match(validateVerifyReply({ ...ok, e2ee: { enabled: true, mode: 'server_key' } }) ?? '', /secret/);
  assert.match(validateVerifyReply({ ...ok, e2ee: { enabled: true, mode: 'server_key', secret: 'x'.repeat(32) } }) ?? '', /generation/);
  assert.match(validateVerifyReply({ ...ok, media: { url: '', token: '' } }) ?? '', /media/);
  assert.equal(mediaUrl('', { protocol: 'https:', host: 'meet.example:8443' }), 'wss://meet.example:8443');
  assert.equal(mediaUrl('', { protocol: 'http:', host: '127.0.0.1:8080' }), 'ws://127.0.0.1:8080');
  assert.equal(mediaUrl('wss://sfu.example', { protocol: 'http:', host: 'x' }), 'wss://sfu.example');
});

test('grid geometry fills the box', () => {
  assert.deepEqual(bestGrid(1, 1600, 900, 16 / 9, 0), { cols: 1, rows: 1, width: 1600, height: 900 });
  const g4 = bestGrid(4, 1600, 900, 16 / 9, 0);
  assert.equal(g4.cols, 2);
  assert.equal(g4.rows, 2);
  const tall = bestGrid(3, 390, 800, 16 / 9, 8);
  assert.equal(tall.cols, 1, 'a phone stacks tiles');
  assert.equal(bestGrid(0, 100, 100).cols, 1);
});

test('a raised hand is read from the participant metadata the server sets', () => {
  assert.equal(handRaisedAt('{"raised_hand":{"is_raised":true,"raised_at":"1733400000123"}}'), 1733400000123);
  assert.equal(handRaisedAt('{"raised_hand":{"is_raised":true,"raised_at":5}}'), 5);
  assert.equal(handRaisedAt('{"raised_hand":{"is_raised":false,"raised_at":"0"}}'), null);
  assert.equal(handRaisedAt('{"is_admin":true}'), null);
  assert.equal(handRaisedAt('not json'), null);
  assert.equal(handRaisedAt(''), null);
  assert.equal(handRaisedAt(undefined), null);
});

test('reactions: only the known names', () => {
  assert.equal(parseReaction({ type: 'reaction', name: 'clap' }), 'clap');
  assert.equal(parseReaction({ type: 'reaction', name: 'toString' }), null, 'not an inherited property');
  assert.equal(parseReaction({ type: 'reaction', name: '<img>' }), null);
  assert.equal(parseReaction({ type: 'other', name: 'clap' }), null);
  assert.equal(parseReaction('clap'), null);
});

test('private messages: recipients travel in the message, and only a named recipient (or the sender) reads it as theirs', () => {
  const m = newChat('ann', 'Ann', 'psst', 1, ['bob']);
  assert.deepEqual(m.to, ['bob']);
  const v = JSON.parse(JSON.stringify(m));
  assert.equal(parsePrivate(v, 'ann', 'bob')?.text, 'psst');
  assert.equal(parsePrivate(v, 'ann', 'cat'), null, 'not for cat');
  assert.equal(parsePrivate({ ...v, to: undefined }, 'ann', 'bob'), null, 'a public message is not private');
  assert.equal(parsePrivate({ ...v, to: [] }, 'ann', 'bob'), null);
  assert.equal(parsePrivate({ ...v, to: [7] }, 'ann', 'bob'), null);
  assert.equal(parsePrivate(v, 'ann', 'ann')?.text, 'psst', 'the sender reads its own copy back (history)');
  assert.notEqual(privateAad('ann', 'bob'), privateAad('ann', 'cat'));
  assert.notEqual(privateAad('a|b', 'c'), privateAad('a', 'b|c'), 'unambiguous');
  assert.deepEqual(parseSystem({ type: 'LOCK_SETTINGS', lock_chat: false, lock_private_chat: true }), { type: 'LOCK_SETTINGS', lock_chat: false, lock_private_chat: true, lock_chat_file_share: false, lock_whiteboard: false, lock_shared_notepad: false });
  assert.deepEqual(parseSystem({ type: 'LOCK_SETTINGS', lock_chat: false, lock_private_chat: true, lock_whiteboard: true }), {
    type: 'LOCK_SETTINGS',
    lock_chat: false,
    lock_private_chat: true,
    lock_chat_file_share: false,
    lock_whiteboard: true,
    lock_shared_notepad: false,
  });
  assert.deepEqual(parseSystem({ type: 'LOCK_SETTINGS', lock_chat: true }), { type: 'LOCK_SETTINGS', lock_chat: true, lock_private_chat: true, lock_chat_file_share: true, lock_whiteboard: false, lock_shared_notepad: false });
});

test('the presenter is read from the participant metadata the server sets', () => {
  assert.equal(isPresenter('{"is_presenter":true}'), true);
  assert.equal(isPresenter('{"is_presenter":false}'), false);
  assert.equal(isPresenter('{"is_presenter":"true"}'), false);
  assert.equal(isPresenter('nope'), false);
  assert.equal(isPresenter(undefined), false);
});
