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
