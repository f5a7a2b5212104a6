/**
 * `sim-churn`: application messages under churn at scale (issue 16, case 7), in this process. N
 * simulated nodes (memory transport, manual clock, seeded randomness, LAN timings, 1-5 ms links)
 * carry chat traffic while a share of them a minute crash or leave and as many newcomers join;
 * then every check of `test/sim/churn-traffic.ts` runs: no application message lost or
 * delivered twice, none later than the bound, no membership update lost ("left" for a leave,
 * "failed" for a crash, and exactly the nodes that are up in every view).
 *
 * `npm test` runs the same code at 100 nodes (`test/sim/churn-traffic.test.ts`); at 1,000 nodes
 * it takes CPU minutes, so it is a benchmark. The nodes start from the converged view
 * (`--bootstrap view`, as `sim-membership`) or join one another (`--bootstrap join`).
 *
 * It imports `src/` and the simulation helpers of `test/sim/`, so it needs no build.
 *
 * @module
 */

import { loadavg } from 'node:os';
import { simulation } from '../src/node.js';
import { MessageType } from '../src/protocol/schema.js';
import { churnTraffic } from '../test/sim/churn-traffic.js';
import { SimNetwork } from '../test/sim/network.js';
import { intFlag } from './lib/args.js';
import { BenchError, UsageError } from './lib/errors.js';
import { seedFlag } from './lib/members.js';
import { phaseTimer } from './lib/phases.js';
import type { Scenario } from './lib/scenario.js';
import { round } from './lib/stats.js';

/** Message type number → its name (`MessageType.Ping` → `ping`). */
const TYPE_NAMES: Record<string, string> = Object.fromEntries(
  Object.entries(MessageType).map(([name, n]) => [
    String(n),
    name.replace(/[a-z][A-Z]/g, (x) => `${x[0]}-${x[1]}`).toLowerCase(),
  ]),
);

const usage = `  --nodes N          simulated nodes (default 1000)
  --minutes M        simulated minutes of churn and chat traffic (default 3)
  --churn F          fraction of the nodes replaced a minute, half crashing, half leaving
                     (default 0.02: 2%)
  --rate R           chat messages a second, the whole network together (default 1)
  --bound MS         the delivery bound checked, in simulated ms (default 5000)
  --bootstrap B      view: every node starts from the converged view; join: every node but
                     the first joins through the first (default view)
  --seed S           seed of everything random (default random; printed)
  --deadline S       kill everything and exit 1 after S seconds (default 3600)

At 1,000 nodes: NODE_OPTIONS=--max-old-space-size=6144 (about 1.5 GB of heap).`;

export const simChurn: Scenario = {
  name: 'sim-churn',
  summary: 'chat traffic under churn in N simulated nodes: nothing lost, late or doubled, no update lost',
  usage,
  flags: {
    nodes: { type: 'string', default: '1000' },
    minutes: { type: 'string', default: '3' },
    churn: { type: 'string', default: '0.02' },
    rate: { type: 'string', default: '1' },
    bound: { type: 'string', default: '5000' },
    bootstrap: { type: 'string', default: 'view' },
    seed: { type: 'string', default: 'random' },
    deadline: { type: 'string', default: '3600' },
  },
  async run(values, log) {
    const size = intFlag(values, 'nodes', 3, 5_000);
    const boundMs = intFlag(values, 'bound', 100, 600_000);
    const minutes = Number(values.minutes);
    if (!(minutes > 0 && minutes <= 600))
      throw new UsageError(`--minutes: from 0 to 600, got '${values.minutes}'`);
    const churn = Number(values.churn);
    if (!(churn >= 0 && churn <= 0.5))
      throw new UsageError(`--churn: a fraction from 0 to 0.5, got '${values.churn}'`);
    const rate = Number(values.rate);
    if (!(rate > 0 && rate <= 1000))
      throw new UsageError(`--rate: messages a second, above 0, got '${values.rate}'`);
    const bootstrap = String(values.bootstrap);
    if (bootstrap !== 'view' && bootstrap !== 'join')
      throw new UsageError(`--bootstrap: view or join, got '${bootstrap}'`);
    const seed = seedFlag(values);
    const loadBefore = loadavg();
    const timer = phaseTimer(log);
    const phaseDone = timer.done;
    log(
      `sim-churn: ${size} nodes, ${minutes} min, churn ${churn}/min, ${rate} msg/s, bootstrap ${bootstrap}, seed ${seed}`,
    );

    const sim = new SimNetwork(seed);
    for (let i = 0; i < size; i++) await sim.add({ preset: 'lan' });
    phaseDone('start');
    if (bootstrap === 'join') {
      await sim.joinThroughFirst();
    } else {
      const entries = sim.nodes.map((n) => simulation.selfUpdate(n));
      for (let i = 0; i < size; i++) {
        const changed = simulation.seedView(sim.nodes[i]!, entries);
        if (changed !== size - 1) throw new BenchError(`node ${i} took ${changed} of ${size - 1} entries`);
        if (i % 50 === 49) await new Promise((r) => setImmediate(r));
      }
    }
    if (!(await sim.fullViews(600_000, 250))) throw new BenchError(`no full views (seed ${seed})`);
    phaseDone('bootstrap');

    const report = await churnTraffic(
      sim,
      { minutes, churnPerMinute: churn, messagesPerSecond: rate, boundMs, settleMs: 60_000 },
      { preset: 'lan' },
    );
    phaseDone('churn');
    const requestTypes = Object.fromEntries(
      Object.entries(report.requestTypes).map(([k, v]) => [TYPE_NAMES[k] ?? k, v]),
    );
    log(
      `${report.sent} messages, ${report.checkedDeliveries} deliveries checked; ${report.crashes} crashes, ` +
        `${report.leaves} leaves, ${report.joins} joins; latency p50 ${report.p50Ms} / p99 ${report.p99Ms} / max ${report.maxMs} ms; ` +
        `${report.problems.length} problems`,
    );
    for (const p of report.problems.slice(0, 20)) log(`problem: ${p}`);
    const result = {
      scenario: 'sim-churn',
      nodes: size,
      seed,
      minutes,
      churn_per_minute: churn,
      messages_per_second: rate,
      bound_ms: boundMs,
      bootstrap,
      sent: report.sent,
      deliveries_checked: report.checkedDeliveries,
      crashes: report.crashes,
      leaves: report.leaves,
      joins: report.joins,
      latency_ms: { p50: report.p50Ms, p99: report.p99Ms, max: report.maxMs },
      requests_per_node_per_s: round(report.requests / size / (minutes * 60), 2),
      requests_by_type: requestTypes,
      problems: report.problems.length,
      first_problems: report.problems.slice(0, 20),
      phases: timer.phases,
      load: { before: loadBefore.map((x) => round(x, 1)), after: loadavg().map((x) => round(x, 1)) },
    };
    if (report.problems.length > 0) {
      log(JSON.stringify(result));
      throw new BenchError(`${report.problems.length} problems (seed ${seed}): ${report.problems[0]}`);
    }
    return result;
  },
};
