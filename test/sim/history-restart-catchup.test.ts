/**
 * A node restarted from its dataDir is not a newcomer, even to a channel it never held a
 * message of: it catches up everything of its channels sent while it was away (within
 * retention), not only the last `historyOnJoin`. A node on a fresh dataDir is a newcomer.
 */

import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import type { Message, Node } from '../../src/index.js';
import { tempDir } from '../helpers/store.js';
import { simNetworkFor } from './network.js';

test('a node restarted from its dataDir gets everything it missed, though it had held nothing of those channels', async (t) => {
  const root = tempDir('tsp2p-restart-catchup-');
  t.after(() => root.remove());
  const sim = simNetworkFor(t);
  const a = await sim.add();
  const b = await sim.add();
  const dataDir = join(root.dir, 'c');
  let c = await sim.add({ dataDir, identity: undefined, historyOnJoin: 2 });
  await sim.joinThroughFirst();
  assert.ok(await sim.fullViews(), `seed ${sim.seed}`);
  await sim.run(Promise.all([b.subscribe('ops'), c.subscribe('ops')]));
  // c stops having held nothing of 'ops' nor of plain broadcasts.
  await sim.run(c.stop());
  for (let i = 0; i < 6; i++) {
    await sim.run(a.publish('ops', `p${i}`));
    await sim.run(a.broadcast(`b${i}`));
  }
  const collect = (node: Node): Message[] => {
    const got: Message[] = [];
    node.on('message', (m) => got.push(m));
    return got;
  };
  // The same dataDir, a new node object: it rejoins by itself and catches up.
  c = await sim.add({ dataDir, identity: undefined, historyOnJoin: 2 });
  const atC = collect(c);
  assert.deepEqual(c.topics(), ['ops']);
  assert.ok(
    await sim.clock.advanceUntil(() => atC.length >= 12, 60_000, 50),
    `seed ${sim.seed}: c got ${JSON.stringify(atC.map((m) => m.text))}`,
  );
  assert.deepEqual(
    atC.filter((m) => m.topic === 'ops').map((m) => m.text),
    ['p0', 'p1', 'p2', 'p3', 'p4', 'p5'],
  );
  assert.deepEqual(
    atC.filter((m) => m.topic === undefined).map((m) => m.text),
    ['b0', 'b1', 'b2', 'b3', 'b4', 'b5'],
  );
  assert.ok(
    atC.every((m) => m.late === true),
    'late',
  );

  // A node on a fresh dataDir is a newcomer: the last historyOnJoin of each.
  const d = await sim.add({ dataDir: join(root.dir, 'd'), identity: undefined, historyOnJoin: 2 });
  const atD = collect(d);
  await sim.run(d.connect(a.self));
  await sim.run(d.subscribe('ops'));
  await sim.clock.advance(60_000);
  assert.deepEqual(atD.map((m) => m.text).sort(), ['b4', 'b5', 'p4', 'p5'], `seed ${sim.seed}`);
  assert.equal(atC.length, 12, 'nothing more, nothing twice');
});
