/**
 * Time, injected. Protocol code never calls `setTimeout` or `AbortSignal.timeout` itself: it asks
 * a {@link Clock}. Production uses {@link SystemClock}; tests and simulations use
 * {@link ManualClock}, which runs a minute of protocol time in milliseconds.
 *
 * @module
 */

import { TimeoutError } from './errors.js';

/** A timer that can be cancelled. Cancelling twice, or after it fired, does nothing. */
export interface TimerHandle {
  cancel(): void;
}

/** A source of time and timers. */
export interface Clock {
  /** Milliseconds since an arbitrary, fixed origin. */
  now(): number;
  /** Calls `fn` once after `ms` milliseconds, unless cancelled first. */
  setTimeout(fn: () => void, ms: number): TimerHandle;
  /**
   * A signal that aborts with an `ERR_TIMEOUT` {@link TimeoutError} after `ms` milliseconds.
   * The timer does not keep the process alive.
   */
  timeoutSignal(ms: number, message?: string): AbortSignal;
}

/** The real clock: `performance.now()` and unref'd Node timers. */
export class SystemClock implements Clock {
  now(): number {
    return performance.now();
  }

  setTimeout(fn: () => void, ms: number): TimerHandle {
    const t = setTimeout(fn, ms);
    t.unref();
    return { cancel: () => clearTimeout(t) };
  }

  timeoutSignal(ms: number, message?: string): AbortSignal {
    const ac = new AbortController();
    const t = setTimeout(() => ac.abort(new TimeoutError(message ?? `timed out after ${ms} ms`)), ms);
    t.unref();
    // Once aborted by someone else there is nothing left to time.
    ac.signal.addEventListener('abort', () => clearTimeout(t), { once: true });
    return ac.signal;
  }
}

/** The process-wide default clock. */
export const systemClock: Clock = new SystemClock();

interface ManualTimer {
  at: number;
  seq: number;
  fn: () => void;
  cancelled: boolean;
}

function before(a: ManualTimer, b: ManualTimer): boolean {
  return a.at < b.at || (a.at === b.at && a.seq < b.seq);
}

/** A binary min-heap of timers ordered by (deadline, creation order). */
class TimerHeap {
  readonly #items: ManualTimer[] = [];

  get size(): number {
    return this.#items.length;
  }

  peek(): ManualTimer | undefined {
    return this.#items[0];
  }

  push(timer: ManualTimer): void {
    const items = this.#items;
    items.push(timer);
    let i = items.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!before(items[i]!, items[parent]!)) break;
      [items[i], items[parent]] = [items[parent]!, items[i]!];
      i = parent;
    }
  }

  pop(): ManualTimer | undefined {
    const items = this.#items;
    const top = items[0];
    const last = items.pop();
    if (top === undefined || last === undefined || items.length === 0) return top;
    items[0] = last;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < items.length && before(items[l]!, items[m]!)) m = l;
      if (r < items.length && before(items[r]!, items[m]!)) m = r;
      if (m === i) break;
      [items[i], items[m]] = [items[m]!, items[i]!];
      i = m;
    }
    return top;
  }

  countLive(): number {
    return this.#items.filter((t) => !t.cancelled).length;
  }
}

/**
 * A clock that moves only when told to. Timers fire in deadline order (ties in creation order)
 * and pending promise callbacks are flushed between timers, so protocol code runs exactly as it
 * would in real time, only faster and deterministically.
 *
 * @example
 * ```ts
 * const clock = new ManualClock();
 * const node = new Node({ clock, transport });
 * await clock.advance(60_000); // one simulated minute
 * ```
 */
export class ManualClock implements Clock {
  #now: number;
  #seq = 0;
  readonly #timers = new TimerHeap();

  /** @param start - the initial reading of `now()` */
  constructor(start = 0) {
    this.#now = start;
  }

  now(): number {
    return this.#now;
  }

  /** How many timers are waiting to fire. */
  get pending(): number {
    return this.#timers.countLive();
  }

  setTimeout(fn: () => void, ms: number): TimerHandle {
    const timer: ManualTimer = { at: this.#now + Math.max(0, ms), seq: this.#seq++, fn, cancelled: false };
    this.#timers.push(timer);
    return {
      cancel: () => {
        timer.cancelled = true;
      },
    };
  }

  timeoutSignal(ms: number, message?: string): AbortSignal {
    const ac = new AbortController();
    const handle = this.setTimeout(
      () => ac.abort(new TimeoutError(message ?? `timed out after ${ms} ms`)),
      ms,
    );
    ac.signal.addEventListener('abort', () => handle.cancel(), { once: true });
    return ac.signal;
  }

  /**
   * Moves time forward by `ms`, firing every timer that falls due, in order, and letting the
   * promise callbacks each one starts run before the next fires.
   */
  async advance(ms: number): Promise<void> {
    const until = this.#now + ms;
    await flushMicrotasks();
    for (;;) {
      const next = this.#timers.peek();
      if (next === undefined || next.at > until) break;
      this.#timers.pop();
      if (next.cancelled) continue;
      this.#now = Math.max(this.#now, next.at);
      next.fn();
      // Timers due at the same instant run back to back; promise callbacks run after each.
      await flushMicrotasks();
    }
    this.#now = until;
    await flushMicrotasks();
  }

  /**
   * Advances in steps of `stepMs` until `predicate()` holds or `maxMs` of simulated time has
   * passed. Resolves with whether the predicate held.
   */
  async advanceUntil(predicate: () => boolean, maxMs: number, stepMs = 10): Promise<boolean> {
    const deadline = this.#now + maxMs;
    while (!predicate()) {
      if (this.#now >= deadline) return false;
      await this.advance(Math.min(stepMs, deadline - this.#now));
    }
    return true;
  }

  /**
   * Advances in steps of `stepMs` until `op` settles (fulfilled or rejected) or `maxMs` of
   * simulated time has passed. Resolves with whether it settled; `op`'s own result or rejection
   * is then read from `op` (a rejection is kept handled while the clock runs).
   */
  async advanceUntilSettled(op: Promise<unknown>, maxMs: number, stepMs = 5): Promise<boolean> {
    let settled = false;
    op.then(
      () => {
        settled = true;
      },
      () => {
        settled = true;
      },
    );
    return this.advanceUntil(() => settled, maxMs, stepMs);
  }
}

/** Lets every queued promise callback (and anything they queue in turn) run. */
export async function flushMicrotasks(): Promise<void> {
  // setImmediate runs after the whole microtask queue has drained, including chained callbacks.
  await new Promise<void>((resolve) => setImmediate(resolve));
}
