import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { suspicionBounds } from '../../src/membership/timings.js';
import { gopPeer, membershipHarness, peer, update } from '../helpers/unit-membership.js';

const A = peer('a', 5001);
const B = peer('b', 5002);
const G = gopPeer(6001);
const TIMINGS = { probeIntervalMs: 100, suspicionMult: 3, suspicionMaxMult: 6, indirectProbes: 3 };

describe('Membership: gop2p members', () => {
  test('a strong suspicion (connection refused) runs for the shortest timeout, a plain one for the longest', async () => {
    const h = membershipHarness({ timings: TIMINGS });
    h.joinAll([A, B]);
    h.joinAll([G], 'gop2p');
    const { minMs, maxMs } = suspicionBounds(h.timings, h.membership.liveCount + 1);
    assert.ok(minMs < maxMs);
    h.membership.suspect(G.id, { strong: true });
    h.membership.suspect(A.id);
    await h.clock.advance(minMs - 1);
    assert.equal(h.membership.get(G.id)?.state, 'suspect');
    await h.clock.advance(1);
    assert.equal(h.membership.get(G.id)?.state, 'dead');
    assert.equal(h.membership.get(A.id)?.state, 'suspect');
    await h.clock.advance(maxMs - minMs);
    assert.equal(h.membership.get(A.id)?.state, 'dead');
  });

  test('evidence that turns strong shortens a suspicion already running', async () => {
    const h = membershipHarness({ timings: TIMINGS });
    h.joinAll([A, B]);
    h.joinAll([G], 'gop2p');
    const { minMs } = suspicionBounds(h.timings, h.membership.liveCount + 1);
    h.membership.suspect(G.id);
    await h.clock.advance(minMs / 2);
    h.membership.suspect(G.id, { strong: true });
    await h.clock.advance(minMs / 2);
    assert.equal(h.membership.get(G.id)?.state, 'dead');
  });

  test('a node that does not admit gop2p members ignores news of one, and logs why once', () => {
    const h = membershipHarness({ admitGop2p: false });
    h.joinAll([A]);
    assert.equal(h.membership.apply(update(G, 'alive', 0, { kind: 'gop2p' })), false);
    assert.equal(h.membership.apply(update(G, 'alive', 1, { kind: 'gop2p' })), false);
    assert.equal(h.membership.get(G.id), undefined);
    assert.deepEqual(h.take(), []);
    const refusals = h.logs.filter(
      (l) => l.level === 'warn' && l.message.startsWith('not admitting a gop2p member'),
    );
    assert.equal(refusals.length, 1);
    // tsp2p members are not affected.
    assert.equal(h.membership.apply(update(B, 'alive', 0)), true);
  });
});
