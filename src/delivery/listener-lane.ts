/**
 * The lane between received messages and a node's `message` listeners.
 *
 * `EventEmitter` listeners run synchronously: a listener that takes 100 ms per message, given
 * a batch of 500 messages at once, would hold the event loop for 50 s, and the node would
 * answer no probe meanwhile (its members would declare it dead). The lane calls the listeners
 * in slices of at most {@link SLICE_MS}, yielding to I/O between slices, so that the node keeps
 * answering membership while its listener works through what arrived.
 *
 * The lane is bounded: once `capacity` messages wait, the node refuses new application batches
 * (503 with `Retry-After`) until the listener has worked through half of them, and the senders
 * keep those messages queued and retry. Nothing is dropped by the lane: a slow listener slows
 * its own senders' queues to it, within their bounds, and never the node's other members.
 *
 * @module
 */

/** The longest a slice of listener calls runs before the lane yields to I/O, in ms. */
export const SLICE_MS = 20;

/** What the lane needs from its node. */
export interface ListenerLaneHooks<T> {
  /** Calls the listeners with one item. */
  readonly emit: (item: T) => void;
  /** Whether anyone listens: with no listener, items are not kept. */
  readonly listening: () => boolean;
  /** The lane became full: the listener is slower than what arrives (once per episode). */
  readonly onFull?: (waiting: number) => void;
  /** Milliseconds, for slice lengths and busy time. @default performance.now */
  readonly now?: () => number;
  /** Runs `fn` after pending I/O. @default setImmediate */
  readonly yieldThen?: (fn: () => void) => void;
}

/** A bounded queue in front of the `message` listeners, drained in slices. */
export class ListenerLane<T> {
  readonly #capacity: number;
  readonly #hooks: ListenerLaneHooks<T>;
  readonly #now: () => number;
  readonly #yieldThen: (fn: () => void) => void;
  #items: T[] = [];
  #head = 0;
  #scheduled = false;
  #full = false;
  /** How many times the lane filled up: one per slow-listener episode. */
  fullEpisodes = 0;
  /** Time spent in the listeners, in ms. */
  busyMs = 0;

  /** @param capacity - most items waiting before the lane counts as full */
  constructor(capacity: number, hooks: ListenerLaneHooks<T>) {
    this.#capacity = Math.max(1, capacity);
    this.#hooks = hooks;
    this.#now = hooks.now ?? (() => performance.now());
    this.#yieldThen = hooks.yieldThen ?? ((fn) => setImmediate(fn));
  }

  /** Items waiting for the listeners. */
  get waiting(): number {
    return this.#items.length - this.#head;
  }

  /**
   * Whether the lane is full, so that the node refuses application messages for now. It stays
   * true from the moment the lane fills until it has drained to half (hysteresis), so that the
   * senders back off instead of trickling in one batch at a time.
   */
  get full(): boolean {
    return this.#full;
  }

  /** Queues an item for the listeners; they are called soon, in order. */
  push(item: T): void {
    if (!this.#hooks.listening()) return;
    this.#items.push(item);
    if (!this.#full && this.waiting >= this.#capacity) {
      this.#full = true;
      this.fullEpisodes++;
      this.#hooks.onFull?.(this.waiting);
    }
    if (!this.#scheduled) {
      this.#scheduled = true;
      // The first slice runs as soon as the current task ends, as a plain emit would.
      process.nextTick(() => this.#drain());
    }
  }

  /** What `/metrics` shows: messages waiting, seconds spent in the listeners, times it filled up. */
  stats(): { waiting: number; busySeconds: number; fullEpisodes: number } {
    return { waiting: this.waiting, busySeconds: this.busyMs / 1000, fullEpisodes: this.fullEpisodes };
  }

  /** Forgets what waits (the node is stopping). */
  clear(): void {
    this.#items = [];
    this.#head = 0;
    this.#full = false;
  }

  #drain(): void {
    const start = this.#now();
    try {
      while (this.waiting > 0) {
        const item = this.#items[this.#head] as T;
        this.#items[this.#head] = undefined as T;
        this.#head++;
        this.#hooks.emit(item);
        if (this.#now() - start >= SLICE_MS) break;
      }
    } finally {
      // A listener that throws still leaves the rest to the next slice (the throw itself goes
      // on, as an EventEmitter listener's would).
      this.busyMs += this.#now() - start;
      this.#compact();
      if (this.#full && this.waiting <= this.#capacity / 2) this.#full = false;
      if (this.waiting > 0) this.#yieldThen(() => this.#drain());
      else this.#scheduled = false;
    }
  }

  #compact(): void {
    if (this.#head === this.#items.length) {
      this.#items = [];
      this.#head = 0;
    } else if (this.#head > 1024 && this.#head * 2 > this.#items.length) {
      this.#items.splice(0, this.#head);
      this.#head = 0;
    }
  }
}
