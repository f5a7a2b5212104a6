/**
 * The dissemination queue: membership updates waiting to be piggybacked on outgoing traffic.
 *
 * @module
 */

import { compareUpdates, type MemberUpdate } from './merge.js';

interface Entry {
  readonly update: MemberUpdate;
  transmits: number;
}

/**
 * How many times each update is sent before it is dropped: `retransmitMult × ⌈log10(n + 1)⌉`
 * for a network of `n` nodes (memberlist's rule). Infection-style spreading reaches every node
 * with high probability within that many rounds.
 */
export function retransmitLimit(retransmitMult: number, n: number): number {
  return retransmitMult * Math.max(1, Math.ceil(Math.log10(n + 1)));
}

/**
 * Holds at most one update per member (the newest), and hands out the least-sent first, so that
 * fresh news overtakes news that has already travelled. Entries sit in buckets by transmission
 * count, so taking a few costs no more than those few, whatever the queue's length.
 */
export class GossipQueue {
  readonly #entries = new Map<string, Entry>();
  // bucket[t]: the entries sent t times, oldest first (a Map keeps insertion order).
  readonly #buckets: Map<string, Entry>[] = [];
  readonly #onQueued: (() => void) | undefined;

  /** @param onQueued - called after each update is queued */
  constructor(onQueued?: () => void) {
    this.#onQueued = onQueued;
  }

  /** How many updates wait to be sent. */
  get size(): number {
    return this.#entries.size;
  }

  /** Queues an update, replacing an older one about the same member. */
  enqueue(update: MemberUpdate): void {
    const cur = this.#entries.get(update.id);
    if (cur !== undefined) {
      if (compareUpdates(update, cur.update) < 0) return;
      this.#buckets[cur.transmits]?.delete(update.id);
    }
    const entry: Entry = { update, transmits: 0 };
    this.#entries.set(update.id, entry);
    this.#bucket(0).set(update.id, entry);
    this.#onQueued?.();
  }

  /**
   * Takes up to `max` updates to piggyback on one message, least-sent first. Each counts as one
   * transmission; one sent `limit` times is dropped.
   */
  take(max: number, limit: number): MemberUpdate[] {
    const out: MemberUpdate[] = [];
    const moved: Entry[] = [];
    for (let t = 0; t < this.#buckets.length && out.length < max; t++) {
      const bucket = this.#buckets[t];
      if (bucket === undefined) continue;
      for (const [id, e] of bucket) {
        if (out.length >= max) break;
        out.push(e.update);
        bucket.delete(id);
        e.transmits++;
        if (e.transmits >= limit) this.#entries.delete(id);
        else moved.push(e);
      }
    }
    // Re-bucket after the scan, so that an entry is not taken twice in one call.
    for (const e of moved) this.#bucket(e.transmits).set(e.update.id, e);
    return out;
  }

  /** Drops everything. */
  clear(): void {
    this.#entries.clear();
    this.#buckets.length = 0;
  }

  #bucket(t: number): Map<string, Entry> {
    let b = this.#buckets[t];
    if (b === undefined) {
      b = new Map();
      this.#buckets[t] = b;
    }
    return b;
  }
}
