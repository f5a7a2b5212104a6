import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { Message, Node } from '../../src/index.js';
import type { OutboundRequest, OutboundResponse, Transport } from '../../src/transport/transport.js';
import { simNetworkFor } from './network.js';

/**
 * A transport whose requests to `cut` ports are lost (both ways when both ends use one), and
 * whose catch-up requests (log summary and fetch) to `cutLog` ports too.
 */
function cuttable(inner: Transport) {
  const cut = new Set<number>();
  const cutLog = new Set<number>();
  const transport: Transport = {
    listen: (o) => inner.listen(o),
    close: (o) => inner.close(o),
    request: (r: OutboundRequest): Promise<OutboundResponse> =>
      cut.has(r.port) || (cutLog.has(r.port) && Buffer.from(r.body).includes('"log":'))
        ? new Promise((_, reject) => {
            // Lost: no answer until the caller gives up.
            r.signal?.addEventListener('abort', () => reject(r.signal?.reason), { once: true });
          })
        : inner.request(r),
  };
  return { transport, cut, cutLog };
}

describe('causal order within a topic (memory transport, manual clock)', () => {
  test('the case of issue 15: c, cut off from a but not from b, delivers m1 before m2, fetched from b', async (t) => {
    const sim = simNetworkFor(t);
    // A catch-up session with a member that does not answer waits for requestTimeoutMs: short.
    const options = { requestTimeoutMs: 1_000 };
    const na = cuttable(sim.network.transport());
    const nc = cuttable(sim.network.transport());
    const a = await sim.add({ ...options, transport: na.transport });
    const b = await sim.add(options);
    const c = await sim.add({ ...options, transport: nc.transport });
    await sim.joinThroughFirst();
    assert.ok(await sim.fullViews());
    for (const n of sim.nodes) await sim.run(n.subscribe('room'));
    const got = new Map<Node, Message[]>(sim.nodes.map((n) => [n, []]));
    for (const n of sim.nodes) n.on('message', (m) => got.get(n)?.push(m));

    na.cut.add(c.self.port);
    nc.cut.add(a.self.port);
    void a.publish('room', 'm1');
    assert.ok(await sim.clock.advanceUntil(() => got.get(b)!.some((m) => m.text === 'm1'), 5_000, 5));
    const sent = sim.clock.now();
    void b.publish('room', 'm2');
    assert.ok(await sim.clock.advanceUntil(() => got.get(c)!.length === 2, 10_000, 5));
    assert.deepEqual(
      got.get(c)!.map((m) => [m.text, m.from.id, m.late === true]),
      [
        ['m1', a.id, true],
        ['m2', b.id, false],
      ],
      'm1 (by catch-up, so late), then m2 on time',
    );
    assert.ok(sim.clock.now() - sent < 5_000, 'm2 did not wait for causalWaitMs: m1 was fetched');
    const history = await c.history({ topic: 'room' });
    assert.deepEqual(
      history.map((m) => m.text),
      ['m1', 'm2'],
    );
  });

  test('a dependency no member can give is given up after causalWaitMs: the reply is delivered late', async (t) => {
    const sim = simNetworkFor(t);
    const options = { causalWaitMs: 2_000, requestTimeoutMs: 1_000 };
    const na = cuttable(sim.network.transport());
    const nc = cuttable(sim.network.transport());
    const a = await sim.add({ ...options, transport: na.transport });
    const b = await sim.add(options);
    const c = await sim.add({ ...options, transport: nc.transport });
    await sim.joinThroughFirst();
    assert.ok(await sim.fullViews());
    for (const n of sim.nodes) await sim.run(n.subscribe('room'));
    const got: Message[] = [];
    c.on('message', (m) => got.push(m));
    const gotB: Message[] = [];
    b.on('message', (m) => gotB.push(m));

    na.cut.add(c.self.port);
    nc.cut.add(a.self.port);
    // b answers c's catch-up requests no more: nobody can give c m1.
    nc.cutLog.add(b.self.port);
    void a.publish('room', 'm1');
    assert.ok(await sim.clock.advanceUntil(() => gotB.some((m) => m.text === 'm1'), 5_000, 5));
    const sent = sim.clock.now();
    void b.publish('room', 'm2');
    assert.ok(await sim.clock.advanceUntil(() => got.length === 1, 10_000, 5));
    assert.ok(sim.clock.now() - sent >= 2_000, 'it waited causalWaitMs');
    assert.deepEqual(
      got.map((m) => [m.text, m.late]),
      [['m2', true]],
    );
  });
});
