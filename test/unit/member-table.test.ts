import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { MemberTable } from '../../src/membership/member-table.js';
import type { Peer } from '../../src/peer.js';

const peer = (id: string, address: string, port: number, name?: string): Peer =>
  name === undefined ? { id, address, port } : { id, address, port, name };

describe('MemberTable', () => {
  test('upsert adds a new member, alive, with incarnation 0', () => {
    const table = new MemberTable();
    const a = peer('a', '127.0.0.1', 5001);
    const result = table.upsert(a, 'tsp2p', 100);
    assert.equal(result.added, true);
    assert.equal(result.updated, false);
    assert.equal(result.replaced, undefined);
    assert.deepEqual(result.member, {
      peer: a,
      kind: 'tsp2p',
      state: 'alive',
      incarnation: 0,
      lastSeen: 100,
      stateSince: 100,
    });
    assert.equal(table.size, 1);
    assert.equal(table.get('a'), result.member);
    assert.equal(table.getByAddress('127.0.0.1', 5001), result.member);
  });

  test('upsert of a known member with the same details only refreshes it', () => {
    const table = new MemberTable();
    table.upsert(peer('a', '127.0.0.1', 5001, 'ada'), 'tsp2p', 100);
    const result = table.upsert(peer('a', '127.0.0.1', 5001, 'ada'), 'tsp2p', 200);
    assert.equal(result.added, false);
    assert.equal(result.updated, false);
    assert.equal(result.member.lastSeen, 200);
    assert.equal(table.size, 1);
  });

  test('upsert of a known member with a new name updates it', () => {
    const table = new MemberTable();
    table.upsert(peer('a', '127.0.0.1', 5001, 'ada'), 'tsp2p', 100);
    const result = table.upsert(peer('a', '127.0.0.1', 5001, 'lovelace'), 'tsp2p', 200);
    assert.equal(result.added, false);
    assert.equal(result.updated, true);
    assert.equal(table.get('a')?.peer.name, 'lovelace');
    assert.equal(table.getByAddress('127.0.0.1', 5001)?.peer.name, 'lovelace');
  });

  test('upsert of a known member at a new address moves it', () => {
    const table = new MemberTable();
    table.upsert(peer('a', '127.0.0.1', 5001), 'tsp2p', 100);
    const result = table.upsert(peer('a', '127.0.0.1', 6001), 'tsp2p', 200);
    assert.equal(result.updated, true);
    assert.equal(table.size, 1);
    assert.equal(table.getByAddress('127.0.0.1', 5001), undefined, 'the old address is free');
    assert.equal(table.getByAddress('127.0.0.1', 6001)?.peer.id, 'a');
  });

  test('upsert of another id at a known address replaces the old member (a restart)', () => {
    const table = new MemberTable();
    const old = table.upsert(peer('old', '127.0.0.1', 5001), 'tsp2p', 100).member;
    table.upsert(peer('other', '127.0.0.1', 5002), 'tsp2p', 100);
    const result = table.upsert(peer('new', '127.0.0.1', 5001), 'tsp2p', 200);
    assert.equal(result.added, true);
    assert.equal(result.replaced, old);
    assert.equal(table.get('old'), undefined);
    assert.equal(table.get('new')?.peer.port, 5001);
    assert.equal(table.getByAddress('127.0.0.1', 5001)?.peer.id, 'new');
    assert.equal(table.size, 2);
  });

  test('moving a member onto another member’s address replaces that member', () => {
    const table = new MemberTable();
    table.upsert(peer('a', '127.0.0.1', 5001), 'tsp2p', 0);
    table.upsert(peer('b', '127.0.0.1', 5002), 'tsp2p', 0);
    const result = table.upsert(peer('a', '127.0.0.1', 5002), 'tsp2p', 1);
    assert.equal(result.replaced?.peer.id, 'b');
    assert.equal(result.updated, true);
    assert.deepEqual(
      table.all().map((m) => m.peer.id),
      ['a'],
    );
    assert.equal(table.getByAddress('127.0.0.1', 5001), undefined);
    assert.equal(table.getByAddress('127.0.0.1', 5002)?.peer.id, 'a');
  });

  test('members are identified by the exact (address, port) pair, as in gop2p', () => {
    const table = new MemberTable();
    table.upsert(peer('0.0.0.0:7777', '0.0.0.0', 7777), 'gop2p', 0);
    table.upsert(peer('127.0.0.1:7777', '127.0.0.1', 7777), 'gop2p', 0);
    assert.equal(table.size, 2);
    assert.equal(table.getByAddress('0.0.0.0', 7777)?.peer.id, '0.0.0.0:7777');
    assert.equal(table.getByAddress('127.0.0.1', 7777)?.peer.id, '127.0.0.1:7777');
    assert.equal(table.getByAddress('127.0.0.1', 7778), undefined);
  });

  test('IPv6 addresses are looked up by address and port', () => {
    const table = new MemberTable();
    table.upsert(peer('v6', '::1', 5001), 'tsp2p', 0);
    assert.equal(table.getByAddress('::1', 5001)?.peer.id, 'v6');
    assert.equal(table.getByAddress('::1', 5002), undefined);
  });

  test('remove returns the member and frees its address', () => {
    const table = new MemberTable();
    table.upsert(peer('a', '127.0.0.1', 5001), 'gop2p', 0);
    const removed = table.remove('a');
    assert.equal(removed?.peer.id, 'a');
    assert.equal(removed?.kind, 'gop2p');
    assert.equal(table.size, 0);
    assert.equal(table.get('a'), undefined);
    assert.equal(table.getByAddress('127.0.0.1', 5001), undefined);
    assert.equal(table.remove('a'), undefined, 'removing twice');
    assert.equal(table.remove('nobody'), undefined);
  });

  test('live() lists alive and suspect members, in insertion order', () => {
    const table = new MemberTable();
    for (const [i, id] of ['a', 'b', 'c', 'd'].entries())
      table.upsert(peer(id, '10.0.0.1', 5000 + i), 'tsp2p', 0);
    table.get('b')!.state = 'suspect';
    table.get('c')!.state = 'dead';
    table.get('d')!.state = 'left';
    assert.deepEqual(
      table.live().map((m) => m.peer.id),
      ['a', 'b'],
    );
    assert.deepEqual(
      table.all().map((m) => m.peer.id),
      ['a', 'b', 'c', 'd'],
    );
  });

  test('upsert brings a dead member back to alive, keeping its incarnation', () => {
    const table = new MemberTable();
    const m = table.upsert(peer('a', '10.0.0.1', 5000), 'tsp2p', 0).member;
    m.state = 'dead';
    m.incarnation = 3;
    const result = table.upsert(peer('a', '10.0.0.1', 5000), 'tsp2p', 10);
    assert.equal(result.member.state, 'alive');
    assert.equal(result.member.incarnation, 3);
    assert.equal(table.live().length, 1);
  });

  test('touch updates lastSeen; unknown ids are ignored', () => {
    const table = new MemberTable();
    table.upsert(peer('a', '10.0.0.1', 5000), 'tsp2p', 0);
    table.touch('a', 42);
    table.touch('nobody', 42);
    assert.equal(table.get('a')?.lastSeen, 42);
    assert.equal(table.size, 1);
  });

  test('clear empties both indexes', () => {
    const table = new MemberTable();
    table.upsert(peer('a', '10.0.0.1', 5000), 'tsp2p', 0);
    table.clear();
    assert.equal(table.size, 0);
    assert.equal(table.getByAddress('10.0.0.1', 5000), undefined);
    assert.equal(table.upsert(peer('a', '10.0.0.1', 5000), 'tsp2p', 0).added, true);
  });
});
