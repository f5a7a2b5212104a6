/**
 * What a settled network costs at rest, counted by the memory transport (requests, not time): a
 * regression that sends more than SWIM needs shows up here.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LAN, pushPullInterval } from '../../src/membership/timings.js';
import { MessageType } from '../../src/protocol/schema.js';
import { simNetworkFor } from './network.js';

const NAMES = new Map<number, string>(Object.entries(MessageType).map(([k, v]) => [v, k]));

test('at rest, a node sends one probe a probe period, one sync and one log summary a push-pull period, and nothing else (12 nodes, LAN timings)', async (t) => {
  const sim = simNetworkFor(t);
  const n = 12;
  for (let i = 0; i < n; i++) await sim.add();
  await sim.joinThroughFirst();
  assert.ok(await sim.fullViews(60_000, 250), 'every view full');
  // Let the news of the joins run out: each update is gossiped a bounded number of times.
  await sim.clock.advance(30_000);
  const periods = 60;
  const sent = sim.network.stats.sent;
  const before = new Map([...sent].map(([from, m]) => [from, new Map(m)]));
  await sim.clock.advance(periods * LAN.probeIntervalMs);
  const syncBudget = Math.ceil((periods * LAN.probeIntervalMs) / pushPullInterval(LAN, n)) + 1;
  for (const node of sim.nodes) {
    const from = `${node.self.address}:${node.self.port}`;
    const counts: Record<string, number> = {};
    for (const [type, count] of sent.get(from) ?? []) {
      const d = count - (before.get(from)?.get(type) ?? 0);
      if (d > 0) counts[NAMES.get(type) ?? String(type)] = d;
    }
    const { Ping = 0, Sync = 0, LogSummary = 0, ...rest } = counts;
    // One probe per period at most (the first may come a period late: its start is jittered).
    assert.ok(Ping <= periods && Ping >= periods - 2, `${from}: ${Ping} probes in ${periods} periods`);
    assert.ok(Sync <= syncBudget, `${from}: ${Sync} syncs, budget ${syncBudget}`);
    // The history repair: one log summary a push-pull period, and no fetch when nothing is missing.
    // The repair timer is jittered ±25% around the push-pull period.
    const repairBudget = Math.ceil((periods * LAN.probeIntervalMs) / (0.75 * LAN.pushPullIntervalMs)) + 1;
    assert.ok(LogSummary <= repairBudget, `${from}: ${LogSummary} log summaries, budget ${repairBudget}`);
    // No gossip without news, no indirect probe without a failure, nothing else.
    assert.deepEqual(rest, {}, `${from}: sent ${JSON.stringify(counts)}`);
  }
});
