/**
 * The core library across real processes on 127.0.0.1: join, broadcast, direct messages, leave,
 * rejoin, and a member killed with SIGKILL.
 */

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type PeerJson, type PeerProcess, spawnPeers } from '../helpers/spawn-peer.js';

function ids(list: readonly PeerJson[]): string[] {
  return list.map((p) => p.id).sort();
}

function idsOfPeers(list: readonly PeerProcess[]): string[] {
  return list.map((p) => p.self.id).sort();
}

function count(peer: PeerProcess, text: string): number {
  return peer.messages().filter((m) => m.text === text).length;
}

/** Broadcasts a marker from `from` and waits until every one of `to` has it. */
async function fence(from: PeerProcess, to: readonly PeerProcess[], marker: string): Promise<void> {
  const report = await from.broadcast(marker);
  assert.deepEqual(report.failed, []);
  await Promise.all(to.map((p) => p.waitForMessage(marker, { from: from.address })));
}

test('nodes in separate processes join, talk, leave, rejoin and survive a killed member', async (t) => {
  // A message to a dead member is retried until it is declared dead or for 8 s at most.
  const peers = await spawnPeers(t, 4, {
    requestTimeoutMs: 3_000,
    leaveTimeoutMs: 2_000,
    deliveryTimeoutMs: 8_000,
  });
  const [p0, p1, p2, p3] = peers as [PeerProcess, PeerProcess, PeerProcess, PeerProcess];
  const others = (p: PeerProcess): PeerProcess[] => peers.filter((q) => q !== p);

  await t.test('every node joins through the first one and knows all the others', async () => {
    for (const p of [p1, p2, p3]) {
      const report = await p.connect(p0.address);
      assert.equal(report.entry.id, p0.self.id);
      assert.deepEqual(report.failed, []);
    }
    for (const p of peers) {
      assert.deepEqual(ids(await p.members()), idsOfPeers(others(p)), `${p.label}'s members`);
      for (const q of others(p)) {
        await p.waitForEvent((e) => e.event === 'member:join' && e.peer?.id === q.self.id, {
          message: `${p.label} to see ${q.label} join`,
        });
      }
    }
  });

  await t.test('a broadcast reaches every other member exactly once', async () => {
    const report = await p1.broadcast('hello everyone');
    assert.deepEqual(ids(report.delivered), idsOfPeers(others(p1)));
    assert.deepEqual(report.failed, []);
    for (const p of others(p1)) {
      const msg = await p.waitForMessage('hello everyone', { from: p1.address });
      assert.equal(msg.type, 'broadcast');
      assert.equal(msg.from?.id, p1.self.id);
    }
    await fence(p1, others(p1), 'fence 1');
    for (const p of others(p1)) assert.equal(count(p, 'hello everyone'), 1, `${p.label} got it once`);
    assert.equal(count(p1, 'hello everyone'), 0, 'the sender does not get its own broadcast');
  });

  await t.test('a direct message reaches its one recipient only', async () => {
    const report = await p0.send(p2.address, 'just for p2');
    assert.deepEqual(ids(report.delivered), [p2.self.id]);
    assert.deepEqual(report.failed, []);
    const msg = await p2.waitForMessage('just for p2', { from: p0.address });
    assert.equal(msg.type, 'direct');
    await fence(p0, others(p0), 'fence 2');
    assert.equal(count(p1, 'just for p2'), 0);
    assert.equal(count(p3, 'just for p2'), 0);
    assert.equal(count(p2, 'just for p2'), 1);
  });

  await t.test('a direct message to two members reaches both and no one else', async () => {
    const report = await p0.send([p1.address, p3.address], 'for p1 and p3');
    assert.deepEqual(ids(report.delivered), idsOfPeers([p1, p3]));
    assert.deepEqual(report.failed, []);
    for (const p of [p1, p3]) {
      const msg = await p.waitForMessage('for p1 and p3', { from: p0.address });
      assert.equal(msg.type, 'direct');
    }
    await fence(p0, others(p0), 'fence 3');
    assert.equal(count(p2, 'for p1 and p3'), 0);
    assert.equal(count(p1, 'for p1 and p3'), 1);
    assert.equal(count(p3, 'for p1 and p3'), 1);
  });

  await t.test('a node that leaves is dropped by every other', async () => {
    const report = await p3.disconnect();
    assert.deepEqual(ids(report.notified), idsOfPeers([p0, p1, p2]));
    assert.deepEqual(report.failed, []);
    assert.deepEqual(await p3.members(), []);
    for (const p of [p0, p1, p2]) {
      await p.waitForEvent((e) => e.event === 'member:leave' && e.peer?.id === p3.self.id, {
        message: `${p.label} to see ${p3.label} leave`,
      });
      assert.deepEqual(ids(await p.members()), idsOfPeers(others(p).filter((q) => q !== p3)));
    }
    const after = await p0.broadcast('without p3');
    assert.deepEqual(ids(after.delivered), idsOfPeers([p1, p2]));
    await assert.rejects(p3.broadcast('p3 is out'), { code: 'ERR_NOT_CONNECTED' });
  });

  await t.test('the node rejoins through another member', async () => {
    const marks = new Map(peers.map((p) => [p, p.events.length]));
    const report = await p3.connect(p2.address);
    assert.deepEqual(ids(report.members), idsOfPeers([p0, p1, p2]));
    assert.deepEqual(report.failed, []);
    for (const p of [p0, p1, p2]) {
      await p.waitForEvent((e) => e.event === 'member:join' && e.peer?.id === p3.self.id, {
        since: marks.get(p),
        message: `${p.label} to see ${p3.label} rejoin`,
      });
      assert.deepEqual(ids(await p.members()), idsOfPeers(others(p)));
    }
    const hello = await p3.broadcast('p3 is back');
    assert.deepEqual(ids(hello.delivered), idsOfPeers([p0, p1, p2]));
    await Promise.all([p0, p1, p2].map((p) => p.waitForMessage('p3 is back', { from: p3.address })));
  });

  await t.test(
    'after a member is killed, a broadcast still reaches the live ones and names the dead',
    async () => {
      const exit = await p2.kill('SIGKILL');
      assert.equal(exit.signal, 'SIGKILL');
      const report = await p0.broadcast('after the crash');
      assert.deepEqual(ids(report.delivered), idsOfPeers([p1, p3]));
      assert.equal(report.failed.length, 1);
      assert.equal(report.failed[0]?.peer.id, p2.self.id);
      assert.match(report.failed[0]?.error.code ?? '', /^ERR_[A-Z_]+$/);
      await Promise.all([p1, p3].map((p) => p.waitForMessage('after the crash', { from: p0.address })));

      // The dead member was retried until the failure detector declared it dead everywhere.
      for (const p of [p0, p1, p3]) {
        await p.waitForEvent((e) => e.event === 'member:fail' && e.peer?.id === p2.self.id, {
          message: `${p.label} to declare ${p2.label} dead`,
          timeoutMs: 60_000,
        });
      }
      // From then on, broadcasts go to the live members only, and the dead one is no member.
      const fromP1 = await p1.broadcast('still here');
      assert.deepEqual(ids(fromP1.delivered), idsOfPeers([p0, p3]));
      assert.deepEqual(fromP1.failed, []);
      await assert.rejects(p3.send(p2.address, 'are you there?'), (err: unknown) => {
        return (err as { code?: string }).code === 'ERR_UNKNOWN_PEER';
      });
    },
  );

  await t.test(
    'SIGTERM leaves gracefully; the live nodes stop and their processes exit with code 0',
    async () => {
      const marks = new Map(peers.map((p) => [p, p.events.length]));
      const exit = await p3.kill('SIGTERM');
      assert.deepEqual(exit, { code: 0, signal: null }, `${p3.label} exit${p3.stderrTail()}`);
      for (const p of [p0, p1]) {
        await p.waitForEvent((e) => e.event === 'member:leave' && e.peer?.id === p3.self.id, {
          since: marks.get(p),
          message: `${p.label} to see ${p3.label} leave on SIGTERM`,
        });
        assert.ok(!ids(await p.members()).includes(p3.self.id));
      }
      for (const p of [p0, p1]) {
        const stopped = await p.stop();
        assert.deepEqual(stopped, { code: 0, signal: null }, `${p.label} exit${p.stderrTail()}`);
      }
    },
  );
});
