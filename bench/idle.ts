/**
 * `idle`: the memory of one idle node in a network of `--members` nodes. The measured node has
 * a process of its own (plain `node` running `dist/`, as an application would); the others share
 * a few processes (`--per-process` nodes each). Everyone joins at once; once every view is full
 * and the network has settled, the measured process's RSS is sampled once a second.
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
  startNetwork,
} from './lib/members.js';
import type { MemoryRecord } from './lib/protocol.js';
import type { Scenario } from './lib/scenario.js';
import { median, round } from './lib/stats.js';

const usage = `  --members N        nodes in the network, the measured one included (default 100)
  --per-process K    nodes per process for the others (default 10)
  --preset P         membership timings: local, lan or wan (default lan, the library's default)
  --settle S         seconds to wait once every view is full, before sampling (default 10)
  --samples K        RSS samples, one a second (default 10)
  --seed S           seed of the entry points (default random; printed)
  --view-timeout S   seconds the join may take (default 120)
  --deadline S       kill everything and exit 1 after S seconds (default 300)`;

const MB = 1024 * 1024;

function mb(bytes: number): number {
  return round(bytes / MB, 1);
}

function memoryMb(m: MemoryRecord): Record<string, number> {
  return {
    rss_mb: mb(m.rss),
    heap_used_mb: mb(m.heapUsed),
    heap_total_mb: mb(m.heapTotal),
    external_mb: mb(m.external),
  };
}

export const idle: Scenario = {
  name: 'idle',
  summary: 'RSS of one idle node process in a settled network of N members',
  usage,
  flags: {
    members: { type: 'string', default: '100' },
    'per-process': { type: 'string', default: '10' },
    preset: { type: 'string', default: 'lan' },
    settle: { type: 'string', default: '10' },
    samples: { type: 'string', default: '10' },
    seed: { type: 'string', default: 'random' },
    'view-timeout': { type: 'string', default: '120' },
    deadline: { type: 'string', default: '300' },
  },
  async run(values, log) {
    const members = intFlag(values, 'members', 1, 2000);
    const perProcess = intFlag(values, 'per-process', 1, 1000);
    const preset = presetFlag(values);
    const settleMs = intFlag(values, 'settle', 0, 3600) * 1000;
    const samples = intFlag(values, 'samples', 1, 3600);
    const seed = seedFlag(values);
    const viewTimeoutMs = intFlag(values, 'view-timeout', 1, 3600) * 1000;
    const others = layout(members - 1, perProcess);
    const loadBefore = loadavg();
    log(
      `idle: 1 measured node + ${members - 1} others in ${others.length} processes, preset ${preset}, ` +
        `seed ${seed}`,
    );
    const random = new SeededRandom(seed);
    let workers: MemberWorker[] = [];
    try {
      const [measured] = await spawnMemberWorkers('measured', 1, ['--expose-gc']);
      workers = [measured!, ...(await spawnMemberWorkers('others', others.length, [], 1))];
      const empty = await measured!.call('memory', { gc: true });
      const nodes = await startNetwork(workers, [1, ...others], { preset });
      const alone = await measured!.call('memory', { gc: true });
      const joined = await joinAtOnce(nodes, random, viewTimeoutMs);
      log(`every view full after ${Math.round(joined.allFullMs)} ms; settling ${settleMs / 1000} s`);
      await new Promise((r) => setTimeout(r, settleMs));
      const sampled: MemoryRecord[] = [];
      for (let i = 0; i < samples; i++) {
        sampled.push(await measured!.call('memory', { gc: false }));
        if (i < samples - 1) await new Promise((r) => setTimeout(r, 1000));
      }
      const collected = await measured!.call('memory', { gc: true });
      const progress = await measured!.call('progress', {});
      const othersMemory = await Promise.all(workers.slice(1).map((w) => w.call('memory', { gc: false })));
      const events = await collectEvents(nodes);
      const first = sampled[0]!;
      const last = sampled[sampled.length - 1]!;
      const rss = sampled.map((m) => m.rss);
      const report = {
        scenario: 'idle',
        members,
        preset,
        measured_process: 'plain node, dist/, one node',
        rss_mb: mb(median(rss)),
        rss_max_mb: mb(Math.max(...rss)),
        heap_used_mb: mb(median(sampled.map((m) => m.heapUsed))),
        after_gc: memoryMb(collected),
        before_start: memoryMb(empty),
        alone: memoryMb(alone),
        alive_members_seen: progress.alive[0],
        idle_cpu_percent: round(((last.cpuMs - first.cpuMs) / Math.max(1, (samples - 1) * 1000)) * 100, 2),
        others: {
          processes: others.length,
          nodes_per_process: perProcess,
          rss_mb_median: mb(median(othersMemory.map((m) => m.rss))),
        },
        false_failures: events.filter((e) => e.event === 'member:fail').length,
        suspicions: events.filter((e) => e.event === 'member:suspect').length,
        full_view_ms: round(joined.allFullMs, 1),
        settle_s: settleMs / 1000,
        samples,
        seed,
        load: { before: loadBefore.map((l) => round(l)), after: loadavg().map((l) => round(l)) },
        node: process.version,
        cpus: availableParallelism(),
      };
      log(
        `measured process: RSS ${report.rss_mb} MB (max ${report.rss_max_mb}; after a full GC ` +
          `${report.after_gc.rss_mb}), heap used ${report.heap_used_mb} MB; alone ${report.alone.rss_mb} MB, ` +
          `before start ${report.before_start.rss_mb} MB`,
      );
      return report;
    } finally {
      await stopCluster(workers);
    }
  },
};
