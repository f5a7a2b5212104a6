/**
 * The in-memory {@link Store}: for nodes without `dataDir`, and for simulations. It behaves as
 * the SQLite store does (the same contract suite runs against both), with the same retention
 * bounds, and keeps nothing after `close()`.
 *
 * Each scope's messages are rows in columns, sorted by `(at, key)` (`scope-log.ts`): a node
 * without `dataDir` holds up to `retention.maxMessages` of them per scope, and every one
 * outlives the garbage collector's young generation, so nothing is kept as an object of its own
 * per message. A row's origin is one frozen object shared by every row of that peer (the
 * journal's), its stream holds its epoch and channel, its scope its kind and topic or peer.
 * Each stream finds its rows by number through a `SeqIndex` (`seq-index.ts`). Message ids are
 * indexed (for {@link MemoryStore.has} and {@link MemoryStore.byIds}) only once one of those is
 * first called: a node whose messages have no causal dependencies never asks.
 *
 * @module
 */

import { randomBytes } from 'node:crypto';
import { StoppedError } from '../errors.js';
import { MemberRows } from './member-rows.js';
import { type Chunk, ScopeLog } from './scope-log.js';
import { SeqIndex } from './seq-index.js';
import {
  type AppendOptions,
  type AppendStatus,
  checkQuery,
  type HistoryQuery,
  isSkipped,
  type LinkState,
  type MemberRecord,
  markSkipped,
  passSkipped,
  type Retention,
  type RetentionOptions,
  readLimit,
  retentionOf,
  STORE_LIMITS,
  type Store,
  type StoredEntry,
  type StoredMessage,
  type StoredOrigin,
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

interface StreamState {
  readonly key: StreamKey;
  contiguous: number;
  floor: number;
  /** Held numbers above `contiguous`, ascending. */
  above: number[];
  /**
   * The numbers `skipFrom..skipTo` (below `contiguous`) that are not held were skipped, never
   * received: a copy of one is still taken ({@link MemoryStore.skip}). None when `skipTo` is 0.
   */
  skipFrom: number;
  skipTo: number;
  /** Every held number, and where its row is. */
  readonly held: SeqIndex;
}

type Log = ScopeLog<StreamState>;
type Row = Chunk<StreamState>;

/** Where a message's row is, for the id index. */
interface IdRow {
  readonly log: Log;
  readonly at: number;
  readonly key: number;
}

const NO_DEPS: readonly string[] = Object.freeze([]);

/** Bytes counted per message besides its payload, signature, id and dependencies. */
const ENTRY_OVERHEAD = 200;

function entryBytes(id: string, bytes: number, deps: readonly string[]): number {
  let n = ENTRY_OVERHEAD + bytes + id.length;
  for (const d of deps) n += d.length;
  return n;
}

/** The in-memory store. */
export class MemoryStore implements Store {
  readonly kind = 'memory';
  readonly epoch: string;
  readonly #now: () => number;
  readonly #retention: RetentionOptions | undefined;
  /** The retention of each scope seen, worked out once (the options never change). */
  readonly #retentions = new Map<string, Retention>();
  readonly #streams = new Map<string, StreamState>();
  /** Each scope's rows; a scope's log is kept once made (`SeqIndex` rows name it by number). */
  readonly #scopes = new Map<string, Log>();
  readonly #logs: Log[] = [];
  /**
   * Rows by message id: one, or several (a direct message to several, or a conflict). Built on
   * first use (see the module comment), then kept up to date.
   */
  #ids: Map<string, IdRow | IdRow[]> | undefined;
  readonly #allocated = new Map<string, number>();
  /** The member snapshot, in columns (`member-rows.ts`: a simulation holds N² of them). */
  readonly #members = new MemberRows();
  readonly #links = new Map<string, LinkState>();
  #subscriptions: string[] = [];
  #incarnation = 0;
  #key = 0;
  #count = 0;
  #bytes = 0;
  #closed = false;

  constructor(options: StoreOptions = {}) {
    this.epoch = options.epoch ?? randomBytes(12).toString('base64url');
    this.#now = options.now ?? Date.now;
    this.#retention = options.retention;
  }

  nextSeq(origin: string, channel: string): number {
    this.#open();
    const key = { origin, epoch: this.epoch, channel };
    const id = streamId(key);
    const s = this.#streams.get(id);
    const held = s === undefined ? 0 : Math.max(s.contiguous, s.above[s.above.length - 1] ?? 0);
    const next = Math.max(held, this.#allocated.get(id) ?? 0) + 1;
    this.#allocated.set(id, next);
    return next;
  }

  append(messages: readonly StoredMessage[], options: AppendOptions = {}): AppendStatus[] {
    this.#open();
    // Indexed loops, no iterators nor callbacks: these run once per message received.
    const n = messages.length;
    for (let i = 0; i < n; i++) validateMessage(messages[i]!);
    const now = this.#now();
    const added = new Map<string, number>();
    // A batch nearly always holds one stream's messages: its state is looked up once.
    let last: StreamState | undefined;
    const out: AppendStatus[] = new Array(n);
    for (let i = 0; i < n; i++) {
      const m = messages[i]!;
      const stream =
        last !== undefined &&
        last.key.origin === m.origin.id &&
        last.key.epoch === m.epoch &&
        last.key.channel === m.channel
          ? last
          : this.#stream(streamOf(m));
      last = stream;
      out[i] = this.#appendOne(m, stream, now, added);
    }
    for (const [scope, k] of added) this.#enforce(scope, k + STORE_LIMITS.pruneSlack);
    if (options.link !== undefined) this.saveLink(options.link);
    return out;
  }

  /** Appends one message of {@link MemoryStore.append} to `stream`, counting it in `added` by scope. */
  #appendOne(m: StoredMessage, stream: StreamState, now: number, added: Map<string, number>): AppendStatus {
    if (m.seq <= stream.contiguous && !isSkipped(stream, m.seq)) return 'duplicate';
    const held = stream.held.get(m.seq);
    if (held !== undefined) {
      const [c, i] = this.#logs[held.log]!.locate(held.at, held.key)!;
      return c.ids[i] === m.id ? 'duplicate' : 'conflict';
    }
    const scope = scopeOf(m);
    if (m.at < now - this.#retentionOf(scope).maxAgeMs) {
      this.#settle(stream, m.seq);
      return 'expired';
    }
    this.#insert(m, scope, stream, now);
    added.set(scope, (added.get(scope) ?? 0) + 1);
    return 'new';
  }

  skip(stream: StreamKey, upTo: number): void {
    this.#open();
    const s = this.#stream(stream);
    if (!markSkipped(s, upTo)) return;
    this.#settle(s, upTo);
    lowerFloor(s);
  }

  has(ids: readonly string[]): Set<string> {
    this.#open();
    const index = this.#idIndex();
    return new Set(ids.filter((id) => index.has(id)));
  }

  byIds(ids: readonly string[]): StoredEntry[] {
    this.#open();
    if (ids.length > STORE_LIMITS.maxRead) readLimit(ids.length);
    const now = this.#now();
    const out: StoredEntry[] = [];
    const index = this.#idIndex();
    for (const id of new Set(ids))
      for (const r of rowsOf(index, id)) {
        if (r.at < now - r.log.retention.maxAgeMs) continue;
        const [c, i] = r.log.locate(r.at, r.key)!;
        out.push(publicEntry(r.log, c, i));
      }
    return out;
  }

  history(query: HistoryQuery = {}): StoredEntry[] {
    this.#open();
    checkQuery(query);
    const limit = readLimit(query.limit);
    const scope = scopeOfQuery(query);
    const log = this.#scopes.get(scope);
    const out: StoredEntry[] = [];
    if (log === undefined) return out;
    const cutoff = this.#now() - log.retention.maxAgeMs;
    log.walkBack(query.before, (c, i) => {
      if (c.at(i) < cutoff) return false;
      out.push(publicEntry(log, c, i));
      return out.length < limit;
    });
    return out.reverse();
  }

  readRange(stream: StreamKey, from: number, to: number, limit?: number): StoredEntry[] {
    this.#open();
    const n = readLimit(limit, STORE_LIMITS.maxRead);
    const s = this.#streams.get(streamId(stream));
    if (s === undefined || to < from) return [];
    const now = this.#now();
    const out: StoredEntry[] = [];
    let near: [Row, number] | undefined;
    s.held.range(from, to, (r) => {
      const log = this.#logs[r.log]!;
      if (r.at < now - log.retention.maxAgeMs) return true;
      near = log.locate(r.at, r.key, near)!;
      out.push(publicEntry(log, near[0], near[1]));
      return out.length < n;
    });
    return out;
  }

  summary(channels?: readonly string[]): StreamSummary[] {
    this.#open();
    const only = channels === undefined ? undefined : new Set(channels);
    const out: StreamSummary[] = [];
    for (const s of this.#streams.values()) {
      if (only !== undefined && !only.has(s.key.channel)) continue;
      out.push({
        ...s.key,
        contiguous: s.contiguous,
        floor: s.floor,
        above: rangesOf(s.above, STORE_LIMITS.summaryRanges),
      });
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
    const now = this.#now();
    let removed = 0;
    for (const log of this.#scopes.values()) {
      const cutoff = now - log.retention.maxAgeMs;
      let k = 0;
      log.walk((c, i) => {
        if (removed + k >= budget || c.at(i) >= cutoff) return false;
        k++;
        return true;
      });
      this.#removeFront(log, k);
      removed += k;
      if (removed >= budget) break;
    }
    return removed;
  }

  saveMembers(members: readonly MemberRecord[]): void {
    this.#open();
    for (const m of members) this.#members.set(m);
  }

  deleteMember(id: string): void {
    this.#open();
    this.#members.delete(id);
  }

  members(): MemberRecord[] {
    this.#open();
    return this.#members.all().sort((a, b) => compareStrings(a.id, b.id));
  }

  setSubscriptions(topics: readonly string[]): void {
    this.#open();
    this.#subscriptions = [...new Set(topics)].sort(compareStrings);
  }

  subscriptions(): string[] {
    this.#open();
    return [...this.#subscriptions];
  }

  incarnation(): number {
    this.#open();
    return this.#incarnation;
  }

  setIncarnation(incarnation: number): void {
    this.#open();
    this.#incarnation = incarnation;
  }

  saveLink(link: LinkState): void {
    this.#open();
    this.#links.set(link.sender, { sender: link.sender, stream: link.stream, last: link.last });
  }

  links(): LinkState[] {
    this.#open();
    return [...this.#links.values()].sort((a, b) => compareStrings(a.sender, b.sender));
  }

  stats(): StoreStats {
    this.#open();
    return { messages: this.#count, bytes: this.#bytes };
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#streams.clear();
    this.#scopes.clear();
    this.#logs.length = 0;
    this.#ids = undefined;
    this.#members.clear();
  }

  #open(): void {
    if (this.#closed) throw new StoppedError('the store is closed');
  }

  #stream(k: StreamKey): StreamState {
    const id = streamId(k);
    let s = this.#streams.get(id);
    if (s === undefined) {
      s = {
        key: { origin: k.origin, epoch: k.epoch, channel: k.channel },
        contiguous: 0,
        floor: 1,
        above: [],
        skipFrom: 0,
        skipTo: 0,
        held: new SeqIndex(),
      };
      this.#streams.set(id, s);
    }
    return s;
  }

  #insert(m: StoredMessage, scope: string, stream: StreamState, now: number): void {
    const log = this.#log(scope);
    const key = ++this.#key;
    log.insert(m, this.#origin(m.origin), stream, key, m.receivedAt ?? now);
    stream.held.add(m.seq, m.at, key, log.no);
    if (m.seq === stream.contiguous + 1) {
      stream.contiguous = m.seq;
      advance(stream);
    } else if (m.seq < stream.floor) {
      // A skipped number came: the held run down from `contiguous` may reach lower now.
      if (m.seq === stream.floor - 1) lowerFloor(stream);
    } else if (m.seq > stream.contiguous) {
      const i = stream.above.findIndex((x) => x > m.seq);
      if (i < 0) stream.above.push(m.seq);
      else stream.above.splice(i, 0, m.seq);
    }
    if (this.#ids !== undefined) addId(this.#ids, m.id, { log, at: m.at, key });
    this.#count++;
    this.#bytes += entryBytes(m.id, m.payload.byteLength + m.sig.byteLength, m.deps);
  }

  /** The log of `scope`, made on first use. */
  #log(scope: string): Log {
    let log = this.#scopes.get(scope);
    if (log === undefined) {
      log = new ScopeLog(this.#logs.length, scope, this.#retentionOf(scope));
      this.#logs.push(log);
      this.#scopes.set(scope, log);
    }
    return log;
  }

  /**
   * The id index, built from every row on first use. An id's rows are in `key` order, as the
   * SQLite store reads them: the build visits them scope by scope, so those of an id held in
   * several are sorted once; rows added later have the highest key and go last.
   */
  #idIndex(): Map<string, IdRow | IdRow[]> {
    if (this.#ids === undefined) {
      const index = new Map<string, IdRow | IdRow[]>();
      for (const log of this.#logs)
        log.walk((c, i) => {
          addId(index, c.ids[i]!, { log, at: c.at(i), key: c.key(i) });
          return true;
        });
      for (const same of index.values()) if (Array.isArray(same)) same.sort((a, b) => a.key - b.key);
      this.#ids = index;
    }
    return this.#ids;
  }

  /** The retention of `scope`. */
  #retentionOf(scope: string): Retention {
    let r = this.#retentions.get(scope);
    if (r === undefined) {
      r = retentionOf(this.#retention, scope);
      this.#retentions.set(scope, r);
    }
    return r;
  }

  /**
   * `o` as the entry keeps it: as is when frozen (the journal gives one frozen object per peer,
   * so every entry of that peer shares it), else a frozen copy.
   */
  #origin(o: StoredOrigin): StoredOrigin {
    if (Object.isFrozen(o)) return o;
    return Object.freeze({
      id: o.id,
      address: o.address,
      port: o.port,
      ...(o.name !== undefined ? { name: o.name } : {}),
    });
  }

  /** Retention of one scope after an append: at most `budget` removals. */
  #enforce(scope: string, budget: number): void {
    const log = this.#scopes.get(scope);
    if (log === undefined) return;
    const r = log.retention;
    const cutoff = this.#now() - r.maxAgeMs;
    const over = Math.min(budget, Math.max(0, log.count - r.maxMessages));
    let k = 0;
    log.walk((c, i) => {
      if (k < over || (k < budget && c.at(i) < cutoff)) {
        k++;
        return true;
      }
      return false;
    });
    this.#removeFront(log, k);
  }

  #removeFront(log: Log, k: number): void {
    if (k <= 0) return;
    log.dropFront(k, (c, i) => {
      const s = c.streams[i]!;
      const seq = c.seq(i);
      const id = c.ids[i]!;
      s.held.delete(seq);
      passSkipped(s, seq);
      if (seq <= s.contiguous) s.floor = Math.max(s.floor, seq + 1);
      else this.#settle(s, seq);
      if (this.#ids !== undefined) {
        const key = c.key(i);
        const same = rowsOf(this.#ids, id).filter((r) => r.key !== key);
        if (same.length === 0) this.#ids.delete(id);
        else this.#ids.set(id, same.length === 1 ? same[0]! : same);
      }
      this.#count--;
      this.#bytes -= entryBytes(id, c.size(i), c.deps?.[i] ?? NO_DEPS);
    });
  }

  /** Every number up to `upTo` counts as received; the held prefix starts above it. */
  #settle(s: StreamState, upTo: number): void {
    if (upTo <= s.contiguous) return;
    s.contiguous = upTo;
    s.floor = upTo + 1;
    let i = 0;
    while (i < s.above.length && s.above[i]! <= upTo) i++;
    s.above.splice(0, i);
    advance(s);
  }
}

/**
 * Moves `floor` down through the held numbers right below it (skipped numbers that came): what a
 * member plans from, so that it asks for them in order rather than for what follows them first.
 */
function lowerFloor(s: StreamState): void {
  while (s.floor > 1 && s.floor - 1 <= s.contiguous && s.held.get(s.floor - 1) !== undefined) s.floor--;
}

/** Moves `contiguous` up through the held numbers right above it. */
function advance(s: StreamState): void {
  let i = 0;
  while (i < s.above.length && s.above[i] === s.contiguous + 1) {
    s.contiguous++;
    i++;
  }
  if (i > 0) s.above.splice(0, i);
}

/** The rows of message `id` in `index`. */
function rowsOf(index: Map<string, IdRow | IdRow[]>, id: string): readonly IdRow[] {
  const same = index.get(id);
  return same === undefined ? [] : Array.isArray(same) ? same : [same];
}

function addId(index: Map<string, IdRow | IdRow[]>, id: string, row: IdRow): void {
  const same = index.get(id);
  if (same === undefined) index.set(id, row);
  else if (Array.isArray(same)) same.push(row);
  else index.set(id, [same, row]);
}

function publicEntry(log: Log, c: Row, i: number): StoredEntry {
  const stream = c.streams[i]!;
  return {
    id: c.ids[i]!,
    origin: { ...c.origins[i]! },
    kind: log.kind,
    ...(log.topic !== undefined ? { topic: log.topic } : {}),
    ...(log.peer !== undefined ? { peer: log.peer } : {}),
    epoch: stream.key.epoch,
    channel: stream.key.channel,
    seq: c.seq(i),
    at: c.at(i),
    // Copies, each in its own memory: what a reader does with them never reaches the store.
    payload: c.payload(i),
    sig: c.sig(i),
    deps: [...(c.deps?.[i] ?? NO_DEPS)],
    late: c.late(i),
    receivedAt: c.receivedAt(i),
    key: c.key(i),
  };
}

/** Code-unit order, as SQLite's default BINARY collation. */
function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
