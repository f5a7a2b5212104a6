/**
 * `catchup`: a node comes back after missing `--messages` messages and fetches them all.
 *
 * Each run, in a fresh temporary directory, with real processes, real HTTP on 127.0.0.1 and real
 * SQLite databases:
 *
 * 1. node A (the publisher), node C (another member, so that A has a network to publish to) and
 *    node B (the returning node) start, each in its own process with its own `dataDir`; C and
 *    then B join A;
 * 2. A broadcasts a few messages (`BEFORE`) that B receives: B has taken plain broadcasts
 *    before (a node that never held any message of a channel is a newcomer to it, which fetches
 *    only the newest `historyOnJoin` of them);
 * 3. B stops (a graceful stop: it leaves, and keeps its membership snapshot) and its process
 *    exits;
 * 4. A broadcasts `--messages` messages of `--size` bytes while B is away;
 * 5. B starts again in a new process from its `dataDir`, on its old port: it rejoins A by itself
 *    (from its snapshot) and catches up.
 *
 * Measured: from B's `start()` call until B has delivered every message it missed (each one is
 * in its log before it is delivered), and messages/s over that time; B's CPU over it; the
 * catch-up metrics. Medians of `--runs` runs.
 *
 * @module
 */

import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { intFlag } from './lib/args.js';
import { Worker } from './lib/cluster.js';
import { BenchError } from './lib/errors.js';
import { plainScript } from './lib/plain.js';
import type { HistoryCommands } from './lib/protocol.js';
import type { Scenario } from './lib/scenario.js';
import { median, round } from './lib/stats.js';

const usage = `  --messages N       messages B misses (default 100000)
  --size S           payload bytes (default 100)
  --runs R           runs, each on fresh databases (default 3)
  --window W         broadcasts in flight while A publishes (default 256)
  --round-timeout S  seconds B may take to catch up before the run fails (default 120)
  --profile DIR      write CPU profiles (node --cpu-prof) of both processes of the restart
                     to DIR (start-up included)
  --deadline S       kill everything and exit 1 after S seconds (default 1800)`;

/** Messages B receives before it goes away. */
const BEFORE = 10;

type HistoryWorker = Worker<HistoryCommands>;

/** The figures of one run. */
interface RunFigures {
  /** From B's `start()` call until it holds every message, ms. */
  readonly ms: number;
  readonly msgs_per_s: number;
  /** `start()` alone (opening the database, listening), ms. */
  readonly start_ms: number;
  /** Forking B's process until it could take commands (not part of `ms`), ms. */
  readonly spawn_ms: number;
  /** B's CPU time from its `start()` until it held everything, ms. */
  readonly cpu_ms: number;
  /** B's CPU time per message caught up, µs. */
  readonly cpu_us_per_msg: number;
  /** A's CPU time over the same span (serving), ms. */
  readonly server_cpu_ms: number;
  /** A's publishing rate while B was away (messages/s). */
  readonly publish_msgs_per_s: number;
  readonly batches: number;
  readonly refused: number;
}

export const catchup: Scenario = {
  name: 'catchup',
  summary: 'a node restarts from its dataDir after missing N messages; time until it holds them all',
  usage,
  flags: {
    messages: { type: 'string', default: '100000' },
    size: { type: 'string', default: '100' },
    runs: { type: 'string', default: '3' },
    window: { type: 'string', default: '256' },
    'round-timeout': { type: 'string', default: '120' },
    profile: { type: 'string' },
    deadline: { type: 'string', default: '1800' },
  },
  async run(values, log) {
    const count = intFlag(values, 'messages', 1, 10_000_000);
    const size = intFlag(values, 'size', 1, 1 << 20);
    const runs = intFlag(values, 'runs', 1, 100);
    const window = intFlag(values, 'window', 1, 100_000);
    const timeoutMs = intFlag(values, 'round-timeout', 1, 3600) * 1000;
    const profile = typeof values.profile === 'string' ? resolve(values.profile) : undefined;
    if (profile !== undefined) mkdirSync(profile, { recursive: true });
    const loadBefore = loadavg();
    log(`catchup: B misses ${count} messages of ${size} B, ${runs} runs`);
    const figures: RunFigures[] = [];
    for (let r = 1; r <= runs; r++) {
      const f = await runOnce(r, { count, size, window, timeoutMs, profile }, log);
      figures.push(f);
      log(
        `run ${r}/${runs}: ${f.ms} ms until B holds all ${count} (${f.msgs_per_s} msgs/s; start() ` +
          `${f.start_ms} ms; CPU: B ${f.cpu_ms} ms (${f.cpu_us_per_msg} µs/msg), A ${f.server_cpu_ms} ms; ` +
          `${f.batches} fetches; A published at ` +
          `${f.publish_msgs_per_s} msgs/s)`,
      );
    }
    const mid = (pick: (f: RunFigures) => number): number => median(figures.map(pick));
    return {
      scenario: 'catchup',
      messages: count,
      size,
      runs,
      ms: round(mid((f) => f.ms)),
      msgs_per_s: Math.round(mid((f) => f.msgs_per_s)),
      start_ms: round(mid((f) => f.start_ms)),
      cpu_ms: round(mid((f) => f.cpu_ms)),
      cpu_us_per_msg: round(
        mid((f) => f.cpu_us_per_msg),
        1,
      ),
      server_cpu_ms: round(mid((f) => f.server_cpu_ms)),
      publish_msgs_per_s: Math.round(mid((f) => f.publish_msgs_per_s)),
      goal_ms: 5000,
      per_run: figures,
      load: { before: loadBefore.map((l) => round(l)), after: loadavg().map((l) => round(l)) },
      node: process.version,
      cpus: availableParallelism(),
    };
  },
};

interface Settings {
  readonly count: number;
  readonly size: number;
  readonly window: number;
  readonly timeoutMs: number;
  readonly profile: string | undefined;
}

async function runOnce(run: number, s: Settings, log: (line: string) => void): Promise<RunFigures> {
  const dir = mkdtempSync(join(tmpdir(), 'tsp2p-bench-catchup-'));
  const script = plainScript('worker-history.ts');
  const prof = (who: string): string[] =>
    s.profile === undefined
      ? []
      : ['--cpu-prof', `--cpu-prof-dir=${s.profile}`, `--cpu-prof-name=catchup-${who}-run${run}.cpuprofile`];
  const workers: HistoryWorker[] = [];
  const spawn = (name: string, argv: string[] = []): HistoryWorker => {
    const w = new Worker<HistoryCommands>(name, script, argv);
    workers.push(w);
    return w;
  };
  try {
    const a = spawn(`A#${run}`, prof('A'));
    const c = spawn(`C#${run}`);
    const b = spawn(`B#${run}`);
    await Promise.all([a.ready, b.ready, c.ready]);
    const aStarted = await a.call('start', { dataDir: join(dir, 'a'), port: 0 });
    await c.call('start', { dataDir: join(dir, 'c'), port: 0 });
    await c.call('connect', { entry: aStarted.address });
    const bStarted = await b.call('start', { dataDir: join(dir, 'b'), port: 0 });
    await b.call('connect', { entry: aStarted.address });
    await a.call('publish', { count: BEFORE, size: s.size, window: 1 });
    await b.call('wait', { count: BEFORE });
    await b.stop();
    const published = await a.call('publish', { count: s.count, size: s.size, window: s.window });
    log(`  A published ${s.count} messages in ${round(published.ms)} ms while B was away`);

    const aCpu = await a.call('cpu', {});
    const forkedAt = performance.now();
    const back = spawn(`B'#${run}`, prof('B'));
    await back.ready;
    const spawnMs = performance.now() - forkedAt;
    await back.call('start', { dataDir: join(dir, 'b'), port: bStarted.port });
    const waited = back.call('wait', { count: s.count });
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        back
          .call('status', {})
          .then(
            (st) =>
              reject(
                new BenchError(
                  `catchup: B holds ${st.delivered} of ${s.count} after ${s.timeoutMs / 1000} s (${st.members} members)`,
                ),
              ),
            reject,
          );
      }, s.timeoutMs);
    });
    const done = await Promise.race([waited, timeout]).finally(() => clearTimeout(timer));
    const aCpuAfter = await a.call('cpu', {});
    if (done.late !== s.count) throw new BenchError(`catchup: ${done.late} of ${s.count} came late`);
    // Nothing twice: no more deliveries a moment later.
    await new Promise((r) => setTimeout(r, 200));
    const after = await back.call('status', {});
    if (after.delivered !== s.count)
      throw new BenchError(`catchup: B delivered ${after.delivered} messages, expected ${s.count}`);
    const ms = done.doneAt - done.startAt;
    const fetched = done.metrics['tsp2p_catchup_batches_total{direction="fetched"}'] ?? 0;
    return {
      ms: round(ms),
      msgs_per_s: Math.round((s.count / ms) * 1000),
      start_ms: round(done.startedAt - done.startAt),
      spawn_ms: round(spawnMs),
      cpu_ms: round(done.cpuMs),
      cpu_us_per_msg: round((done.cpuMs * 1000) / s.count, 1),
      server_cpu_ms: round(aCpuAfter.cpuMs - aCpu.cpuMs),
      publish_msgs_per_s: Math.round((s.count / published.ms) * 1000),
      batches: fetched,
      refused: done.metrics['tsp2p_catchup_messages_total{direction="refused"}'] ?? 0,
    };
  } finally {
    await Promise.all(workers.map((w) => w.stop()));
    rmSync(dir, { recursive: true, force: true });
  }
}
