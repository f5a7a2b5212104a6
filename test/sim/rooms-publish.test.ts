/**
 * Publishes reach their topic's subscribers only, at scale: N nodes (200; `test:sim:large` runs
 * 1,000) in 20 topics of random sizes, each node in 1 to 3 of them, on the memory transport and
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
import type { Message, Node } from '../../src/index.js';
import type { OutboundRequest, OutboundResponse, Transport } from '../../src/transport/transport.js';
import { SimNetwork, testSeed } from './network.js';

// TSP2P_SIM_NODES overrides the size (test:sim:large runs 1,000).
const N = Number(process.env.TSP2P_SIM_NODES ?? 200);
const TOPICS = 20;

/** `"topic":"`: only a message entry has it (a membership entry lists `"topics":[...]`). */
const TOPIC_KEY = Buffer.from('"topic":"', 'latin1');
const QUOTE = 0x22;

/** The topics of the message entries in `body` (a JSON request or answer), found without parsing. */
function topicsIn(body: Uint8Array): string[] {
  const buf = Buffer.from(body.buffer, body.byteOffset, body.byteLength);
  const found: string[] = [];
  for (let at = buf.indexOf(TOPIC_KEY); at !== -1; at = buf.indexOf(TOPIC_KEY, at + 1)) {
    const start = at + TOPIC_KEY.length;
    const end = buf.indexOf(QUOTE, start);
    found.push(buf.toString('latin1', start, end));
  }
  return found;
}

/**
 * A transport that shows every body its node receives, with the node it is for: the requests
 * sent to another node (by port) and the answers to this node's own requests.
 */
function counting(
  inner: Transport,
  onBody: (to: number | 'self', body: Uint8Array, owner: { port: number }) => void,
  owner: { port: number },
): Transport {
  return {
    listen: (o) => inner.listen(o),
    close: (o) => inner.close(o),
    request: async (r: OutboundRequest): Promise<OutboundResponse> => {
      onBody(r.port, r.body, owner);
      const res = await inner.request(r);
      onBody('self', res.body, owner);
      return res;
    },
  };
}

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

    const byPort = new Map<number, Node>();
    let leaked = 0;
    let topicBytes = 0;
    const leaks: string[] = [];
    const onBody = (to: number | 'self', body: Uint8Array, owner: { port: number }) => {
      const port = to === 'self' ? owner.port : to;
      const dest = byPort.get(port);
      if (dest === undefined) return;
      const topics = topicsIn(body);
      if (topics.length === 0) return;
      topicBytes += body.length;
      const mine = dest.topics();
      for (const topic of topics) {
        if (!mine.includes(topic)) {
          leaked += body.length;
          if (leaks.length < 5) leaks.push(`${topic} to ${port}${to === 'self' ? ' (an answer)' : ''}`);
        }
      }
    };
    // Topics with more than 8 subscribers spread by gossip relay among them, the others in full.
    const options = { gossipThreshold: 8, fanout: 8, requestTimeoutMs: 2_000 };
    for (let i = 0; i < N; i++) {
      const owner = { port: 0 };
      const node = await sim.add({ ...options, transport: counting(sim.network.transport(), onBody, owner) });
      owner.port = node.self.port;
      byPort.set(node.self.port, node);
    }
    phase('started');

    // Random topic sizes: each node in 1 to 3 topics, drawn with skewed weights. The nodes
    // subscribe before they join: their entries carry their topics into the network (subscribing
    // once joined, which pushes the entry to every member, is what the movers below do).
    const weights = Array.from({ length: TOPICS }, () => 0.2 + sim.random.next() * 3);
    const total = weights.reduce((a, b) => a + b, 0);
    const draw = () => {
      let x = sim.random.next() * total;
      for (let i = 0; i < TOPICS; i++) {
        x -= weights[i]!;
        if (x <= 0) return `t${i}`;
      }
      return `t${TOPICS - 1}`;
    };
    for (const n of sim.nodes) {
      const k = 1 + Math.floor(sim.random.next() * 3);
      for (let j = 0; j < k; j++) await n.subscribe(draw());
    }
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

    const got = new Map<Node, Message[]>(sim.nodes.map((n) => [n, []]));
    const expected = new Map<string, { topic: string; to: Set<Node> }>();
    // Deliveries owed and not yet seen: the rounds wait for these instead of a fixed time.
    let owed = 0;
    for (const n of sim.nodes)
      n.on('message', (m) => {
        const list = got.get(n)!;
        if (expected.get(m.text)?.to.has(n) === true && !list.some((x) => x.text === m.text)) owed--;
        list.push(m);
      });
    /** Until every owed delivery has come (relays, catch-up of a held dependency), then 2 s more for any extra copy. */
    const settle = async (what: string) => {
      assert.ok(
        await sim.clock.advanceUntil(() => owed === 0, 60_000, 50),
        `seed ${seed}: ${what}: ${owed} deliveries missing`,
      );
      await sim.clock.advance(2_000);
    };
    const modes = { full: 0, gossip: 0, relayed: 0 };
    // Each round, per topic: a random node (subscriber or not) publishes two messages at once.
    const round = async (label: string) => {
      for (let i = 0; i < TOPICS; i++) {
        const topic = `t${i}`;
        const subs = sim.nodes.filter((n) => n.topics().includes(topic));
        if (subs.length === 0) continue;
        const sender = sim.nodes[Math.floor(sim.random.next() * N)]!;
        const to = new Set(subs.filter((s) => s !== sender));
        const texts = [`${label}/${topic}/1`, `${label}/${topic}/2`];
        for (const text of texts) expected.set(text, { topic, to });
        owed += texts.length * to.size;
        await sim.run(Promise.all(texts.map((text) => sender.publish(topic, text))), 120_000);
      }
      // Relays may still be under way: they finish before anyone changes topics.
      await settle(label);
    };
    await round('first');
    phase('first round');
    // 5% of the nodes change topics: each leaves one and joins another, once in the network
    // (each call resolves once the live members have the new entry).
    const movers = sim.nodes.filter(() => sim.random.next() < 0.05).slice(0, Math.ceil(N * 0.05));
    await sim.run(
      Promise.all(
        movers.map(async (n) => {
          await n.unsubscribe(n.topics()[0]!);
          await n.subscribe(draw());
        }),
      ),
      120_000,
    );
    phase('movers');
    await round('second');
    phase('second round');

    let late = 0;
    for (const [text, { topic, to }] of expected) {
      for (const n of sim.nodes) {
        const copies = got.get(n)!.filter((m) => m.text === text);
        // A node that joined the topic later may get its history by catch-up (late): that is not
        // the publish reaching it, and is allowed only to a node in the topic now.
        const counted = to.has(n) ? copies : copies.filter((m) => m.late !== true);
        assert.equal(
          counted.length,
          to.has(n) ? 1 : 0,
          `seed ${seed}: ${text} at ${n.self.port}: ${copies.length}`,
        );
        for (const m of copies) {
          assert.equal(m.topic, topic);
          assert.equal(typeof m.at, 'number');
          if (m.late === true)
            assert.ok(n.topics().includes(topic), `seed ${seed}: late ${text} outside ${topic}`);
          if (!to.has(n)) continue;
          if (m.late === true) late++;
          if (m.hops === undefined) modes.full++;
          else modes.gossip++;
          if ((m.hops ?? 0) > 0) modes.relayed++;
        }
      }
    }
    // Per-sender FIFO: each sender's two messages to a topic arrive in the order sent.
    for (const n of sim.nodes) {
      const texts = got.get(n)!.map((m) => m.text);
      for (const [text] of expected) {
        if (!text.endsWith('/2')) continue;
        const second = texts.indexOf(text);
        if (second === -1) continue;
        assert.ok(
          texts.indexOf(`${text.slice(0, -1)}1`) < second,
          `seed ${seed}: ${text} before /1 at ${n.self.port}`,
        );
      }
    }
    phase('checked');
    t.diagnostic(
      `deliveries: ${modes.full} in full, ${modes.gossip} by gossip (${modes.relayed} relayed), ${late} late; ` +
        `topic message bytes counted: ${topicBytes}; wall: ${phases.join(', ')}`,
    );
    assert.ok(
      modes.full > 0 && modes.relayed > 0,
      `seed ${seed}: both modes used (${JSON.stringify(modes)})`,
    );
    assert.ok(topicBytes > 0, 'the counter saw the topic messages');
    assert.equal(leaked, 0, `seed ${seed}: bytes of topic messages to non-subscribers: ${leaks.join(', ')}`);
  });
});
