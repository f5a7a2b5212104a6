/**
 * The memory store's member snapshot in columns (`src/store/member-rows.ts`): rows indexed by
 * member numbers the stores of a process share, each store still holding its own rows.
 */

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { NumberedSet, numberOf } from '../../src/store/member-numbers.js';
import { MemberRows } from '../../src/store/member-rows.js';
import type { MemberRecord } from '../../src/store/store.js';

const rec = (id: string, over: Partial<MemberRecord> = {}): MemberRecord => ({
  id,
  address: '10.0.0.1',
  port: 6000 + id.length,
  kind: 'tsp2p',
  state: 'alive',
  incarnation: 1,
  lastSeen: 1_800_000_000_000,
  ...over,
});

const byId = (rows: MemberRows) => rows.all().sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));

describe('MemberRows: the memory store member snapshot in columns', () => {
  it('keeps each store its own rows, though the stores of a process share member numbers', () => {
    const a = new MemberRows();
    const b = new MemberRows();
    a.set(rec('x'));
    a.set(rec('yy', { name: 'Y', state: 'suspect', incarnation: 2 ** 40 }));
    b.set(rec('yy', { state: 'dead', address: '10.0.0.9' }));
    assert.deepEqual(byId(a), [rec('x'), rec('yy', { name: 'Y', state: 'suspect', incarnation: 2 ** 40 })]);
    assert.deepEqual(byId(b), [rec('yy', { state: 'dead', address: '10.0.0.9' })]);
    a.delete('yy');
    a.delete('yy');
    b.delete('nobody');
    assert.deepEqual(byId(a), [rec('x')]);
    assert.deepEqual(byId(b), [rec('yy', { state: 'dead', address: '10.0.0.9' })]);
    assert.equal(a.size, 1);
    b.delete('yy');
    // A number no store holds any more is used again: no row of another member shows through.
    a.set(rec('zzz', { state: 'left' }));
    b.set(rec('w'));
    assert.deepEqual(byId(a), [rec('x'), rec('zzz', { state: 'left' })]);
    assert.deepEqual(byId(b), [rec('w')]);
    a.clear();
    assert.deepEqual(a.all(), []);
    assert.deepEqual(byId(b), [rec('w')]);
    b.clear();
  });

  it('grows past its first rows and replaces a row in place', () => {
    const rows = new MemberRows();
    for (let i = 0; i < 100; i++) rows.set(rec(`m${i}`, { incarnation: i }));
    rows.set(rec('m7', { state: 'dead', incarnation: 8, lastSeen: 5 }));
    assert.equal(rows.size, 100);
    const all = byId(rows);
    assert.equal(all.length, 100);
    assert.deepEqual(
      all.find((m) => m.id === 'm7'),
      rec('m7', { state: 'dead', incarnation: 8, lastSeen: 5 }),
    );
    assert.deepEqual(
      all.find((m) => m.id === 'm99'),
      rec('m99', { incarnation: 99 }),
    );
    rows.clear();
  });

  it('NumberedSet: a set of ids at the process member numbers, given back when no set holds them', () => {
    const a = new NumberedSet();
    const b = new NumberedSet();
    assert.equal(a.add('p'), true);
    assert.equal(a.add('p'), false);
    assert.equal(b.add('p'), true);
    assert.equal(a.add('q'), true);
    assert.deepEqual([...a].sort(), ['p', 'q']);
    assert.equal(a.size, 2);
    assert.equal(a.delete('p'), true);
    assert.equal(a.delete('p'), false);
    assert.equal(a.has('p'), false);
    assert.equal(b.has('p'), true);
    assert.notEqual(numberOf('p'), undefined);
    b.clear();
    assert.equal(numberOf('p'), undefined);
    assert.equal(b.size, 0);
    assert.deepEqual([...a], ['q']);
    a.clear();
    assert.equal(numberOf('q'), undefined);
  });
});
