/**
 * Delivery across real processes on 127.0.0.1: a receiver SIGSTOPped for 2 s in the middle of
 * a stream of 5,000 broadcasts, then SIGCONTed, still gets every message, in order, once; so
 * does the receiver that never stopped.
 */

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { PRESETS, suspicionBounds } from '../../src/membership/timings.js';
import { waitForViews } from '../helpers/cluster.js';
import { numberedTexts, sequenceProblem, waitStopped } from '../helpers/delivery-streams.js';
import { PeerProcess } from '../helpers/spawn-peer.js';
import { waitFor } from '../helpers/wait.js';

const COUNT = 5_000;
const STOP_MS = 2_000;
/** Pause the stream here to stop the receiver: the rest is sent while it is stopped. */
const PAUSE_AT = 2_500;
/** Most broadcast calls outstanding: the queue to the stopped receiver holds up to this many. */
const WINDOW = 1_000;

test('a receiver SIGSTOPped for 2 s mid-stream gets all 5,000 broadcasts, in order, once', async (t) => {
  // LAN timings with a longer suspicion: a suspect has at least `minMs` to refute before it is
  // declared dead (with every confirmation in; without, it has up to `maxMs`).
  const timings = { suspicionMult: 8 };
  const members = 3;
  const { minMs, maxMs } = suspicionBounds({ ...PRESETS.lan, ...timings }, members);
  t.diagnostic(`suspicion timeout between ${minMs} and ${maxMs} ms; the receiver stops for ${STOP_MS} ms`);
  assert.ok(minMs >= 3 * STOP_MS, 'a 2 s stop cannot end in a death');
  const options = { preset: 'lan', timings };
  // A short request timeout on the sender: requests to the stopped receiver time out and are
  // retried during the stop, so the receiver sees the same sequence numbers more than once.
  const [sender, steady, sleeper] = await Promise.all([
    PeerProcess.spawn(t, { ...options, name: 'sender', requestTimeoutMs: 700 }, { label: 'sender' }),
    PeerProcess.spawn(t, { ...options, name: 'steady' }, { label: 'steady' }),
    PeerProcess.spawn(t, { ...options, name: 'sleeper' }, { label: 'sleeper' }),
  ]);
  const all = [sender, steady, sleeper];
  await steady.connect(sender.address);
  await sleeper.connect(sender.address);
  await waitForViews(all, { timeoutMs: 60_000, message: 'every node to hold the 2 others alive' });

  const streaming = sender.stream(COUNT, {
    prefix: 'm',
    window: WINDOW,
    pauseAt: PAUSE_AT,
    timeoutMs: 180_000,
  });
  await sender.waitForEvent((e) => e.event === 'stream:paused', { timeoutMs: 60_000, message: 'the pause' });
  const before = sleeper.messages().length;
  assert.ok(sleeper.signal('SIGSTOP'), 'SIGSTOP sent');
  let stoppedMs = 0;
  try {
    await waitStopped(sleeper.child.pid!);
    const stoppedAt = Date.now();
    assert.equal(await sender.resume(), 1, 'the stream goes on while the receiver is stopped');
    // The stop itself is the scenario: 2 s of silence, whatever happens meanwhile.
    await sleep(STOP_MS - (Date.now() - stoppedAt));
    stoppedMs = Date.now() - stoppedAt;
  } finally {
    sleeper.signal('SIGCONT');
  }
  // Messages PAUSE_AT... were all sent after the sleeper was seen stopped.
  t.diagnostic(`stopped for ${stoppedMs} ms, after it had printed ${before} messages`);

  const result = await streaming;
  assert.deepEqual(result.errors, [], 'no broadcast call rejected');
  assert.deepEqual(result.failed, [], 'no report names a failure');
  const every = Array.from({ length: COUNT }, (_, i) => i);
  assert.deepEqual(result.delivered[steady.self.id], every, 'steady acknowledged every message');
  assert.deepEqual(result.delivered[sleeper.self.id], every, 'the sleeper acknowledged every message');

  const expected = numberedTexts('m', COUNT);
  for (const receiver of [steady, sleeper]) {
    // Acknowledged means delivered: the list is complete now; wait only for the process to answer.
    const got = await receiver.received(60_000);
    const problem = sequenceProblem(got, expected);
    if (problem !== undefined) assert.fail(`${receiver.label}: ${problem}`);
    // What the parent saw on stdout agrees.
    await waitFor(() => receiver.messages().length >= COUNT, { timeoutMs: 30_000 });
    const printed = sequenceProblem(
      receiver.messages().map((e) => e.text ?? ''),
      expected,
    );
    if (printed !== undefined) assert.fail(`${receiver.label} (stdout): ${printed}`);
    assert.ok(
      receiver.messages().every((e) => e.from?.id === sender.self.id && e.type === 'broadcast'),
      `${receiver.label}: every message is a broadcast from the sender`,
    );
  }

  for (const p of all) {
    const fails = p.events.filter((e) => e.event === 'member:fail' || e.event === 'member:leave');
    assert.deepEqual(fails, [], `${p.label}: nobody was declared dead or left`);
  }
  const suspected = [sender, steady].some((p) =>
    p.events.some((e) => e.event === 'member:suspect' && e.peer?.id === sleeper.self.id),
  );
  t.diagnostic(`the sleeper was ${suspected ? '' : 'not '}suspected during its stop`);
});
