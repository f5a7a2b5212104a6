/**
 * Issue 16, case 7, at the size `npm test` can afford: 100 simulated nodes (LAN timings, 1-5 ms
 * links, Plumtree as a network above `gossipThreshold` has it) carry chat traffic (a message every
 * 2 s from a random node) while 6% of them a minute crash or leave and as many join (6 a minute:
 * 2% of 100 would be 2; 2% of 1,000 is 20). No application message is lost or late, no
 * membership update is lost: see `churn-traffic.ts`. `CHURN_N`, `CHURN_MIN`, `CHURN_RATE` and
 * `CHURN_PER_MIN` change the size, the minutes, the messages a second and the churn.
 */

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { churnTraffic } from './churn-traffic.js';
import { simNetworkFor } from './network.js';

const N = Number(process.env.CHURN_N ?? 100);

test(`${N} nodes, churn, chat traffic: nothing lost, nothing late`, async (t) => {
  const sim = simNetworkFor(t);
  // What a network above `gossipThreshold` uses (100 nodes are below it).
  const options = { preset: 'lan', dissemination: 'plumtree' } as const;
  for (let i = 0; i < N; i++) await sim.add(options);
  await sim.joinThroughFirst();
  assert.ok(await sim.fullViews(120_000, 100), `seed ${sim.seed}: the network converges`);
  const report = await churnTraffic(
    sim,
    {
      minutes: Number(process.env.CHURN_MIN ?? 1.5),
      churnPerMinute: Number(process.env.CHURN_PER_MIN ?? 0.06),
      messagesPerSecond: Number(process.env.CHURN_RATE ?? 0.5),
      boundMs: 5_000,
      settleMs: 60_000,
    },
    options,
  );
  t.diagnostic(
    `${report.sent} messages, ${report.checkedDeliveries} deliveries checked; ${report.crashes} crashes, ` +
      `${report.leaves} leaves, ${report.joins} joins; latency p50 ${report.p50Ms} / p99 ${report.p99Ms} / ` +
      `max ${report.maxMs} simulated ms; ${report.requests} requests ${JSON.stringify(report.requestTypes)}`,
  );
  assert.deepEqual(report.problems.slice(0, 20), [], `seed ${sim.seed}: ${report.problems.length} problems`);
});
