/**
 * Leave under load (issue 16, case 6): a member leaves while 1,000 messages a second flow (half
 * of them its own, so its queues to every member are full when its leave notice goes out).
 * Every member must record "left", never "failed", and the leave must finish within
 * `leaveTimeoutMs`.
 */

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { simNetworkFor } from './network.js';

const N = 6;
const RATE = 1_000; // messages a second, all senders together
const LEAVE_TIMEOUT_MS = 3_000;

test(`a member that leaves while ${RATE} msg/s flow is recorded as left by every member, never failed`, async (t) => {
  const sim = simNetworkFor(t);
  for (let i = 0; i < N; i++) await sim.add({ preset: 'lan', leaveTimeoutMs: LEAVE_TIMEOUT_MS });
  await sim.joinThroughFirst();
  assert.ok(await sim.fullViews(), `seed ${sim.seed}: the network converges`);
  const leaver = sim.nodes[N - 1]!;
  const other = sim.nodes[0]!;
  const rest = sim.nodes.slice(0, N - 1);
  const events: string[] = [];
  for (const node of rest) {
    for (const event of ['member:fail', 'member:leave', 'member:suspect'] as const) {
      node.on(event, (p) => {
        if (p.id === leaver.id) events.push(`${node.self.port} ${event}`);
      });
    }
  }
  let received = 0;
  for (const node of rest) node.on('message', () => received++);

  // Two senders (the leaver and another member), one message each every 2 ms: 1,000 msg/s.
  const sends: Promise<unknown>[] = [];
  const tick = (2 * 1000) / RATE;
  let sent = 0;
  let leaving: Promise<void> | undefined;
  let leftAt = 0;
  let leaveTook = -1;
  const startedAt = sim.clock.now();
  for (let ms = 0; ms < 2_000; ms += tick) {
    if (ms >= 1_000 && leaving === undefined) {
      leftAt = sim.clock.now();
      leaving = leaver.disconnect().then(() => {
        leaveTook = sim.clock.now() - leftAt;
      });
    }
    if (leaving === undefined) {
      sends.push(leaver.broadcast(`l${ms}`).catch(() => undefined));
      sent++;
    }
    sends.push(other.broadcast(`o${ms}`).catch(() => undefined));
    sent++;
    await sim.clock.advance(tick);
  }
  await sim.run(leaving!);
  t.diagnostic(
    `${sent} messages sent in ${(sim.clock.now() - startedAt) / 1000} simulated s; the leave took ${leaveTook} simulated ms`,
  );
  assert.ok(leaveTook <= LEAVE_TIMEOUT_MS + tick, `the leave took ${leaveTook} ms`);
  await sim.run(Promise.all(sends));
  await sim.clock.advance(30_000);

  assert.deepEqual(
    events.filter((e) => !e.endsWith('member:leave')),
    [],
    `seed ${sim.seed}: suspected or failed: ${events.join(', ')}`,
  );
  assert.deepEqual(events.sort(), rest.map((x) => `${x.self.port} member:leave`).sort());
  for (const node of rest) {
    assert.equal(node.memberStates().find((m) => m.peer.id === leaver.id)?.state, 'left');
    assert.equal(node.members().length, N - 2);
  }
  t.diagnostic(`${received} deliveries at the ${N - 1} members who stayed`);
});
