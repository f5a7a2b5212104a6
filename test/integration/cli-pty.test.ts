/**
 * `tsp2p chat` on a pseudo-terminal (tmux or script): a message that arrives while someone
 * is typing prints on its own line, and the half-typed line stays intact below it, cursor
 * included; finishing the line then sends all of it. Ctrl-C leaves gracefully.
 */

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { startListening, waitForEvent } from '../helpers/cli-process.js';
import { ptyDriver, type ScreenState, startPtyChat } from '../helpers/cli-pty.js';

const choice = ptyDriver();
if ('skip' in choice) console.log(`skipping the pseudo-terminal test: ${choice.skip}`);

/** The last line with something on it. */
function lastLine(s: ScreenState): string {
  return s.lines.filter((l) => l !== '').at(-1) ?? '';
}

test('a message arriving mid-typing leaves the typed text intact', {
  skip: 'skip' in choice ? choice.skip : false,
}, async (t) => {
  const driver = (choice as { driver: 'tmux' | 'script' }).driver;
  const { p: hub, address: a } = await startListening(t, 'hub', ['node', '--name', 'hub']);
  const chat = startPtyChat(t, driver, ['--join', a, '--name', 'tty']);
  const joined = await waitForEvent(hub, 'member:join', (ev) => ev.name === 'tty');
  const self = `${joined.address}:${joined.port}`;
  await chat.waitScreen(
    'the prompt after joining',
    (s) => s.lines.some((l) => l.startsWith(`connected through ${a}`)) && lastLine(s) === '>',
  );

  chat.type('half typed');
  await chat.waitScreen('the typed text', (s) => lastLine(s) === '> half typed');

  hub.send('incoming while typing');
  // On a terminal, each message shows the time, HH:MM (issue 17).
  const timed = new RegExp(`^\\d\\d:\\d\\d ${a.replaceAll('.', '\\.')} \\(hub\\): incoming while typing$`);
  const s = await chat.waitScreen('the incoming message', (s) => s.lines.some((l) => timed.test(l)));
  const expected = s.lines.find((l) => timed.test(l))!;
  // The message has a line of its own, and the prompt with the typed text is redrawn below it.
  const at = s.lines.indexOf(expected);
  assert.equal(lastLine(s), '> half typed', `the typed line is broken:\n${s.lines.join('\n')}`);
  assert.equal(s.lines.filter((l) => l.includes('half typed')).length, 1, s.lines.join('\n'));
  assert.ok(s.lines.lastIndexOf('> half typed') > at, s.lines.join('\n'));
  if (s.cursor) {
    assert.equal(s.cursor.x, '> half typed'.length, 'the cursor is at the end of the typed text');
    assert.equal(s.cursor.y, s.lines.lastIndexOf('> half typed'), 'the cursor is on the prompt line');
  }

  // Finishing the line sends all of it.
  chat.type(' and finished');
  chat.enter();
  const msg = await waitForEvent(hub, 'message', (ev) => ev.text === 'half typed and finished');
  const from = msg.from as { address: string; port: number };
  assert.equal(`${from.address}:${from.port}`, self);

  // Ctrl-C leaves gracefully: the hub sees a leave, and the chat exits with 0.
  chat.interrupt();
  await waitForEvent(hub, 'member:leave', (ev) => ev.name === 'tty');
  assert.equal(await chat.waitExit(), 0);
});

test('--no-time: messages on a terminal without the time', {
  skip: 'skip' in choice ? choice.skip : false,
}, async (t) => {
  const driver = (choice as { driver: 'tmux' | 'script' }).driver;
  const { p: hub, address: a } = await startListening(t, 'hub', ['node', '--name', 'hub']);
  const chat = startPtyChat(t, driver, ['--join', a, '--name', 'untimed', '--no-time']);
  await waitForEvent(hub, 'member:join', (ev) => ev.name === 'untimed');
  await chat.waitScreen('the prompt after joining', (s) => lastLine(s) === '>');
  hub.send('no time here');
  await chat.waitScreen('the message without the time', (s) => s.lines.includes(`${a} (hub): no time here`));
  chat.interrupt();
  assert.equal(await chat.waitExit(), 0);
});
