import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { Message, Node } from '../../src/index.js';
import type { OutboundRequest, OutboundResponse, Transport } from '../../src/transport/transport.js';
import { type SimNetwork, simNetworkFor } from './network.js';

/**
 * A transport whose requests carrying a publish to `blockedPort` wait while the gate is shut
 * (membership traffic passes): the link from one node to another is cut for publishes only.
 */
function gated(inner: Transport) {
  let blockedPort = -1;
  let open: () => void = () => {};
  let opened = Promise.resolve();
  const transport: Transport = {
    listen: (o) => inner.listen(o),
    close: (o) => inner.close(o),
    request: async (r: OutboundRequest): Promise<OutboundResponse> => {
      if (r.port === blockedPort && Buffer.from(r.body).includes('"topic":')) await opened;
      return inner.request(r);
    },
  };
  return {
    transport,
    shut(port: number): void {
      blockedPort = port;
      opened = new Promise((resolve) => {
        open = resolve;
      });
    },
    open(): void {
      blockedPort = -1;
      open();
    },
  };
}

/** Three subscribed nodes a, b, c, a's publishes to c held at a gate; what each delivers. */
async function threeInARoom(sim: SimNetwork, causalWaitMs = 5_000) {
  const gate = gated(sim.network.transport());
  const a = await sim.add({ transport: gate.transport, causalWaitMs });
  const b = await sim.add({ causalWaitMs });
  const c = await sim.add({ causalWaitMs });
  await sim.joinThroughFirst();
  assert.ok(await sim.fullViews());
  for (const n of sim.nodes) await sim.run(n.subscribe('room'));
  const got = new Map<Node, Message[]>(sim.nodes.map((n) => [n, []]));
  for (const n of sim.nodes) n.on('message', (m) => got.get(n)?.push(m));
  return { gate, a, b, c, got };
}

describe('causal order within a topic (memory transport, manual clock)', () => {
  test('a reply that overtakes what it answers waits for it: c delivers m1, then m2', async (t) => {
    const sim = simNetworkFor(t);
    const { gate, a, b, c, got } = await threeInARoom(sim);
    gate.shut(c.self.port);
    void a.publish('room', 'm1');
    assert.ok(await sim.clock.advanceUntil(() => got.get(b)!.some((m) => m.text === 'm1'), 5_000, 5));
    void b.publish('room', 'm2');
    assert.ok(await sim.clock.advanceUntil(() => got.get(a)!.some((m) => m.text === 'm2'), 5_000, 5));
    // m2 reached c long ago; it waits there for m1.
    await sim.clock.advance(1_000);
    assert.deepEqual(got.get(c), [], 'c delivers nothing before m1');
    gate.open();
    assert.ok(await sim.clock.advanceUntil(() => got.get(c)!.length === 2, 5_000, 5));
    assert.deepEqual(
      got.get(c)!.map((m) => [m.text, m.late === true]),
      [
        ['m1', false],
        ['m2', false],
      ],
    );
  });

  test('a dependency that never comes is given up after causalWaitMs: the reply is delivered late', async (t) => {
    const sim = simNetworkFor(t);
    const { gate, a, b, c, got } = await threeInARoom(sim, 2_000);
    gate.shut(c.self.port);
    void a.publish('room', 'm1');
    assert.ok(await sim.clock.advanceUntil(() => got.get(b)!.some((m) => m.text === 'm1'), 5_000, 5));
    const sent = sim.clock.now();
    void b.publish('room', 'm2');
    assert.ok(await sim.clock.advanceUntil(() => got.get(c)!.length === 1, 10_000, 5));
    assert.ok(sim.clock.now() - sent >= 2_000, 'it waited causalWaitMs');
    assert.deepEqual(
      got.get(c)!.map((m) => [m.text, m.late]),
      [['m2', true]],
    );
    gate.open();
    assert.ok(await sim.clock.advanceUntil(() => got.get(c)!.length === 2, 60_000, 10));
    assert.equal(got.get(c)![1]?.text, 'm1', 'the given-up message still comes, once');
  });
});
