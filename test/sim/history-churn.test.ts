/**
 * History under churn: 12 nodes by default, 50 with `TSP2P_SIM_NODES=50` (about 10 minutes
 * on a loaded 2-core machine; each node has a `dataDir`) publish in 5 topics and broadcast while
 * nodes crash and restart from their `dataDir` and a group is cut off by a partition. After the
 * heal, every node holds exactly the messages of its topics and every plain broadcast, each
 * sender's in its order, none twice, and delivered each at most once across its restarts.
 */

import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import type { Node } from '../../src/index.js';
import { tempDir } from '../helpers/store.js';
import { simNetworkFor } from './network.js';

const N = Number(process.env.TSP2P_SIM_NODES ?? 12);
const TOPICS = ['t0', 't1', 't2', 't3', 't4'];

test(`${N} nodes, 5 topics, crashes, restarts and a partition: every node ends with exactly its history`, async (t) => {
  const root = tempDir('tsp2p-churn-');
  t.after(() => root.remove());
  const sim = simNetworkFor(t);
  const { seed, random } = sim;
  const opts = (i: number, port = 0) => ({
    dataDir: join(root.dir, `n${i}`),
    identity: undefined,
    leaveTimeoutMs: 1,
    port,
  });
  const nodes: Node[] = [];
  for (let i = 0; i < N; i++) nodes.push(await sim.add(opts(i)));
  await sim.joinThroughFirst();
  assert.ok(await sim.fullViews(120_000, 100), `seed ${seed}: the network converges`);
  const topicsOf = nodes.map(() => TOPICS.filter(() => random.next() < 0.35));
  await sim.run(Promise.all(nodes.flatMap((x, i) => topicsOf[i]!.map((tp) => x.subscribe(tp)))));

  // What each node delivered, by node index, across restarts: ids once each.
  const delivered = nodes.map(() => new Map<string, number>());
  const listen = (i: number): void => {
    nodes[i]!.on('message', (m) => delivered[i]!.set(m.id, (delivered[i]!.get(m.id) ?? 0) + 1));
  };
  for (let i = 0; i < N; i++) listen(i);
  /** Every message sent: its channel ('b' or a topic), its sender's index, its id, in order. */
  const sent: { channel: string; from: number; id: string }[] = [];
  const down = new Set<number>();
  const ports = nodes.map((x) => x.self.port);
  const addr = (i: number): string => `10.0.0.1:${ports[i]}`;

  const publishSome = async (k: number): Promise<void> => {
    for (let j = 0; j < k; j++) {
      const i = Math.floor(random.next() * N);
      const x = nodes[i]!;
      if (down.has(i) || !x.isConnected) continue;
      const own = topicsOf[i]!;
      if (own.length > 0 && random.next() < 0.7) {
        const tp = own[Math.floor(random.next() * own.length)]!;
        const r = await sim.run(x.publish(tp, `${tp} from ${i}`));
        sent.push({ channel: tp, from: i, id: r.id });
      } else {
        const r = await sim.run(x.broadcast(`b from ${i}`));
        sent.push({ channel: 'b', from: i, id: r.id });
      }
    }
  };

  const crash = async (i: number): Promise<void> => {
    down.add(i);
    sim.network.kill(addr(i));
    await sim.run(nodes[i]!.stop());
  };
  const restart = async (i: number): Promise<void> => {
    sim.network.revive(addr(i));
    nodes[i] = await sim.add(opts(i, ports[i]!));
    listen(i);
    down.delete(i);
  };

  await publishSome(40);
  // Three crashes, while the others go on.
  const crashed = [3, 17, 31].filter((i) => i < N);
  for (const i of crashed) await crash(i);
  await publishSome(40);
  await sim.clock.advance(5_000);
  // A partition of ten nodes, longer than the delivery deadline.
  const cut = Array.from({ length: 10 }, (_, k) => 5 + 4 * k).filter((i) => i < N && !down.has(i));
  const rest = nodes.map((_, i) => i).filter((i) => !cut.includes(i));
  sim.network.partition([cut.map(addr), rest.map(addr)]);
  await publishSome(60);
  await sim.clock.advance(40_000);
  // The crashed nodes come back from their dataDir (no connect() call) during the partition.
  for (const i of crashed) await restart(i);
  await publishSome(40);
  sim.network.heal();
  await publishSome(20);

  const expected = (i: number): string[] =>
    sent.filter((m) => m.channel === 'b' || topicsOf[i]!.includes(m.channel)).map((m) => m.id);
  const holds = async (i: number): Promise<string[]> => {
    const x = nodes[i]!;
    const all = [
      ...(await x.history({ limit: 10_000 })),
      ...(await Promise.all(topicsOf[i]!.map((tp) => x.history({ topic: tp, limit: 10_000 })))).flat(),
    ];
    return all.map((m) => m.id);
  };
  let missing = -1;
  const converged = await sim.clock.advanceUntil(
    () => {
      missing = nodes.reduce((n, _, i) => {
        const want = new Set(expected(i));
        return (
          n +
          [...want].filter((id) => !delivered[i]!.has(id) && sent.find((m) => m.id === id)?.from !== i).length
        );
      }, 0);
      return missing === 0;
    },
    240_000,
    500,
  );
  assert.ok(converged, `seed ${seed}: ${missing} deliveries missing after the heal`);
  for (let i = 0; i < N; i++) {
    const want = expected(i);
    const held = await holds(i);
    assert.deepEqual([...held].sort(), [...want].sort(), `seed ${seed}: node ${i} holds exactly its history`);
    // Each sender's messages in the order it sent them (history is in its timestamps' order).
    for (let from = 0; from < N; from++) {
      for (const ch of ['b', ...topicsOf[i]!]) {
        const order = sent.filter((m) => m.from === from && m.channel === ch).map((m) => m.id);
        const seen = held.filter((id) => order.includes(id));
        assert.deepEqual(seen, order, `seed ${seed}: node ${i}, sender ${from}, ${ch} in order`);
      }
    }
    for (const [id, n] of delivered[i]!) assert.equal(n, 1, `seed ${seed}: node ${i} got ${id} ${n} times`);
  }
  t.diagnostic(`${sent.length} messages; ${N} nodes hold exactly their history`);
});
