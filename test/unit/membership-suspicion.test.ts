import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { wallTime } from '../../src/clock.js';
import { retransmitLimit } from '../../src/membership/gossip-queue.js';
import { RESTART_REACH, startIncarnation } from '../../src/membership/membership.js';
import { suspicionBounds, suspicionTimeout } from '../../src/membership/timings.js';
import { MAX_INCARNATION } from '../../src/protocol/schema.js';
import { type MembershipHarness, membershipHarness, peer, update } from '../helpers/unit-membership.js';

const A = peer('a', 5001, 'ann');
const B = peer('b', 5002);
const C = peer('c', 5003);
const D = peer('d', 5004);
const E = peer('e', 5005);

/** Small, round timings: min = 3 × 100 ms for up to 10 nodes, max = 6 × min, k = 3. */
const TIMINGS = { probeIntervalMs: 100, suspicionMult: 3, suspicionMaxMult: 6, indirectProbes: 3 };

/** The suspicion deadline (ms after its start) after `c` confirmations, from the timings' formulas. */
function deadline(h: MembershipHarness, c: number): number {
  const { minMs, maxMs } = suspicionBounds(h.timings, h.membership.liveCount + 1);
  return suspicionTimeout(minMs, maxMs, c, h.timings.indirectProbes);
}

function harness(): MembershipHarness {
  const h = membershipHarness({ timings: TIMINGS });
  h.joinAll([A, B, C, D, E]);
  return h;
}

const stateOf = (h: MembershipHarness, id: string): string | undefined => h.membership.get(id)?.state;

describe('Membership: suspicion timeout', () => {
  test('an unrefuted suspicion expires into dead after the max bound (no confirmations)', async () => {
    const h = harness();
    const start = h.clock.now();
    h.membership.suspect('a');
    const timeout = deadline(h, 0);
    const { maxMs } = suspicionBounds(h.timings, 6);
    assert.equal(timeout, maxMs, 'it starts at max');
    await h.clock.advance(timeout - 1);
    assert.equal(stateOf(h, 'a'), 'suspect');
    assert.deepEqual(h.take(), ['member:suspect a']);
    await h.clock.advance(1);
    assert.equal(h.clock.now(), start + timeout);
    assert.equal(stateOf(h, 'a'), 'dead');
    assert.deepEqual(h.take(), ['member:fail a']);
    // Its death is news to spread.
    assert.ok(h.membership.piggyback().some((u) => u.id === 'a' && u.state === 'dead'));
    await h.clock.advance(10 * timeout);
    assert.deepEqual(h.take(), []);
    assert.equal(h.clock.pending, 0);
  });

  test('the bounds grow with the network (log10 n)', async () => {
    const h = membershipHarness({ timings: TIMINGS });
    const many = Array.from({ length: 40 }, (_, i) => peer(`m${i}`, 6000 + i));
    h.joinAll(many);
    const timeout = deadline(h, 0);
    assert.ok(timeout > suspicionBounds(h.timings, 10).maxMs);
    h.membership.suspect('m0');
    await h.clock.advance(timeout - 1);
    assert.equal(stateOf(h, 'm0'), 'suspect');
    await h.clock.advance(1);
    assert.equal(stateOf(h, 'm0'), 'dead');
  });

  test('independent confirmations shrink it (Lifeguard), each to the formula', async () => {
    const h = harness();
    const start = h.clock.now();
    h.membership.suspect('a');
    await h.clock.advance(10);
    // b and c confirm; a repeat of b, and this node itself, do not count.
    h.membership.apply(update(A, 'suspect', 0, { by: 'b' }));
    h.membership.apply(update(A, 'suspect', 0, { by: 'b' }));
    h.membership.apply(update(A, 'suspect', 0, { by: 'self' }));
    await h.clock.advance(10);
    h.membership.apply(update(A, 'suspect', 0, { by: 'c' }));
    const two = deadline(h, 2);
    assert.ok(two < deadline(h, 1) && deadline(h, 1) < deadline(h, 0));
    await h.clock.advance(start + two - 1 - h.clock.now());
    assert.equal(stateOf(h, 'a'), 'suspect');
    await h.clock.advance(1);
    assert.equal(stateOf(h, 'a'), 'dead');
    assert.deepEqual(h.take(), ['member:suspect a', 'member:fail a']);
  });

  test('k confirmations bring it down to the min bound, and more do not go below it', async () => {
    const h = harness();
    const start = h.clock.now();
    h.membership.suspect('a');
    for (const by of ['b', 'c', 'd', 'e', 'x', 'y']) h.membership.apply(update(A, 'suspect', 0, { by }));
    const { minMs } = suspicionBounds(h.timings, h.membership.liveCount + 1);
    assert.equal(deadline(h, 6), minMs);
    await h.clock.advance(minMs - 1);
    assert.equal(stateOf(h, 'a'), 'suspect');
    await h.clock.advance(1);
    assert.equal(h.clock.now(), start + minMs);
    assert.equal(stateOf(h, 'a'), 'dead');
  });

  test('a confirmation after the shrunk deadline has passed expires the suspicion at once', async () => {
    const h = harness();
    h.membership.suspect('a');
    await h.clock.advance(deadline(h, 1));
    assert.equal(stateOf(h, 'a'), 'suspect');
    h.membership.apply(update(A, 'suspect', 0, { by: 'b' }));
    await h.clock.advance(0);
    assert.equal(stateOf(h, 'a'), 'dead');
  });

  test('a suspicion heard from another node starts at max: its originator is no confirmation', async () => {
    const h = harness();
    const start = h.clock.now();
    h.membership.apply(update(A, 'suspect', 0, { by: 'b' }));
    assert.deepEqual(h.take(), ['member:suspect a']);
    await h.clock.advance(deadline(h, 0) - 1);
    assert.equal(stateOf(h, 'a'), 'suspect');
    await h.clock.advance(1);
    assert.equal(stateOf(h, 'a'), 'dead');
    assert.equal(h.clock.now(), start + deadline(h, 0));
  });

  test('a second suspecter does count as a confirmation of a suspicion heard from another node', async () => {
    const h = harness();
    const start = h.clock.now();
    h.membership.apply(update(A, 'suspect', 0, { by: 'b' }));
    h.membership.apply(update(A, 'suspect', 0, { by: 'b' }));
    h.membership.apply(update(A, 'suspect', 0, { by: 'c' }));
    // The confirmation is news to spread too.
    assert.ok(h.membership.piggyback().some((u) => u.id === 'a' && u.state === 'suspect' && u.by === 'c'));
    await h.clock.advance(deadline(h, 1) - 1);
    assert.equal(stateOf(h, 'a'), 'suspect');
    await h.clock.advance(1);
    assert.equal(stateOf(h, 'a'), 'dead');
    assert.equal(h.clock.now(), start + deadline(h, 1));
  });

  test('a refutation before expiry prevents the death', async () => {
    const h = harness();
    h.membership.suspect('a');
    h.membership.apply(update(A, 'suspect', 0, { by: 'b' }));
    await h.clock.advance(deadline(h, 1) - 1);
    h.membership.apply(update(A, 'alive', 1));
    assert.deepEqual(h.take(), ['member:suspect a', 'member:update a']);
    await h.clock.advance(10 * deadline(h, 0));
    assert.equal(stateOf(h, 'a'), 'alive');
    assert.deepEqual(h.take(), []);
    assert.equal(h.clock.pending, 0, 'the suspicion timer is gone');
  });

  test('a new suspicion after a refutation gets a fresh, full timeout', async () => {
    const h = harness();
    h.membership.suspect('a');
    await h.clock.advance(deadline(h, 0) - 1);
    h.membership.apply(update(A, 'alive', 1));
    const start = h.clock.now();
    h.membership.suspect('a');
    assert.equal(h.membership.get('a')?.incarnation, 1);
    await h.clock.advance(deadline(h, 0) - 1);
    assert.equal(stateOf(h, 'a'), 'suspect');
    await h.clock.advance(1);
    assert.equal(h.clock.now(), start + deadline(h, 0));
    assert.equal(stateOf(h, 'a'), 'dead');
    assert.deepEqual(h.take(), ['member:suspect a', 'member:update a', 'member:suspect a', 'member:fail a']);
  });

  test('news of death or departure during a suspicion ends it with one event, and no timer fires', async () => {
    for (const end of ['dead', 'left'] as const) {
      const h = harness();
      h.membership.suspect('a');
      h.membership.apply(update(A, end, 0));
      await h.clock.advance(10 * deadline(h, 0));
      assert.deepEqual(h.take(), ['member:suspect a', end === 'dead' ? 'member:fail a' : 'member:leave a']);
      assert.equal(stateOf(h, 'a'), end);
    }
  });

  test('close() and leaveNetwork() cancel every suspicion timer', async () => {
    for (const how of ['close', 'leaveNetwork'] as const) {
      const h = harness();
      h.membership.suspect('a');
      h.membership.suspect('b');
      h.membership[how]();
      assert.equal(h.clock.pending, 0, how);
      await h.clock.advance(10 * deadline(h, 0));
      assert.deepEqual(h.take(), ['member:suspect a', 'member:suspect b'], how);
    }
  });
});

describe('Membership: news about this node', () => {
  for (const state of ['suspect', 'dead', 'left'] as const) {
    test(`news that this node is ${state} raises its incarnation above it and queues an alive update`, () => {
      const h = harness();
      while (h.membership.piggyback().length > 0);
      const self = h.self;
      assert.equal(h.membership.incarnation, 0);
      assert.equal(h.membership.apply(update(self, state, 0, { by: 'b' })), true);
      assert.equal(h.membership.incarnation, 1);
      assert.deepEqual(h.membership.piggyback(), [update(self, 'alive', 1)]);
      // Someone else saw it at a higher incarnation (at most INC_STEP above: issue 19): go above that.
      h.membership.apply(update(self, state, 2));
      assert.equal(h.membership.incarnation, 3);
      assert.deepEqual(h.membership.selfUpdate(), update(self, 'alive', 3));
      // Old news is already refuted.
      assert.equal(h.membership.apply(update(self, state, 1)), false);
      assert.equal(h.membership.incarnation, 3);
      // News beyond what anyone can hold of this node is not refuted: it would only spend
      // incarnations (nobody else takes it, see news.ts). What its last run may have reached
      // (a restart starts at the wall clock's seconds) is within reach.
      const reach = startIncarnation(wallTime(h.clock)) + RESTART_REACH;
      assert.equal(h.membership.apply(update(self, state, reach + 1)), false);
      assert.equal(h.membership.apply(update(self, state, Number.MAX_SAFE_INTEGER)), false);
      assert.equal(h.membership.apply(update(self, state, MAX_INCARNATION)), false);
      assert.equal(h.membership.incarnation, 3);
      assert.equal(h.membership.apply(update(self, state, reach - 1)), true);
      assert.equal(h.membership.incarnation, reach);
      assert.deepEqual(h.take(), []);
      assert.equal(h.membership.get(self.id), undefined, 'self is never in its own table');
    });
  }

  test('news that this node is alive at a higher incarnation is adopted, without refuting', () => {
    const h = harness();
    while (h.membership.piggyback().length > 0);
    // An entry point raises it by one on a return (issue 19: never more).
    assert.equal(h.membership.apply(update(h.self, 'alive', 1)), false);
    assert.equal(h.membership.incarnation, 1);
    assert.deepEqual(h.membership.piggyback(), []);
    h.membership.apply(update(h.self, 'alive', 0));
    assert.equal(h.membership.incarnation, 1);
    // What others hold of its last run (a restart without a store starts lower): adopted.
    h.membership.apply(update(h.self, 'alive', 4));
    assert.equal(h.membership.incarnation, 4);
    const reach = startIncarnation(wallTime(h.clock)) + RESTART_REACH;
    h.membership.apply(update(h.self, 'alive', reach + 1));
    assert.equal(h.membership.incarnation, 4, 'beyond reach: not adopted');
    assert.deepEqual(h.membership.piggyback(), []);
  });

  test('news that puts this node at another address or name is refuted at once', () => {
    const h = harness();
    while (h.membership.piggyback().length > 0);
    const elsewhere = { ...h.self, address: '127.0.0.2' };
    assert.equal(h.membership.apply(update(elsewhere, 'alive', 0)), true);
    assert.equal(h.membership.incarnation, 1);
    assert.deepEqual(h.membership.piggyback(), [update(h.self, 'alive', 1)]);
    assert.equal(h.membership.apply(update({ ...h.self, name: 'mallory' }, 'alive', 1)), true);
    assert.equal(h.membership.apply(update({ ...h.self, port: 1 }, 'alive', 2, { unsigned: true })), true);
    assert.equal(h.membership.incarnation, 3);
  });

  test('suspect() of this node does nothing', () => {
    const h = harness();
    h.membership.suspect('self');
    assert.equal(h.membership.incarnation, 0);
    assert.deepEqual(h.take(), []);
  });
});

describe('Membership: leaving, limits, addresses, gossip, tombstones', () => {
  test('leaveNetwork() empties the view, keeps the incarnation, and stops news from re-adding members', () => {
    const h = harness();
    assert.equal(h.membership.active, true);
    h.membership.leaveNetwork();
    assert.equal(h.membership.active, false);
    assert.deepEqual(h.membership.all(), []);
    // What the node still says before it returns carries the incarnation its leave has.
    assert.equal(h.membership.incarnation, 0);
    assert.equal(h.membership.hasGossip, false);
    assert.equal(h.membership.apply(update(A, 'alive', 9)), false);
    h.membership.applyAll([
      update(B, 'alive', 0),
      update(C, 'suspect', 0, { by: 'd' }),
      update(D, 'dead', 0),
    ]);
    assert.equal(h.membership.apply(update(h.self, 'dead', 5)), false);
    assert.deepEqual(h.membership.all(), []);
    assert.equal(h.membership.incarnation, 0);
    assert.deepEqual(h.take(), []);
    // Joining again raises the incarnation (once) and makes it take news once more.
    h.membership.join(A, 'tsp2p');
    assert.equal(h.membership.incarnation, 1);
    assert.equal(h.membership.apply(update(B, 'alive', 0)), true);
    assert.deepEqual(h.take(), ['member:join a', 'member:join b']);
    h.membership.join(C, 'tsp2p');
    assert.equal(h.membership.incarnation, 1);
  });

  test('leaveNetwork() before any join raises nothing at the first join', () => {
    const h = membershipHarness({ timings: TIMINGS });
    h.membership.leaveNetwork();
    h.membership.join(A, 'tsp2p');
    assert.equal(h.membership.incarnation, 0);
  });

  test('a leave is recorded at the incarnation the leaver gave, when it is above the one held', () => {
    const h = harness();
    h.membership.join(A, 'tsp2p', 2);
    h.membership.join(B, 'tsp2p', 4);
    h.take();
    h.membership.leave(A.id, 5);
    h.membership.leave(B.id, 1);
    assert.equal(`${h.membership.get(A.id)?.state}@${h.membership.get(A.id)?.incarnation}`, 'left@5');
    assert.equal(`${h.membership.get(B.id)?.state}@${h.membership.get(B.id)?.incarnation}`, 'left@4');
    // A's refutation at 5, heard only now, does not undo the leave; a return at 6 does.
    assert.equal(h.membership.apply(update(A, 'alive', 5)), false);
    assert.equal(h.membership.apply(update(A, 'alive', 6)), true);
    assert.deepEqual(h.take(), ['member:leave a', 'member:leave b', 'member:join a']);
  });

  test('maxMembers: a new member beyond the limit is refused, with a warning', () => {
    const h = membershipHarness({ maxMembers: 2 });
    h.joinAll([A, B]);
    assert.equal(h.membership.hasRoom(), false);
    assert.equal(h.membership.apply(update(C, 'alive', 0)), false);
    h.membership.join(D, 'tsp2p');
    assert.equal(h.membership.get('c'), undefined);
    assert.equal(h.membership.get('d'), undefined);
    assert.equal(h.membership.liveCount, 2);
    assert.deepEqual(h.take(), []);
    assert.ok(h.logs.some((l) => l.level === 'warn'));
    // Tombstones do not count: once one leaves, there is room again.
    h.membership.leave('a');
    assert.equal(h.membership.hasRoom(), true);
    assert.equal(h.membership.apply(update(C, 'alive', 0)), true);
    assert.equal(h.membership.liveCount, 2);
  });

  test('maxMembers: a dead or departed member coming back does not exceed the limit either', () => {
    const h = membershipHarness({ maxMembers: 2 });
    h.joinAll([A, B]);
    h.membership.apply(update(A, 'dead', 0));
    h.membership.leave('b');
    h.joinAll([C, D]);
    assert.equal(h.membership.liveCount, 2);
    assert.equal(h.membership.apply(update(A, 'alive', 1)), false);
    assert.equal(h.membership.apply(update(B, 'alive', 1)), false);
    assert.equal(h.membership.liveCount, 2);
    assert.deepEqual(h.take(), []);
    assert.equal(h.membership.get('a')?.state, 'dead');
  });

  test('address takeover: a new id at a member address fails no one; the holder keeps it until it fails', async () => {
    // Issue 19: was "fails the old holder at once" (a squatter's gossip evicted live members).
    const contested: string[] = [];
    const h = membershipHarness({ timings: TIMINGS, onContest: (m) => contested.push(m.peer.id) });
    h.joinAll([A, B, C, D, E]);
    const newcomer = peer('a2', A.port, 'ann');
    // Third-party news of it (with its own record): it joins, and nobody is failed or probed.
    assert.equal(h.membership.apply(update(newcomer, 'alive', 0)), true);
    assert.deepEqual(h.take(), ['member:join a2']);
    assert.equal(h.membership.get('a')?.state, 'alive');
    assert.equal(h.membership.getByAddress(A.address, A.port)?.peer.id, 'a', 'the holder keeps the address');
    assert.deepEqual(contested, []);
    // Its own word (its signed request): the holder is probed at once, and still not failed.
    h.membership.apply(update(newcomer, 'alive', 0), { own: true });
    assert.deepEqual(contested, ['a']);
    assert.equal(h.membership.get('a')?.state, 'alive');
    // The holder fails its probes (a restart under a new id): then the newcomer holds the address.
    h.membership.suspect('a');
    await h.clock.advance(deadline(h, 0));
    assert.deepEqual(h.take(), ['member:suspect a', 'member:fail a']);
    assert.equal(h.membership.getByAddress(A.address, A.port)?.peer.id, 'a2');
    assert.equal(h.membership.liveMember(undefined, A.address, A.port)?.peer.id, 'a2');
  });

  test('piggyback hands out each update retransmitLimit times, at most maxPiggyback at once', () => {
    const h = membershipHarness({ timings: { retransmitMult: 2, maxPiggyback: 3 } });
    h.joinAll([A, B, C, D, E]);
    const limit = retransmitLimit(2, h.membership.liveCount + 1);
    assert.equal(limit, 2);
    const counts = new Map<string, number>();
    let batches = 0;
    while (h.membership.hasGossip) {
      const batch = h.membership.piggyback();
      assert.ok(batch.length > 0 && batch.length <= 3);
      for (const u of batch) counts.set(u.id, (counts.get(u.id) ?? 0) + 1);
      assert.ok(++batches <= 10);
    }
    assert.deepEqual([...counts.values()], [limit, limit, limit, limit, limit]);
    assert.deepEqual(h.membership.piggyback(), []);
    assert.equal(h.membership.piggyback(1).length, 0);
  });

  test('the retransmit limit grows with the network', () => {
    const h = membershipHarness({ timings: { retransmitMult: 2, maxPiggyback: 100 } });
    h.joinAll(Array.from({ length: 12 }, (_, i) => peer(`m${i}`, 6000 + i)));
    const limit = retransmitLimit(2, 13);
    assert.equal(limit, 4);
    let rounds = 0;
    while (h.membership.hasGossip) {
      h.membership.piggyback();
      rounds++;
    }
    assert.equal(rounds, limit);
  });

  test('reap() forgets dead and departed members after their retention, and never live ones', async () => {
    const h = membershipHarness({ timings: { deadRetentionMs: 5_000, leftRetentionMs: 2_000 } });
    h.joinAll([A, B, C]);
    h.membership.apply(update(A, 'dead', 0));
    h.membership.leave('b');
    assert.deepEqual(h.take(), ['member:fail a', 'member:leave b']);
    await h.clock.advance(2_000 - 1);
    h.membership.reap();
    assert.deepEqual(
      h.membership.all().map((m) => m.peer.id),
      ['a', 'b', 'c'],
    );
    await h.clock.advance(1);
    h.membership.reap();
    assert.deepEqual(
      h.membership.all().map((m) => m.peer.id),
      ['a', 'c'],
    );
    await h.clock.advance(5_000 - 2_000 - 1);
    h.membership.reap();
    assert.ok(h.membership.get('a'));
    await h.clock.advance(1);
    h.membership.reap();
    assert.deepEqual(
      h.membership.all().map((m) => m.peer.id),
      ['c'],
    );
    await h.clock.advance(1_000_000);
    h.membership.reap();
    assert.equal(h.membership.get('c')?.state, 'alive');
    assert.deepEqual(h.take(), []);
  });

  test('a reaped member is not brought back by stale news, only by its own word at a higher incarnation', async () => {
    const h = membershipHarness({ timings: { deadRetentionMs: 5_000, leftRetentionMs: 2_000 } });
    h.joinAll([A, B, C]);
    h.membership.apply(update(A, 'dead', 3));
    h.membership.leave('b');
    h.take();
    await h.clock.advance(5_000);
    h.membership.reap();
    assert.equal(h.membership.get('a'), undefined);
    assert.equal(h.membership.get('b'), undefined);
    // A push-pull from a node that was away: their old records, signed and alive.
    for (const u of [update(A, 'alive', 3), update(A, 'suspect', 2), update(B, 'alive', 0)]) {
      assert.equal(h.membership.apply(u), false);
    }
    assert.deepEqual(h.take(), []);
    // Back for real: a higher incarnation, or its own word.
    assert.equal(h.membership.apply(update(A, 'alive', 4)), true);
    assert.equal(h.membership.apply(update(B, 'alive', 0), { own: true }), true);
    assert.deepEqual(h.take(), ['member:join a', 'member:join b']);
  });

  test('touch() records when a member was last heard from', async () => {
    const h = harness();
    await h.clock.advance(123);
    h.membership.touch('a');
    assert.equal(h.membership.get('a')?.lastSeen, h.clock.now());
    h.membership.touch('zz');
  });
});
