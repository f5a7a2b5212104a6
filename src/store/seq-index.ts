/**
 * One stream's held numbers for the memory store (`memory.ts`): each held `seq` with where its
 * row is, the row's `(at, key)` in its scope's log and that log's number, in one
 * `Float64Array` sorted by `seq`. A stream's messages nearly always arrive in order, so adding
 * is an append, and retention removes from the front; the rarer cases (a late message below
 * held ones, a removal out of order) shift or mark rows. One array per stream instead of one
 * map entry per message: the garbage collector sees nothing per message.
 *
 * The array follows what is held both ways: it doubles when full, is reallocated at half when
 * less than a quarter of it is in use, and is let go when the stream holds nothing (a stream
 * is never forgotten, so each past epoch's streams would otherwise keep their largest array).
 *
 * @module
 */

/** Fields per row: seq, at, key, log number. */
const STRIDE = 4;
/** A removed row's key, until the rows are packed again. */
const GONE = -1;
/** Fewest rows an array is made for. */
const MIN_ROWS = 4;
/** The array of a stream that holds nothing. */
const NONE: Float64Array = new Float64Array(0);

/** Where one held number's row is. */
export interface SeqRow {
  readonly seq: number;
  readonly at: number;
  readonly key: number;
  readonly log: number;
}

/** A stream's held numbers, ascending (see the module comment). */
export class SeqIndex {
  #a: Float64Array = NONE;
  /** Rows in use: `[#head, #end)`, some of them removed (`#gone`). */
  #head = 0;
  #end = 0;
  #gone = 0;

  /** How many numbers are held. */
  get size(): number {
    return this.#end - this.#head - this.#gone;
  }

  /** The row of `seq`, or undefined when it is not held. */
  get(seq: number): SeqRow | undefined {
    const i = this.#find(seq);
    return i < 0 ? undefined : this.#row(i);
  }

  /**
   * Adds a number that is not held yet. The last row is always a live one (see
   * {@link delete}), so an append is in order; a row put in the middle goes before any removed
   * rows of the same number.
   */
  add(seq: number, at: number, key: number, log: number): void {
    if (this.#end * STRIDE === this.#a.length) this.#room();
    const a = this.#a;
    let i = this.#end;
    if (i > this.#head && a[(i - 1) * STRIDE]! >= seq) {
      i = this.#lowerBound(seq);
      a.copyWithin((i + 1) * STRIDE, i * STRIDE, this.#end * STRIDE);
    }
    const o = i * STRIDE;
    a[o] = seq;
    a[o + 1] = at;
    a[o + 2] = key;
    a[o + 3] = log;
    this.#end++;
  }

  /** Removes `seq` if held. */
  delete(seq: number): void {
    const i = this.#find(seq);
    if (i < 0) return;
    if (i === this.#head) {
      this.#head++;
      while (this.#head < this.#end && this.#a[this.#head * STRIDE + 2] === GONE) {
        this.#head++;
        this.#gone--;
      }
    } else if (i === this.#end - 1) {
      this.#end--;
      while (this.#end > this.#head && this.#a[(this.#end - 1) * STRIDE + 2] === GONE) {
        this.#end--;
        this.#gone--;
      }
    } else {
      this.#a[i * STRIDE + 2] = GONE;
      this.#gone++;
    }
    if (this.#head === this.#end) {
      this.#a = NONE;
      this.#head = 0;
      this.#end = 0;
      this.#gone = 0;
    } else if (this.size * 4 < this.#a.length / STRIDE && this.#a.length > MIN_ROWS * STRIDE) {
      this.#pack(new Float64Array(Math.max(MIN_ROWS, this.size * 2) * STRIDE));
    }
  }

  /** Float64 slots the array has room for (for tests: what the index keeps allocated). */
  get capacity(): number {
    return this.#a.length;
  }

  /** The held numbers from `from` to `to`, ascending, while `visit` returns true. */
  range(from: number, to: number, visit: (row: SeqRow) => boolean): void {
    const a = this.#a;
    for (let i = this.#lowerBound(from); i < this.#end && a[i * STRIDE]! <= to; i++) {
      if (a[i * STRIDE + 2] === GONE) continue;
      if (!visit(this.#row(i))) return;
    }
  }

  #row(i: number): SeqRow {
    const a = this.#a;
    const o = i * STRIDE;
    return { seq: a[o]!, at: a[o + 1]!, key: a[o + 2]!, log: a[o + 3]! };
  }

  /** Index of the live row of `seq`, or -1. Removed rows of the same number are passed over. */
  #find(seq: number): number {
    const a = this.#a;
    if (this.#end === this.#head || a[(this.#end - 1) * STRIDE]! < seq) return -1;
    for (let i = this.#lowerBound(seq); i < this.#end && a[i * STRIDE] === seq; i++)
      if (a[i * STRIDE + 2] !== GONE) return i;
    return -1;
  }

  /** Index of the first row whose seq is not below `seq`. */
  #lowerBound(seq: number): number {
    const a = this.#a;
    let lo = this.#head;
    let hi = this.#end;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (a[mid * STRIDE]! < seq) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** Room for one more row at the end: pack the live rows down, or grow. */
  #room(): void {
    const live = this.size;
    this.#pack(
      live * 2 + 1 <= this.#a.length / STRIDE
        ? this.#a
        : new Float64Array(Math.max(MIN_ROWS, live * 2) * STRIDE),
    );
  }

  /** Moves the live rows to the start of `to` (the array itself, or a new one) and makes it the array. */
  #pack(to: Float64Array): void {
    const from = this.#a;
    if (this.#gone === 0) {
      // Nothing removed in between (the usual case): one block copy.
      const n = this.#end - this.#head;
      if (to !== from || this.#head > 0) to.set(from.subarray(this.#head * STRIDE, this.#end * STRIDE));
      this.#a = to;
      this.#head = 0;
      this.#end = n;
      return;
    }
    let n = 0;
    for (let i = this.#head; i < this.#end; i++) {
      if (from[i * STRIDE + 2] === GONE) continue;
      if (n !== i || to !== from) for (let f = 0; f < STRIDE; f++) to[n * STRIDE + f] = from[i * STRIDE + f]!;
      n++;
    }
    this.#a = to;
    this.#head = 0;
    this.#end = n;
    this.#gone = 0;
  }
}
