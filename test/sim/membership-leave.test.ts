/**
 * A graceful leave is final until the node connects again: whatever its failure detector had in
 * flight when it left (a push-pull sync, a probe, a ping-req it was helping with) must not bring
 * it back into the others' views.
 */

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SimNetwork, testSeed } from './network.js';

test('a node that leaves while its membership traffic is in flight stays gone (20 leaves at random moments)', async (t) => {
  const seed = testSeed();
  t.diagnostic(`seed ${seed} (replay with TSP2P_SEED=${seed})`);
  // Slow links and frequent syncs and probes: at any moment some of the leaver's requests are
  // on the way, or their answers are.
  const timings = {
    probeIntervalMs: 300,
    probeTimeoutMs: 250,
    pushPullIntervalMs: 200,
    gossipIntervalMs: 100,
  };
  for (let trial = 0; trial < 20; trial++) {
    const sim = new SimNetwork(seed + trial);
    try {
      const n = 5;
      for (let i = 0; i < n; i++) await sim.add({ timings });
      await sim.joinThroughFirst();
      assert.ok(await sim.fullViews(), `seed ${seed + trial}: the network converges`);
      sim.network.setLatency({ min: 20, max: 120 });
      await sim.clock.advance(Math.floor(sim.random.next() * 1_000));
      const leaver = sim.nodes[n - 1]!;
      const rest = sim.nodes.slice(0, n - 1);
      const back: string[] = [];
      for (const node of rest) {
        node.on('member:join', (p) => {
          if (p.id === leaver.self.id) back.push(`${node.self.port} saw ${p.port} join again`);
        });
      }
      const report = await sim.run(leaver.disconnect());
      assert.deepEqual(report.failed, [], `seed ${seed + trial}: every member was told`);
      await sim.clock.advance(20_000);
      assert.deepEqual(back, [], `seed ${seed + trial}: the leaver came back`);
      for (const node of rest) {
        assert.equal(
          node.members().some((p) => p.id === leaver.self.id),
          false,
          `seed ${seed + trial}: ${node.self.port} holds the leaver as a member`,
        );
      }
      assert.deepEqual(leaver.members(), []);
    } finally {
      sim.network.setLatency(1);
      await sim.stopAll();
    }
  }
});
