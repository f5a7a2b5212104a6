import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { GossipQueue, retransmitLimit } from '../../src/membership/gossip-queue.js';
import type { MemberState } from '../../src/membership/member-table.js';
import { compareUpdates, type MemberUpdate } from '../../src/membership/merge.js';

// Reproduce a failure with TSP2P_SEED=<seed printed below>.
const SEED = process.env.TSP2P_SEED === undefined ? 20261203 : Number(process.env.TSP2P_SEED);
console.log(`gossip-queue: fast-check seed ${SEED} (set TSP2P_SEED to replay)`);

function check<Ts extends [unknown, ...unknown[]]>(property: fc.IProperty<Ts>, numRuns = 300): void {
  try {
    fc.assert(property, { seed: SEED, numRuns });
  } catch (err) {
    console.error(`gossip-queue property failed with seed ${SEED}`);
    throw err;
  }
}

const u = (id: string, state: MemberState, inc: number): MemberUpdate => ({
  id,
  address: '127.0.0.1',
  port: 5000,
  state,
  inc,
});

const ids = (updates: readonly MemberUpdate[]): string[] => updates.map((x) => x.id);

describe('retransmitLimit', () => {
  test('retransmitMult × ⌈log10(n + 1)⌉, at least retransmitMult', () => {
    assert.equal(retransmitLimit(4, 0), 4);
    assert.equal(retransmitLimit(4, 1), 4);
    assert.equal(retransmitLimit(4, 9), 4);
    assert.equal(retransmitLimit(4, 10), 8);
    assert.equal(retransmitLimit(4, 99), 8);
    assert.equal(retransmitLimit(4, 100), 12);
    assert.equal(retransmitLimit(3, 1_000), 12);
    assert.equal(retransmitLimit(1, 5), 1);
  });

  test('never shrinks as the network grows (fast-check)', () => {
    check(
      fc.property(fc.integer({ min: 1, max: 10 }), fc.nat(1_000_000), fc.nat(1_000_000), (mult, a, b) => {
        const [lo, hi] = a <= b ? [a, b] : [b, a];
        assert.ok(retransmitLimit(mult, lo) <= retransmitLimit(mult, hi));
        assert.ok(retransmitLimit(mult, lo) >= mult);
        assert.equal(retransmitLimit(mult, lo) % mult, 0);
      }),
    );
  });
});

describe('GossipQueue', () => {
  test('starts empty; take on an empty queue, or with max <= 0, gives nothing', () => {
    const q = new GossipQueue();
    assert.equal(q.size, 0);
    assert.deepEqual(q.take(10, 3), []);
    q.enqueue(u('a', 'alive', 0));
    assert.deepEqual(q.take(0, 3), []);
    assert.deepEqual(q.take(-1, 3), []);
    assert.equal(q.size, 1);
  });

  test('a newer update about a member replaces the older one', () => {
    const q = new GossipQueue();
    q.enqueue(u('a', 'alive', 0));
    q.enqueue(u('a', 'suspect', 0));
    assert.equal(q.size, 1);
    assert.deepEqual(q.take(10, 5), [u('a', 'suspect', 0)]);
    q.enqueue(u('a', 'alive', 1));
    assert.deepEqual(q.take(10, 5), [u('a', 'alive', 1)]);
  });

  test('an older update does not replace a newer one', () => {
    const q = new GossipQueue();
    q.enqueue(u('a', 'dead', 2));
    q.enqueue(u('a', 'alive', 1));
    q.enqueue(u('a', 'suspect', 2));
    assert.equal(q.size, 1);
    assert.deepEqual(q.take(10, 5), [u('a', 'dead', 2)]);
  });

  test('hands out at most max updates, least-sent first', () => {
    const q = new GossipQueue();
    q.enqueue(u('a', 'alive', 0));
    q.enqueue(u('b', 'alive', 0));
    q.enqueue(u('c', 'alive', 0));
    const first = ids(q.take(2, 10));
    assert.equal(new Set(first).size, 2);
    // The one not sent yet goes before those sent once.
    const rest = ['a', 'b', 'c'].filter((id) => !first.includes(id));
    assert.deepEqual(ids(q.take(1, 10)), rest);
    // All sent once: the next message carries all three.
    assert.deepEqual(ids(q.take(3, 10)).sort(), ['a', 'b', 'c']);
    const once = ids(q.take(1, 10));
    assert.equal(once.length, 1);
    // The two sent twice go before the one sent three times.
    assert.deepEqual(
      ids(q.take(2, 10)).sort(),
      ['a', 'b', 'c'].filter((id) => id !== once[0]),
    );
  });

  test('fresh news overtakes news that has already travelled', () => {
    const q = new GossipQueue();
    q.enqueue(u('a', 'alive', 0));
    q.enqueue(u('b', 'alive', 0));
    q.take(2, 10);
    q.enqueue(u('c', 'alive', 0));
    // A newer update about a restarts its count.
    q.enqueue(u('a', 'suspect', 0));
    assert.deepEqual(
      q.take(2, 10).sort((x, y) => (x.id < y.id ? -1 : 1)),
      [u('a', 'suspect', 0), u('c', 'alive', 0)],
    );
    assert.deepEqual(ids(q.take(1, 10)), ['b']);
  });

  test('an update is dropped once sent `limit` times', () => {
    const q = new GossipQueue();
    q.enqueue(u('a', 'alive', 0));
    for (let i = 0; i < 3; i++) assert.deepEqual(ids(q.take(5, 3)), ['a'], `transmission ${i + 1}`);
    assert.equal(q.size, 0);
    assert.deepEqual(q.take(5, 3), []);
  });

  test('a newer update about a member is sent `limit` more times', () => {
    const q = new GossipQueue();
    q.enqueue(u('a', 'alive', 0));
    q.take(5, 3);
    q.take(5, 3);
    q.enqueue(u('a', 'alive', 1));
    for (let i = 0; i < 3; i++) assert.deepEqual(q.take(5, 3), [u('a', 'alive', 1)]);
    assert.equal(q.size, 0);
  });

  test('an update queued as sent `sent` times goes out `limit - sent` times, after fresh news', () => {
    const q = new GossipQueue();
    q.enqueue({ ...u('a', 'suspect', 0), by: 'c' }, 6);
    q.enqueue(u('b', 'alive', 0));
    assert.deepEqual(ids(q.take(1, 9)), ['b'], 'fresh news first');
    const sent = [];
    for (let i = 0; i < 10; i++) sent.push(...ids(q.take(1, 9)));
    assert.equal(sent.filter((x) => x === 'a').length, 3);
  });

  test('replacing the same state at the same incarnation keeps the transmissions made, if more', () => {
    const q = new GossipQueue();
    q.enqueue({ ...u('a', 'suspect', 0), by: 'b' });
    for (let i = 0; i < 8; i++) q.take(5, 9);
    q.enqueue({ ...u('a', 'suspect', 0), by: 'c' }, 3);
    assert.deepEqual(q.take(5, 9), [{ ...u('a', 'suspect', 0), by: 'c' }]);
    assert.equal(q.size, 0, 'sent 9 times in all');
    // Another state (or incarnation) is news of its own: `sent` only.
    q.enqueue({ ...u('a', 'suspect', 0), by: 'b' });
    for (let i = 0; i < 8; i++) q.take(5, 9);
    q.enqueue(u('a', 'dead', 0), 3);
    let n = 0;
    while (q.take(5, 9).length > 0) n++;
    assert.equal(n, 6);
  });

  test('clear drops everything', () => {
    const q = new GossipQueue();
    q.enqueue(u('a', 'alive', 0));
    q.enqueue(u('b', 'alive', 0));
    q.clear();
    assert.equal(q.size, 0);
    assert.deepEqual(q.take(5, 3), []);
  });

  test('each member newest update is handed out exactly `limit` times (fast-check)', () => {
    const update = fc
      .record({
        id: fc.constantFrom('a', 'b', 'c', 'd', 'e'),
        state: fc.constantFrom<MemberState>('alive', 'suspect', 'dead', 'left'),
        inc: fc.nat(3),
      })
      .map(({ id, state, inc }) => u(id, state, inc));
    check(
      fc.property(
        fc.array(update, { minLength: 1, maxLength: 30 }),
        fc.integer({ min: 1, max: 6 }),
        fc.integer({ min: 1, max: 5 }),
        (updates, limit, max) => {
          const q = new GossipQueue();
          for (const x of updates) q.enqueue(x);
          const newest = new Map<string, MemberUpdate>();
          for (const x of updates) {
            const cur = newest.get(x.id);
            if (cur === undefined || compareUpdates(x, cur) >= 0) newest.set(x.id, x);
          }
          assert.equal(q.size, newest.size);
          const sent = new Map<string, number>();
          let rounds = 0;
          while (q.size > 0) {
            const batch = q.take(max, limit);
            assert.ok(batch.length >= 1 && batch.length <= max);
            assert.equal(new Set(ids(batch)).size, batch.length, 'one update per member per message');
            for (const x of batch) {
              assert.equal(compareUpdates(x, newest.get(x.id)!), 0);
              sent.set(x.id, (sent.get(x.id) ?? 0) + 1);
            }
            assert.ok(++rounds <= newest.size * limit, 'the queue drains');
          }
          for (const id of newest.keys()) assert.equal(sent.get(id), limit, id);
        },
      ),
    );
  });
});

describe('GossipQueue: what the recipient holds already', () => {
  const held = (...updates: MemberUpdate[]) => new Map(updates.map((x) => [x.id, x]));

  test('an update the recipient sent as new or newer is passed over, not counted, and goes next', () => {
    const q = new GossipQueue();
    q.enqueue(u('a', 'alive', 1));
    q.enqueue(u('b', 'suspect', 2));
    q.enqueue(u('c', 'alive', 0));
    // The recipient holds a's update and a newer one about c; b it does not hold.
    assert.deepEqual(ids(q.take(10, 3, held(u('a', 'alive', 1), u('c', 'alive', 4)))), ['b']);
    // a and c were not counted: each still goes out 3 times, and before b (sent once).
    assert.deepEqual(ids(q.take(2, 3)), ['a', 'c']);
    // Each of the three goes out exactly 3 times in all.
    for (let i = 0; i < 2; i++) assert.deepEqual(ids(q.take(10, 3)).sort(), ['a', 'b', 'c']);
    assert.equal(q.size, 0);
  });

  test('an older statement from the recipient does not hold the update back', () => {
    const q = new GossipQueue();
    q.enqueue(u('a', 'dead', 3));
    assert.deepEqual(ids(q.take(10, 3, held(u('a', 'suspect', 3)))), ['a']);
    assert.deepEqual(ids(q.take(10, 3, held(u('a', 'alive', 2)))), ['a']);
  });

  test("a confirmation of a suspicion is held back only by the same confirmer's", () => {
    const q = new GossipQueue();
    q.enqueue({ ...u('a', 'suspect', 1), by: 'x' });
    assert.deepEqual(ids(q.take(10, 3, held({ ...u('a', 'suspect', 1), by: 'y' }))), ['a']);
    assert.deepEqual(ids(q.take(10, 3, held({ ...u('a', 'suspect', 1), by: 'x' }))), []);
    assert.deepEqual(ids(q.take(10, 3)), ['a']);
  });

  test('passing over keeps the order of the rest and counts nothing, however many are held (fast-check)', () => {
    check(
      fc.property(
        fc.uniqueArray(fc.integer({ min: 0, max: 30 }), { minLength: 1, maxLength: 30 }),
        fc.array(fc.boolean(), { minLength: 30, maxLength: 30 }),
        fc.integer({ min: 1, max: 40 }),
        (members, heldFlags, max) => {
          const q = new GossipQueue();
          for (const m of members) q.enqueue(u(`m${m}`, 'alive', 1));
          const h = held(...members.filter((_, i) => heldFlags[i]).map((m) => u(`m${m}`, 'alive', 1)));
          const first = q.take(max, 5, h);
          const expected = members.filter((_, i) => !heldFlags[i]).map((m) => `m${m}`);
          assert.deepEqual(ids(first), expected.slice(0, max));
          // Those passed over were not counted: with the ones not reached, they come first
          // now, in their order, then the ones sent.
          const sent = new Set(ids(first));
          const rest = members.map((m) => `m${m}`).filter((id) => !sent.has(id));
          assert.deepEqual(ids(q.take(100, 5)), [...rest, ...ids(first)]);
        },
      ),
    );
  });
});
