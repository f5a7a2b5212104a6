/**
 * `latency`: node 0 broadcasts at a fixed offered rate (open loop: each message leaves when it
 * is due, whatever is still in flight) to N-1 receivers, each node in its own process; the
 * latency from the due time to each delivery, for tsp2p and the bare baseline in the same run.
 *
 * @module
 */

import { availableParallelism, loadavg } from 'node:os';
import { intFlag } from './lib/args.js';
import { HEADER_BYTES } from './lib/payload.js';
import { compareSystems, profileHooks, runRound, type SystemName } from './lib/rounds.js';
import type { Scenario } from './lib/scenario.js';
import { median, percentile, round, sortedConcat } from './lib/stats.js';

/** The target: p99 at most this at 1,000 msg/s offered, 10 nodes. */
const TARGET_P99_MS = 10;

const usage = `  --nodes N          nodes, one process each, node 0 sends (default 10)
  --rate R           broadcasts per second offered by node 0 (default 1000)
  --seconds S        length of a measured run (default 5)
  --size S           payload bytes, at least ${HEADER_BYTES} (default 100)
  --runs R           measured runs per system, alternating baseline and tsp2p (default 3)
  --warmup S         seconds at the rate per system before the runs (default 15: a tsp2p
                     node's p99 keeps falling for its first ~10 s of traffic, as the JIT
                     compiles and optimizes; the first run after 3 s was always the worst)
  --round-timeout S  seconds a run may take beyond its length before it fails (default 60)
  --profile DIR      CPU-profile node 0 (sender) and node 1 (a receiver) of each system during
                     the measured runs: DIR/<system>-latency-<role>.cpuprofile
  --deadline S       kill everything and exit 1 after S seconds (default 240)`;

/** The figures of one measured run. */
interface LatencyRun {
  readonly p50_ms: number;
  readonly p90_ms: number;
  readonly p99_ms: number;
  readonly p999_ms: number;
  readonly max_ms: number;
  /** Deliveries per second achieved (the offered rate × (N-1) when the system keeps up). */
  readonly deliveries_per_s: number;
  /** How late the sends left against their schedule (sender's timers and event loop). */
  readonly send_late_p99_ms: number;
  /** CPU time of the sender, and of all receivers together, per delivery, in µs. */
  readonly sender_cpu_us: number;
  readonly receivers_cpu_us: number;
}

export const latency: Scenario = {
  name: 'latency',
  summary: 'send-to-delivery latency at a fixed offered rate (open loop), one sender, N-1 receivers',
  usage,
  flags: {
    nodes: { type: 'string', default: '10' },
    rate: { type: 'string', default: '1000' },
    seconds: { type: 'string', default: '5' },
    size: { type: 'string', default: '100' },
    runs: { type: 'string', default: '3' },
    warmup: { type: 'string', default: '15' },
    'round-timeout': { type: 'string', default: '60' },
    profile: { type: 'string' },
    deadline: { type: 'string', default: '240' },
  },
  async run(values, log) {
    const nodes = intFlag(values, 'nodes', 2, 200);
    const rate = intFlag(values, 'rate', 1, 1_000_000);
    const seconds = intFlag(values, 'seconds', 1, 3600);
    const size = intFlag(values, 'size', HEADER_BYTES, 1024 * 1024);
    const runs = intFlag(values, 'runs', 1, 100);
    const warmupS = intFlag(values, 'warmup', 0, 3600);
    const timeoutMs = (seconds + intFlag(values, 'round-timeout', 1, 3600)) * 1000;
    const profiling = await profileHooks(values.profile, 'latency', ['-sender', '-receiver'], log);
    const loadBefore = loadavg();
    log(
      `latency: ${nodes} nodes, ${rate} broadcasts/s of ${size} B for ${seconds} s, ${runs} runs per system`,
    );
    const round1 = (system: SystemName, workers: Parameters<typeof runRound>[1], no: number, count: number) =>
      runRound(system, workers, no, { senders: [0], count, size, window: 1, rate, timeoutMs });
    const figures = await compareSystems<LatencyRun>(
      {
        nodes,
        runs,
        async warmup(system, workers, next) {
          if (warmupS > 0) await round1(system, workers, next(), rate * warmupS);
        },
        async measure(system, workers, next) {
          // Half a second at the rate first, so that a run never starts from idle processes.
          await round1(system, workers, next(), Math.max(1, Math.ceil(rate / 2)));
          const r = await round1(system, workers, next(), rate * seconds);
          const lat = sortedConcat(r.received.map((x) => x.latencies));
          return {
            p50_ms: round(percentile(lat, 50)),
            p90_ms: round(percentile(lat, 90)),
            p99_ms: round(percentile(lat, 99)),
            p999_ms: round(percentile(lat, 99.9)),
            max_ms: round(lat[lat.length - 1]!),
            deliveries_per_s: Math.round(r.deliveries / (r.elapsedMs / 1000)),
            send_late_p99_ms: round(r.sent[0]!.late?.p99 ?? Number.NaN),
            sender_cpu_us: round((r.sent[0]!.cpuMs * 1000) / r.deliveries, 1),
            receivers_cpu_us: round((r.received.reduce((n, x) => n + x.cpuMs, 0) * 1000) / r.deliveries, 1),
          };
        },
        ...profiling,
        describe: (f) =>
          `p50 ${f.p50_ms} ms  p99 ${f.p99_ms} ms  p99.9 ${f.p999_ms} ms  max ${f.max_ms} ms  ` +
          `(${f.deliveries_per_s} deliveries/s; sends late by ${f.send_late_p99_ms} ms at p99; CPU µs/delivery: ` +
          `sender ${f.sender_cpu_us}, receivers ${f.receivers_cpu_us})`,
      },
      log,
    );
    const summary = (list: readonly LatencyRun[]) => {
      const mid = (pick: (r: LatencyRun) => number): number => round(median(list.map(pick)), 2);
      return {
        p50_ms: mid((r) => r.p50_ms),
        p90_ms: mid((r) => r.p90_ms),
        p99_ms: mid((r) => r.p99_ms),
        p999_ms: mid((r) => r.p999_ms),
        max_ms: mid((r) => r.max_ms),
        deliveries_per_s: Math.round(mid((r) => r.deliveries_per_s)),
        send_late_p99_ms: mid((r) => r.send_late_p99_ms),
        sender_cpu_us: mid((r) => r.sender_cpu_us),
        receivers_cpu_us: mid((r) => r.receivers_cpu_us),
        per_run: list,
      };
    };
    const tsp2p = summary(figures.get('tsp2p')!);
    return {
      scenario: 'latency',
      nodes,
      rate,
      seconds,
      size,
      tsp2p,
      baseline: summary(figures.get('baseline')!),
      target_p99_ms: TARGET_P99_MS,
      target_met: tsp2p.p99_ms <= TARGET_P99_MS,
      runs,
      warmup_s: warmupS,
      load: { before: loadBefore.map((l) => round(l)), after: loadavg().map((l) => round(l)) },
      node: process.version,
      cpus: availableParallelism(),
    };
  },
};
