import assert from 'node:assert/strict';
import { test } from 'node:test';
import { HISTORY_LINES, MAX_HISTORY_LINES, parseChatLine } from '../../src/cli/chat-commands.js';

test('/history [N]: the last N lines, 20 by default; anything else is a usage mistake', () => {
  assert.deepEqual(parseChatLine('/history'), { kind: 'history', count: HISTORY_LINES });
  assert.deepEqual(parseChatLine('  /HISTORY 5 '), { kind: 'history', count: 5 });
  assert.deepEqual(parseChatLine(`/history ${MAX_HISTORY_LINES}`), {
    kind: 'history',
    count: MAX_HISTORY_LINES,
  });
  for (const bad of [
    '/history 0',
    '/history -1',
    '/history x',
    '/history 2 3',
    `/history ${MAX_HISTORY_LINES + 1}`,
  ]) {
    assert.equal(parseChatLine(bad).kind, 'mistake', bad);
  }
});
