/**
 * A bounded buffer behind each `node.messages()` iterator, and the set of a node's open ones.
 *
 * @module
 */

/**
 * A bounded FIFO that an async iterator drains. The producer never waits: when the buffer is
 * full, the *oldest* buffered item is dropped and counted in {@link Inbox.dropped}, so a slow
 * consumer sees the newest messages and never stalls the node.
 */
export class Inbox<T> implements AsyncIterableIterator<T> {
  readonly #capacity: number;
  readonly #items: T[] = [];
  #head = 0;
  // Callers may call next() again before the last call settled: each gets an item in turn.
  readonly #waiters: ((result: IteratorResult<T>) => void)[] = [];
  #ended = false;
  readonly #onEnd: () => void;
  /** How many items were dropped because the buffer was full. */
  dropped = 0;

  /**
   * @param capacity - most items buffered
   * @param onEnd - called once when the iterator ends, however it ends
   */
  constructor(capacity: number, onEnd: () => void = () => {}) {
    this.#capacity = capacity;
    this.#onEnd = onEnd;
  }

  /** How many items wait to be read. */
  get length(): number {
    return this.#items.length - this.#head;
  }

  /** Adds an item; returns `false` when an older item had to be dropped for it. */
  push(item: T): boolean {
    if (this.#ended) return true;
    const waiter = this.#waiters.shift();
    if (waiter !== undefined) {
      waiter({ value: item, done: false });
      return true;
    }
    let kept = true;
    if (this.length >= this.#capacity) {
      this.#head++;
      this.dropped++;
      kept = false;
    }
    this.#items.push(item);
    // Compact now and then, so that the array does not grow with everything ever read.
    if (this.#head > 1024 && this.#head * 2 > this.#items.length) {
      this.#items.splice(0, this.#head);
      this.#head = 0;
    }
    return kept;
  }

  /** Ends the iterator once the buffered items are read. */
  end(): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#onEnd();
    for (const waiter of this.#waiters.splice(0)) waiter({ value: undefined, done: true });
  }

  next(): Promise<IteratorResult<T>> {
    if (this.length > 0) {
      const value = this.#items[this.#head] as T;
      this.#items[this.#head] = undefined as T;
      this.#head++;
      return Promise.resolve({ value, done: false });
    }
    if (this.#ended) return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve) => {
      this.#waiters.push(resolve);
    });
  }

  return(): Promise<IteratorResult<T>> {
    this.#items.length = 0;
    this.#head = 0;
    this.end();
    return Promise.resolve({ value: undefined, done: true });
  }

  [Symbol.asyncIterator](): AsyncIterableIterator<T> {
    return this;
  }
}

/** The open iterators of one node: each gets every item; counts what they dropped. */
export class Inboxes<T> {
  readonly #open = new Set<Inbox<T>>();
  /** Items dropped by iterators that have ended. */
  #endedDrops = 0;
  readonly #onDropped: (dropped: number) => void;
  readonly #onSlow: (buffered: number) => void;

  /**
   * @param onDropped - told when an iterator that dropped items ends, with how many
   * @param onSlow - told when an iterator drops its first item (its reader is slower than what
   *   arrives), with how many it buffers: a slow consumer is reported at once, not only at its end
   */
  constructor(
    onDropped: (dropped: number) => void = () => {},
    onSlow: (buffered: number) => void = () => {},
  ) {
    this.#onDropped = onDropped;
    this.#onSlow = onSlow;
  }

  /**
   * A new iterator of up to `capacity` buffered items. It ends when `signal` aborts, on
   * {@link Inboxes.endAll}, or at once when `ended` (the node is stopping).
   */
  open(capacity: number, signal: AbortSignal | undefined, ended: boolean): Inbox<T> {
    const onAbort = (): void => inbox.end();
    const inbox: Inbox<T> = new Inbox<T>(capacity, () => {
      this.#open.delete(inbox);
      this.#endedDrops += inbox.dropped;
      signal?.removeEventListener('abort', onAbort);
      if (inbox.dropped > 0) this.#onDropped(inbox.dropped);
    });
    if (signal?.aborted || ended) {
      inbox.end();
      return inbox;
    }
    this.#open.add(inbox);
    signal?.addEventListener('abort', onAbort, { once: true });
    return inbox;
  }

  /** Gives `item` to every open iterator. */
  push(item: T): void {
    for (const inbox of this.#open) {
      if (!inbox.push(item) && inbox.dropped === 1) this.#onSlow(inbox.length);
    }
  }

  /** Ends every open iterator (each still yields what it buffered). */
  endAll(): void {
    for (const inbox of [...this.#open]) inbox.end();
    this.#open.clear();
  }

  /** Open iterators, the items buffered in them, and every item dropped so far (ended ones too). */
  stats(): { iterators: number; buffered: number; dropped: number } {
    let buffered = 0;
    let dropped = this.#endedDrops;
    for (const inbox of this.#open) {
      buffered += inbox.length;
      dropped += inbox.dropped;
    }
    return { iterators: this.#open.size, buffered, dropped };
  }
}
