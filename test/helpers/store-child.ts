/**
 * A process that appends to an SQLite store in a loop until it is killed, for the kill -9 test.
 * Each batch holds 100 new messages of its own (numbered with `nextSeq`, as a node numbers what
 * it sends) and, again, the last 10 of the batch before (which must be duplicates). After each
 * committed batch it prints `{"committed": <last number>, "statuses": {...}}` on stdout.
 *
 * `node --import tsx test/helpers/store-child.ts <dataDir>`
 *
 * @module
 */

import { openSqliteStore } from '../../src/store/sqlite.js';
import type { StoredMessage } from '../../src/store/store.js';

/** The origin id the child writes as. */
export const CHILD_ORIGIN = 'kill-child';

/** The message the child writes with number `seq` in `epoch`. */
export function childMessage(epoch: string, seq: number): StoredMessage {
  return {
    id: `k${seq}`,
    origin: { id: CHILD_ORIGIN, address: '127.0.0.1', port: 1 },
    kind: 'broadcast',
    epoch,
    channel: 'b',
    seq,
    at: Date.now(),
    payload: Buffer.alloc(100, seq & 255),
    sig: Buffer.alloc(64, 1),
    deps: [],
    late: false,
  };
}

async function main(dataDir: string): Promise<void> {
  const store = await openSqliteStore(dataDir);
  let previous: StoredMessage[] = [];
  for (;;) {
    const fresh = Array.from({ length: 100 }, () =>
      childMessage(store.epoch, store.nextSeq(CHILD_ORIGIN, 'b')),
    );
    const statuses = store.append([...previous.slice(-10), ...fresh]);
    const counts: Record<string, number> = {};
    for (const s of statuses) counts[s] = (counts[s] ?? 0) + 1;
    process.stdout.write(
      `${JSON.stringify({ committed: fresh[fresh.length - 1]!.seq, statuses: counts })}\n`,
    );
    previous = fresh;
    // Let the event loop breathe, so that stdout drains and the kill lands anywhere.
    await new Promise((resolve) => setImmediate(resolve));
  }
}

if (process.argv[1]?.endsWith('store-child.ts')) {
  const dir = process.argv[2];
  if (dir === undefined) throw new Error('usage: store-child.ts <dataDir>');
  await main(dir);
}
