import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { getHeapStatistics } from 'node:v8';
import { type Node, simulation } from '../../src/node.js';
import { SimNetwork, testSeed } from './network.js';

// npm test runs 200 nodes; `npm run test:sim:large` runs 1,000, at the same time as
// membership-scale.test.ts (one file per core).
const SIZE = Number(process.env.TSP2P_SIM_NODES ?? 200);
/**
 * Dead members are forgotten after two minutes instead of a day, so that the partition outlasts
 * the reap (issue 16, case 3).
 */
const DEAD_RETENTION_MS = 120_000;
/** The stated bound: one view again within this long after the partition heals (simulated). */
const HEAL_WITHIN_MS = 120_000;

function addr(n: Node): string {
  return `${n.self.address}:${n.self.port}`;
}

/** Each node's live view as a sorted list of ids, itself included. */
function view(n: Node): string {
  return [n.id, ...n.members().map((p) => p.id)].sort().join(',');
}

/** Seconds of CPU (user + system) since `from`. */
function cpuSince(from: NodeJS.CpuUsage): string {
  const cpu = process.cpuUsage(from);
  return ((cpu.user + cpu.system) / 1e6).toFixed(1);
}

const seed = testSeed();
const sim = new SimNetwork(seed);
// A graceful stop of every node sends n² leave messages: at 1,000 nodes, let the process end
// instead (the memory transport and the manual clock hold no real handles).
after(() => (SIZE > 500 ? undefined : sim.stopAll()));

// The nodes start from the converged view (`simulation.seedView`: every node is given every
// node's signed entry, checked as gossip would bring it) rather than joining: the joins are
// membership-scale.test.ts's subject, and at 1,000 nodes they would cost minutes of CPU here
// too. Each half then suspects, declares dead and forgets every node of the other, and takes
// each one back after the heal: O(n²) updates, each gossiped 3 × ⌈log10(n + 1)⌉ times. At 1,000
// nodes this is the longest test of `test:sim:large` (see BENCHMARKS.md, `sim-membership`,
// session 13).
test(`${SIZE} simulated nodes from a converged view: partition 50/50 for longer than the reap of dead members, then heal: one view again within ${HEAL_WITHIN_MS / 1000} s, no connect()`, async (t) => {
  t.diagnostic(`seed ${seed} (replay with TSP2P_SEED=${seed})`);
  let heapPeak = 0;
  const sampleHeap = (): void => {
    const used = getHeapStatistics().used_heap_size;
    if (used > heapPeak) heapPeak = used;
  };
  for (let i = 0; i < SIZE; i++) await sim.add({ timings: { deadRetentionMs: DEAD_RETENTION_MS } });
  const entries = sim.nodes.map((n) => simulation.selfUpdate(n));
  for (let i = 0; i < SIZE; i++) {
    assert.equal(simulation.seedView(sim.nodes[i]!, entries), SIZE - 1);
    // The member events are emitted on the next ticks: let them out before they pile up.
    if (i % 50 === 49) await new Promise((r) => setImmediate(r));
  }
  // A few probe periods at rest: nothing changes in a converged view.
  await sim.clock.advance(5_000);
  assert.ok(
    sim.nodes.every((n) => n.members().length === SIZE - 1),
    'full views at rest',
  );

  const nodes = [...sim.nodes];
  const half = Math.floor(nodes.length / 2);
  const a = nodes.slice(0, half);
  const b = nodes.slice(half);
  let wall = performance.now();
  let cpu0 = process.cpuUsage();
  sim.network.partition([a.map(addr), b.map(addr)]);
  const start = sim.clock.now();
  // Each side declares the other dead, and then forgets it.
  const forgotten = await sim.clock.advanceUntil(
    () => {
      sampleHeap();
      return (
        a.every((n) => n.memberStates().length === a.length - 1) &&
        b.every((n) => n.memberStates().length === b.length - 1)
      );
    },
    900_000,
    1_000,
  );
  assert.ok(forgotten, `seed ${seed}: the halves did not forget each other`);
  t.diagnostic(
    `split: each half forgot the other after ${((sim.clock.now() - start) / 1000).toFixed(1)} simulated s; ` +
      `${((performance.now() - wall) / 1000).toFixed(1)} s (cpu ${cpuSince(cpu0)} s), heap peak ${(heapPeak / 2 ** 20).toFixed(0)} MB`,
  );
  // ...and once the network heals, the reconnect loop (which keeps the forgotten members'
  // addresses) and refutations merge them, with no connect() call.
  wall = performance.now();
  cpu0 = process.cpuUsage();
  heapPeak = 0;
  sim.network.heal();
  const healStart = sim.clock.now();
  const merged = await sim.clock.advanceUntil(
    () => {
      sampleHeap();
      return nodes.every((n) => n.members().length === nodes.length - 1);
    },
    HEAL_WITHIN_MS,
    100,
  );
  assert.ok(
    merged,
    `seed ${seed}: views ${HEAL_WITHIN_MS / 1000} s after the heal: ${[...new Set(nodes.map((n) => n.members().length))].join(',')} members`,
  );
  t.diagnostic(
    `heal: one view again ${((sim.clock.now() - healStart) / 1000).toFixed(1)} simulated s after it; ` +
      `${((performance.now() - wall) / 1000).toFixed(1)} s (cpu ${cpuSince(cpu0)} s), heap peak ${(heapPeak / 2 ** 20).toFixed(0)} MB`,
  );
  assert.equal(new Set(nodes.map(view)).size, 1, 'every node holds the same view after the heal');
});
