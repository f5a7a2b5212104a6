/**
 * Crash detection on LAN timings (issue 16): a crashed process refuses connections, and a
 * suspicion backed by refusals only (the prober's own and every helper's) is short. A paused or
 * cut-off process (timeouts) keeps Lifeguard's full suspicion, and a process restarted at once
 * at the same address is never declared dead.
 */

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LAN, suspicionBounds } from '../../src/membership/timings.js';
import type { Node } from '../../src/node.js';
import { type SimNetwork, simNetworkFor } from './network.js';

const N = 10;

async function network(sim: SimNetwork, victimOptions = {}): Promise<{ victim: Node; rest: Node[] }> {
  for (let i = 0; i < N - 1; i++) await sim.add({ preset: 'lan' });
  const victim = await sim.add({ preset: 'lan', leaveTimeoutMs: 1, ...victimOptions });
  await sim.joinThroughFirst();
  assert.ok(await sim.fullViews(), `seed ${sim.seed}: the network converges`);
  // Settle: the joins' own gossip is done.
  await sim.clock.advance(5_000);
  return { victim, rest: sim.nodes.filter((x) => x !== victim) };
}

/** The time each of `rest` first reported `event` about `id`, from now on. */
function watch(
  rest: readonly Node[],
  id: string,
  event: 'member:fail' | 'member:suspect',
  clock: { now(): number },
) {
  const at = new Map<Node, number>();
  for (const node of rest) {
    node.on(event, (p) => {
      if (p.id === id && !at.has(node)) at.set(node, clock.now());
    });
  }
  return at;
}

test('a crashed process (refused connections) is declared dead by every member within 2 s; a paused one is not', async (t) => {
  const sim = simNetworkFor(t);
  const { victim, rest } = await network(sim);
  const falseFails = watch(rest, 'nobody', 'member:fail', sim.clock);
  for (const node of rest) {
    node.on('member:fail', (p) => {
      if (p.id !== victim.self.id) falseFails.set(node, sim.clock.now());
    });
  }

  // A crash: its address refuses connections.
  const address = `${victim.self.address}:${victim.self.port}`;
  const failed = watch(rest, victim.self.id, 'member:fail', sim.clock);
  const crashedAt = sim.clock.now();
  sim.network.kill(address);
  const all = await sim.clock.advanceUntil(() => failed.size === rest.length, 60_000, 10);
  assert.ok(all, `seed ${sim.seed}: only ${failed.size} of ${rest.length} declared the crash`);
  const last = Math.max(...failed.values()) - crashedAt;
  t.diagnostic(`crash declared dead by every member after ${last} simulated ms`);
  // At most one probe round of the victim by its nine probers (one per period each, in turn)
  // before a first refusal; then a short suspicion and gossip. Spelt out, not tuned: the first
  // refused probe comes within one probe period for most seeds, at worst a full round of 9.
  assert.ok(last <= (N - 1) * LAN.probeIntervalMs + 2_000, `seed ${sim.seed}: ${last} ms`);
  assert.equal(falseFails.size, 0, `seed ${sim.seed}: a live member declared dead`);
  await sim.run(victim.stop());
});

test('a paused process (timeouts) keeps the full suspicion: not dead before min suspicion', async (t) => {
  const sim = simNetworkFor(t);
  const { victim, rest } = await network(sim);
  const address = `${victim.self.address}:${victim.self.port}`;
  const suspected = watch(rest, victim.self.id, 'member:suspect', sim.clock);
  const failed = watch(rest, victim.self.id, 'member:fail', sim.clock);
  // Paused: it takes connections and never answers, like a stopped event loop.
  sim.network.partition([[address], rest.map((x) => `${x.self.address}:${x.self.port}`)]);
  assert.ok(await sim.clock.advanceUntil(() => suspected.size > 0, 60_000, 10), `seed ${sim.seed}`);
  const first = Math.min(...suspected.values());
  assert.ok(await sim.clock.advanceUntil(() => failed.size > 0, 300_000, 50), `seed ${sim.seed}`);
  const { minMs } = suspicionBounds(LAN, N);
  assert.ok(
    Math.min(...failed.values()) - first >= minMs,
    `seed ${sim.seed}: declared dead ${Math.min(...failed.values()) - first} ms after the first suspicion`,
  );
  sim.network.heal();
});

test('a process restarted at once at the same address and identity is never declared dead', async (t) => {
  const sim = simNetworkFor(t);
  const identity = sim.random.bytes(32);
  const { victim, rest } = await network(sim, { identity });
  const { id, port } = victim.self;
  const events: string[] = [];
  for (const node of rest) {
    node.on('member:fail', (p) => {
      if (p.id === id) events.push(`${node.self.port} member:fail`);
    });
  }
  const address = `${victim.self.address}:${port}`;
  sim.network.kill(address);
  await sim.run(victim.stop());
  sim.nodes.splice(sim.nodes.indexOf(victim), 1);
  sim.network.revive(address);
  const again = await sim.add({ preset: 'lan', identity, port });
  await sim.run(again.connect(rest[0]!.self));
  assert.ok(await sim.fullViews(), `seed ${sim.seed}: the network converges`);
  await sim.clock.advance(30_000);
  assert.deepEqual(events, [], `seed ${sim.seed}`);
  for (const node of rest) assert.ok(node.members().some((p) => p.id === id));
});
