/**
 * Causal order within a topic: a publish is never delivered before the messages its sender had
 * delivered in that topic when it published (its **dependencies**), unless they cannot be had
 * within `causalWaitMs`.
 *
 * ## Sending
 *
 * For each topic the node keeps its **frontier**: the ids of the latest messages it delivered
 * in that topic that no later delivered message depends on, at most {@link CAUSAL_DEPS}. A
 * publish carries the frontier as its `deps` (covered by the origin's signature, see
 * `src/security/gossip-signature.ts`), and then becomes the whole frontier: it follows
 * everything before it. A delivered message `m` removes its own dependencies from the frontier
 * and joins it; past {@link CAUSAL_DEPS} ids the oldest leaves. The bound keeps metadata small
 * (about 70 bytes); a dependency that left the frontier is usually reached through another.
 *
 * ## Receiving
 *
 * ```
 *            all deps delivered
 *  offer ──────────────────────────────▶ delivered (late: false)
 *    │
 *    │ some missing: fetch them
 *    ▼          last missing one delivered
 *  held ───────────────────────────────▶ delivered (late: false)
 *    │   causalWaitMs passed, a missing one
 *    │   was abandoned, or the hold is full
 *    └─────────────────────────────────▶ delivered (late: true), counted as a give-up
 * ```
 *
 * A dependency counts as delivered when this module delivered it (it remembers the last
 * {@link RECENT_IDS} ids), or when the node's log knows it ({@link CausalDeps.known}) and it is
 * not held here. Delivering one message can release others, in the order they were held.
 *
 * Memory is bounded: at most `maxHeld` messages are held (default {@link DEFAULT_MAX_HELD}). A
 * message that must wait while the hold is full first pushes the oldest held one out: that one is
 * delivered at once, marked late, and counted as a give-up (and an overflow). Nothing is ever
 * dropped: each offered message is delivered exactly once (a second offer of an id held or
 * recently delivered is ignored), at the latest `waitMs` after it was offered.
 *
 * Pure: no I/O; time comes from the injected clock, with one timer for the oldest deadline.
 *
 * @module
 */

import type { Clock, TimerHandle } from '../clock.js';

/** Most dependencies a publish carries. */
export const CAUSAL_DEPS = 4;

/** The default `causalWaitMs`: how long a message waits for its dependencies. */
export const DEFAULT_CAUSAL_WAIT_MS = 5_000;

/** The default most messages held waiting for their dependencies. */
export const DEFAULT_MAX_HELD = 1_000;

/** Delivered ids remembered here (beyond what {@link CausalDeps.known} says). */
export const RECENT_IDS = 10_000;

/** Topics whose frontier is kept; past this, the least recently used one is forgotten. */
const MAX_FRONTIERS = 256;

/** What the causal layer reads of a message. */
export interface CausalMessage {
  readonly id: string;
  /** Only publishes (with a topic) are ordered; anything else passes straight through. */
  readonly topic?: string | undefined;
  /** The ids its sender had delivered in its topic (at most `MAX_DEPS` on the wire). */
  readonly deps?: readonly string[] | undefined;
}

/** The settings of a {@link CausalOrder}. */
export interface CausalSettings {
  /** How long a message waits for its dependencies, in ms. @default {@link DEFAULT_CAUSAL_WAIT_MS} */
  readonly waitMs: number;
  /** Most messages held at once. @default {@link DEFAULT_MAX_HELD} */
  readonly maxHeld: number;
}

/** What a {@link CausalOrder} is made of. */
export interface CausalDeps<M extends CausalMessage> {
  readonly clock: Clock;
  readonly settings: CausalSettings;
  /** Hands a message to the application; `late` when one of its dependencies was given up. */
  readonly deliver: (message: M, late: boolean) => void;
  /**
   * Which of `ids` the node delivered before, beyond the ids this module remembers (the log's
   * `has()`). @default none
   */
  readonly known?: (ids: readonly string[]) => ReadonlySet<string>;
  /**
   * Asks for the dependencies `ids` that `waiting` lacks (from a member that holds them). What
   * comes back is offered like any message; {@link CausalOrder.abandon} says when none will.
   */
  readonly fetch?: (ids: readonly string[], waiting: M) => void;
  /** Aborts when the node stops: the timer is cancelled and nothing is held any more. */
  readonly signal?: AbortSignal;
}

/** Counters for metrics. */
export interface CausalStats {
  /** Messages that had to wait for a dependency. */
  waits: number;
  /** Messages delivered without all their dependencies (timeout, abandoned or overflow), late. */
  giveUps: number;
  /** Of the give-ups: pushed out because the hold was full. */
  overflows: number;
}

interface Held<M> {
  readonly message: M;
  readonly missing: Set<string>;
  readonly deadline: number;
  /** A dependency was abandoned: the message will be late whatever happens next. */
  lost: boolean;
}

/** Per topic, the frontier this node delivered, and the messages waiting for theirs. */
export class CausalOrder<M extends CausalMessage> {
  readonly #d: CausalDeps<M>;
  /** Held messages by id, oldest first (so also in deadline order). */
  readonly #held = new Map<string, Held<M>>();
  /** Missing dependency id → the held messages waiting for it. */
  readonly #waiters = new Map<string, Set<string>>();
  /** Recently delivered ids, oldest first. */
  readonly #recent = new Set<string>();
  /** Ids offered in the current batch and not yet processed: not delivered yet. */
  readonly #pending = new Set<string>();
  /** Topic → its frontier, oldest id first; the map in least recently used order. */
  readonly #frontiers = new Map<string, string[]>();
  #timer: TimerHandle | undefined;
  #timerAt = Number.POSITIVE_INFINITY;
  readonly stats: CausalStats = { waits: 0, giveUps: 0, overflows: 0 };

  constructor(deps: CausalDeps<M>) {
    this.#d = deps;
    deps.signal?.addEventListener('abort', () => this.clear(), { once: true });
  }

  /** Messages held now. */
  get held(): number {
    return this.#held.size;
  }

  /** The dependencies of the next publish to `topic`: its frontier, oldest first. */
  frontier(topic: string): string[] {
    return [...(this.#frontiers.get(topic) ?? [])];
  }

  /** This node published `id` to `topic`: it follows everything before it. */
  published(topic: string, id: string): void {
    this.#remember(id);
    this.#setFrontier(topic, [id]);
  }

  /** Offers one received message: delivered now, or held until its dependencies are. */
  offer(message: M): void {
    this.offerAll([message]);
  }

  /**
   * Offers received messages in order. An id offered later in the same call does not count as
   * delivered for the earlier ones (a batch from the log may list a reply before what it
   * answers).
   */
  offerAll(messages: readonly M[]): void {
    if (this.#d.signal?.aborted === true) return;
    for (const m of messages) if (this.#ordered(m)) this.#pending.add(m.id);
    try {
      for (const m of messages) {
        this.#pending.delete(m.id);
        this.#offerOne(m);
      }
    } finally {
      this.#pending.clear();
    }
  }

  /**
   * No member will provide `ids` (a fetch found none): the messages waiting for them stop
   * waiting for them, and are delivered late once nothing else is missing.
   */
  abandon(ids: readonly string[]): void {
    const ready: Held<M>[] = [];
    for (const dep of ids) {
      const waiting = this.#waiters.get(dep);
      if (waiting === undefined) continue;
      this.#waiters.delete(dep);
      for (const hid of waiting) {
        const h = this.#held.get(hid);
        if (h === undefined) continue;
        h.missing.delete(dep);
        h.lost = true;
        if (h.missing.size === 0) ready.push(h);
      }
    }
    for (const h of ready) this.#release(h, true);
  }

  /** Forgets `topic`'s frontier (this node left it). */
  forget(topic: string): void {
    this.#frontiers.delete(topic);
  }

  /** Drops everything held (the node stops) and cancels the timer. */
  clear(): void {
    this.#timer?.cancel();
    this.#timer = undefined;
    this.#timerAt = Number.POSITIVE_INFINITY;
    this.#held.clear();
    this.#waiters.clear();
  }

  #ordered(m: M): boolean {
    return m.topic !== undefined;
  }

  #offerOne(m: M): void {
    if (!this.#ordered(m)) {
      this.#d.deliver(m, false);
      return;
    }
    if (this.#held.has(m.id) || this.#recent.has(m.id)) return;
    let missing = this.#missing(m);
    if (missing.length > 0 && this.#held.size >= this.#d.settings.maxHeld) {
      const oldest = this.#oldest() as Held<M>;
      this.stats.overflows++;
      this.#release(oldest, true);
      // What that released may have been waited for.
      missing = this.#missing(m);
    }
    if (missing.length === 0) {
      this.#deliver(m, false);
      return;
    }
    this.stats.waits++;
    const h: Held<M> = {
      message: m,
      missing: new Set(missing),
      deadline: this.#d.clock.now() + this.#d.settings.waitMs,
      lost: false,
    };
    this.#held.set(m.id, h);
    for (const dep of missing) {
      const w = this.#waiters.get(dep) ?? new Set<string>();
      w.add(m.id);
      this.#waiters.set(dep, w);
    }
    this.#arm();
    this.#d.fetch?.(missing, m);
  }

  /** The dependencies of `m` not delivered yet. */
  #missing(m: M): string[] {
    const deps = (m.deps ?? []).filter((d) => d !== m.id && !this.#recent.has(d));
    if (deps.length === 0) return [];
    const notHere = deps.filter((d) => !this.#held.has(d) && !this.#pending.has(d));
    const known = notHere.length > 0 ? (this.#d.known?.(notHere) ?? new Set<string>()) : new Set<string>();
    return deps.filter((d) => !known.has(d));
  }

  /** Takes `h` out of the hold and delivers it (late: `late` or a dependency was lost). */
  #release(h: Held<M>, late: boolean): void {
    if (!this.#held.delete(h.message.id)) return;
    for (const dep of h.missing) {
      const w = this.#waiters.get(dep);
      w?.delete(h.message.id);
      if (w?.size === 0) this.#waiters.delete(dep);
    }
    const isLate = late || h.lost;
    if (isLate) this.stats.giveUps++;
    this.#deliver(h.message, isLate);
  }

  /** Delivers `first`, then every held message it releases, in the order they were held. */
  #deliver(first: M, late: boolean): void {
    const queue: [M, boolean][] = [[first, late]];
    for (let next = queue.shift(); next !== undefined; next = queue.shift()) {
      const [m, isLate] = next;
      this.#remember(m.id);
      if (m.topic !== undefined) this.#advance(m.topic, m);
      this.#d.deliver(m, isLate);
      const waiting = this.#waiters.get(m.id);
      if (waiting === undefined) continue;
      this.#waiters.delete(m.id);
      for (const hid of waiting) {
        const h = this.#held.get(hid);
        if (h === undefined) continue;
        h.missing.delete(m.id);
        if (h.missing.size > 0) continue;
        this.#held.delete(hid);
        if (h.lost) this.stats.giveUps++;
        queue.push([h.message, h.lost]);
      }
    }
  }

  #remember(id: string): void {
    this.#recent.delete(id);
    this.#recent.add(id);
    if (this.#recent.size > RECENT_IDS) this.#recent.delete(this.#recent.values().next().value as string);
  }

  /** `m` was delivered in `topic`: it replaces its dependencies in the frontier. */
  #advance(topic: string, m: M): void {
    const deps = new Set(m.deps ?? []);
    const next = (this.#frontiers.get(topic) ?? []).filter((id) => !deps.has(id) && id !== m.id);
    next.push(m.id);
    this.#setFrontier(topic, next.slice(-CAUSAL_DEPS));
  }

  #setFrontier(topic: string, ids: string[]): void {
    this.#frontiers.delete(topic);
    this.#frontiers.set(topic, ids);
    if (this.#frontiers.size > MAX_FRONTIERS)
      this.#frontiers.delete(this.#frontiers.keys().next().value as string);
  }

  /** Keeps one timer, at the oldest held message's deadline. */
  #arm(): void {
    const oldest = this.#held.values().next().value as Held<M> | undefined;
    if (oldest === undefined) {
      this.#timer?.cancel();
      this.#timer = undefined;
      this.#timerAt = Number.POSITIVE_INFINITY;
      return;
    }
    if (this.#timer !== undefined && this.#timerAt <= oldest.deadline) return;
    this.#timer?.cancel();
    this.#timerAt = oldest.deadline;
    this.#timer = this.#d.clock.setTimeout(
      () => this.#expire(),
      Math.max(0, oldest.deadline - this.#d.clock.now()),
    );
  }

  /** Gives up every held message whose deadline passed, oldest first. */
  #expire(): void {
    this.#timer = undefined;
    this.#timerAt = Number.POSITIVE_INFINITY;
    const now = this.#d.clock.now();
    for (let h = this.#oldest(); h !== undefined && h.deadline <= now; h = this.#oldest()) {
      this.#release(h, true);
    }
    this.#arm();
  }

  #oldest(): Held<M> | undefined {
    return this.#held.values().next().value as Held<M> | undefined;
  }
}
