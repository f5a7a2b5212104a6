/**
 * One retention scope's messages for the memory store (`memory.ts`), kept in columns: a node
 * without `dataDir` holds up to `retention.maxMessages` messages per scope, and every one
 * outlives the garbage collector's young generation, so an object per message (and a buffer
 * per payload) is what made its collections long. Here the collector sees a few objects per
 * thousand messages:
 *
 * - Rows are sorted by `(at, key)` and cut into **chunks** of at most {@link MAX_ROWS} rows.
 *   A chunk keeps its numbers in two typed arrays (`at`, `receivedAt`, `key`, `seq`; offset,
 *   payload and signature lengths, `late`), its ids, origins and streams in three arrays
 *   (the origins and streams are shared objects; the ids are the messages' own strings), and
 *   its payload and signature bytes in one **slab** of its own, appended to, at most
 *   {@link MAX_SLAB} bytes unless one message is larger. A signature column starts with its
 *   origin's 32-byte public key (`packSig` in `src/node/journal.ts`), the same on every message
 *   of that origin: a chunk holds each such key once (up to {@link MAX_KEYS} of them), and its
 *   rows keep only the rest of their signature bytes (the store's memory grows by a tenth less
 *   per message; reading a row puts the key back).
 * - Arrivals are nearly always the newest, so inserting is an append to the last chunk. A late
 *   message goes into the chunk that holds its place, which is split in two when full.
 * - Retention takes rows from the front only; a chunk is dropped, with its slab, when its last
 *   row goes. A slab that is full is packed into one of half as much again as its live rows
 *   and the new row need, so a chunk that is filled holds at most that.
 * - A new chunk's slab is sized from what the rows of the chunk before it take, with a quarter
 *   more and without that chunk's largest row: one large message costs its own chunk's slab,
 *   never the slabs of the chunks after it.
 *
 * Rows are named by `(chunk, index)` while nothing is inserted or removed, and by `(at, key)`
 * for good ({@link ScopeLog.locate}).
 *
 * @module
 */

import type { MessageKind, Retention, StoredMessage, StoredOrigin } from './store.js';

/** Most rows per chunk. */
export const MAX_ROWS = 1024;
/** Most bytes of payload and signature per chunk's slab, unless one message is larger. */
export const MAX_SLAB = 4 * 1024 * 1024;
/** Rows and slab bytes a scope's first chunk starts with (they grow as needed). */
const FIRST_ROWS = 8;
const FIRST_SLAB = 1024;
/** A slab packed or sized for bytes to come gets this much room per byte: half again as much. */
const SLAB_ROOM = 1.5;
/** A new chunk's slab, from what the chunk before took: a quarter more. */
const NEXT_ROOM = 1.25;

/** Fields per row in {@link Chunk.f}: at, receivedAt, key, seq. */
const F = 4;
/** Fields per row in {@link Chunk.u}: slab offset, payload length, signature length, flags. */
const U = 4;
/** In a row's flags: delivered late. */
const LATE = 1;
/** Bytes of an origin's key at the start of a signature column (`packSig` in `src/node/journal.ts`). */
const KEY_BYTES = 32;
/** Most keys a chunk holds once for its rows (see {@link Chunk.keys}); the flags keep 3 bits. */
const MAX_KEYS = 7;

/** Part of a scope's rows, in `(at, key)` order (see the module comment). */
export class Chunk<S> {
  /** at, receivedAt, key, seq per row. */
  f: Float64Array;
  /**
   * Slab offset, payload length, signature length and flags per row: bit 0 late, bits 1-3 the
   * number (from 1) of the chunk's key that the signature starts with, 0 for none.
   */
  u: Uint32Array;
  /**
   * The first 32 bytes of rows' signatures (an origin's public key, the same on every message
   * it writes), each held once here instead of in every row's slab bytes: a row whose
   * signature starts with one of them keeps only the rest (see `u`).
   */
  keys: Uint8Array[] | undefined;
  readonly ids: string[] = [];
  readonly origins: StoredOrigin[] = [];
  readonly streams: S[] = [];
  /** Dependencies per row, once a row has some. */
  deps: (readonly string[] | undefined)[] | undefined;
  /** The live rows are `[start, end)`. */
  start = 0;
  end = 0;
  slab: Uint8Array;
  /** Slab bytes written, and those of live rows. */
  used = 0;
  live = 0;

  constructor(rows: number, slab: number) {
    this.f = new Float64Array(rows * F);
    this.u = new Uint32Array(rows * U);
    this.slab = new Uint8Array(slab);
  }

  get rows(): number {
    return this.end - this.start;
  }

  at(i: number): number {
    return this.f[i * F]!;
  }
  receivedAt(i: number): number {
    return this.f[i * F + 1]!;
  }
  key(i: number): number {
    return this.f[i * F + 2]!;
  }
  seq(i: number): number {
    return this.f[i * F + 3]!;
  }
  late(i: number): boolean {
    return (this.u[i * U + 3]! & LATE) !== 0;
  }
  /** Payload and signature bytes of row `i`. */
  size(i: number): number {
    return this.u[i * U + 1]! + this.u[i * U + 2]!;
  }
  /** Bytes row `i` takes in the slab: its {@link size} but a key the chunk holds. */
  stored(i: number): number {
    return this.size(i) - (this.u[i * U + 3]! >>> 1 === 0 ? 0 : KEY_BYTES);
  }
  /** Copies of row `i`'s payload and signature, each in its own memory. */
  payload(i: number): Uint8Array {
    const o = this.u[i * U]!;
    return this.slab.slice(o, o + this.u[i * U + 1]!);
  }
  sig(i: number): Uint8Array {
    const o = this.u[i * U]! + this.u[i * U + 1]!;
    const n = this.u[i * U + 2]!;
    const k = this.u[i * U + 3]! >>> 1;
    if (k === 0) return this.slab.slice(o, o + n);
    const out = new Uint8Array(n);
    out.set(this.keys![k - 1]!, 0);
    out.set(this.slab.subarray(o, o + n - KEY_BYTES), KEY_BYTES);
    return out;
  }

  /** The number (from 1) of the chunk's key that `sig` starts with, adding it if there is room; 0 for none. */
  #keyOf(sig: Uint8Array): number {
    if (sig.byteLength < KEY_BYTES) return 0;
    this.keys ??= [];
    const keys = this.keys;
    for (let k = 0; k < keys.length; k++) if (startsWith(sig, keys[k]!)) return k + 1;
    if (keys.length === MAX_KEYS) return 0;
    keys.push(sig.slice(0, KEY_BYTES));
    return keys.length;
  }

  /** Whether a row of `bytes` fits without splitting the chunk. */
  fits(bytes: number): boolean {
    return (this.end < MAX_ROWS || this.start > 0) && (this.live === 0 || this.live + bytes <= MAX_SLAB);
  }

  /** Index of the first live row not before `(at, key)`. */
  lowerBound(at: number, key: number): number {
    const f = this.f;
    let lo = this.start;
    let hi = this.end;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const a = f[mid * F]!;
      if (a < at || (a === at && f[mid * F + 2]! < key)) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** Writes `m` as a row at index `p` (`start <= p <= end`), moving the rows from `p` up; it {@link fits}. */
  put(p: number, m: StoredMessage, origin: StoredOrigin, stream: S, key: number, receivedAt: number): void {
    if (this.end * F === this.f.length) p -= this.#room();
    const k = this.#keyOf(m.sig);
    const sigFrom = k === 0 ? 0 : KEY_BYTES;
    const bytes = m.payload.byteLength + m.sig.byteLength - sigFrom;
    if (this.used + bytes > this.slab.length) this.#pack(bytes);
    if (p < this.end) {
      this.f.copyWithin((p + 1) * F, p * F, this.end * F);
      this.u.copyWithin((p + 1) * U, p * U, this.end * U);
      this.ids.splice(p, 0, m.id);
      this.origins.splice(p, 0, origin);
      this.streams.splice(p, 0, stream);
      this.deps?.splice(p, 0, undefined);
    } else {
      this.ids.push(m.id);
      this.origins.push(origin);
      this.streams.push(stream);
      this.deps?.push(undefined);
    }
    const f = p * F;
    this.f[f] = m.at;
    this.f[f + 1] = receivedAt;
    this.f[f + 2] = key;
    this.f[f + 3] = m.seq;
    const u = p * U;
    this.u[u] = this.used;
    this.u[u + 1] = m.payload.byteLength;
    this.u[u + 2] = m.sig.byteLength;
    this.u[u + 3] = (m.late ? LATE : 0) | (k << 1);
    const slab = this.slab;
    slab.set(m.payload, this.used);
    const sig = m.sig;
    const at = this.used + m.payload.byteLength;
    if (sigFrom === 0) slab.set(sig, at);
    // Byte by byte (at most 96 of them): a subarray to copy from would be an object per message.
    else for (let i = sigFrom; i < sig.byteLength; i++) slab[at + i - sigFrom] = sig[i]!;
    this.used += bytes;
    this.live += bytes;
    if (m.deps.length > 0) {
      this.deps ??= new Array<readonly string[] | undefined>(this.end + 1).fill(undefined);
      this.deps[p] = Object.freeze([...m.deps]);
    }
    this.end++;
  }

  /** Removes the first live row. */
  shift(): void {
    const i = this.start++;
    this.live -= this.stored(i);
    // The strings go with the row; the arrays keep their length until the chunk is packed.
    this.ids[i] = '';
    if (this.deps !== undefined) this.deps[i] = undefined;
  }

  /** Room for one more row: the live rows moved down to index 0, or twice the columns. Returns how far rows moved down. */
  #room(): number {
    const moved = this.start;
    if (moved > 0) {
      this.f.copyWithin(0, moved * F, this.end * F);
      this.u.copyWithin(0, moved * U, this.end * U);
      this.ids.splice(0, moved);
      this.origins.splice(0, moved);
      this.streams.splice(0, moved);
      this.deps?.splice(0, moved);
      this.start = 0;
      this.end -= moved;
      return moved;
    }
    const f = new Float64Array(this.f.length * 2);
    f.set(this.f);
    this.f = f;
    const u = new Uint32Array(this.u.length * 2);
    u.set(this.u);
    this.u = u;
    return 0;
  }

  /**
   * A slab with room for `bytes` more: the live rows' bytes packed into a new one, with half
   * again as much room as they and `bytes` take (up to {@link MAX_SLAB}; exactly `bytes` for a
   * row that is larger alone).
   */
  #pack(bytes: number): void {
    const need = this.live + bytes;
    const size = Math.max(need, Math.min(MAX_SLAB, Math.max(FIRST_SLAB, Math.ceil(need * SLAB_ROOM))));
    const to = new Uint8Array(size);
    let o = 0;
    for (let i = this.start; i < this.end; i++) {
      const n = this.stored(i);
      const from = this.u[i * U]!;
      to.set(this.slab.subarray(from, from + n), o);
      this.u[i * U] = o;
      o += n;
    }
    this.slab = to;
    this.used = o;
  }
}

/** One scope's rows (see the module comment). */
export class ScopeLog<S> {
  /** Its number in the store (see `seq-index.ts`). */
  readonly no: number;
  readonly scope: string;
  readonly kind: MessageKind;
  /** The topic of a `t:` scope, the peer of a `d:` scope. */
  readonly topic: string | undefined;
  readonly peer: string | undefined;
  readonly retention: Retention;
  readonly chunks: Chunk<S>[] = [];
  count = 0;
  /**
   * Rows and slab bytes of the next chunk: the rows of the last one that filled up, and what
   * its rows took (see the module comment).
   */
  #rows = FIRST_ROWS;
  #slab = FIRST_SLAB;

  constructor(no: number, scope: string, retention: Retention) {
    this.no = no;
    this.scope = scope;
    this.retention = retention;
    this.kind = scope === 'b' ? 'broadcast' : scope.startsWith('t:') ? 'topic' : 'direct';
    this.topic = this.kind === 'topic' ? scope.slice(2) : undefined;
    this.peer = this.kind === 'direct' ? scope.slice(2) : undefined;
  }

  /** Adds `m` in its place by `(at, key)`. */
  insert(m: StoredMessage, origin: StoredOrigin, stream: S, key: number, receivedAt: number): void {
    const bytes = m.payload.byteLength + m.sig.byteLength;
    const chunks = this.chunks;
    this.count++;
    const last = chunks[chunks.length - 1];
    if (last === undefined || before(last, last.end - 1, m.at, key)) {
      let c = last;
      if (c === undefined || !c.fits(bytes)) {
        if (c !== undefined) {
          // A scope that fills chunks starts the next one at the full size.
          if (c.end === MAX_ROWS) this.#rows = MAX_ROWS;
          this.#slab = nextSlab(c, this.#slab);
        }
        c = new Chunk<S>(this.#rows, Math.max(this.#slab, bytes));
        chunks.push(c);
      }
      c.put(c.end, m, origin, stream, key, receivedAt);
      return;
    }
    // A late message: into the first chunk whose last row is not before it.
    let lo = 0;
    let hi = chunks.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const c = chunks[mid]!;
      if (before(c, c.end - 1, m.at, key)) lo = mid + 1;
      else hi = mid;
    }
    let ci = lo;
    let c = chunks[ci]!;
    let p = c.lowerBound(m.at, key);
    while (!c.fits(bytes)) {
      if (c.rows < 2) {
        // One large row: the new one gets a chunk of its own beside it.
        const own = new Chunk<S>(FIRST_ROWS, bytes);
        if (p > c.start) ci++;
        chunks.splice(ci, 0, own);
        c = own;
        p = 0;
        break;
      }
      const mid = c.start + (c.rows >>> 1);
      const lower = copyRows(c, c.start, mid);
      const upper = copyRows(c, mid, c.end);
      chunks.splice(ci, 1, lower, upper);
      if (p < mid) {
        p -= c.start;
        c = lower;
      } else {
        p -= mid;
        c = upper;
        ci++;
      }
    }
    c.put(p, m, origin, stream, key, receivedAt);
  }

  /**
   * The chunk and index of the row `(at, key)`, if it is held. With `near` (the row found
   * before), the row after it is tried first: a stream's rows read in order are nearly always
   * neighbours.
   */
  locate(at: number, key: number, near?: readonly [Chunk<S>, number]): [Chunk<S>, number] | undefined {
    if (near !== undefined) {
      const [c, i] = near;
      if (i + 1 < c.end && c.key(i + 1) === key && c.at(i + 1) === at) return [c, i + 1];
    }
    const chunks = this.chunks;
    let lo = 0;
    let hi = chunks.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const c = chunks[mid]!;
      if (before(c, c.end - 1, at, key)) lo = mid + 1;
      else hi = mid;
    }
    const c = chunks[lo];
    if (c === undefined) return undefined;
    const i = c.lowerBound(at, key);
    return i < c.end && c.key(i) === key && c.at(i) === at ? [c, i] : undefined;
  }

  /** Visits the rows from the front, oldest first, while `visit` returns true. */
  walk(visit: (c: Chunk<S>, i: number) => boolean): void {
    for (const c of this.chunks) for (let i = c.start; i < c.end; i++) if (!visit(c, i)) return;
  }

  /**
   * Visits the rows before `(at, key)` (from the newest when absent), newest first, while
   * `visit` returns true.
   */
  walkBack(
    cursor: { at: number; key: number } | undefined,
    visit: (c: Chunk<S>, i: number) => boolean,
  ): void {
    const chunks = this.chunks;
    let ci = chunks.length - 1;
    let i = ci < 0 ? 0 : chunks[ci]!.end;
    if (cursor !== undefined) {
      let lo = 0;
      let hi = chunks.length;
      while (lo < hi) {
        const mid = (lo + hi) >>> 1;
        const c = chunks[mid]!;
        if (before(c, c.end - 1, cursor.at, cursor.key)) lo = mid + 1;
        else hi = mid;
      }
      ci = Math.min(lo, chunks.length - 1);
      i = lo === chunks.length ? (chunks[ci]?.end ?? 0) : chunks[ci]!.lowerBound(cursor.at, cursor.key);
    }
    for (; ci >= 0; ci--) {
      const c = chunks[ci]!;
      if (i > c.end) i = c.end;
      while (--i >= c.start) if (!visit(c, i)) return;
      i = Number.POSITIVE_INFINITY;
    }
  }

  /** Removes the `k` oldest rows, each after `each` has seen it. */
  dropFront(k: number, each: (c: Chunk<S>, i: number) => void): void {
    const chunks = this.chunks;
    for (let n = 0; n < k; n++) {
      const c = chunks[0]!;
      each(c, c.start);
      c.shift();
      if (c.start === c.end) chunks.shift();
    }
    this.count -= k;
  }
}

/**
 * The slab for the chunk after `c`, which is full: what `c`'s rows take but its largest,
 * per row, for as many rows as a chunk holds, with {@link NEXT_ROOM} (or `last`, when `c` has
 * one row and so tells nothing).
 */
function nextSlab<S>(c: Chunk<S>, last: number): number {
  if (c.rows < 2) return last;
  let largest = 0;
  for (let i = c.start; i < c.end; i++) largest = Math.max(largest, c.stored(i));
  const perRow = (c.live - largest) / (c.rows - 1);
  return Math.min(MAX_SLAB, Math.max(FIRST_SLAB, Math.ceil(perRow * MAX_ROWS * NEXT_ROOM)));
}

/** Whether row `i` of `c` comes before `(at, key)`. */
function before<S>(c: Chunk<S>, i: number, at: number, key: number): boolean {
  const a = c.at(i);
  return a < at || (a === at && c.key(i) < key);
}

/** A new chunk holding rows `[from, to)` of `c`, with a slab of their bytes alone. */
function copyRows<S>(c: Chunk<S>, from: number, to: number): Chunk<S> {
  let bytes = 0;
  for (let i = from; i < to; i++) bytes += c.stored(i);
  const out = new Chunk<S>(MAX_ROWS, Math.max(FIRST_SLAB, bytes * 2));
  const n = to - from;
  out.f.set(c.f.subarray(from * F, to * F));
  out.u.set(c.u.subarray(from * U, to * U));
  out.ids.push(...c.ids.slice(from, to));
  out.origins.push(...c.origins.slice(from, to));
  out.streams.push(...c.streams.slice(from, to));
  if (c.deps !== undefined) out.deps = c.deps.slice(from, to);
  // The rows keep their key numbers: the keys go along (shared, never changed).
  if (c.keys !== undefined) out.keys = c.keys.slice();
  let o = 0;
  for (let i = 0; i < n; i++) {
    const size = out.stored(i);
    const at = out.u[i * U]!;
    out.slab.set(c.slab.subarray(at, at + size), o);
    out.u[i * U] = o;
    o += size;
  }
  out.end = n;
  out.used = o;
  out.live = o;
  return out;
}

/** Whether `bytes` starts with `prefix`. */
function startsWith(bytes: Uint8Array, prefix: Uint8Array): boolean {
  for (let i = 0; i < prefix.length; i++) if (bytes[i] !== prefix[i]) return false;
  return true;
}
