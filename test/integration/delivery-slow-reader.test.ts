/**
 * A slow consumer (issue 16, case 8), real HTTP on loopback: a member whose `messages()` reader
 * takes about 1% of what arrives. Its buffer stays at its bound (the oldest messages dropped),
 * it is reported at once (a warning line, `tsp2p_inbox_dropped_messages_total`), the sender's
 * queues stay within their bounds, and the other member gets everything, in order.
 */

import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Logger, Node } from '../../src/index.js';
import { startNode } from '../helpers/nodes.js';
import { waitFor } from '../helpers/wait.js';

const COUNT = 2_000;
const BUFFER = 100;

function sample(text: string, name: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  return line === undefined ? Number.NaN : Number(line.slice(name.length + 1));
}

async function metrics(node: Node): Promise<string> {
  const res = await fetch(new URL('metrics', node.url));
  return res.text();
}

test(`a messages() reader at 1% of ${COUNT} messages: bounded buffer, reported at once, the others unaffected`, async (t) => {
  const warnings: string[] = [];
  const logger: Logger = {
    debug() {},
    info() {},
    warn(message) {
      warnings.push(message);
    },
    error() {},
  };
  const a = await startNode(t, { maxQueueMessages: 256 });
  const slow = await startNode(t, { logger });
  const fast = await startNode(t);
  await slow.connect(a.self);
  await fast.connect(a.self);
  await waitFor(() => [a, slow, fast].every((n) => n.members().length === 2), { message: 'full views' });

  const ac = new AbortController();
  t.after(() => ac.abort());
  let slowRead = 0;
  const slowReader = (async () => {
    for await (const _ of slow.messages({ signal: ac.signal, bufferSize: BUFFER })) {
      slowRead++;
      await new Promise((r) => setTimeout(r, 50));
    }
  })();
  const fastGot: string[] = [];
  const fastReader = (async () => {
    for await (const m of fast.messages({ signal: ac.signal, bufferSize: COUNT })) fastGot.push(m.text);
  })();

  let maxBuffered = 0;
  let maxQueued = 0;
  let watching = true;
  const watcher = (async () => {
    while (watching) {
      maxBuffered = Math.max(maxBuffered, sample(await metrics(slow), 'tsp2p_inbox_buffered_messages'));
      maxQueued = Math.max(maxQueued, sample(await metrics(a), 'tsp2p_delivery_queue_messages'));
      await new Promise((r) => setTimeout(r, 50));
    }
  })();

  // The sender: as fast as the network takes it, 64 calls outstanding.
  let next = 0;
  const failed: string[] = [];
  await Promise.all(
    Array.from({ length: 64 }, async () => {
      while (next < COUNT) {
        const report = await a.broadcast(`m${next++}`);
        for (const f of report.failed) failed.push(f.error.message);
      }
    }),
  );
  await waitFor(() => fastGot.length === COUNT, {
    timeoutMs: 30_000,
    message: () => `fast got ${fastGot.length}`,
  });
  watching = false;
  await watcher;
  const slowMetrics = await metrics(slow);
  const dropped = sample(slowMetrics, 'tsp2p_inbox_dropped_messages_total');
  t.diagnostic(
    `slow reader read ${slowRead}, dropped ${dropped}, buffered at most ${maxBuffered}; sender queued at most ${maxQueued} messages`,
  );
  assert.deepEqual(failed, []);
  assert.deepEqual(
    fastGot,
    Array.from({ length: COUNT }, (_, i) => `m${i}`),
    'the other member got every message in order',
  );
  assert.ok(maxBuffered <= BUFFER, `buffered ${maxBuffered}`);
  assert.ok(dropped > 0, 'drops are counted');
  assert.ok(
    warnings.some((w) => w.startsWith('a messages() reader is slower')),
    `a warning line: ${warnings.join(' | ')}`,
  );
  assert.ok(maxQueued <= 2 * 256, `the sender's queues stay bounded (${maxQueued})`);
  ac.abort();
  await Promise.all([slowReader, fastReader]);
});
