/**
 * Failure detection across real processes on 127.0.0.1: a graceful leave is a leave, a SIGKILLed
 * node is declared dead by every survivor, and a SIGSTOPped node that resumes before its
 * suspicion expires is never declared dead.
 */

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { PRESETS, suspicionBounds } from '../../src/membership/timings.js';
import { SeededRandom } from '../../src/random.js';
import { memberEvents, spawnCluster, timeline, waitForViews } from '../helpers/cluster.js';
import type { PeerProcess } from '../helpers/spawn-peer.js';
import { WaitTimeoutError } from '../helpers/wait.js';
import { testSeed } from '../sim/network.js';

/** Joins every peer through a random peer started before it, one after the other. */
async function join(peers: readonly PeerProcess[], random: SeededRandom): Promise<void> {
  for (let i = 1; i < peers.length; i++) {
    await peers[i]!.connect(peers[Math.floor(random.next() * i)]!.address);
  }
}

/** `'pN: member:fail pM'` for every event of `kind` the peers reported, about anyone. */
function reported(peers: readonly PeerProcess[], all: readonly PeerProcess[], kind: string): string[] {
  const label = (id: string | undefined): string => all.find((q) => q.self.id === id)?.label ?? String(id);
  return peers.flatMap((p) =>
    p.events.filter((e) => e.event === kind).map((e) => `${p.label}: ${kind} ${label(e.peer?.id)}`),
  );
}

test('leaves are reported as leaves, a SIGKILLed node as dead by every survivor', async (t) => {
  const seed = testSeed();
  t.diagnostic(`seed ${seed}`);
  const random = new SeededRandom(seed);
  const peers = await spawnCluster(t, 8, { preset: 'local', requestTimeoutMs: 3_000 });
  const t0 = Date.now();
  await join(peers, random);
  await waitForViews(peers, { timeoutMs: 60_000, message: 'every node to hold the 7 others alive' });
  const [p0, p1, p2, p3, p4, victim, stopper, leaver] = peers as [
    PeerProcess,
    PeerProcess,
    PeerProcess,
    PeerProcess,
    PeerProcess,
    PeerProcess,
    PeerProcess,
    PeerProcess,
  ];
  const survivors = [p0, p1, p2, p3, p4];
  const trail = (about: PeerProcess): string => `\n${timeline(peers, about.self.id, t0)}`;

  await t.test('a node that disconnects is reported as leaving by every other node', async () => {
    const report = await leaver.disconnect();
    assert.deepEqual(report.failed, []);
    const rest = peers.filter((p) => p !== leaver);
    await Promise.all(
      rest.map((p) =>
        p.waitForEvent((e) => e.event === 'member:leave' && e.peer?.id === leaver.self.id, {
          timeoutMs: 30_000,
          message: `${p.label} to report member:leave of ${leaver.label}`,
        }),
      ),
    );
    await waitForViews(rest, { timeoutMs: 30_000, message: 'the views without the leaver' });
  });

  await t.test('a node that stops is reported as leaving by every other node', async () => {
    const exit = await stopper.stop();
    assert.equal(exit.code, 0);
    const rest = [...survivors, victim];
    await Promise.all(
      rest.map((p) =>
        p.waitForEvent((e) => e.event === 'member:leave' && e.peer?.id === stopper.self.id, {
          timeoutMs: 30_000,
          message: `${p.label} to report member:leave of ${stopper.label}`,
        }),
      ),
    );
    await waitForViews(rest, { timeoutMs: 30_000, message: 'the views without the stopped node' });
  });

  await t.test('a SIGKILLed node is declared dead by every survivor, and nobody else', async () => {
    const killedAt = Date.now();
    await victim.kill('SIGKILL');
    const failedAt = await Promise.all(
      survivors.map((p) =>
        p
          .waitForEvent((e) => e.event === 'member:fail' && e.peer?.id === victim.self.id, {
            timeoutMs: 60_000,
            message: `${p.label} to report member:fail of ${victim.label}`,
          })
          .then((e) => (e.at as number) - killedAt),
      ),
    );
    t.diagnostic(`member:fail reported ${failedAt.map((ms) => `${ms} ms`).join(', ')} after SIGKILL`);
    await waitForViews(survivors, { timeoutMs: 30_000, message: 'the views without the killed node' });
    for (const p of survivors) {
      assert.equal(memberEvents(p, victim.self.id, 'member:fail').length, 1, `${p.label}: one member:fail`);
      assert.deepEqual(
        memberEvents(p, victim.self.id, 'member:leave'),
        [],
        `${p.label}: a failure is not a leave${trail(victim)}`,
      );
    }
  });

  await t.test('the leavers were never declared dead, nobody else failed', async () => {
    // By now the survivors have probed for longer than a suspicion lasts: a wrong death of a
    // node that left would have shown.
    const fails = reported([...survivors, victim], peers, 'member:fail');
    assert.deepEqual(
      fails.filter((f) => !f.endsWith(` ${victim.label}`)),
      [],
      `only ${victim.label} failed${trail(leaver)}${trail(stopper)}`,
    );
    for (const p of [...survivors, victim]) {
      for (const gone of [leaver, stopper]) {
        assert.equal(memberEvents(p, gone.self.id, 'member:leave').length, 1, `${p.label}: one leave`);
      }
    }
    assert.deepEqual(
      reported(survivors, peers, 'member:leave').filter((f) => f.endsWith(victim.label)),
      [],
    );
  });
});

test('a SIGSTOPped node that resumes before its suspicion expires is not declared dead', async (t) => {
  const seed = testSeed();
  t.diagnostic(`seed ${seed}`);
  const random = new SeededRandom(seed);
  const count = 5;
  // A long suspicion: even with every confirmation, a suspect has `min` ms to refute.
  const timings = { suspicionMult: 50 };
  const { minMs, maxMs } = suspicionBounds({ ...PRESETS.local, ...timings }, count);
  // Resume once every survivor suspects it (their gossip of the news is spent by then), and in
  // any case well before `min`.
  const maxStopMs = Math.floor(minMs / 5);
  t.diagnostic(`suspicion timeout between ${minMs} and ${maxMs} ms; stop for at most ${maxStopMs} ms`);
  const peers = await spawnCluster(t, count, { preset: 'local', timings, requestTimeoutMs: 3_000 });
  const t0 = Date.now();
  await join(peers, random);
  await waitForViews(peers, {
    timeoutMs: 60_000,
    message: `every node to hold the ${count - 1} others alive`,
  });
  const sleeper = peers[1 + Math.floor(random.next() * (count - 1))]!;
  const survivors = peers.filter((p) => p !== sleeper);
  const marks = survivors.map((p) => p.events.length);

  assert.ok(sleeper.signal('SIGSTOP'), 'SIGSTOP sent');
  const stoppedAt = Date.now();
  let suspected = true;
  try {
    await Promise.all(
      survivors.map((p, i) =>
        p.waitForEvent((e) => e.event === 'member:suspect' && e.peer?.id === sleeper.self.id, {
          since: marks[i],
          timeoutMs: maxStopMs,
        }),
      ),
    );
  } catch (err) {
    if (!(err instanceof WaitTimeoutError)) throw err;
    suspected = false;
  } finally {
    sleeper.signal('SIGCONT');
  }
  const stoppedMs = Date.now() - stoppedAt;
  t.diagnostic(
    `${sleeper.label} stopped for ${stoppedMs} ms; ${suspected ? '' : 'not '}suspected by every survivor by then`,
  );

  await waitForViews(peers, {
    timeoutMs: minMs + 20_000,
    message: `every node to hold the ${count - 1} others alive again after SIGCONT`,
  });
  const fails = reported(peers, peers, 'member:fail');
  assert.deepEqual(fails, [], `nobody was declared dead\n${timeline(peers, sleeper.self.id, t0)}`);
  const suspecters = survivors.filter(
    (p, i) => p.events.slice(marks[i]).filter((e) => e.event === 'member:suspect').length > 0,
  );
  t.diagnostic(
    `suspected by ${suspecters.map((p) => p.label).join(', ') || 'nobody'}; refuted: ` +
      survivors
        .map(
          (p, i) =>
            `${p.label} ${p.events
              .slice(marks[i])
              .filter((e) => e.peer?.id === sleeper.self.id)
              .map((e) => e.event)}`,
        )
        .join('; '),
  );
});
