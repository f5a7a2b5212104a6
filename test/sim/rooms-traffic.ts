/**
 * Publishes to rooms in a simulated network, checked: every publish reaches exactly the
 * subscribers at publish time, once each, with its topic; each sender's messages arrive in
 * order; and a traffic counter on every node's transport (requests it is sent and answers it
 * gets, catch-up included) finds zero bytes of a topic's messages going to, or so through, a
 * non-subscriber. `rooms-publish.test.ts` runs it on its own network (200 nodes);
 * `membership-scale.test.ts` on its 1,000 nodes in `test:sim:large`.
 *
 * @module
 */

import assert from 'node:assert/strict';
import type { Message, Node, NodeOptions } from '../../src/index.js';
import type { OutboundRequest, OutboundResponse, Transport } from '../../src/transport/transport.js';
import type { SimNetwork } from './network.js';

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
 * Counts, on every node's transport, the bytes of topic messages each node receives: the
 * requests sent to it and the answers to its own requests. Bytes of a topic that the receiving
 * node is not in are leaks.
 */
export class TopicTraffic {
  readonly #byPort = new Map<number, Node>();
  leaked = 0;
  topicBytes = 0;
  readonly leaks: string[] = [];

  /** Adds a node to `sim` whose transport is counted. */
  async add(sim: SimNetwork, options: NodeOptions = {}): Promise<Node> {
    const owner = { port: 0 };
    const inner = sim.network.transport();
    const onBody = (to: number | 'self', body: Uint8Array) => this.#onBody(to, body, owner.port);
    const transport: Transport = {
      listen: (o) => inner.listen(o),
      close: () => inner.close(),
      request: async (r: OutboundRequest): Promise<OutboundResponse> => {
        onBody(r.port, r.body);
        const res = await inner.request(r);
        onBody('self', res.body);
        return res;
      },
    };
    const node = await sim.add({ ...options, transport });
    owner.port = node.self.port;
    this.#byPort.set(node.self.port, node);
    return node;
  }

  #onBody(to: number | 'self', body: Uint8Array, ownPort: number): void {
    const port = to === 'self' ? ownPort : to;
    const dest = this.#byPort.get(port);
    if (dest === undefined) return;
    const topics = topicsIn(body);
    if (topics.length === 0) return;
    this.topicBytes += body.length;
    const mine = dest.topics();
    for (const topic of topics) {
      if (!mine.includes(topic)) {
        this.leaked += body.length;
        if (this.leaks.length < 5)
          this.leaks.push(`${topic} to ${port}${to === 'self' ? ' (an answer)' : ''}`);
      }
    }
  }
}

/**
 * Random topic sizes: a draw of one of `count` topics (`t0`...), with skewed weights from the
 * network's seeded randomness.
 */
export function topicDraw(sim: SimNetwork, count: number): () => string {
  const weights = Array.from({ length: count }, () => 0.2 + sim.random.next() * 3);
  const total = weights.reduce((a, b) => a + b, 0);
  return () => {
    let x = sim.random.next() * total;
    for (let i = 0; i < count; i++) {
      x -= weights[i]!;
      if (x <= 0) return `t${i}`;
    }
    return `t${count - 1}`;
  };
}

/** Each node subscribes to 1 to 3 topics of `draw` (before it joins: its entry carries them). */
export async function subscribeEach(
  nodes: readonly Node[],
  sim: SimNetwork,
  draw: () => string,
): Promise<void> {
  for (const n of nodes) {
    const k = 1 + Math.floor(sim.random.next() * 3);
    for (let j = 0; j < k; j++) await n.subscribe(draw());
  }
}

/** What {@link publishRounds} saw. */
export interface PublishReport {
  readonly full: number;
  readonly gossip: number;
  readonly relayed: number;
  readonly late: number;
}

/**
 * The checks every run of {@link publishRounds} ends with: both modes were used (some topics in
 * full, some by gossip with relays), the counter saw the topics' messages, and none of their
 * bytes went to or through a non-subscriber. Returns the summary line for a diagnostic.
 */
export function checkTopicTraffic(modes: PublishReport, traffic: TopicTraffic, seed: number): string {
  assert.ok(modes.full > 0 && modes.relayed > 0, `seed ${seed}: both modes used (${JSON.stringify(modes)})`);
  assert.ok(traffic.topicBytes > 0, 'the counter saw the topic messages');
  assert.equal(
    traffic.leaked,
    0,
    `seed ${seed}: bytes of topic messages to non-subscribers: ${traffic.leaks.join(', ')}`,
  );
  return (
    `deliveries: ${modes.full} in full, ${modes.gossip} by gossip (${modes.relayed} relayed), ${modes.late} late; ` +
    `topic message bytes counted: ${traffic.topicBytes}`
  );
}

/**
 * Two rounds of publishes to every topic of `count` (per topic, a random node, subscriber or
 * not, publishes two messages at once), with 5% of the nodes each leaving one topic and joining
 * another between them; then checks every delivery (see the module comment). `phase` marks
 * progress.
 */
export async function publishRounds(
  sim: SimNetwork,
  count: number,
  draw: () => string,
  phase: (name: string) => void = () => {},
): Promise<PublishReport> {
  const seed = sim.seed;
  const nodes = sim.nodes;
  const n = nodes.length;
  const got = new Map<Node, Message[]>(nodes.map((x) => [x, []]));
  const expected = new Map<string, { topic: string; to: Set<Node> }>();
  // Deliveries owed and not yet seen: the rounds wait for these instead of a fixed time.
  let owed = 0;
  const listeners = nodes.map((x) => {
    const on = (m: Message) => {
      const list = got.get(x)!;
      if (expected.get(m.text)?.to.has(x) === true && !list.some((y) => y.text === m.text)) owed--;
      list.push(m);
    };
    x.on('message', on);
    return () => x.off('message', on);
  });
  /** Until every owed delivery has come (relays, catch-up of a held dependency), then 2 s more for any extra copy. */
  const settle = async (what: string) => {
    const done = await sim.clock.advanceUntil(() => owed === 0, 60_000, 50);
    if (!done) {
      const missing: string[] = [];
      for (const [text, { to }] of expected)
        for (const x of to)
          if (!got.get(x)!.some((m) => m.text === text) && missing.length < 5)
            missing.push(`${text} at ${x.self.port} (in ${x.topics().join(',')})`);
      assert.fail(`seed ${seed}: ${what}: ${owed} deliveries missing: ${missing.join('; ')}`);
    }
    await sim.clock.advance(2_000);
  };
  const round = async (label: string) => {
    for (let i = 0; i < count; i++) {
      const topic = `t${i}`;
      const subs = nodes.filter((x) => x.topics().includes(topic));
      if (subs.length === 0) continue;
      const sender = nodes[Math.floor(sim.random.next() * n)]!;
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
  const movers = nodes.filter(() => sim.random.next() < 0.05).slice(0, Math.ceil(n * 0.05));
  await sim.run(
    Promise.all(
      movers.map(async (x) => {
        await x.unsubscribe(x.topics()[0]!);
        await x.subscribe(draw());
      }),
    ),
    120_000,
  );
  phase('movers');
  await round('second');
  phase('second round');
  for (const off of listeners) off();

  const modes = { full: 0, gossip: 0, relayed: 0, late: 0 };
  for (const [text, { topic, to }] of expected) {
    for (const x of nodes) {
      const copies = got.get(x)!.filter((m) => m.text === text);
      // A node that joined the topic later may get its history by catch-up (late): that is not
      // the publish reaching it, and is allowed only to a node in the topic now.
      const counted = to.has(x) ? copies : copies.filter((m) => m.late !== true);
      assert.equal(
        counted.length,
        to.has(x) ? 1 : 0,
        `seed ${seed}: ${text} at ${x.self.port}: ${copies.length}`,
      );
      for (const m of copies) {
        assert.equal(m.topic, topic);
        assert.equal(typeof m.at, 'number');
        // A subscriber at publish time may get it late too (catch-up of a held dependency or of
        // what gossip missed), and may have left the topic since: only for the others does a
        // late copy need the topic now.
        if (m.late === true && !to.has(x))
          assert.ok(
            x.topics().includes(topic),
            `seed ${seed}: late ${text} outside ${topic} at ${x.self.port} ` +
              `(a subscriber at publish time: ${to.has(x)}; copies ${copies.length}; now in ${x.topics().join(',')})`,
          );
        if (!to.has(x)) continue;
        if (m.late === true) modes.late++;
        if (m.hops === undefined) modes.full++;
        else modes.gossip++;
        if ((m.hops ?? 0) > 0) modes.relayed++;
      }
    }
  }
  // Per-sender FIFO: each sender's two messages to a topic arrive in the order sent.
  for (const x of nodes) {
    const texts = got.get(x)!.map((m) => m.text);
    for (const [text] of expected) {
      if (!text.endsWith('/2')) continue;
      const second = texts.indexOf(text);
      if (second === -1) continue;
      assert.ok(
        texts.indexOf(`${text.slice(0, -1)}1`) < second,
        `seed ${seed}: ${text} before /1 at ${x.self.port}`,
      );
    }
  }
  phase('checked');
  return modes;
}
