/**
 * The memory store's columns (`src/store/scope-log.ts`, `src/store/seq-index.ts`) beyond what
 * the contract suite reaches with a few messages: thousands of rows, late ones splitting full
 * chunks, rows larger than a slab, removal from the front, each checked against a plain
 * sorted array.
 */

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MAX_ROWS, MAX_SLAB, ScopeLog } from '../../src/store/scope-log.js';
import { SeqIndex } from '../../src/store/seq-index.js';
import { msg } from '../helpers/store.js';

// Reproduce a failure with TSP2P_SEED=<seed printed below>.
const SEED = process.env.TSP2P_SEED === undefined ? 20261203 : Number(process.env.TSP2P_SEED);
console.log(`store-columns: seed ${SEED} (set TSP2P_SEED to replay)`);

function random(seed: number): (n: number) => number {
  let s = seed >>> 0;
  return (n) => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return Math.floor((s / 2 ** 32) * n);
  };
}

interface Ref {
  readonly at: number;
  readonly key: number;
  readonly seq: number;
  readonly payload: Uint8Array;
  readonly sig: Uint8Array;
  readonly deps: readonly string[];
}

/** Nine origins' 32-byte keys: more than a chunk holds once (`MAX_KEYS`). */
const KEYS = Array.from({ length: 9 }, (_, k) => new Uint8Array(32).fill(k + 1));

/**
 * A signature column: mostly one of {@link KEYS} then 0, 32, 64 or 96 more bytes (as the
 * journal packs them), sometimes short, sometimes a key's first bytes only.
 */
function sigOf(rnd: (n: number) => number, n: number): Uint8Array {
  const kind = rnd(10);
  if (kind === 0) return Uint8Array.of(n & 255, 7);
  if (kind === 1) return KEYS[rnd(9)]!.slice(0, 31);
  const out = new Uint8Array(32 + 32 * rnd(4)).fill(n & 255);
  out.set(KEYS[rnd(9)]!, 0);
  if (kind === 2) out[31] = 0;
  return out;
}

test('a scope log keeps (at, key) order and every row’s bytes through late rows, chunk splits, large rows and removal from the front', () => {
  const rnd = random(SEED);
  const log = new ScopeLog<string>(0, 'b', { maxMessages: 1e9, maxAgeMs: 1e12 });
  const ref: Ref[] = [];
  let key = 0;
  let at = 1_000_000;
  const rows = () => {
    const out: Ref[] = [];
    log.walk((c, i) => {
      out.push({
        at: c.at(i),
        key: c.key(i),
        seq: c.seq(i),
        payload: c.payload(i),
        sig: c.sig(i),
        deps: c.deps?.[i] ?? [],
      });
      return true;
    });
    return out;
  };
  let large = 0;
  for (let n = 0; n < 6_000; n++) {
    // Mostly the newest; one in six late, below rows already held.
    if (rnd(6) !== 0) at += rnd(3);
    const t = rnd(6) === 0 ? at - rnd(50_000) : at;
    const size = rnd(400) === 0 && large++ < 3 ? MAX_SLAB + rnd(1000) : rnd(300);
    const payload = new Uint8Array(size).fill(n & 255);
    const m = msg(n + 1, {
      at: t,
      payload,
      sig: sigOf(rnd, n),
      deps: rnd(10) === 0 ? [`d${n}`] : [],
    });
    log.insert(m, m.origin, 'stream', ++key, t);
    ref.push({ at: t, key, seq: n + 1, payload, sig: m.sig, deps: m.deps });
    if (rnd(50) === 0) {
      ref.sort((a, b) => a.at - b.at || a.key - b.key);
      const k = Math.min(ref.length, rnd(200));
      const gone: number[] = [];
      log.dropFront(k, (c, i) => gone.push(c.key(i)));
      assert.deepEqual(
        gone,
        ref.splice(0, k).map((r) => r.key),
      );
    }
  }
  ref.sort((a, b) => a.at - b.at || a.key - b.key);
  assert.equal(log.count, ref.length);
  assert.deepEqual(rows(), ref);
  for (const c of log.chunks) {
    let stored = 0;
    for (let i = c.start; i < c.end; i++) stored += c.stored(i);
    assert.equal(c.live, stored, "a chunk's live bytes are its rows' bytes in the slab");
  }
  assert.ok(
    log.chunks.some((c) => (c.keys?.length ?? 0) > 0),
    'some rows keep their key in their chunk, not in the slab',
  );
  assert.ok(log.chunks.length > ref.length / MAX_ROWS, 'the rows span several chunks');
  assert.ok(
    log.chunks.every((c) => c.rows > 0 && c.rows <= MAX_ROWS),
    'no empty or overfull chunk',
  );
  for (const r of ref) {
    const [c, i] = log.locate(r.at, r.key) ?? assert.fail(`row ${r.key} not found`);
    assert.equal(c.seq(i), r.seq);
  }
  assert.equal(log.locate(ref[0]!.at, -5), undefined);
  // Newest first from a cursor: every row before it.
  for (const cut of [0, 1, rnd(ref.length), ref.length - 1]) {
    const seen: number[] = [];
    log.walkBack(ref[cut], (c, i) => {
      seen.push(c.key(i));
      return true;
    });
    assert.deepEqual(
      seen,
      ref
        .slice(0, cut)
        .map((r) => r.key)
        .reverse(),
    );
  }
});

test('a stream’s index of held numbers follows a plain map through out-of-order adds and removals', () => {
  const rnd = random(SEED + 1);
  const index = new SeqIndex();
  const ref = new Map<number, number>();
  for (let n = 0; n < 20_000; n++) {
    const seq = rnd(3) === 0 ? 1 + rnd(5_000) : n + 1;
    if (rnd(3) === 0) {
      const pick = rnd(3);
      const victim = pick === 0 ? Math.min(...ref.keys()) : pick === 1 ? Math.max(...ref.keys()) : seq;
      index.delete(victim);
      ref.delete(victim);
    } else if (!ref.has(seq)) {
      index.add(seq, seq * 10, n, 0);
      ref.set(seq, n);
    }
    // The array follows what is held: room for at most four times the rows in use (4 slots a row).
    if (index.capacity > 4 * 4 * Math.max(4, index.size))
      assert.fail(`step ${n}: ${index.capacity} for ${index.size}`);
  }
  assert.equal(index.size, ref.size);
  for (let seq = 0; seq <= 20_001; seq++) assert.equal(index.get(seq)?.key, ref.get(seq));
  const got: number[] = [];
  index.range(100, 4_000, (r) => {
    got.push(r.seq);
    return got.length < 500;
  });
  assert.deepEqual(
    got,
    [...ref.keys()]
      .filter((s) => s >= 100 && s <= 4_000)
      .sort((a, b) => a - b)
      .slice(0, 500),
  );
});

test('a number added again after its removal is found, even beside removed rows of that number', () => {
  const index = new SeqIndex();
  for (const seq of [3, 5, 6]) index.add(seq, seq, seq, 0);
  index.delete(5);
  index.delete(6);
  index.add(5, 50, 50, 1);
  assert.deepEqual(index.get(5), { seq: 5, at: 50, key: 50, log: 1 });
  index.add(7, 7, 7, 0);
  // In the middle, twice: each time before the removed row of the same number.
  for (const key of [51, 52]) {
    index.delete(5);
    assert.equal(index.get(5), undefined);
    index.add(5, key, key, 1);
    assert.equal(index.get(5)?.key, key);
  }
  const seen: number[] = [];
  index.range(0, 10, (r) => seen.push(r.key) > 0);
  assert.deepEqual(seen, [3, 52, 7]);
  assert.equal(index.size, 3);
});

test('a stream’s index of held numbers gives memory back as its numbers go, and all of it when none is held', () => {
  const index = new SeqIndex();
  assert.equal(index.capacity, 0, 'nothing before the first number');
  for (let seq = 1; seq <= 50_000; seq++) index.add(seq, seq, seq, 0);
  const full = index.capacity;
  assert.ok(full >= 50_000 * 4);
  // Retention takes from the front, then a few late deletions out of order.
  for (let seq = 1; seq <= 49_990; seq++) index.delete(seq);
  assert.equal(index.size, 10);
  assert.ok(index.capacity <= 4 * 4 * 10, `${index.capacity} slots for 10 rows`);
  for (let seq = 49_991; seq <= 50_000; seq += 2) index.delete(seq);
  for (let seq = 49_992; seq <= 50_000; seq += 2) assert.equal(index.get(seq)?.key, seq);
  for (let seq = 49_992; seq <= 50_000; seq += 2) index.delete(seq);
  assert.equal(index.size, 0);
  assert.equal(index.capacity, 0, 'a stream holding nothing keeps no array');
  // And it serves again.
  index.add(7, 1, 2, 3);
  assert.deepEqual(index.get(7), { seq: 7, at: 1, key: 2, log: 3 });
});

test('one large message costs its own chunk’s slab, not those of the chunks after it', () => {
  const reserved = (big: boolean): { slab: number; data: number } => {
    const log = new ScopeLog<string>(0, 'b', { maxMessages: 1e9, maxAgeMs: 1e12 });
    let seq = 0;
    let data = 0;
    const add = (size: number): void => {
      const m = msg(++seq, { payload: new Uint8Array(size) });
      log.insert(m, m.origin, 's', seq, 0);
      data += size + m.sig.byteLength;
    };
    if (big) add(1 << 20);
    for (let n = 0; n < 20 * MAX_ROWS; n++) add(100);
    let slab = 0;
    for (const c of log.chunks) slab += c.slab.length;
    return { slab, data };
  };
  for (const big of [false, true]) {
    const { slab, data } = reserved(big);
    // Each chunk's slab within half again of what its rows take (a quarter on average).
    assert.ok(slab <= 1.5 * data, `${big ? 'with' : 'without'} a large message: ${slab} bytes for ${data}`);
  }
});
