import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ManualClock } from '../../src/clock.js';
import { ReceivedMessage } from '../../src/delivery/received-message.js';
import { noopLogger } from '../../src/logger.js';
import { Journal } from '../../src/node/journal.js';
import { peerOf } from '../../src/peer.js';
import { MemoryStore } from '../../src/store/memory.js';
import type { AppendStatus } from '../../src/store/store.js';

/** A journal over a memory store that records what it delivers and what the store said. */
function journal(): { j: Journal; delivered: string[][]; statuses: AppendStatus[] } {
  const delivered: string[][] = [];
  const statuses: AppendStatus[] = [];
  const self = peerOf('a'.repeat(32), '10.0.0.1', 1);
  const j = new Journal({
    store: new MemoryStore({ now: () => 1_000 }),
    self: () => self,
    publicKey: 'k'.repeat(43),
    clock: new ManualClock(1_000),
    logger: noopLogger,
    deliver: (messages) => delivered.push(messages.map((m) => m.id)),
    onAppend: (s) => statuses.push(s),
  });
  return { j, delivered, statuses };
}

const origin = peerOf('b'.repeat(32), '10.0.0.2', 2);

/** Broadcast `seq` of the origin's stream, numbered in its log. */
function message(seq: number, id = `m${seq}`): ReceivedMessage {
  return new ReceivedMessage(id, 'broadcast', origin, new Uint8Array([seq]), undefined, 1_000).withLog({
    epoch: 'e1',
    channel: 'b',
    seq,
  });
}

test('a batch of new messages is delivered whole, in order', () => {
  const { j, delivered, statuses } = journal();
  assert.equal(j.take([message(1), message(2), message(3)]), 3);
  assert.deepEqual(delivered, [['m1', 'm2', 'm3']]);
  assert.deepEqual(statuses, ['new', 'new', 'new']);
});

test('of a batch, only what the log takes as new is delivered, in order', () => {
  const { j, delivered, statuses } = journal();
  j.take([message(2)]);
  j.take([message(4)]);
  delivered.length = 0;
  statuses.length = 0;
  // Duplicates first, in the middle and last; a conflict (same number, another id).
  assert.equal(j.take([message(2), message(1), message(4), message(3), message(5, 'other'), message(5)]), 3);
  assert.deepEqual(delivered, [['m1', 'm3', 'other']]);
  assert.deepEqual(statuses, ['duplicate', 'new', 'duplicate', 'new', 'new', 'duplicate']);
  // Nothing new: nothing delivered.
  assert.equal(j.take([message(1), message(3)]), 0);
  assert.deepEqual(delivered, [['m1', 'm3', 'other']]);
});

test('a batch collects what its receive delivers, and commits it once', () => {
  const { j, delivered } = journal();
  j.batch(() => {
    j.receive(message(1));
    j.receive(message(2));
    assert.deepEqual(delivered, []);
  });
  assert.deepEqual(delivered, [['m1', 'm2']]);
});
