/**
 * A CPU-starved node (issue 16, case 1), real processes on 127.0.0.1: one node's event loop is
 * blocked for 2-5 s, four times, while the others broadcast. Its timers all fire late after each
 * block, so its own probes look failed; a starved memberlist node declares healthy ones dead.
 * Here:
 * - no healthy node is declared dead, by anyone;
 * - the starved node's Lifeguard health score rises (it had to refute suspicions of itself,
 *   `tsp2p_self_refutations_total`, and `tsp2p_local_health_awareness` goes above 0);
 * - the suspicions raised are counted and reported.
 */

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { spawnCluster, waitForViews } from '../helpers/cluster.js';
import type { PeerProcess } from '../helpers/spawn-peer.js';

const BLOCKS_MS = [3_000, 2_000, 4_000, 5_000];

/** One sample of a Prometheus text, or undefined. */
function sample(text: string, name: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  return line === undefined ? undefined : Number(line.slice(name.length + 1));
}

async function metrics(peer: PeerProcess): Promise<string> {
  const res = await fetch(`http://${peer.address}/metrics`, { signal: AbortSignal.timeout(10_000) });
  return res.text();
}

test(`a node starved for ${BLOCKS_MS.map((ms) => ms / 1000).join(', ')} s while traffic flows: no healthy node declared dead, its health score rises`, async (t) => {
  const peers = await spawnCluster(t, 4, { preset: 'lan' });
  for (const p of peers.slice(1)) await p.connect(peers[0]!.address);
  await waitForViews(peers, { timeoutMs: 30_000, message: 'full views' });
  const starved = peers[3]!;
  const healthy = peers.slice(0, 3);
  const label = (id: string | undefined): string => peers.find((p) => p.self.id === id)?.label ?? String(id);

  // Traffic: two healthy nodes broadcast, 20 messages a second each.
  let sending = true;
  let sent = 0;
  const senders = healthy.slice(0, 2).map(async (p, k) => {
    while (sending) {
      await p.broadcast(`m${k}-${sent++}`).catch(() => undefined);
      await new Promise((r) => setTimeout(r, 50));
    }
  });
  // The starved node's health, sampled while it runs (a request sent during a block is answered
  // after it).
  let awareness = 0;
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      const text = await metrics(starved).catch(() => '');
      awareness = Math.max(awareness, sample(text, 'tsp2p_local_health_awareness') ?? 0);
      await new Promise((r) => setTimeout(r, 200));
    }
  })();

  for (const ms of BLOCKS_MS) {
    await starved.block(ms);
    await new Promise((r) => setTimeout(r, 3_000));
  }
  sending = false;
  await Promise.all(senders);
  // Settle: refutations and the last suspicions' timeouts (LAN: at least 5 s) play out.
  await new Promise((r) => setTimeout(r, 6_000));
  sampling = false;
  await sampler;

  const events = (kind: string) =>
    peers.flatMap((p) =>
      p.events.filter((e) => e.event === kind).map((e) => `${p.label} ${kind} ${label(e.peer?.id)}`),
    );
  const fails = events('member:fail');
  const suspicions = events('member:suspect');
  const final = await metrics(starved);
  const refuted = sample(final, 'tsp2p_self_refutations_total') ?? 0;
  // Sampled, the score can be back at 0 each time (the next answered probe lowers it): the
  // counter of its rises says whether it rose at all.
  const raised = sample(final, 'tsp2p_local_health_raised_total') ?? 0;
  t.diagnostic(
    `${sent} broadcasts; ${suspicions.length} suspicions (${suspicions.filter((s) => s.endsWith(starved.label)).length} of the starved node); ${fails.length} declared dead; the starved node refuted ${refuted} times, its health score rose ${raised} times, sampled up to ${awareness}`,
  );
  assert.deepEqual(
    fails.filter((f) => !f.endsWith(` ${starved.label}`)),
    [],
    'no healthy node is declared dead',
  );
  assert.ok(refuted >= 1, 'the starved node was suspected and refuted it');
  assert.ok(raised >= 1, `its health score rose (${raised} rises; sampled up to ${awareness})`);
  await waitForViews(peers, { timeoutMs: 30_000, message: 'full views again' });
});
