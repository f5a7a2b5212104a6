/**
 * The replay cache: which signed envelopes a node has accepted lately, by sender and message id.
 *
 * An envelope carries its sender's timestamp `ts`, and a node accepts only envelopes whose `ts`
 * is within its clock skew window. The cache therefore needs to remember an envelope only while
 * its `ts` is inside the window: after that, the window refuses it anyway.
 *
 * The cache is bounded. When it is full, the oldest entry is dropped and its `ts` becomes the
 * *floor*: from then on an envelope stamped at or before the floor is refused as too old. A
 * replay is therefore never accepted, even under a flood; what a flood costs is that delayed
 * envelopes older than the floor are refused (availability, not safety).
 *
 * @module
 */

/** What the cache knows of an envelope. */
export type ReplayStatus =
  /** Not seen: it may be accepted. */
  | 'new'
  /** Seen with the same signature: the same bytes again (a retry, a relay or a replay). */
  | 'same'
  /** Seen with another signature: the same id again in other bytes; verify before trusting it. */
  | 'other';

interface Entry {
  readonly ts: number;
  readonly sig: string;
}

/** How many characters of a signature the cache keeps to tell the same bytes from others. */
const SIG_PREFIX = 16;

/** Envelopes accepted lately, by `sender/id`, each remembered while its timestamp is in the window. */
export class ReplayCache {
  readonly #capacity: number;
  readonly #windowMs: number;
  // Insertion order: the first entry is the oldest inserted.
  readonly #entries = new Map<string, Entry>();
  #floor = Number.NEGATIVE_INFINITY;

  /**
   * @param capacity - most envelopes remembered
   * @param windowMs - how far a timestamp may be from the local clock, in ms (either way)
   */
  constructor(capacity: number, windowMs: number) {
    this.#capacity = Math.max(1, capacity);
    this.#windowMs = windowMs;
  }

  /** How many envelopes are remembered. */
  get size(): number {
    return this.#entries.size;
  }

  /** Envelopes stamped at or before this are refused: entries younger than the window were dropped. */
  get floor(): number {
    return this.#floor;
  }

  /** What the cache knows of the envelope `key` (`sender/id`) signed with `sig`. */
  status(key: string, sig: string, now: number): ReplayStatus {
    this.#expire(now);
    const entry = this.#entries.get(key);
    if (entry === undefined) return 'new';
    return entry.sig === sig.slice(0, SIG_PREFIX) ? 'same' : 'other';
  }

  /**
   * Records an accepted envelope. Returns the function that forgets it again: a request that
   * ends up refused (its sender not yet a member, say) may be retried with the same bytes.
   */
  add(key: string, ts: number, sig: string, now: number): () => void {
    this.#expire(now);
    const entry: Entry = { ts, sig: sig.slice(0, SIG_PREFIX) };
    this.#entries.delete(key);
    this.#entries.set(key, entry);
    if (this.#entries.size > this.#capacity) {
      const [oldestKey, oldest] = this.#entries.entries().next().value as [string, Entry];
      this.#entries.delete(oldestKey);
      if (oldest.ts + this.#windowMs >= now) this.#floor = Math.max(this.#floor, oldest.ts);
    }
    return () => {
      if (this.#entries.get(key) === entry) this.#entries.delete(key);
    };
  }

  #expire(now: number): void {
    // Entries were inserted roughly in timestamp order: stop at the first one still in the window
    // (a later one that expired earlier waits for its turn; memory stays bounded by capacity).
    for (const [key, entry] of this.#entries) {
      if (entry.ts + this.#windowMs >= now) break;
      this.#entries.delete(key);
    }
  }
}
