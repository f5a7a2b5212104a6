/**
 * Catch-up on the memory transport: a member cut off by a partition gets, once it heals, every
 * message of its topics and every plain broadcast sent meanwhile, once each, in each sender's
 * order, marked late, fetched from any member (the sender may be gone); a newcomer gets the last
 * `historyOnJoin` messages of a topic.
 */

import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Message } from '../../src/index.js';
import { simNetworkFor } from './network.js';

test('a partitioned member catches up after the heal, from any member, once each, late', async (t) => {
  const sim = simNetworkFor(t);
  const { seed } = sim;
  const [a, b, c, d] = [await sim.add(), await sim.add(), await sim.add(), await sim.add()];
  await sim.joinThroughFirst();
  assert.ok(await sim.fullViews(), `seed ${seed}`);
  await sim.run(Promise.all([b.subscribe('ops'), c.subscribe('ops'), d.subscribe('ops')]));
  const atD: Message[] = [];
  d.on('message', (m) => atD.push(m));
  await sim.run(a.publish('ops', 'before'));
  assert.ok(await sim.clock.advanceUntil(() => atD.length === 1, 10_000));

  const addr = (x: typeof a) => `${x.self.address}:${x.self.port}`;
  sim.network.partition([[addr(a), addr(b), addr(c)], [addr(d)]]);
  for (let i = 0; i < 30; i++) {
    await sim.run(a.publish('ops', `p${i}`));
    await sim.run(b.broadcast(`b${i}`));
  }
  // The writer of the publishes is gone before the heal: c serves them.
  sim.network.kill(addr(a));
  sim.network.heal();
  const done = await sim.clock.advanceUntil(() => atD.length === 61, 120_000, 100);
  assert.ok(done, `seed ${seed}: d got ${atD.length} of 61`);
  const late = atD.slice(1);
  assert.ok(
    late.every((m) => m.late === true),
    'what was missed comes late',
  );
  assert.deepEqual(
    late.filter((m) => m.topic === 'ops').map((m) => m.text),
    Array.from({ length: 30 }, (_, i) => `p${i}`),
  );
  assert.deepEqual(
    late.filter((m) => m.topic === undefined).map((m) => m.text),
    Array.from({ length: 30 }, (_, i) => `b${i}`),
  );
  assert.equal(new Set(atD.map((m) => m.id)).size, atD.length, 'none twice');
  assert.equal((await d.history({ topic: 'ops', limit: 1000 })).length, 31);
  // More repair rounds change nothing.
  await sim.clock.advance(60_000);
  assert.equal(atD.length, 61);
});

test('a newcomer to a topic gets its last historyOnJoin messages, late; then everything live', async (t) => {
  const sim = simNetworkFor(t);
  const a = await sim.add();
  const b = await sim.add();
  await sim.joinThroughFirst();
  await sim.run(b.subscribe('ops'));
  for (let i = 0; i < 20; i++) await sim.run(a.publish('ops', `m${i}`));
  const c = await sim.add({ historyOnJoin: 5 });
  const atC: Message[] = [];
  c.on('message', (m) => atC.push(m));
  await sim.run(c.connect(a.self));
  await sim.run(c.subscribe('ops'));
  assert.ok(await sim.clock.advanceUntil(() => atC.length === 5, 30_000, 50), `got ${atC.length}`);
  assert.deepEqual(
    atC.map((m) => [m.text, m.late]),
    [15, 16, 17, 18, 19].map((i) => [`m${i}`, true]),
  );
  await sim.run(a.publish('ops', 'live'));
  assert.ok(await sim.clock.advanceUntil(() => atC.length === 6, 10_000));
  assert.equal(atC[5]!.late, false);
  await sim.clock.advance(30_000);
  assert.equal(atC.length, 6, 'the older history is not fetched by repairs');
});
