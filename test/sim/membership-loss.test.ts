import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SimNetwork, testSeed } from './network.js';

test('with 10% of requests and answers lost, no false death in 10 simulated minutes (50 nodes, LAN timings)', async (t) => {
  const seed = testSeed();
  t.diagnostic(`seed ${seed} (replay with TSP2P_SEED=${seed})`);
  const sim = new SimNetwork(seed);
  t.after(() => {
    sim.network.setLoss(0);
    return sim.stopAll();
  });
  const n = 50;
  for (let i = 0; i < n; i++) await sim.add();
  await sim.joinThroughFirst();
  assert.ok(await sim.fullViews(60_000, 250), 'the network converges before the loss starts');
  const { fails, suspicions } = sim.watchFailures();
  sim.network.setLoss(0.1);
  const before = sim.network.stats.dropped;
  await sim.clock.advance(10 * 60_000);
  t.diagnostic(
    `${sim.network.stats.dropped - before} requests or answers lost, ${suspicions.count} suspicions raised and refuted`,
  );
  assert.deepEqual(fails, [], `seed ${seed}: false deaths`);
  for (const node of sim.nodes) assert.equal(node.members().length, n - 1);
});
