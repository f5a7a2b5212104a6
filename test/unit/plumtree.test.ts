import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ManualClock } from '../../src/clock.js';
import {
  type MessageRef,
  Plumtree,
  type PlumtreeAction,
  type PlumtreeLimits,
} from '../../src/delivery/plumtree.js';
import { SeededRandom } from '../../src/random.js';

type Msg = { readonly text: string };

function setup(seed = 1, limits: Partial<PlumtreeLimits> = {}, fanout = 3) {
  const clock = new ManualClock(0);
  const sunk: PlumtreeAction<Msg>[] = [];
  const tree = new Plumtree<Msg>({
    clock,
    random: new SeededRandom(seed),
    fanout: () => fanout,
    sink: (actions) => sunk.push(...actions),
    sizeOf: (m) => m.text.length,
    limits,
  });
  return { clock, tree, sunk };
}

const ref = (origin: string, id: string): MessageRef => ({ origin, id });

function pushes(actions: readonly PlumtreeAction<Msg>[]): string[] {
  return actions.flatMap((a) => (a.kind === 'push' ? a.to : []));
}

describe('Plumtree state', () => {
  test('the view is a fanout-sized random subset of the members, greeted once it settles', async () => {
    const firsts = new Set<string>();
    for (let seed = 1; seed <= 20; seed++) {
      const { clock, tree, sunk } = setup(seed, { greetDelayMs: 1000 });
      for (let i = 0; i < 30; i++) {
        tree.addPeer(`p${i}`);
        await clock.advance(10);
      }
      assert.equal(tree.eager.size, 3, `seed ${seed}`);
      assert.equal(tree.lazy.size, 0);
      assert.equal(sunk.length, 0, 'nothing is sent while the view changes');
      await clock.advance(1000);
      // Only the final view is greeted, with an empty GRAFT ("push to me").
      assert.deepEqual(
        sunk.map((a) => (a.kind === 'graft' ? `${a.to}:${a.refs.length}` : a.kind)).sort(),
        [...tree.eager].map((p) => `${p}:0`).sort(),
      );
      firsts.add([...tree.eager].sort().join(','));
    }
    // Not simply the first three members to join.
    assert.ok(firsts.size > 5, `views: ${[...firsts].join(' | ')}`);
  });

  test('a broadcast goes in full to the eager peers and as a batched IHAVE to the lazy ones', async () => {
    const { clock, tree, sunk } = setup(1, { ihaveFlushMs: 50 });
    for (const p of ['a', 'b', 'c', 'd']) tree.addPeer(p);
    tree.graft('d', []); // d asked to be eager
    tree.prune('a'); // a asked to be lazy
    assert.deepEqual([...tree.lazy], ['a']);
    const actions = tree.broadcast(ref('me', '1'), { text: 'x' });
    assert.deepEqual(pushes(actions).sort(), [...tree.eager].sort());
    assert.ok(!pushes(actions).includes('a'));
    tree.broadcast(ref('me', '2'), { text: 'y' });
    assert.equal(sunk.length, 0);
    await clock.advance(50);
    assert.deepEqual(sunk, [{ kind: 'ihave', to: 'a', refs: [ref('me', '1'), ref('me', '2')] }]);
  });

  test('with pruneAfterDuplicates 1 (the rule of the paper) a duplicate prunes its sender; a PRUNE makes the sender lazy', () => {
    const { tree } = setup(1, { pruneAfterDuplicates: 1 });
    for (const p of ['a', 'b', 'c']) tree.addPeer(p);
    const first = tree.receive('a', ref('o', '1'), { text: 'x' });
    assert.equal(first.fresh, true);
    assert.deepEqual(pushes(first.actions).sort(), ['b', 'c']);
    const dup = tree.receive('b', ref('o', '1'), { text: 'x' });
    assert.equal(dup.fresh, false);
    assert.deepEqual(dup.actions, [{ kind: 'prune', to: 'b' }]);
    assert.ok(tree.lazy.has('b') && !tree.eager.has('b'));
    tree.prune('c');
    assert.deepEqual([...tree.eager], ['a']);
    assert.deepEqual([...tree.lazy].sort(), ['b', 'c']);
  });

  test('an eager peer is pruned after pruneAfterDuplicates duplicates in a row; a new message from it starts again', () => {
    const { tree } = setup(1, { pruneAfterDuplicates: 3 });
    for (const p of ['a', 'b', 'c']) tree.addPeer(p);
    const dupFromB = (id: string) => {
      assert.equal(tree.receive('a', ref('o', id), { text: id }).fresh, true);
      return tree.receive('b', ref('o', id), { text: id });
    };
    assert.deepEqual(dupFromB('1').actions, []);
    assert.deepEqual(dupFromB('2').actions, []);
    assert.ok(tree.eager.has('b'), 'two duplicates in a row: still eager');
    // b brings another origin's message first: the link is a tree link for that origin.
    assert.equal(tree.receive('b', ref('p', '1'), { text: 'p1' }).fresh, true);
    assert.deepEqual(dupFromB('3').actions, []);
    assert.deepEqual(dupFromB('4').actions, []);
    assert.deepEqual(dupFromB('5').actions, [{ kind: 'prune', to: 'b' }], 'the third in a row prunes');
    assert.ok(tree.lazy.has('b') && !tree.eager.has('b'));
  });

  test('a lazy peer that pushes a new message is grafted back, so the link is eager at both ends', () => {
    const { tree } = setup(1, { pruneAfterDuplicates: 1 });
    for (const p of ['a', 'b', 'c']) tree.addPeer(p);
    tree.receive('a', ref('o', '1'), { text: 'x' });
    // b's duplicate: pruned here; b pushed its next message before it read the PRUNE.
    assert.deepEqual(tree.receive('b', ref('o', '1'), { text: 'x' }).actions, [{ kind: 'prune', to: 'b' }]);
    const late = tree.receive('b', ref('o', '2'), { text: 'y' });
    assert.equal(late.fresh, true);
    assert.deepEqual(
      late.actions.filter((a) => a.kind === 'graft'),
      [{ kind: 'graft', to: 'b', refs: [] }],
      'an empty GRAFT: b holds this node eager again',
    );
    assert.ok(tree.eager.has('b'));
  });

  test('an IHAVE for an unknown message is grafted after the timeout, then from the next announcer', async () => {
    const { clock, tree, sunk } = setup(1, { graftTimeoutMs: 1000, graftRetryMs: 500 });
    for (const p of ['a', 'b', 'c', 'd']) tree.addPeer(p);
    await clock.advance(1000);
    sunk.length = 0; // the greetings
    tree.prune('d');
    tree.ihave('d', [ref('o', '1')]);
    tree.ihave('c', [ref('o', '1')]);
    assert.equal(tree.missing, 1);
    await clock.advance(999);
    assert.deepEqual(sunk, [], 'not before graftTimeoutMs');
    // Due within half again as long (jitter, so that the nodes missing it do not all graft).
    await clock.advance(501);
    assert.deepEqual(sunk, [{ kind: 'graft', to: 'd', refs: [ref('o', '1')] }]);
    assert.ok(tree.eager.has('d'), 'the grafted link is eager again: the tree is repaired');
    await clock.advance(500);
    assert.deepEqual(sunk[1], { kind: 'graft', to: 'c', refs: [ref('o', '1')] });
    // It arrives: no more GRAFTs.
    assert.equal(tree.receive('c', ref('o', '1'), { text: 'x' }).fresh, true);
    assert.equal(tree.missing, 0);
    await clock.advance(5000);
    assert.equal(sunk.length, 2);
  });

  test('no GRAFT when the message arrives in time, and none for a message already seen', async () => {
    const { clock, tree, sunk } = setup();
    for (const p of ['a', 'b']) tree.addPeer(p);
    await clock.advance(1000);
    sunk.length = 0; // the greetings
    tree.receive('a', ref('o', 'seen'), { text: 'x' });
    tree.ihave('b', [ref('o', 'seen'), ref('o', 'new')]);
    assert.equal(tree.missing, 1);
    await clock.advance(500);
    tree.receive('a', ref('o', 'new'), { text: 'y' });
    await clock.advance(10_000);
    assert.deepEqual(
      sunk.filter((a) => a.kind === 'graft'),
      [],
    );
  });

  test('a GRAFT is answered from the cache and makes its sender eager', () => {
    const { tree } = setup();
    for (const p of ['a', 'b', 'c', 'd']) tree.addPeer(p);
    tree.prune('d');
    tree.broadcast(ref('me', '1'), { text: 'hello' });
    const answer = tree.graft('d', [ref('me', '1'), ref('me', 'unknown')]);
    assert.deepEqual(answer, [{ kind: 'push', to: ['d'], ref: ref('me', '1'), message: { text: 'hello' } }]);
    assert.ok(tree.eager.has('d'));
    assert.deepEqual(tree.graft('stranger', [ref('me', '1')]), [], 'only members are answered');
  });

  test('the cache is bounded in messages, bytes and time', async () => {
    const { clock, tree } = setup(1, { cacheMessages: 3, cacheBytes: 10, cacheWindowMs: 1000 });
    tree.addPeer('a');
    for (let i = 0; i < 5; i++) tree.broadcast(ref('me', String(i)), { text: 'xx' });
    assert.deepEqual(tree.cached, { messages: 3, bytes: 6 });
    assert.deepEqual(tree.graft('a', [ref('me', '0')]), [], 'the oldest was evicted');
    assert.equal(tree.graft('a', [ref('me', '4')]).length, 1);
    tree.broadcast(ref('me', 'big'), { text: 'xxxxxxx' }); // 7 bytes: 2 older ones go
    assert.ok(tree.cached.bytes <= 10);
    assert.equal(tree.cached.messages, 2);
    tree.broadcast(ref('me', 'huge'), { text: 'x'.repeat(11) }); // larger than the bound: not kept
    assert.equal(tree.graft('a', [ref('me', 'huge')]).length, 0);
    await clock.advance(1000);
    assert.deepEqual(tree.cached, { messages: 0, bytes: 0 });
  });

  test('removeAll (the node left the network) empties the view; a rejoin builds a fresh one', async () => {
    const { clock, tree, sunk } = setup(5);
    for (const p of ['a', 'b', 'c', 'd', 'e', 'f']) tree.addPeer(p);
    await clock.advance(1000);
    tree.prune([...tree.eager][0]!);
    tree.ihave('b', [ref('o', '1')]);
    sunk.length = 0;
    tree.removeAll();
    assert.equal(tree.eager.size + tree.lazy.size, 0);
    for (const p of ['a', 'b', 'c', 'd', 'e', 'f']) assert.equal(tree.hasPeer(p), false);
    assert.equal(tree.missing, 0, 'no GRAFT is pending to a former member');
    await clock.advance(60_000);
    assert.deepEqual(sunk, [], 'nothing is sent to the old network');
    for (const p of ['x', 'y', 'z', 'w']) tree.addPeer(p);
    assert.equal(tree.eager.size, 3);
    for (const p of tree.eager) assert.ok(['x', 'y', 'z', 'w'].includes(p));
  });

  test('a failed member leaves both sets and the announcers; another member takes its place', async () => {
    const { clock, tree, sunk } = setup(3);
    for (const p of ['a', 'b', 'c', 'd', 'e', 'f']) tree.addPeer(p);
    await clock.advance(1000);
    sunk.length = 0; // the greetings
    const [eager1, eager2] = [...tree.eager];
    tree.prune(eager2!);
    tree.ihave(eager1!, [ref('o', '1')]);
    const viewBefore = new Set([...tree.eager, ...tree.lazy]);
    tree.removePeer(eager1!);
    tree.removePeer(eager2!);
    assert.ok(!tree.eager.has(eager1!) && !tree.lazy.has(eager1!));
    assert.ok(!tree.eager.has(eager2!) && !tree.lazy.has(eager2!));
    assert.equal(tree.hasPeer(eager1!), false);
    assert.equal(tree.eager.size + tree.lazy.size, 3, 'the view is refilled');
    const added = [...tree.eager, ...tree.lazy].filter((p) => !viewBefore.has(p));
    assert.equal(added.length, 2);
    for (const p of added) assert.ok(tree.eager.has(p), 'a replacement starts eager');
    await clock.advance(60_000);
    assert.deepEqual(
      sunk.map((a) => (a.kind === 'graft' ? `${a.to}:${a.refs.length}` : a.kind)).sort(),
      added.map((p) => `${p}:0`).sort(),
      'the replacements are greeted; no GRAFT to a dead announcer',
    );
    assert.equal(tree.missing, 0);
  });
});

/** Plumtree instances wired to each other through a simulated network (1-5 ms per message). */
class TreeNet {
  readonly clock = new ManualClock(0);
  readonly random: SeededRandom;
  readonly trees = new Map<string, Plumtree<Msg>>();
  readonly delivered = new Map<string, Set<string>>();
  readonly dead = new Set<string>();
  counts = { push: 0, ihaveIds: 0, graft: 0, prune: 0 };

  constructor(
    readonly n: number,
    seed: number,
  ) {
    this.random = new SeededRandom(seed);
    const ids = Array.from({ length: n }, (_, i) => `n${i}`);
    for (const id of ids) {
      const tree: Plumtree<Msg> = new Plumtree<Msg>({
        clock: this.clock,
        random: this.random,
        fanout: () => 4,
        sink: (actions) => this.run(id, actions),
        sizeOf: (m) => m.text.length,
      });
      this.trees.set(id, tree);
      this.delivered.set(id, new Set());
    }
    for (const id of ids) for (const other of ids) if (other !== id) this.trees.get(id)!.addPeer(other);
  }

  run(from: string, actions: readonly PlumtreeAction<Msg>[]): void {
    for (const a of actions) {
      const targets = a.kind === 'push' ? a.to : [a.to];
      for (const to of targets) {
        if (a.kind === 'push') this.counts.push++;
        else if (a.kind === 'ihave') this.counts.ihaveIds += a.refs.length;
        else this.counts[a.kind]++;
        const delay = 1 + Math.floor(this.random.next() * 5);
        this.clock.setTimeout(() => {
          if (this.dead.has(to) || this.dead.has(from)) return;
          const t = this.trees.get(to)!;
          if (a.kind === 'push') {
            const r = t.receive(from, a.ref, a.message);
            if (r.fresh) this.delivered.get(to)!.add(`${a.ref.origin}/${a.ref.id}`);
            this.run(to, r.actions);
          } else if (a.kind === 'ihave') t.ihave(from, a.refs);
          else if (a.kind === 'graft') this.run(to, t.graft(from, a.refs));
          else t.prune(from);
        }, delay);
      }
    }
  }

  broadcast(origin: string, id: string): void {
    this.delivered.get(origin)!.add(`${origin}/${id}`);
    this.run(origin, this.trees.get(origin)!.broadcast(ref(origin, id), { text: id }));
  }

  kill(id: string): void {
    this.dead.add(id);
    this.trees.get(id)!.close();
  }

  /** The failure detector's verdict reaches everyone. */
  declareDead(id: string): void {
    for (const [other, t] of this.trees) if (!this.dead.has(other)) t.removePeer(id);
  }

  reachedAll(key: string): boolean {
    for (const [id, got] of this.delivered) if (!this.dead.has(id) && !got.has(key)) return false;
    return true;
  }
}

describe('Plumtree across 40 simulated peers', () => {
  test('the tree forms (n − 1 pushes per broadcast), and repairs itself after failures', async (t) => {
    const seed = Number(process.env.TSP2P_SEED ?? 7);
    t.diagnostic(`seed ${seed}`);
    const net = new TreeNet(40, seed);
    const ids = [...net.trees.keys()];
    await net.clock.advance(2_000); // the greetings
    const pushesPerBroadcast: number[] = [];
    for (let i = 0; i < 30; i++) {
      const before = net.counts.push;
      const origin = ids[Math.floor(net.random.next() * ids.length)]!;
      net.broadcast(origin, `m${i}`);
      await net.clock.advance(3_000);
      assert.ok(net.reachedAll(`${origin}/m${i}`), `seed ${seed}: broadcast ${i} reached everyone`);
      pushesPerBroadcast.push(net.counts.push - before);
    }
    t.diagnostic(`pushes per broadcast: ${pushesPerBroadcast.join(' ')}`);
    assert.ok(pushesPerBroadcast[0]! > 39, 'the first broadcast floods the initial view');
    assert.equal(pushesPerBroadcast.at(-1), 39, `seed ${seed}: a spanning tree in steady state`);

    // Kill a few interior nodes of the tree: the survivors graft around them, at once (IHAVEs),
    // before the failure detector has spoken, and again after it has.
    const victims = ids.slice(0, 4);
    for (const v of victims) net.kill(v);
    const survivors = ids.filter((id) => !victims.includes(id));
    for (let i = 0; i < 10; i++) {
      const origin = survivors[Math.floor(net.random.next() * survivors.length)]!;
      net.broadcast(origin, `k${i}`);
      await net.clock.advance(5_000);
      assert.ok(net.reachedAll(`${origin}/k${i}`), `seed ${seed}: broadcast k${i} reached every survivor`);
      if (i === 4) for (const v of victims) net.declareDead(v);
    }
    assert.ok(net.counts.graft > 0, 'the tree was repaired by GRAFTs');
  });
});
