import assert from 'node:assert/strict';
import { test } from 'node:test';
import { membershipHarness, peer, update } from '../helpers/unit-membership.js';

const A = peer('a', 5001, 'ann');

test('shared records: two nodes of a process that take the same signed statement hold one Peer and record', () => {
  const one = membershipHarness();
  const two = membershipHarness({ self: peer('other', 4001) });
  one.joinAll([peer('b', 5002)]);
  two.joinAll([peer('b', 5002)]);
  // Each parsed its own copy of the news, as two nodes do.
  one.membership.apply(update(A, 'alive', 7));
  two.membership.apply(update(A, 'alive', 7));
  const a1 = one.membership.get('a')!;
  const a2 = two.membership.get('a')!;
  assert.equal(a1.peer, a2.peer);
  assert.equal(a1.record, a2.record);
  assert.ok(Object.isFrozen(a1.peer));
  // The members themselves are each node's own: a state change in one leaves the other.
  one.membership.apply(update(A, 'suspect', 7, { by: 'b' }));
  assert.equal(one.membership.get('a')?.state, 'suspect');
  assert.equal(two.membership.get('a')?.state, 'alive');
  // Another statement (a new address, signed at a higher incarnation) is not taken for the first.
  two.membership.apply(update(peer('a', 5009, 'ann'), 'alive', 8));
  assert.equal(two.membership.get('a')?.peer.port, 5009);
  assert.equal(one.membership.get('a')?.peer.port, 5001);
  assert.notEqual(two.membership.get('a')?.record, a1.record);
});
