/**
 * `failure`: N nodes, each its own process, join and settle; then one (not node 0) is killed
 * with SIGKILL, and the scenario times how long until every survivor reports `member:fail` for
 * it. Every other `member:fail` during the run is a false failure. Each run starts fresh nodes,
 * and a fresh process replaces the one killed.
 *
 * @module
 */

import { availableParallelism, loadavg } from 'node:os';
import { intFlag } from './lib/args.js';
import { stopCluster } from './lib/cluster.js';
import { BenchError } from './lib/errors.js';
import {
  collectEvents,
  joinAtOnce,
  type MemberWorker,
  type NetworkEvent,
  type NodeRef,
  presetFlag,
  SeededRandom,
  seedFlag,
  spawnMemberWorkers,
  spread,
  startNetwork,
} from './lib/members.js';
import { wallNow } from './lib/payload.js';
import type { Scenario } from './lib/scenario.js';
import { median, round } from './lib/stats.js';

const usage = `  --nodes N          nodes, one process each (default 10)
  --preset P         membership timings: local, lan or wan (default local)
  --runs R           runs, each with fresh nodes and one kill (default 3)
  --settle S         seconds between full views and the kill (default 3)
  --seed S           seed of the entry points and of the victim (default random; printed)
  --view-timeout S   seconds the join may take (default 60)
  --detect-timeout S seconds the detection may take before the run fails (default 120)
  --deadline S       kill everything and exit 1 after S seconds (default 300)`;

/** The figures of one run. */
interface FailureRun {
  /** The node killed (its index; node 0 was the first entry point). */
  readonly victim: number;
  /** From the SIGKILL until the first survivor suspected it. */
  readonly first_suspect_ms: number;
  /** From the SIGKILL until the first, the median and the last survivor reported member:fail. */
  readonly first_fail_ms: number;
  readonly median_fail_ms: number;
  readonly all_failed_ms: number;
  /** member:fail events about live nodes, from the join to the end of the run. */
  readonly false_failures: number;
  /** member:suspect events about live nodes over the same time. */
  readonly false_suspicions: number;
}

export const failure: Scenario = {
  name: 'failure',
  summary: 'SIGKILL one of N nodes; time until every survivor reports member:fail, false failures',
  usage,
  flags: {
    nodes: { type: 'string', default: '10' },
    preset: { type: 'string', default: 'local' },
    runs: { type: 'string', default: '3' },
    settle: { type: 'string', default: '3' },
    seed: { type: 'string', default: 'random' },
    'view-timeout': { type: 'string', default: '60' },
    'detect-timeout': { type: 'string', default: '120' },
    deadline: { type: 'string', default: '300' },
  },
  async run(values, log) {
    const n = intFlag(values, 'nodes', 3, 500);
    const preset = presetFlag(values);
    const runs = intFlag(values, 'runs', 1, 100);
    const settleMs = intFlag(values, 'settle', 0, 3600) * 1000;
    const seed = seedFlag(values);
    const viewTimeoutMs = intFlag(values, 'view-timeout', 1, 3600) * 1000;
    const detectTimeoutMs = intFlag(values, 'detect-timeout', 1, 3600) * 1000;
    const counts = Array.from({ length: n }, () => 1);
    const loadBefore = loadavg();
    log(`failure: ${n} nodes, one process each, preset ${preset}, ${runs} runs, seed ${seed}`);
    const random = new SeededRandom(seed);
    let workers: MemberWorker[] = [];
    const perRun: FailureRun[] = [];
    try {
      workers = await spawnMemberWorkers('failure', n);
      for (let run = 1; run <= runs; run++) {
        const nodes = await startNetwork(workers, counts, { preset });
        const joined = await joinAtOnce(nodes, random, viewTimeoutMs);
        log(`run ${run}/${runs}: joined, every view full after ${Math.round(joined.allFullMs)} ms`);
        await new Promise((r) => setTimeout(r, settleMs));
        const victim = 1 + Math.floor(random.next() * (n - 1));
        const figures = await killAndWatch(nodes, victim, detectTimeoutMs);
        perRun.push(figures);
        log(
          `run ${run}/${runs}: node ${victim} killed; first suspected after ${figures.first_suspect_ms} ms, ` +
            `declared dead by every survivor after ${figures.all_failed_ms} ms (first ` +
            `${figures.first_fail_ms}, median ${figures.median_fail_ms}); ` +
            `${figures.false_failures} false failures, ${figures.false_suspicions} false suspicions`,
        );
        const survivors = workers.filter((_, i) => i !== victim);
        await Promise.all(survivors.map((w) => w.call('stopNodes', {})));
        if (run < runs) {
          const [fresh] = await spawnMemberWorkers('failure', 1, [], victim);
          workers[victim] = fresh!;
        }
      }
    } finally {
      await stopCluster(workers);
    }
    const mid = (pick: (r: FailureRun) => number): number => round(median(perRun.map(pick)), 1);
    return {
      scenario: 'failure',
      nodes: n,
      processes: n,
      preset,
      all_failed_ms: mid((r) => r.all_failed_ms),
      median_fail_ms: mid((r) => r.median_fail_ms),
      first_fail_ms: mid((r) => r.first_fail_ms),
      first_suspect_ms: mid((r) => r.first_suspect_ms),
      false_failures: perRun.reduce((a, r) => a + r.false_failures, 0),
      false_suspicions: perRun.reduce((a, r) => a + r.false_suspicions, 0),
      per_run: perRun,
      runs,
      settle_s: settleMs / 1000,
      seed,
      load: { before: loadBefore.map((l) => round(l)), after: loadavg().map((l) => round(l)) },
      node: process.version,
      cpus: availableParallelism(),
    };
  },
};

/** Kills node `victim`'s process and waits until every other node has declared it dead. */
async function killAndWatch(
  nodes: readonly NodeRef[],
  victim: number,
  timeoutMs: number,
): Promise<FailureRun> {
  const target = nodes[victim]!;
  const survivors = nodes.filter((_, i) => i !== victim);
  const killedAt = wallNow();
  await target.worker.kill('SIGKILL');
  const deadline = performance.now() + timeoutMs;
  let events: NetworkEvent[] = [];
  for (;;) {
    events = await collectEvents(survivors);
    const failed = new Set(
      events.filter((e) => e.event === 'member:fail' && e.peer === target.id).map((e) => e.observer),
    );
    if (failed.size === survivors.length) break;
    if (performance.now() > deadline) {
      throw new BenchError(
        `only ${failed.size} of ${survivors.length} survivors declared node ${victim} dead ` +
          `within ${timeoutMs / 1000} s of its SIGKILL`,
      );
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  const about = (kind: string): NetworkEvent[] =>
    events.filter((e) => e.event === kind && e.peer === target.id && e.at >= killedAt);
  // Each survivor's first member:fail about the victim (survivors index events by their own index).
  const firstFail = new Map<number, number>();
  for (const e of about('member:fail')) if (!firstFail.has(e.observer)) firstFail.set(e.observer, e.at);
  const fails = spread([...firstFail.values()].map((t) => t - killedAt));
  const suspects = about('member:suspect').map((e) => e.at - killedAt);
  const liveIds = new Set(survivors.map((s) => s.id));
  // A false alarm is about a live node, or about the victim before it was killed.
  const falseAbout = (kind: string): number =>
    events.filter(
      (e) => e.event === kind && (liveIds.has(e.peer) || (e.peer === target.id && e.at < killedAt)),
    ).length;
  return {
    victim,
    first_suspect_ms: round(suspects.length > 0 ? Math.min(...suspects) : Number.NaN, 1),
    first_fail_ms: fails.min_ms,
    median_fail_ms: fails.median_ms,
    all_failed_ms: fails.max_ms,
    false_failures: falseAbout('member:fail'),
    false_suspicions: falseAbout('member:suspect'),
  };
}
