/**
 * Catch-up summaries and range planning: pure, no I/O.
 *
 * A node describes each stream of its log (see `store.ts`: one origin's numbering of one
 * channel) in a few numbers:
 *
 * ```
 *   received:  1 ............ contiguous   [above ranges...]
 *   held:          floor .... contiguous   [above ranges...]
 * ```
 *
 * - `contiguous`: every number up to it was received (or settled: past retention, or before
 *   the node's window), so none of them is wanted again;
 * - `floor`: from it up to `contiguous`, every message is still held (retention removed the
 *   ones below, or they were never fetched);
 * - `above`: the numbers held above `contiguous`, as sorted, disjoint, non-adjacent inclusive
 *   ranges; the gaps between them are what the node misses. At most
 *   `STORE_LIMITS.summaryRanges` are listed: the highest are left out when there are more,
 *   which only makes the node claim less than it has (never more).
 *
 * Given the local summary and a member's, {@link planCatchUp} lists the ranges to ask that
 * member for: what it holds and this node has not received, in batches.
 *
 * @module
 */

/** An inclusive range of sequence numbers, `[from, to]`, `from <= to`. */
export type Range = readonly [from: number, to: number];

/** One stream of a log, described compactly: see the module comment. */
export interface StreamSummary {
  readonly origin: string;
  readonly epoch: string;
  readonly channel: string;
  /** Every number up to it is received or settled. */
  readonly contiguous: number;
  /** Every number from it to `contiguous` is held. */
  readonly floor: number;
  /** Numbers held above `contiguous`: sorted, disjoint, non-adjacent ranges. */
  readonly above: readonly Range[];
}

/** One request of catch-up: numbers `from` to `to` of a stream. */
export interface CatchUpRange {
  readonly origin: string;
  readonly epoch: string;
  readonly channel: string;
  readonly from: number;
  readonly to: number;
}

/** Bounds of {@link planCatchUp}. */
export interface PlanOptions {
  /** Only streams of these channels (e.g. `b` and the node's `t:` topics); all when absent. */
  readonly channels?: ReadonlySet<string>;
  /** Most numbers in one range (one request); default 1,000. */
  readonly maxBatch?: number;
  /** Most numbers planned in all; default unlimited. */
  readonly maxMessages?: number;
}

const key = (s: { origin: string; epoch: string; channel: string }): string =>
  `${s.origin}\u0000${s.epoch}\u0000${s.channel}`;

/**
 * Sorted, merged (overlapping and adjacent joined) ranges of positive integers from any list:
 * ranges that are empty, reversed, or not of safe integers are dropped. For summaries received
 * from other nodes.
 */
export function normalizeRanges(ranges: readonly Range[]): Range[] {
  const ok = ranges
    .filter(([a, b]) => Number.isSafeInteger(a) && Number.isSafeInteger(b) && a >= 1 && a <= b)
    .slice()
    .sort((x, y) => x[0] - y[0]);
  const out: [number, number][] = [];
  for (const [a, b] of ok) {
    const last = out[out.length - 1];
    if (last !== undefined && a <= last[1] + 1) last[1] = Math.max(last[1], b);
    else out.push([a, b]);
  }
  return out;
}

/** The ranges of `a` not in `b`; both sorted, disjoint. */
export function subtractRanges(a: readonly Range[], b: readonly Range[]): Range[] {
  const out: Range[] = [];
  let j = 0;
  for (const [from, to] of a) {
    let start = from;
    while (j < b.length && b[j]![1] < start) j++;
    let k = j;
    while (start <= to) {
      const r = b[k];
      if (r === undefined || r[0] > to) {
        out.push([start, to]);
        break;
      }
      if (r[0] > start) out.push([start, r[0] - 1]);
      start = Math.max(start, r[1] + 1);
      k++;
    }
  }
  return out;
}

/** How many numbers `ranges` cover. */
export function countRanges(ranges: readonly Range[]): number {
  let n = 0;
  for (const [a, b] of ranges) n += b - a + 1;
  return n;
}

/** The numbers a stream has received (or settled): `[1, contiguous]` and `above`. */
export function receivedRanges(s: StreamSummary): Range[] {
  return normalizeRanges(s.contiguous >= 1 ? [[1, s.contiguous], ...s.above] : s.above);
}

/** The numbers a stream holds: `[floor, contiguous]` and `above`. */
export function heldRanges(s: StreamSummary): Range[] {
  const floor = Math.max(1, s.floor);
  return normalizeRanges(floor <= s.contiguous ? [[floor, s.contiguous], ...s.above] : s.above);
}

/** The gaps a stream knows of: numbers above `contiguous` below its highest held one, not held. */
export function gapsOf(s: StreamSummary): Range[] {
  const above = normalizeRanges(s.above);
  const top = above[above.length - 1];
  if (top === undefined) return [];
  return subtractRanges([[s.contiguous + 1, top[1]]], above);
}

/**
 * Builds the `above` ranges from the numbers held above `contiguous`, sorted ascending; at most
 * `maxRanges` are kept, the lowest.
 */
export function rangesOf(sortedSeqs: Iterable<number>, maxRanges: number): Range[] {
  const out: [number, number][] = [];
  for (const seq of sortedSeqs) {
    const last = out[out.length - 1];
    if (last !== undefined && seq === last[1] + 1) last[1] = seq;
    else {
      if (out.length === maxRanges) break;
      out.push([seq, seq]);
    }
  }
  return out;
}

/**
 * The ranges to ask a member for, given this node's summary (`local`) and the member's
 * (`remote`): every number the member holds that this node has not received, for the channels
 * wanted, cut into ranges of at most `maxBatch`, oldest streams' numbers first within a stream.
 * Streams this node does not know are wanted whole. Deterministic: streams in `remote`'s order.
 */
export function planCatchUp(
  local: readonly StreamSummary[],
  remote: readonly StreamSummary[],
  options: PlanOptions = {},
): CatchUpRange[] {
  const maxBatch = Math.max(1, options.maxBatch ?? 1_000);
  let budget = options.maxMessages ?? Number.POSITIVE_INFINITY;
  const mine = new Map<string, StreamSummary>();
  for (const s of local) mine.set(key(s), s);
  const out: CatchUpRange[] = [];
  for (const theirs of remote) {
    if (budget <= 0) break;
    if (options.channels !== undefined && !options.channels.has(theirs.channel)) continue;
    const ours = mine.get(key(theirs));
    const wanted = subtractRanges(heldRanges(theirs), ours === undefined ? [] : receivedRanges(ours));
    for (const [from, to] of wanted) {
      for (let a = from; a <= to && budget > 0; ) {
        const b = Math.min(to, a + maxBatch - 1, a + budget - 1);
        out.push({ origin: theirs.origin, epoch: theirs.epoch, channel: theirs.channel, from: a, to: b });
        budget -= b - a + 1;
        a = b + 1;
      }
    }
  }
  return out;
}
