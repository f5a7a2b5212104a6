/**
 * The input lines of `tsp2p node` (DESIGN.md, "Command line: the contract"): a plain line is a
 * broadcast; `{"to","text"}` a direct message to addresses or members' names; a line that starts
 * with `{` and is not a valid command is an `error` event and is never sent; `{"subscribe"}`,
 * `{"unsubscribe"}` and `{"topic","text"}` work on topics; empty messages are not sent.
 */

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type CliEvent, events, startListening, waitForEvent } from '../helpers/cli-process.js';

test('a line that starts with { is a valid command or an error event, never a broadcast', async (t) => {
  const { p: ada, address: a } = await startListening(t, 'ada', ['node', '--name', 'ada']);
  const { p: bob } = await startListening(t, 'bob', ['node', '--name', 'bob', '--join', a]);
  await waitForEvent(bob, 'connected');
  const { p: cy, address: c } = await startListening(t, 'cy', ['node', '--name', 'cy', '--join', a]);
  await waitForEvent(cy, 'connected');
  await waitForEvent(bob, 'member:join', (ev) => `${ev.address}:${ev.port}` === c);

  /** Sends one line from bob and resolves with the error event it caused. */
  const refused = async (line: string): Promise<CliEvent> => {
    const mark = bob.mark();
    bob.send(line);
    return waitForEvent(bob, 'error', () => true, mark);
  };

  // The typo of the issue: a direct message whose closing brace is missing.
  const typo = await refused(`{"to":"${a}","text":"private: the door code is 4711"`);
  assert.equal(typo.code, 'ERR_INVALID_INPUT');
  assert.match(typo.message as string, /nothing was sent/);
  // A misspelt field, a wrong type, an empty text, no text: refused the same way.
  for (const line of [
    `{"too":"${a}","text":"private: misspelt"}`,
    `{"to":"${a}","text":"private: extra","cc":"x"}`,
    `{"to":42,"text":"private: a number"}`,
    '{"text":""}',
    '{"text":"   "}',
    `{"to":"${a}"}`,
    '{}',
    '{"text": "a trailing comma",}',
  ]) {
    const ev = await refused(line);
    assert.equal(ev.code, 'ERR_INVALID_INPUT', line);
    assert.match(ev.message as string, /nothing was sent/, line);
  }
  // Topics (issue 14 replaced "not supported yet"): a bad topic name is refused, never sent.
  const badTopic = await refused('{"topic":"bad topic","text":"private: disk full"}');
  assert.equal(badTopic.code, 'ERR_INVALID_TOPIC');
  // A publish to a topic nobody holds goes to nobody; subscribe and unsubscribe answer.
  let mark = bob.mark();
  bob.send('{"topic":"ops","text":"private: to nobody"}');
  const none = await waitForEvent(bob, 'sent', () => true, mark);
  assert.equal(none.topic, 'ops');
  assert.deepEqual(none.delivered, []);
  mark = cy.mark();
  cy.send('{"subscribe":"ops"}');
  assert.deepEqual((await waitForEvent(cy, 'subscribed', () => true, mark)).now, ['ops']);
  bob.send('{"topic":"ops","text":"disk full"}');
  const ops = await waitForEvent(cy, 'message', (ev) => ev.text === 'disk full');
  assert.equal(ops.topic, 'ops');
  mark = cy.mark();
  cy.send('{"unsubscribe":["ops"]}');
  assert.deepEqual((await waitForEvent(cy, 'unsubscribed', () => true, mark)).now, []);
  // A list with one bad entry sends to nobody, and names the entry.
  const badName = await refused(`{"to":["ada","nobody-by-that-name"],"text":"private: list"}`);
  assert.equal(badName.code, 'ERR_INVALID_ADDRESS');
  assert.match(badName.message as string, /'nobody-by-that-name'/);
  const notMember = await refused(`{"to":["cy","127.0.0.1:1"],"text":"private: list"}`);
  assert.equal(notMember.code, 'ERR_UNKNOWN_PEER');
  assert.match(notMember.message as string, /127\.0\.0\.1:1/);

  // `to` takes a member's name, alone or in a list with an address.
  bob.send('{"to":"ada","text":"by name"}');
  bob.send(`{"to":["ada","${c}"],"text":"to a list"}`);
  // An empty line is skipped; a plain line, even one with braces inside, is a broadcast.
  bob.send('');
  bob.send('  ');
  bob.send('the end {not a command}');
  await waitForEvent(ada, 'message', (ev) => ev.text === 'the end {not a command}');
  await waitForEvent(cy, 'message', (ev) => ev.text === 'the end {not a command}');

  // Bob's lines ran in order and each member's messages arrive in order: what came before the
  // last broadcast is all that was ever sent. (The publish to nobody is history of room ops: cy
  // may get it when it joins, marked late.)
  const got = (p: typeof ada): [unknown, unknown][] =>
    events(p)
      .filter((ev) => ev.event === 'message' && ev.late !== true)
      .map((ev) => [ev.type, ev.text]);
  const late = events(cy).filter((ev) => ev.event === 'message' && ev.late === true);
  assert.deepEqual(
    late.map((ev) => [ev.topic, ev.text]),
    late.length === 0 ? [] : [['ops', 'private: to nobody']],
    'only history of room ops comes late',
  );
  assert.deepEqual(got(ada), [
    ['direct', 'by name'],
    ['direct', 'to a list'],
    ['broadcast', 'the end {not a command}'],
  ]);
  assert.deepEqual(got(cy), [
    ['broadcast', 'disk full'],
    ['direct', 'to a list'],
    ['broadcast', 'the end {not a command}'],
  ]);
  assert.ok(
    ![...ada.lines.stdout, ...cy.lines.stdout].some((l) => l.includes('private') && !l.includes('to nobody')),
    'no refused line reached anyone',
  );
});
