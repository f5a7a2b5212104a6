/**
 * The SQLite {@link Store}: one database, `tsp2p.db`, in the node's `dataDir`, through
 * better-sqlite3 (synchronous; loaded with a dynamic import, so a node without `dataDir` never
 * loads it).
 *
 * - **Durability.** WAL mode with `synchronous=NORMAL`: a commit is in the WAL file when
 *   `append()` returns, so a `kill -9` (or any crash of the process) loses no committed batch,
 *   and the database is never left half-written. What NORMAL gives up against FULL is the
 *   fsync of each commit: after a power cut or an OS crash the last commits may be missing
 *   (the database is still consistent). FULL would cost an fsync per received batch, and
 *   catch-up fetches anything such a loss leaves behind, so NORMAL is the better trade.
 * - **One transaction per batch**, prepared statements throughout.
 * - **Schema versions** in `PRAGMA user_version`, migrated in order by `MIGRATIONS`
 *   (`sqlite-schema.ts`) when
 *   opened. A database from a newer tsp2p is refused with `ERR_STORE_VERSION`; a file that is
 *   not a database, or fails `PRAGMA quick_check`, with `ERR_STORE_CORRUPT`, both when opening.
 * - **Permissions.** `dataDir` is created `0700`, the database `0600` (SQLite gives its `-wal`
 *   and `-shm` files the database's mode).
 * - **One writer.** A store holds `dataDir`'s lock (`tsp2p.lock`) while open: a second store on
 *   the same directory is refused with `ERR_STORE_LOCKED`.
 *
 * @module
 */

import { randomBytes } from 'node:crypto';
import { chmodSync, closeSync, existsSync, mkdirSync, openSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type BetterSqlite3 from 'better-sqlite3';
import {
  InvalidOptionsError,
  StoppedError,
  StoreCorruptError,
  StoreLockedError,
  StoreVersionError,
} from '../errors.js';
import { COLS, DB_FILE, LOCK_FILE, MIGRATIONS, PLUCKED, RAW, SCHEMA_VERSION, SQL } from './sqlite-schema.js';
import {
  type AppendOptions,
  type AppendStatus,
  checkQuery,
  type HistoryQuery,
  isSkipped,
  type LinkState,
  type MemberRecord,
  type MessageKind,
  markSkipped,
  passSkipped,
  type RetentionOptions,
  readLimit,
  retentionOf,
  STORE_LIMITS,
  type Store,
  type StoredEntry,
  type StoredMessage,
  type StoreOptions,
  type StoreStats,
  type StreamKey,
  scopeOf,
  scopeOfQuery,
  streamId,
  streamOf,
  validateMessage,
} from './store.js';
import { rangesOf, type StreamSummary } from './summary.js';

type Database = BetterSqlite3.Database;
type Statement = BetterSqlite3.Statement;

const KINDS: readonly MessageKind[] = ['broadcast', 'topic', 'direct'];

interface StreamRow {
  readonly sid: number;
  readonly key: StreamKey;
  contiguous: number;
  floor: number;
  /** The skipped numbers, still taken when a copy comes (see {@link SqliteStore.skip}); none when `skipTo` is 0. */
  skipFrom: number;
  skipTo: number;
  /** At least the highest number held: above it nothing needs looking up. */
  top: number;
}

/** A message row in {@link COLS} order. */
type MessageRow = [
  key: number,
  sid: number,
  seq: number,
  id: string,
  kind: number,
  topic: string | null,
  peer: string | null,
  address: string,
  port: number,
  name: string | null,
  at: number,
  receivedAt: number,
  late: number,
  payload: Buffer,
  sig: Buffer,
  deps: string | null,
];

/** Options of {@link openSqliteStore}. */
export interface SqliteStoreOptions extends StoreOptions {
  /**
   * Migrate only up to this version (tests of migrations build old databases with it).
   * @internal
   */
  readonly schemaVersion?: number;
}

/**
 * Opens (creating when absent) the database in `dataDir`.
 *
 * @throws {StoreCorruptError} `ERR_STORE_CORRUPT` when the file is not a usable database
 * @throws {StoreVersionError} `ERR_STORE_VERSION` when a newer tsp2p wrote it
 * @throws {InvalidOptionsError} `ERR_INVALID_OPTIONS` when `dataDir` cannot be created or written,
 *   or better-sqlite3 cannot be loaded (its native part failed to build when installed)
 * @throws {StoreLockedError} `ERR_STORE_LOCKED` when another store (in this process or another)
 *   has `dataDir` open
 */
export async function openSqliteStore(
  dataDir: string,
  options: SqliteStoreOptions = {},
): Promise<SqliteStore> {
  let Sqlite: typeof BetterSqlite3;
  try {
    Sqlite = (await import('better-sqlite3')).default;
  } catch (err) {
    // Its native part is built at install time; a failed build shows up here, not as a crash.
    throw new InvalidOptionsError(
      `dataDir needs better-sqlite3, which cannot be loaded: ${(err as Error).message}`,
      {
        cause: err,
      },
    );
  }
  const path = join(dataDir, DB_FILE);
  const lockPath = join(dataDir, LOCK_FILE);
  try {
    if (!existsSync(dataDir)) {
      mkdirSync(dataDir, { recursive: true, mode: 0o700 });
      chmodSync(dataDir, 0o700);
    }
    // SQLite creates the -wal and -shm files with the database's mode: create it 0600 first.
    for (const f of [path, lockPath]) closeSync(openSync(f, 'a', 0o600));
    for (const f of [path, `${path}-wal`, `${path}-shm`, lockPath]) if (existsSync(f)) chmodSync(f, 0o600);
  } catch (err) {
    throw new InvalidOptionsError(`dataDir ${dataDir}: ${(err as Error).message}`, { cause: err });
  }
  const lock = takeLock(Sqlite, lockPath, dataDir);
  let db: Database | undefined;
  try {
    db = new Sqlite(path, { fileMustExist: true });
    const version = db.pragma('user_version', { simple: true }) as number;
    const target = options.schemaVersion ?? SCHEMA_VERSION;
    if (version > SCHEMA_VERSION) throw new StoreVersionError(version, SCHEMA_VERSION, path);
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = NORMAL');
    const check = db.pragma('quick_check', { simple: true });
    if (check !== 'ok') throw new StoreCorruptError(`${path}: the database is damaged (${String(check)})`);
    for (let v = version; v < target; v++) {
      const step = MIGRATIONS[v]!;
      const conn = db;
      conn.transaction(() => {
        conn.exec(step);
        conn.pragma(`user_version = ${v + 1}`);
      })();
    }
    return new SqliteStore(db, path, options, lock);
  } catch (err) {
    db?.close();
    lock.close();
    if (err instanceof StoreVersionError || err instanceof StoreCorruptError) throw err;
    throw new StoreCorruptError(`${path}: cannot open the database: ${(err as Error).message}`, {
      cause: err,
    });
  }
}

/**
 * Takes `dataDir`'s lock: an exclusive lock SQLite holds on `tsp2p.lock` for as long as the
 * store is open, and the OS drops when the process dies, however it dies. Only one store may
 * write a log: the store keeps each stream's marks in memory, and a second writer would make
 * them wrong. The lock is on a file of its own, so that the database itself can still be read
 * with the `sqlite3` shell while the node runs.
 */
function takeLock(Sqlite: typeof BetterSqlite3, lockPath: string, dataDir: string): Database {
  let lock: Database | undefined;
  try {
    lock = new Sqlite(lockPath, { timeout: 0 });
    lock.pragma('locking_mode = EXCLUSIVE');
    // In EXCLUSIVE locking mode the lock taken by a write is held until the connection closes.
    lock.exec('CREATE TABLE IF NOT EXISTS holder (pid INTEGER); DELETE FROM holder;');
    lock.prepare('INSERT INTO holder (pid) VALUES (?)').run(process.pid);
    return lock;
  } catch (err) {
    lock?.close();
    if ((err as { code?: unknown }).code === 'SQLITE_BUSY')
      throw new StoreLockedError(dataDir, { cause: err });
    throw new StoreCorruptError(`${lockPath}: cannot take the lock: ${(err as Error).message}`, {
      cause: err,
    });
  }
}

/** The SQLite store: see the module comment. Made by {@link openSqliteStore}. */
export class SqliteStore implements Store {
  readonly kind = 'sqlite';
  readonly epoch: string;
  /** The database file. */
  readonly path: string;
  readonly #db: Database;
  readonly #lock: Database | undefined;
  readonly #now: () => number;
  readonly #retention: RetentionOptions | undefined;
  readonly #streams = new Map<string, StreamRow>();
  readonly #bySid = new Map<number, StreamRow>();
  readonly #counts = new Map<string, number>();
  readonly #allocated = new Map<string, number>();
  readonly #stmts = new Map<keyof typeof SQL, Statement>();
  readonly #appendTx: (messages: readonly StoredMessage[], options: AppendOptions) => AppendStatus[];
  /** Whether the streams table has the skip columns (not in a database kept at version 2 or below by a test). */
  readonly #skipColumns: boolean;
  #closed = false;

  /** @internal use {@link openSqliteStore} */
  constructor(db: Database, path: string, options: StoreOptions, lock?: Database) {
    this.#db = db;
    this.#lock = lock;
    this.path = path;
    this.#now = options.now ?? Date.now;
    this.#retention = options.retention;
    let epoch = this.#q('metaGet').get('epoch') as string | undefined;
    if (epoch === undefined) {
      epoch = options.epoch ?? randomBytes(12).toString('base64url');
      this.#q('metaSet').run('epoch', epoch);
    }
    this.epoch = epoch;
    this.#skipColumns = (db.pragma('user_version', { simple: true }) as number) >= 3;
    this.#load();
    this.#appendTx = db.transaction((messages, options) => this.#appendIn(messages, options));
  }

  nextSeq(origin: string, channel: string): number {
    this.#open();
    const id = streamId({ origin, epoch: this.epoch, channel });
    const s = this.#streams.get(id);
    const held = s === undefined ? 0 : Math.max(s.contiguous, s.top);
    const next = Math.max(held, this.#allocated.get(id) ?? 0) + 1;
    this.#allocated.set(id, next);
    return next;
  }

  append(messages: readonly StoredMessage[], options: AppendOptions = {}): AppendStatus[] {
    this.#open();
    for (const m of messages) validateMessage(m);
    return this.#guard(() => this.#appendTx(messages, options));
  }

  skip(stream: StreamKey, upTo: number): void {
    this.#open();
    this.#guard(() =>
      this.#db.transaction(() => {
        const s = this.#stream(stream);
        if (!markSkipped(s, upTo)) return;
        this.#settle(s, upTo);
        this.#lowerFloor(s);
        this.#saveStream(s);
      })(),
    );
  }

  has(ids: readonly string[]): Set<string> {
    this.#open();
    return this.#guard(() => new Set(ids.filter((id) => this.#q('hasId').get(id) !== undefined)));
  }

  byIds(ids: readonly string[]): StoredEntry[] {
    this.#open();
    if (ids.length > STORE_LIMITS.maxRead) readLimit(ids.length);
    const now = this.#now();
    const rows = this.#guard(() =>
      [...new Set(ids)].flatMap((id) => this.#q('byId').all(id) as MessageRow[]),
    );
    return rows
      .map((r) => this.#entry(r))
      .filter((e) => e.at >= now - retentionOf(this.#retention, scopeOf(e)).maxAgeMs);
  }

  history(query: HistoryQuery = {}): StoredEntry[] {
    this.#open();
    checkQuery(query);
    const limit = readLimit(query.limit);
    const scope = scopeOfQuery(query);
    const cutoff = this.#now() - retentionOf(this.#retention, scope).maxAgeMs;
    const before = query.before;
    const rows = this.#guard(() =>
      before === undefined
        ? this.#q('history').all(scope, cutoff, limit)
        : this.#q('historyBefore').all(scope, cutoff, before.at, before.key, limit),
    ) as MessageRow[];
    return rows.reverse().map((r) => this.#entry(r));
  }

  readRange(stream: StreamKey, from: number, to: number, limit?: number): StoredEntry[] {
    this.#open();
    const n = readLimit(limit, STORE_LIMITS.maxRead);
    const s = this.#streams.get(streamId(stream));
    if (s === undefined || to < from) return [];
    const scope = this.#guard(() => this.#q('scopeOf').get(s.sid)) as string | undefined;
    if (scope === undefined) return [];
    const cutoff = this.#now() - retentionOf(this.#retention, scope).maxAgeMs;
    const top = Math.min(to, Number.MAX_SAFE_INTEGER);
    const rows = this.#guard(() => this.#q('range').all(s.sid, from, top, cutoff, n)) as MessageRow[];
    return rows.map((r) => this.#entry(r));
  }

  summary(channels?: readonly string[]): StreamSummary[] {
    this.#open();
    const only = channels === undefined ? undefined : new Set(channels);
    const out: StreamSummary[] = [];
    for (const s of this.#streams.values()) {
      if (only !== undefined && !only.has(s.key.channel)) continue;
      const above = this.#guard(() => this.#aboveRanges(s));
      out.push({ ...s.key, contiguous: s.contiguous, floor: s.floor, above });
    }
    return out.sort(
      (a, b) =>
        compareStrings(a.origin, b.origin) ||
        compareStrings(a.epoch, b.epoch) ||
        compareStrings(a.channel, b.channel),
    );
  }

  prune(budget = 1_000): number {
    this.#open();
    return this.#guard(() =>
      this.#db.transaction(() => {
        const dirty = new Set<StreamRow>();
        let removed = 0;
        for (const scope of [...this.#counts.keys()]) {
          if (removed >= budget) break;
          removed += this.#evict(scope, 0, budget - removed, dirty);
        }
        for (const s of dirty) this.#saveStream(s);
        return removed;
      })(),
    );
  }

  saveMembers(members: readonly MemberRecord[]): void {
    this.#open();
    this.#guard(() =>
      this.#db.transaction(() => {
        for (const m of members)
          this.#q('memberSet').run(
            m.id,
            m.address,
            m.port,
            m.name ?? null,
            m.kind,
            m.state,
            m.incarnation,
            m.lastSeen,
          );
      })(),
    );
  }

  deleteMember(id: string): void {
    this.#open();
    this.#guard(() => this.#q('memberDel').run(id));
  }

  members(): MemberRecord[] {
    this.#open();
    return (this.#q('members').all() as Record<string, unknown>[]).map((r) => ({
      id: r.id as string,
      address: r.address as string,
      port: r.port as number,
      ...(r.name === null ? {} : { name: r.name as string }),
      kind: r.kind as MemberRecord['kind'],
      state: r.state as MemberRecord['state'],
      incarnation: r.incarnation as number,
      lastSeen: r.last_seen as number,
    }));
  }

  setSubscriptions(topics: readonly string[]): void {
    this.#open();
    this.#guard(() =>
      this.#db.transaction(() => {
        this.#q('subsClear').run();
        for (const t of topics) this.#q('subAdd').run(t);
      })(),
    );
  }

  subscriptions(): string[] {
    this.#open();
    return this.#q('subs').all() as string[];
  }

  incarnation(): number {
    this.#open();
    return Number(this.#q('metaGet').get('incarnation') ?? 0);
  }

  setIncarnation(incarnation: number): void {
    this.#open();
    this.#guard(() => this.#q('metaSet').run('incarnation', String(incarnation)));
  }

  saveLink(link: LinkState): void {
    this.#open();
    this.#guard(() => this.#q('linkSet').run(link.sender, link.stream, link.last));
  }

  links(): LinkState[] {
    this.#open();
    return this.#q('links').all() as LinkState[];
  }

  stats(): StoreStats {
    this.#open();
    let messages = 0;
    for (const n of this.#counts.values()) messages += n;
    let bytes = 0;
    for (const f of [this.path, `${this.path}-wal`]) {
      try {
        bytes += statSync(f).size;
      } catch {
        // no WAL file at the moment
      }
    }
    return { messages, bytes };
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#db.close();
    this.#lock?.close();
  }

  /** The prepared statement `name`. */
  #q(name: keyof typeof SQL): Statement {
    let st = this.#stmts.get(name);
    if (st === undefined) {
      st = this.#db.prepare(SQL[name]);
      if (PLUCKED.has(name)) st.pluck();
      if (RAW.has(name)) st.raw();
      this.#stmts.set(name, st);
    }
    return st;
  }

  #open(): void {
    if (this.#closed) throw new StoppedError('the store is closed');
  }

  /**
   * Runs `fn`; SQLite's corruption errors (a page damaged after `quick_check` passed) become
   * `ERR_STORE_CORRUPT`, and the caches are reloaded after any failure (a rolled-back batch).
   */
  #guard<T>(fn: () => T): T {
    try {
      return fn();
    } catch (err) {
      this.#reload();
      const code = (err as { code?: unknown }).code;
      if (typeof code === 'string' && (code.startsWith('SQLITE_CORRUPT') || code === 'SQLITE_NOTADB'))
        throw new StoreCorruptError(`${this.path}: the database is damaged: ${(err as Error).message}`, {
          cause: err,
        });
      throw err;
    }
  }

  /** Reads the stream marks and the scope counts into memory (at open, and after a rolled-back transaction). */
  #load(): void {
    this.#streams.clear();
    this.#bySid.clear();
    this.#counts.clear();
    for (const r of this.#db
      .prepare(
        `SELECT sid, origin, epoch, channel, contiguous, floor, ${this.#skipColumns ? 'skip_from, skip_to' : '0 AS skip_from, 0 AS skip_to'}, (SELECT max(seq) FROM messages m WHERE m.sid = s.sid) AS top FROM streams s`,
      )
      .all() as {
      top: number | null;
      sid: number;
      origin: string;
      epoch: string;
      channel: string;
      contiguous: number;
      floor: number;
      skip_from: number;
      skip_to: number;
    }[]) {
      const row: StreamRow = {
        sid: r.sid,
        key: { origin: r.origin, epoch: r.epoch, channel: r.channel },
        contiguous: r.contiguous,
        floor: r.floor,
        skipFrom: r.skip_from,
        skipTo: r.skip_to,
        top: r.top ?? 0,
      };
      this.#streams.set(streamId(row.key), row);
      this.#bySid.set(row.sid, row);
    }
    for (const r of this.#db.prepare('SELECT scope, count(*) AS n FROM messages GROUP BY scope').all() as {
      scope: string;
      n: number;
    }[])
      this.#counts.set(r.scope, r.n);
  }

  /** After a failed transaction: the caches again from the database, unless it is failing itself. */
  #reload(): void {
    try {
      this.#load();
    } catch {
      // the error being thrown says what is wrong
    }
  }

  #appendIn(messages: readonly StoredMessage[], options: AppendOptions): AppendStatus[] {
    const now = this.#now();
    const added = new Map<string, number>();
    const dirty = new Set<StreamRow>();
    const out = messages.map((m): AppendStatus => {
      const s = this.#stream(streamOf(m));
      if (m.seq <= s.contiguous && !isSkipped(s, m.seq)) return 'duplicate';
      const held = m.seq > s.top ? undefined : (this.#q('idAt').get(s.sid, m.seq) as string | undefined);
      if (held !== undefined) return held === m.id ? 'duplicate' : 'conflict';
      const scope = scopeOf(m);
      dirty.add(s);
      if (m.at < now - retentionOf(this.#retention, scope).maxAgeMs) {
        this.#settle(s, m.seq);
        return 'expired';
      }
      this.#q('insert').run(
        s.sid,
        m.seq,
        m.id,
        scope,
        KINDS.indexOf(m.kind),
        m.kind === 'topic' ? m.topic : null,
        m.kind === 'direct' ? m.peer : null,
        m.origin.address,
        m.origin.port,
        m.origin.name ?? null,
        m.at,
        m.receivedAt ?? now,
        m.late ? 1 : 0,
        bytes(m.payload),
        bytes(m.sig),
        m.deps.length === 0 ? null : JSON.stringify(m.deps),
      );
      this.#counts.set(scope, (this.#counts.get(scope) ?? 0) + 1);
      if (m.seq > s.top) s.top = m.seq;
      if (m.seq === s.contiguous + 1) {
        s.contiguous = m.seq;
        this.#advance(s);
      } else if (m.seq === s.floor - 1) {
        // A skipped number came: the held run down from `contiguous` may reach lower now.
        this.#lowerFloor(s);
      }
      added.set(scope, (added.get(scope) ?? 0) + 1);
      return 'new';
    });
    for (const [scope, n] of added)
      this.#evict(scope, n + STORE_LIMITS.pruneSlack, n + STORE_LIMITS.pruneSlack, dirty);
    for (const s of dirty) this.#saveStream(s);
    if (options.link !== undefined)
      this.#q('linkSet').run(options.link.sender, options.link.stream, options.link.last);
    return out;
  }

  /**
   * Removes from `scope` the messages beyond its count (at most `countBudget` of them) and the
   * ones past its age, oldest first, at most `budget` in all; returns how many.
   */
  #evict(scope: string, countBudget: number, budget: number, dirty: Set<StreamRow>): number {
    const count = this.#counts.get(scope) ?? 0;
    if (count === 0 || budget <= 0) return 0;
    const r = retentionOf(this.#retention, scope);
    const over = Math.min(countBudget, budget, Math.max(0, count - r.maxMessages));
    type Removed = { sid: number; seq: number };
    const rows = (over > 0 ? this.#q('evictOldest').all(scope, over) : []) as Removed[];
    if (rows.length < budget)
      rows.push(
        ...(this.#q('evictAged').all(scope, this.#now() - r.maxAgeMs, budget - rows.length) as Removed[]),
      );
    for (const { sid, seq } of rows) {
      const s = this.#bySid.get(sid)!;
      passSkipped(s, seq);
      if (seq <= s.contiguous) s.floor = Math.max(s.floor, seq + 1);
      else this.#settle(s, seq);
      dirty.add(s);
    }
    if (rows.length >= count) this.#counts.delete(scope);
    else this.#counts.set(scope, count - rows.length);
    return rows.length;
  }

  #stream(k: StreamKey): StreamRow {
    const id = streamId(k);
    let s = this.#streams.get(id);
    if (s === undefined) {
      const sid = Number(this.#q('streamAdd').run(k.origin, k.epoch, k.channel).lastInsertRowid);
      s = {
        sid,
        key: { origin: k.origin, epoch: k.epoch, channel: k.channel },
        contiguous: 0,
        floor: 1,
        skipFrom: 0,
        skipTo: 0,
        top: 0,
      };
      this.#streams.set(id, s);
      this.#bySid.set(sid, s);
    }
    return s;
  }

  /** Writes the marks of `s`. */
  #saveStream(s: StreamRow): void {
    if (this.#skipColumns) this.#q('streamSet').run(s.contiguous, s.floor, s.skipFrom, s.skipTo, s.sid);
    else this.#q('streamSetV2').run(s.contiguous, s.floor, s.sid);
  }

  #settle(s: StreamRow, upTo: number): void {
    if (upTo <= s.contiguous) return;
    s.contiguous = upTo;
    s.floor = upTo + 1;
    this.#advance(s);
  }

  /**
   * Moves `floor` down through the held numbers right below it (skipped numbers that came): what
   * a member plans from, so that it asks for them in order rather than for what follows them first.
   */
  #lowerFloor(s: StreamRow): void {
    while (
      s.floor > 1 &&
      s.floor - 1 <= s.contiguous &&
      this.#q('idAt').get(s.sid, s.floor - 1) !== undefined
    )
      s.floor--;
  }

  /** Moves `contiguous` up through the held numbers right above it. */
  #advance(s: StreamRow): void {
    while (s.contiguous < s.top && this.#q('idAt').get(s.sid, s.contiguous + 1) !== undefined) s.contiguous++;
  }

  #aboveRanges(s: StreamRow): [number, number][] {
    function* seqs(it: IterableIterator<unknown>): Generator<number> {
      for (const v of it) yield v as number;
    }
    const it = this.#q('above').iterate(s.sid, s.contiguous) as IterableIterator<unknown>;
    try {
      return rangesOf(seqs(it), STORE_LIMITS.summaryRanges) as [number, number][];
    } finally {
      it.return?.();
    }
  }

  #entry(r: MessageRow): StoredEntry {
    const [
      key,
      sid,
      seq,
      id,
      kind,
      topic,
      peer,
      address,
      port,
      name,
      at,
      receivedAt,
      late,
      payload,
      sig,
      deps,
    ] = r;
    const s = this.#bySid.get(sid)!;
    return {
      id,
      origin: { id: s.key.origin, address, port, ...(name === null ? {} : { name }) },
      kind: KINDS[kind]!,
      ...(topic === null ? {} : { topic }),
      ...(peer === null ? {} : { peer }),
      epoch: s.key.epoch,
      channel: s.key.channel,
      seq,
      at,
      payload: new Uint8Array(payload.buffer, payload.byteOffset, payload.byteLength),
      sig: new Uint8Array(sig.buffer, sig.byteOffset, sig.byteLength),
      deps: deps === null ? [] : (JSON.parse(deps) as string[]),
      late: late === 1,
      receivedAt,
      key,
    };
  }
}

/** A Buffer view of `u` (better-sqlite3 binds Buffers), without a copy. */
function bytes(u: Uint8Array): Buffer {
  return Buffer.isBuffer(u) ? u : Buffer.from(u.buffer, u.byteOffset, u.byteLength);
}

/** Code-unit order, as the memory store sorts. */
function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
