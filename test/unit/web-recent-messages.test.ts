/** The in-memory ring of a node's recent conversation, behind the RecentMessages interface. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type ConversationEntry, MessageRing } from '../../src/web/recent-messages.js';

function entry(n: number): ConversationEntry {
  return {
    kind: 'sent',
    id: String(n),
    type: 'broadcast',
    text: `m${n}`,
    origin: 'local',
    delivered: 1,
    failed: 0,
    ts: n,
  };
}

test('keeps the last entries, oldest first, within its capacity', () => {
  const ring = new MessageRing(3);
  assert.deepEqual(ring.recent(10), []);
  ring.add(entry(1));
  ring.add(entry(2));
  assert.deepEqual(
    ring.recent(10).map((e) => e.id),
    ['1', '2'],
  );
  for (let n = 3; n <= 7; n++) ring.add(entry(n));
  assert.equal(ring.size, 3);
  assert.deepEqual(
    ring.recent(10).map((e) => e.id),
    ['5', '6', '7'],
  );
  assert.deepEqual(
    ring.recent(2).map((e) => e.id),
    ['6', '7'],
  );
  assert.deepEqual(ring.recent(0), []);
  assert.throws(() => new MessageRing(0), RangeError);
});
