/**
 * `sim-gossip`: the cost of a broadcast in simulation, gossip relay against Plumtree, in this
 * process: N nodes on the memory transport with a manual clock and seeded randomness (as
 * `test/sim/plumtree.test.ts`). For each mode the nodes join and converge, then broadcast in
 * rounds (`--round` broadcasts at once from random origins, until every node has each); the
 * first round is the warm-up (Plumtree's first broadcasts flood its initial views). Reports, per
 * node and broadcast after the warm-up: full copies sent, ids announced (IHAVE) and batch
 * requests, read off the wire; and the delivery latency in simulated ms (p50, p99, maximum over
 * every delivery), with `--latency` one way per request and `--loss` of requests once the views
 * are full (issue 16, case 9: the propagation tail).
 *
 * It imports `src/` (like the simulation tests), so it needs no build.
 *
 * @module
 */

import { availableParallelism, loadavg } from 'node:os';
import { ManualClock } from '../src/clock.js';
import { Node } from '../src/node.js';
import { SeededRandom } from '../src/random.js';
import { MemoryNetwork } from '../src/transport/memory.js';
import { TappedTransport } from '../src/transport/tap.js';
import { intFlag, latencyFlag } from './lib/args.js';
import { BenchError, UsageError } from './lib/errors.js';
import { seedFlag } from './lib/members.js';
import type { Scenario } from './lib/scenario.js';
import { round } from './lib/stats.js';
import { BatchTraffic } from './lib/traffic.js';

const usage = `  --nodes N          simulated nodes (default 200)
  --broadcasts B     broadcasts per mode, after the warm-up round (default 40)
  --round R          broadcasts sent at once (default 10)
  --payload BYTES    payload size (default 100)
  --latency MIN-MAX  one-way latency of each request, uniform, in simulated ms (default 1-5)
  --loss P           fraction of requests lost once the views are full (default 0)
  --slow MS          once the views are full, every node takes MS simulated ms per KiB of a
                     request before handling it, as processes starved of CPU (default 0)
  --modes M[,M]      which modes to run: gossip, plumtree (default both)
  --seed S           seed of everything random (default random; printed)
  --deadline S       kill everything and exit 1 after S seconds (default 1800)

At 1,000 nodes give it NODE_OPTIONS=--max-old-space-size=14336 (as BENCHMARKS.md does).`;

type Mode = 'gossip' | 'plumtree';

export const simGossip: Scenario = {
  name: 'sim-gossip',
  summary: 'broadcast cost of N simulated nodes: gossip relay vs Plumtree (full copies, ids, requests)',
  usage,
  flags: {
    nodes: { type: 'string', default: '200' },
    broadcasts: { type: 'string', default: '40' },
    round: { type: 'string', default: '10' },
    payload: { type: 'string', default: '100' },
    latency: { type: 'string', default: '1-5' },
    loss: { type: 'string', default: '0' },
    slow: { type: 'string', default: '0' },
    modes: { type: 'string', default: 'gossip,plumtree' },
    seed: { type: 'string', default: 'random' },
    deadline: { type: 'string', default: '1800' },
  },
  async run(values, log) {
    const size = intFlag(values, 'nodes', 3, 100_000);
    const broadcasts = intFlag(values, 'broadcasts', 1, 100_000);
    const roundSize = intFlag(values, 'round', 1, 1_000);
    const payload = 'x'.repeat(intFlag(values, 'payload', 1, 1024 * 1024));
    const seed = seedFlag(values);
    const latency = latencyFlag(String(values.latency));
    const loss = Number(values.loss);
    if (!(loss >= 0 && loss < 1))
      throw new UsageError(`--loss must be a fraction from 0 to 1, got '${values.loss}'`);
    const slow = intFlag(values, 'slow', 0, 1000);
    const wanted = String(values.modes).split(',');
    if (wanted.length === 0 || wanted.some((m) => m !== 'gossip' && m !== 'plumtree'))
      throw new UsageError(`--modes: gossip, plumtree or both, got '${values.modes}'`);
    const loadBefore = loadavg();
    const wallStart = performance.now();
    const modes: Record<string, object> = {};
    for (const mode of wanted as Mode[]) {
      log(`sim-gossip: ${mode}, ${size} nodes, seed ${seed}`);
      modes[mode] = await measure(mode, size, broadcasts, roundSize, payload, seed, latency, loss, slow, log);
    }
    return {
      scenario: 'sim-gossip',
      nodes: size,
      broadcasts,
      round: roundSize,
      payload_bytes: payload.length,
      ...modes,
      simulated_latency_ms: `${latency.min}-${latency.max} one way`,
      loss,
      slow_ms_per_kib: slow,
      seed,
      wall_s: round((performance.now() - wallStart) / 1000, 1),
      load: { before: loadBefore.map((l) => round(l)), after: loadavg().map((l) => round(l)) },
      node: process.version,
      cpus: availableParallelism(),
    };
  },
};

async function measure(
  mode: Mode,
  size: number,
  broadcasts: number,
  roundSize: number,
  payload: string,
  seed: number,
  latency: { min: number; max: number },
  loss: number,
  slow: number,
  log: (line: string) => void,
): Promise<object> {
  const clock = new ManualClock(0);
  const random = new SeededRandom(seed);
  const network = new MemoryNetwork({ clock, random, latencyMs: latency });
  /** When each broadcast was made, by tag; the delays of its deliveries once measuring. */
  const sentAt = new Map<string, number>();
  let delays: number[] | undefined;
  const wire = new BatchTraffic();
  const nodes: Node[] = [];
  const got = new Map<Node, Set<string>>();
  for (let i = 0; i < size; i++) {
    const node = new Node({
      host: '10.0.0.1',
      dissemination: mode,
      clock,
      random,
      transport: new TappedTransport(network.transport(), (body) => wire.count(body)),
      identity: random.bytes(32),
    });
    const seen = new Set<string>();
    got.set(node, seen);
    node.on('message', (m) => {
      const tag = m.text.slice(0, 40);
      seen.add(tag);
      const at = sentAt.get(tag);
      if (delays !== undefined && at !== undefined) {
        delays.push(clock.now() - at);
      }
    });
    nodes.push(node);
  }
  const settle = async <T>(op: Promise<T>, maxMs: number): Promise<T> => {
    if (!(await clock.advanceUntilSettled(op, maxMs))) {
      throw new BenchError(`an operation did not settle within ${maxMs} simulated ms (seed ${seed})`);
    }
    return op;
  };
  // No node is stopped at the end: the timers are virtual, and nothing runs once this returns.
  await settle(Promise.all(nodes.map((n) => n.start())), 60_000);
  await settle(
    Promise.all(nodes.slice(1).map((n, i) => n.connect(nodes[Math.floor(random.next() * (i + 1))]!.self))),
    120_000,
  );
  if (!(await clock.advanceUntil(() => nodes.every((n) => n.members().length === size - 1), 600_000, 250))) {
    throw new BenchError(`no full views after 600 simulated s (seed ${seed})`);
  }
  network.setLoss(loss);
  if (slow > 0) for (const n of nodes) network.slow(`${n.self.address}:${n.self.port}`, slow);
  let sent = 0;
  const runRound = async (count: number): Promise<void> => {
    const batch: [Node, string][] = [];
    for (let k = 0; k < count; k++) {
      const origin = nodes[Math.floor(random.next() * size)]!;
      const tag = `${mode}-${sent++}`.padEnd(40, '.');
      batch.push([origin, tag]);
      sentAt.set(tag, clock.now());
      void origin.broadcast(tag + payload).catch(() => undefined);
    }
    const reached = await clock.advanceUntil(
      () => batch.every(([o, tag]) => nodes.every((n) => n === o || got.get(n)!.has(tag))),
      120_000,
      10,
    );
    if (!reached) throw new BenchError(`${mode}: a broadcast did not reach every node (seed ${seed})`);
  };
  await runRound(roundSize);
  delays = [];
  const warm = wire.snapshot();
  const wallStart = performance.now();
  for (let left = broadcasts; left > 0; left -= roundSize) await runRound(Math.min(roundSize, left));
  await clock.advance(2_000); // the last announcements
  const end = wire.snapshot();
  const per = (k: keyof typeof end): number => round((end[k] - warm[k]) / broadcasts / size, 2);
  const result = {
    full_copies_per_node_per_broadcast: per('full'),
    ids_per_node_per_broadcast: per('ids'),
    batch_requests_per_node_per_broadcast: per('batches'),
    batch_bytes_per_node_per_broadcast: Math.round((end.bytes - warm.bytes) / broadcasts / size),
    latency_ms: latencySummary(delays),
    grafts: end.grafts - warm.grafts,
    prunes: end.prunes - warm.prunes,
    warm_up: { full_copies_per_node_per_broadcast: round(warm.full / roundSize / size, 2) },
    wall_s: round((performance.now() - wallStart) / 1000, 1),
  };
  log(`${mode}: ${JSON.stringify(result)}`);
  return result;
}

/** `MIN-MAX` (or one number) in simulated ms. */
/** p50, p99 and the maximum of the deliveries' delays, and how many there were. */
function latencySummary(delays: readonly number[]): {
  p50: number;
  p99: number;
  max: number;
  deliveries: number;
} {
  const sorted = [...delays].sort((a, b) => a - b);
  const at = (q: number): number => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0;
  return {
    p50: round(at(0.5)),
    p99: round(at(0.99)),
    max: round(sorted.at(-1) ?? 0),
    deliveries: sorted.length,
  };
}
