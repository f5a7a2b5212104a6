/**
 * What the message scenarios (`broadcast`, `latency`, `all-to-all`) share: the two systems
 * measured side by side, their clusters (one process per node), and one measured round (some
 * nodes send, every other node checks it gets each message exactly once).
 *
 * @module
 */

import { mkdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { startCluster, type Worker } from './cluster.js';
import { BenchError } from './errors.js';
import { bundledScript } from './plain.js';
import type { Commands, Received, Sent } from './protocol.js';

/** The systems measured, the baseline first. */
export const SYSTEMS = [
  { name: 'baseline', script: 'worker-baseline.ts' },
  { name: 'tsp2p', script: 'worker-tsp2p.ts' },
] as const;
/** tsp2p with a `dataDir` on every node (`broadcast --data on|both`). */
export const STORE_SYSTEM = { name: 'tsp2p-data', script: 'worker-tsp2p-data.ts' } as const;
export type SystemName = (typeof SYSTEMS)[number]['name'] | typeof STORE_SYSTEM.name;
/** One system measured. */
export type System = (typeof SYSTEMS)[number] | typeof STORE_SYSTEM;

/** Starts `nodes` workers of `system` and joins them (in waves, see {@link joinAll}). */
export async function startSystem(
  system: System,
  nodes: number,
  execArgv?: (index: number) => readonly string[],
): Promise<Worker[]> {
  // Plain node on one bundled file: 50 nodes of each system are 100 processes, and tsx would give
  // each its loader thread and its own esbuild service.
  const workers = await startCluster({
    system: system.name,
    script: await bundledScript(system.script),
    nodes,
    ...(execArgv !== undefined ? { execArgv } : {}),
  });
  try {
    await joinAll(system.name, workers);
  } catch (err) {
    await Promise.all(workers.map((w) => w.stop()));
    throw err;
  }
  return workers;
}

/** How many nodes join at once (see {@link joinAll}). */
const JOIN_WAVE = 8;
/** How often one node tries to join, each time through another node (see {@link joinAll}). */
const JOIN_ATTEMPTS = 3;
/** How long the views may take to fill once every node has joined, in ms. */
const VIEW_TIMEOUT_MS = 120_000;

/**
 * Joins every node to the network, {@link JOIN_WAVE} at a time (as people join a gop2p network,
 * but not one by one: at 50 or 100 processes a join after a join took most of the bench's time),
 * then waits until each node sees all the others. Each wave joins through the nodes already in
 * the network, spread evenly (node `j` through node `j mod joined`), not all through node 0: with
 * node 0 as every newcomer's entry point, on a loaded machine it did not answer a connect within
 * 10 s at 50 processes.
 */
export async function joinAll(system: SystemName, workers: readonly Worker[]): Promise<void> {
  const peers = workers.map((w) => w.address);
  await workers[0]!.call('join', { entry: undefined, peers });
  for (let i = 1; i < workers.length; i += JOIN_WAVE) {
    await Promise.all(
      workers.slice(i, i + JOIN_WAVE).map(async (w, k) => {
        // A join that failed (its entry point did not answer within the connect's time limit: at
        // 100 processes on 2 cores, load 120) goes again through another node already in.
        for (let attempt = 0; ; attempt++) {
          const entry = peers[(i + k + attempt) % i];
          try {
            return await w.call('join', { entry, peers });
          } catch (err) {
            if (attempt + 1 >= JOIN_ATTEMPTS) throw err;
            console.error(`${system}: node ${i + k}: join through ${entry} failed (${String(err)}); again`);
          }
        }
      }),
    );
  }
  // Nodes of the same wave learn of each other by gossip or push-pull, a moment later.
  const deadline = performance.now() + VIEW_TIMEOUT_MS;
  for (;;) {
    const counts = await Promise.all(workers.map((w) => w.call('members', {})));
    const short = counts.findIndex((c) => c.members !== workers.length - 1);
    if (short < 0) return;
    if (performance.now() > deadline) {
      throw new BenchError(
        `${system}: node ${short} sees ${counts[short]!.members} members ${VIEW_TIMEOUT_MS / 1000} s ` +
          `after the join, expected ${workers.length - 1}`,
      );
    }
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** One round: who sends what, how. */
export interface RoundSpec {
  /** Indexes of the sending nodes; every node receives from every sender but itself. */
  readonly senders: readonly number[];
  /** Messages each sender broadcasts. */
  readonly count: number;
  readonly size: number;
  /** Broadcasts in flight per sender (closed loop), unless `rate` is given. */
  readonly window: number;
  /** Open loop: broadcasts per second per sender, on a fixed schedule. */
  readonly rate?: number;
  readonly timeoutMs: number;
}

/** What a round gives back, raw. */
export interface RoundResult {
  /** Per sender, in the order of `spec.senders`. */
  readonly sent: readonly Sent[];
  /** Per receiving node. */
  readonly received: readonly Received[];
  /** Deliveries expected (and made). */
  readonly deliveries: number;
  /** From the first send until the last delivery, in ms. */
  readonly elapsedMs: number;
}

/** Runs one round on `workers`; resolves once every receiver has everything. */
export async function runRound(
  system: SystemName,
  workers: readonly Worker[],
  roundNo: number,
  spec: RoundSpec,
): Promise<RoundResult> {
  const receivers = workers
    .map((w, i) => ({ w, from: spec.senders.filter((s) => s !== i) }))
    .filter((r) => r.from.length > 0);
  await Promise.all(
    receivers.map((r) => r.w.call('arm', { round: roundNo, senders: r.from, count: spec.count })),
  );
  const waits = receivers.map((r) => r.w.call('wait', { round: roundNo }));
  for (const p of waits) p.catch(() => undefined); // awaited below; never an unhandled rejection
  const sends = spec.senders.map((s) =>
    workers[s]!.call('send', {
      round: roundNo,
      sender: s,
      count: spec.count,
      size: spec.size,
      window: spec.window,
      ...(spec.rate === undefined ? {} : { rate: spec.rate }),
    }).then((sent) => {
      if (sent.failed > 0) {
        throw new BenchError(
          `${system}: node ${s}: ${sent.failed} deliveries failed; the first: ${sent.firstError}`,
        );
      }
      return sent;
    }),
  );
  for (const p of sends) p.catch(() => undefined);
  // All at once, so that a worker that dies fails the run at once.
  const work = Promise.all([Promise.all(sends), Promise.all(waits)]);
  const [sent, received] = await withTimeout(work, spec.timeoutMs, () =>
    describeStall(
      system,
      receivers.map((r) => r.w),
      spec.senders.map((i) => workers[i]!),
      spec.timeoutMs,
    ),
  );
  const firstAt = Math.min(...sent.map((x) => x.firstAt));
  const lastAt = Math.max(...received.map((r) => r.doneAt));
  const deliveries = receivers.reduce((n, r) => n + r.from.length * spec.count, 0);
  return { sent, received, deliveries, elapsedMs: lastAt - firstAt };
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

async function describeStall(
  system: string,
  receivers: readonly Worker[],
  senders: readonly Worker[],
  ms: number,
): Promise<Error> {
  const statusOf = (w: Worker): Promise<Commands['status']['result'] | string> =>
    Promise.race([
      w.call('status', {}),
      new Promise<string>((r) => setTimeout(() => r('no answer'), 2_000)),
    ]).catch(() => 'gone');
  const [statuses, sent] = await Promise.all([
    Promise.all(receivers.map((w) => statusOf(w))),
    Promise.all(senders.map((w) => statusOf(w))),
  ]);
  const detail = statuses
    .map((st, i) => {
      const at = typeof st === 'string' ? st : `${st.received}/${st.expected}, ${st.members} members`;
      return `${receivers[i]!.name}: ${at}`;
    })
    .join('; ');
  const senderDetail = sent
    .map((st, i) => {
      if (typeof st === 'string') return `${senders[i]!.name}: ${st}`;
      if (st.sending === undefined) return `${senders[i]!.name}: not sending, ${st.members} members`;
      const p = st.sending;
      const error = p.firstError === undefined ? '' : `, the first: ${p.firstError}`;
      return `${senders[i]!.name}: ${p.settled}/${p.count} broadcasts settled, ${p.failed} deliveries failed${error}, ${st.members} members`;
    })
    .join('; ');
  const metrics = system.startsWith('tsp2p')
    ? await Promise.all(senders.map((w) => metricsExcerpt(w.address)))
    : [];
  return new BenchError(
    `${system}: run not complete after ${ms / 1000} s (${detail}); senders: ${senderDetail}` +
      metrics.map((m) => `\n${m}`).join(''),
  );
}

/** The lines of a tsp2p node's `/metrics` that tell where a stalled round stands. */
async function metricsExcerpt(address: string): Promise<string> {
  try {
    const res = await fetch(`http://${address}/metrics`, { signal: AbortSignal.timeout(5_000) });
    const text = await res.text();
    const wanted = /^tsp2p_(delivery_|requests_refused|members|suspicions|deliveries|requests_sent)/;
    return `${address} /metrics:\n${text
      .split('\n')
      .filter((l) => wanted.test(l))
      .join('\n')}`;
  } catch (err) {
    return `${address} /metrics: ${(err as Error).message}`;
  }
}

/** How {@link compareSystems} drives one system. */
export interface Comparison<F> {
  readonly nodes: number;
  readonly runs: number;
  /** Unmeasured work right after both systems are up (JIT, connection pools). */
  warmup(system: SystemName, workers: readonly Worker[], nextRound: () => number): Promise<void>;
  /** One measured run (it may start with unmeasured rounds of its own). */
  measure(system: SystemName, workers: readonly Worker[], nextRound: () => number): Promise<F>;
  /** One line for the progress log. */
  describe(figures: F): string;
  /** Called once per system after the warm-ups, and once after the last run (e.g. profiling). */
  beforeRuns?(system: SystemName, workers: readonly Worker[]): Promise<void>;
  afterRuns?(system: SystemName, workers: readonly Worker[]): Promise<void>;
}

/**
 * Starts both systems, warms both up, then measures each `runs` times, alternating (ABBA) so
 * that neither always runs on a hotter machine; stops everything, whatever happens.
 */
export async function compareSystems<F>(
  c: Comparison<F>,
  log: (line: string) => void,
): Promise<Map<SystemName, F[]>> {
  const clusters = new Map<SystemName, Worker[]>();
  const figures = new Map<SystemName, F[]>(SYSTEMS.map((sys) => [sys.name, []]));
  let roundNo = 0;
  const nextRound = (): number => ++roundNo;
  try {
    for (const sys of SYSTEMS) {
      const started = performance.now();
      clusters.set(sys.name, await startSystem(sys, c.nodes));
      const secs = ((performance.now() - started) / 1000).toFixed(1);
      log(`${sys.name}: ${c.nodes} nodes up and joined in ${secs} s`);
    }
    for (const sys of SYSTEMS) await c.warmup(sys.name, clusters.get(sys.name)!, nextRound);
    log('warmed up');
    for (const sys of SYSTEMS) await c.beforeRuns?.(sys.name, clusters.get(sys.name)!);
    for (let run = 1; run <= c.runs; run++) {
      const order = run % 2 === 1 ? SYSTEMS : [...SYSTEMS].reverse();
      for (const sys of order) {
        const f = await c.measure(sys.name, clusters.get(sys.name)!, nextRound);
        figures.get(sys.name)!.push(f);
        log(`run ${run}/${c.runs} ${sys.name.padEnd(8)} ${c.describe(f)}`);
      }
    }
    for (const sys of SYSTEMS) await c.afterRuns?.(sys.name, clusters.get(sys.name)!);
  } finally {
    await Promise.all([...clusters.values()].map((w) => Promise.all(w.map((x) => x.stop()))));
  }
  return figures;
}

/**
 * The `--profile DIR` hooks of a {@link Comparison}: worker `i` of each system is CPU-profiled
 * during the measured runs and written to `DIR/<system>-<scenario><suffixes[i]>.cpuprofile`.
 * Without a directory, no hooks. Creates the directory.
 */
export async function profileHooks(
  dir: unknown,
  scenario: string,
  suffixes: readonly string[],
  log: (line: string) => void,
): Promise<Pick<Comparison<unknown>, 'beforeRuns' | 'afterRuns'>> {
  if (typeof dir !== 'string') return {};
  const where = resolve(dir);
  await mkdir(where, { recursive: true });
  return {
    async beforeRuns(_system, workers) {
      await Promise.all(suffixes.map((_, i) => workers[i]!.call('profile', {})));
    },
    async afterRuns(system, workers) {
      await Promise.all(
        suffixes.map((suffix, i) =>
          workers[i]!.call('profile', { file: join(where, `${system}-${scenario}${suffix}.cpuprofile`) }),
        ),
      );
      log(`profiles of ${system} written to ${where}`);
    },
  };
}
