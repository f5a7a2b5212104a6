/**
 * Issue 16, case 12: a leave (`/exit`, `stop()`) right after a peer crashed finishes within
 * `leaveTimeoutMs`, whatever the state of the members: the crashed one still listed and its
 * queue full, whether its host refuses connections or does not answer at all.
 */

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { simNetworkFor } from './network.js';

const LEAVE_MS = 2_000;

for (const how of ['refuses connections', 'does not answer'] as const) {
  test(`stop() right after a peer crashed (its host ${how}) takes at most leaveTimeoutMs`, async (t) => {
    const sim = simNetworkFor(t);
    for (let i = 0; i < 4; i++) await sim.add({ preset: 'lan', leaveTimeoutMs: LEAVE_MS });
    await sim.joinThroughFirst();
    assert.ok(await sim.fullViews(), `seed ${sim.seed}: the network converges`);
    const [a, b, c, crashed] = sim.nodes as [
      (typeof sim.nodes)[0],
      (typeof sim.nodes)[0],
      (typeof sim.nodes)[0],
      (typeof sim.nodes)[0],
    ];
    const address = `${crashed.self.address}:${crashed.self.port}`;
    if (how === 'refuses connections') sim.network.kill(address);
    else sim.network.partition([[address], [a, b, c].map((x) => `${x.self.address}:${x.self.port}`)]);
    // Messages queued for the crashed member, which will never drain.
    for (let i = 0; i < 20; i++) void a.broadcast(`m${i}`).catch(() => undefined);
    const id = a.self.id;
    const seen: string[] = [];
    for (const x of [b, c]) {
      x.on('member:leave', (p) => p.id === id && seen.push('leave'));
      x.on('member:fail', (p) => p.id === id && seen.push('fail'));
    }
    const t0 = sim.clock.now();
    await sim.run(a.stop(), 60_000);
    const took = sim.clock.now() - t0;
    t.diagnostic(`stop() took ${took} simulated ms (leaveTimeoutMs ${LEAVE_MS})`);
    assert.ok(took <= LEAVE_MS + 10, `seed ${sim.seed}: stop() took ${took} ms`);
    // The others recorded a leave, not a failure.
    assert.ok(await sim.clock.advanceUntil(() => seen.length === 2, 30_000, 50), `seed ${sim.seed}`);
    assert.deepEqual(seen, ['leave', 'leave'], `seed ${sim.seed}`);
    sim.network.heal();
    sim.nodes.splice(sim.nodes.indexOf(a), 1);
  });
}
