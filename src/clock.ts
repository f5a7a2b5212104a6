/**
 * Time, injected. Protocol code never calls `setTimeout` or `AbortSignal.timeout` itself: it asks
 * a {@link Clock}. Production uses {@link SystemClock}; tests and simulations use
 * {@link ManualClock}, which runs a minute of protocol time in milliseconds.
 *
 * A clock has two readings: `now()`, monotonic, for timers and durations; and `wallNow()`, the
 * wall clock (ms since the Unix epoch), for every timestamp on the wire and every check of one
 * (replay windows, clock skew). This is the one file of `src/` that reads the system's wall
 * clock; everything else asks {@link wallTime}.
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
  /**
   * The wall clock: milliseconds since the Unix epoch. Timestamps on the wire (`ts`) and the
   * checks of them read it. Optional for compatibility: a clock without it gives the system's
   * wall clock (see {@link wallTime}).
   */
  wallNow?(): number;
}

/** The wall-clock reading of `clock`: its `wallNow()`, or the system's wall clock when it has none. */
export function wallTime(clock: Clock): number {
  return clock.wallNow !== undefined ? clock.wallNow() : Date.now();
}

/**
 * `clock` with its wall clock moved by `offsetMs` (its timers and `now()` unchanged): one node of
 * a simulation whose clock is wrong, to exercise the clock-skew limits.
 */
export function skewedClock(clock: Clock, offsetMs: number): Clock {
  return {
    now: () => clock.now(),
    setTimeout: (fn, ms) => clock.setTimeout(fn, ms),
    timeoutSignal: (ms, message) => clock.timeoutSignal(ms, message),
    wallNow: () => wallTime(clock) + offsetMs,
  };
}

/**
 * A timer that fires this much later than asked has waited behind a blocked or starved event
 * loop (in ms).
 */
const LATE_MS = 20;

/**
 * The real clock: `performance.now()`, `Date.now()` and unref'd Node timers.
 *
 * A timer that fires late runs one turn of the event loop later (`setImmediate`): Node runs
 * expired timers before it reads the sockets, so after a stall (a busy or starved process) a
 * request's timeout would otherwise fire although its answer came in time and waits, unread, in
 * the socket. Answers first, then the timeouts of what is still unanswered: a node under load
 * does not suspect members that did answer.
 */
export class SystemClock implements Clock {
  now(): number {
    return performance.now();
  }

  wallNow(): number {
    return Date.now();
  }

  setTimeout(fn: () => void, ms: number): TimerHandle {
    const due = performance.now() + ms;
    let deferred: NodeJS.Immediate | undefined;
    const t = setTimeout(() => {
      if (performance.now() - due < LATE_MS) fn();
      else deferred = setImmediate(fn);
    }, ms);
    t.unref();
    return {
      cancel: () => {
        clearTimeout(t);
        if (deferred !== undefined) clearImmediate(deferred);
      },
    };
  }

  timeoutSignal(ms: number, message?: string): AbortSignal {
    const ac = new AbortController();
    const timer = this.setTimeout(
      () => ac.abort(new TimeoutError(message ?? `timed out after ${ms} ms`)),
      ms,
    );
    // Once aborted by someone else there is nothing left to time.
    ac.signal.addEventListener('abort', () => timer.cancel(), { once: true });
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

const NOOP = (): void => {};

/**
 * A binary min-heap of timers ordered by (deadline, creation order). A cancelled timer stays in it
 * until its deadline (or until they outnumber the live ones: then the heap is rebuilt without
 * them), holding nothing: its callback is dropped when cancelled.
 */
class TimerHeap {
  #items: ManualTimer[] = [];
  // Timers cancelled and still in #items.
  #cancelled = 0;

  get size(): number {
    return this.#items.length;
  }

  peek(): ManualTimer | undefined {
    return this.#items[0];
  }

  /** Marks `timer` cancelled, and drops its callback (and whatever that holds). */
  cancel(timer: ManualTimer): void {
    if (timer.cancelled) return;
    timer.cancelled = true;
    timer.fn = NOOP;
    this.#cancelled++;
    if (this.#cancelled > 1024 && 2 * this.#cancelled > this.#items.length) this.#rebuild();
  }

  /** Drops the cancelled timers: filtered in (deadline, creation) order, which is a valid heap. */
  #rebuild(): void {
    this.#items = this.#items.filter((t) => !t.cancelled).sort((a, b) => (before(a, b) ? -1 : 1));
    this.#cancelled = 0;
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
    if (top?.cancelled === true) this.#cancelled--;
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
    return this.#items.length - this.#cancelled;
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
  /** `wallNow()` minus `now()`: the wall clock moves with the manual one. */
  readonly #wallOffset: number;

  /**
   * @param start - the initial reading of `now()`
   * @param options - `wall`: the initial reading of `wallNow()` (default: the system's wall clock
   *   at construction, so that envelopes stamped by it pass the checks of real nodes)
   */
  constructor(start = 0, options: { readonly wall?: number } = {}) {
    this.#now = start;
    this.#wallOffset = (options.wall ?? Date.now()) - start;
  }

  now(): number {
    return this.#now;
  }

  /** The wall clock: it starts at the `wall` option and moves only with {@link ManualClock.advance}. */
  wallNow(): number {
    return this.#wallOffset + this.#now;
  }

  /** How many timers are waiting to fire. */
  get pending(): number {
    return this.#timers.countLive();
  }

  setTimeout(fn: () => void, ms: number): TimerHandle {
    const timer: ManualTimer = { at: this.#now + Math.max(0, ms), seq: this.#seq++, fn, cancelled: false };
    this.#timers.push(timer);
    return { cancel: () => this.#timers.cancel(timer) };
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
      // Fired: a later cancel() does nothing, and the callback is not held any longer.
      const fn = next.fn;
      next.cancelled = true;
      next.fn = NOOP;
      fn();
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
