/**
 * Helpers for the store tests: message builders, temporary data directories, and the list of
 * implementations the shared contract suite runs against.
 */

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MemoryStore } from '../../src/store/memory.js';
import { openSqliteStore } from '../../src/store/sqlite.js';
import type { MessageKind, Store, StoredMessage, StoreOptions } from '../../src/store/store.js';

/** A wall clock the test moves by hand. */
export class TestWallClock {
  t = 1_800_000_000_000;
  readonly now = (): number => this.t;
}

/** A message of `origin`'s stream `channel` numbered `seq`, with defaults for everything else. */
export function msg(seq: number, over: Partial<StoredMessage> & { kind?: MessageKind } = {}): StoredMessage {
  const kind = over.kind ?? 'broadcast';
  const channel =
    over.channel ?? (kind === 'broadcast' ? 'b' : kind === 'topic' ? `t:${over.topic ?? 'ops'}` : 'd:me');
  return {
    id: `${over.origin?.id ?? 'alice'}-${over.epoch ?? 'e1'}-${channel}-${seq}`,
    origin: { id: 'alice', address: '127.0.0.1', port: 5001, name: 'alice' },
    kind,
    ...(kind === 'topic' ? { topic: over.topic ?? 'ops' } : {}),
    ...(kind === 'direct' ? { peer: over.peer ?? 'alice' } : {}),
    epoch: 'e1',
    channel,
    seq,
    at: 1_800_000_000_000 - 1000 + seq,
    payload: new TextEncoder().encode(`message ${seq}`),
    sig: Uint8Array.of(1, 2, 3, seq & 255),
    deps: [],
    late: false,
    ...over,
  };
}

/** A fresh temporary directory, removed by the returned function. */
export function tempDir(prefix = 'tsp2p-store-'): { dir: string; remove: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/** One implementation under the contract suite. */
export interface StoreImpl {
  readonly name: string;
  /** A new, empty store. */
  open(options?: StoreOptions): Promise<Store>;
  /** Whether a store survives close and reopen (and `reopen` works). */
  readonly durable: boolean;
  /** Closes `store` and opens the same data again. */
  reopen(store: Store, options?: StoreOptions): Promise<Store>;
  /** Removes what `open` created. */
  cleanup(): void;
}

/** The in-memory implementation. */
export function memoryImpl(): StoreImpl {
  return {
    name: 'memory',
    durable: false,
    open: async (options) => new MemoryStore(options),
    reopen: async () => {
      throw new Error('the memory store does not survive a reopen');
    },
    cleanup: () => {},
  };
}

/** The SQLite implementation: each store in a fresh directory under one temporary root. */
export function sqliteImpl(): StoreImpl {
  const root = tempDir();
  const dirs = new Map<Store, string>();
  let n = 0;
  const openIn = async (dir: string, options?: StoreOptions): Promise<Store> => {
    const store = await openSqliteStore(dir, options);
    dirs.set(store, dir);
    return store;
  };
  return {
    name: 'sqlite',
    durable: true,
    open: (options) => openIn(join(root.dir, `db${++n}`), options),
    reopen: (store, options) => {
      const dir = dirs.get(store);
      if (dir === undefined) throw new Error('not a store of this implementation');
      store.close();
      return openIn(dir, options);
    },
    cleanup: () => {
      for (const s of dirs.keys()) s.close();
      root.remove();
    },
  };
}
