import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Node, Peer } from '../../src/index.js';
import { addr, SimNetwork, testSeed, view } from './network.js';
import { checkTopicTraffic, publishRounds, subscribeEach, TopicTraffic, topicDraw } from './rooms-traffic.js';

// npm test runs 200 nodes; `npm run test:sim:large` runs the same scenarios with 1,000. The 50/50
// partition has a file and a simulation of its own: membership-partition.test.ts.
const SIZE = Number(process.env.TSP2P_SIM_NODES ?? 200);
const TOPICS = 20;

/** The ids a node holds in a given state. */
function idsIn(n: Node, state: string): Set<string> {
  return new Set(
    n
      .memberStates()
      .filter((m) => m.state === state)
      .map((m) => m.peer.id),
  );
}

describe(`${SIZE} simulated nodes (memory transport, manual clock, LAN timings)`, () => {
  const seed = testSeed();
  const sim = new SimNetwork(seed);
  const fails = new Map<string, Map<string, number>>(); // observer id -> failed id -> count
  const leaves = new Map<string, number>();
  // Every node is in 1 to 3 of 20 rooms, and its transport counts the bytes of room messages it
  // receives (see rooms-traffic.ts). A topic of more than 6% of the nodes (60 at 1,000: the
  // smallest topics have a few dozen) spreads by gossip among its subscribers, a smaller one in
  // full. Broadcasts are not affected: Plumtree above that many members, as above the default
  // threshold (128), with a view of 8 members at 1,000 nodes either way.
  const traffic = new TopicTraffic();
  const draw = topicDraw(sim, TOPICS);
  const roomOptions = {
    gossipThreshold: Math.max(8, Math.round(SIZE * 0.06)),
    fanout: 8,
  };

  before(async () => {
    for (let i = 0; i < SIZE; i++) {
      const node = await traffic.add(sim, roomOptions);
      const observed = new Map<string, number>();
      fails.set(node.id, observed);
      node.on('member:fail', (p: Peer) => observed.set(p.id, (observed.get(p.id) ?? 0) + 1));
      node.on('member:leave', () => leaves.set(node.id, (leaves.get(node.id) ?? 0) + 1));
    }
    // Before joining: the entries carry the topics into the network.
    await subscribeEach(sim.nodes, sim, draw);
  });
  // A graceful stop of every node sends n² leave messages: at 1,000 nodes, let the process end
  // instead (the memory transport and the manual clock hold no real handles).
  after(() => (SIZE > 500 ? undefined : sim.stopAll()));

  test('nodes joining at once through random entry points converge to complete, identical views', async (t) => {
    t.diagnostic(`seed ${seed} (replay with TSP2P_SEED=${seed})`);
    // Every node but the first joins at the same instant, through a random node started before it.
    const joins = sim.nodes
      .slice(1)
      .map((node, i) => node.connect(sim.nodes[Math.floor(sim.random.next() * (i + 1))]!.self));
    const reports = await sim.run(Promise.all(joins));
    assert.ok(reports.every((r) => r.failed.length === 0));
    const start = sim.clock.now();
    const converged = await sim.fullViews(120_000, 250);
    assert.ok(converged, `seed ${seed}: no full views after 120 simulated seconds`);
    t.diagnostic(`converged after ${((sim.clock.now() - start) / 1000).toFixed(1)} simulated s`);
    const views = new Set(sim.nodes.map(view));
    assert.equal(views.size, 1, 'every node holds the same view');
    for (const f of fails.values()) assert.equal(f.size, 0, 'no failure while joining');
  });

  test('kill 5%: every survivor declares exactly those dead, once each', async (t) => {
    t.diagnostic(`seed ${seed}`);
    const victims = new Set<Node>();
    while (victims.size < Math.ceil(SIZE * 0.05))
      victims.add(sim.nodes[Math.floor(sim.random.next() * SIZE)]!);
    for (const v of victims) sim.network.kill(addr(v));
    const victimIds = new Set([...victims].map((v) => v.id));
    const survivors = sim.nodes.filter((n) => !victims.has(n));
    const start = sim.clock.now();
    const detected = await sim.clock.advanceUntil(
      () => survivors.every((n) => idsIn(n, 'dead').size === victimIds.size),
      600_000,
      1_000,
    );
    assert.ok(detected, `seed ${seed}: not every victim was declared dead everywhere`);
    t.diagnostic(`all declared dead after ${((sim.clock.now() - start) / 1000).toFixed(1)} simulated s`);
    for (const n of survivors) {
      assert.deepEqual(idsIn(n, 'dead'), victimIds, `node ${addr(n)} declared exactly the victims dead`);
      assert.equal(n.members().length, survivors.length - 1);
      const observed = fails.get(n.id)!;
      assert.deepEqual(new Set(observed.keys()), victimIds);
      for (const count of observed.values()) assert.equal(count, 1, 'member:fail fires once per victim');
    }
    assert.equal(leaves.size, 0, 'a failure is never reported as a leave');
    // The victims are gone for good: stop their timers (what they send is lost anyway).
    await sim.run(Promise.all([...victims].map((v) => v.stop())));
    sim.nodes.splice(0, sim.nodes.length, ...survivors);
  });

  test('a broadcast gossiped from one node reaches every node, within log2(n) + 3 hops', async (t) => {
    t.diagnostic(`seed ${seed}`);
    const got = new Map<string, number[]>();
    const listeners = sim.nodes.map((n) => {
      const on = (m: { text: string; hops?: number }): void => {
        if (m.text.startsWith('gossip-')) got.set(n.id, [...(got.get(n.id) ?? []), m.hops ?? 0]);
      };
      n.on('message', on);
      return () => n.off('message', on);
    });
    const before = sim.network.stats.requests;
    const n = sim.nodes.length; // the survivors of the kill
    const sender = sim.nodes[Math.floor(sim.random.next() * n)]!;
    const report = await sim.run(sender.broadcast('gossip-1'));
    const reached = await sim.clock.advanceUntil(() => got.size === n - 1, 30_000, 10);
    for (const off of listeners) off();
    assert.ok(reached, `seed ${seed}: ${got.size} of ${n - 1} nodes got the broadcast`);
    assert.ok(report.delivered.length < n - 1, 'the sender itself reached only its fanout');
    const hops = [...got.values()].map((h) => h[0]!);
    const maxHops = Math.max(...hops);
    assert.ok(maxHops <= Math.ceil(Math.log2(n)) + 3, `max hops ${maxHops}`);
    for (const h of got.values()) assert.equal(h.length, 1, 'each node delivers the message once');
    t.diagnostic(
      `fanout ${report.delivered.length}, max hops ${maxHops}, ${(sim.network.stats.requests - before) / n} requests per node (all traffic)`,
    );
  });

  test('publishes reach exactly the subscribers at publish time, once each, and no byte goes to anyone else', async (t) => {
    t.diagnostic(`seed ${seed}`);
    if (SIZE <= 500) {
      t.skip('npm test runs this with 200 nodes in rooms-publish.test.ts');
      return;
    }
    const wall = performance.now();
    const cpu0 = process.cpuUsage();
    const modes = await publishRounds(sim, TOPICS, draw);
    const cpu = process.cpuUsage(cpu0);
    t.diagnostic(
      `${checkTopicTraffic(modes, traffic, seed)}; ${((performance.now() - wall) / 1000).toFixed(1)} s ` +
        `(cpu ${((cpu.user + cpu.system) / 1e6).toFixed(1)} s)`,
    );
  });
});
