/**
 * The 50/50 partition of `membership-partition.test.ts`, run in a process of its own: the test
 * forks this module and reads its report. Outside the test runner's process the simulation
 * runs without the runner's async hooks, which follow every promise the process creates (to
 * tie it to a test): in this simulation, millions of them. At 300 nodes the split and the heal
 * took 112 CPU s in the test's process and 87 in a child (seed 1; BENCHMARKS.md, session 13).
 *
 * It reports over the IPC channel: `{ diagnostic }` lines, then `{ done: true }` or
 * `{ done: false, error }` (a failed assertion's message).
 *
 * @module
 */

import assert from 'node:assert/strict';
import { getHeapStatistics } from 'node:v8';
import { simulation } from '../../src/node.js';
import { addr, SimNetwork, view } from './network.js';

/**
 * Dead members are forgotten after two minutes instead of a day, so that the partition outlasts
 * the reap (issue 16, case 3).
 */
const DEAD_RETENTION_MS = 120_000;
/** The stated bound: one view again within this long after the partition heals (simulated). */
export const HEAL_WITHIN_MS = 120_000;

/** Seconds of CPU (user + system) since `from`. */
function cpuSince(from: NodeJS.CpuUsage): string {
  const cpu = process.cpuUsage(from);
  return ((cpu.user + cpu.system) / 1e6).toFixed(1);
}

/**
 * `size` nodes start from the converged view (`simulation.seedView`: every node is given every
 * node's signed entry, checked as gossip would bring it) rather than joining; they split 50/50
 * until each half has declared dead and forgotten every node of the other, then the network
 * heals and they must hold one view again within {@link HEAL_WITHIN_MS}, with no `connect()`.
 * Throws (an assertion) if not; `log` gets the figures.
 */
export async function runPartition(size: number, seed: number, log: (line: string) => void): Promise<void> {
  const sim = new SimNetwork(seed);
  let heapPeak = 0;
  const sampleHeap = (): void => {
    const used = getHeapStatistics().used_heap_size;
    if (used > heapPeak) heapPeak = used;
  };
  for (let i = 0; i < size; i++) await sim.add({ timings: { deadRetentionMs: DEAD_RETENTION_MS } });
  const entries = sim.nodes.map((n) => simulation.selfUpdate(n));
  for (let i = 0; i < size; i++) {
    assert.equal(simulation.seedView(sim.nodes[i]!, entries), size - 1);
    // The member events are emitted on the next ticks: let them out before they pile up.
    if (i % 50 === 49) await new Promise((r) => setImmediate(r));
  }
  // A few probe periods at rest: nothing changes in a converged view.
  await sim.clock.advance(5_000);
  assert.ok(
    sim.nodes.every((n) => n.members().length === size - 1),
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
  log(
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
  log(
    `heal: one view again ${((sim.clock.now() - healStart) / 1000).toFixed(1)} simulated s after it; ` +
      `${((performance.now() - wall) / 1000).toFixed(1)} s (cpu ${cpuSince(cpu0)} s), heap peak ${(heapPeak / 2 ** 20).toFixed(0)} MB`,
  );
  assert.equal(new Set(nodes.map(view)).size, 1, 'every node holds the same view after the heal');
  // No node is stopped: a graceful stop of every node sends n² leave messages, and the memory
  // transport and the manual clock hold no real handles (the process ends with the report).
}

// Forked by the test (or run by hand, with TSP2P_PARTITION_RUN=1: it prints): run, report, exit.
if (process.env.TSP2P_PARTITION_RUN === '1') {
  const send = (m: object): Promise<void> =>
    new Promise((r) => (process.send !== undefined ? process.send(m, () => r()) : r(console.log(m))));
  const size = Number(process.env.TSP2P_SIM_NODES ?? 200);
  const seed = Number(process.env.TSP2P_SEED ?? 1);
  runPartition(size, seed, (diagnostic) => void send({ diagnostic })).then(
    async () => {
      await send({ done: true });
      process.exit(0);
    },
    async (e: unknown) => {
      await send({ done: false, error: e instanceof Error ? (e.stack ?? e.message) : String(e) });
      process.exit(1);
    },
  );
}
