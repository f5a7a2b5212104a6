/**
 * The in-memory {@link Store}: for nodes without `dataDir`, and for simulations. It behaves as
 * the SQLite store does (the same contract suite runs against both), with the same retention
 * bounds, and keeps nothing after `close()`.
 *
 * Each scope's messages are one array sorted by `(at, key)`: arrivals are nearly always the
 * newest, so inserting is an append, and retention takes from the front.
 *
 * An entry is kept in few objects, since a node without `dataDir` holds up to
 * `retention.maxMessages` of them and every one outlives the garbage collector's young
 * generation: its payload and signature are copied into one buffer of its own, its origin is one frozen object shared by every entry of that peer (the journal's), its stream
 * holds its epoch and channel, and no dependencies share one empty array.
 *
 * @module
 */

import { randomBytes } from 'node:crypto';
import { StoppedError } from '../errors.js';
import {
  type AppendOptions,
  type AppendStatus,
  checkQuery,
  type HistoryQuery,
  type LinkState,
  type MemberRecord,
  type MessageKind,
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
  readonly bySeq: Map<number, Entry>;
}

/** A message as this store keeps it (see the module comment). */
interface Entry {
  readonly id: string;
  readonly origin: StoredOrigin;
  readonly kind: MessageKind;
  readonly topic: string | undefined;
  readonly peer: string | undefined;
  readonly seq: number;
  readonly at: number;
  /** The payload, then the signature material. */
  readonly bytes: Uint8Array;
  readonly payloadLength: number;
  readonly deps: readonly string[];
  readonly late: boolean;
  readonly receivedAt: number;
  readonly key: number;
  readonly scope: string;
  readonly stream: StreamState;
}

const NO_DEPS: readonly string[] = Object.freeze([]);

/** Bytes counted per message besides its payload, signature, id and dependencies. */
const ENTRY_OVERHEAD = 200;

/** `(at, key)` order. */
const cmp = (a: { at: number; key: number }, b: { at: number; key: number }): number =>
  a.at - b.at || a.key - b.key;

/** Index of the first element of `arr` not before `x`. */
function lowerBound(arr: readonly Entry[], x: { at: number; key: number }): number {
  let lo = 0;
  let hi = arr.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (cmp(arr[mid]!, x) < 0) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

function entryBytes(m: Entry): number {
  let n = ENTRY_OVERHEAD + m.bytes.byteLength + m.id.length;
  for (const d of m.deps) n += d.length;
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
  readonly #scopes = new Map<string, Entry[]>();
  /** Entries by message id: one, or several (a direct message to several, or a conflict). */
  readonly #ids = new Map<string, Entry | Entry[]>();
  readonly #allocated = new Map<string, number>();
  readonly #members = new Map<string, MemberRecord>();
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
    for (const m of messages) validateMessage(m);
    const now = this.#now();
    const added = new Map<string, number>();
    // A batch nearly always holds one stream's messages: its state is looked up once.
    let last: StreamState | undefined;
    const out = messages.map((m): AppendStatus => {
      const stream =
        last !== undefined &&
        last.key.origin === m.origin.id &&
        last.key.epoch === m.epoch &&
        last.key.channel === m.channel
          ? last
          : this.#stream(streamOf(m));
      last = stream;
      if (m.seq <= stream.contiguous) return 'duplicate';
      const held = stream.bySeq.get(m.seq);
      if (held !== undefined) return held.id === m.id ? 'duplicate' : 'conflict';
      const scope = scopeOf(m);
      if (m.at < now - this.#retentionOf(scope).maxAgeMs) {
        this.#settle(stream, m.seq);
        return 'expired';
      }
      this.#insert(m, scope, stream, now);
      added.set(scope, (added.get(scope) ?? 0) + 1);
      return 'new';
    });
    for (const [scope, n] of added) this.#enforce(scope, n + STORE_LIMITS.pruneSlack);
    if (options.link !== undefined) this.saveLink(options.link);
    return out;
  }

  settle(stream: StreamKey, upTo: number): void {
    this.#open();
    this.#settle(this.#stream(stream), upTo);
  }

  has(ids: readonly string[]): Set<string> {
    this.#open();
    return new Set(ids.filter((id) => this.#ids.has(id)));
  }

  byIds(ids: readonly string[]): StoredEntry[] {
    this.#open();
    if (ids.length > STORE_LIMITS.maxRead) readLimit(ids.length);
    const now = this.#now();
    const out: StoredEntry[] = [];
    for (const id of new Set(ids))
      for (const e of this.#byId(id))
        if (e.at >= now - this.#retentionOf(e.scope).maxAgeMs) out.push(publicEntry(e));
    return out;
  }

  history(query: HistoryQuery = {}): StoredEntry[] {
    this.#open();
    checkQuery(query);
    const limit = readLimit(query.limit);
    const scope = scopeOfQuery(query);
    const arr = this.#scopes.get(scope) ?? [];
    const cutoff = this.#now() - this.#retentionOf(scope).maxAgeMs;
    let end = query.before === undefined ? arr.length : lowerBound(arr, query.before);
    const out: StoredEntry[] = [];
    while (end > 0 && out.length < limit) {
      const e = arr[--end]!;
      if (e.at < cutoff) break;
      out.push(publicEntry(e));
    }
    return out.reverse();
  }

  readRange(stream: StreamKey, from: number, to: number, limit?: number): StoredEntry[] {
    this.#open();
    const n = readLimit(limit, STORE_LIMITS.maxRead);
    const s = this.#streams.get(streamId(stream));
    if (s === undefined || to < from) return [];
    const now = this.#now();
    const fresh = (e: Entry): boolean => e.at >= now - this.#retentionOf(e.scope).maxAgeMs;
    let found: Entry[];
    if (to - from > 2 * s.bySeq.size) {
      found = [...s.bySeq.values()]
        .filter((e) => e.seq >= from && e.seq <= to && fresh(e))
        .sort((a, b) => a.seq - b.seq)
        .slice(0, n);
    } else {
      found = [];
      for (let seq = from; seq <= to && found.length < n; seq++) {
        const e = s.bySeq.get(seq);
        if (e !== undefined && fresh(e)) found.push(e);
      }
    }
    return found.map(publicEntry);
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
    for (const [scope, arr] of this.#scopes) {
      const cutoff = now - this.#retentionOf(scope).maxAgeMs;
      let k = 0;
      while (k < arr.length && removed + k < budget && arr[k]!.at < cutoff) k++;
      this.#removeFront(scope, arr, k);
      removed += k;
      if (removed >= budget) break;
    }
    return removed;
  }

  saveMembers(members: readonly MemberRecord[]): void {
    this.#open();
    for (const m of members) this.#members.set(m.id, { ...m });
  }

  deleteMember(id: string): void {
    this.#open();
    this.#members.delete(id);
  }

  members(): MemberRecord[] {
    this.#open();
    return [...this.#members.values()].sort((a, b) => compareStrings(a.id, b.id)).map((m) => ({ ...m }));
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
    this.#ids.clear();
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
        bySeq: new Map(),
      };
      this.#streams.set(id, s);
    }
    return s;
  }

  #insert(m: StoredMessage, scope: string, stream: StreamState, now: number): void {
    const payloadLength = m.payload.byteLength;
    const bytes = new Uint8Array(payloadLength + m.sig.byteLength);
    bytes.set(m.payload, 0);
    bytes.set(m.sig, payloadLength);
    const e: Entry = {
      id: m.id,
      origin: this.#origin(m.origin),
      kind: m.kind,
      topic: m.kind === 'topic' ? m.topic : undefined,
      peer: m.kind === 'direct' ? m.peer : undefined,
      seq: m.seq,
      at: m.at,
      bytes,
      payloadLength,
      deps: m.deps.length === 0 ? NO_DEPS : Object.freeze([...m.deps]),
      late: m.late,
      receivedAt: m.receivedAt ?? now,
      key: ++this.#key,
      scope,
      stream,
    };
    stream.bySeq.set(m.seq, e);
    if (m.seq === stream.contiguous + 1) {
      stream.contiguous = m.seq;
      advance(stream);
    } else {
      const i = stream.above.findIndex((x) => x > m.seq);
      if (i < 0) stream.above.push(m.seq);
      else stream.above.splice(i, 0, m.seq);
    }
    let arr = this.#scopes.get(scope);
    if (arr === undefined) {
      arr = [];
      this.#scopes.set(scope, arr);
    }
    const last = arr[arr.length - 1];
    if (last === undefined || cmp(last, e) < 0) arr.push(e);
    else arr.splice(lowerBound(arr, e), 0, e);
    const same = this.#ids.get(e.id);
    if (same === undefined) this.#ids.set(e.id, e);
    else if (Array.isArray(same)) same.push(e);
    else this.#ids.set(e.id, [same, e]);
    this.#count++;
    this.#bytes += entryBytes(e);
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

  /** The entries of message `id`. */
  #byId(id: string): readonly Entry[] {
    const same = this.#ids.get(id);
    return same === undefined ? [] : Array.isArray(same) ? same : [same];
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
    const arr = this.#scopes.get(scope);
    if (arr === undefined) return;
    const r = this.#retentionOf(scope);
    const cutoff = this.#now() - r.maxAgeMs;
    let k = Math.min(budget, Math.max(0, arr.length - r.maxMessages));
    while (k < arr.length && k < budget && arr[k]!.at < cutoff) k++;
    this.#removeFront(scope, arr, k);
  }

  #removeFront(scope: string, arr: Entry[], k: number): void {
    if (k <= 0) return;
    for (const e of arr.splice(0, k)) {
      const s = e.stream;
      s.bySeq.delete(e.seq);
      if (e.seq <= s.contiguous) s.floor = Math.max(s.floor, e.seq + 1);
      else this.#settle(s, e.seq);
      const same = this.#byId(e.id).filter((x) => x !== e);
      if (same.length === 0) this.#ids.delete(e.id);
      else this.#ids.set(e.id, same.length === 1 ? same[0]! : same);
      this.#count--;
      this.#bytes -= entryBytes(e);
    }
    if (arr.length === 0) this.#scopes.delete(scope);
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

/** Moves `contiguous` up through the held numbers right above it. */
function advance(s: StreamState): void {
  let i = 0;
  while (i < s.above.length && s.above[i] === s.contiguous + 1) {
    s.contiguous++;
    i++;
  }
  if (i > 0) s.above.splice(0, i);
}

function publicEntry(e: Entry): StoredEntry {
  const { bytes, payloadLength } = e;
  return {
    id: e.id,
    origin: { ...e.origin },
    kind: e.kind,
    ...(e.topic !== undefined ? { topic: e.topic } : {}),
    ...(e.peer !== undefined ? { peer: e.peer } : {}),
    epoch: e.stream.key.epoch,
    channel: e.stream.key.channel,
    seq: e.seq,
    at: e.at,
    // Copies, each in its own memory: what a reader does with them never reaches the store.
    payload: bytes.slice(0, payloadLength),
    sig: bytes.slice(payloadLength),
    deps: [...e.deps],
    late: e.late,
    receivedAt: e.receivedAt,
    key: e.key,
  };
}

/** Code-unit order, as SQLite's default BINARY collation. */
function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
