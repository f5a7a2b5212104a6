/**
 * Property tests of catch-up: summaries against a model of random logs (both stores), range
 * planning against set arithmetic, and a whole catch-up between two random logs.
 */

import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import fc from 'fast-check';
import type { Store } from '../../src/store/store.js';
import {
  countRanges,
  gapsOf,
  heldRanges,
  normalizeRanges,
  planCatchUp,
  type Range,
  receivedRanges,
  type StreamSummary,
  subtractRanges,
} from '../../src/store/summary.js';
import { memoryImpl, msg, sqliteImpl, TestWallClock } from '../helpers/store.js';

// Reproduce a failure with TSP2P_SEED=<seed printed below>.
const SEED = process.env.TSP2P_SEED === undefined ? 20261202 : Number(process.env.TSP2P_SEED);
console.log(`store-summary: fast-check seed ${SEED} (set TSP2P_SEED to replay)`);

async function check<Ts extends [unknown, ...unknown[]]>(
  property: fc.IAsyncProperty<Ts> | fc.IProperty<Ts>,
  numRuns: number,
): Promise<void> {
  try {
    await fc.assert(property, { seed: SEED, numRuns });
  } catch (err) {
    console.error(`store-summary property failed with seed ${SEED}`);
    throw err;
  }
}

const toSet = (ranges: readonly Range[]): Set<number> => {
  const out = new Set<number>();
  for (const [a, b] of ranges) for (let n = a; n <= b; n++) out.add(n);
  return out;
};
const sorted = (s: Iterable<number>): number[] => [...s].sort((a, b) => a - b);

const rangesArb = fc
  .array(fc.tuple(fc.integer({ min: 1, max: 80 }), fc.integer({ min: 0, max: 10 })), { maxLength: 8 })
  .map((xs) => normalizeRanges(xs.map(([a, len]): Range => [a, a + len])));

const summaryArb = (channel: string): fc.Arbitrary<StreamSummary> =>
  fc
    .tuple(fc.integer({ min: 0, max: 40 }), fc.integer({ min: 0, max: 41 }), rangesArb)
    .map(([contiguous, floorOffset, above]) => ({
      origin: 'alice',
      epoch: 'e1',
      channel,
      contiguous,
      floor: Math.min(floorOffset + 1, contiguous + 1),
      // above starts past contiguous + 1 (a held contiguous + 1 would have advanced it)
      above: subtractRanges(above, [[1, contiguous + 1]]),
    }));

describe('range arithmetic', () => {
  test('subtractRanges is set difference; normalizeRanges keeps the set', async () => {
    await check(
      fc.property(rangesArb, rangesArb, (a, b) => {
        const diff = toSet(subtractRanges(a, b));
        const expected = new Set([...toSet(a)].filter((n) => !toSet(b).has(n)));
        assert.deepEqual(sorted(diff), sorted(expected));
        assert.deepEqual(normalizeRanges(subtractRanges(a, b)), subtractRanges(a, b), 'already normal');
      }),
      500,
    );
  });

  test('normalizeRanges drops what is not a range of positive integers', () => {
    assert.deepEqual(
      normalizeRanges([
        [5, 3],
        [0, 2],
        [1.5, 4],
        [Number.NaN, 3],
        [7, 9],
        [10, 10],
        [2, 2],
      ]),
      [
        [2, 2],
        [7, 10],
      ],
    );
  });

  test('gapsOf lists what is missing between contiguous and the highest held number', () => {
    const s: StreamSummary = {
      origin: 'a',
      epoch: 'e',
      channel: 'b',
      contiguous: 3,
      floor: 1,
      above: [
        [5, 6],
        [9, 9],
      ],
    };
    assert.deepEqual(gapsOf(s), [
      [4, 4],
      [7, 8],
    ]);
    assert.deepEqual(gapsOf({ ...s, above: [] }), []);
  });
});

describe('planCatchUp', () => {
  test('plans exactly what the member holds and this node has not received, in bounded ranges', async () => {
    await check(
      fc.property(
        fc.option(summaryArb('b'), { nil: undefined }),
        summaryArb('b'),
        summaryArb('t:x'),
        fc.integer({ min: 1, max: 20 }),
        (local, remote, other, maxBatch) => {
          const plan = planCatchUp(local === undefined ? [] : [local], [remote, other], {
            channels: new Set(['b']),
            maxBatch,
          });
          const planned: number[] = [];
          for (const r of plan) {
            assert.equal(r.channel, 'b', 'only the channels asked for');
            assert.ok(r.from <= r.to && r.to - r.from + 1 <= maxBatch, 'bounded ranges');
            for (let n = r.from; n <= r.to; n++) planned.push(n);
          }
          const expected = [...toSet(heldRanges(remote))].filter(
            (n) => local === undefined || !toSet(receivedRanges(local)).has(n),
          );
          assert.deepEqual(planned, sorted(expected), 'exactly the wanted numbers, once each, in order');
        },
      ),
      1000,
    );
  });

  test('maxMessages caps the plan', async () => {
    await check(
      fc.property(summaryArb('b'), fc.integer({ min: 1, max: 30 }), (remote, max) => {
        const all = countRanges(heldRanges(remote));
        const plan = planCatchUp([], [remote], { maxMessages: max, maxBatch: 7 });
        const n = plan.reduce((k, r) => k + r.to - r.from + 1, 0);
        assert.equal(n, Math.min(all, max));
      }),
      500,
    );
  });
});

for (const impl of [memoryImpl(), sqliteImpl()]) {
  const runs = impl.name === 'memory' ? 300 : 60;
  describe(`summaries of random logs: ${impl.name}`, () => {
    after(() => impl.cleanup());
    const clock = new TestWallClock();

    test('append and skip keep the summary equal to a model of received, skipped and held numbers', async () => {
      const op = fc.oneof(
        { weight: 4, arbitrary: fc.array(fc.integer({ min: 1, max: 60 }), { minLength: 1, maxLength: 6 }) },
        { weight: 1, arbitrary: fc.integer({ min: 0, max: 60 }).map((upTo) => ({ upTo })) },
      );
      await check(
        fc.asyncProperty(fc.array(op, { maxLength: 25 }), async (ops) => {
          const s = await impl.open({ now: clock.now });
          const received = new Set<number>();
          const held = new Set<number>();
          // Skipped, never held: still taken when a copy comes.
          const skipped = new Set<number>();
          try {
            for (const o of ops) {
              if (Array.isArray(o)) {
                const statuses = s.append(o.map((n) => msg(n)));
                o.forEach((n, i) => {
                  const fresh = !held.has(n) && (!received.has(n) || skipped.has(n));
                  assert.equal(statuses[i], fresh ? 'new' : 'duplicate', `number ${n}`);
                  if (fresh) held.add(n);
                  received.add(n);
                });
              } else {
                s.skip({ origin: 'alice', epoch: 'e1', channel: 'b' }, o.upTo);
                let contiguous = 0;
                while (received.has(contiguous + 1)) contiguous++;
                for (let n = contiguous + 1; n <= o.upTo; n++) {
                  if (!held.has(n)) skipped.add(n);
                  received.add(n);
                }
              }
            }
            const [sum] = s.summary();
            if (sum === undefined) return assert.equal(ops.length, 0);
            assert.deepEqual(sorted(toSet(receivedRanges(sum))), sorted(received), 'received: exact');
            const claimed = toSet(heldRanges(sum));
            for (const n of claimed) assert.ok(held.has(n), `${n} claimed held`);
            assert.deepEqual(
              sorted(toSet(sum.above)),
              sorted([...held].filter((n) => n > sum.contiguous)),
              'above: exact',
            );
            assert.deepEqual(
              s.readRange({ origin: 'alice', epoch: 'e1', channel: 'b' }, 1, 100).map((e) => e.seq),
              sorted(held),
            );
          } finally {
            s.close();
          }
        }),
        runs,
      );
    });

    test('with retention, nothing is ever new twice and a scope never exceeds its bound', async () => {
      await check(
        fc.asyncProperty(
          fc.integer({ min: 1, max: 8 }),
          fc.array(fc.array(fc.integer({ min: 1, max: 40 }), { minLength: 1, maxLength: 5 }), {
            maxLength: 20,
          }),
          async (maxMessages, batches) => {
            const s = await impl.open({ now: clock.now, retention: { maxMessages } });
            const delivered = new Set<number>();
            try {
              for (const batch of batches) {
                // later numbers are later in time, as an origin writes them
                const statuses = s.append(batch.map((n) => msg(n, { at: clock.t - 1000 + n })));
                batch.forEach((n, i) => {
                  if (statuses[i] === 'new') {
                    assert.ok(!delivered.has(n), `${n} new twice`);
                    delivered.add(n);
                  }
                });
                assert.ok(s.stats().messages <= maxMessages);
              }
            } finally {
              s.close();
            }
          },
        ),
        runs,
      );
    });

    test('catch-up between two random logs: planned ranges, served and appended, fill every gap once', async () => {
      const origins = ['alice', 'bob'];
      const channels = ['b', 't:x'];
      const logArb = fc.array(
        fc.tuple(fc.constantFrom(...origins), fc.constantFrom(...channels), fc.integer({ min: 1, max: 30 })),
        { maxLength: 40 },
      );
      const build = (s: Store, log: [string, string, number][]): void => {
        s.append(
          log.map(([origin, channel, n]) =>
            msg(n, {
              origin: { id: origin, address: '127.0.0.1', port: 1 },
              kind: channel === 'b' ? 'broadcast' : 'topic',
              ...(channel === 'b' ? {} : { topic: 'x' }),
              channel,
            }),
          ),
        );
      };
      await check(
        fc.asyncProperty(logArb, logArb, fc.integer({ min: 1, max: 10 }), async (logA, logB, maxBatch) => {
          const a = await impl.open({ now: clock.now });
          const b = await impl.open({ now: clock.now });
          try {
            build(a, logA);
            build(b, logB);
            const plan = planCatchUp(a.summary(), b.summary(), { maxBatch });
            for (const r of plan) {
              const served = b.readRange(r, r.from, r.to);
              assert.equal(served.length, r.to - r.from + 1, 'a planned range is held in full');
              const statuses = a.append(served.map((e) => ({ ...e, late: true })));
              assert.ok(
                statuses.every((x) => x === 'new'),
                'nothing fetched twice',
              );
            }
            assert.deepEqual(planCatchUp(a.summary(), b.summary()), [], 'nothing left to fetch');
            for (const theirs of b.summary()) {
              const ours = a
                .summary()
                .find((s) => s.origin === theirs.origin && s.channel === theirs.channel);
              assert.ok(ours !== undefined);
              const got = toSet(receivedRanges(ours));
              for (const n of toSet(heldRanges(theirs))) assert.ok(got.has(n));
            }
          } finally {
            a.close();
            b.close();
          }
        }),
        runs,
      );
    });
  });
}
