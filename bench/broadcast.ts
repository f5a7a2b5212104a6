/**
 * `broadcast`: one sender, N-1 receivers, each node in its own process. The sender broadcasts M
 * messages of S bytes, `window` broadcasts in flight at a time. Measured for tsp2p and for the
 * bare baseline (plain node:http + undici, one POST per delivery) in the same run, alternately,
 * `runs` times each; the report quotes medians.
 *
 * - deliveries/s = M × (N-1) / (time from the first send until the last receiver has all M)
 * - latency = delivery time - the send time stamped in the payload (one wall clock per machine)
 *
 * @module
 */

import { mkdir } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { join as joinPath, resolve } from 'node:path';
import { intFlag } from './lib/args.js';
import { startCluster, stopCluster, type Worker } from './lib/cluster.js';
import { BenchError } from './lib/errors.js';
import { HEADER_BYTES } from './lib/payload.js';
import type { FlagValues, Scenario } from './lib/scenario.js';
import { median, percentile, round, sortedConcat } from './lib/stats.js';

const SYSTEMS = [
  { name: 'baseline', script: 'worker-baseline.ts' },
  { name: 'tsp2p', script: 'worker-tsp2p.ts' },
] as const;
type SystemName = (typeof SYSTEMS)[number]['name'];

/** The JIT needs some thousands of deliveries per process before figures settle. */
const WARMUP_DELIVERIES = 20_000;
/** Unmeasured messages sent right before each measured run. */
const PRIME_MESSAGES = 500;

/** The figures of one measured run. */
export interface RunFigures {
  readonly deliveries_per_s: number;
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
}

const usage = `  --nodes N          nodes, one process each, node 0 sends (default 10)
  --messages M       messages broadcast per run (default 2000)
  --size S           payload bytes, at least ${HEADER_BYTES} (default 100)
  --window W         broadcasts in flight at once (default 64)
  --runs R           measured runs per system, alternating baseline and tsp2p (default 3)
  --warmup K         unmeasured messages per system before the runs
                     (default auto: enough for 20000 deliveries, at least 2000)
  --round-timeout S  seconds a run may take before it fails (default 60)
  --profile DIR      CPU-profile node 0 (sender) and node 1 (a receiver) of each system during
                     the measured runs: DIR/<system>-<role>.cpuprofile
  --deadline S       kill everything and exit 1 after S seconds (default 170)`;

export const broadcast: Scenario = {
  name: 'broadcast',
  summary: 'one sender broadcasts to N-1 receivers; tsp2p against one-POST-per-delivery HTTP',
  usage,
  flags: {
    nodes: { type: 'string', default: '10' },
    messages: { type: 'string', default: '2000' },
    size: { type: 'string', default: '100' },
    window: { type: 'string', default: '64' },
    runs: { type: 'string', default: '3' },
    warmup: { type: 'string', default: 'auto' },
    'round-timeout': { type: 'string', default: '60' },
    profile: { type: 'string' },
  },
  run: (values, log) => runBroadcast(settingsOf(values), log),
};

function settingsOf(values: FlagValues): Settings {
  const profile = values.profile;
  const nodes = intFlag(values, 'nodes', 2, 200);
  return {
    nodes,
    messages: intFlag(values, 'messages', 1, 10_000_000),
    size: intFlag(values, 'size', HEADER_BYTES, 1024 * 1024),
    window: intFlag(values, 'window', 1, 100_000),
    runs: intFlag(values, 'runs', 1, 100),
    warmup:
      values.warmup === 'auto'
        ? Math.max(2000, Math.ceil(WARMUP_DELIVERIES / (nodes - 1)))
        : intFlag(values, 'warmup', 0, 10_000_000),
    roundTimeoutMs: intFlag(values, 'round-timeout', 1, 3600) * 1000,
    profileDir: typeof profile === 'string' ? resolve(profile) : undefined,
  };
}

async function runBroadcast(s: Settings, log: (line: string) => void): Promise<object> {
  log(
    `broadcast: ${s.nodes} nodes, ${s.messages} messages of ${s.size} B, window ${s.window}, ` +
      `${s.runs} runs per system`,
  );
  const clusters = new Map<SystemName, Worker[]>();
  const figures = new Map<SystemName, RunFigures[]>(SYSTEMS.map((sys) => [sys.name, []]));
  let roundNo = 0;
  try {
    for (const sys of SYSTEMS) {
      const started = performance.now();
      const workers = await startCluster({
        system: sys.name,
        script: sys.script,
        nodes: s.nodes,
      });
      clusters.set(sys.name, workers);
      await join(sys.name, workers);
      log(`${sys.name}: ${s.nodes} nodes up and joined in ${seconds(performance.now() - started)} s`);
    }
    // Warm both up (JIT, connection pools) only once both are up, right before the runs.
    if (s.warmup > 0) {
      for (const sys of SYSTEMS) await measure(sys.name, clusters.get(sys.name)!, ++roundNo, s.warmup, s);
      log(`warmed up with ${s.warmup} messages each`);
    }
    if (s.profileDir !== undefined) {
      await mkdir(s.profileDir, { recursive: true });
      await eachProfiled(clusters, (w) => w.call('profile', {}));
    }
    for (let run = 1; run <= s.runs; run++) {
      // Alternate the order (ABBA) so that neither system always runs on a hotter machine.
      const order = run % 2 === 1 ? SYSTEMS : [...SYSTEMS].reverse();
      for (const sys of order) {
        const workers = clusters.get(sys.name)!;
        // A short unmeasured burst first, so that a measured run never starts from idle processes.
        await measure(sys.name, workers, ++roundNo, PRIME_MESSAGES, s);
        const f = await measure(sys.name, workers, ++roundNo, s.messages, s);
        figures.get(sys.name)!.push(f);
        if (f.duplicates > 0) log(`warning: ${sys.name} delivered ${f.duplicates} messages twice`);
        log(
          `run ${run}/${s.runs} ${sys.name.padEnd(8)} ${String(f.deliveries_per_s).padStart(6)} deliveries/s` +
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
  const tsp2p = summary(figures.get('tsp2p')!);
  const baseline = summary(figures.get('baseline')!);
  return {
    scenario: 'broadcast',
    nodes: s.nodes,
    messages: s.messages,
    size: s.size,
    tsp2p,
    baseline,
    ratio: round(tsp2p.deliveries_per_s / baseline.deliveries_per_s, 3),
    window: s.window,
    runs: s.runs,
    warmup: s.warmup,
    node: process.version,
    cpus: availableParallelism(),
  };
}

/** Joins every node to the network and checks that each sees all the others. */
async function join(system: SystemName, workers: readonly Worker[]): Promise<void> {
  const peers = workers.map((w) => w.address);
  // One at a time through node 0, as people join a gop2p network.
  for (const [i, w] of workers.entries()) {
    await w.call('join', { entry: i === 0 ? undefined : peers[0], peers });
  }
  const counts = await Promise.all(workers.map((w) => w.call('members', {})));
  const short = counts.findIndex((c) => c.members !== workers.length - 1);
  if (short >= 0) {
    throw new BenchError(
      `${system}: node ${short} sees ${counts[short]!.members} members after the join, ` +
        `expected ${workers.length - 1}`,
    );
  }
}

/** One round: node 0 broadcasts `count` messages; resolves once every receiver has them all. */
async function measure(
  system: SystemName,
  workers: readonly Worker[],
  roundNo: number,
  count: number,
  s: Settings,
): Promise<RunFigures> {
  const sender = workers[0]!;
  const receivers = workers.slice(1);
  await Promise.all(receivers.map((w) => w.call('arm', { round: roundNo, senders: [0], count })));
  const waits = receivers.map((w) => w.call('wait', { round: roundNo }));
  for (const p of waits) p.catch(() => undefined); // awaited below; never an unhandled rejection
  const sending = sender
    .call('send', { round: roundNo, sender: 0, count, size: s.size, window: s.window })
    .then((sent) => {
      if (sent.failed > 0) {
        throw new BenchError(`${system}: ${sent.failed} deliveries failed; the first: ${sent.firstError}`);
      }
      return sent;
    });
  // All at once, so that a worker that dies fails the run at once.
  const work = Promise.all([sending, ...waits]).then(([sent, ...received]) => ({ sent, received }));
  const { sent, received } = await withTimeout(work, s.roundTimeoutMs, () =>
    describeStall(system, receivers, s.roundTimeoutMs),
  );
  const lastAt = Math.max(...received.map((r) => r.doneAt));
  const elapsedMs = lastAt - sent.firstAt;
  const latencies = sortedConcat(received.map((r) => r.latencies));
  const deliveries = count * receivers.length;
  return {
    deliveries_per_s: Math.round(deliveries / (elapsedMs / 1000)),
    p50_ms: round(percentile(latencies, 50)),
    p99_ms: round(percentile(latencies, 99)),
    seconds: round(elapsedMs / 1000, 3),
    duplicates: received.reduce((n, r) => n + r.duplicates, 0),
    sender_cpu_us: round((sent.cpuMs * 1000) / deliveries, 1),
    receivers_cpu_us: round((received.reduce((n, r) => n + r.cpuMs, 0) * 1000) / deliveries, 1),
  };
}

async function withTimeout<T>(work: Promise<T>, ms: number, onTimeout: () => Promise<Error>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      onTimeout().then(reject, reject);
    }, ms);
  });
  try {
    return await Promise.race([work, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

async function describeStall(system: string, receivers: readonly Worker[], ms: number): Promise<Error> {
  const statuses = await Promise.all(
    receivers.map((w) =>
      Promise.race([
        w.call('status', {}).then((st) => `${st.received}/${st.expected}`),
        new Promise<string>((r) => setTimeout(() => r('no answer'), 2_000)),
      ]).catch(() => 'gone'),
    ),
  );
  const detail = statuses.map((st, i) => `node ${i + 1}: ${st}`).join(', ');
  return new BenchError(`${system}: run not complete after ${ms / 1000} s (${detail})`);
}

function summary(runs: readonly RunFigures[]): {
  deliveries_per_s: number;
  p50_ms: number;
  p99_ms: number;
  sender_cpu_us: number;
  receivers_cpu_us: number;
  per_run: readonly RunFigures[];
} {
  const mid = (pick: (r: RunFigures) => number): number => median(runs.map(pick));
  return {
    deliveries_per_s: Math.round(mid((r) => r.deliveries_per_s)),
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
