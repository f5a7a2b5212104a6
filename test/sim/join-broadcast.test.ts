import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { Message } from '../../src/index.js';
import { simNetworkFor } from './network.js';

describe('simulated network (memory transport, manual clock)', () => {
  test('100 nodes joining one after another through random entry points all see everyone', async (t) => {
    const sim = simNetworkFor(t);
    const { seed } = sim;
    const n = 100;
    // Full fan-out: every member gets the broadcast from its sender (gossip is tested at scale).
    const first = await sim.add({ dissemination: 'full' });
    for (let i = 1; i < n; i++) {
      const node = await sim.add({ dissemination: 'full' });
      const entry = sim.nodes[Math.floor(sim.random.next() * i)]!;
      await sim.run(node.connect(entry.self));
    }
    assert.ok(first.isConnected, 'the first node is connected once others joined through it');
    // Newcomers announce themselves to up to 64 members; gossip tells the rest, and push-pull
    // (every 30 s at this size) repairs what gossip missed.
    const complete = await sim.fullViews(120_000, 100);
    assert.ok(complete, `seed ${seed}: views did not converge within 120 simulated seconds`);
    for (const node of sim.nodes) {
      assert.equal(
        node.members().length,
        n - 1,
        `seed ${seed}: ${node.self.port} sees ${node.members().length}`,
      );
      assert.ok(node.isConnected);
    }

    // One broadcast from a random node reaches every other node exactly once.
    const received = new Map<string, Message[]>();
    for (const node of sim.nodes) {
      node.on('message', (m) => {
        const list = received.get(node.id) ?? [];
        list.push(m);
        received.set(node.id, list);
      });
    }
    const sender = sim.nodes[Math.floor(sim.random.next() * n)]!;
    const report = await sim.run(sender.broadcast('hello, simulated world'));
    assert.equal(report.delivered.length, n - 1);
    assert.equal(report.failed.length, 0);
    await sim.clock.advance(1);
    for (const node of sim.nodes) {
      if (node === sender) continue;
      const got = received.get(node.id) ?? [];
      assert.equal(got.length, 1, `seed ${seed}: node ${node.self.port} got ${got.length} messages`);
      assert.equal(got[0]!.text, 'hello, simulated world');
      assert.equal(got[0]!.from.id, sender.id);
      assert.equal(got[0]!.type, 'broadcast');
    }
  });

  test('a killed member is reported failed; a briefly cut-off member still gets the broadcast', async (t) => {
    const sim = simNetworkFor(t);
    const nodes = [];
    for (let i = 0; i < 10; i++) nodes.push(await sim.add({ requestTimeoutMs: 500 }));
    for (let i = 1; i < 10; i++) await sim.run(nodes[i]!.connect(nodes[0]!.self));
    const dead = nodes[3]!;
    sim.network.kill(`10.0.0.1:${dead.self.port}`);
    // Another member is cut off for a second: its requests are lost, then retried.
    const cut = nodes[7]!;
    sim.network.partition([[`10.0.0.1:${cut.self.port}`]]);
    sim.clock.setTimeout(() => sim.network.heal(), 1_000);

    const got = new Map<string, number>();
    for (const n of nodes) n.on('message', () => got.set(n.id, (got.get(n.id) ?? 0) + 1));
    const report = await sim.run(nodes[0]!.broadcast('still here'), 120_000);
    await sim.clock.advance(1);
    // The dead member is retried until the failure detector declares it dead.
    assert.deepEqual(
      report.failed.map((f) => [f.peer.id, f.error.code]),
      [[dead.id, 'ERR_PEER_UNREACHABLE']],
    );
    assert.match(report.failed[0]!.error.message, /declared dead/);
    assert.equal(report.delivered.length, 8, 'every live member, the cut-off one included');
    for (const n of nodes.slice(1)) {
      assert.equal(got.get(n.id) ?? 0, n === dead ? 0 : 1, `node ${n.self.port} got it exactly once`);
    }
  });

  test('members that leave are dropped everywhere, and may rejoin', async (t) => {
    const sim = simNetworkFor(t);
    const nodes = [];
    for (let i = 0; i < 20; i++) nodes.push(await sim.add());
    for (let i = 1; i < 20; i++) await sim.run(nodes[i]!.connect(nodes[i - 1]!.self));
    const leaving = nodes.slice(5, 10);
    const leaves = new Map<string, number>();
    for (const n of nodes) n.on('member:leave', (p) => leaves.set(p.id, (leaves.get(p.id) ?? 0) + 1));
    for (const n of leaving) await sim.run(n.disconnect());
    await sim.clock.advance(1);
    for (const n of nodes) {
      if (leaving.includes(n)) {
        assert.equal(n.members().length, 0);
        assert.equal(n.isConnected, false);
      } else {
        assert.equal(n.members().length, 14, `node ${n.self.port}`);
      }
    }
    // Each leave is seen once by each member at the time: the earlier leavers are gone already.
    for (const [i, n] of leaving.entries()) assert.equal(leaves.get(n.id), 19 - i, `leave of ${n.self.port}`);
    for (const n of leaving) await sim.run(n.connect(nodes[0]!.self));
    for (const n of nodes) assert.equal(n.members().length, 19);
  });
});
