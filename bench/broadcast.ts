/**
 * `broadcast`: one sender, N-1 receivers, each node in its own process. The sender broadcasts M
 * messages of S bytes, `window` broadcasts in flight at a time. Measured for tsp2p and for the
 * bare baseline (plain node:http + undici, one POST per delivery) in the same run, alternately,
 * `runs` times each; the report quotes medians.
 *
 * With `--data on`, every tsp2p node has a `dataDir` (an SQLite store); with `--data both`, tsp2p
 * without and with one are measured side by side in the same run (the report adds
 * `tsp2p_data` and `store_ratio`, its throughput over tsp2p's without a store).
 *
 * - deliveries/s = M × (N-1) / (time from the first send until the last receiver has all M)
 * - latency = delivery time - the send time stamped in the payload (one wall clock per machine)
 *
 * @module
 */

import { mkdir } from 'node:fs/promises';
import { availableParallelism, loadavg } from 'node:os';
import { join as joinPath, resolve } from 'node:path';
import { intFlag } from './lib/args.js';
import { stopCluster, type Worker } from './lib/cluster.js';
import { UsageError } from './lib/errors.js';
import { HEADER_BYTES } from './lib/payload.js';
import { runRound, STORE_SYSTEM, SYSTEMS, type System, type SystemName, startSystem } from './lib/rounds.js';
import type { FlagValues, Scenario } from './lib/scenario.js';
import { median, percentile, round, sortedConcat } from './lib/stats.js';

/**
 * A tsp2p receiver's CPU per request keeps falling for its first ~10,000 requests (the JIT
 * optimizes its many functions one by one, on cores the benchmark keeps busy): the first run
 * after a short warm-up was always the slowest. Both systems get the same warm-up.
 */
const WARMUP_DELIVERIES = 200_000;
/** ...but the automatic warm-up sends at most this many bytes of payload (large messages). */
const WARMUP_BYTES = 256 * 1024 * 1024;
/** Unmeasured messages sent right before each measured run. */
const PRIME_MESSAGES = 500;

/** The figures of one measured run. */
export interface RunFigures {
  readonly deliveries_per_s: number;
  /** Payload bytes delivered per second (deliveries/s × size). */
  readonly bytes_per_s: number;
  readonly p50_ms: number;
  readonly p99_ms: number;
  /** First send to last delivery, in s. */
  readonly seconds: number;
  readonly duplicates: number;
  /** CPU time of the sender, and of all receivers together, per delivery, in µs. */
  readonly sender_cpu_us: number;
  readonly receivers_cpu_us: number;
}

interface Settings {
  readonly nodes: number;
  readonly messages: number;
  readonly size: number;
  readonly window: number;
  readonly runs: number;
  readonly warmup: number;
  readonly roundTimeoutMs: number;
  readonly profileDir: string | undefined;
  /** The systems measured: the baseline, then tsp2p without and/or with a `dataDir`. */
  readonly systems: readonly System[];
}

const usage = `  --nodes N          nodes, one process each, node 0 sends (default 10)
  --messages M       messages broadcast per run (default 2000)
  --size S           payload bytes, at least ${HEADER_BYTES} (default 100)
  --window W         broadcasts in flight at once (default 1024: enough to saturate both systems)
  --runs R           measured runs per system, alternating baseline and tsp2p (default 3)
  --warmup K         unmeasured messages per system before the runs
                     (default auto: enough for 20000 deliveries, at least 2000 messages,
                     at most 256 MiB of deliveries, at least 500 messages)
  --round-timeout S  seconds a run may take before it fails (default 60)
  --data off|on|both tsp2p nodes without a dataDir, with one (SQLite in a temp dir), or both
                     side by side in the same run (default off)
  --profile DIR      CPU-profile node 0 (sender) and node 1 (a receiver) of each system during
                     the measured runs: DIR/<system>-<role>.cpuprofile
  --deadline S       kill everything and exit 1 after S seconds (default 600: at 50 nodes the
                     two clusters' 100 processes alone take a few minutes to start and join)`;

export const broadcast: Scenario = {
  name: 'broadcast',
  summary: 'one sender broadcasts to N-1 receivers; tsp2p against one-POST-per-delivery HTTP',
  usage,
  flags: {
    nodes: { type: 'string', default: '10' },
    messages: { type: 'string', default: '2000' },
    size: { type: 'string', default: '100' },
    window: { type: 'string', default: '1024' },
    runs: { type: 'string', default: '3' },
    warmup: { type: 'string', default: 'auto' },
    'round-timeout': { type: 'string', default: '60' },
    profile: { type: 'string' },
    data: { type: 'string', default: 'off' },
    deadline: { type: 'string', default: '600' },
  },
  run: (values, log) => runBroadcast(settingsOf(values), log),
};

function settingsOf(values: FlagValues): Settings {
  const profile = values.profile;
  const nodes = intFlag(values, 'nodes', 2, 200);
  const size = intFlag(values, 'size', HEADER_BYTES, 1024 * 1024);
  return {
    nodes,
    messages: intFlag(values, 'messages', 1, 10_000_000),
    size,
    window: intFlag(values, 'window', 1, 100_000),
    runs: intFlag(values, 'runs', 1, 100),
    warmup: values.warmup === 'auto' ? autoWarmup(nodes, size) : intFlag(values, 'warmup', 0, 10_000_000),
    roundTimeoutMs: intFlag(values, 'round-timeout', 1, 3600) * 1000,
    profileDir: typeof profile === 'string' ? resolve(profile) : undefined,
    systems: systemsOf(values.data),
  };
}

function systemsOf(data: unknown): readonly System[] {
  const [baseline, tsp2p] = SYSTEMS;
  if (data === 'off') return SYSTEMS;
  if (data === 'on') return [baseline, STORE_SYSTEM];
  if (data === 'both') return [baseline, tsp2p, STORE_SYSTEM];
  throw new UsageError(`--data must be off, on or both, got ${JSON.stringify(data)}`);
}

/** Messages for the automatic warm-up: see {@link WARMUP_DELIVERIES} and {@link WARMUP_BYTES}. */
export function autoWarmup(nodes: number, size: number): number {
  const byCount = Math.max(2000, Math.ceil(WARMUP_DELIVERIES / (nodes - 1)));
  const byBytes = Math.floor(WARMUP_BYTES / (size * (nodes - 1)));
  return Math.max(PRIME_MESSAGES, Math.min(byCount, byBytes));
}

async function runBroadcast(s: Settings, log: (line: string) => void): Promise<object> {
  log(
    `broadcast: ${s.nodes} nodes, ${s.messages} messages of ${s.size} B, window ${s.window}, ` +
      `${s.runs} runs per system`,
  );
  const loadBefore = loadavg();
  const clusters = new Map<SystemName, Worker[]>();
  const figures = new Map<SystemName, RunFigures[]>(s.systems.map((sys) => [sys.name, []]));
  let roundNo = 0;
  try {
    for (const sys of s.systems) {
      const started = performance.now();
      clusters.set(sys.name, await startSystem(sys, s.nodes));
      log(`${sys.name}: ${s.nodes} nodes up and joined in ${seconds(performance.now() - started)} s`);
    }
    // Warm both up (JIT, connection pools) only once both are up, right before the runs.
    if (s.warmup > 0) {
      for (const sys of s.systems) await measure(sys.name, clusters.get(sys.name)!, ++roundNo, s.warmup, s);
      log(`warmed up with ${s.warmup} messages each`);
    }
    if (s.profileDir !== undefined) {
      await mkdir(s.profileDir, { recursive: true });
      await eachProfiled(clusters, (w) => w.call('profile', {}));
    }
    for (let run = 1; run <= s.runs; run++) {
      // Alternate the order (ABBA) so that neither system always runs on a hotter machine.
      const order = run % 2 === 1 ? s.systems : [...s.systems].reverse();
      for (const sys of order) {
        const workers = clusters.get(sys.name)!;
        // A short unmeasured burst first, so that a measured run never starts from idle processes.
        await measure(sys.name, workers, ++roundNo, PRIME_MESSAGES, s);
        const f = await measure(sys.name, workers, ++roundNo, s.messages, s);
        figures.get(sys.name)!.push(f);
        if (f.duplicates > 0) log(`warning: ${sys.name} delivered ${f.duplicates} messages twice`);
        log(
          `run ${run}/${s.runs} ${sys.name.padEnd(8)} ${String(f.deliveries_per_s).padStart(6)} deliveries/s` +
            ` (${(f.bytes_per_s / 1e6).toFixed(1)} MB/s)` +
            `  p50 ${f.p50_ms} ms  p99 ${f.p99_ms} ms  (${f.seconds} s; CPU µs/delivery: ` +
            `sender ${f.sender_cpu_us}, receivers ${f.receivers_cpu_us})`,
        );
      }
    }
    const dir = s.profileDir;
    if (dir !== undefined) {
      await eachProfiled(clusters, (w, system, role) =>
        w.call('profile', { file: joinPath(dir, `${system}-${role}.cpuprofile`) }),
      );
      log(`profiles of the measured runs written to ${dir}`);
    }
  } finally {
    await Promise.all([...clusters.values()].map((w) => stopCluster(w)));
  }
  const baseline = summary(figures.get('baseline')!);
  const plain = figures.get('tsp2p');
  const stored = figures.get('tsp2p-data');
  const tsp2p = summary(plain ?? stored!);
  const withData = plain !== undefined && stored !== undefined ? summary(stored) : undefined;
  return {
    scenario: 'broadcast',
    nodes: s.nodes,
    messages: s.messages,
    size: s.size,
    data: plain === undefined ? 'on' : stored === undefined ? 'off' : 'both',
    tsp2p,
    baseline,
    ratio: round(tsp2p.deliveries_per_s / baseline.deliveries_per_s, 3),
    ...(withData !== undefined
      ? {
          tsp2p_data: withData,
          ratio_data: round(withData.deliveries_per_s / baseline.deliveries_per_s, 3),
          store_ratio: round(withData.deliveries_per_s / tsp2p.deliveries_per_s, 3),
        }
      : {}),
    window: s.window,
    runs: s.runs,
    warmup: s.warmup,
    load: { before: loadBefore.map((l) => round(l)), after: loadavg().map((l) => round(l)) },
    node: process.version,
    cpus: availableParallelism(),
  };
}

/** One round: node 0 broadcasts `count` messages; resolves once every receiver has them all. */
async function measure(
  system: SystemName,
  workers: readonly Worker[],
  roundNo: number,
  count: number,
  s: Settings,
): Promise<RunFigures> {
  const r = await runRound(system, workers, roundNo, {
    senders: [0],
    count,
    size: s.size,
    window: s.window,
    timeoutMs: s.roundTimeoutMs,
  });
  const latencies = sortedConcat(r.received.map((x) => x.latencies));
  const deliveriesPerS = r.deliveries / (r.elapsedMs / 1000);
  return {
    deliveries_per_s: Math.round(deliveriesPerS),
    bytes_per_s: Math.round(deliveriesPerS * s.size),
    p50_ms: round(percentile(latencies, 50)),
    p99_ms: round(percentile(latencies, 99)),
    seconds: round(r.elapsedMs / 1000, 3),
    duplicates: r.received.reduce((n, x) => n + x.duplicates, 0),
    sender_cpu_us: round((r.sent[0]!.cpuMs * 1000) / r.deliveries, 1),
    receivers_cpu_us: round((r.received.reduce((n, x) => n + x.cpuMs, 0) * 1000) / r.deliveries, 1),
  };
}

function summary(runs: readonly RunFigures[]): {
  deliveries_per_s: number;
  bytes_per_s: number;
  p50_ms: number;
  p99_ms: number;
  sender_cpu_us: number;
  receivers_cpu_us: number;
  per_run: readonly RunFigures[];
} {
  const mid = (pick: (r: RunFigures) => number): number => median(runs.map(pick));
  return {
    deliveries_per_s: Math.round(mid((r) => r.deliveries_per_s)),
    bytes_per_s: Math.round(mid((r) => r.bytes_per_s)),
    p50_ms: round(mid((r) => r.p50_ms)),
    p99_ms: round(mid((r) => r.p99_ms)),
    sender_cpu_us: round(
      mid((r) => r.sender_cpu_us),
      1,
    ),
    receivers_cpu_us: round(
      mid((r) => r.receivers_cpu_us),
      1,
    ),
    per_run: runs,
  };
}

/** Calls `fn` on node 0 (the sender) and node 1 (a receiver) of each system. */
async function eachProfiled(
  clusters: ReadonlyMap<SystemName, readonly Worker[]>,
  fn: (w: Worker, system: SystemName, role: 'sender' | 'receiver') => Promise<unknown>,
): Promise<void> {
  const calls: Promise<unknown>[] = [];
  for (const [system, workers] of clusters) {
    calls.push(fn(workers[0]!, system, 'sender'), fn(workers[1]!, system, 'receiver'));
  }
  await Promise.all(calls);
}

function seconds(ms: number): string {
  return (ms / 1000).toFixed(1);
}
