/**
 * Publishes reach their topic's subscribers only, at scale: N nodes (200; `test:sim:large` runs
 * 1,000, in membership-scale.test.ts) in 20 topics of random sizes, each node in 1 to 3 of them, on the memory transport and
 * a manual clock. With `gossipThreshold: 8`, a topic of up to 8 subscribers gets its publishes in
 * full, a larger one by gossip relay among its subscribers: both modes run in the same network,
 * and the test checks each was used.
 *
 * Checked for every publish: it reaches exactly the subscribers at publish time, once each, with
 * its topic; each sender's messages (two at once per topic and round) arrive in order; and a
 * traffic counter on every node's transport (requests it is sent and answers it gets, catch-up
 * included) finds zero bytes of a topic's messages going to, or so through, a non-subscriber.
 *
 * @module
 */

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { Node } from '../../src/index.js';
import { SimNetwork, testSeed } from './network.js';
import { checkTopicTraffic, publishRounds, subscribeEach, TopicTraffic, topicDraw } from './rooms-traffic.js';

// TSP2P_SIM_NODES overrides the size (test:sim:large runs the same checks on its 1,000 nodes, in
// membership-scale.test.ts).
const N = Number(process.env.TSP2P_SIM_NODES ?? 200);
const TOPICS = 20;

describe('publish reaches the subscribers only (memory transport, manual clock)', () => {
  test(`${N} nodes in ${TOPICS} topics, in full and by gossip among subscribers, 5% changing topics: every publish reaches exactly the subscribers at publish time, once, in order; no byte to or through anyone else`, async (t) => {
    const seed = testSeed();
    t.diagnostic(`seed ${seed} (replay with TSP2P_SEED=${seed})`);
    const sim = new SimNetwork(seed);
    // No node is stopped at the end: a graceful stop of every node sends N² leave messages (40,000
    // at 200 nodes), and the memory transport and the manual clock hold no real handles.
    const wall = performance.now();
    const cpu0 = process.cpuUsage();
    const phases: string[] = [];
    const phase = (name: string) => {
      const cpu = process.cpuUsage(cpu0);
      phases.push(
        `${name} ${((performance.now() - wall) / 1000).toFixed(1)} s (cpu ${((cpu.user + cpu.system) / 1e6).toFixed(1)} s, ` +
          `simulated ${(sim.clock.now() / 1000).toFixed(1)} s)`,
      );
      if (process.env.TSP2P_SIM_PROGRESS !== undefined) process.stderr.write(`${phases.at(-1)}\n`);
    };

    const traffic = new TopicTraffic();
    // Topics with more than 8 subscribers (at 200 nodes; 4% of the nodes with TSP2P_SIM_NODES)
    // spread by gossip relay among them, the others in full.
    const options = {
      gossipThreshold: Math.max(8, Math.round(N * 0.04)),
      fanout: 8,
      requestTimeoutMs: 2_000,
    };
    for (let i = 0; i < N; i++) await traffic.add(sim, options);
    phase('started');

    // Random topic sizes: each node in 1 to 3 topics, drawn with skewed weights. The nodes
    // subscribe before they join: their entries carry their topics into the network (subscribing
    // once joined, which pushes the entry to every member, is what the movers do).
    const draw = topicDraw(sim, TOPICS);
    await subscribeEach(sim.nodes, sim, draw);
    const subscriptions = sim.nodes.reduce((s, n) => s + n.topics().length, 0);
    phase('subscribed');
    // Every node but the first joins at the same instant, through a random node started before
    // it (as in membership-scale.test.ts); joining all through one node costs that node's answers
    // N² member entries.
    await sim.run(
      Promise.all(
        sim.nodes
          .slice(1)
          .map((node, i) => node.connect(sim.nodes[Math.floor(sim.random.next() * (i + 1))]!.self)),
      ),
    );
    phase('joined');
    // Every node holds every other one, with its topics (the subscriptions it knows add up).
    const knowsAll = (n: Node) => {
      const others = n.members();
      return (
        others.length === N - 1 &&
        others.reduce((s, p) => s + (p.topics?.length ?? 0), 0) === subscriptions - n.topics().length
      );
    };
    assert.ok(
      await sim.clock.advanceUntil(() => sim.nodes.every(knowsAll), 300_000, N > 500 ? 1_000 : 250),
      `seed ${seed}: views (with topics) did not converge`,
    );
    phase('views converged');

    const modes = await publishRounds(sim, TOPICS, draw, phase);
    t.diagnostic(`${checkTopicTraffic(modes, traffic, seed)}; wall: ${phases.join(', ')}`);
  });
});
