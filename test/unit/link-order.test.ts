import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { flushMicrotasks, ManualClock } from '../../src/clock.js';
import {
  DEFAULT_LINK_ORDER_LIMITS,
  LinkOrder,
  type LinkOrderLimits,
  STREAM_ENDED,
} from '../../src/delivery/link-order.js';

const LIMITS: LinkOrderLimits = { gapWaitMs: 1_000, maxWaiting: 4 };

/** What one batch came to: the index of its first new message, `undefined` (retry), or still waiting. */
type Outcome = number | undefined | 'waiting' | typeof STREAM_ENDED;

/**
 * A receiver as the node is one: it takes each batch, and delivers the new messages at once when
 * `take` answers a number, or when its promise resolves. Messages are named by their number.
 */
function receiver(limits: LinkOrderLimits = LIMITS) {
  const clock = new ManualClock(0);
  const order = new LinkOrder(clock, limits);
  const delivered: string[] = [];
  const batch = (
    seq: number,
    count: number,
    base: number | undefined,
    options: { sender?: string; stream?: string } = {},
  ): { sync: boolean; outcome: () => Outcome } => {
    const sender = options.sender ?? 'alice';
    const stream = options.stream ?? 's1';
    const ids = Array.from({ length: count }, (_, i) => `${sender}:${stream}:${seq + i}`);
    let outcome: Outcome = 'waiting';
    const deliver = (first: number | undefined): void => {
      outcome = first;
      if (first !== undefined) delivered.push(...ids.slice(first));
    };
    const taken = order.take(sender, stream, seq, count, base);
    if (typeof taken === 'number') deliver(taken);
    else if (taken === STREAM_ENDED) outcome = STREAM_ENDED;
    else void taken.then(deliver);
    return { sync: typeof taken === 'number', outcome: () => outcome };
  };
  /** Delivered message numbers of `alice` on `s1`, or the full names for other senders/streams. */
  const numbers = (): (number | string)[] =>
    delivered.map((id) => (id.startsWith('alice:s1:') ? Number(id.slice('alice:s1:'.length)) : id));
  return { clock, order, delivered, batch, numbers };
}

describe('LinkOrder: in order, once', () => {
  test('in-order batches are taken at once, every message new', () => {
    const r = receiver();
    const a = r.batch(1, 3, 1);
    const b = r.batch(4, 2, 1);
    const c = r.batch(6, 1, 6);
    assert.ok(a.sync && b.sync && c.sync, 'no batch waits');
    assert.deepEqual([a.outcome(), b.outcome(), c.outcome()], [0, 0, 0]);
    assert.deepEqual(r.numbers(), [1, 2, 3, 4, 5, 6]);
    assert.equal(r.order.size, 1);
    assert.equal(r.clock.pending, 0, 'no timer for batches that do not wait');
  });

  test('a retried batch delivers nothing again (its first new index is its count)', () => {
    const r = receiver();
    r.batch(1, 3, 1);
    const retry = r.batch(1, 3, 1);
    assert.equal(retry.sync, true);
    assert.equal(retry.outcome(), 3);
    r.batch(4, 1, 1);
    assert.equal(r.batch(4, 1, 1).outcome(), 1);
    assert.equal(r.batch(2, 1, 1).outcome(), 1, 'a retry of part of an old batch');
    assert.deepEqual(r.numbers(), [1, 2, 3, 4]);
  });

  test('a batch that partly overlaps what was delivered delivers only the rest', () => {
    const r = receiver();
    r.batch(1, 3, 1);
    const b = r.batch(2, 4, 2); // 2, 3 again, then 4, 5
    assert.equal(b.outcome(), 2);
    assert.deepEqual(r.numbers(), [1, 2, 3, 4, 5]);
  });

  test('the default limits are a 2 s wait and 8 waiting batches', () => {
    assert.deepEqual({ ...DEFAULT_LINK_ORDER_LIMITS }, { gapWaitMs: 2_000, maxWaiting: 8 });
    assert.ok(Object.isFrozen(DEFAULT_LINK_ORDER_LIMITS));
  });
});

describe('LinkOrder: a batch that overtook its predecessor', () => {
  test('waits, then is taken once the predecessor is delivered, after it', async () => {
    const r = receiver();
    r.batch(1, 2, 1);
    const late = r.batch(5, 2, 3); // 3, 4 are still on the way
    assert.equal(late.sync, false);
    await flushMicrotasks();
    assert.equal(late.outcome(), 'waiting');
    assert.deepEqual(r.numbers(), [1, 2]);
    const predecessor = r.batch(3, 2, 3);
    assert.equal(predecessor.outcome(), 0);
    await flushMicrotasks();
    assert.equal(late.outcome(), 0);
    assert.deepEqual(r.numbers(), [1, 2, 3, 4, 5, 6]);
    assert.equal(r.clock.pending, 0, 'its timer was cancelled');
  });

  test('a waiting batch that overlaps its predecessor delivers only what is new', async () => {
    const r = receiver();
    r.batch(1, 1, 1);
    const late = r.batch(3, 3, 2); // 3..5; 2 is missing
    r.batch(2, 3, 2); // 2..4
    await flushMicrotasks();
    assert.equal(late.outcome(), 2, 'only 5 is new');
    assert.deepEqual(r.numbers(), [1, 2, 3, 4, 5]);
  });

  test('a retry of a waiting batch, waiting too, delivers nothing twice', async () => {
    const r = receiver();
    r.batch(1, 1, 1);
    const first = r.batch(3, 2, 2);
    const again = r.batch(3, 2, 2);
    r.batch(2, 1, 2);
    await flushMicrotasks();
    assert.deepEqual([first.outcome(), again.outcome()], [0, 2]);
    assert.deepEqual(r.numbers(), [1, 2, 3, 4]);
  });

  test('gives up with undefined after gapWaitMs; the numbers stay free for the retry', async () => {
    const r = receiver();
    r.batch(1, 1, 1);
    const late = r.batch(3, 1, 2);
    await r.clock.advance(LIMITS.gapWaitMs - 1);
    assert.equal(late.outcome(), 'waiting');
    await r.clock.advance(1);
    assert.equal(late.outcome(), undefined, 'told to retry');
    assert.equal(r.clock.pending, 0);
    // The predecessor, then the retry: both delivered, in order.
    assert.equal(r.batch(2, 1, 2).outcome(), 0);
    assert.equal(r.batch(3, 1, 2).outcome(), 0);
    assert.deepEqual(r.numbers(), [1, 2, 3]);
  });

  test('more than maxWaiting batches waiting: the next is told to retry at once', async () => {
    const r = receiver({ gapWaitMs: 1_000, maxWaiting: 2 });
    r.batch(1, 1, 1);
    const a = r.batch(3, 1, 2);
    const b = r.batch(4, 1, 2);
    const c = r.batch(5, 1, 2);
    assert.equal(c.sync, false);
    await flushMicrotasks();
    assert.equal(c.outcome(), undefined, 'no time had to pass');
    assert.equal(r.clock.now(), 0);
    assert.deepEqual([a.outcome(), b.outcome()], ['waiting', 'waiting']);
    r.batch(2, 1, 2);
    await flushMicrotasks();
    assert.deepEqual([a.outcome(), b.outcome()], [0, 0]);
    assert.deepEqual(r.numbers(), [1, 2, 3, 4], '5 was refused: it comes again');
    assert.equal(r.batch(5, 1, 2).outcome(), 0);
  });

  test('several waiting batches are woken in number order, whatever order they came in', async () => {
    const r = receiver({ gapWaitMs: 1_000, maxWaiting: 8 });
    r.batch(1, 1, 1);
    const w6 = r.batch(6, 2, 2);
    const w3 = r.batch(3, 1, 2);
    const w11 = r.batch(11, 1, 2); // 8..10 never came: stays waiting
    const w4 = r.batch(4, 2, 2);
    r.batch(2, 1, 2);
    await flushMicrotasks();
    assert.deepEqual([w3.outcome(), w4.outcome(), w6.outcome()], [0, 0, 0]);
    assert.equal(w11.outcome(), 'waiting');
    assert.deepEqual(r.numbers(), [1, 2, 3, 4, 5, 6, 7]);
    await r.clock.advance(LIMITS.gapWaitMs);
    assert.equal(w11.outcome(), undefined);
  });
});

describe('LinkOrder: base, streams, forgetting', () => {
  test('base moves past numbers the sender gave up: no wait for them', () => {
    const r = receiver();
    r.batch(1, 1, 1);
    const b = r.batch(5, 2, 5); // 2..4 were given up (cancelled, expired, refused)
    assert.equal(b.sync, true);
    assert.equal(b.outcome(), 0);
    assert.deepEqual(r.numbers(), [1, 5, 6]);
    // A stale retry of a given-up number, arriving late, is not delivered out of order.
    assert.equal(r.batch(3, 1, 1).outcome(), 1);
    assert.deepEqual(r.numbers(), [1, 5, 6]);
  });

  test('base moving forward wakes the batches that waited for the numbers given up', async () => {
    const r = receiver();
    r.batch(1, 1, 1);
    const waiting = r.batch(4, 2, 2); // waits for 2, 3
    await flushMicrotasks();
    assert.equal(waiting.outcome(), 'waiting');
    const next = r.batch(6, 1, 4); // 2, 3 were given up
    await flushMicrotasks();
    assert.equal(waiting.outcome(), 0);
    assert.equal(next.outcome(), 0);
    assert.deepEqual(r.numbers(), [1, 4, 5, 6], 'the woken batch first: delivery stays in order');
    assert.equal(r.clock.pending, 0);
  });

  test('base moving forward over a waiting batch that the new one overlaps keeps order', async () => {
    // The sender gave up 1 while 2 waited here, then sent 2 again with 3 (base 2).
    const r = receiver();
    const stale = r.batch(2, 1, 1);
    const retry = r.batch(2, 2, 2);
    await flushMicrotasks();
    assert.deepEqual([stale.outcome(), retry.outcome()], [0, 1]);
    assert.deepEqual(r.numbers(), [2, 3], 'in order, each once');
  });

  test('a base beyond the batch on a new link: the batch waits for the numbers before it', async () => {
    const r = receiver();
    const second = r.batch(4, 1, 1); // the first message this node hears; 1..3 still coming
    await flushMicrotasks();
    assert.equal(second.outcome(), 'waiting');
    r.batch(1, 3, 1);
    await flushMicrotasks();
    assert.deepEqual(r.numbers(), [1, 2, 3, 4]);
  });

  test("a new stream releases the old stream's waiting batches with undefined and starts at its base", async () => {
    const r = receiver();
    r.batch(1, 1, 1);
    const old = r.batch(3, 1, 2);
    const fresh = r.batch(40, 2, 40, { stream: 's2' });
    assert.equal(fresh.sync, true);
    assert.equal(fresh.outcome(), 0, 'numbers from its base on are new');
    await flushMicrotasks();
    assert.equal(old.outcome(), undefined, 'the old stream will never be completed');
    assert.equal(r.clock.pending, 0);
    assert.equal(r.order.size, 1, 'still one link per sender');
    // The new stream waits for its own gaps.
    const gap = r.batch(44, 1, 40, { stream: 's2' });
    await flushMicrotasks();
    assert.equal(gap.outcome(), 'waiting');
    r.batch(42, 2, 40, { stream: 's2' });
    await flushMicrotasks();
    assert.deepEqual(r.delivered, [
      'alice:s1:1',
      'alice:s2:40',
      'alice:s2:41',
      'alice:s2:42',
      'alice:s2:43',
      'alice:s2:44',
    ]);
  });

  test('a late batch of a replaced stream is refused as ended, and the current stream goes on once', () => {
    const r = receiver();
    r.batch(1, 3, 1); // s1: 1..3
    r.batch(1, 2, 1, { stream: 's2' }); // the sender rebuilt its queue: s2 1..2
    const late = r.batch(4, 2, 1); // an s1 batch still on its way when s1 was closed
    assert.equal(late.outcome(), STREAM_ENDED);
    // A retry of s2's first batch (its answer was lost) is not delivered again.
    const retry = r.batch(1, 2, 1, { stream: 's2' });
    assert.equal(retry.outcome(), 2, 'nothing new');
    r.batch(3, 1, 1, { stream: 's2' });
    assert.deepEqual(r.delivered, [
      'alice:s1:1',
      'alice:s1:2',
      'alice:s1:3',
      'alice:s2:1',
      'alice:s2:2',
      'alice:s2:3',
    ]);
    // Only the last few streams are remembered.
    for (const stream of ['s3', 's4', 's5', 's6']) r.batch(1, 1, 1, { stream });
    assert.equal(r.batch(9, 1, 9, { stream: 's2' }).outcome(), STREAM_ENDED, 's2 is among the last 4');
    assert.equal(r.batch(9, 1, 9).outcome(), 0, 's1 is forgotten: taken as a new stream');
  });

  test('a new stream whose base is below its first batch waits for the numbers between', async () => {
    const r = receiver();
    r.batch(1, 5, 1);
    const overtook = r.batch(3, 1, 1, { stream: 's2' });
    await flushMicrotasks();
    assert.equal(overtook.outcome(), 'waiting');
    r.batch(1, 2, 1, { stream: 's2' });
    await flushMicrotasks();
    assert.equal(overtook.outcome(), 0);
    assert.deepEqual(r.delivered.slice(5), ['alice:s2:1', 'alice:s2:2', 'alice:s2:3']);
  });

  test('base undefined (an older sender, one batch at a time) means nothing before the batch will come', () => {
    const r = receiver();
    const first = r.batch(10, 2, undefined);
    assert.equal(first.sync, true);
    assert.equal(first.outcome(), 0, 'a new link starts at the batch');
    assert.equal(r.batch(10, 2, undefined).outcome(), 2, 'a retry is still skipped');
    assert.equal(r.batch(11, 2, undefined).outcome(), 1, 'and an overlap still cut');
    const jump = r.batch(20, 1, undefined);
    assert.equal(jump.sync, true, 'never waits: 13..19 were given up');
    assert.equal(jump.outcome(), 0);
    assert.equal(r.batch(15, 1, undefined).outcome(), 1, 'a number given up is not delivered late');
    assert.deepEqual(
      r.delivered.map((id) => Number(id.split(':')[2])),
      [10, 11, 12, 20],
    );
  });

  test('senders are independent', async () => {
    const r = receiver();
    r.batch(1, 1, 1, { sender: 'alice' });
    const bob = r.batch(3, 1, 1, { sender: 'bob' });
    r.batch(2, 1, 1, { sender: 'alice' });
    await flushMicrotasks();
    assert.equal(bob.outcome(), 'waiting', "alice's numbers do not fill bob's gap");
    assert.equal(r.order.size, 2);
    r.batch(1, 2, 1, { sender: 'bob' });
    await flushMicrotasks();
    assert.equal(bob.outcome(), 0);
  });

  test("forget() releases the sender's waiting batches and forgets its stream", async () => {
    const r = receiver();
    r.batch(1, 3, 1);
    const waiting = r.batch(5, 1, 4);
    r.batch(1, 1, 1, { sender: 'bob' });
    r.order.forget('alice');
    await flushMicrotasks();
    assert.equal(waiting.outcome(), undefined);
    assert.equal(r.clock.pending, 0, 'its timer was cancelled');
    assert.equal(r.order.size, 1);
    r.order.forget('alice'); // twice: harmless
    r.order.forget('nobody');
    // Back again (same stream): it starts afresh from the batch's base.
    const again = r.batch(4, 2, 4);
    assert.equal(again.outcome(), 0);
    assert.deepEqual(r.numbers(), [1, 2, 3, 'bob:s1:1', 4, 5]);
  });

  test('clear() releases every waiting batch and forgets every sender', async () => {
    const r = receiver();
    r.batch(1, 1, 1);
    r.batch(1, 1, 1, { sender: 'bob' });
    const a = r.batch(3, 1, 2);
    const b = r.batch(4, 1, 2, { sender: 'bob' });
    r.order.clear();
    await flushMicrotasks();
    assert.deepEqual([a.outcome(), b.outcome()], [undefined, undefined]);
    assert.equal(r.order.size, 0);
    assert.equal(r.clock.pending, 0);
    await r.clock.advance(LIMITS.gapWaitMs * 2); // nothing left to fire
    assert.deepEqual([a.outcome(), b.outcome()], [undefined, undefined]);
  });
});
