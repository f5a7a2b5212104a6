/**
 * Membership across hosts: nodes in Linux network namespaces made by this test, each with its
 * own address on a bridge. Cutting one host off makes the others declare it dead; linking it
 * again brings it back into every view.
 *
 * The repository's "127.0.0.1 only" rule is for loopback tests: this one uses the private
 * addresses (10.213.N.0/24) of the namespaces it creates, and deletes them when it ends.
 * It needs Linux, root and iproute2; elsewhere it skips, saying why.
 */

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { memberEvents, spawnCluster, timeline, waitForViews } from '../helpers/cluster.js';
import { createNetnsLab, type NetnsLab, NetnsUnavailableError } from '../helpers/netns.js';
import { PeerCommandError, type PeerProcess } from '../helpers/spawn-peer.js';
import { waitFor } from '../helpers/wait.js';

const HOSTS = 4;

test('hosts in network namespaces join; a host cut off is declared dead, and rejoins when linked', async (t) => {
  let lab: NetnsLab;
  try {
    lab = await createNetnsLab(t, HOSTS);
  } catch (err) {
    if (!(err instanceof NetnsUnavailableError)) throw err;
    t.skip(err.message);
    return;
  }
  t.diagnostic(`hosts: ${lab.hosts.map((h) => `${h.ns} ${h.address}`).join(', ')}`);
  const peers = await spawnCluster(
    t,
    HOSTS,
    { preset: 'local', requestTimeoutMs: 3_000 },
    { label: 'host', perPeer: (i) => ({ host: lab.hosts[i]!.address }), wrap: (i) => lab.wrap(i) },
  );
  for (const [i, p] of peers.entries()) assert.equal(p.self.address, lab.hosts[i]!.address);
  const t0 = Date.now();
  const [entry, ...rest] = peers as [PeerProcess, ...PeerProcess[]];
  const cutIndex = HOSTS - 1;
  const cutOff = peers[cutIndex]!;
  const others = peers.filter((p) => p !== cutOff);

  await t.test('the hosts join through the first one and see each other', async () => {
    // The bridge may take a moment to forward: retry a refused or unanswered connect.
    await Promise.all(
      rest.map((p) =>
        waitFor(
          () =>
            p.connect(entry.address).then(
              () => true,
              (err: unknown) => {
                if (err instanceof PeerCommandError && err.code === 'ERR_CONNECT_FAILED') return false;
                throw err;
              },
            ),
          { timeoutMs: 30_000, intervalMs: 200, message: `${p.label} to connect to ${entry.address}` },
        ),
      ),
    );
    await waitForViews(peers, {
      timeoutMs: 60_000,
      message: `every host to hold the ${HOSTS - 1} others alive`,
    });
  });

  await t.test('a host cut off is declared dead by every other host', async () => {
    const marks = peers.map((p) => p.events.length);
    await lab.cut(cutIndex);
    const cutAt = Date.now();
    const failedAt = await Promise.all(
      others.map((p) =>
        p
          .waitForEvent((e) => e.event === 'member:fail' && e.peer?.id === cutOff.self.id, {
            since: marks[peers.indexOf(p)],
            timeoutMs: 60_000,
            message: `${p.label} to declare ${cutOff.label} dead`,
          })
          .then((e) => (e.at as number) - cutAt),
      ),
    );
    t.diagnostic(
      `member:fail of ${cutOff.label} reported ${failedAt.map((ms) => `${ms} ms`).join(', ')} after the cut`,
    );
    // The connected hosts still see each other alive, and nobody but the cut-off host failed.
    await waitForViews(others, { timeoutMs: 30_000, message: 'the connected hosts to see each other alive' });
    for (const p of others) {
      const fails = p.events
        .slice(marks[peers.indexOf(p)])
        .filter((e) => e.event === 'member:fail' && e.peer?.id !== cutOff.self.id);
      assert.deepEqual(fails, [], `${p.label} declared only ${cutOff.label} dead`);
      assert.deepEqual(memberEvents(p, cutOff.self.id, 'member:leave'), [], 'a cut is not a leave');
    }
    // The isolated host, for its part, loses everyone.
    await waitFor(async () => (await cutOff.memberStates()).every((m) => m.state === 'dead'), {
      timeoutMs: 60_000,
      intervalMs: 250,
      message: `${cutOff.label} to declare the others dead`,
    });
  });

  await t.test('linked again, the host rejoins and every view is complete', async () => {
    const marks = peers.map((p) => p.events.length);
    await lab.restore(cutIndex);
    const restoredAt = Date.now();
    try {
      await waitForViews(peers, {
        timeoutMs: 60_000,
        message: `every host to hold the ${HOSTS - 1} others alive after the link is restored`,
      });
    } catch (err) {
      throw new Error(`${(err as Error).message}\n${timeline(peers, undefined, t0)}`, { cause: err });
    }
    t.diagnostic(`all views complete ${Date.now() - restoredAt} ms after the link was restored`);
    // Each side saw the other come back: a member:join after the restore.
    for (const p of others) {
      const back = p.events
        .slice(marks[peers.indexOf(p)])
        .filter((e) => e.event === 'member:join' && e.peer?.id === cutOff.self.id);
      assert.equal(back.length, 1, `${p.label} saw ${cutOff.label} rejoin once`);
    }
    const rejoined = cutOff.events
      .slice(marks[cutIndex])
      .filter((e) => e.event === 'member:join')
      .map((e) => e.peer?.id)
      .sort();
    assert.deepEqual(
      rejoined,
      others.map((p) => p.self.id).sort(),
      `${cutOff.label} saw each other host rejoin`,
    );
  });
});
