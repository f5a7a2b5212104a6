/**
 * `join`: N nodes join at once, each through a random node started before it; the time until
 * every node holds all N-1 others alive. Each node is its own process unless `--per-process`
 * groups several in one. Each run starts fresh nodes in the same processes.
 *
 * @module
 */

import { availableParallelism, loadavg } from 'node:os';
import { intFlag } from './lib/args.js';
import { stopCluster } from './lib/cluster.js';
import {
  collectEvents,
  joinAtOnce,
  layout,
  type MemberWorker,
  presetFlag,
  SeededRandom,
  seedFlag,
  spawnMemberWorkers,
  spread,
  startNetwork,
} from './lib/members.js';
import type { Scenario } from './lib/scenario.js';
import { median, round } from './lib/stats.js';

const usage = `  --nodes N          nodes joining (default 10)
  --per-process K    nodes per process (default 1: each node its own process)
  --preset P         membership timings: local, lan or wan (default lan, the library's default;
                     local probes every 200 ms, more than 50 processes on 2 cores can answer)
  --runs R           runs, each with fresh nodes (default 3)
  --seed S           seed of the entry-point choice (default random; printed)
  --view-timeout S   seconds a run may take to reach full views before it fails (default 60)
  --deadline S       kill everything and exit 1 after S seconds (default 300)`;

/** The figures of one run. */
interface JoinRun {
  /** From the connect() calls until every node held all the others alive, all at once. */
  readonly full_view_ms: number;
  /** Until the last node's view was full for the first time (it may have lost a member again). */
  readonly first_full_ms: number;
  /** The median node's time to its first full view. */
  readonly node_median_ms: number;
  /** Until the last connect() call returned. */
  readonly connect_ms: number;
  /** member:fail events during the run (nobody died, so each is a false failure). */
  readonly false_failures: number;
  /** member:suspect events during the run (each one refuted, or a false failure). */
  readonly suspicions: number;
}

export const join: Scenario = {
  name: 'join',
  summary: 'N nodes join at once through random entry points; time until every view is full',
  usage,
  flags: {
    nodes: { type: 'string', default: '10' },
    'per-process': { type: 'string', default: '1' },
    // The library's default. With local timings (probes every 200 ms, 100 ms to answer), 50
    // processes on one 2-core machine suspect each other faster than they refute: that measures
    // the machine, not a join.
    preset: { type: 'string', default: 'lan' },
    runs: { type: 'string', default: '3' },
    seed: { type: 'string', default: 'random' },
    'view-timeout': { type: 'string', default: '60' },
    deadline: { type: 'string', default: '300' },
  },
  async run(values, log) {
    const n = intFlag(values, 'nodes', 2, 1000);
    const perProcess = intFlag(values, 'per-process', 1, 1000);
    const preset = presetFlag(values);
    const runs = intFlag(values, 'runs', 1, 100);
    const seed = seedFlag(values);
    const timeoutMs = intFlag(values, 'view-timeout', 1, 3600) * 1000;
    const counts = layout(n, perProcess);
    const loadBefore = loadavg();
    log(
      `join: ${n} nodes in ${counts.length} processes (${perProcess} per process), preset ${preset}, ` +
        `${runs} runs, seed ${seed}`,
    );
    const random = new SeededRandom(seed);
    const spawnStart = performance.now();
    let workers: MemberWorker[] = [];
    const perRun: JoinRun[] = [];
    try {
      workers = await spawnMemberWorkers('join', counts.length);
      log(`${counts.length} processes ready in ${((performance.now() - spawnStart) / 1000).toFixed(1)} s`);
      for (let run = 1; run <= runs; run++) {
        const nodes = await startNetwork(workers, counts, { preset });
        const times = await joinAtOnce(nodes, random, timeoutMs).catch(async (err: unknown) => {
          // Views that never fill: say whether the members were suspected and declared dead.
          const seen = await collectEvents(nodes).catch(() => []);
          const count = (event: string) => seen.filter((e) => e.event === event).length;
          if (err instanceof Error)
            err.message += `; meanwhile ${count('member:suspect')} suspicions, ${count('member:fail')} false failures`;
          throw err;
        });
        const events = await collectEvents(nodes);
        const firstFull = spread(times.firstFullMs);
        const figures: JoinRun = {
          full_view_ms: round(times.allFullMs, 1),
          first_full_ms: firstFull.max_ms,
          node_median_ms: firstFull.median_ms,
          connect_ms: round(times.connectMs, 1),
          false_failures: events.filter((e) => e.event === 'member:fail').length,
          suspicions: events.filter((e) => e.event === 'member:suspect').length,
        };
        perRun.push(figures);
        log(
          `run ${run}/${runs}: every view full after ${figures.full_view_ms} ms (each full once by ` +
            `${figures.first_full_ms} ms, median node ${figures.node_median_ms} ms; connect() calls ` +
            `done after ${figures.connect_ms} ms; ` +
            `${figures.false_failures} false failures, ${figures.suspicions} suspicions)`,
        );
        await Promise.all(workers.map((w) => w.call('stopNodes', {})));
      }
    } finally {
      await stopCluster(workers);
    }
    const mid = (pick: (r: JoinRun) => number): number => round(median(perRun.map(pick)), 1);
    return {
      scenario: 'join',
      nodes: n,
      processes: counts.length,
      nodes_per_process: perProcess,
      ...(perProcess > 1
        ? { note: `${n} nodes grouped ${perProcess} per process (${counts.length} processes), not one each` }
        : {}),
      preset,
      full_view_ms: mid((r) => r.full_view_ms),
      first_full_ms: mid((r) => r.first_full_ms),
      node_median_ms: mid((r) => r.node_median_ms),
      connect_ms: mid((r) => r.connect_ms),
      false_failures: perRun.reduce((a, r) => a + r.false_failures, 0),
      suspicions: perRun.reduce((a, r) => a + r.suspicions, 0),
      per_run: perRun,
      runs,
      seed,
      load: { before: loadBefore.map((l) => round(l)), after: loadavg().map((l) => round(l)) },
      node: process.version,
      cpus: availableParallelism(),
    };
  },
};
