// Poll texts in an encrypted room: sealed to the poll, its creator and the field, opened by
// anyone with the session's content key (or passphrase), and by nobody else; the CSV export
// cannot smuggle a formula into a spreadsheet.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import type { PollInfo } from '../src/api';
import { PLAIN, fromBase64, keySealer, passphraseSealer } from '../src/content';
import { SessionKeys, deriveContentKey, deriveHistoryKey } from '../src/e2ee';
import { openPoll, parseRespondents, resultsCsv, sealPoll, validateDraft, type PollView } from '../src/polls';
import { parseSystem } from '../src/protocol';

const SID = '8d5e3f2a-1b2c-4d3e-9f40-5a6b7c8d9e0f';
const SECRET = 'ContentSecretOfTheSession0123456';
const DRAFT = { question: 'Which day?', options: ['Monday', ' Tuesday ', ''], anonymous: false, live: false };

function info(req: Awaited<ReturnType<typeof sealPoll>>, createdBy = 'ann'): PollInfo {
  return { id: req.poll_id, question: req.question, options: req.options, is_running: true, created: 1, created_by: createdBy, closed_by: '', is_anonymous: false, live_results: false, is_sealed: true };
}

test('a sealed poll opens for everyone with the content key and for nobody else', async () => {
  const key = await deriveContentKey(SECRET, SID);
  const sealed = await sealPoll(keySealer(key, SID), DRAFT, 'ann', 'p1');
  assert.equal(sealed.options.length, 2, 'empty options are dropped');
  for (const t of [sealed.question, ...sealed.options.map((o) => o.text)]) {
    assert.ok(!/Monday|Tuesday|Which/.test(t), 'no plaintext on the wire');
    assert.equal(fromBase64(t)[0], 1, 'a version 1 envelope, as the server checks');
  }
  // A late joiner derives the same key from the same secret.
  const other = await deriveContentKey(SECRET, SID);
  const open = await openPoll(keySealer(other, SID), info(sealed));
  assert.equal(open.question, 'Which day?');
  assert.deepEqual(open.options, [{ id: 1, text: 'Monday' }, { id: 2, text: 'Tuesday' }]);

  // Another session's key, the history key, another creator, moved texts: nothing opens.
  const wrong = await openPoll(keySealer(await deriveContentKey(SECRET, 'another-session'), SID), info(sealed));
  assert.equal(wrong.question, null);
  const history = await openPoll(keySealer(await deriveHistoryKey(SECRET, SID), SID), info(sealed));
  assert.equal(history.question, null, 'the content key is not the history key');
  assert.equal((await openPoll(keySealer(key, SID), info(sealed, 'bob'))).question, null);
  const swapped = info(sealed);
  swapped.options = [
    { id: 1, text: sealed.options[1].text },
    { id: 2, text: sealed.question },
  ];
  const moved = await openPoll(keySealer(key, SID), swapped);
  assert.deepEqual(moved.options.map((o) => o.text), [null, null], 'an option moved elsewhere does not open');
});

test('a passphrase room seals poll texts with the passphrase keys', async () => {
  const keys = await SessionKeys.derive('correct horse battery staple', SID, 1000);
  const sealed = await sealPoll(passphraseSealer(() => keys), DRAFT, 'ann', 'p2');
  assert.ok(!sealed.question.includes('Which'));
  assert.equal((await openPoll(passphraseSealer(() => keys), info(sealed))).question, 'Which day?');
  const other = await SessionKeys.derive('wrong horse', SID, 1000);
  assert.equal((await openPoll(passphraseSealer(() => other), info(sealed))).question, null);
  // A plain room sends the words as they are.
  assert.equal((await sealPoll(PLAIN, DRAFT, 'ann', 'p3')).question, 'Which day?');
});

test('drafts are checked and results export as safe CSV', () => {
  assert.equal(validateDraft({ ...DRAFT, question: ' ' }), 'Write a question.');
  assert.equal(validateDraft({ ...DRAFT, options: ['one', ' '] }), 'Give at least two options.');
  assert.equal(validateDraft(DRAFT), null);
  const view: PollView = {
    id: 'p',
    question: '=HYPERLINK("x")',
    options: [
      { id: 1, text: 'Yes, "really"' },
      { id: 2, text: null },
    ],
    running: false,
    anonymous: false,
    live: false,
    createdBy: 'ann',
    sealed: true,
    total: 3,
    mine: null,
    counts: new Map([[1, 2], [2, 1]]),
  };
  const csv = resultsCsv(view, [{ name: 'Bob: the second', option: 1 }]);
  assert.ok(csv.includes(`"'=HYPERLINK(""x"")"`), csv);
  assert.ok(csv.includes('"Yes, ""really""","2","67%"'), csv);
  assert.ok(csv.includes('"(could not be opened)","1","33%"'), csv);
  assert.ok(csv.includes('"Bob: the second","Yes, ""really"""'), csv);
  assert.deepEqual(parseRespondents(['bob:2:Bob: the second', 'junk']), [{ userId: 'bob', option: 2, name: 'Bob: the second' }]);
});

test('poll notifications are parsed strictly', () => {
  assert.deepEqual(parseSystem({ type: 'POLL_CREATED', poll_id: 'abc-1' }), { type: 'POLL_CREATED', poll_id: 'abc-1' });
  assert.deepEqual(parseSystem({ type: 'POLL_RESPONSE', poll_id: 'a', total_responses: 3, live: true }), { type: 'POLL_RESPONSE', poll_id: 'a', total_responses: 3, live: true });
  assert.deepEqual(parseSystem({ type: 'POLLS_ACTIVE', is_active: false }), { type: 'POLLS_ACTIVE', is_active: false });
  assert.equal(parseSystem({ type: 'POLL_CLOSED', poll_id: '../x' }), null);
  assert.equal(parseSystem({ type: 'POLL_RESPONSE', poll_id: 'a', total_responses: -1 }), null);
});
