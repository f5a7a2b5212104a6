/**
 * `all-to-all`: every one of N nodes (each its own process) broadcasts M messages at the same
 * time, `window` broadcasts in flight each; every node checks it gets each of the (N-1) × M
 * messages of the others exactly once. tsp2p and the bare baseline in the same run.
 *
 * - deliveries/s = N × (N-1) × M / (first send to last delivery anywhere)
 * - latency = delivery time - the send time stamped in the payload, under full load
 *
 * @module
 */

import { availableParallelism, loadavg } from 'node:os';
import { intFlag } from './lib/args.js';
import { HEADER_BYTES } from './lib/payload.js';
import { compareSystems, profileHooks, runRound } from './lib/rounds.js';
import type { Scenario } from './lib/scenario.js';
import { median, percentile, round, sortedConcat } from './lib/stats.js';

/** Unmeasured messages per node right before each measured run. */
const PRIME_MESSAGES = 100;

const usage = `  --nodes N          nodes, one process each, all sending (default 10)
  --messages M       messages broadcast per node per run (default 1000)
  --size S           payload bytes, at least ${HEADER_BYTES} (default 100)
  --window W         broadcasts in flight per node (default 16)
  --runs R           measured runs per system, alternating baseline and tsp2p (default 3)
  --warmup K         unmeasured messages per node before the runs
                     (default auto: enough for 20000 deliveries, at least 200)
  --round-timeout S  seconds a run may take before it fails (default 60)
  --profile DIR      CPU-profile node 0 of each system during the measured runs:
                     DIR/<system>-all-to-all.cpuprofile
  --deadline S       kill everything and exit 1 after S seconds (default 240)`;

/** The figures of one measured run. */
interface AllToAllRun {
  readonly deliveries_per_s: number;
  readonly p50_ms: number;
  readonly p99_ms: number;
  readonly seconds: number;
  readonly duplicates: number;
  /** CPU time of all processes together per delivery (sending and receiving), in µs. */
  readonly cpu_us: number;
}

export const allToAll: Scenario = {
  name: 'all-to-all',
  summary: 'every node broadcasts at once; tsp2p against one-POST-per-delivery HTTP',
  usage,
  flags: {
    nodes: { type: 'string', default: '10' },
    messages: { type: 'string', default: '1000' },
    size: { type: 'string', default: '100' },
    window: { type: 'string', default: '16' },
    runs: { type: 'string', default: '3' },
    warmup: { type: 'string', default: 'auto' },
    'round-timeout': { type: 'string', default: '60' },
    profile: { type: 'string' },
    deadline: { type: 'string', default: '240' },
  },
  async run(values, log) {
    const nodes = intFlag(values, 'nodes', 2, 200);
    const messages = intFlag(values, 'messages', 1, 10_000_000);
    const size = intFlag(values, 'size', HEADER_BYTES, 1024 * 1024);
    const window = intFlag(values, 'window', 1, 100_000);
    const runs = intFlag(values, 'runs', 1, 100);
    const warmup =
      values.warmup === 'auto'
        ? Math.max(200, Math.ceil(20_000 / (nodes * (nodes - 1))))
        : intFlag(values, 'warmup', 0, 10_000_000);
    const timeoutMs = intFlag(values, 'round-timeout', 1, 3600) * 1000;
    const senders = Array.from({ length: nodes }, (_, i) => i);
    const profiling = await profileHooks(values.profile, 'all-to-all', [''], log);
    const loadBefore = loadavg();
    log(
      `all-to-all: ${nodes} nodes each broadcasting ${messages} messages of ${size} B, window ${window}, ` +
        `${runs} runs per system`,
    );
    const figures = await compareSystems<AllToAllRun>(
      {
        nodes,
        runs,
        async warmup(system, workers, next) {
          if (warmup > 0) {
            await runRound(system, workers, next(), { senders, count: warmup, size, window, timeoutMs });
          }
        },
        async measure(system, workers, next) {
          await runRound(system, workers, next(), {
            senders,
            count: PRIME_MESSAGES,
            size,
            window,
            timeoutMs,
          });
          const r = await runRound(system, workers, next(), {
            senders,
            count: messages,
            size,
            window,
            timeoutMs,
          });
          const lat = sortedConcat(r.received.map((x) => x.latencies));
          return {
            deliveries_per_s: Math.round(r.deliveries / (r.elapsedMs / 1000)),
            p50_ms: round(percentile(lat, 50)),
            p99_ms: round(percentile(lat, 99)),
            seconds: round(r.elapsedMs / 1000, 3),
            duplicates: r.received.reduce((n, x) => n + x.duplicates, 0),
            cpu_us: round((r.received.reduce((n, x) => n + x.cpuMs, 0) * 1000) / r.deliveries, 1),
          };
        },
        ...profiling,
        describe: (f) =>
          `${String(f.deliveries_per_s).padStart(6)} deliveries/s  p50 ${f.p50_ms} ms  p99 ${f.p99_ms} ms  ` +
          `(${f.seconds} s; CPU µs/delivery, all processes: ${f.cpu_us})`,
      },
      log,
    );
    const summary = (list: readonly AllToAllRun[]) => {
      const mid = (pick: (r: AllToAllRun) => number): number => median(list.map(pick));
      return {
        deliveries_per_s: Math.round(mid((r) => r.deliveries_per_s)),
        p50_ms: round(mid((r) => r.p50_ms)),
        p99_ms: round(mid((r) => r.p99_ms)),
        cpu_us: round(
          mid((r) => r.cpu_us),
          1,
        ),
        per_run: list,
      };
    };
    const tsp2p = summary(figures.get('tsp2p')!);
    const baseline = summary(figures.get('baseline')!);
    return {
      scenario: 'all-to-all',
      nodes,
      messages,
      size,
      tsp2p,
      baseline,
      ratio: round(tsp2p.deliveries_per_s / baseline.deliveries_per_s, 3),
      window,
      runs,
      warmup,
      load: { before: loadBefore.map((l) => round(l)), after: loadavg().map((l) => round(l)) },
      node: process.version,
      cpus: availableParallelism(),
    };
  },
};
