import assert from 'node:assert/strict';
import { test } from 'node:test';
import { membershipHarness, peer, update } from '../helpers/unit-membership.js';

const A = peer('a', 5001, 'ann');
const B = peer('b', 5002);
const C = peer('c', 5003);

test('seed(): a converged view is taken through the news checks, with its events, and nothing is queued for gossip', () => {
  const h = membershipHarness();
  assert.equal(h.membership.active, false);
  const changed = h.membership.seed([
    update(A, 'alive', 3),
    update(B, 'alive', 0),
    // News about this node itself changes nothing in its table.
    update(h.self, 'alive', 0),
    // Unsigned news of an unknown member is not taken from anyone but the member (news.ts).
    update(C, 'alive', 0, { unsigned: true }),
  ]);
  assert.equal(changed, 2);
  assert.equal(h.membership.active, true);
  assert.deepEqual(h.take(), ['member:join a', 'member:join b']);
  assert.equal(h.membership.get('a')?.incarnation, 3);
  assert.equal(h.membership.get('c'), undefined);
  assert.equal(h.membership.hasGossip, false);
  // After the seed, news is queued as before.
  assert.equal(h.membership.apply(update(A, 'alive', 4)), true);
  assert.equal(h.membership.hasGossip, true);
});

test('seed(): a record whose signature does not check is refused', () => {
  const h = membershipHarness();
  const forged = { ...update(A, 'alive', 1), rsig: update(B, 'alive', 1).rsig };
  assert.equal(h.membership.seed([forged]), 0);
  assert.equal(h.membership.get('a'), undefined);
});
