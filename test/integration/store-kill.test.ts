/**
 * The SQLite store under `kill -9`: a child process appends batches in a loop and is SIGKILLed
 * at an arbitrary moment, three times over. After each kill, the database opens cleanly, holds
 * every batch the child reported committed, holds no number twice and no partial batch, and
 * the child's own counter goes on from where the log stands.
 */

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { openSqliteStore } from '../../src/store/sqlite.js';
import { tempDir } from '../helpers/store.js';
import { CHILD_ORIGIN, childMessage } from '../helpers/store-child.js';
import { withDeadline } from '../helpers/wait.js';

const CHILD = fileURLToPath(new URL('../helpers/store-child.ts', import.meta.url));
const root = tempDir('tsp2p-store-kill-');
after(() => root.remove());

interface Run {
  /** The last number the child reported committed. */
  readonly committed: number;
  /** The first number it wrote in this run. */
  readonly first: number;
  readonly batches: number;
}

/** Runs the child until it has committed `batches` more batches, then SIGKILLs it. */
async function runAndKill(dataDir: string, batches: number): Promise<Run> {
  const child = spawn(process.execPath, ['--import', 'tsx', CHILD, dataDir], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (d) => {
    stderr += d;
  });
  const exited = once(child, 'exit');
  let committed = 0;
  let first = 0;
  let seen = 0;
  const lines = createInterface({ input: child.stdout });
  const done = (async () => {
    for await (const line of lines) {
      const report = JSON.parse(line) as { committed: number; statuses: Record<string, number> };
      if (first === 0) first = report.committed - 99;
      assert.equal(report.committed, first + 100 * (seen + 1) - 1, 'numbers go on by 100 per batch');
      assert.equal(report.statuses.new, 100, `a batch is 100 new messages: ${line}`);
      if (seen > 0) assert.equal(report.statuses.duplicate, 10, `and 10 duplicates: ${line}`);
      committed = report.committed;
      seen++;
      if (seen === batches) child.kill('SIGKILL');
    }
  })();
  const [code, signal] = await withDeadline(
    exited,
    120_000,
    `the child to commit ${batches} batches (${stderr})`,
  );
  await done;
  assert.equal(signal, 'SIGKILL', `killed, not ended (code ${code}): ${stderr}`);
  return { committed, first, batches: seen };
}

test('kill -9 while appending: no committed batch lost, nothing twice, the counter goes on', async (t) => {
  const dataDir = join(root.dir, 'data');
  let expectedFirst = 1;
  for (let round = 1; round <= 3; round++) {
    const run = await runAndKill(dataDir, 20 + round * 7);
    t.diagnostic(`round ${round}: ${run.batches} batches reported, committed up to ${run.committed}`);
    assert.equal(run.first, expectedFirst, 'the child numbers on from the last message in the log');

    const store = await openSqliteStore(dataDir);
    const stream = { origin: CHILD_ORIGIN, epoch: store.epoch, channel: 'b' };
    const [summary] = store.summary();
    assert.ok(summary !== undefined);
    const held = summary.contiguous;
    assert.deepEqual(summary.above, [], 'no holes: batches are whole or absent');
    assert.ok(held >= run.committed, `every reported batch is there (${held} >= ${run.committed})`);
    assert.equal(held % 100, 0, 'no partial batch');
    assert.equal(held - run.committed <= 100, true, 'at most the batch in flight besides');
    const seqs: number[] = [];
    for (let from = 1; ; ) {
      const page = store.readRange(stream, from, Number.MAX_SAFE_INTEGER);
      if (page.length === 0) break;
      for (const e of page) seqs.push(e.seq);
      from = page[page.length - 1]!.seq + 1;
    }
    assert.equal(seqs.length, held, 'each number once');
    assert.deepEqual(
      seqs,
      Array.from({ length: held }, (_, i) => i + 1),
    );
    assert.equal(store.stats().messages, held);
    // Appending all of it again finds only duplicates: nothing would be delivered twice.
    const again = store.append(
      Array.from({ length: 300 }, (_, i) => childMessage(store.epoch, held - 299 + i)),
    );
    assert.ok(
      again.every((s) => s === 'duplicate'),
      'what survived is never new again',
    );
    store.close();
    expectedFirst = held + 1;
  }
});
