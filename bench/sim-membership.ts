/**
 * `sim-membership`: membership at scale in simulation, in this process: N nodes on the memory
 * transport with a manual clock and seeded randomness (as `test/sim/membership-scale.test.ts`),
 * LAN timings unless `--preset` says otherwise, `--latency` one way and `--loss` of requests.
 * Reports simulated times, probe periods and gossip rounds to convergence, and the requests
 * each node sends per probe period, by message type: while joining, at rest, while one more
 * node joins, and while detecting the death of `--kill` percent of the nodes (or `--victims`).
 *
 * The nodes join one another for real (`--bootstrap join`: every node but the first connects at
 * once through a random earlier one), or start from the converged view (`--bootstrap view`: each
 * node is given every node's signed entry, which its membership checks as gossip would bring it,
 * `simulation.seedView` in `src/node.ts`): 10,000 real joins would take hours of CPU.
 *
 * It imports `src/` (like the simulation tests), so it needs no build.
 *
 * @module
 */

import { availableParallelism, loadavg } from 'node:os';
import { getHeapStatistics, writeHeapSnapshot } from 'node:v8';
import { ManualClock } from '../src/clock.js';
import { PRESETS } from '../src/membership/timings.js';
import { Node, simulation } from '../src/node.js';
import { MessageType } from '../src/protocol/schema.js';
import { SeededRandom } from '../src/random.js';
import { MemoryNetwork } from '../src/transport/memory.js';
import { TappedTransport } from '../src/transport/tap.js';
import { intFlag, latencyFlag } from './lib/args.js';
import { BenchError, UsageError } from './lib/errors.js';
import { presetFlag, seedFlag } from './lib/members.js';
import { cpuSeconds, phaseTimer } from './lib/phases.js';
import type { Scenario } from './lib/scenario.js';
import { percentile, round } from './lib/stats.js';

/** A message type's name as the counts show it: `PingReq` → `ping-req`, `LogSummary` → `log-summary`. */
const TYPE_NAMES: Record<number, string> = Object.fromEntries(
  Object.entries(MessageType).map(([name, n]) => [n, name.replace(/(?<=.)([A-Z])/g, '-$1').toLowerCase()]),
);

const TYPE_FIELD = Buffer.from('"type":');

/**
 * Memory per member entry a node holds (V8 heap and typed arrays: the columns are outside the
 * heap, so this overstates the heap's share), and per node: 100 to 133 B per entry measured at
 * 2,000 and 1,000 nodes with the member table in columns, about 74 B at 10,000 by their fit
 * (BENCHMARKS.md, session 15; 192 to 223 B before), with a margin.
 */
const ENTRY_BYTES = 90;
const NODE_BYTES = 100 * 1024;

/** Requests and bytes sent, by message type, over the whole simulated network. */
class Counter {
  readonly requests = new Map<string, number>();
  bytes = 0;
  total = 0;

  count(body: Uint8Array): void {
    const type = typeOf(body);
    this.requests.set(type, (this.requests.get(type) ?? 0) + 1);
    this.bytes += body.byteLength;
    this.total++;
  }

  snapshot(): { total: number; bytes: number; byType: Map<string, number> } {
    return { total: this.total, bytes: this.bytes, byType: new Map(this.requests) };
  }
}

/** The envelope's message type, read off its `"type":N` field without parsing the body. */
function typeOf(body: Uint8Array): string {
  const buf = Buffer.from(body.buffer, body.byteOffset, body.byteLength);
  const at = buf.indexOf(TYPE_FIELD);
  if (at < 0) return 'unknown';
  let n = 0;
  let i = at + TYPE_FIELD.length;
  const start = i;
  while (i < buf.length && buf[i]! >= 48 && buf[i]! <= 57) n = n * 10 + buf[i++]! - 48;
  if (i === start) return 'unknown';
  return TYPE_NAMES[n] ?? `type ${n}`;
}

/**
 * The heap in use plus the memory of ArrayBuffers (typed arrays' contents live outside the V8
 * heap: the member table's and the store's columns), after a full collection when
 * `--expose-gc` gives one (else as it stands).
 */
function heapUsed(): number {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc !== undefined) {
    gc();
    gc();
  }
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
}

/** Seconds of CPU (user + system) this process has used. */
/** p50, p99 and the maximum of `values`, rounded. */
function spread(values: number[], digits = 2): { p50: number; p99: number; max: number; n: number } {
  const s = [...values].sort((a, b) => a - b);
  return {
    p50: round(percentile(s, 50), digits),
    p99: round(percentile(s, 99), digits),
    max: round(s[s.length - 1] ?? Number.NaN, digits),
    n: s.length,
  };
}

const usage = `  --nodes N          simulated nodes (default 1000)
  --bootstrap B      join: every node but the first connects at once through a random earlier
                     one; view: every node starts from the converged view (the signed entries
                     of all nodes, checked as gossip would bring them); auto: join below 2,000
                     nodes, view from 2,000 (default auto)
  --preset P         membership timings: lan, wan or local (default lan)
  --latency MIN-MAX  one-way latency of each request, uniform, in simulated ms (default 1-5)
  --loss P           fraction of requests lost once the views are full (default 0)
  --settle S         simulated seconds after convergence before the rest is measured (default 10)
  --steady S         simulated seconds measured at rest after that (default 30)
  --newcomer yes|no  one more node joins after the rest (default yes)
  --kill P           percent of the nodes killed after that, 0 to skip (default 5)
  --victims K        kill exactly K nodes instead (at 10,000 nodes 1% is 100 victims, hours of
                     CPU; 10 are enough to time the detection)
  --crash C          how they die: host (requests to them are lost: a host down, a cable cut)
                     or process (connections to them are refused: a crashed process on a live
                     host, detected in about a second), or both (the first half of the
                     victims host, the rest process; each kind timed apart) (default host)
  --seed S           seed of everything random (default random; printed)
  --deadline S       kill everything and exit 1 after S seconds (default 1800)
  --heap-snapshot F  with --bootstrap view: write a heap snapshot to file F once the views are
                     seeded (where a member entry's bytes go; a few hundred nodes are enough)

At 1,000 nodes it takes minutes and about 4 GB of heap: give it
NODE_OPTIONS=--max-old-space-size=6144. At 10,000 nodes see BENCHMARKS.md (heap, --expose-gc
for the memory per member entry, --deadline).`;

export const simMembership: Scenario = {
  name: 'sim-membership',
  summary:
    'membership of N simulated nodes (memory transport, manual clock): convergence, traffic, detection',
  usage,
  flags: {
    nodes: { type: 'string', default: '1000' },
    bootstrap: { type: 'string', default: 'auto' },
    preset: { type: 'string', default: 'lan' },
    latency: { type: 'string', default: '1-5' },
    loss: { type: 'string', default: '0' },
    settle: { type: 'string', default: '10' },
    steady: { type: 'string', default: '30' },
    crash: { type: 'string', default: 'host' },
    newcomer: { type: 'string', default: 'yes' },
    kill: { type: 'string', default: '5' },
    victims: { type: 'string', default: '' },
    seed: { type: 'string', default: 'random' },
    deadline: { type: 'string', default: '1800' },
    'heap-snapshot': { type: 'string', default: '' },
  },
  async run(values, log) {
    const size = intFlag(values, 'nodes', 2, 100_000);
    const preset = presetFlag(values);
    const settleMs = intFlag(values, 'settle', 0, 36_000) * 1000;
    const steadyMs = intFlag(values, 'steady', 1, 36_000) * 1000;
    const crash = String(values.crash);
    if (crash !== 'host' && crash !== 'process' && crash !== 'both')
      throw new UsageError(`--crash: host, process or both, got '${crash}'`);
    const killPercent = intFlag(values, 'kill', 0, 50);
    const victimCount =
      values.victims === '' ? undefined : intFlag(values, 'victims', 1, Math.floor(size / 2));
    const seed = seedFlag(values);
    const latency = latencyFlag(String(values.latency));
    const loss = Number(values.loss);
    if (!(loss >= 0 && loss < 1))
      throw new UsageError(`--loss must be a fraction from 0 to 1, got '${values.loss}'`);
    const bootstrapFlag = String(values.bootstrap);
    if (!['auto', 'join', 'view'].includes(bootstrapFlag))
      throw new UsageError(`--bootstrap: join, view or auto, got '${bootstrapFlag}'`);
    const bootstrap = bootstrapFlag === 'auto' ? (size < 2000 ? 'join' : 'view') : bootstrapFlag;
    const newcomerFlag = String(values.newcomer);
    if (newcomerFlag !== 'yes' && newcomerFlag !== 'no')
      throw new UsageError(`--newcomer: yes or no, got '${newcomerFlag}'`);
    const timings = PRESETS[preset];
    const period = timings.probeIntervalMs;
    const round_ = timings.gossipIntervalMs;
    const loadBefore = loadavg();
    const wallStart = performance.now();
    const cpuStart = cpuSeconds();
    const timer = phaseTimer(log);
    const phaseDone = timer.done;
    log(`sim-membership: ${size} nodes, bootstrap ${bootstrap}, preset ${preset}, seed ${seed}`);
    // Each node holds every other: N² member entries, ~74 B each at 10,000 (BENCHMARKS.md, session 15),
    // plus ~100 KB per node. Refuse at once what cannot fit rather than fail an hour in.
    const needed = size * (size - 1) * ENTRY_BYTES + size * NODE_BYTES;
    const limit = getHeapStatistics().heap_size_limit;
    if (needed > limit) {
      throw new BenchError(
        `${size} nodes need about ${(needed / 2 ** 30).toFixed(1)} GiB of heap (${ENTRY_BYTES} B per member entry, ${size}² entries); this process may use ${(limit / 2 ** 30).toFixed(1)} GiB (NODE_OPTIONS=--max-old-space-size)`,
      );
    }

    const clock = new ManualClock(0);
    const random = new SeededRandom(seed);
    const network = new MemoryNetwork({ clock, random, latencyMs: latency });
    const counter = new Counter();
    const nodes: Node[] = [];
    const makeNode = () =>
      new Node({
        host: '10.0.0.1',
        preset,
        clock,
        random,
        transport: new TappedTransport(network.transport(), (body) => counter.count(body)),
        identity: random.bytes(32),
      });
    for (let i = 0; i < size; i++) nodes.push(makeNode());
    const settle = async <T>(op: Promise<T>, maxMs: number): Promise<T> => {
      if (!(await clock.advanceUntilSettled(op, maxMs))) {
        throw new BenchError(`an operation did not settle within ${maxMs} simulated ms (seed ${seed})`);
      }
      return op;
    };
    const per = (
      from: ReturnType<Counter['snapshot']>,
      to: ReturnType<Counter['snapshot']>,
      nodeCount: number,
      ms: number,
    ) => {
      const periods = ms / period;
      const byType: Record<string, number> = {};
      for (const [type, n] of to.byType) {
        const d = n - (from.byType.get(type) ?? 0);
        if (d > 0) byType[type] = round(d / nodeCount / periods, 3);
      }
      return {
        requests_per_node_per_period: round((to.total - from.total) / nodeCount / periods, 3),
        bytes_per_node_per_s: Math.round((to.bytes - from.bytes) / nodeCount / (ms / 1000)),
        by_type: byType,
      };
    };

    // No node is stopped at the end: a graceful stop tells every member, N² requests in all
    // (enough to exhaust the heap at 1,000 nodes), and the timers are virtual: once this
    // resolves, nothing runs any more and the process exits.
    for (let i = 0; i < size; i += 500)
      await settle(Promise.all(nodes.slice(i, i + 500).map((n) => n.start())), 60_000);
    const heapStarted = heapUsed();
    phaseDone('start');
    let join: object;
    let memory: Record<string, unknown> | undefined;
    if (bootstrap === 'join') {
      // Every node but the first joins at the same instant, through a random node started before it.
      const joinStart = clock.now();
      const atStart = counter.snapshot();
      const joins = nodes
        .slice(1)
        .map((node, i) => node.connect(nodes[Math.floor(random.next() * (i + 1))]!.self));
      const reports = await settle(Promise.all(joins), 120_000);
      if (reports.some((r) => r.failed.length > 0)) log('warning: some connect() reports list failures');
      const converged = await clock.advanceUntil(
        () => nodes.every((n) => n.members().length === size - 1),
        600_000,
        250,
      );
      if (!converged) throw new BenchError(`no full views after 600 simulated s (seed ${seed})`);
      const joinMs = clock.now() - joinStart;
      const atConverged = counter.snapshot();
      const views = new Set(nodes.map((n) => [n.id, ...n.members().map((p) => p.id)].sort().join(',')));
      log(`converged after ${(joinMs / 1000).toFixed(1)} simulated s (${views.size} distinct views)`);
      join = {
        converged_s: round(joinMs / 1000, 2),
        probe_periods: round(joinMs / period, 1),
        gossip_rounds: round(joinMs / round_, 1),
        identical_views: views.size === 1,
        requests_per_node: round((atConverged.total - atStart.total) / size, 1),
        ...per(atStart, atConverged, size, joinMs),
      };
    } else {
      // Every node's signed entry, as it gossips it; each node checks them all (its own is news
      // about itself, which changes nothing). The same objects for every node: what a node keeps
      // of a member (its id, key, address and record signature) is shared by the process, as
      // it would be shared by nobody on a real network (each host holds its own copy).
      const entries = nodes.map((n) => simulation.selfUpdate(n));
      for (let i = 0; i < size; i++) {
        const changed = simulation.seedView(nodes[i]!, entries);
        if (changed !== size - 1) throw new BenchError(`node ${i} took ${changed} of ${size - 1} entries`);
        // The member events are emitted on the next ticks: let them out before they pile up.
        if (i % 50 === 49) await new Promise((r) => setImmediate(r));
        if (i % 1000 === 999) log(`${i + 1} views seeded, heap ${mb(process.memoryUsage().heapUsed)} MB`);
      }
      await new Promise((r) => setImmediate(r));
      const heapSeeded = heapUsed();
      const entriesHeld = size * (size - 1);
      memory = {
        heap_started_mb: mb(heapStarted),
        heap_seeded_mb: mb(heapSeeded),
        per_node_kb: round(heapStarted / size / 1024, 1),
        per_member_entry_bytes: Math.round((heapSeeded - heapStarted) / entriesHeld),
        measured_after_gc: (globalThis as { gc?: unknown }).gc !== undefined,
      };
      const snapshotFile = String(values['heap-snapshot']);
      if (snapshotFile !== '') log(`heap snapshot: ${writeHeapSnapshot(snapshotFile)}`);
      join = {
        bootstrap: 'view',
        skipped: 'the joins, their gossip and push-pulls: each node starts with every entry',
      };
    }
    phaseDone('bootstrap');
    network.setLoss(loss);

    const atSettle = counter.snapshot();
    await clock.advance(settleMs);
    if (memory !== undefined && settleMs > 0) {
      const heapSettled = heapUsed();
      Object.assign(memory, {
        heap_after_settle_mb: mb(heapSettled),
        per_member_entry_bytes_after_settle: Math.round((heapSettled - heapStarted) / (size * (size - 1))),
      });
    }
    const settled =
      settleMs > 0
        ? { seconds: settleMs / 1000, ...per(atSettle, counter.snapshot(), size, settleMs) }
        : undefined;
    const atRest = counter.snapshot();
    await clock.advance(steadyMs);
    const atSteady = counter.snapshot();
    log(`${steadyMs / 1000} simulated s at rest`);
    const steady = { seconds: steadyMs / 1000, ...per(atRest, atSteady, size, steadyMs) };
    phaseDone('steady');

    // One more node joins through a random one: how long until every node holds it alive.
    let newcomer: object | undefined;
    if (newcomerFlag === 'yes') {
      const fresh = makeNode();
      await settle(fresh.start(), 60_000);
      const holders = new Map<Node, number>();
      const joinStart = clock.now();
      for (const n of nodes) {
        n.on('member:join', (p) => {
          if (p.id === fresh.id && !holders.has(n)) holders.set(n, clock.now() - joinStart);
        });
      }
      const atJoin = counter.snapshot();
      const entry = nodes[Math.floor(random.next() * size)]!;
      await settle(fresh.connect(entry.self), 120_000);
      let fullAt: number | undefined;
      const all = await clock.advanceUntil(
        () => {
          if (fullAt === undefined && fresh.members().length === size) fullAt = clock.now() - joinStart;
          return holders.size === size && fullAt !== undefined;
        },
        600_000,
        100,
      );
      const ms = clock.now() - joinStart;
      const times = [...holders.values()];
      newcomer = {
        everyone_holds_it_s: all ? round(ms / 1000, 2) : `not within 600 s (${holders.size} of ${size})`,
        it_holds_everyone_s: fullAt === undefined ? undefined : round(fullAt / 1000, 2),
        per_node_s: spread(times.map((t) => t / 1000)),
        in_gossip_rounds: spread(
          times.map((t) => t / round_),
          1,
        ),
        ...per(atJoin, counter.snapshot(), size + 1, ms),
      };
      nodes.push(fresh);
      log(`a newcomer held by every node after ${(ms / 1000).toFixed(1)} simulated s`);
      phaseDone('newcomer');
    }

    let detection: object | undefined;
    if (victimCount !== undefined || killPercent > 0) {
      const n = nodes.length;
      const victims = new Set<Node>();
      const count = victimCount ?? Math.max(1, Math.ceil((n * killPercent) / 100));
      while (victims.size < count) victims.add(nodes[Math.floor(random.next() * n)]!);
      const victimIds = new Set([...victims].map((v) => v.id));
      // How each victim dies: with --crash both, the first half as a host, the rest as a process.
      const hostCount = crash === 'host' ? count : crash === 'process' ? 0 : Math.ceil(count / 2);
      const hostVictims = [...victims].slice(0, hostCount);
      const processVictims = [...victims].slice(hostCount);
      const kindOf = new Map<string, 'host' | 'process'>([
        ...hostVictims.map((v) => [v.id, 'host'] as const),
        ...processVictims.map((v) => [v.id, 'process'] as const),
      ]);
      const survivors = nodes.filter((x) => !victims.has(x));
      const killStart = clock.now();
      // Per victim: when it was first suspected and first declared dead, by anyone. Per survivor
      // and victim: when that survivor declared it dead.
      const firstSuspected = new Map<string, number>();
      const firstDead = new Map<string, number>();
      const declared: { readonly id: string; readonly t: number }[] = [];
      const allDeclared = new Map<Node, number>();
      const fails = new Map<Node, Set<string>>();
      let falseSuspicions = 0;
      const falseFailures = new Set<string>();
      for (const s of survivors) {
        const failed = new Set<string>();
        fails.set(s, failed);
        s.on('member:suspect', (p) => {
          if (!victimIds.has(p.id)) falseSuspicions++;
          else if (!firstSuspected.has(p.id)) firstSuspected.set(p.id, clock.now() - killStart);
        });
        s.on('member:fail', (p) => {
          const t = clock.now() - killStart;
          if (!victimIds.has(p.id)) {
            falseFailures.add(p.id);
            return;
          }
          if (!firstDead.has(p.id)) firstDead.set(p.id, t);
          if (failed.has(p.id)) return;
          failed.add(p.id);
          declared.push({ id: p.id, t });
          if (failed.size === victimIds.size) allDeclared.set(s, t);
        });
      }
      for (const v of processVictims) network.kill(`${v.self.address}:${v.self.port}`);
      // A host down: whatever is sent to a victim, and whatever it sends, is lost.
      if (hostVictims.length > 0)
        network.partition([
          [...survivors, ...processVictims].map((x) => `${x.self.address}:${x.self.port}`),
          ...hostVictims.map((v) => [`${v.self.address}:${v.self.port}`]),
        ]);
      const atKill = counter.snapshot();
      // A long phase at 10,000 nodes (hours of CPU): its progress every 10 simulated s.
      let shownAt = killStart;
      const detected = await clock.advanceUntil(
        () => {
          if (clock.now() - shownAt >= 10_000) {
            shownAt = clock.now();
            log(
              `${((shownAt - killStart) / 1000).toFixed(0)} simulated s after the kill: ${firstDead.size} of ${count} victims declared dead somewhere, ${declared.length} of ${survivors.length * count} declarations, ${allDeclared.size} survivors hold all (CPU ${round(cpuSeconds() - cpuStart, 0)} s)`,
            );
          }
          return allDeclared.size === survivors.length;
        },
        900_000,
        250,
      );
      if (!detected)
        throw new BenchError(
          `not every victim declared dead within 900 simulated s (${allDeclared.size} of ${survivors.length} survivors; seed ${seed})`,
        );
      const detectMs = clock.now() - killStart;
      // How far the death news travelled from its first declaration: in gossip rounds, a bound on
      // its hops (each hop takes at least one round at the sender, plus the latency).
      const spreadRounds = declared.map((d) => (d.t - firstDead.get(d.id)!) / round_);
      detection = {
        killed: count,
        crash,
        all_declared_dead_s: round(detectMs / 1000, 2),
        probe_periods: round(detectMs / period, 1),
        first_suspicion_s: spread([...firstSuspected.values()].map((t) => t / 1000)),
        first_declared_dead_s: spread([...firstDead.values()].map((t) => t / 1000)),
        declared_dead_s: spread(declared.map((d) => d.t / 1000)),
        survivor_declared_all_s: spread([...allDeclared.values()].map((t) => t / 1000)),
        death_news_rounds_after_first: spread(spreadRounds, 1),
        ...(crash === 'both'
          ? Object.fromEntries(
              (['host', 'process'] as const).map((kind) => {
                const mine = declared.filter((d) => kindOf.get(d.id) === kind);
                const firsts = [...firstDead].filter(([id]) => kindOf.get(id) === kind);
                return [
                  kind,
                  {
                    victims: kind === 'host' ? hostVictims.length : processVictims.length,
                    first_declared_dead_s: spread(firsts.map(([, t]) => t / 1000)),
                    declared_dead_s: spread(mine.map((d) => d.t / 1000)),
                  },
                ];
              }),
            )
          : {}),
        reach: round(declared.length / (survivors.length * count), 4),
        false_suspicions: falseSuspicions,
        false_failures: falseFailures.size,
        ...per(atKill, counter.snapshot(), survivors.length, detectMs),
      };
      log(`every victim declared dead by every survivor after ${(detectMs / 1000).toFixed(1)} simulated s`);
      phaseDone('detection');
    }

    return {
      scenario: 'sim-membership',
      nodes: size,
      bootstrap,
      preset,
      probe_interval_ms: period,
      gossip_interval_ms: round_,
      memory,
      join,
      settle: settled,
      steady,
      newcomer,
      detection,
      simulated_latency_ms: `${latency.min}-${latency.max} one way`,
      loss,
      seed,
      phases: timer.phases,
      wall_s: round((performance.now() - wallStart) / 1000, 1),
      cpu_s: round(cpuSeconds() - cpuStart, 1),
      peak_rss_mb: mb(process.resourceUsage().maxRSS * 1024),
      load: { before: loadBefore.map((l) => round(l)), after: loadavg().map((l) => round(l)) },
      node: process.version,
      cpus: availableParallelism(),
    };
  },
};

function mb(bytes: number): number {
  return Math.round(bytes / 1024 / 1024);
}
