/**
 * `idle`: what a settled network costs at rest. `--nodes` nodes (default 20), each in a process
 * of its own (plain `node` running `dist/`, as an application would; `--per-process K` packs the
 * others K to a process, and then only the one-node processes are measured). Everyone joins at
 * once; once every view is full and the network has settled, each process's CPU time and each
 * node's sent traffic (by message type, from its `/metrics`) are read at the start and the end of
 * a `--window` (default 30 s). Reported per idle node, as medians over the measured nodes:
 *
 * - CPU % of one core (process CPU time over the window);
 * - wake-ups per second: the main thread's voluntary context switches (from `/proc`), and every
 *   thread's (V8's and libuv's helpers too);
 * - requests and body bytes sent per second, by kind: probe (ping), indirect probe (ping-req),
 *   gossip, sync (push-pull and reconnect), other;
 * - RSS, and for the first node (run with `--expose-gc`) after a full collection.
 *
 * Next to them, what the protocol's formulas say it needs at rest (see `expected` in the report),
 * and the floor (`--floor`, on by default): bare `node:http` processes exchanging requests of the
 * same sizes at the same rate, in the same window (`worker-floor.ts`): what one HTTP round trip a
 * probe period costs on this machine with no tsp2p in it.
 *
 * @module
 */

import { availableParallelism, loadavg } from 'node:os';
import { LAN, LOCAL, pushPullInterval, WAN } from '../src/membership/timings.js';
import { intFlag } from './lib/args.js';
import { stopCluster, Worker } from './lib/cluster.js';
import { BenchError } from './lib/errors.js';
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
import { bundledScript } from './lib/plain.js';
import type { FloorCommands, MemoryRecord, TrafficRecord } from './lib/protocol.js';
import type { Scenario } from './lib/scenario.js';
import { median, round } from './lib/stats.js';

const usage = `  --nodes N          nodes in the network (default 20)
  --per-process K    nodes per process, but for the first node (default 1: a process each)
  --preset P         membership timings: local, lan or wan (default lan, the library's default)
  --settle S         seconds to wait once every view is full, before measuring (default 10)
  --window S         seconds of measurement (default 30)
  --request-cpu-us U CPU per request handled (either side) assumed by the expected figure (default 100)
  --floor yes|no     also run the floor beside the nodes (default yes): as many bare node:http
                     processes as measured nodes, exchanging requests of the nodes' sizes at SWIM's
                     rate at rest (worker-floor.ts); tsp2p's CPU is reported against theirs
  --seed S           seed of the entry points (default random; printed)
  --view-timeout S   seconds the join may take (default 120)
  --deadline S       kill everything and exit 1 after S seconds (default 400)`;

const MB = 1024 * 1024;
const PRESETS = { lan: LAN, wan: WAN, local: LOCAL } as const;

/** The kinds of request reported, and the message types each gathers. */
const KINDS = {
  probe: ['ping'],
  indirect_probe: ['ping_req'],
  gossip: ['gossip'],
  sync: ['sync'],
} as const;

function mb(bytes: number): number {
  return round(bytes / MB, 1);
}

function total(r: Readonly<Record<string, number>>, types?: readonly string[]): number {
  let n = 0;
  for (const [k, v] of Object.entries(r)) if (types === undefined || types.includes(k)) n += v;
  return n;
}

/** Per second over `seconds`, by kind (and `other`, `all`), of one node's counter deltas. */
function byKind(
  before: Readonly<Record<string, number>>,
  after: Readonly<Record<string, number>>,
  seconds: number,
): Record<string, number> {
  const delta: Record<string, number> = {};
  for (const [k, v] of Object.entries(after)) delta[k] = v - (before[k] ?? 0);
  const out: Record<string, number> = {};
  let known = 0;
  for (const [kind, types] of Object.entries(KINDS)) {
    const n = total(delta, types);
    known += n;
    out[kind] = n / seconds;
  }
  const all = total(delta);
  out.other = (all - known) / seconds;
  out.all = all / seconds;
  return out;
}

/** Mean body bytes of a probe and of a sync between two reads of the nodes' counters. */
function restSizes(
  before: readonly (readonly TrafficRecord[])[],
  after: readonly (readonly TrafficRecord[])[],
): { probe: number; sync: number } {
  const sum = { probeBytes: 0, probes: 0, syncBytes: 0, syncs: 0 };
  after.forEach((records, i) => {
    const [a, b] = [before[i]![0]!, records[0]!];
    sum.probeBytes += (b.bytes.ping ?? 0) - (a.bytes.ping ?? 0);
    sum.probes += (b.requests.ping ?? 0) - (a.requests.ping ?? 0);
    sum.syncBytes += (b.bytes.sync ?? 0) - (a.bytes.sync ?? 0);
    sum.syncs += (b.requests.sync ?? 0) - (a.requests.sync ?? 0);
  });
  const probe = sum.probes > 0 ? Math.round(sum.probeBytes / sum.probes) : 600;
  return { probe, sync: sum.syncs > 0 ? Math.round(sum.syncBytes / sum.syncs) : probe };
}

/** Starts `count` floor processes (`worker-floor.ts`), each exchanging with all the others. */
async function spawnFloor(
  count: number,
  rates: Omit<FloorCommands['run']['args'], 'peers'>,
): Promise<Worker<FloorCommands>[]> {
  const script = await bundledScript('worker-floor.ts');
  const workers = Array.from({ length: count }, (_, i) => new Worker<FloorCommands>(`floor#${i}`, script));
  await Promise.all(workers.map((w) => w.ready));
  const addresses = await Promise.all(workers.map(async (w) => (await w.call('start', {})).address));
  await Promise.all(
    workers.map((w, i) => w.call('run', { ...rates, peers: addresses.filter((_, j) => j !== i) })),
  );
  return workers;
}

function medians(rows: readonly Record<string, number>[], digits: number): Record<string, number> {
  const out: Record<string, number> = {};
  for (const k of Object.keys(rows[0] ?? {})) out[k] = round(median(rows.map((r) => r[k]!)), digits);
  return out;
}

export const idle: Scenario = {
  name: 'idle',
  summary: 'CPU, traffic by kind and RSS of idle node processes in a settled network of N nodes',
  usage,
  flags: {
    nodes: { type: 'string', default: '20' },
    'per-process': { type: 'string', default: '1' },
    preset: { type: 'string', default: 'lan' },
    settle: { type: 'string', default: '10' },
    window: { type: 'string', default: '30' },
    'request-cpu-us': { type: 'string', default: '100' },
    floor: { type: 'string', default: 'yes' },
    seed: { type: 'string', default: 'random' },
    'view-timeout': { type: 'string', default: '120' },
    deadline: { type: 'string', default: '400' },
  },
  async run(values, log) {
    const nodes = intFlag(values, 'nodes', 2, 2000);
    const perProcess = intFlag(values, 'per-process', 1, 1000);
    const preset = presetFlag(values);
    const settleMs = intFlag(values, 'settle', 0, 3600) * 1000;
    const windowS = intFlag(values, 'window', 1, 3600);
    const requestCpuUs = intFlag(values, 'request-cpu-us', 1, 100_000);
    const seed = seedFlag(values);
    const viewTimeoutMs = intFlag(values, 'view-timeout', 1, 3600) * 1000;
    const others = layout(nodes - 1, perProcess);
    if (values.floor !== 'yes' && values.floor !== 'no') throw new BenchError('--floor: yes or no');
    const withFloor = values.floor === 'yes';
    const counts = [1, ...others];
    const loadBefore = loadavg();
    log(`idle: ${nodes} nodes in ${counts.length} processes, preset ${preset}, seed ${seed}`);
    const random = new SeededRandom(seed);
    let workers: MemberWorker[] = [];
    let floor: Worker<FloorCommands>[] = [];
    try {
      const [first] = await spawnMemberWorkers('measured', 1, ['--expose-gc']);
      workers = [first!, ...(await spawnMemberWorkers('others', others.length, [], 1))];
      const empty = await first!.call('memory', { gc: true });
      const refs = await startNetwork(workers, counts, { preset });
      const alone = await first!.call('memory', { gc: true });
      const joined = await joinAtOnce(refs, random, viewTimeoutMs);
      log(`every view full after ${Math.round(joined.allFullMs)} ms; settling ${settleMs / 1000} s`);
      // One-node processes are the measured ones: their CPU time is one node's.
      const measured = workers.filter((_, i) => counts[i] === 1);
      const t = PRESETS[preset];
      const settled = await Promise.all(measured.map((w) => w.call('traffic', {})));
      await new Promise((r) => setTimeout(r, settleMs / 2));
      // The floor's requests are as large as the nodes' at rest (the first half of the settle).
      const halfway = await Promise.all(measured.map((w) => w.call('traffic', {})));
      const sizes = restSizes(settled, halfway);
      if (withFloor) {
        floor = await spawnFloor(measured.length, {
          probeMs: t.probeIntervalMs,
          timeoutMs: t.probeTimeoutMs,
          probeBytes: sizes.probe,
          syncMs: pushPullInterval(t, nodes),
          syncBytes: sizes.sync,
        });
      }
      await new Promise((r) => setTimeout(r, settleMs / 2));
      const eventsBefore = (await collectEvents(refs)).length;
      const t0 = await Promise.all(measured.map((w) => w.call('traffic', {})));
      const m0 = await Promise.all(measured.map((w) => w.call('memory', { gc: false })));
      const f0 = await Promise.all(floor.map((w) => w.call('memory', { gc: false })));
      const started = performance.now();
      await new Promise((r) => setTimeout(r, windowS * 1000));
      const m1 = await Promise.all(measured.map((w) => w.call('memory', { gc: false })));
      const f1 = await Promise.all(floor.map((w) => w.call('memory', { gc: false })));
      const seconds = (performance.now() - started) / 1000;
      const t1 = await Promise.all(measured.map((w) => w.call('traffic', {})));
      const collected = await first!.call('memory', { gc: true });
      const events = await collectEvents(refs);
      const cpu = m1.map((m, i) => ((m.cpuMs - m0[i]!.cpuMs) / (seconds * 1000)) * 100);
      const wakeups = m1.map((m, i) => (m.wakeups - m0[i]!.wakeups) / seconds);
      const allWakeups = m1.map((m, i) => (m.allWakeups - m0[i]!.allWakeups) / seconds);
      const pick = (t: readonly (readonly TrafficRecord[])[]) => t.map((r) => r[0]!);
      const [a, b] = [pick(t0), pick(t1)];
      const requests = b.map((r, i) => byKind(a[i]!.requests, r.requests, seconds));
      const bytes = b.map((r, i) => byKind(a[i]!.bytes, r.bytes, seconds));
      const floorCpu = f1.map((m, i) => ((m.cpuMs - f0[i]!.cpuMs) / (seconds * 1000)) * 100);
      const floorWakeups = f1.map((m, i) => (m.wakeups - f0[i]!.wakeups) / seconds);
      const probes = 1000 / t.probeIntervalMs;
      const syncs = 1000 / pushPullInterval(t, nodes);
      // At rest each node sends one probe a period and a sync a push-pull period, and receives as
      // many: each request is handled twice (sent, answered).
      const expectedRequests = probes + syncs;
      const expectedCpu = (2 * expectedRequests * requestCpuUs) / 1e4;
      const windowEvents = events.slice(eventsBefore);
      const report = {
        scenario: 'idle',
        nodes,
        processes: counts.length,
        measured_nodes: measured.length,
        preset,
        window_s: round(seconds, 1),
        cpu_percent: {
          median: round(median(cpu), 3),
          min: round(Math.min(...cpu), 3),
          max: round(Math.max(...cpu), 3),
        },
        // Bare node:http processes with the same requests at the same rate, in the same window.
        floor: withFloor
          ? {
              processes: floor.length,
              cpu_percent: round(median(floorCpu), 3),
              wakeups_per_s: round(median(floorWakeups), 2),
              rss_mb: mb(median(f1.map((m) => m.rss))),
              request_bytes: sizes,
              tsp2p_over_floor: round(median(cpu) / median(floorCpu), 2),
            }
          : null,
        // The main thread's wake-ups (voluntary context switches) per second, and every thread's.
        wakeups_per_s: round(median(wakeups), 2),
        all_threads_wakeups_per_s: round(median(allWakeups), 2),
        requests_per_s: medians(requests, 3),
        bytes_per_s: medians(bytes, 0),
        expected: {
          requests_per_s: { probe: probes, indirect_probe: 0, gossip: 0, sync: round(syncs, 3) },
          request_cpu_us: requestCpuUs,
          cpu_percent: round(expectedCpu, 3),
          formulas:
            'probe = 1 / probeInterval; sync = 1 / pushPullInterval(n); gossip and ping-req = 0 at rest; ' +
            'cpu = 2 × requests × request_cpu',
        },
        rss_mb: mb(median(m1.map((m: MemoryRecord) => m.rss))),
        rss_max_mb: mb(Math.max(...m1.map((m) => m.rss))),
        first_node: {
          rss_mb: mb(m1[0]!.rss),
          after_gc_rss_mb: mb(collected.rss),
          heap_used_mb: mb(collected.heapUsed),
          alone_rss_mb: mb(alone.rss),
          before_start_rss_mb: mb(empty.rss),
        },
        false_failures: events.filter((e) => e.event === 'member:fail').length,
        suspicions: events.filter((e) => e.event === 'member:suspect').length,
        window_events: windowEvents.length,
        full_view_ms: round(joined.allFullMs, 1),
        settle_s: settleMs / 1000,
        seed,
        load: { before: loadBefore.map((l) => round(l)), after: loadavg().map((l) => round(l)) },
        node: process.version,
        cpus: availableParallelism(),
      };
      log(
        `idle node: ${report.cpu_percent.median}% of a core (expected ${report.expected.cpu_percent}%), ` +
          `${report.wakeups_per_s} wake-ups/s, ${report.requests_per_s.all} requests/s sent, RSS ${report.rss_mb} MB` +
          (report.floor === null
            ? ''
            : `; bare node:http at the same rate: ${report.floor.cpu_percent}% (tsp2p ${report.floor.tsp2p_over_floor}x)`),
      );
      return report;
    } finally {
      await Promise.all([stopCluster(workers), stopCluster(floor)]);
    }
  },
};
