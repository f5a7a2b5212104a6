/**
 * Delivery across real processes on 127.0.0.1 when a receiver is SIGKILLed in the middle of a
 * stream: the others get everything, in order, once; the reports of the messages queued to the
 * dead one name it in `failed` once it is declared dead; the stream goes on.
 */

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { PRESETS, suspicionBounds } from '../../src/membership/timings.js';
import { waitForViews } from '../helpers/cluster.js';
import { numberedTexts, sequenceProblem } from '../helpers/delivery-streams.js';
import { PeerProcess } from '../helpers/spawn-peer.js';
import { waitFor } from '../helpers/wait.js';

const COUNT = 5_000;
/** The stream pauses here, the victim is killed, and the stream goes on. */
const KILL_AT = 2_500;
/** The stream pauses here again until the sender has declared the victim dead. */
const DEAD_AT = 3_500;

test('a receiver SIGKILLed mid-stream: the others get everything, the reports name the dead one', async (t) => {
  const { minMs, maxMs } = suspicionBounds(PRESETS.lan, 4);
  t.diagnostic(
    `preset lan (a refused connection shortens it): a suspect is declared dead after ${minMs} to ${maxMs} ms`,
  );
  const options = { preset: 'lan' };
  const spawn = (label: string): Promise<PeerProcess> =>
    PeerProcess.spawn(t, { ...options, name: label }, { label });
  const [sender, r1, r2, victim] = await Promise.all([
    spawn('sender'),
    spawn('r1'),
    spawn('r2'),
    spawn('victim'),
  ]);
  for (const p of [r1, r2, victim]) await p.connect(sender.address);
  await waitForViews([sender, r1, r2, victim], {
    timeoutMs: 60_000,
    message: 'every node to hold the 3 others alive',
  });

  // No window: every call is made at once; the calls to the dead one wait until it is given up.
  const streaming = sender.stream(COUNT, { prefix: 'k', pauseAt: [KILL_AT, DEAD_AT], timeoutMs: 180_000 });
  const paused = (at: number) => (e: { event: string; at?: unknown }) =>
    e.event === 'stream:paused' && e.at === at;
  await sender.waitForEvent(paused(KILL_AT), { timeoutMs: 60_000, message: 'the first pause' });
  // Kill it while the first part still arrives (or soon after): it has some, not all of them.
  await waitFor(() => victim.messages().length >= KILL_AT / 2, {
    timeoutMs: 60_000,
    intervalMs: 5,
    message: 'the victim to receive the first messages',
  });
  const printed = victim.messages().length;
  await victim.kill('SIGKILL');
  const killedAt = Date.now();
  // Every message from KILL_AT on is sent after the kill.
  assert.equal(await sender.resume(), 1);
  await sender.waitForEvent(paused(DEAD_AT), { timeoutMs: 60_000, message: 'the second pause' });
  const fail = await sender.waitForEvent((e) => e.event === 'member:fail' && e.peer?.id === victim.self.id, {
    timeoutMs: 60_000,
    message: 'the sender to declare the victim dead',
  });
  // Every message from DEAD_AT on is sent once the victim is known dead.
  assert.equal(await sender.resume(), 1);
  const result = await streaming;
  const streamMs = Date.now() - killedAt;
  t.diagnostic(
    `killed after it printed ${printed} messages; declared dead ${(fail.at as number) - killedAt} ms ` +
      `after the kill; the stream ended ${streamMs} ms after it`,
  );

  assert.deepEqual(result.errors, [], 'no broadcast call rejected');
  const every = Array.from({ length: COUNT }, (_, i) => i);
  for (const r of [r1, r2]) {
    assert.deepEqual(result.delivered[r.self.id], every, `${r.label} acknowledged every message`);
  }
  // Only the dead one is ever named in `failed`, and always as declared dead.
  const strangers = result.failed.filter((f) => f.peer !== victim.self.id);
  assert.deepEqual(strangers, [], 'only the victim failed');
  for (const f of result.failed) {
    assert.equal(f.code, 'ERR_PEER_UNREACHABLE', `message ${f.i}: ${f.message}`);
    assert.match(f.message, /declared dead/, `message ${f.i}`);
  }
  const failedAt = new Set(result.failed.map((f) => f.i));
  const deliveredAt = new Set(result.delivered[victim.self.id] ?? []);
  assert.equal(failedAt.size, result.failed.length, 'each report names the victim once at most');
  // Before the kill, each message went to the victim: acknowledged, or given up with its queue.
  for (let i = 0; i < KILL_AT; i++) {
    assert.ok(deliveredAt.has(i) !== failedAt.has(i), `message ${i}: delivered xor failed`);
  }
  // After the kill, nothing was acknowledged by it. The messages sent while it was still a
  // member name it in `failed`; once it was declared dead, it is no longer a target at all.
  const after = every.filter((i) => i >= KILL_AT);
  assert.deepEqual(
    after.filter((i) => deliveredAt.has(i)),
    [],
    'nothing after the kill was acknowledged by the victim',
  );
  const namedAfter = after.filter((i) => failedAt.has(i));
  assert.ok(namedAfter.length > 0, 'the reports of messages sent after the kill name the victim');
  assert.deepEqual(
    namedAfter,
    after.slice(0, namedAfter.length),
    'the victim is named in every report from the kill until it was declared dead, then in none',
  );
  assert.ok(
    namedAfter.every((i) => i < DEAD_AT),
    'no longer a target once it was declared dead',
  );
  t.diagnostic(
    `${namedAfter.length} of the ${DEAD_AT - KILL_AT} messages sent between the kill and the ` +
      'second pause name it in failed',
  );

  const expected = numberedTexts('k', COUNT);
  for (const r of [r1, r2]) {
    const problem = sequenceProblem(await r.received(60_000), expected);
    if (problem !== undefined) assert.fail(`${r.label}: ${problem}`);
  }
  for (const p of [sender, r1, r2]) {
    const wrong = p.events.filter(
      (e) => (e.event === 'member:fail' || e.event === 'member:leave') && e.peer?.id !== victim.self.id,
    );
    assert.deepEqual(wrong, [], `${p.label}: nobody but the victim failed or left`);
  }
});
