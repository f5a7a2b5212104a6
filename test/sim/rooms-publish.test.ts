import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { Message, Node } from '../../src/index.js';
import type { OutboundRequest, OutboundResponse, Transport } from '../../src/transport/transport.js';
import { simNetworkFor } from './network.js';

// TSP2P_SIM_NODES overrides the size (test:sim:large runs 1,000).
const N = Number(process.env.TSP2P_SIM_NODES ?? 200);
const TOPICS = 20;

/** A transport that counts, per request, the topics whose messages it carries to a destination. */
function counting(inner: Transport, onRequest: (port: number, body: Uint8Array) => void): Transport {
  return {
    listen: (o) => inner.listen(o),
    close: (o) => inner.close(o),
    request: (r: OutboundRequest): Promise<OutboundResponse> => {
      onRequest(r.port, r.body);
      return inner.request(r);
    },
  };
}

describe('publish reaches the subscribers only (memory transport, manual clock)', () => {
  test(`${N} nodes in ${TOPICS} topics, 5% changing topics: every publish reaches exactly the subscribers at publish time, once; no byte to or through anyone else`, async (t) => {
    const sim = simNetworkFor(t);
    const byPort = new Map<number, Node>();
    let leaked = 0;
    const leaks: string[] = [];
    const topicOf = /"topic":"(t\d+)"/g;
    const onRequest = (port: number, body: Uint8Array) => {
      const dest = byPort.get(port);
      if (dest === undefined) return;
      const text = Buffer.from(body).toString('latin1');
      for (const m of text.matchAll(topicOf)) {
        // Only message entries carry "topic": membership entries list topics as an array.
        if (!dest.topics().includes(m[1]!)) {
          leaked += body.length;
          leaks.push(`${m[1]} to ${port}`);
        }
      }
    };
    // Topics with more than 8 subscribers spread by gossip relay among them (tree mode), the
    // others in full: both are exercised.
    const options = { gossipThreshold: 8, fanout: 12, requestTimeoutMs: 2_000 };
    for (let i = 0; i < N; i++) {
      const node = await sim.add({ ...options, transport: counting(sim.network.transport(), onRequest) });
      byPort.set(node.self.port, node);
    }
    await sim.joinThroughFirst();
    assert.ok(await sim.fullViews(300_000, 100), `seed ${sim.seed}: views did not converge`);

    // Random topic sizes: each node in 1 to 3 topics, drawn with skewed weights.
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
    await sim.run(
      Promise.all(
        sim.nodes.map(async (n) => {
          const k = 1 + Math.floor(sim.random.next() * 3);
          for (let j = 0; j < k; j++) await n.subscribe(draw());
        }),
      ),
      300_000,
    );

    const got = new Map<Node, Message[]>();
    // Live deliveries only: a node that subscribes later gets the topic's recent history by
    // catch-up, marked late (src/node/catch-up.ts); that is not a publish reaching it.
    for (const n of sim.nodes)
      n.on('message', (m) => {
        if (m.late !== true) got.set(n, [...(got.get(n) ?? []), m]);
      });
    const expected = new Map<string, { topic: string; to: Set<Node> }>();
    const round = async (label: string) => {
      for (let i = 0; i < TOPICS; i++) {
        const topic = `t${i}`;
        const subs = sim.nodes.filter((n) => n.topics().includes(topic));
        if (subs.length === 0) continue;
        const sender = sim.nodes[Math.floor(sim.random.next() * N)]!;
        const text = `${label}/${topic}`;
        expected.set(text, { topic, to: new Set(subs.filter((s) => s !== sender)) });
        await sim.run(sender.publish(topic, text), 120_000);
      }
    };
    await round('first');
    // 5% of the nodes change topics: each leaves one and joins another.
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
    await round('second');
    // Relays may still be under way: let the queues drain.
    await sim.clock.advance(30_000);

    for (const [text, { topic, to }] of expected) {
      for (const n of sim.nodes) {
        const copies = (got.get(n) ?? []).filter((m) => m.text === text);
        assert.equal(
          copies.length,
          to.has(n) ? 1 : 0,
          `seed ${sim.seed}: ${text} at ${n.self.port}: ${copies.length}`,
        );
        for (const m of copies) {
          assert.equal(m.topic, topic);
          assert.equal(typeof m.at, 'number');
        }
      }
    }
    assert.equal(
      leaked,
      0,
      `seed ${sim.seed}: bytes of topic messages to non-subscribers: ${leaks.slice(0, 5).join(', ')}`,
    );
  });
});
