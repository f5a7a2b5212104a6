/**
 * Backpressure across a real socket: a sender (in this process) with a tiny outbound queue, and
 * a receiver process that is SIGSTOPped. With `backpressure: 'reject'` a call that would
 * overfill the queue rejects with ERR_BACKPRESSURE; with `'wait'` it waits for room and goes
 * out once the receiver answers again. The bound is checked by behaviour: what is accepted, and
 * the size of every batch the sender puts on the wire.
 */

import assert from 'node:assert/strict';
import { type TestContext, test } from 'node:test';
import type { Node } from '../../src/index.js';
import { RecordingTransport, sequenceProblem, waitStopped } from '../helpers/delivery-streams.js';
import { startNode } from '../helpers/nodes.js';
import { PeerProcess } from '../helpers/spawn-peer.js';
import { waitFor } from '../helpers/wait.js';

const MAX_QUEUE = 4;
/** Nobody is declared dead during these tests: a suspect has at least 100 s to refute. */
const TIMINGS = { suspicionMult: 100 };

interface Tracked<T> {
  readonly promise: Promise<T>;
  state: 'pending' | 'fulfilled' | 'rejected';
}

function track<T>(promise: Promise<T>): Tracked<T> {
  const tracked: Tracked<T> = { promise, state: 'pending' };
  promise.then(
    () => {
      tracked.state = 'fulfilled';
    },
    () => {
      tracked.state = 'rejected';
    },
  );
  return tracked;
}

/** Lets every callback already due run (I/O included), without waiting for anything else. */
function settle(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** A receiver process and a sender node in this process, connected, the receiver stopped. */
async function stoppedPair(
  t: TestContext,
  backpressure: 'wait' | 'reject',
): Promise<{ sender: Node; receiver: PeerProcess; transport: RecordingTransport }> {
  const receiver = await PeerProcess.spawn(t, { preset: 'lan', timings: TIMINGS }, { label: 'receiver' });
  // Registered after the receiver's kill: runs first, so the sender never waits on a stopped peer.
  t.after(() => receiver.signal('SIGCONT'));
  const transport = new RecordingTransport();
  const sender = await startNode(t, {
    preset: 'lan',
    timings: TIMINGS,
    maxQueueMessages: MAX_QUEUE,
    backpressure,
    transport,
  });
  await sender.connect(receiver.address);
  assert.ok(receiver.signal('SIGSTOP'));
  await waitStopped(receiver.child.pid!);
  return { sender, receiver, transport };
}

/** Every batch to the receiver holds at most MAX_QUEUE messages: the queue never held more. */
function assertBounded(transport: RecordingTransport, port: number): void {
  const batches = transport.batchesTo(port);
  assert.ok(batches.length > 0, 'batches went out');
  const sizes = batches.map((b) => b.texts?.length ?? 0);
  assert.ok(
    sizes.every((n) => n >= 1 && n <= MAX_QUEUE),
    `every batch within the queue bound ${MAX_QUEUE}: ${sizes.join(', ')}`,
  );
}

test("backpressure 'reject': a full queue refuses the call with ERR_BACKPRESSURE", async (t) => {
  const { sender, receiver, transport } = await stoppedPair(t, 'reject');
  const port = receiver.self.port;
  // Queued in one go, so they leave together, in one batch, unanswered: the queue is full.
  const accepted = Array.from({ length: MAX_QUEUE }, (_, i) => track(sender.broadcast(`r:${i}`)));
  await settle();
  assert.deepEqual(
    accepted.map((a) => a.state),
    Array(MAX_QUEUE).fill('pending'),
    'accepted, not yet acknowledged',
  );
  await assert.rejects(sender.broadcast('r:refused'), { code: 'ERR_BACKPRESSURE' });
  await assert.rejects(sender.send(receiver.address, 'r:refused-direct'), { code: 'ERR_BACKPRESSURE' });
  const onWire = transport.batchesTo(port);
  assert.ok(
    onWire.length > 0 && onWire.every((b) => b.texts?.join() === 'r:0,r:1,r:2,r:3'),
    'only the four accepted messages are on the wire while the receiver is stopped, in one batch',
  );

  receiver.signal('SIGCONT');
  const reports = await Promise.all(accepted.map((a) => a.promise));
  for (const r of reports) {
    assert.deepEqual(
      r.delivered.map((p) => p.id),
      [receiver.self.id],
    );
    assert.deepEqual(r.failed, []);
  }
  // Room again: the next call goes through.
  const after = await sender.broadcast('r:after');
  assert.deepEqual(
    after.delivered.map((p) => p.id),
    [receiver.self.id],
  );
  const expected = ['r:0', 'r:1', 'r:2', 'r:3', 'r:after'];
  await waitFor(async () => (await receiver.received()).length >= expected.length, { timeoutMs: 30_000 });
  const problem = sequenceProblem(await receiver.received(), expected);
  if (problem !== undefined) assert.fail(`the refused messages never arrive: ${problem}`);
  assertBounded(transport, port);
});

test("backpressure 'wait': calls wait for room, in order, and all go out after SIGCONT", async (t) => {
  const { sender, receiver, transport } = await stoppedPair(t, 'wait');
  const port = receiver.self.port;
  const count = 20;
  const first = Array.from({ length: count / 2 }, (_, i) => track(sender.broadcast(`w:${i}`)));
  // A call that waits for room and gives up: it rejects with its signal's reason, and leaves no
  // trace: it was never numbered nor written to the sender's log, so no receiver gets it, not
  // even later by catch-up, and the numbers of the others have no gap.
  const ac = new AbortController();
  const abandoned = sender.broadcast('w:abandoned', { signal: ac.signal });
  const second = Array.from({ length: count / 2 }, (_, i) => track(sender.broadcast(`w:${count / 2 + i}`)));
  const calls = [...first, ...second];
  await settle();
  const reason = new Error('the caller gave up');
  ac.abort(reason);
  await assert.rejects(abandoned, (err) => err === reason);
  await settle();
  assert.ok(
    !(await sender.history()).some((m) => m.text === 'w:abandoned'),
    "the abandoned message is not in the sender's log",
  );
  assert.deepEqual(
    calls.map((c) => c.state),
    Array(count).fill('pending'),
    'every call waits: for an answer, or for room',
  );
  const onWire = transport.batchesTo(port);
  assert.ok(
    onWire.length > 0 && onWire.every((b) => b.texts?.join() === 'w:0,w:1,w:2,w:3'),
    'only the first four messages (the queue bound) are on the wire while the receiver is stopped, in one batch',
  );

  receiver.signal('SIGCONT');
  const reports = await Promise.all(calls.map((c) => c.promise));
  for (const r of reports) {
    assert.deepEqual(
      r.delivered.map((p) => p.id),
      [receiver.self.id],
    );
    assert.deepEqual(r.failed, []);
  }
  const expected = Array.from({ length: count }, (_, i) => `w:${i}`);
  await waitFor(async () => (await receiver.received()).length >= count, { timeoutMs: 30_000 });
  // One more, after them all: anything a gap had made the receiver fetch would come before it.
  expected.push('w:last');
  await sender.broadcast('w:last');
  await waitFor(async () => (await receiver.received()).includes('w:last'), { timeoutMs: 30_000 });
  const problem = sequenceProblem(await receiver.received(), expected);
  if (problem !== undefined)
    assert.fail(`the waiting calls arrive in order, once, the abandoned one never: ${problem}`);
  assertBounded(transport, port);
  const sizes = transport.batchesTo(port).map((b) => b.texts?.length ?? 0);
  t.diagnostic(`batch sizes on the wire: ${sizes.join(', ')}`);
});
