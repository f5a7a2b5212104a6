import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { SeededRandom, SystemRandom, sample, shuffle } from '../../src/random.js';

const take = (random: { next(): number }, n: number): number[] =>
  Array.from({ length: n }, () => random.next());

describe('SeededRandom', () => {
  test('the same seed gives the same sequence', () => {
    assert.deepEqual(take(new SeededRandom(42), 100), take(new SeededRandom(42), 100));
    assert.deepEqual(new SeededRandom(42).bytes(33), new SeededRandom(42).bytes(33));
  });

  test('different seeds give different sequences', () => {
    const seqs = [0, 1, 2, 42, 0xffffffff].map((s) => take(new SeededRandom(s), 10).join(','));
    assert.equal(new Set(seqs).size, seqs.length);
  });

  test('the seed is kept as an unsigned 32-bit integer', () => {
    assert.equal(new SeededRandom(7).seed, 7);
    assert.equal(new SeededRandom(-1).seed, 0xffffffff);
    assert.deepEqual(take(new SeededRandom(-1), 5), take(new SeededRandom(0xffffffff), 5));
  });

  test('next() is in [0, 1) and spread over the range', () => {
    const random = new SeededRandom(1);
    const buckets = new Array<number>(10).fill(0);
    for (let i = 0; i < 10_000; i++) {
      const x = random.next();
      assert.ok(x >= 0 && x < 1, String(x));
      buckets[Math.floor(x * 10)]!++;
    }
    // Each tenth gets about 1000; a broken generator would leave buckets empty or overfull.
    for (const b of buckets) assert.ok(b > 800 && b < 1200, `bucket counts ${buckets.join(',')}`);
  });

  test('bytes(n) returns n bytes, for n not a multiple of 4 too', () => {
    const random = new SeededRandom(3);
    for (const n of [0, 1, 3, 4, 5, 16, 31]) assert.equal(random.bytes(n).length, n);
    const many = new SeededRandom(3).bytes(4096);
    assert.ok(new Set(many).size > 200, 'bytes vary');
  });
});

describe('SystemRandom', () => {
  test('next() is in [0, 1) and bytes(n) has n bytes', () => {
    const random = new SystemRandom();
    for (let i = 0; i < 1000; i++) {
      const x = random.next();
      assert.ok(x >= 0 && x < 1);
    }
    assert.equal(random.bytes(12).length, 12);
  });
});

describe('shuffle', () => {
  test('is a permutation, in place', () => {
    const random = new SeededRandom(9);
    for (let n = 0; n < 20; n++) {
      const items = Array.from({ length: n }, (_, i) => i);
      const shuffled = shuffle(items, random);
      assert.equal(shuffled, items, 'shuffles in place and returns the array');
      assert.deepEqual(
        [...shuffled].sort((a, b) => a - b),
        Array.from({ length: n }, (_, i) => i),
      );
    }
  });

  test('is deterministic for a seed and actually reorders', () => {
    const items = Array.from({ length: 50 }, (_, i) => i);
    const a = shuffle([...items], new SeededRandom(5));
    const b = shuffle([...items], new SeededRandom(5));
    assert.deepEqual(a, b);
    assert.notDeepEqual(a, items);
    assert.notDeepEqual(a, shuffle([...items], new SeededRandom(6)));
  });

  test('every position receives every item over many shuffles', () => {
    const random = new SeededRandom(11);
    const seen = Array.from({ length: 4 }, () => new Set<number>());
    for (let i = 0; i < 200; i++) {
      for (const [pos, v] of shuffle([0, 1, 2, 3], random).entries()) seen[pos]!.add(v);
    }
    for (const s of seen) assert.equal(s.size, 4);
  });
});

describe('sample', () => {
  test('draws k distinct accepted items, each about equally often, on both paths', () => {
    const random = new SeededRandom(7);
    // 100 items, the odd ones refused: k = 3 takes the random-index path, k = 40 the listing one.
    for (const k of [3, 40]) {
      const counts = new Map<number, number>();
      for (let round = 0; round < 2000; round++) {
        const got = sample(100, k, random, (i) => (i % 2 === 0 ? i : undefined));
        assert.equal(got.length, k);
        assert.equal(new Set(got).size, k, 'distinct');
        for (const i of got) {
          assert.equal(i % 2, 0, 'only accepted items');
          counts.set(i, (counts.get(i) ?? 0) + 1);
        }
      }
      assert.equal(counts.size, 50, 'every accepted item is drawn at times');
      const mean = (2000 * k) / 50;
      for (const c of counts.values()) assert.ok(Math.abs(c - mean) < 0.25 * mean, `${c} vs ${mean}`);
    }
  });

  test('returns every accepted item when fewer than k qualify, and none for k = 0', () => {
    const random = new SeededRandom(8);
    assert.deepEqual(sample(10, 5, random, (i) => (i < 3 ? i : undefined)).sort(), [0, 1, 2]);
    assert.deepEqual(
      sample(10, 0, random, (i) => i),
      [],
    );
    assert.deepEqual(
      sample(0, 3, random, (i) => i),
      [],
    );
  });
});
