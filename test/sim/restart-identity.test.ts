/**
 * Restarts and incarnations (issue 16, cases 4 and 5), on LAN timings:
 *
 * - a member that crashed after raising its incarnation many times (tags, topics, refutations)
 *   is declared dead at that incarnation; started again at once without a `dataDir`, its new
 *   run starts lower (its first incarnation comes from the wall clock). It must still refute its
 *   own old "dead" record at once and stay a member, at its old address or at a new one;
 * - a new identity at an old member's address takes the address over, and the old member is
 *   declared dead: no ghost is left in any view.
 */

import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Node, NodeOptions } from '../../src/index.js';
import { type SimNetwork, simNetworkFor } from './network.js';

const N = 6;
const LAN = { preset: 'lan', leaveTimeoutMs: 1 } as const;

function addr(n: Node): string {
  return `${n.self.address}:${n.self.port}`;
}

async function network(sim: SimNetwork, victimOptions: NodeOptions): Promise<{ victim: Node; rest: Node[] }> {
  for (let i = 0; i < N - 1; i++) await sim.add(LAN);
  const victim = await sim.add({ ...LAN, ...victimOptions });
  await sim.joinThroughFirst();
  assert.ok(await sim.fullViews(), `seed ${sim.seed}: the network converges`);
  await sim.clock.advance(3_000);
  return { victim, rest: sim.nodes.filter((x) => x !== victim) };
}

/** Kills `node` (nothing reaches it, its leave included), stops it, and waits until all of `rest` hold it dead. */
async function crash(sim: SimNetwork, node: Node, rest: readonly Node[]): Promise<void> {
  const address = addr(node);
  const id = node.id;
  sim.network.kill(address);
  await sim.run(node.stop());
  sim.nodes.splice(sim.nodes.indexOf(node), 1);
  const dead = await sim.clock.advanceUntil(
    () => rest.every((x) => x.memberStates().find((m) => m.peer.id === id)?.state === 'dead'),
    30_000,
    10,
  );
  assert.ok(dead, `seed ${sim.seed}: the crash is declared everywhere`);
  sim.network.revive(address);
}

/** Member events about `id` on `nodes`, as `port event`. */
function events(nodes: readonly Node[], id: string): string[] {
  const out: string[] = [];
  for (const node of nodes) {
    for (const event of ['member:fail', 'member:leave', 'member:suspect'] as const) {
      node.on(event, (p) => {
        if (p.id === id) out.push(`${node.self.port} ${event}`);
      });
    }
  }
  return out;
}

/** How `node` holds `id`: state, incarnation and address. */
function held(node: Node, id: string): string {
  const m = node.memberStates().find((x) => x.peer.id === id);
  return m === undefined ? 'unknown' : `${m.state}@${m.incarnation} ${m.peer.address}:${m.peer.port}`;
}

for (const where of ['the same address', 'a new address'] as const) {
  test(`a member restarted at once at ${where}, its last run's incarnation far above its new one, refutes its old "dead" record and stays`, async (t) => {
    const sim = simNetworkFor(t);
    const identity = sim.random.bytes(32);
    const { victim, rest } = await network(sim, { identity });
    // Twenty restatements: its incarnation is twenty above what a run started now begins at.
    for (let i = 0; i < 20; i++) await sim.run(victim.setTags({ round: String(i) }));
    await sim.clock.advance(2_000);
    const { id, port } = victim.self;
    const oldInc = rest[0]!.memberStates().find((m) => m.peer.id === id)!.incarnation;
    await crash(sim, victim, rest);

    const again = await sim.add({ ...LAN, identity, ...(where === 'the same address' ? { port } : {}) });
    assert.equal(again.id, id);
    const bad = events(rest, id);
    const start = sim.clock.now();
    await sim.run(again.connect(rest[N - 2]!.self));
    // Back everywhere, at its new address, at an incarnation above its death, within a few
    // probe periods (1 s each).
    const back = await sim.clock.advanceUntil(
      () =>
        rest.every((x) => {
          const m = x.memberStates().find((s) => s.peer.id === id);
          return m?.state === 'alive' && m.incarnation > oldInc && m.peer.port === again.self.port;
        }),
      10_000,
      10,
    );
    assert.ok(back, `seed ${sim.seed}: views ${rest.map((x) => held(x, id)).join('; ')} (old ${oldInc})`);
    t.diagnostic(`back everywhere after ${sim.clock.now() - start} simulated ms`);
    // ...and it stays: 30 s of probes, gossip and syncs later, nobody suspected or failed it.
    await sim.clock.advance(30_000);
    assert.deepEqual(bad, [], `seed ${sim.seed}: ${rest.map((x) => held(x, id)).join('; ')}`);
    // Cut off for 3 s (its probes time out): suspected, and it refutes once it hears of it. It
    // can only do so if its own incarnation follows the one the others hold of it.
    sim.network.partition([[addr(again)], rest.map(addr)]);
    const suspected = await sim.clock.advanceUntil(() => bad.length > 0, 10_000, 10);
    assert.ok(suspected, `seed ${sim.seed}: the cut is noticed`);
    await sim.clock.advance(1_000);
    sim.network.heal();
    await sim.clock.advance(30_000);
    assert.ok(
      (bad as string[]).every((e) => e.endsWith('member:suspect')),
      `seed ${sim.seed}: only suspicions, refuted: ${bad.join(', ')}; ${rest.map((x) => held(x, id)).join('; ')}`,
    );
    assert.ok(rest.every((x) => held(x, id).startsWith('alive')));
    assert.ok(await sim.fullViews(5_000), `seed ${sim.seed}: full views`);
    // No ghost: nobody holds a second record at the old address (a new address: the old one is gone).
    for (const node of sim.nodes) {
      const ids = node.memberStates().map((m) => m.peer.id);
      assert.equal(new Set(ids).size, ids.length);
      assert.equal(node.memberStates().filter((m) => m.peer.id === id).length, node === again ? 0 : 1);
    }
  });
}

/**
 * `fresh` joins through the first of `rest`; waits until every one of `rest` holds it at `port`
 * and no longer holds `oldId` (10 simulated seconds at most), and fails with what each holds.
 */
async function joinsInPlaceOf(
  sim: SimNetwork,
  fresh: Node,
  oldId: string,
  port: number,
  rest: readonly Node[],
): Promise<void> {
  await sim.run(fresh.connect(rest[0]!.self));
  const clean = await sim.clock.advanceUntil(
    () =>
      rest.every(
        (x) =>
          x.members().some((p) => p.id === fresh.id && p.port === port) &&
          !x.members().some((p) => p.id === oldId),
      ),
    10_000,
    10,
  );
  assert.ok(
    clean,
    `seed ${sim.seed}: ${rest.map((x) => `${held(x, fresh.id)} / ${held(x, oldId)}`).join('; ')}`,
  );
}

test('a new identity at an old member address takes it over; the old member is declared dead, no ghost left', async (t) => {
  const sim = simNetworkFor(t);
  const { victim, rest } = await network(sim, {});
  const { id: oldId, port } = victim.self;
  await crash(sim, victim, rest);
  // A different node (a new key) started at the crashed member's address.
  const fresh = await sim.add({ ...LAN, port });
  assert.notEqual(fresh.id, oldId);
  const start = sim.clock.now();
  await joinsInPlaceOf(sim, fresh, oldId, port, rest);
  t.diagnostic(`taken over everywhere after ${sim.clock.now() - start} simulated ms`);
  await sim.clock.advance(30_000);
  assert.ok(await sim.fullViews(5_000), `seed ${sim.seed}: full views`);
  for (const node of sim.nodes) assert.ok(!node.members().some((p) => p.id === oldId), 'no ghost');
});

test('a new identity at a live member address (a restart under a new key before the crash was noticed) evicts the old record', async (t) => {
  const sim = simNetworkFor(t);
  const { victim, rest } = await network(sim, {});
  const { id: oldId, port } = victim.self;
  // The old process is gone at once, and a new one with another key listens there before
  // anyone noticed: the address answers, but as someone else.
  const address = addr(victim);
  sim.network.kill(address);
  await sim.run(victim.stop());
  sim.nodes.splice(sim.nodes.indexOf(victim), 1);
  sim.network.revive(address);
  const fresh = await sim.add({ ...LAN, port });
  const start = sim.clock.now();
  await joinsInPlaceOf(sim, fresh, oldId, port, rest);
  t.diagnostic(`old record gone and new one in everywhere after ${sim.clock.now() - start} simulated ms`);
  await sim.clock.advance(30_000);
  assert.ok(await sim.fullViews(5_000), `seed ${sim.seed}: full views`);
});
