/**
 * `store`: the message log on its own, SQLite against memory in the same run.
 *
 * - **append**: `--messages` messages of `--payload` bytes (with a 64-byte signature, as a
 *   signed message carries), appended in batches of `--batch`, one transaction each, from
 *   `--origins` origins in turn.
 * - **catch-up read**: the same messages read back as a member serving catch-up reads them:
 *   `readRange()` over the first origin's stream in pages of 10,000 (the store's read bound),
 *   up to `--range` messages.
 * - **summary** and **reopen**: the time of `summary()` and of opening the full database again
 *   (which runs `PRAGMA quick_check`).
 *
 * Each phase runs `--runs` times on a fresh store; medians are reported, with the ratio of
 * SQLite's append rate to memory's.
 *
 * @module
 */

import { mkdtempSync, rmSync } from 'node:fs';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { MemoryStore } from '../src/store/memory.js';
import { openSqliteStore } from '../src/store/sqlite.js';
import type { Store, StoredMessage } from '../src/store/store.js';
import { intFlag } from './lib/args.js';
import type { Scenario } from './lib/scenario.js';
import { median, round } from './lib/stats.js';

const usage = `  --messages N   messages appended per run (default 100000)
  --batch B      messages per append, one transaction each (default 100)
  --payload P    payload bytes per message (default 100)
  --range R      messages of one origin read back for catch-up (default 100000)
  --origins O    origins the messages come from, in turn (default 1)
  --runs K       runs per store, on a fresh store each (default 3)
  --deadline S   exit 1 after S seconds (default 600)`;

function messages(count: number, payload: number, origins: number): StoredMessage[] {
  const out: StoredMessage[] = [];
  const at = Date.now();
  const sig = Buffer.alloc(64, 7);
  for (let i = 0; i < count; i++) {
    const o = i % origins;
    const seq = Math.floor(i / origins) + 1;
    out.push({
      id: `m${o}-${seq}`,
      origin: { id: `origin-${o}`, address: '127.0.0.1', port: 5000 + o },
      kind: 'broadcast',
      epoch: 'bench',
      channel: 'b',
      seq,
      at: at + i,
      payload: Buffer.alloc(payload, i & 255),
      sig,
      deps: [],
      late: false,
    });
  }
  return out;
}

interface Run {
  readonly appendPerSec: number;
  readonly readMs: number;
  readonly readPerSec: number;
  readonly summaryMs: number;
  readonly reopenMs?: number;
  readonly bytes: number;
}

async function runOnce(
  kind: 'memory' | 'sqlite',
  all: readonly StoredMessage[],
  batch: number,
  range: number,
): Promise<Run> {
  const dir = mkdtempSync(join(tmpdir(), 'tsp2p-bench-store-'));
  try {
    let store: Store = kind === 'memory' ? new MemoryStore() : await openSqliteStore(dir);
    const t0 = performance.now();
    for (let i = 0; i < all.length; i += batch) store.append(all.slice(i, i + batch));
    const appendMs = performance.now() - t0;

    let reopenMs: number | undefined;
    if (kind === 'sqlite') {
      store.close();
      const r0 = performance.now();
      store = await openSqliteStore(dir);
      reopenMs = performance.now() - r0;
    }

    const s0 = performance.now();
    store.summary();
    const summaryMs = performance.now() - s0;

    const stream = { origin: 'origin-0', epoch: 'bench', channel: 'b' };
    const c0 = performance.now();
    let read = 0;
    for (let from = 1; read < range; ) {
      const page = store.readRange(stream, from, from + 9_999, 10_000);
      if (page.length === 0) break;
      read += page.length;
      from = page[page.length - 1]!.seq + 1;
    }
    const readMs = performance.now() - c0;
    const bytes = store.stats().bytes;
    store.close();
    return {
      appendPerSec: (all.length / appendMs) * 1000,
      readMs,
      readPerSec: (read / readMs) * 1000,
      summaryMs,
      ...(reopenMs === undefined ? {} : { reopenMs }),
      bytes,
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function summarize(runs: readonly Run[]): Record<string, number> {
  const med = (f: (r: Run) => number | undefined): number =>
    round(median(runs.map(f).filter((v): v is number => v !== undefined)));
  return {
    append_msgs_per_s: Math.round(med((r) => r.appendPerSec)),
    catchup_read_ms: med((r) => r.readMs),
    catchup_read_msgs_per_s: Math.round(med((r) => r.readPerSec)),
    summary_ms: med((r) => r.summaryMs),
    ...(runs[0]?.reopenMs === undefined ? {} : { reopen_ms: med((r) => r.reopenMs) }),
    bytes: Math.round(med((r) => r.bytes)),
  };
}

export const store: Scenario = {
  name: 'store',
  summary: 'the message log: append rate (SQLite against memory) and catch-up range reads',
  usage,
  flags: {
    messages: { type: 'string', default: '100000' },
    batch: { type: 'string', default: '100' },
    payload: { type: 'string', default: '100' },
    range: { type: 'string', default: '100000' },
    origins: { type: 'string', default: '1' },
    runs: { type: 'string', default: '3' },
    deadline: { type: 'string', default: '600' },
  },
  async run(values, log) {
    const count = intFlag(values, 'messages', 1, 10_000_000);
    const batch = intFlag(values, 'batch', 1, 10_000);
    const payload = intFlag(values, 'payload', 0, 1 << 20);
    const range = intFlag(values, 'range', 1, 10_000_000);
    const runs = intFlag(values, 'runs', 1, 100);
    const origins = intFlag(values, 'origins', 1, 1000);
    const loadBefore = loadavg()[0]!;
    const log_ = messages(count, payload, origins);
    log(
      `store: ${count} messages of ${payload} B in batches of ${batch} from ${origins} origin(s), ${runs} runs`,
    );
    const results: Record<'memory' | 'sqlite', Run[]> = { memory: [], sqlite: [] };
    for (let i = 0; i < runs; i++) {
      // Interleaved, so that both see the same load on a shared machine.
      for (const kind of ['sqlite', 'memory'] as const) {
        const r = await runOnce(kind, log_, batch, range);
        results[kind].push(r);
        log(
          `  run ${i + 1} ${kind}: append ${Math.round(r.appendPerSec)} msgs/s, read ${round(r.readMs)} ms` +
            (r.reopenMs === undefined ? '' : `, reopen ${round(r.reopenMs)} ms`),
        );
      }
    }
    const sqlite = summarize(results.sqlite);
    const memory = summarize(results.memory);
    return {
      scenario: 'store',
      messages: count,
      read: results.sqlite[0] === undefined ? 0 : Math.min(range, Math.ceil(count / origins)),
      batch,
      payload_bytes: payload,
      range,
      origins,
      runs,
      sqlite,
      memory,
      append_ratio_sqlite_to_memory: round(
        (sqlite.append_msgs_per_s ?? 0) / (memory.append_msgs_per_s || 1),
        3,
      ),
      cores: availableParallelism(),
      load_before: round(loadBefore),
      load_after: round(loadavg()[0]!),
    };
  },
};
