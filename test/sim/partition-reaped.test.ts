/**
 * A partition longer than the reap of dead members (issue 16, case 3): each half declares the
 * other dead, and forgets it once `deadRetentionMs` has passed. When the network heals, one view
 * must form again by itself, with no `connect()` call: a node keeps the addresses of the members
 * it forgot, and tries them again as it tries dead ones.
 */

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { addr, simNetworkFor } from './network.js';

const N = 10;
/** LAN timings, with dead members forgotten after one minute instead of a day. */
const OPTIONS = { preset: 'lan', timings: { deadRetentionMs: 60_000 } } as const;
/** The stated bound: one view within this long after the heal (simulated). */
const HEAL_WITHIN_MS = 60_000;

test(`partition 50/50 for longer than deadRetentionMs, then heal: one view again within ${HEAL_WITHIN_MS / 1000} s, no connect()`, async (t) => {
  const sim = simNetworkFor(t);
  for (let i = 0; i < N; i++) await sim.add(OPTIONS);
  await sim.joinThroughFirst();
  assert.ok(await sim.fullViews(), `seed ${sim.seed}: the network converges`);
  const a = sim.nodes.slice(0, N / 2);
  const b = sim.nodes.slice(N / 2);
  sim.network.partition([a.map(addr), b.map(addr)]);
  // Each half declares the other dead, and then forgets it.
  const forgotten = await sim.clock.advanceUntil(
    () =>
      a.every((n) => n.memberStates().length === a.length - 1) &&
      b.every((n) => n.memberStates().length === b.length - 1),
    300_000,
    1_000,
  );
  assert.ok(forgotten, `seed ${sim.seed}: the halves did not forget each other`);
  t.diagnostic(`each half forgot the other after ${(sim.clock.now() / 1000).toFixed(0)} simulated s`);
  await sim.clock.advance(30_000);

  sim.network.heal();
  const healedAt = sim.clock.now();
  const one = await sim.fullViews(HEAL_WITHIN_MS, 100);
  assert.ok(
    one,
    `seed ${sim.seed}: views after the heal: ${sim.nodes.map((n) => n.members().length).join(',')}`,
  );
  t.diagnostic(
    `one view again ${((sim.clock.now() - healedAt) / 1000).toFixed(1)} simulated s after the heal`,
  );
  // ...and it holds: every member alive everywhere 30 s later.
  await sim.clock.advance(30_000);
  for (const n of sim.nodes) {
    assert.equal(n.members().length, N - 1);
    assert.ok(n.members().every((p) => n.memberStates().find((m) => m.peer.id === p.id)?.state === 'alive'));
  }
});
