import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  type Member,
  type MemberState,
  MemberTable,
  type PeerKind,
} from '../../src/membership/member-table.js';
import type { Peer } from '../../src/peer.js';
import { SeededRandom } from '../../src/random.js';

const peer = (id: string, address: string, port: number, name?: string): Peer =>
  name === undefined ? { id, address, port } : { id, address, port, name };

/** A record for `set()`: alive, incarnation 0, seen at `now`, unless told otherwise. */
function member(
  p: Peer,
  fields: { state?: MemberState; incarnation?: number; kind?: PeerKind; now?: number } = {},
): Member {
  const now = fields.now ?? 0;
  return {
    peer: p,
    kind: fields.kind ?? 'tsp2p',
    state: fields.state ?? 'alive',
    incarnation: fields.incarnation ?? 0,
    lastSeen: now,
    stateSince: now,
  };
}

/** A member's fields as plain data (the table hands out a new object for each read). */
function fields(m: Member | undefined): object | undefined {
  if (m === undefined) return undefined;
  const { peer, kind, state, incarnation, lastSeen, stateSince, record } = m;
  return { peer, kind, state, incarnation, lastSeen, stateSince, record };
}

describe('MemberTable', () => {
  test('set adds a member as given, found by id and by address', () => {
    const table = new MemberTable();
    const a = member(peer('a', '127.0.0.1', 5001), { now: 100 });
    table.set(a);
    assert.equal(table.size, 1);
    assert.equal(table.liveCount, 1);
    assert.deepEqual(fields(table.get('a')), fields(a), 'a copy of the row as set');
    assert.deepEqual(fields(table.getByAddress('127.0.0.1', 5001)), fields(a));
    assert.notEqual(table.get('a'), table.get('a'), 'rows are built on demand, not kept as objects');
    assert.equal(table.get('b'), undefined);
  });

  test('set of a known id replaces its record: new state, incarnation and name', () => {
    const table = new MemberTable();
    table.set(member(peer('a', '127.0.0.1', 5001, 'ada')));
    const next = member(peer('a', '127.0.0.1', 5001, 'lovelace'), {
      state: 'suspect',
      incarnation: 2,
      now: 200,
    });
    table.set(next);
    assert.equal(table.size, 1);
    assert.deepEqual(fields(table.get('a')), fields(next));
    assert.equal(table.getByAddress('127.0.0.1', 5001)?.peer.name, 'lovelace');
    assert.equal(table.liveCount, 1, 'suspect is still in the network');
  });

  test('set of a known member at a new address moves it and frees the old address', () => {
    const table = new MemberTable();
    table.set(member(peer('a', '127.0.0.1', 5001)));
    table.set(member(peer('a', '127.0.0.1', 6001)));
    assert.equal(table.size, 1);
    assert.equal(table.getByAddress('127.0.0.1', 5001), undefined, 'the old address is free');
    assert.equal(table.getByAddress('127.0.0.1', 6001)?.peer.id, 'a');
  });

  test('a live newcomer at a live member’s address does not take it until the holder is gone', () => {
    // Issue 19: a newcomer (or a squatter) takes a live member's address only once the holder
    // failed its probes; the table keeps the holder meanwhile.
    const table = new MemberTable();
    const old = member(peer('old', '127.0.0.1', 5001));
    table.set(old);
    table.set(member(peer('new', '127.0.0.1', 5001), { now: 200 }));
    assert.equal(table.getByAddress('127.0.0.1', 5001)?.peer.id, 'old', 'the live holder keeps it');
    assert.equal(table.size, 2);
    table.set({ ...old, state: 'dead' });
    assert.equal(table.getByAddress('127.0.0.1', 5001)?.peer.id, 'new', 'a restart with a new id');
    assert.equal(table.remove('old')?.peer.id, 'old');
    assert.equal(table.getByAddress('127.0.0.1', 5001)?.peer.id, 'new', 'removing the old one keeps the new');
  });

  test('a record that is not alive does not take the address of a live member', () => {
    const table = new MemberTable();
    table.set(member(peer('live', '127.0.0.1', 5001)));
    for (const state of ['suspect', 'dead', 'left'] as const) {
      table.set(member(peer(`ghost-${state}`, '127.0.0.1', 5001), { state }));
      assert.equal(table.getByAddress('127.0.0.1', 5001)?.peer.id, 'live', `a ${state} record`);
    }
    // Once the holder is dead, any record may take the address.
    table.set(member(peer('live', '127.0.0.1', 5001), { state: 'dead' }));
    table.set(member(peer('late', '127.0.0.1', 5001), { state: 'left' }));
    assert.equal(table.getByAddress('127.0.0.1', 5001)?.peer.id, 'late');
  });

  test('moving a member onto another member’s address leaves the live holder there; it takes it once the holder is gone', () => {
    // Issue 19: was "takes the address".
    const table = new MemberTable();
    table.set(member(peer('a', '127.0.0.1', 5001)));
    table.set(member(peer('b', '127.0.0.1', 5002)));
    table.set(member(peer('a', '127.0.0.1', 5002), { now: 1 }));
    assert.equal(table.getByAddress('127.0.0.1', 5001), undefined);
    assert.equal(table.getByAddress('127.0.0.1', 5002)?.peer.id, 'b');
    table.remove('b');
    assert.equal(table.getByAddress('127.0.0.1', 5002)?.peer.id, 'a');
    assert.deepEqual(
      table.all().map((m) => m.peer.id),
      ['a'],
    );
  });

  test('members are identified by the exact (address, port) pair, as in gop2p', () => {
    const table = new MemberTable();
    table.set(member(peer('0.0.0.0:7777', '0.0.0.0', 7777), { kind: 'gop2p' }));
    table.set(member(peer('127.0.0.1:7777', '127.0.0.1', 7777), { kind: 'gop2p' }));
    assert.equal(table.size, 2);
    assert.equal(table.getByAddress('0.0.0.0', 7777)?.peer.id, '0.0.0.0:7777');
    assert.equal(table.getByAddress('127.0.0.1', 7777)?.peer.id, '127.0.0.1:7777');
    assert.equal(table.getByAddress('127.0.0.1', 7778), undefined);
  });

  test('IPv6 addresses are looked up by address and port', () => {
    const table = new MemberTable();
    table.set(member(peer('v6', '::1', 5001)));
    assert.equal(table.getByAddress('::1', 5001)?.peer.id, 'v6');
    assert.equal(table.getByAddress('::1', 5002), undefined);
  });

  test('remove returns the member and frees its address', () => {
    const table = new MemberTable();
    table.set(member(peer('a', '127.0.0.1', 5001), { kind: 'gop2p' }));
    const removed = table.remove('a');
    assert.equal(removed?.peer.id, 'a');
    assert.equal(removed?.kind, 'gop2p');
    assert.equal(table.size, 0);
    assert.equal(table.liveCount, 0);
    assert.equal(table.get('a'), undefined);
    assert.equal(table.getByAddress('127.0.0.1', 5001), undefined);
    assert.equal(table.remove('a'), undefined, 'removing twice');
    assert.equal(table.remove('nobody'), undefined);
  });

  test('live() and liveCount follow set(): alive and suspect members, in insertion order', () => {
    const table = new MemberTable();
    const states: MemberState[] = ['alive', 'suspect', 'dead', 'left'];
    for (const [i, id] of ['a', 'b', 'c', 'd'].entries()) {
      table.set(member(peer(id, '10.0.0.1', 5000 + i), { state: states[i]! }));
    }
    assert.deepEqual(
      table.live().map((m) => m.peer.id),
      ['a', 'b'],
    );
    assert.equal(table.liveCount, 2);
    assert.deepEqual(
      table.all().map((m) => m.peer.id),
      ['a', 'b', 'c', 'd'],
    );
    // A dead member comes back, an alive one dies: the list and the count follow.
    table.set(member(peer('c', '10.0.0.1', 5002), { incarnation: 3 }));
    table.set(member(peer('a', '10.0.0.1', 5000), { state: 'dead' }));
    assert.deepEqual(
      table.live().map((m) => m.peer.id),
      ['b', 'c'],
    );
    assert.equal(table.liveCount, 2);
    table.remove('b');
    assert.deepEqual(
      table.live().map((m) => m.peer.id),
      ['c'],
    );
    assert.equal(table.liveCount, 1);
  });

  test('touch updates lastSeen; unknown ids are ignored', () => {
    const table = new MemberTable();
    table.set(member(peer('a', '10.0.0.1', 5000)));
    table.touch('a', 42);
    table.touch('nobody', 42);
    assert.equal(table.get('a')?.lastSeen, 42);
    assert.equal(table.size, 1);
  });

  test('clear empties both indexes', () => {
    const table = new MemberTable();
    table.set(member(peer('a', '10.0.0.1', 5000)));
    table.clear();
    assert.equal(table.size, 0);
    assert.equal(table.liveCount, 0);
    assert.equal(table.getByAddress('10.0.0.1', 5000), undefined);
    assert.deepEqual(table.live(), []);
    table.set(member(peer('a', '10.0.0.1', 5000)));
    assert.equal(table.getByAddress('10.0.0.1', 5000)?.peer.id, 'a');
  });
  test('live(), gone() and the address index stay true to the records through any run of changes', () => {
    // Seeded: a few ids over a few addresses (so that they collide), random states, moves and
    // removals, with live() read in between (the cached list is kept in step, not rebuilt).
    const random = new SeededRandom(12345);
    const next = (n: number): number => Math.floor(random.next() * n);
    const states: MemberState[] = ['alive', 'suspect', 'dead', 'left'];
    const table = new MemberTable();
    for (let step = 0; step < 5000; step++) {
      const id = `m${next(12)}`;
      if (next(10) === 0) table.remove(id);
      else {
        const state = states[next(4)]!;
        table.set(member(peer(id, '10.0.0.1', 5000 + next(6)), { state, incarnation: step }));
      }
      if (next(3) === 0) {
        const expected = table.all().filter((m) => m.state === 'alive' || m.state === 'suspect');
        assert.deepEqual(table.live(), expected, `step ${step}`);
        assert.equal(table.liveCount, expected.length);
        const gone = table.all().filter((m) => m.state === 'dead' || m.state === 'left');
        const byId = (l: readonly Member[]) => [...l].sort((p, q) => (p.peer.id < q.peer.id ? -1 : 1));
        assert.deepEqual(byId(table.gone()), byId(gone), `step ${step}`);
        for (let port = 5000; port < 5006; port++) {
          const holder = table.getByAddress('10.0.0.1', port);
          if (holder !== undefined) assert.equal(holder.peer.port, port);
          if (expected.some((m) => m.peer.port === port && m.state === 'alive'))
            assert.ok(
              holder !== undefined && holder.state !== 'dead' && holder.state !== 'left',
              `step ${step}`,
            );
        }
      }
    }
  });

  test('tables of one process keep their own rows and address holders (the numbers are shared)', () => {
    const one = new MemberTable();
    const two = new MemberTable();
    const a = peer('a', '10.0.0.9', 5001);
    const b = peer('b', '10.0.0.9', 5001);
    one.set(member(a, { now: 1 }));
    one.set(member(b, { now: 2 }));
    two.set(member(b, { state: 'suspect', incarnation: 4, now: 3 }));
    assert.equal(one.getByAddress('10.0.0.9', 5001)?.peer.id, 'a', 'the live holder keeps it');
    assert.equal(two.getByAddress('10.0.0.9', 5001)?.peer.id, 'b', "two's one record holds it");
    assert.equal(two.get('a'), undefined);
    assert.deepEqual(
      [one.get('b')?.state, one.get('b')?.incarnation, two.get('b')?.state, two.get('b')?.incarnation],
      ['alive', 0, 'suspect', 4],
    );
    one.touch('b', 50);
    assert.deepEqual([one.get('b')?.lastSeen, two.get('b')?.lastSeen], [50, 3]);
    one.remove('a');
    assert.equal(one.getByAddress('10.0.0.9', 5001)?.peer.id, 'b', 'b inherits the address in one');
    two.clear();
    assert.equal(two.getByAddress('10.0.0.9', 5001), undefined);
    assert.equal(one.getByAddress('10.0.0.9', 5001)?.peer.id, 'b', "two's clear leaves one as it was");
    assert.deepEqual(
      one.live().map((m) => m.peer.id),
      ['b'],
    );
  });
});
