/**
 * A per-source rate limit: one token bucket per remote address (per /64 network for IPv6,
 * where one host easily holds many addresses). A request takes a token; an empty bucket means
 * 429 with `Retry-After`.
 *
 * @module
 */

import { isIP } from 'node:net';

/** Settings of a {@link RateLimiter}. */
export interface RateLimitOptions {
  /** Tokens added per second: the sustained request rate allowed per source. */
  readonly ratePerSecond: number;
  /** Bucket size: the burst allowed per source. */
  readonly burst: number;
  /** Whether loopback sources (127.0.0.0/8, ::1) are limited too. */
  readonly limitLoopback: boolean;
  /** Most sources tracked; beyond, the least recently seen is forgotten. @default 10000 */
  readonly maxSources?: number;
  /** A monotonic clock in ms. @default performance.now */
  readonly now?: () => number;
}

interface Bucket {
  tokens: number;
  at: number;
}

/** The key of a source address: the address itself, or its /64 for IPv6. */
export function sourceKey(address: string): string {
  if (isIP(address) !== 6) return address;
  const lower = address.toLowerCase();
  if (lower.startsWith('::ffff:') && isIP(lower.slice(7)) === 4) return lower.slice(7);
  const [head = '', tail = ''] = lower.split('::');
  const left = head === '' ? [] : head.split(':');
  const right = tail === '' ? [] : tail.split(':');
  const groups = lower.includes('::')
    ? [...left, ...Array<string>(Math.max(0, 8 - left.length - right.length)).fill('0'), ...right]
    : left;
  return `${groups
    .slice(0, 4)
    .map((g) => g.replace(/^0+(?=.)/, ''))
    .join(':')}::/64`;
}

function isLoopbackAddress(address: string): boolean {
  return address === '::1' || (isIP(address) === 4 && address.startsWith('127.'));
}

/** Token buckets per source. */
export class RateLimiter {
  readonly #o: Required<Omit<RateLimitOptions, 'now'>>;
  readonly #now: () => number;
  readonly #buckets = new Map<string, Bucket>();

  constructor(options: RateLimitOptions) {
    this.#o = { maxSources: 10_000, ...options };
    this.#now = options.now ?? (() => performance.now());
  }

  /** How many sources are tracked. */
  get sources(): number {
    return this.#buckets.size;
  }

  /**
   * Takes a token for a request from `address`. Returns 0 when the request may go on, or the
   * number of ms until a token is available.
   */
  take(address: string): number {
    if (!this.#o.limitLoopback && isLoopbackAddress(address)) return 0;
    const key = sourceKey(address);
    const now = this.#now();
    let bucket = this.#buckets.get(key);
    if (bucket === undefined) {
      bucket = { tokens: this.#o.burst, at: now };
      if (this.#buckets.size >= this.#o.maxSources) {
        this.#buckets.delete(this.#buckets.keys().next().value as string);
      }
    } else {
      this.#buckets.delete(key); // most recently seen goes last
      bucket.tokens = Math.min(
        this.#o.burst,
        bucket.tokens + ((now - bucket.at) * this.#o.ratePerSecond) / 1000,
      );
      bucket.at = now;
    }
    this.#buckets.set(key, bucket);
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1;
      return 0;
    }
    return Math.ceil(((1 - bucket.tokens) * 1000) / this.#o.ratePerSecond);
  }
}
