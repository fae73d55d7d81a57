import { test } from 'node:test';
import assert from 'node:assert/strict';

import { recorderJoinText, recorderText, taskErrorText } from '../src/messages';
import { parseSystem } from '../src/protocol';
import { RecorderModel, checkRtmpTarget, flagsFromVerify } from '../src/recorder';

test('RECORDER_STATE messages are parsed; both flags must be booleans', () => {
  assert.deepEqual(parseSystem({ type: 'RECORDER_STATE', is_recording: true, is_active_rtmp: false }), {
    type: 'RECORDER_STATE',
    is_recording: true,
    is_active_rtmp: false,
  });
  assert.equal(parseSystem({ type: 'RECORDER_STATE', is_recording: 'true', is_active_rtmp: false }), null);
  assert.equal(parseSystem({ type: 'RECORDER_STATE', is_recording: true }), null);
  assert.deepEqual(parseSystem({ type: 'SYSTEM_NOTIFICATION', msg: 'RTMP target refused the connection', notification_type: 'error' }), {
    type: 'SYSTEM_NOTIFICATION',
    msg: 'RTMP target refused the connection',
    notification_type: 'error',
  });
});

test('verifyToken flags: only a real true is on', () => {
  assert.deepEqual(flagsFromVerify({ is_recording: true, is_active_rtmp: true }), { recording: true, rtmp: true });
  assert.deepEqual(flagsFromVerify({}), { recording: false, rtmp: false });
  assert.deepEqual(flagsFromVerify({ is_recording: 'yes', is_active_rtmp: 1 }), { recording: false, rtmp: false });
});

test('recorder model: a request is pending until the reply; the reply stands in for a state message', () => {
  const m = new RecorderModel({ recording: false, rtmp: false });
  let changes = 0;
  m.onChange(() => changes++);
  const t = m.begin('recording', true)!;
  assert.equal(m.pendingOf('recording'), 'starting');
  assert.equal(m.begin('recording', true), null, 'one request at a time per sink');
  assert.notEqual(m.begin('rtmp', true), null, 'the other sink is independent');
  assert.deepEqual(m.done(t), [{ sink: 'recording', on: true }]);
  assert.equal(m.pendingOf('recording'), null);
  assert.equal(m.state.recording, true);
  assert.ok(changes >= 3);
  // The server's message that follows changes nothing more.
  assert.deepEqual(m.fromServer({ recording: true, rtmp: false }), []);
});

test('recorder model: a failed request changes nothing', () => {
  const m = new RecorderModel({ recording: true, rtmp: false });
  const t = m.begin('recording', false)!;
  assert.equal(m.pendingOf('recording'), 'stopping');
  m.failed(t);
  assert.equal(m.pendingOf('recording'), null);
  assert.equal(m.state.recording, true);
});

test('recorder model: a state message that arrived while the request was in flight wins over the reply', () => {
  // RTMP to a refused target: the server accepts, the stream fails at once, and the failure's
  // state message reaches the page before the HTTP reply does.
  const m = new RecorderModel({ recording: false, rtmp: false });
  const t = m.begin('rtmp', true)!;
  assert.deepEqual(m.fromServer({ recording: false, rtmp: true }), [{ sink: 'rtmp', on: true }]);
  assert.deepEqual(m.fromServer({ recording: false, rtmp: false }), [{ sink: 'rtmp', on: false }]);
  assert.deepEqual(m.done(t), [], 'the late reply does not turn LIVE back on');
  assert.equal(m.state.rtmp, false);
  assert.equal(m.pendingOf('rtmp'), null);
});

test('recorder model: a snapshot taken before a newer state message is ignored', () => {
  const m = new RecorderModel({ recording: true, rtmp: false });
  const since = m.mark;
  m.fromServer({ recording: false, rtmp: false });
  assert.deepEqual(m.fromServer({ recording: true, rtmp: false }, since), [], 'stale snapshot');
  assert.equal(m.state.recording, false);
  const again = m.mark;
  assert.deepEqual(m.fromServer({ recording: false, rtmp: true }, again), [{ sink: 'rtmp', on: true }]);
});

test('RTMP targets: rtmp:// or rtmps:// with a server name; the stream key may be part of the address', () => {
  const ok = (u: string, k = 'abcd-1234') => checkRtmpTarget(u, k);
  assert.deepEqual(ok(' rtmp://live.example.com/app '), { ok: true, url: 'rtmp://live.example.com/app', streamKey: 'abcd-1234' });
  assert.deepEqual(ok('RTMPS://live.example.com:443/app'), { ok: true, url: 'rtmps://live.example.com:443/app', streamKey: 'abcd-1234' });
  assert.equal(ok('rtmp://127.0.0.1:1935/live').ok, true);
  assert.equal(ok('rtmp://[::1]:1935/live').ok, true);
  assert.equal(ok('rtmp://user:pass@host/live').ok, true);
  assert.equal(ok('rtmp://a.rtmp.youtube.com/live2').ok, true);
  const bad = (u: string, k = 'key') => {
    const r = checkRtmpTarget(u, k);
    assert.equal(r.ok, false, u);
    return r.ok ? null : r;
  };
  assert.equal(bad('')?.field, 'url');
  assert.match(bad('http://live.example.com/app')!.error, /must start with rtmp:\/\/ or rtmps:\/\//);
  assert.match(bad('live.example.com/app')!.error, /must start with rtmp:\/\/ or rtmps:\/\//);
  assert.match(bad('rtmpx://live.example.com')!.error, /must start with/);
  assert.match(bad('rtmp://')!.error, /needs a server name/);
  assert.match(bad('rtmp:///app')!.error, /needs a server name/);
  assert.match(bad('rtmp://live example.com/app')!.error, /spaces/);
  assert.match(bad('rtmp://host:99999/app')!.error, /port 99999/);
  assert.match(bad('rtmp://host:0/app')!.error, /port 0/);
  assert.match(bad(`rtmp://host/${'a'.repeat(3000)}`)!.error, /too long/);
  assert.deepEqual(checkRtmpTarget('rtmp://host/app/key-in-path', '  '), { ok: true, url: 'rtmp://host/app/key-in-path', streamKey: '' });
  assert.match(bad('rtmp://host/app', 'two words')!.error, /spaces/);
});

test('admin task errors show the server message; recorder sentences', () => {
  assert.equal(
    taskErrorText('cloud recording is not allowed in an end-to-end encrypted room', 403),
    'Cloud recording is not allowed in an end-to-end encrypted room.',
  );
  assert.equal(taskErrorText('recording is already running', 409), 'Recording is already running.');
  assert.equal(taskErrorText('url: must be an rtmp:// or rtmps:// URL', 400), 'Url: must be an rtmp:// or rtmps:// URL.');
  assert.equal(taskErrorText('only admin can perform this task', 403), 'Only a host can do that.');
  assert.match(taskErrorText('', 0), /cannot be reached/);
  assert.match(taskErrorText('', 501), /HTTP 501/);
  assert.match(taskErrorText('', 500), /HTTP 500/);
  assert.match(recorderText('recording', true), /being recorded/);
  assert.match(recorderText('rtmp', false), /ended/);
  assert.equal(recorderJoinText({ recording: false, rtmp: false }), null);
  assert.equal(recorderJoinText({ recording: true, rtmp: false }), 'This meeting is being recorded.');
  assert.match(recorderJoinText({ recording: true, rtmp: true }) ?? '', /recorded and streamed/);
});
