/**
 * Broadcast traffic read off the wire (with a {@link TappedTransport}): the entries of every
 * batch, by kind. Used by `sim-gossip` and by `test/sim/plumtree.test.ts`.
 *
 * @module
 */

/** Batch requests, their bytes, and their entries: full messages, ids announced, grafts, prunes. */
export class BatchTraffic {
  full = 0;
  ids = 0;
  grafts = 0;
  prunes = 0;
  batches = 0;
  bytes = 0;

  /** Counts one request body (anything but a batch is ignored). */
  count(body: Uint8Array): void {
    const text = Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString('utf8');
    if (!text.includes('"msgs"')) return;
    const env = JSON.parse(text) as { type: number; msgs?: { type: number; ids?: unknown[] }[] };
    if (env.type !== 8) return;
    this.batches++;
    this.bytes += body.byteLength;
    for (const m of env.msgs ?? []) {
      if (m.type === 2) this.full++;
      else if (m.type === 9) this.ids += m.ids?.length ?? 0;
      else if (m.type === 10) this.grafts++;
      else if (m.type === 11) this.prunes++;
    }
  }

  /** The counts so far. */
  snapshot(): { full: number; ids: number; grafts: number; prunes: number; batches: number; bytes: number } {
    const { full, ids, grafts, prunes, batches, bytes } = this;
    return { full, ids, grafts, prunes, batches, bytes };
  }
}
