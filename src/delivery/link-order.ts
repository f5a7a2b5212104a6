/**
 * The receiving end of each sender's stream: which numbered messages of a batch are new, in
 * order, exactly once.
 *
 * A sender numbers the messages it queues to this node on a stream (new each time its queue to
 * us is built). Batches may be retried (an answer lost on the way back) and, when the sender
 * pipelines, may overtake each other. So for each sender this keeps the stream and the last
 * number delivered, and for each batch answers which of its messages are new:
 *
 * - numbers at or below the last delivered are retries: skipped;
 * - a batch whose first number is beyond the next one expected overtook its predecessor: it
 *   waits (bounded in time and count) until the predecessor is delivered, then goes on;
 * - numbers below the batch's `base` were settled by the sender (given up, never to come):
 *   they leave no gap to wait for.
 *
 * Taking a batch advances the last number at once, before the caller delivers it, so a retry
 * arriving meanwhile finds nothing new, and batches woken together are taken in order.
 *
 * @module
 */

import type { Clock, TimerHandle } from '../clock.js';

/** How long a batch that overtook its predecessor waits for it, and how many may wait. */
export interface LinkOrderLimits {
  /** Longest wait for a predecessor, in ms; then the sender is told to retry. */
  readonly gapWaitMs: number;
  /** Most batches waiting per sender; more are told to retry at once. */
  readonly maxWaiting: number;
}

/** Default limits: a predecessor has 2 s to arrive; 8 batches may wait per sender. */
export const DEFAULT_LINK_ORDER_LIMITS: LinkOrderLimits = Object.freeze({ gapWaitMs: 2_000, maxWaiting: 8 });

interface Waiter {
  readonly seq: number;
  readonly count: number;
  readonly resolve: (first: number | undefined) => void;
  readonly timer: TimerHandle;
}

interface Link {
  readonly stream: string;
  last: number;
  readonly waiting: Waiter[];
  /** The sender's streams before this one, newest last: a late batch of one is refused. */
  readonly retired: readonly string[];
}

/** How many ended streams are remembered per sender. */
const RETIRED_STREAMS = 4;

/** What {@link LinkOrder.take} says of a batch of a stream the sender has replaced. */
export const STREAM_ENDED = 'ended';

/** Per sender: its stream, the last number delivered from it, and the batches waiting. */
export class LinkOrder {
  readonly #clock: Clock;
  readonly #limits: LinkOrderLimits;
  readonly #links = new Map<string, Link>();

  constructor(clock: Clock, limits: LinkOrderLimits = DEFAULT_LINK_ORDER_LIMITS) {
    this.#clock = clock;
    this.#limits = limits;
  }

  /** Senders remembered. */
  get size(): number {
    return this.#links.size;
  }

  /**
   * Takes a batch of `count` messages numbered from `seq` on `sender`'s `stream`. Returns the
   * index of its first new message (`count` when none is new), which the caller then delivers
   * with the ones after it, in order, right away. Returns a promise instead when the batch
   * overtook its predecessor: it resolves the same way once the predecessor is delivered, or
   * with `undefined` when it did not come in time (the sender should retry). Also a promise
   * (already resolved) when its `base` let waiting batches through: they are delivered first.
   *
   * Returns {@link STREAM_ENDED} for a batch of a stream the sender has since replaced.
   *
   * @param base - every number below it is settled by the sender; `undefined` (an older sender,
   *   one batch at a time) means "nothing before this batch will come"
   */
  take(
    sender: string,
    stream: string,
    seq: number,
    count: number,
    base: number | undefined,
  ): number | typeof STREAM_ENDED | Promise<number | undefined> {
    const floor = Math.min(base ?? seq, seq);
    let woke = false;
    let link = this.#links.get(sender);
    // A batch of a stream the sender replaced came late (its queue was closed): taking it would
    // switch back to that stream, and then the current one would start over, delivering twice.
    if (link?.retired.includes(stream)) return STREAM_ENDED;
    if (link === undefined || link.stream !== stream) {
      // A new stream (the sender started again, or rebuilt its queue to us): numbers from its
      // base on are new. Batches of the old stream that still wait will never be completed.
      if (link !== undefined) this.#release(link);
      const retired = link === undefined ? [] : [...link.retired, link.stream].slice(-RETIRED_STREAMS);
      link = { stream, last: floor - 1, waiting: [], retired };
      this.#links.set(sender, link);
    } else if (floor - 1 > link.last) {
      link.last = floor - 1; // the sender gave those up
      woke = this.#wakeReady(link);
    }
    if (seq <= link.last + 1) {
      const first = this.#advance(link, seq, count);
      // Batches woken just now deliver when their callers resume, before this one's caller.
      return woke ? Promise.resolve(first) : first;
    }
    if (link.waiting.length >= this.#limits.maxWaiting) return Promise.resolve(undefined);
    const waiting = link.waiting;
    return new Promise((resolve) => {
      const timer = this.#clock.setTimeout(() => {
        const i = waiting.indexOf(waiter);
        if (i >= 0) waiting.splice(i, 1);
        resolve(undefined);
      }, this.#limits.gapWaitMs);
      const waiter: Waiter = { seq, count, resolve, timer };
      waiting.push(waiter);
    });
  }

  /** Forgets `sender` (it left or died); its waiting batches are told to retry. */
  forget(sender: string): void {
    const link = this.#links.get(sender);
    if (link === undefined) return;
    this.#release(link);
    this.#links.delete(sender);
  }

  /** Forgets every sender. */
  clear(): void {
    for (const link of this.#links.values()) this.#release(link);
    this.#links.clear();
  }

  #advance(link: Link, seq: number, count: number): number {
    const first = this.#reserve(link, seq, count);
    if (link.waiting.length > 0) this.#wakeReady(link);
    return first;
  }

  /** Marks a batch's numbers delivered; returns the index of its first new message. */
  #reserve(link: Link, seq: number, count: number): number {
    const first = Math.min(count, Math.max(0, link.last + 1 - seq));
    link.last = Math.max(link.last, seq + count - 1);
    return first;
  }

  /**
   * Takes, in number order, every waiting batch whose predecessor is now delivered; returns
   * whether it took any.
   */
  #wakeReady(link: Link): boolean {
    let woke = false;
    for (;;) {
      let next: Waiter | undefined;
      for (const w of link.waiting)
        if (w.seq <= link.last + 1 && (next === undefined || w.seq < next.seq)) next = w;
      if (next === undefined) return woke;
      link.waiting.splice(link.waiting.indexOf(next), 1);
      next.timer.cancel();
      next.resolve(this.#reserve(link, next.seq, next.count));
      woke = true;
    }
  }

  #release(link: Link): void {
    for (const w of link.waiting.splice(0)) {
      w.timer.cancel();
      w.resolve(undefined);
    }
  }
}
