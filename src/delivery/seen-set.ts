/**
 * A bounded, time-windowed set of message ids, to drop duplicates.
 *
 * @module
 */

/**
 * Remembers ids for `windowMs`, and at most `capacity` of them (the oldest are forgotten
 * first). Memory is therefore bounded whatever the traffic.
 */
export class SeenSet {
  readonly #capacity: number;
  readonly #windowMs: number;
  // Map keeps insertion order, which is also expiry order: the oldest entry is first.
  readonly #seen = new Map<string, number>();

  /**
   * @param capacity - most ids remembered
   * @param windowMs - how long an id is remembered, in ms
   */
  constructor(capacity: number, windowMs: number) {
    this.#capacity = capacity;
    this.#windowMs = windowMs;
  }

  /** How many ids are remembered. */
  get size(): number {
    return this.#seen.size;
  }

  /** Whether `id` was seen within the window. */
  has(id: string, now: number): boolean {
    const at = this.#seen.get(id);
    return at !== undefined && now - at < this.#windowMs;
  }

  /** Records `id`. Returns `true` when it is new, `false` when it is a duplicate. */
  add(id: string, now: number): boolean {
    this.#expire(now);
    if (this.#seen.has(id)) return false;
    this.#seen.set(id, now);
    if (this.#seen.size > this.#capacity) {
      const oldest = this.#seen.keys().next().value as string;
      this.#seen.delete(oldest);
    }
    return true;
  }

  #expire(now: number): void {
    for (const [id, at] of this.#seen) {
      if (now - at < this.#windowMs) break;
      this.#seen.delete(id);
    }
  }
}
