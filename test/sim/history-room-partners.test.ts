/**
 * Catch-up asks the members in a room for the room's history. A member outside a room holds
 * nothing of it, so:
 *
 * - a node back in a network through an entry point outside one of its rooms holds a session
 *   with a member in that room too: what was published there while the room's members did not
 *   know it was back (it had left; its restart had not reached them) is held only by them;
 * - a newcomer to a room takes its `historyOnJoin` window from a member in the room: a first
 *   session with a member outside it does not use the window up, after which a member inside
 *   would have served the room's whole past.
 */

import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import type { Message, Node } from '../../src/index.js';
import { tempDir } from '../helpers/store.js';
import { simNetworkFor } from './network.js';

/** Repair sessions out of the way: only the sessions under test can bring anything. */
const noRepair = { pushPullIntervalMs: 600_000 };

const collect = (node: Node): Message[] => {
  const got: Message[] = [];
  node.on('message', (m) => got.push(m));
  return got;
};

test('a room message published as a member restarts reaches it, though it rejoins through a node outside the room', async (t) => {
  const root = tempDir('tsp2p-room-partners-');
  t.after(() => root.remove());
  const sim = simNetworkFor(t);
  const a = await sim.add({ timings: noRepair });
  const b = await sim.add({ timings: noRepair });
  const dataDir = join(root.dir, 'c');
  let c = await sim.add({ dataDir, identity: undefined, timings: noRepair });
  await sim.joinThroughFirst();
  assert.ok(await sim.fullViews(), `seed ${sim.seed}`);
  await sim.run(Promise.all([a.subscribe('ops'), c.subscribe('ops')]));
  await sim.clock.advance(1000);
  // b restates last, so c's snapshot holds b as the member heard from last: c rejoins through b.
  await sim.run(b.subscribe('misc'));
  await sim.clock.advance(1000);
  await sim.run(c.stop());
  let through = '';
  c = await sim.add({
    dataDir,
    identity: undefined,
    timings: noRepair,
    logger: {
      debug() {},
      warn() {},
      error() {},
      info(message, fields) {
        if (message === 'rejoined') through = String(fields?.through);
      },
    },
  });
  const atC = collect(c);
  // Published at once: a still holds c as gone, so the live path does not bring it.
  await sim.run(a.publish('ops', 'said as c came back'));
  assert.ok(
    await sim.clock.advanceUntil(() => atC.length > 0, 60_000, 50),
    `seed ${sim.seed}: c (rejoined through ${through === b.id ? 'b' : through}) never got it`,
  );
  assert.equal(through, b.id, 'the entry point is outside the room');
  assert.deepEqual(
    atC.map((m) => [m.text, m.topic, m.late]),
    [['said as c came back', 'ops', true]],
  );
  await sim.clock.advance(5000);
  assert.equal(atC.length, 1, 'once');
});

test("a newcomer to a room gets the room's last historyOnJoin messages, not its whole past, when most members are outside it", async (t) => {
  const sim = simNetworkFor(t);
  const a = await sim.add();
  const others = [
    await sim.add({ historyOnJoin: 2 }),
    await sim.add({ historyOnJoin: 2 }),
    await sim.add({ historyOnJoin: 2 }),
    await sim.add({ historyOnJoin: 2 }),
  ];
  await sim.joinThroughFirst();
  assert.ok(await sim.fullViews(), `seed ${sim.seed}`);
  await sim.run(a.subscribe('ops'));
  for (let i = 0; i < 10; i++) await sim.run(a.publish('ops', `p${i}`));
  await sim.clock.advance(2000);
  // One newcomer after another: each one's first session may be with a member outside the room.
  for (const [i, node] of others.entries()) {
    const got = collect(node);
    await sim.run(node.subscribe('ops'));
    await sim.clock.advance(90_000);
    assert.deepEqual(
      got.map((m) => m.text),
      ['p8', 'p9'],
      `seed ${sim.seed}: newcomer ${i + 1} of ${others.length}`,
    );
  }
});
