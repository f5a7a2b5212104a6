/**
 * A member that answers, but slowly (issue 18: at 100 processes on 2 cores a receiver takes
 * seconds for a batch, longer than `requestTimeoutMs`). Its deliveries complete within the
 * delivery deadline, later than the others', with no failure: its queue waits as long as its
 * answers call for and sends it less at once after a timeout, instead of cutting every request off
 * at `requestTimeoutMs` and sending the whole batch again. The other members are not held back to
 * its pace.
 */

import assert from 'node:assert/strict';
import { type TestContext, test } from 'node:test';
import type { Node } from '../../src/index.js';
import { addr, SimNetwork, simNetworkFor } from './network.js';

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

/**
 * `messages` broadcasts of {@link SIZE} bytes at once from the first of 4 nodes, the last of them
 * slow: the fast members get all of them at their own pace, the slow one later, each once and in
 * order, with no failure and nobody declared dead.
 */
async function slowMember(t: TestContext, sim: SimNetwork, messages: number): Promise<void> {
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
  const reports = Promise.all(Array.from({ length: messages }, (_, i) => sender.broadcast(payload(i))));
  const fastDone = (): boolean => fast.every((n) => got.get(n)!.length === messages);
  assert.ok(await sim.clock.advanceUntil(fastDone, 60_000, 50), `seed ${sim.seed}: the fast members get all`);
  const slowThen = got.get(slow)!.length;
  t.diagnostic(`when the fast members had all ${messages}, the slow one had ${slowThen}`);
  assert.ok(slowThen < messages / 2, `seed ${sim.seed}: the fast members went at their own pace`);

  const all = await sim.run(reports, 600_000);
  t.diagnostic(`every report in at ${Math.round(sim.clock.now() / 1000)} simulated s`);
  const failed = all.flatMap((r) => r.failed.map((f) => `${f.peer.port}: ${f.error.message}`));
  assert.deepEqual(failed.slice(0, 3), [], `seed ${sim.seed}: no delivery failed (${failed.length})`);
  // A 200 says a batch was taken; its `message` events may follow a moment later.
  const allOfThem = (): boolean => receivers.every((n) => got.get(n)!.length >= messages);
  assert.ok(await sim.clock.advanceUntil(allOfThem, 10_000, 50), `seed ${sim.seed}: every member has all`);
  // Later repairs and catch-up change nothing.
  await sim.clock.advance(60_000);
  const expected = Array.from({ length: messages }, (_, i) => payload(i));
  for (const n of receivers) {
    const texts = got.get(n)!;
    assert.equal(texts.length, messages, `seed ${sim.seed}: ${n.self.port} got each once`);
    assert.ok(
      texts.every((x, i) => x === expected[i]),
      `seed ${sim.seed}: ${n.self.port} got them in order; first out of place: ${texts.findIndex((x, i) => x !== expected[i])}`,
    );
  }
  assert.deepEqual(watch.fails, [], `seed ${sim.seed}: nobody declared dead`);
}

test('a slow member gets every message, with no failure, and the others are not held back', (t) =>
  slowMember(t, simNetworkFor(t), MESSAGES));

/**
 * Three times as many: the slow member needs longer than the 30 s delivery deadline for them. It
 * acknowledges batches all along, so its messages are kept past their deadline
 * (`PeerQueue`, "Slow peers"); its catch-up skips what a repair session lists as it joins, and
 * still takes each live copy that comes after (`Store.skip`).
 */
for (const seed of [1, 2, 3, 4]) {
  test(`seed ${seed}: a slow member that needs longer than the delivery deadline still gets all ${3 * MESSAGES}, each once and in order`, async (t) => {
    const sim = new SimNetwork(Number(process.env.TSP2P_SEED ?? seed));
    t.after(() => sim.stopAll());
    await slowMember(t, sim, 3 * MESSAGES);
  });
}
