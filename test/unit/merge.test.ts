import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import type { MemberState } from '../../src/membership/member-table.js';
import {
  compareUpdates,
  isLive,
  type MemberUpdate,
  mergeUpdates,
  mergeViews,
  STATE_RANK,
  supersedes,
} from '../../src/membership/merge.js';

// Reproduce a failure with TSP2P_SEED=<seed printed below>.
const SEED = process.env.TSP2P_SEED === undefined ? 20261201 : Number(process.env.TSP2P_SEED);
const NUM_RUNS = 500;
console.log(`merge: fast-check seed ${SEED} (set TSP2P_SEED to replay)`);

function check<Ts extends [unknown, ...unknown[]]>(property: fc.IProperty<Ts>, numRuns = NUM_RUNS): void {
  try {
    fc.assert(property, { seed: SEED, numRuns });
  } catch (err) {
    console.error(`merge property failed with seed ${SEED}`);
    throw err;
  }
}

const STATES: readonly MemberState[] = ['alive', 'suspect', 'dead', 'left'];
const sign = (n: number): -1 | 0 | 1 => (n < 0 ? -1 : n > 0 ? 1 : 0);

const base = (state: MemberState, inc: number, extra: Partial<MemberUpdate> = {}): MemberUpdate => ({
  id: 'x',
  address: '127.0.0.1',
  port: 5000,
  state,
  inc,
  ...extra,
});

/** What makes two updates equal under the order: everything but `by` and `kind`. */
const key = (u: MemberUpdate): string => `${u.inc}|${u.state}|${u.address}:${u.port}|${u.name ?? ''}`;

// ---- arbitraries -------------------------------------------------------------------------------

const IDS = ['a', 'b', 'c', 'd'] as const;

/**
 * An update about `id`; small domains so that ties and collisions are frequent. `loose` adds what
 * the order is silent on: a suspecter (`by`), and the empty name (which ranks as no name).
 */
const updateFor = (id: string, loose: boolean): fc.Arbitrary<MemberUpdate> =>
  fc
    .record({
      address: fc.constantFrom('127.0.0.1', '10.0.0.2'),
      port: fc.constantFrom(5000, 5001),
      name: fc.option(loose ? fc.constantFrom('', 'ann', 'bob') : fc.constantFrom('ann', 'bob'), {
        nil: undefined,
      }),
      state: fc.constantFrom(...STATES),
      inc: fc.integer({ min: 0, max: 3 }),
      by: loose ? fc.option(fc.constantFrom('p', 'q'), { nil: undefined }) : fc.constant(undefined),
    })
    .map(({ name, by, ...rest }) => {
      const u: MemberUpdate = { id, ...rest };
      return {
        ...u,
        ...(name === undefined ? {} : { name }),
        ...(by === undefined ? {} : { by }),
      };
    });

const anyUpdate = (loose: boolean): fc.Arbitrary<MemberUpdate> =>
  fc.constantFrom(...IDS).chain((id) => updateFor(id, loose));

/** A view, keyed by each update's id. */
const view = (loose: boolean): fc.Arbitrary<Map<string, MemberUpdate>> =>
  fc.array(anyUpdate(loose), { maxLength: 8 }).map((us) => new Map(us.map((u) => [u.id, u])));

/** Compares views by the order's key (ignores what the order is silent on). */
function assertSameView(a: ReadonlyMap<string, MemberUpdate>, b: ReadonlyMap<string, MemberUpdate>): void {
  const keys = (v: ReadonlyMap<string, MemberUpdate>) =>
    [...v.entries()].map(([id, u]) => `${id}=${key(u)}`).sort();
  assert.deepEqual(keys(a), keys(b));
}

/** Folds updates into a view one at a time, as a node receiving them would. */
const fold = (updates: readonly MemberUpdate[]): Map<string, MemberUpdate> =>
  updates.reduce((v, u) => mergeViews(v, new Map([[u.id, u]])), new Map<string, MemberUpdate>());

// ---- exhaustive tables -------------------------------------------------------------------------

describe('merge: the order of updates', () => {
  test('STATE_RANK is alive < suspect < dead < left, and frozen', () => {
    assert.deepEqual(
      [...STATES].sort((a, b) => STATE_RANK[a] - STATE_RANK[b]),
      ['alive', 'suspect', 'dead', 'left'],
    );
    assert.equal(new Set(Object.values(STATE_RANK)).size, 4);
    assert.ok(Object.isFrozen(STATE_RANK));
  });

  test('isLive: alive and suspect are in the network, dead and left are not', () => {
    assert.deepEqual(
      STATES.map((s) => [s, isLive(s)]),
      [
        ['alive', true],
        ['suspect', true],
        ['dead', false],
        ['left', false],
      ],
    );
  });

  // Every (state of a) × (state of b) × (a's incarnation lower / equal / higher than b's).
  const relations = [
    { rel: 'lower', incA: 1, incB: 2 },
    { rel: 'equal', incA: 2, incB: 2 },
    { rel: 'higher', incA: 3, incB: 2 },
  ] as const;
  for (const sa of STATES) {
    for (const sb of STATES) {
      for (const { rel, incA, incB } of relations) {
        test(`${sa}@${rel} vs ${sb}: compareUpdates and supersedes`, () => {
          const a = base(sa, incA);
          const b = base(sb, incB);
          // Newest incarnation first; at equal incarnation, left > dead > suspect > alive.
          const expected: -1 | 0 | 1 =
            rel === 'lower' ? -1 : rel === 'higher' ? 1 : sign(STATES.indexOf(sa) - STATES.indexOf(sb));
          assert.equal(sign(compareUpdates(a, b)), expected);
          assert.equal(sign(compareUpdates(b, a)), sign(-expected));
          assert.equal(supersedes(a, b), expected === 1);
          assert.equal(supersedes(b, a), expected === -1);
          assert.equal(mergeUpdates(a, b), expected >= 0 ? a : b);
          assert.equal(mergeUpdates(b, a), expected <= 0 ? b : a);
        });
      }
    }
  }

  test('an incarnation outranks every state: alive@n+1 beats left@n', () => {
    assert.ok(compareUpdates(base('alive', 5), base('left', 4)) > 0);
    assert.equal(mergeUpdates(base('left', 4), base('alive', 5)).state, 'alive');
  });

  test('anything supersedes nothing', () => {
    for (const s of STATES) assert.equal(supersedes(base(s, 0), undefined), true);
  });

  test('an identical update does not supersede, and compares equal', () => {
    for (const s of STATES) {
      const a = base(s, 7, { name: 'ann' });
      assert.equal(compareUpdates(a, { ...a }), 0);
      assert.equal(supersedes({ ...a }, a), false);
    }
  });

  test('ties at equal incarnation and state break on address, then name; a missing name is ""', () => {
    const lo = base('alive', 1, { address: '10.0.0.1' });
    const hi = base('alive', 1, { address: '10.0.0.2' });
    assert.ok(compareUpdates(lo, hi) < 0);
    assert.ok(compareUpdates(hi, lo) > 0);
    const p1 = base('alive', 1, { port: 5000 });
    const p2 = base('alive', 1, { port: 5001 });
    assert.notEqual(compareUpdates(p1, p2), 0);
    assert.equal(sign(compareUpdates(p1, p2)), -sign(compareUpdates(p2, p1)));
    const ann = base('alive', 1, { name: 'ann' });
    const bob = base('alive', 1, { name: 'bob' });
    assert.ok(compareUpdates(ann, bob) < 0);
    assert.ok(compareUpdates(bob, ann) > 0);
    assert.equal(compareUpdates(base('alive', 1), base('alive', 1, { name: '' })), 0);
  });

  test('`by` and `kind` do not take part in the order', () => {
    const a = base('suspect', 1, { by: 'p' });
    const b = base('suspect', 1, { by: 'q', kind: 'gop2p' });
    assert.equal(compareUpdates(a, b), 0);
    assert.equal(supersedes(b, a), false);
  });
});

// ---- properties --------------------------------------------------------------------------------

describe('merge: properties of mergeUpdates (fast-check)', () => {
  test('compareUpdates is a total order: antisymmetric, transitive, 0 exactly on equal keys', () => {
    check(
      fc.property(
        fc
          .constantFrom(...IDS)
          .chain((id) => fc.tuple(updateFor(id, true), updateFor(id, true), updateFor(id, true))),
        ([a, b, c]) => {
          assert.equal(sign(compareUpdates(a, b)), sign(-compareUpdates(b, a)));
          assert.equal(compareUpdates(a, b) === 0, key(a) === key(b));
          if (compareUpdates(a, b) <= 0 && compareUpdates(b, c) <= 0) assert.ok(compareUpdates(a, c) <= 0);
        },
      ),
    );
  });

  test('commutative: merge(a, b) equals merge(b, a)', () => {
    check(
      fc.property(
        fc.constantFrom(...IDS).chain((id) => fc.tuple(updateFor(id, false), updateFor(id, false))),
        ([a, b]) => {
          assert.deepEqual(mergeUpdates(a, b), mergeUpdates(b, a));
        },
      ),
    );
    // With what the order is silent on, the two results still rank the same.
    check(
      fc.property(
        fc.constantFrom(...IDS).chain((id) => fc.tuple(updateFor(id, true), updateFor(id, true))),
        ([a, b]) => {
          assert.equal(compareUpdates(mergeUpdates(a, b), mergeUpdates(b, a)), 0);
        },
      ),
    );
  });

  test('associative: merge(merge(a, b), c) equals merge(a, merge(b, c))', () => {
    check(
      fc.property(
        fc
          .constantFrom(...IDS)
          .chain((id) => fc.tuple(updateFor(id, false), updateFor(id, false), updateFor(id, false))),
        ([a, b, c]) => {
          assert.deepEqual(mergeUpdates(mergeUpdates(a, b), c), mergeUpdates(a, mergeUpdates(b, c)));
        },
      ),
    );
  });

  test('idempotent: merge(a, a) is a, and merging the result again changes nothing', () => {
    check(
      fc.property(
        fc.constantFrom(...IDS).chain((id) => fc.tuple(updateFor(id, true), updateFor(id, true))),
        ([a, b]) => {
          assert.equal(mergeUpdates(a, a), a);
          const m = mergeUpdates(a, b);
          assert.equal(mergeUpdates(m, a), m);
          assert.equal(mergeUpdates(m, b), m);
        },
      ),
    );
  });

  test('the result is one of the inputs, and at least as new as both', () => {
    check(
      fc.property(
        fc.constantFrom(...IDS).chain((id) => fc.tuple(updateFor(id, true), updateFor(id, true))),
        ([a, b]) => {
          const m = mergeUpdates(a, b);
          assert.ok(m === a || m === b);
          assert.ok(compareUpdates(m, a) >= 0);
          assert.ok(compareUpdates(m, b) >= 0);
          assert.equal(supersedes(a, m), false);
          assert.equal(supersedes(b, m), false);
        },
      ),
    );
  });

  test('the newest incarnation always wins, whatever the states', () => {
    check(
      fc.property(
        fc.constantFrom(...IDS).chain((id) => fc.tuple(updateFor(id, true), updateFor(id, true))),
        ([a, b]) => {
          fc.pre(a.inc !== b.inc);
          const newer = a.inc > b.inc ? a : b;
          assert.equal(mergeUpdates(a, b), newer);
          assert.equal(mergeUpdates(b, a), newer);
          assert.equal(supersedes(newer, newer === a ? b : a), true);
        },
      ),
    );
  });

  test('at equal incarnation left > dead > suspect > alive', () => {
    check(
      fc.property(
        fc.constantFrom(...IDS).chain((id) => fc.tuple(updateFor(id, true), updateFor(id, true))),
        ([a, b]) => {
          fc.pre(a.inc === b.inc && a.state !== b.state);
          const winner = mergeUpdates(a, b);
          assert.equal(winner.state, STATE_RANK[a.state] > STATE_RANK[b.state] ? a.state : b.state);
          assert.equal(mergeUpdates(b, a).state, winner.state);
        },
      ),
    );
  });
});

describe('merge: properties of mergeViews (fast-check)', () => {
  test('the empty view is the identity', () => {
    check(
      fc.property(view(true), (v) => {
        assert.deepEqual(mergeViews(v, new Map()), v);
        assert.deepEqual(mergeViews(new Map(), v), v);
      }),
    );
  });

  test('commutative', () => {
    check(
      fc.property(view(false), view(false), (a, b) => {
        assert.deepEqual(mergeViews(a, b), mergeViews(b, a));
      }),
    );
    check(
      fc.property(view(true), view(true), (a, b) => {
        assertSameView(mergeViews(a, b), mergeViews(b, a));
      }),
    );
  });

  test('associative', () => {
    check(
      fc.property(view(false), view(false), view(false), (a, b, c) => {
        assert.deepEqual(mergeViews(mergeViews(a, b), c), mergeViews(a, mergeViews(b, c)));
      }),
    );
  });

  test('idempotent', () => {
    check(
      fc.property(view(true), view(true), (a, b) => {
        assert.deepEqual(mergeViews(a, a), a);
        const m = mergeViews(a, b);
        assert.deepEqual(mergeViews(m, b), m);
        assert.deepEqual(mergeViews(m, a), m);
      }),
    );
  });

  test('does not modify its inputs', () => {
    check(
      fc.property(view(true), view(true), (a, b) => {
        const ca = new Map(a);
        const cb = new Map(b);
        mergeViews(a, b);
        assert.deepEqual(a, ca);
        assert.deepEqual(b, cb);
      }),
    );
  });

  test('order-insensitive: any permutation of the updates, repeated or not, gives the same view', () => {
    const updatesAndPermutation = fc
      .array(anyUpdate(false), { maxLength: 20 })
      .chain((us) =>
        fc.tuple(
          fc.constant(us),
          fc.shuffledSubarray(us, { minLength: us.length, maxLength: us.length }),
          fc.array(fc.nat({ max: Math.max(0, us.length - 1) }), { maxLength: 10 }),
        ),
      );
    check(
      fc.property(updatesAndPermutation, ([updates, permuted, repeats]) => {
        const expected = fold(updates);
        // The view holds, for each id, the greatest update about it.
        for (const [id, u] of expected) {
          for (const other of updates.filter((x) => x.id === id)) assert.ok(compareUpdates(u, other) >= 0);
        }
        assert.deepEqual(new Set(expected.keys()), new Set(updates.map((u) => u.id)));
        assert.deepEqual(fold(permuted), expected);
        // Duplicates (the same news heard twice) change nothing.
        const withRepeats = [...permuted, ...repeats.flatMap((i) => (updates[i] ? [updates[i]] : []))];
        assert.deepEqual(fold(withRepeats), expected);
      }),
    );
  });

  test('order-insensitive with `by` and empty names: permutations give views that rank the same', () => {
    const updatesAndPermutation = fc
      .array(anyUpdate(true), { maxLength: 20 })
      .chain((us) =>
        fc.tuple(fc.constant(us), fc.shuffledSubarray(us, { minLength: us.length, maxLength: us.length })),
      );
    check(
      fc.property(updatesAndPermutation, ([updates, permuted]) => {
        assertSameView(fold(permuted), fold(updates));
      }),
    );
  });

  test('the newest incarnation wins in a merged view', () => {
    check(
      fc.property(view(true), view(true), (a, b) => {
        const m = mergeViews(a, b);
        for (const [id, u] of m) {
          const inA = a.get(id);
          const inB = b.get(id);
          const maxInc = Math.max(inA?.inc ?? -1, inB?.inc ?? -1);
          assert.equal(u.inc, maxInc);
        }
      }),
    );
  });
});
