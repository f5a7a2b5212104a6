/**
 * Membership across real processes on 127.0.0.1: 20 nodes join at once, each through a random
 * node started before it, and every one of them reaches the full view.
 */

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SeededRandom } from '../../src/random.js';
import { spawnCluster, timeline, waitForViews } from '../helpers/cluster.js';
import { testSeed } from '../sim/network.js';

const COUNT = 20;

test(`${COUNT} processes joining at once through random entry points all reach the full view`, async (t) => {
  const seed = testSeed();
  t.diagnostic(`seed ${seed} (replay the entry points with TSP2P_SEED=${seed})`);
  const random = new SeededRandom(seed);
  const peers = await spawnCluster(t, COUNT, { preset: 'local', requestTimeoutMs: 5_000 });

  // Node i joins through a random node among 0..i-1: the joins form a tree, so the network is
  // connected, yet most entry points are themselves still joining when asked.
  const entries = peers.map((_, i) => (i === 0 ? -1 : Math.floor(random.next() * i)));
  t.diagnostic(`entry points: ${entries.slice(1).join(' ')}`);
  const t0 = Date.now();
  const started = performance.now();
  const reports = await Promise.allSettled(
    peers.slice(1).map((p, i) => p.connect(peers[entries[i + 1]!]!.address)),
  );
  const refused = reports
    .map((r, i) => (r.status === 'rejected' ? `${peers[i + 1]!.label}: ${(r.reason as Error).message}` : ''))
    .filter((x) => x !== '');
  assert.deepEqual(refused, [], `seed ${seed}: every connect() succeeds`);
  const connected = performance.now();

  try {
    await waitForViews(peers, {
      timeoutMs: 120_000,
      states: ['alive', 'suspect'],
      message: `every node to hold the ${COUNT - 1} others`,
    });
    const live = performance.now();
    await waitForViews(peers, {
      timeoutMs: 60_000,
      message: `every node to hold the ${COUNT - 1} others alive`,
    });
    const alive = performance.now();
    t.diagnostic(
      `connect() calls done in ${Math.round(connected - started)} ms; full view everywhere after ` +
        `${Math.round(live - started)} ms; all alive everywhere after ${Math.round(alive - started)} ms`,
    );
  } catch (err) {
    throw new Error(`seed ${seed}: ${(err as Error).message}`, { cause: err });
  }

  // Under a loaded machine, a node slow to answer may be declared dead by mistake; it refutes
  // and comes back (the views above are complete). Count such false deaths, as a diagnostic.
  const departures = peers.flatMap((p) =>
    p.events.filter((e) => e.event === 'member:fail' || e.event === 'member:leave').map((e) => ({ p, e })),
  );
  assert.deepEqual(
    departures.filter((d) => d.e.event === 'member:leave').map((d) => `${d.p.label} ${d.e.peer?.port}`),
    [],
    `seed ${seed}: nobody left`,
  );
  const victims = [...new Set(departures.map((d) => d.e.peer?.id))];
  const label = (id: string | undefined): string => peers.find((p) => p.self.id === id)?.label ?? String(id);
  t.diagnostic(
    `false deaths: ${departures.length} member:fail events, about ${victims.length} nodes` +
      victims
        .map((id) => ` ${label(id)} (by ${departures.filter((d) => d.e.peer?.id === id).length})`)
        .join(','),
  );
  // How late the nodes' event loops ran: false deaths go with a machine too busy to answer.
  const delays = await Promise.all(
    peers.map((p) => p.command<{ max: number; p99: number; mean: number }>('loopDelay')),
  );
  t.diagnostic(
    `event loop delay (ms), max/p99 per node: ${delays.map((d, i) => `${peers[i]!.label} ${d.max}/${d.p99}`).join(', ')}`,
  );
  // TSP2P_TIMELINE=1 prints every member event about them, in time order.
  if (process.env.TSP2P_TIMELINE === '1') {
    for (const id of victims) {
      t.diagnostic(`events about ${label(id)}:`);
      for (const line of timeline(peers, id, t0).split('\n')) t.diagnostic(`  ${line}`);
    }
  }
});
