/**
 * `sim-membership`: membership at scale in simulation, in this process: N nodes on the memory
 * transport with a manual clock and seeded randomness (as `test/sim/membership-scale.test.ts`),
 * LAN timings unless `--preset` says otherwise. Reports simulated times, probe periods and
 * gossip rounds to convergence, and the requests each node sends per probe period, by message
 * type: while joining, at rest, and while detecting the death of `--kill` percent of the nodes.
 *
 * It imports `src/` (like the simulation tests), so it needs no build.
 *
 * @module
 */

import { availableParallelism, loadavg } from 'node:os';
import { ManualClock } from '../src/clock.js';
import { PRESETS } from '../src/membership/timings.js';
import { Node } from '../src/node.js';
import { SeededRandom } from '../src/random.js';
import { MemoryNetwork } from '../src/transport/memory.js';
import { TappedTransport } from '../src/transport/tap.js';
import { intFlag } from './lib/args.js';
import { BenchError } from './lib/errors.js';
import { presetFlag, seedFlag } from './lib/members.js';
import type { Scenario } from './lib/scenario.js';
import { round } from './lib/stats.js';

const TYPE_NAMES: Record<number, string> = {
  0: 'connect',
  1: 'disconnect',
  2: 'broadcast',
  3: 'direct',
  4: 'ping',
  5: 'ping-req',
  6: 'sync',
  7: 'gossip',
  8: 'batch',
};

/** Requests and bytes sent, by message type, over the whole simulated network. */
class Counter {
  readonly requests = new Map<string, number>();
  bytes = 0;
  total = 0;

  count(body: Uint8Array): void {
    let type = 'unknown';
    try {
      const parsed = JSON.parse(Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString('utf8'));
      type = TYPE_NAMES[(parsed as { type: number }).type] ?? `type ${(parsed as { type: number }).type}`;
    } catch {
      // counted as unknown
    }
    this.requests.set(type, (this.requests.get(type) ?? 0) + 1);
    this.bytes += body.byteLength;
    this.total++;
  }

  snapshot(): { total: number; bytes: number; byType: Map<string, number> } {
    return { total: this.total, bytes: this.bytes, byType: new Map(this.requests) };
  }
}

const usage = `  --nodes N          simulated nodes (default 1000)
  --preset P         membership timings: lan, wan or local (default lan)
  --steady S         simulated seconds measured at rest after convergence (default 30)
  --kill P           percent of the nodes killed after that, 0 to skip (default 5)
  --seed S           seed of everything random (default random; printed)
  --deadline S       kill everything and exit 1 after S seconds (default 1800)

At 1,000 nodes it takes minutes and about 4 GB of heap: give it
NODE_OPTIONS=--max-old-space-size=6144.`;

export const simMembership: Scenario = {
  name: 'sim-membership',
  summary:
    'membership of N simulated nodes (memory transport, manual clock): convergence, traffic, detection',
  usage,
  flags: {
    nodes: { type: 'string', default: '1000' },
    preset: { type: 'string', default: 'lan' },
    steady: { type: 'string', default: '30' },
    kill: { type: 'string', default: '5' },
    seed: { type: 'string', default: 'random' },
    deadline: { type: 'string', default: '1800' },
  },
  async run(values, log) {
    const size = intFlag(values, 'nodes', 2, 100_000);
    const preset = presetFlag(values);
    const steadyMs = intFlag(values, 'steady', 1, 36_000) * 1000;
    const killPercent = intFlag(values, 'kill', 0, 50);
    const seed = seedFlag(values);
    const timings = PRESETS[preset];
    const period = timings.probeIntervalMs;
    const loadBefore = loadavg();
    const wallStart = performance.now();
    log(`sim-membership: ${size} nodes, preset ${preset}, seed ${seed}`);

    const clock = new ManualClock(0);
    const random = new SeededRandom(seed);
    const network = new MemoryNetwork({ clock, random, latencyMs: { min: 1, max: 5 } });
    const counter = new Counter();
    const nodes: Node[] = [];
    const fails = new Map<Node, Set<string>>();
    for (let i = 0; i < size; i++) {
      const node = new Node({
        host: '10.0.0.1',
        preset,
        clock,
        random,
        transport: new TappedTransport(network.transport(), (body) => counter.count(body)),
        identity: random.bytes(32),
      });
      const failed = new Set<string>();
      fails.set(node, failed);
      node.on('member:fail', (p) => failed.add(p.id));
      nodes.push(node);
    }
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
    await settle(Promise.all(nodes.map((n) => n.start())), 60_000);
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

    await clock.advance(steadyMs);
    const atSteady = counter.snapshot();
    log(`${steadyMs / 1000} simulated s at rest`);

    let detection: object | undefined;
    if (killPercent > 0) {
      const victims = new Set<Node>();
      const count = Math.max(1, Math.ceil((size * killPercent) / 100));
      while (victims.size < count) victims.add(nodes[Math.floor(random.next() * size)]!);
      for (const v of victims) network.kill(`${v.self.address}:${v.self.port}`);
      const victimIds = new Set([...victims].map((v) => v.id));
      const survivors = nodes.filter((n) => !victims.has(n));
      const killStart = clock.now();
      const atKill = counter.snapshot();
      const detected = await clock.advanceUntil(
        () => survivors.every((n) => fails.get(n)!.size >= victimIds.size),
        900_000,
        250,
      );
      if (!detected)
        throw new BenchError(`not every victim declared dead within 900 simulated s (seed ${seed})`);
      const detectMs = clock.now() - killStart;
      const wrong = survivors.filter((n) => [...fails.get(n)!].some((id) => !victimIds.has(id))).length;
      detection = {
        killed: count,
        all_declared_dead_s: round(detectMs / 1000, 2),
        probe_periods: round(detectMs / period, 1),
        survivors_with_false_failures: wrong,
        ...per(atKill, counter.snapshot(), survivors.length, detectMs),
      };
      log(`every victim declared dead by every survivor after ${(detectMs / 1000).toFixed(1)} simulated s`);
    }

    return {
      scenario: 'sim-membership',
      nodes: size,
      preset,
      probe_interval_ms: period,
      gossip_interval_ms: timings.gossipIntervalMs,
      join: {
        converged_s: round(joinMs / 1000, 2),
        probe_periods: round(joinMs / period, 1),
        gossip_rounds: round(joinMs / timings.gossipIntervalMs, 1),
        identical_views: views.size === 1,
        requests_per_node: round((atConverged.total - atStart.total) / size, 1),
        ...per(atStart, atConverged, size, joinMs),
      },
      steady: { seconds: steadyMs / 1000, ...per(atConverged, atSteady, size, steadyMs) },
      detection,
      simulated_latency_ms: '1-5 one way',
      seed,
      wall_s: round((performance.now() - wallStart) / 1000, 1),
      load: { before: loadBefore.map((l) => round(l)), after: loadavg().map((l) => round(l)) },
      node: process.version,
      cpus: availableParallelism(),
    };
  },
};
