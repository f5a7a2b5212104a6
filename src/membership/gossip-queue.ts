/**
 * The dissemination queue: membership updates waiting to be piggybacked on outgoing traffic.
 *
 * @module
 */

import { compareUpdates, type MemberUpdate } from './merge.js';

interface Entry {
  update: MemberUpdate;
  transmits: number;
  seq: number;
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
 * fresh news overtakes news that has already travelled.
 */
export class GossipQueue {
  readonly #entries = new Map<string, Entry>();
  #seq = 0;

  /** How many updates wait to be sent. */
  get size(): number {
    return this.#entries.size;
  }

  /** Queues an update, replacing an older one about the same member. */
  enqueue(update: MemberUpdate): void {
    const cur = this.#entries.get(update.id);
    if (cur !== undefined && compareUpdates(update, cur.update) < 0) return;
    this.#entries.set(update.id, { update, transmits: 0, seq: this.#seq++ });
  }

  /**
   * Takes up to `max` updates to piggyback on one message: least-sent first, newest first among
   * equals. Each counts as one transmission; one sent `limit` times is dropped.
   */
  take(max: number, limit: number): MemberUpdate[] {
    if (this.#entries.size === 0 || max <= 0) return [];
    const entries = [...this.#entries.values()].sort((a, b) => a.transmits - b.transmits || b.seq - a.seq);
    const out: MemberUpdate[] = [];
    for (const e of entries.slice(0, max)) {
      out.push(e.update);
      e.transmits++;
      if (e.transmits >= limit) this.#entries.delete(e.update.id);
    }
    return out;
  }

  /** Drops everything. */
  clear(): void {
    this.#entries.clear();
  }
}
