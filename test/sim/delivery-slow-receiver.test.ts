/**
 * A member that answers, but slowly (issue 18: at 100 processes on 2 cores a receiver takes
 * seconds for a batch, longer than `requestTimeoutMs`). Its deliveries complete within the
 * delivery deadline, later than the others', with no failure: its queue waits as long as its
 * answers call for and sends it less at once after a timeout, instead of cutting every request off
 * at `requestTimeoutMs` and sending the whole batch again. The other members are not held back to
 * its pace.
 */

import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Node } from '../../src/index.js';
import { addr, simNetworkFor } from './network.js';

const N = 4;
/** About three full batches: the slow member takes ~25 s of its 30 s delivery deadline. */
const MESSAGES = 200;
/** Payload bytes: a full batch (120 KiB) holds about 85 of them. */
const SIZE = 1_000;
/**
 * The slow member's time per KiB of a request: a full batch takes it about 8.4 s, past the
 * 5 s `requestTimeoutMs`; a probe (under 1 KiB) well under the probe timeout.
 */
const SLOW_MS_PER_KIB = 70;

test('a slow member gets every message, with no failure, and the others are not held back', async (t) => {
  const sim = simNetworkFor(t);
  for (let i = 0; i < N; i++) await sim.add({ preset: 'lan', dissemination: 'full' });
  await sim.joinThroughFirst();
  assert.ok(await sim.fullViews(), `seed ${sim.seed}: the network converges`);
  const [sender, ...receivers] = sim.nodes as [Node, ...Node[]];
  const slow = receivers.at(-1)!;
  const fast = receivers.slice(0, -1);
  sim.network.slow(addr(slow), SLOW_MS_PER_KIB);
  const got = new Map<Node, string[]>(receivers.map((n) => [n, []]));
  for (const n of receivers) n.on('message', (m) => got.get(n)!.push(m.text));
  const watch = sim.watchFailures();

  // Every broadcast at once: the queues hold them all, and batch them as they go.
  const payload = (i: number): string => `m${i} ${'x'.repeat(SIZE)}`;
  const reports = Promise.all(Array.from({ length: MESSAGES }, (_, i) => sender.broadcast(payload(i))));
  const fastDone = (): boolean => fast.every((n) => got.get(n)!.length === MESSAGES);
  assert.ok(await sim.clock.advanceUntil(fastDone, 60_000, 50), `seed ${sim.seed}: the fast members get all`);
  const slowThen = got.get(slow)!.length;
  t.diagnostic(`when the fast members had all ${MESSAGES}, the slow one had ${slowThen}`);
  assert.ok(slowThen < MESSAGES / 2, `seed ${sim.seed}: the fast members went at their own pace`);

  const all = await sim.run(reports, 600_000);
  const failed = all.flatMap((r) => r.failed.map((f) => `${f.peer.port}: ${f.error.message}`));
  assert.deepEqual(failed.slice(0, 3), [], `seed ${sim.seed}: no delivery failed (${failed.length})`);
  // A 200 says a batch was taken; its `message` events may follow a moment later.
  const allOfThem = (): boolean => receivers.every((n) => got.get(n)!.length >= MESSAGES);
  assert.ok(await sim.clock.advanceUntil(allOfThem, 10_000, 50), `seed ${sim.seed}: every member has all`);
  const expected = Array.from({ length: MESSAGES }, (_, i) => payload(i));
  for (const n of receivers) {
    assert.deepEqual(got.get(n), expected, `seed ${sim.seed}: ${n.self.port} got each once, in order`);
  }
  assert.deepEqual(watch.fails, [], `seed ${sim.seed}: nobody declared dead`);
});
