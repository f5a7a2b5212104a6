/**
 * The SQLite store's schema, its migrations, and every statement it prepares.
 *
 * @module
 */

/** The database's file name inside `dataDir`. */
export const DB_FILE = 'tsp2p.db';

/** The lock file inside `dataDir`: see `takeLock` in `sqlite.ts`. */
export const LOCK_FILE = 'tsp2p.lock';

/**
 * The schema, one step per version: `MIGRATIONS[i]` takes a database from version `i` to
 * `i + 1`. Steps are never edited once released; a change is a new step.
 */
export const MIGRATIONS: readonly string[] = [
  // 1: the message log.
  `CREATE TABLE meta (k TEXT PRIMARY KEY, v TEXT NOT NULL) WITHOUT ROWID;
   CREATE TABLE streams (
     sid INTEGER PRIMARY KEY,
     origin TEXT NOT NULL, epoch TEXT NOT NULL, channel TEXT NOT NULL,
     contiguous INTEGER NOT NULL, floor INTEGER NOT NULL,
     UNIQUE (origin, epoch, channel));
   CREATE TABLE messages (
     key INTEGER PRIMARY KEY,
     sid INTEGER NOT NULL, seq INTEGER NOT NULL, id TEXT NOT NULL, scope TEXT NOT NULL,
     kind INTEGER NOT NULL, topic TEXT, peer TEXT,
     address TEXT NOT NULL, port INTEGER NOT NULL, name TEXT,
     at REAL NOT NULL, received_at REAL NOT NULL, late INTEGER NOT NULL,
     payload BLOB NOT NULL, sig BLOB NOT NULL, deps TEXT,
     UNIQUE (sid, seq));
   CREATE INDEX messages_scope_at ON messages (scope, at);
   CREATE INDEX messages_id ON messages (id);`,
  // 2: the membership snapshot and the delivery state.
  `CREATE TABLE members (
     id TEXT PRIMARY KEY, address TEXT NOT NULL, port INTEGER NOT NULL, name TEXT,
     kind TEXT NOT NULL, state TEXT NOT NULL, incarnation INTEGER NOT NULL, last_seen REAL NOT NULL
   ) WITHOUT ROWID;
   CREATE TABLE subscriptions (topic TEXT PRIMARY KEY) WITHOUT ROWID;
   CREATE TABLE links (sender TEXT PRIMARY KEY, stream TEXT NOT NULL, last INTEGER NOT NULL) WITHOUT ROWID;`,
  // 3: each stream's skipped numbers, still taken when a copy comes (`Store.skip`).
  `ALTER TABLE streams ADD COLUMN skip_from INTEGER NOT NULL DEFAULT 0;
   ALTER TABLE streams ADD COLUMN skip_to INTEGER NOT NULL DEFAULT 0;`,
];

/** The schema version this code writes. */
export const SCHEMA_VERSION = MIGRATIONS.length;

/** The columns of a message row, in the order the store reads them. */
export const COLS =
  'key, sid, seq, id, kind, topic, peer, address, port, name, at, received_at, late, payload, sig, deps';

/** Every statement the store prepares (each once, on first use). */
export const SQL = {
  metaGet: 'SELECT v FROM meta WHERE k = ?',
  metaSet: 'INSERT OR REPLACE INTO meta (k, v) VALUES (?, ?)',
  streamAdd: 'INSERT INTO streams (origin, epoch, channel, contiguous, floor) VALUES (?, ?, ?, 0, 1)',
  streamSet: 'UPDATE streams SET contiguous = ?, floor = ?, skip_from = ?, skip_to = ? WHERE sid = ?',
  /** `streamSet` on a database kept at version 2 or below (`schemaVersion`, for tests of migrations). */
  streamSetV2: 'UPDATE streams SET contiguous = ?, floor = ? WHERE sid = ?',
  idAt: 'SELECT id FROM messages WHERE sid = ? AND seq = ?',
  above: 'SELECT seq FROM messages WHERE sid = ? AND seq > ? ORDER BY seq',
  insert: `INSERT INTO messages (sid, seq, id, scope, kind, topic, peer, address, port, name, at, received_at, late, payload, sig, deps)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
  evictOldest: `DELETE FROM messages WHERE key IN (SELECT key FROM messages WHERE scope = ? ORDER BY at, key LIMIT ?)
         RETURNING sid, seq`,
  evictAged: `DELETE FROM messages WHERE key IN
           (SELECT key FROM messages WHERE scope = ? AND at < ? ORDER BY at, key LIMIT ?)
         RETURNING sid, seq`,
  hasId: 'SELECT 1 FROM messages WHERE id = ? LIMIT 1',
  byId: `SELECT ${COLS} FROM messages WHERE id = ? ORDER BY key`,
  history: `SELECT ${COLS} FROM messages WHERE scope = ? AND at >= ? ORDER BY at DESC, key DESC LIMIT ?`,
  historyBefore: `SELECT ${COLS} FROM messages WHERE scope = ? AND at >= ? AND (at, key) < (?, ?) ORDER BY at DESC, key DESC LIMIT ?`,
  scopeOf: 'SELECT scope FROM messages WHERE sid = ? LIMIT 1',
  range: `SELECT ${COLS} FROM messages WHERE sid = ? AND seq BETWEEN ? AND ? AND at >= ? ORDER BY seq LIMIT ?`,
  memberSet: `INSERT OR REPLACE INTO members (id, address, port, name, kind, state, incarnation, last_seen)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
  memberDel: 'DELETE FROM members WHERE id = ?',
  members: 'SELECT * FROM members ORDER BY id',
  subsClear: 'DELETE FROM subscriptions',
  subAdd: 'INSERT OR IGNORE INTO subscriptions (topic) VALUES (?)',
  subs: 'SELECT topic FROM subscriptions ORDER BY topic',
  linkSet: 'INSERT OR REPLACE INTO links (sender, stream, last) VALUES (?, ?, ?)',
  links: 'SELECT sender, stream, last FROM links ORDER BY sender',
} as const;

/** Statements whose rows are arrays in {@link COLS} order (about twice as fast to read as objects). */
export const RAW: ReadonlySet<string> = new Set(['history', 'historyBefore', 'range', 'byId']);

/** Statements whose rows are single values. */
export const PLUCKED: ReadonlySet<string> = new Set(['metaGet', 'idAt', 'above', 'hasId', 'scopeOf', 'subs']);
