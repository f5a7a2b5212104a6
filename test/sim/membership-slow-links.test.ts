import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MessageType } from '../../src/protocol/schema.js';
import { SimNetwork, testSeed } from './network.js';

/** Pings sent so far by every node (counted by the memory transport). */
function pings(sim: SimNetwork): number {
  let count = 0;
  for (const bySender of sim.network.stats.sent.values()) count += bySender.get(MessageType.Ping) ?? 0;
  return count;
}

/**
 * Answers slower than the probe timeout, from every member: links of 200-450 ms one way (round
 * trips of 400-900 ms against LAN timings' 500 ms probe timeout), as on a loaded machine or a
 * slow path. Every member answers, so every suspicion is false. A fixed wait suspects members
 * round after round; a wait that follows the measured round trips (RFC 6298's estimator, see
 * `RoundTrip` in src/membership/failure-detector.ts) stops suspecting once it has a few answers.
 */
test('answers slower than the probe timeout: the wait follows the round trips, and suspicions stop (20 nodes, LAN timings)', async (t) => {
  const seed = testSeed();
  t.diagnostic(`seed ${seed} (replay with TSP2P_SEED=${seed})`);
  const sim = new SimNetwork(seed);
  t.after(() => {
    sim.network.setLatency({ min: 1, max: 5 });
    return sim.stopAll();
  });
  const n = 20;
  for (let i = 0; i < n; i++) await sim.add();
  await sim.joinThroughFirst();
  assert.ok(await sim.fullViews(60_000, 250), 'the network converges before the links slow down');
  const { fails, suspicions } = sim.watchFailures();
  sim.network.setLatency({ min: 200, max: 450 });
  // The first minute: each node learns the new round trips (a few probes each).
  await sim.clock.advance(60_000);
  const early = suspicions.count;
  const probes0 = pings(sim);
  // The next five minutes: the waits fit the answers, and nobody is suspected any more.
  await sim.clock.advance(5 * 60_000);
  const late = suspicions.count - early;
  const probes = pings(sim) - probes0;
  t.diagnostic(`suspicions: ${early} in the first minute, ${late} in the next five (${probes} pings)`);
  assert.deepEqual(fails, [], `seed ${seed}: false deaths`);
  for (const node of sim.nodes) assert.equal(node.members().length, n - 1, `seed ${seed}: a member was lost`);
  // Almost nobody is suspected any more: at most one ping in 200 ends in a suspicion.
  assert.ok(
    late * 200 <= probes,
    `seed ${seed}: ${late} suspicions for ${probes} probes after the first minute`,
  );
});
