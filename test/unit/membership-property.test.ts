import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import type { MemberState } from '../../src/membership/member-table.js';
import { stateDigest } from '../../src/membership/membership.js';
import { compareUpdates, type MemberUpdate } from '../../src/membership/merge.js';
import { addressId } from '../../src/peer.js';
import { HOST, membershipHarness, peer, update, viewOf } from '../helpers/unit-membership.js';

// Reproduce a failure with TSP2P_SEED=<seed printed below>.
const SEED = process.env.TSP2P_SEED === undefined ? 20261204 : Number(process.env.TSP2P_SEED);
console.log(`membership-property: fast-check seed ${SEED} (set TSP2P_SEED to replay)`);

function check<Ts extends [unknown, ...unknown[]]>(property: fc.IProperty<Ts>, numRuns = 300): void {
  try {
    fc.assert(property, { seed: SEED, numRuns });
  } catch (err) {
    console.error(`membership-property failed with seed ${SEED}`);
    throw err;
  }
}

const ENTRY = peer('entry', 4100);
const STATES: readonly MemberState[] = ['alive', 'suspect', 'dead', 'left'];

/**
 * News about six tsp2p members and two gop2p members, never about this node. Each tsp2p member
 * moves between two ports of its own (an address change, never a takeover of another member's
 * address); a gop2p member's id is its address, so it stays put. A tsp2p update carries its
 * member's signed self-record (issue 19: only the member changes its address or name), and a
 * member states one address and name per incarnation, as a real one does.
 */
const TSP2P = ['a', 'b', 'c', 'd', 'e', 'f'] as const;
const GOP2P_PORTS = [7001, 7002] as const;

const tsp2pUpdate: fc.Arbitrary<MemberUpdate> = fc
  .record({
    i: fc.nat(TSP2P.length - 1),
    state: fc.constantFrom(...STATES),
    inc: fc.nat(3),
    by: fc.constantFrom(undefined, 'p', 'q', 'r'),
  })
  .map(({ i, state, inc, by }) => {
    const p = peer(TSP2P[i]!, 5000 + 10 * i + (inc % 2), [undefined, 'x', 'y'][(inc + i) % 3]);
    return update(p, state, inc, by === undefined || state !== 'suspect' ? {} : { by });
  });

const gop2pUpdate: fc.Arbitrary<MemberUpdate> = fc
  .record({
    port: fc.constantFrom(...GOP2P_PORTS),
    state: fc.constantFrom(...STATES),
    inc: fc.nat(2),
    by: fc.constantFrom(undefined, 'p', 'q'),
  })
  .map(({ port, state, inc, by }) => ({
    id: addressId(HOST, port),
    address: HOST,
    port,
    state,
    inc,
    kind: 'gop2p' as const,
    ...(by === undefined || state !== 'suspect' ? {} : { by }),
  }));

const anyUpdate = fc.oneof({ arbitrary: tsp2pUpdate, weight: 4 }, { arbitrary: gop2pUpdate, weight: 1 });

/** Updates, a permutation of them, and some of them again (news heard twice). */
const scenario = fc
  .array(anyUpdate, { minLength: 1, maxLength: 40 })
  .chain((updates) =>
    fc.tuple(
      fc.constant(updates),
      fc.shuffledSubarray(updates, { minLength: updates.length, maxLength: updates.length }),
      fc.array(fc.nat(updates.length - 1), { maxLength: 10 }),
    ),
  );

/** A membership that joined the network through ENTRY, with `updates` applied in order. */
function applied(updates: readonly MemberUpdate[], batch: boolean) {
  const h = membershipHarness({ seed: SEED });
  h.membership.join(ENTRY, 'tsp2p');
  if (batch) h.membership.applyAll(updates);
  else for (const u of updates) h.membership.apply(u);
  return h;
}

/** What merge.ts says the view must be: the greatest update per id. */
function expectedView(updates: readonly MemberUpdate[]): Map<string, string> {
  const best = new Map<string, MemberUpdate>();
  for (const u of updates) {
    const cur = best.get(u.id);
    if (cur === undefined || compareUpdates(u, cur) > 0) best.set(u.id, u);
  }
  const out = new Map<string, string>([[ENTRY.id, 'alive@0']]);
  for (const [id, u] of best) out.set(id, `${u.state}@${u.inc}`);
  return new Map([...out.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

describe('Membership: order-insensitivity (fast-check)', () => {
  test('two memberships fed the same updates in different orders end with the same view', () => {
    check(
      fc.property(scenario, ([updates, permuted, repeats]) => {
        const one = applied(updates, false);
        const again = [...permuted, ...repeats.map((i) => updates[i]!)];
        const two = applied(again, true);
        try {
          const v1 = viewOf(one.membership);
          assert.deepEqual(v1, viewOf(two.membership));
          // ... and it is the view merge.ts defines: the newest update per member.
          assert.deepEqual(v1, expectedView(updates));
          // The two agree on who is in the network.
          const live = (h: typeof one) =>
            h.membership
              .live()
              .map((m) => m.peer.id)
              .sort();
          assert.deepEqual(live(one), live(two));
          assert.equal(one.membership.liveCount, two.membership.liveCount);
          // The digest (kept between changes) is the state's, and the same for the same view.
          assert.equal(one.membership.digest(), stateDigest(one.membership.state()));
          assert.equal(two.membership.digest(), one.membership.digest());
        } finally {
          one.membership.close();
          two.membership.close();
        }
      }),
    );
  });

  test('each member live at the end was reported joined, and events alternate join/out', () => {
    check(
      fc.property(scenario, ([updates, permuted]) => {
        for (const order of [updates, permuted]) {
          const h = applied(order, false);
          try {
            const inNetwork = new Map<string, boolean>();
            for (const e of h.events) {
              const was = inNetwork.get(e.id) ?? false;
              if (e.event === 'member:join') {
                assert.equal(was, false, `${e.id} joined twice in a row`);
                inNetwork.set(e.id, true);
              } else {
                assert.equal(was, true, `${e.event} for ${e.id}, which was not in the network`);
                if (e.event === 'member:fail' || e.event === 'member:leave') inNetwork.set(e.id, false);
              }
            }
            for (const m of h.membership.all()) {
              const live = m.state === 'alive' || m.state === 'suspect';
              assert.equal(inNetwork.get(m.peer.id) ?? false, live, `${m.peer.id} is ${m.state}`);
            }
          } finally {
            h.membership.close();
          }
        }
      }),
    );
  });
});
