/**
 * Randomness, injected, so that simulations are reproducible from a printed seed.
 *
 * @module
 */

import { randomBytes } from 'node:crypto';

/** A source of random numbers. */
export interface Random {
  /** A float in [0, 1). */
  next(): number;
  /** `n` random bytes. */
  bytes(n: number): Uint8Array;
}

/** Cryptographically strong randomness from `node:crypto`. */
export class SystemRandom implements Random {
  // Drawn 4 KiB at a time: one call into the kernel's generator per thousand numbers.
  #pool = Buffer.alloc(0);
  #at = 0;

  next(): number {
    return this.#take(4).readUInt32LE(0) / 0x1_0000_0000;
  }

  bytes(n: number): Uint8Array {
    return n > 256 ? randomBytes(n) : Uint8Array.from(this.#take(n));
  }

  #take(n: number): Buffer {
    if (this.#at + n > this.#pool.length) {
      this.#pool = randomBytes(4096);
      this.#at = 0;
    }
    const out = this.#pool.subarray(this.#at, this.#at + n);
    this.#at += n;
    return out;
  }
}

/**
 * A fast seeded generator (sfc32), for tests and simulations only: it is not cryptographically
 * strong.
 */
export class SeededRandom implements Random {
  #a: number;
  #b: number;
  #c: number;
  #d: number;
  /** The seed this generator started from. */
  readonly seed: number;

  /** @param seed - any 32-bit integer */
  constructor(seed: number) {
    this.seed = seed >>> 0;
    this.#a = 0x9e3779b9;
    this.#b = 0x243f6a88;
    this.#c = 0xb7e15162;
    this.#d = this.seed;
    for (let i = 0; i < 15; i++) this.#u32();
  }

  #u32(): number {
    const t = (((this.#a + this.#b) | 0) + this.#d) | 0;
    this.#d = (this.#d + 1) | 0;
    this.#a = this.#b ^ (this.#b >>> 9);
    this.#b = (this.#c + (this.#c << 3)) | 0;
    this.#c = (this.#c << 21) | (this.#c >>> 11);
    this.#c = (this.#c + t) | 0;
    return t >>> 0;
  }

  next(): number {
    return this.#u32() / 0x1_0000_0000;
  }

  bytes(n: number): Uint8Array {
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i += 4) {
      const v = this.#u32();
      for (let j = 0; j < 4 && i + j < n; j++) out[i + j] = (v >>> (8 * j)) & 0xff;
    }
    return out;
  }
}

/** The process-wide default source of randomness. */
export const systemRandom: Random = new SystemRandom();

/** Shuffles `items` in place (Fisher-Yates) and returns it. */
export function shuffle<T>(items: T[], random: Random): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(random.next() * (i + 1));
    const tmp = items[i]!;
    items[i] = items[j]!;
    items[j] = tmp;
  }
  return items;
}

/**
 * Up to `k` distinct items drawn uniformly at random from the indexes `0..n-1` that `at` accepts
 * (it returns `undefined` for one to pass over), in random order: as `shuffle` of the accepted
 * items, then the first `k`, without building that list when few are passed over. Draws at random
 * indexes first (a few times `k`), and falls back to listing the accepted ones when that did not
 * find `k` (most are passed over, or `k` is near `n`). O(k) time when most items qualify, O(n)
 * otherwise.
 */
export function sample<T>(n: number, k: number, random: Random, at: (index: number) => T | undefined): T[] {
  const out: T[] = [];
  if (k <= 0 || n <= 0) return out;
  if (n > 4 * k) {
    const seen = new Set<number>();
    for (let tries = 0; tries < 4 * k + 8 && out.length < k; tries++) {
      const i = Math.floor(random.next() * n);
      if (seen.has(i)) continue;
      seen.add(i);
      const item = at(i);
      if (item !== undefined) out.push(item);
    }
    if (out.length === k) return out;
    out.length = 0;
  }
  const all: T[] = [];
  for (let i = 0; i < n; i++) {
    const item = at(i);
    if (item !== undefined) all.push(item);
  }
  // The first k steps of a Fisher-Yates shuffle.
  const take = Math.min(k, all.length);
  for (let i = 0; i < take; i++) {
    const j = i + Math.floor(random.next() * (all.length - i));
    const tmp = all[i]!;
    all[i] = all[j]!;
    all[j] = tmp;
  }
  all.length = take;
  return all;
}
