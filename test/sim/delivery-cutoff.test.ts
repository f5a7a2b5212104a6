/**
 * A member cut off in the middle of a broadcast stream (issue 18: under CPU starvation, batches
 * to live members time out, are retried, and are given up at their delivery deadline; members are
 * suspected, refuted, or declared dead and come back). Whatever happened to it, every member
 * ends up with every message of the stream exactly once: by the live path, or by catch-up (late)
 * for what the sender gave up.
 */

import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Node } from '../../src/index.js';
import { simNetworkFor } from './network.js';

const N = 4;
const MESSAGES = 600;
/** Broadcasts in flight at once, as the `broadcast` benchmark's lanes. */
const WINDOW = 32;

interface Case {
  readonly name: string;
  /** How long the member is cut off, from the stream's first third, in ms. */
  readonly cutMs: number;
  /** What its failure detector makes of it, at the sender. */
  readonly expect: 'refuted' | 'expired' | 'dead';
  /** The nodes' delivery deadline (`deliveryTimeoutMs`; its default is 30 s). */
  readonly deadlineMs?: number;
}

const CASES: readonly Case[] = [
  { name: 'suspected, then refuted', cutMs: 3_500, expect: 'refuted' },
  {
    name: 'never declared dead, but its messages passed their delivery deadline',
    cutMs: 3_500,
    expect: 'expired',
    // Shorter than the cut, which is shorter than a suspicion.
    deadlineMs: 2_000,
  },
  { name: 'declared dead, then back', cutMs: 25_000, expect: 'dead' },
];

for (const c of CASES) {
  test(`a member cut off mid-stream (${c.name}) still gets every message exactly once`, async (t) => {
    const sim = simNetworkFor(t);
    for (let i = 0; i < N; i++) {
      await sim.add({
        preset: 'lan',
        dissemination: 'full',
        ...(c.deadlineMs !== undefined ? { deliveryTimeoutMs: c.deadlineMs } : {}),
      });
    }
    await sim.joinThroughFirst();
    assert.ok(await sim.fullViews(), `seed ${sim.seed}: the network converges`);
    const [sender] = sim.nodes as [Node, ...Node[]];
    const cut = sim.nodes[N - 1]!;
    const cutAddress = `${cut.self.address}:${cut.self.port}`;
    const got = new Map<Node, Map<string, number>>(sim.nodes.map((n) => [n, new Map()]));
    for (const n of sim.nodes) {
      n.on('message', (m) => {
        const seen = got.get(n)!;
        seen.set(m.text, (seen.get(m.text) ?? 0) + 1);
      });
    }
    const events: string[] = [];
    for (const ev of ['member:suspect', 'member:fail', 'member:join'] as const) {
      sender.on(ev, (p) => {
        if (p.id === cut.id) events.push(ev);
      });
    }
    const failures = new Map<string, number>();
    let next = 0;
    const lane = async (): Promise<void> => {
      while (next < MESSAGES) {
        const seq = next++;
        if (seq === Math.floor(MESSAGES / 3)) {
          sim.network.partition([[cutAddress]]);
          sim.clock.setTimeout(() => sim.network.heal(), c.cutMs);
        }
        const report = await sender.broadcast(`m${seq}`);
        for (const f of report.failed) failures.set(f.error.code, (failures.get(f.error.code) ?? 0) + 1);
        // Paced, so that the stream outlasts the cut.
        await new Promise<void>((resolve) => sim.clock.setTimeout(resolve, 20));
      }
    };
    await sim.run(Promise.all(Array.from({ length: WINDOW }, lane)), 120_000);
    const complete = (): boolean => sim.nodes.every((n) => n === sender || got.get(n)!.size === MESSAGES);
    const done = await sim.clock.advanceUntil(complete, 180_000, 100);
    const counts = sim.nodes.slice(1).map((n) => got.get(n)!.size);
    t.diagnostic(
      `sender saw ${events.join(', ') || 'nothing'}; failed deliveries ${JSON.stringify([...failures])}; received ${counts.join(', ')} of ${MESSAGES}`,
    );
    assert.ok(done, `seed ${sim.seed}: every member gets all ${MESSAGES} (${counts.join(', ')})`);
    for (const n of sim.nodes.slice(1)) {
      const twice = [...got.get(n)!].filter(([, k]) => k > 1).map(([m]) => m);
      assert.deepEqual(twice, [], `seed ${sim.seed}: node ${n.self.port} got messages twice`);
    }
    // The case is the one named: what the sender's detector and its reports saw.
    if (c.expect === 'refuted') {
      // Within 3.5 s the sender probes each of its 3 members at least once (a probe a second).
      assert.ok(events.includes('member:suspect'), `seed ${sim.seed}: suspected (${events})`);
      assert.ok(!events.includes('member:fail'), `seed ${sim.seed}: not declared dead (${events})`);
      assert.equal(failures.size, 0, `seed ${sim.seed}: nothing given up`);
    }
    if (c.expect === 'expired') {
      assert.ok(!events.includes('member:fail'), `seed ${sim.seed}: not declared dead (${events})`);
      assert.ok((failures.get('ERR_TIMEOUT') ?? 0) > 0, `seed ${sim.seed}: some deliveries expired`);
    }
    if (c.expect === 'dead') {
      assert.ok(events.includes('member:fail'), `seed ${sim.seed}: declared dead (${events})`);
    }
    // And it is a member again everywhere.
    const back = await sim.clock.advanceUntil(
      () => sim.nodes.every((n) => n.members().length === N - 1),
      120_000,
      100,
    );
    assert.ok(back, `seed ${sim.seed}: the cut-off member is back in every view`);
  });
}
