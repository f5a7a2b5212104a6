/**
 * A slow consumer (issue 16, case 8), with a slow `message` listener, in real processes on
 * loopback: the slow member's listener busy-waits 5 ms per message (about 1% of what the
 * sender offers). The node calls its listener in slices and keeps answering its members; once
 * `inboxSize` messages wait for the listener, it refuses new batches (503 busy) until the
 * listener has caught up, and the sender keeps them queued and retries. So:
 * - the slow member gets every message, once, in order, and is never declared dead;
 * - what waits for its listener stays within `inboxSize` and a batch;
 * - it is reported: a warning line and `tsp2p_listener_behind_total`;
 * - the other member gets everything, in order, unaffected.
 */

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { memberEvents, spawnCluster, waitForViews } from '../helpers/cluster.js';
import type { PeerProcess } from '../helpers/spawn-peer.js';
import { waitFor } from '../helpers/wait.js';
import { sampleValue } from '../helpers/web-client.js';

const COUNT = 1_500;
const INBOX = 200;
/** Most messages one batch carries (`maxBatchMessages`): what may arrive on top of a full lane. */
const BATCH = 128;

async function metrics(p: PeerProcess): Promise<string> {
  const res = await fetch(`http://${p.address}/metrics`);
  return res.text();
}

test(`a 'message' listener at 5 ms a message, ${COUNT} messages: bounded, reported, nothing lost, the others unaffected`, async (t) => {
  const peers = await spawnCluster(
    t,
    3,
    { preset: 'lan', inboxSize: INBOX, maxBatchMessages: BATCH },
    { label: 'p' },
  );
  const [sender, slow, fast] = peers as [PeerProcess, PeerProcess, PeerProcess];
  await slow.connect(sender.address);
  await fast.connect(sender.address);
  await waitForViews(peers, { timeoutMs: 30_000, message: 'full views' });
  await slow.slowListener(5);

  let maxWaiting = 0;
  let watching = true;
  const watcher = (async () => {
    while (watching) {
      maxWaiting = Math.max(
        maxWaiting,
        sampleValue(await metrics(slow), 'tsp2p_listener_waiting_messages') ?? Number.NaN,
      );
      await new Promise((r) => setTimeout(r, 100));
    }
  })();

  const result = await sender.stream(COUNT, { window: 64 });
  const all = Array.from({ length: COUNT }, (_, i) => `m:${i}`);
  await waitFor(async () => (await fast.received()).length >= COUNT, {
    timeoutMs: 30_000,
    message: 'the fast member to get everything',
  });
  await waitFor(async () => (await slow.received()).length >= COUNT, {
    timeoutMs: 60_000,
    intervalMs: 500,
    message: 'the slow member to get everything',
  });
  watching = false;
  await watcher;

  assert.deepEqual(result.errors, []);
  assert.deepEqual(result.failed, [], 'nothing failed: the sender retried what the slow member refused');
  assert.deepEqual(await fast.received(), all, 'the other member got every message in order');
  assert.deepEqual(await slow.received(), all, 'the slow member got every message, once, in order');

  const text = await metrics(slow);
  const behind = sampleValue(text, 'tsp2p_listener_behind_total') ?? 0;
  const refused = sampleValue(text, 'tsp2p_requests_refused_total', { status: '503', reason: 'busy' });
  t.diagnostic(
    `listener fell behind ${behind} times; at most ${maxWaiting} messages waited for it; ${refused} batches refused busy`,
  );
  assert.ok(behind >= 1, 'the slow listener is counted');
  assert.ok(slow.stderr.includes("a 'message' listener is slower than the messages arriving"), 'and logged');
  assert.ok(maxWaiting <= INBOX + 2 * BATCH, `what waits for the listener stays bounded (${maxWaiting})`);
  for (const p of [sender, fast]) {
    assert.deepEqual(memberEvents(p, slow.self.id, 'member:fail'), [], `${p.label} never declared it dead`);
  }
});
