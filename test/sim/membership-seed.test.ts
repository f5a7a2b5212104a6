import assert from 'node:assert/strict';
import { test } from 'node:test';
import { simulation } from '../../src/node.js';
import { SimNetwork, testSeed } from './network.js';

test('simulation.seedView: nodes started from a converged view are connected, probe each other, and take a newcomer', async (t) => {
  const seed = testSeed();
  t.diagnostic(`seed ${seed}`);
  const sim = new SimNetwork(seed);
  for (let i = 0; i < 12; i++) await sim.add();
  const entries = sim.nodes.map((n) => simulation.selfUpdate(n));
  for (const n of sim.nodes) assert.equal(simulation.seedView(n, entries), sim.nodes.length - 1);
  for (const n of sim.nodes) {
    assert.equal(n.isConnected, true);
    assert.equal(n.members().length, sim.nodes.length - 1);
  }
  // At rest nothing changes: the views were converged.
  await sim.clock.advance(20_000);
  for (const n of sim.nodes) assert.equal(n.members().length, sim.nodes.length - 1);
  // A newcomer joins through one of them and reaches every view, by gossip.
  const fresh = await sim.add();
  await sim.run(fresh.connect(sim.nodes[3]!.self));
  const all = await sim.clock.advanceUntil(
    () => sim.nodes.every((n) => n.members().length === sim.nodes.length - 1),
    60_000,
    100,
  );
  assert.ok(all, `the newcomer did not reach every view (seed ${seed})`);
});
