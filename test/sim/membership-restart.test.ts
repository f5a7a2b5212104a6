/**
 * A member that crashes and is started again at the same address, with the same identity, but
 * does not join again, is not a member any more: it answers every request with 403 (it knows no
 * network). The others must declare it dead, not keep it alive because it answers.
 */

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { simNetworkFor } from './network.js';

test('a member restarted without joining again is declared dead by every other member, then rejoins cleanly', async (t) => {
  const sim = simNetworkFor(t);
  const { seed } = sim;
  const n = 6;
  const identity = sim.random.bytes(32);
  for (let i = 0; i < n - 1; i++) await sim.add();
  // A crash is instant: its leave, which reaches nobody, must not hold its stop for long.
  const first = await sim.add({ identity, leaveTimeoutMs: 1 });
  await sim.joinThroughFirst();
  assert.ok(await sim.fullViews(), `seed ${seed}: the network converges`);
  const { id, port } = first.self;
  const rest = sim.nodes.slice(0, n - 1);
  const events: string[] = [];
  for (const node of rest) {
    for (const event of ['member:fail', 'member:leave', 'member:join'] as const) {
      node.on(event, (p) => {
        if (p.id === id) events.push(`${node.self.port} ${event}`);
      });
    }
  }

  // A crash: nothing reaches it, its leave notices included; then a new process at its address.
  const address = `${first.self.address}:${port}`;
  sim.network.kill(address);
  await sim.run(first.stop());
  sim.nodes.splice(sim.nodes.indexOf(first), 1);
  sim.network.revive(address);
  const again = await sim.add({ identity, port });
  assert.equal(again.self.id, id);
  assert.equal(again.self.port, port);

  const declared = await sim.clock.advanceUntil(
    () => rest.every((x) => !x.members().some((p) => p.id === id)),
    120_000,
    100,
  );
  assert.ok(declared, `seed ${seed}: still a member somewhere: ${JSON.stringify(events)}`);
  assert.deepEqual(events.sort(), rest.map((x) => `${x.self.port} member:fail`).sort());

  // Joining again brings it back everywhere.
  events.length = 0;
  await sim.run(again.connect(rest[0]!.self));
  assert.ok(await sim.fullViews(), `seed ${seed}: the network converges again`);
  assert.deepEqual(events.sort(), rest.map((x) => `${x.self.port} member:join`).sort());
});
