/**
 * Opens the node's store: SQLite in `dataDir` when one is given, memory otherwise. The SQLite
 * module (and better-sqlite3 with it) is imported only in the first case, so a node without
 * `dataDir` does not pay its memory.
 *
 * @module
 */

import { MemoryStore } from './memory.js';
import type { Store, StoreOptions } from './store.js';

/** Options of {@link openStore}. */
export interface OpenStoreOptions extends StoreOptions {
  /** The directory of the database; none keeps everything in memory. */
  readonly dataDir?: string;
}

/**
 * The store for a node.
 *
 * @throws {StoreCorruptError} `ERR_STORE_CORRUPT` when `dataDir` holds an unusable database
 * @throws {StoreVersionError} `ERR_STORE_VERSION` when a newer tsp2p wrote it
 */
export async function openStore(options: OpenStoreOptions = {}): Promise<Store> {
  const { dataDir, ...rest } = options;
  if (dataDir === undefined) return new MemoryStore(rest);
  const { openSqliteStore } = await import('./sqlite.js');
  return openSqliteStore(dataDir, rest);
}
