/**
 * Restart without loss, the membership side: after a network-wide outage (every node crashes
 * and starts again from its `dataDir`), the network forms again from the members each node's
 * snapshot holds, with no `connect()` call; and nothing received before the outage is
 * delivered again.
 */

import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import type { Node } from '../../src/index.js';
import { tempDir } from '../helpers/store.js';
import { simNetworkFor } from './network.js';

test('network-wide outage: every node restarts from its dataDir and the network re-forms by itself', async (t) => {
  const root = tempDir('tsp2p-outage-');
  t.after(() => root.remove());
  const sim = simNetworkFor(t);
  const { seed } = sim;
  const n = 8;
  const dirs = Array.from({ length: n }, (_, i) => join(root.dir, `n${i}`));
  // A crash is instant: its leave, which reaches nobody, must not hold its stop for long.
  const opts = (i: number, port = 0) => ({ dataDir: dirs[i]!, identity: undefined, leaveTimeoutMs: 1, port });
  for (let i = 0; i < n; i++) await sim.add(opts(i));
  await sim.joinThroughFirst();
  assert.ok(await sim.fullViews(), `seed ${seed}: the network converges`);
  const ids = sim.nodes.map((x) => x.id);
  const ports = sim.nodes.map((x) => x.self.port);
  let delivered = 0;
  for (const x of sim.nodes) x.on('message', () => delivered++);
  await sim.run(sim.nodes[1]!.broadcast('before'));
  assert.ok(await sim.clock.advanceUntil(() => delivered === n - 1, 10_000), `seed ${seed}`);

  // Every node crashes at once.
  const addresses = sim.nodes.map((x) => `${x.self.address}:${x.self.port}`);
  for (const a of addresses) sim.network.kill(a);
  await sim.run(Promise.all(sim.nodes.map((x) => x.stop())));
  sim.nodes.length = 0;
  for (const a of addresses) sim.network.revive(a);

  // They come back one by one, a few seconds apart, and nobody calls connect().
  const again: Node[] = [];
  let redelivered = 0;
  for (let i = 0; i < n; i++) {
    const node = await sim.add(opts(i, ports[i]!));
    assert.equal(node.id, ids[i], 'the identity is the dataDir one');
    node.on('message', (m) => {
      if (m.text === 'before') redelivered++;
    });
    again.push(node);
    await sim.clock.advance(2_000);
  }
  assert.ok(
    await sim.fullViews(120_000, 100),
    `seed ${seed}: the network re-forms: ${again.map((x) => x.members().length).join(',')}`,
  );
  assert.ok(again.every((x) => x.isConnected));
  assert.equal(redelivered, 0, 'nothing from before the outage is delivered again');
  for (const x of again.filter((_, i) => i !== 1))
    assert.deepEqual(
      (await x.history()).map((m) => m.text),
      ['before'],
    );
});

test('a leave on purpose is not rejoined on the next start; a leave with rejoinOnStart is', async (t) => {
  const root = tempDir('tsp2p-leave-');
  t.after(() => root.remove());
  const sim = simNetworkFor(t);
  const { seed } = sim;
  const dirs = [join(root.dir, 'a'), join(root.dir, 'b')];
  const opts = (i: number, port = 0) => ({ dataDir: dirs[i]!, identity: undefined, port });
  await sim.add();
  for (let i = 0; i < 2; i++) await sim.add(opts(i));
  await sim.joinThroughFirst();
  assert.ok(await sim.fullViews(), `seed ${seed}: the network converges`);
  const [a, b] = [sim.nodes[1]!, sim.nodes[2]!];
  const ports = [a.self.port, b.self.port];
  await sim.run(a.disconnect());
  // A program that is closing (the CLI on exit) keeps its snapshot.
  await sim.run(b.disconnect({ rejoinOnStart: true }));
  await sim.run(Promise.all([a.stop(), b.stop()]));
  sim.nodes.length = 1;
  const a2 = await sim.add(opts(0, ports[0]!));
  const b2 = await sim.add(opts(1, ports[1]!));
  assert.ok(
    await sim.clock.advanceUntil(() => b2.isConnected && b2.members().length === 1, 60_000, 100),
    `seed ${seed}: b rejoins by itself`,
  );
  // a left on purpose: it stays out, and b (which saw it leave) does not pull it back in.
  await sim.clock.advance(60_000);
  assert.equal(a2.isConnected, false, `seed ${seed}: a left on purpose and stays out`);
  assert.deepEqual(
    b2.members().map((p) => p.id),
    [sim.nodes[0]!.id],
  );
});
