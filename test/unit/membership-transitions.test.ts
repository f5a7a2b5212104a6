import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { MemberState } from '../../src/membership/member-table.js';
import { memberUpdate } from '../../src/membership/membership.js';
import {
  gopPeer,
  membershipHarness,
  peer,
  recordKey,
  recordSig,
  update,
} from '../helpers/unit-membership.js';

const A = peer('a', 5001, 'ann');
const B = peer('b', 5002, 'bob');
const C = peer('c', 5003);

type Prev = MemberState | 'unknown';
type Rel = 'lower' | 'equal' | 'higher';

/** A membership holding A in `prev` at incarnation 5 (and B alive), with no events recorded yet. */
function holding(prev: Prev) {
  const h = membershipHarness();
  h.joinAll([B]);
  if (prev !== 'unknown') {
    h.membership.apply(update(A, 'alive', 5));
    if (prev !== 'alive') h.membership.apply(update(A, prev, 5, prev === 'suspect' ? { by: 'b' } : {}));
    assert.equal(h.membership.get('a')?.state, prev);
    assert.equal(h.membership.get('a')?.incarnation, 5);
  }
  h.take();
  return h;
}

/**
 * The state diagram of membership.ts, as a table: what an update about A does to A in each state.
 * `event` is the one event that fires (or none), `state@inc` the record after the update.
 */
interface Row {
  readonly event: string | undefined;
  readonly after: string;
}

function expected(prev: Prev, next: MemberState, rel: Rel): Row {
  const inc = rel === 'lower' ? 4 : rel === 'equal' ? 5 : 6;
  const RANK = { alive: 0, suspect: 1, dead: 2, left: 3 } as const;
  if (prev === 'unknown') {
    // Only news of a member in the network makes it join; departures are remembered silently.
    const event = next === 'alive' || next === 'suspect' ? 'member:join' : undefined;
    return { event, after: `${next}@${inc}` };
  }
  const newer = rel === 'higher' || (rel === 'equal' && RANK[next] > RANK[prev]);
  if (!newer) return { event: undefined, after: `${prev}@5` };
  const wasLive = prev === 'alive' || prev === 'suspect';
  const isLive = next === 'alive' || next === 'suspect';
  let event: string | undefined;
  if (!wasLive) {
    // dead|left ──alive (or suspect), higher inc──▶ member:join; dead ⇄ left fire nothing.
    event = isLive ? 'member:join' : undefined;
  } else if (next === 'alive') {
    event = prev === 'suspect' ? 'member:update' : undefined;
  } else if (next === 'suspect') {
    event = prev === 'alive' ? 'member:suspect' : undefined;
  } else {
    event = next === 'dead' ? 'member:fail' : 'member:leave';
  }
  return { event, after: `${next}@${inc}` };
}

describe('Membership: the state diagram, exhaustively', () => {
  const prevs: Prev[] = ['unknown', 'alive', 'suspect', 'dead', 'left'];
  const nexts: MemberState[] = ['alive', 'suspect', 'dead', 'left'];
  const rels: Rel[] = ['lower', 'equal', 'higher'];
  for (const prev of prevs) {
    for (const next of nexts) {
      for (const rel of prev === 'unknown' ? (['equal'] as const) : rels) {
        const row = expected(prev, next, rel);
        const title = `${prev} + ${next}@${rel} inc → ${row.after}, ${row.event ?? 'no event'}`;
        test(title, () => {
          const h = holding(prev);
          const inc = rel === 'lower' ? 4 : rel === 'equal' ? 5 : 6;
          const u = update(A, next, inc, next === 'suspect' ? { by: 'c' } : {});
          const changed = h.membership.apply(u);
          const m = h.membership.get('a');
          assert.equal(m === undefined ? 'none' : `${m.state}@${m.incarnation}`, row.after);
          assert.deepEqual(h.take(), row.event === undefined ? [] : [`${row.event} a`]);
          assert.equal(changed, row.after !== (prev === 'unknown' ? 'none' : `${prev}@5`));
          // Exactly once: the same news again changes nothing and fires nothing.
          assert.equal(h.membership.apply(u), false);
          assert.deepEqual(h.take(), []);
          assert.equal(`${h.membership.get('a')?.state}@${h.membership.get('a')?.incarnation}`, row.after);
          // B is never touched.
          assert.equal(h.membership.get('b')?.state, 'alive');
        });
      }
    }
  }
});

describe('Membership: transitions and their events', () => {
  test('nothing is applied before this node joins a network', () => {
    const h = membershipHarness();
    assert.equal(h.membership.apply(update(A, 'alive', 0)), false);
    assert.equal(h.membership.get('a'), undefined);
    assert.deepEqual(h.take(), []);
  });

  test('join: a new member joins alive, once, with the event carrying its peer', () => {
    const h = membershipHarness();
    const r = h.membership.join(A, 'tsp2p');
    assert.equal(r.joined, true);
    assert.equal(r.member.state, 'alive');
    assert.equal(r.member.incarnation, 0);
    assert.equal(r.member.kind, 'tsp2p');
    assert.deepEqual(h.events, [{ event: 'member:join', id: 'a', peer: A }]);
    h.take();
    const again = h.membership.join(A, 'tsp2p');
    assert.equal(again.joined, false);
    assert.deepEqual(h.take(), []);
    assert.equal(h.membership.liveCount, 1);
  });

  test('join: a claimed incarnation is kept, and a lower one does not lower it', () => {
    const h = membershipHarness();
    assert.equal(h.membership.join(A, 'tsp2p', 3).member.incarnation, 3);
    assert.equal(h.membership.join(A, 'tsp2p', 1).member.incarnation, 3);
    assert.equal(h.membership.join(A, 'tsp2p', 7).member.incarnation, 7);
  });

  test('join: a gop2p member is kept as such, with its address as id', () => {
    const h = membershipHarness();
    const G = gopPeer(6001);
    const r = h.membership.join(G, 'gop2p');
    assert.equal(r.member.kind, 'gop2p');
    assert.equal(r.member.peer.id, '127.0.0.1:6001');
    assert.deepEqual(h.take(), ['member:join 127.0.0.1:6001']);
    assert.equal(h.membership.piggyback()[0]?.kind, 'gop2p');
  });

  test('suspect: an alive member becomes suspect, once', () => {
    const h = membershipHarness();
    h.joinAll([A]);
    h.membership.suspect('a');
    assert.equal(h.membership.get('a')?.state, 'suspect');
    h.membership.suspect('a');
    assert.deepEqual(h.take(), ['member:suspect a']);
    // A suspect is still in the network.
    assert.deepEqual(
      h.membership.live().map((m) => m.peer.id),
      ['a'],
    );
  });

  test('suspect: of an unknown, dead or departed member does nothing', () => {
    const h = membershipHarness();
    h.joinAll([A, B]);
    h.membership.apply(update(A, 'dead', 0));
    h.membership.leave('b');
    h.take();
    h.membership.suspect('a');
    h.membership.suspect('b');
    h.membership.suspect('zz');
    assert.deepEqual(h.take(), []);
    assert.equal(h.membership.get('a')?.state, 'dead');
    assert.equal(h.membership.get('b')?.state, 'left');
    assert.equal(h.membership.get('zz'), undefined);
  });

  test('refuted suspicion: suspect → alive at a higher incarnation fires member:update once', () => {
    const h = membershipHarness();
    h.joinAll([A]);
    h.membership.suspect('a');
    h.take();
    assert.equal(h.membership.apply(update(A, 'alive', 0)), false, 'alive at the same incarnation');
    assert.equal(h.membership.apply(update(A, 'alive', 1)), true);
    assert.equal(h.membership.apply(update(A, 'alive', 1)), false);
    assert.deepEqual(h.take(), ['member:update a']);
    assert.equal(h.membership.get('a')?.state, 'alive');
  });

  test('fail: alive or suspect → dead fires member:fail once; the member leaves the live list', () => {
    for (const from of ['alive', 'suspect'] as const) {
      const h = membershipHarness();
      h.joinAll([A, B]);
      if (from === 'suspect') h.membership.suspect('a');
      h.take();
      h.membership.apply(update(A, 'dead', 0));
      h.membership.apply(update(A, 'dead', 0));
      assert.deepEqual(h.take(), ['member:fail a'], from);
      assert.deepEqual(
        h.membership.live().map((m) => m.peer.id),
        ['b'],
      );
      assert.equal(h.membership.liveMember('a', A.address, A.port), undefined);
      assert.equal(h.membership.liveCount, 1);
    }
  });

  test('leave: alive or suspect → left fires member:leave once', () => {
    for (const from of ['alive', 'suspect'] as const) {
      const h = membershipHarness();
      h.joinAll([A]);
      if (from === 'suspect') h.membership.suspect('a');
      h.take();
      assert.equal(h.membership.leave('a')?.peer.id, 'a');
      assert.equal(h.membership.leave('a'), undefined);
      h.membership.apply(update(A, 'left', 0));
      assert.deepEqual(h.take(), ['member:leave a'], from);
      assert.equal(h.membership.get('a')?.state, 'left');
    }
  });

  test('leave of an unknown member does nothing', () => {
    const h = membershipHarness();
    h.joinAll([A]);
    assert.equal(h.membership.leave('zz'), undefined);
    assert.deepEqual(h.take(), []);
  });

  test('a graceful leave is never reported as a failure: left, then dead', () => {
    const h = membershipHarness();
    h.joinAll([A]);
    h.membership.leave('a');
    h.membership.apply(update(A, 'dead', 0));
    h.membership.apply(update(A, 'dead', 1));
    h.membership.apply(update(A, 'suspect', 0, { by: 'b' }));
    assert.deepEqual(h.take(), ['member:leave a']);
    assert.notEqual(h.membership.get('a')?.state, 'alive');
  });

  test('a failure is never reported as a leave: dead, then left', () => {
    const h = membershipHarness();
    h.joinAll([A]);
    h.membership.apply(update(A, 'dead', 0));
    assert.equal(h.membership.leave('a'), undefined);
    h.membership.apply(update(A, 'left', 0));
    h.membership.apply(update(A, 'left', 1));
    assert.deepEqual(h.take(), ['member:fail a']);
  });

  test('rejoin after dead: an explicit join raises the incarnation and fires member:join', () => {
    const h = membershipHarness();
    h.joinAll([A]);
    h.membership.apply(update(A, 'dead', 2));
    h.take();
    const r = h.membership.join(A, 'tsp2p');
    assert.equal(r.joined, true);
    assert.equal(r.member.incarnation, 3);
    assert.equal(r.member.state, 'alive');
    assert.deepEqual(h.take(), ['member:join a']);
    // The old news of its death cannot overturn its return.
    assert.equal(h.membership.apply(update(A, 'dead', 2)), false);
    assert.equal(h.membership.get('a')?.state, 'alive');
    assert.deepEqual(h.take(), []);
  });

  test('rejoin after left: an explicit join raises the incarnation and fires member:join', () => {
    const h = membershipHarness();
    h.joinAll([A]);
    h.membership.leave('a');
    h.take();
    const r = h.membership.join(A, 'tsp2p', 0);
    assert.equal(r.member.incarnation, 1);
    assert.deepEqual(h.take(), ['member:join a']);
    assert.equal(h.membership.apply(update(A, 'left', 0)), false);
    assert.equal(h.membership.get('a')?.state, 'alive');
  });

  test('rejoin through gossip: alive at a higher incarnation brings a dead member back', () => {
    const h = membershipHarness();
    h.joinAll([A]);
    h.membership.apply(update(A, 'dead', 0));
    h.take();
    assert.equal(h.membership.apply(update(A, 'alive', 0)), false);
    assert.equal(h.membership.apply(update(A, 'alive', 1)), true);
    assert.deepEqual(h.take(), ['member:join a']);
  });

  test('a new address or name of an alive member fires member:update once', () => {
    const h = membershipHarness();
    h.joinAll([A]);
    const moved = { ...A, port: 5999 };
    assert.equal(h.membership.apply(update(moved, 'alive', 1)), true);
    assert.equal(h.membership.apply(update(moved, 'alive', 1)), false);
    assert.deepEqual(h.take(), ['member:update a']);
    assert.equal(h.membership.get('a')?.peer.port, 5999);
    assert.equal(h.membership.getByAddress(A.address, 5999)?.peer.id, 'a');
    const renamed = { ...moved, name: 'annie' };
    h.membership.apply(update(renamed, 'alive', 2));
    assert.deepEqual(h.take(), ['member:update a']);
    assert.equal(h.membership.get('a')?.peer.name, 'annie');
    // A higher incarnation with nothing new is no event.
    h.membership.apply(update(renamed, 'alive', 3));
    assert.deepEqual(h.take(), []);
    assert.equal(h.membership.get('a')?.incarnation, 3);
  });

  test('stale updates change nothing and fire nothing', () => {
    const h = membershipHarness();
    h.joinAll([A, B, C]);
    h.membership.apply(update(A, 'alive', 4));
    h.membership.apply(update(B, 'suspect', 4, { by: 'c' }));
    h.membership.apply(update(C, 'dead', 4));
    h.take();
    const before = h.membership.all().map((m) => ({ ...m }));
    for (const p of [A, B, C]) {
      for (const s of ['alive', 'suspect', 'dead', 'left'] as const) {
        assert.equal(h.membership.apply(update(p, s, 3)), false, `${p.id} ${s}@3`);
      }
    }
    assert.equal(h.membership.apply(update(A, 'alive', 4)), false);
    assert.deepEqual(h.take(), []);
    assert.deepEqual(
      h.membership.all().map((m) => ({ ...m })),
      before,
    );
  });

  test('a member is never re-added by news of its death or departure', () => {
    const h = membershipHarness();
    h.joinAll([B]);
    h.membership.apply(update(A, 'dead', 3));
    h.membership.apply(update(C, 'left', 0));
    assert.deepEqual(h.take(), []);
    assert.equal(h.membership.liveCount, 1);
    // The tombstones make older news of them harmless.
    assert.equal(h.membership.apply(update(A, 'alive', 2)), false);
    assert.equal(h.membership.apply(update(C, 'alive', 0)), false);
    assert.equal(h.membership.liveCount, 1);
  });

  test('the view: state() lists this node and every record, as updates', () => {
    const h = membershipHarness();
    h.joinAll([A, B]);
    h.membership.apply(update(B, 'dead', 0));
    const s = h.membership.state();
    assert.deepEqual(s[0], h.membership.selfUpdate());
    assert.deepEqual(s[0], {
      id: 'self',
      address: '127.0.0.1',
      port: 4000,
      name: 'me',
      state: 'alive',
      inc: 0,
      // Issue 19: this node's own signed self-record rides with it.
      key: recordKey('self'),
      rsig: recordSig(h.self, 0),
    });
    assert.deepEqual(
      s.slice(1).map((x) => `${x.id} ${x.state}@${x.inc}`),
      ['a alive@0', 'b dead@0'],
    );
    // Joined on its own unsigned word: no record to pass on.
    assert.deepEqual(memberUpdate(h.membership.get('a')!), update(A, 'alive', 0, { unsigned: true }));
    // Heard with its signed record: the record is passed on as it came.
    assert.deepEqual(memberUpdate(h.membership.get('b')!), update(B, 'dead', 0));
  });
});
