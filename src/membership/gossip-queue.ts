/**
 * The dissemination queue: membership updates waiting to be piggybacked on outgoing traffic.
 *
 * @module
 */

import { compareUpdates, type MemberUpdate } from './merge.js';

interface Entry {
  readonly update: MemberUpdate;
  transmits: number;
  /** False once the update was replaced by a newer one, or sent its last time. */
  live: boolean;
}

/** Entries sent the same number of times, oldest first: a FIFO read from `head`. */
interface Bucket {
  items: (Entry | undefined)[];
  head: number;
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
 * count, each a FIFO queue; a replaced entry is only marked, and skipped when its turn comes. So
 * taking a few costs no more than those few (and the replaced ones passed over, once each),
 * whatever the queue's length.
 */
export class GossipQueue {
  readonly #entries = new Map<string, Entry>();
  // bucket[t]: the entries sent t times, oldest first.
  readonly #buckets: Bucket[] = [];
  // Replaced entries still sitting in a bucket.
  #stale = 0;
  readonly #onQueued: (() => void) | undefined;

  /** @param onQueued - called after each update is queued */
  constructor(onQueued?: () => void) {
    this.#onQueued = onQueued;
  }

  /** How many updates wait to be sent. */
  get size(): number {
    return this.#entries.size;
  }

  /**
   * Queues an update, replacing an older one about the same member.
   *
   * @param sent - the update counts as sent that many times already (so it goes out only
   *   `limit - sent` times), or as often as the update it replaces if that one stated the same
   *   state at the same incarnation and went out more: for news passed on that adds little to
   *   what spread already (a confirmation of a suspicion)
   */
  enqueue(update: MemberUpdate, sent = 0): void {
    const cur = this.#entries.get(update.id);
    let transmits = sent;
    if (cur !== undefined) {
      if (compareUpdates(update, cur.update) < 0) return;
      cur.live = false;
      this.#stale++;
      if (sent > 0 && cur.update.state === update.state && cur.update.inc === update.inc)
        transmits = Math.max(sent, cur.transmits);
    }
    const entry: Entry = { update, transmits, live: true };
    this.#entries.set(update.id, entry);
    this.#bucket(transmits).items.push(entry);
    // Updates replaced again and again, with nothing taken meanwhile: drop the marks.
    if (this.#stale > 2 * this.#entries.size + 1024) this.#compact();
    this.#onQueued?.();
  }

  /**
   * Takes up to `max` updates to piggyback on one message, least-sent first. Each counts as one
   * transmission; one sent `limit` times is dropped.
   *
   * @param held - what the recipient is known to hold already (the updates its own request to
   *   this node carried, by member id): an update it holds as new or newer is passed over, not
   *   counted as sent, and stays queued for another recipient. Without this, the answer to a
   *   gossip spent a transmission on telling its sender what the sender had just told, so that
   *   in an epidemic about half of each node's transmissions went to nodes that already knew
   *   (BENCHMARKS.md, "Session 14: gossip answers").
   */
  take(max: number, limit: number, held?: ReadonlyMap<string, MemberUpdate>): MemberUpdate[] {
    const out: MemberUpdate[] = [];
    const moved: Entry[] = [];
    const skipped: Entry[] = [];
    for (let t = 0; t < this.#buckets.length && out.length < max; t++) {
      const bucket = this.#buckets[t];
      if (bucket === undefined) continue;
      const items = bucket.items;
      while (bucket.head < items.length && out.length < max) {
        const e = items[bucket.head];
        items[bucket.head++] = undefined;
        if (e === undefined) continue;
        if (!e.live) {
          this.#stale--;
          continue;
        }
        if (held !== undefined && holds(held.get(e.update.id), e.update)) {
          skipped.push(e);
          continue;
        }
        out.push(e.update);
        e.transmits++;
        if (e.transmits >= limit) {
          e.live = false;
          this.#entries.delete(e.update.id);
        } else moved.push(e);
      }
      if (bucket.head === items.length) {
        items.length = 0;
        bucket.head = 0;
      } else if (bucket.head > 64 && 2 * bucket.head > items.length) {
        bucket.items = items.slice(bucket.head);
        bucket.head = 0;
      }
    }
    // Re-bucket after the scan, so that an entry is not taken twice in one call. Those passed
    // over go back to the front of their bucket, in their order: still the next to go.
    for (const e of moved) this.#bucket(e.transmits).items.push(e);
    for (let i = skipped.length - 1; i >= 0; i--) this.#unshift(skipped[i]!);
    return out;
  }

  /** Puts an entry back at the head of its bucket. */
  #unshift(e: Entry): void {
    const b = this.#bucket(e.transmits);
    if (b.head > 0) b.items[--b.head] = e;
    else b.items.unshift(e);
  }

  /** Drops everything. */
  clear(): void {
    for (const e of this.#entries.values()) e.live = false;
    this.#entries.clear();
    this.#buckets.length = 0;
    this.#stale = 0;
  }

  #compact(): void {
    for (const b of this.#buckets) {
      if (b === undefined) continue;
      b.items = b.items.filter((e, i) => i >= b.head && e !== undefined && e.live);
      b.head = 0;
    }
    this.#stale = 0;
  }

  #bucket(t: number): Bucket {
    let b = this.#buckets[t];
    if (b === undefined) {
      b = { items: [], head: 0 };
      this.#buckets[t] = b;
    }
    return b;
  }
}

/**
 * Whether a recipient that sent `heard` holds `queued` already: `heard` is as new or newer, and a
 * confirmation of a suspicion (`by`) is held only from that same confirmer.
 */
function holds(heard: MemberUpdate | undefined, queued: MemberUpdate): boolean {
  if (heard === undefined) return false;
  const c = compareUpdates(heard, queued);
  return c > 0 || (c === 0 && heard.by === queued.by);
}
