/**
 * Plumtree broadcast (Leitão, Pereira, Rodrigues: "Epidemic Broadcast Trees", SRDS 2007), as a
 * pure protocol state machine: no I/O, time from an injected {@link Clock}, choices from an
 * injected {@link Random}. Its methods return {@link PlumtreeAction}s for the node to carry out;
 * what timers produce later (IHAVE flushes, GRAFTs for missing messages) goes to the `sink`.
 *
 * Each node keeps a small view of peers split in two sets:
 * - **eager** peers get every new message in full (they form a spanning tree in steady state);
 * - **lazy** peers get only its id, in batched IHAVE announcements.
 *
 * A duplicate means the tree has a cycle: the receiver moves the sender to lazy and tells it so
 * (PRUNE), so both ends drop the edge. Unlike the paper, only after `pruneAfterDuplicates` (4)
 * duplicates in a row from that sender: with broadcasts from several origins at once, the paper's
 * rule has different nodes prune different links of one cycle at once (each link looked redundant
 * for the message that came second on it), and whole branches fell off the tree and waited for
 * GRAFTs (a median delivery of 1.6 s with 10-100 ms links); a link that brings some origin's
 * messages first is now kept. A lazy peer that pushes a new message had not read this node's
 * PRUNE yet: it is sent an empty GRAFT, so the link is eager at both ends again. An IHAVE for a message that does not arrive within
 * `graftTimeoutMs` means the tree is broken: the receiver asks the announcer for it (GRAFT), which
 * also turns that link eager again, repairing the tree. A GRAFT is answered from a bounded cache of
 * recent messages.
 *
 * The view starts as a random `fanout`-sized subset of the members, all eager. Once it has not
 * changed for `greetDelayMs`, each peer taken into it is sent a GRAFT without ids ("push to me"),
 * so that links are eager at both ends (receiving a message also makes its sender eager). The
 * first broadcasts flood these links; the duplicates then prune every link but a spanning tree.
 * A pruned link stays lazy at both ends, so a node announces each message to about
 * `2 × fanout` peers (its view, and the peers whose view it is in) less its tree links.
 *
 * Missing-message timers are jittered (up to half again `graftTimeoutMs`): when a tree link
 * breaks, every node behind it hears of the next message at about the same time, and the first
 * GRAFT usually brings the message to the others before their own GRAFTs are due.
 *
 * @module
 */

import type { TimerHandle } from '../clock.js';
import { NumberedSet } from '../store/member-numbers.js';
import {
  type MessageRef,
  PLUMTREE_DEFAULTS,
  type PlumtreeAction,
  type PlumtreeLimits,
  type PlumtreeOptions,
  type Received,
} from './plumtree-types.js';

export {
  type MessageRef,
  PLUMTREE_DEFAULTS,
  type PlumtreeAction,
  type PlumtreeLimits,
  type PlumtreeOptions,
  type Received,
} from './plumtree-types.js';

interface Missing {
  readonly ref: MessageRef;
  /** Peers that announced it, in order, not yet asked. */
  readonly announcers: string[];
  /** The last peer asked. */
  last: string | undefined;
  grafts: number;
  timer: TimerHandle | undefined;
}

interface Cached<T> {
  readonly message: T;
  readonly bytes: number;
  readonly at: number;
}

/** The key of a message reference in maps. */
function keyOf(ref: MessageRef): string {
  return `${ref.origin}/${ref.id}`;
}

/**
 * The Plumtree state of one node: its peers (eager, lazy), the messages it has seen and caches,
 * those it waits for, and the ids it has yet to announce. `T` is the node's representation of a
 * message (kept in the cache and handed back in `push` actions).
 */
export class Plumtree<T> {
  readonly #o: PlumtreeOptions<T>;
  readonly #l: PlumtreeLimits;
  /**
   * Every peer that may take part (live tsp2p members): flags at the process's member numbers
   * (a simulation holds one entry per member per node, N²), no index for random picks: a pick (a
   * view member gone) walks it, as the filter of the candidates did anyway.
   */
  readonly #members = new NumberedSet();
  /** Members ever added, for the uniform choice of the initial view (reservoir sampling). */
  #added = 0;
  readonly #eager = new Set<string>();
  readonly #lazy = new Set<string>();
  /** Per eager peer: duplicates it sent in a row (see `pruneAfterDuplicates`). */
  readonly #duplicates = new Map<string, number>();
  readonly #seen = new Map<string, number>();
  readonly #cache = new Map<string, Cached<T>>();
  #cacheBytes = 0;
  readonly #missing = new Map<string, Missing>();
  readonly #ihave = new Map<string, MessageRef[]>();
  #flushTimer: TimerHandle | undefined;
  /** Peers taken into the view and not yet sent their empty GRAFT. */
  readonly #toGreet = new Set<string>();
  #greetTimer: TimerHandle | undefined;
  #closed = false;

  constructor(options: PlumtreeOptions<T>) {
    this.#o = options;
    this.#l = { ...PLUMTREE_DEFAULTS, ...options.limits };
  }

  /** The peers messages are pushed to in full. */
  get eager(): ReadonlySet<string> {
    return this.#eager;
  }

  /** The peers messages are announced to. */
  get lazy(): ReadonlySet<string> {
    return this.#lazy;
  }

  /** Messages held to answer GRAFTs, and their bytes. */
  get cached(): { readonly messages: number; readonly bytes: number } {
    this.#expireCache(this.#o.clock.now());
    return { messages: this.#cache.size, bytes: this.#cacheBytes };
  }

  /** How many announced messages are waited for. */
  get missing(): number {
    return this.#missing.size;
  }

  /**
   * A new member that may take part. The view holds a uniformly random `fanout`-sized subset of
   * the members (reservoir sampling over the joins), eager; nothing is sent.
   */
  addPeer(id: string): void {
    if (this.#closed || this.#members.has(id)) return;
    this.#members.add(id);
    this.#added++;
    const target = this.#o.fanout(this.#members.size);
    if (this.#eager.size + this.#lazy.size < target) {
      this.#addToView(id);
      return;
    }
    if (this.#o.random.next() * this.#added < target) {
      // Take the place of a random eager peer (a lazy one if there is none). The peer dropped may
      // still push to this node: receiving from it makes it eager again.
      const pool = this.#eager.size > 0 ? [...this.#eager] : [...this.#lazy];
      const out = pool[Math.floor(this.#o.random.next() * pool.length)];
      if (out !== undefined) {
        this.#eager.delete(out);
        this.#lazy.delete(out);
        this.#toGreet.delete(out);
      }
      this.#addToView(id);
    }
  }

  /** Forgets every member (this node left the network): the view starts empty on a rejoin. */
  removeAll(): void {
    for (const id of [...this.#members]) this.removePeer(id);
    // Nobody is left to ask for a missing message, or to announce one to.
    for (const m of this.#missing.values()) m.timer?.cancel();
    this.#missing.clear();
    this.#ihave.clear();
  }

  /**
   * A member that left or was declared dead: dropped from both sets and from the announcers
   * of missing messages. When the view falls below `fanout`, a random other member replaces it
   * (eager).
   */
  removePeer(id: string): void {
    if (!this.#members.delete(id)) return;
    this.#toGreet.delete(id);
    this.#duplicates.delete(id);
    const wasInView = this.#eager.delete(id) || this.#lazy.delete(id);
    this.#ihave.delete(id);
    for (const m of this.#missing.values()) {
      const i = m.announcers.indexOf(id);
      if (i >= 0) m.announcers.splice(i, 1);
    }
    if (!wasInView || this.#closed) return;
    const target = this.#o.fanout(this.#members.size);
    if (this.#eager.size + this.#lazy.size >= target) return;
    const candidates: string[] = [];
    for (const p of this.#members) if (!this.#eager.has(p) && !this.#lazy.has(p)) candidates.push(p);
    const pick = candidates[Math.floor(this.#o.random.next() * candidates.length)];
    if (pick !== undefined) this.#addToView(pick);
  }

  /** Whether the message was received (or written) here within the remembered window. */
  has(ref: MessageRef): boolean {
    return this.#isSeen(ref, this.#o.clock.now());
  }

  /** Whether `id` is a member this state knows. */
  hasPeer(id: string): boolean {
    return this.#members.has(id);
  }

  /**
   * A message this node writes: remembered and cached, pushed to every eager peer, announced to
   * every lazy one. With no eager peer left, a random lazy one is made eager first.
   */
  broadcast(ref: MessageRef, message: T): PlumtreeAction<T>[] {
    const now = this.#o.clock.now();
    this.#remember(ref, now);
    this.#store(ref, message, now);
    const actions: PlumtreeAction<T>[] = [];
    if (this.#eager.size === 0 && this.#lazy.size > 0) {
      const lazy = [...this.#lazy];
      const pick = lazy[Math.floor(this.#o.random.next() * lazy.length)]!;
      this.#lazy.delete(pick);
      this.#eager.add(pick);
    }
    this.#spread(ref, message, undefined, actions);
    return actions;
  }

  /**
   * A message received in full from `from`. New: remembered, cached, no longer missing; `from`
   * becomes eager; the message goes on in full to the other eager peers (its origin excepted)
   * and as an id to the lazy ones. A duplicate: `from` becomes lazy and is sent a PRUNE.
   */
  receive(from: string, ref: MessageRef, message: T): Received<T> {
    const now = this.#o.clock.now();
    const actions: PlumtreeAction<T>[] = [];
    if (this.#isSeen(ref, now)) {
      const streak = (this.#duplicates.get(from) ?? 0) + 1;
      if (this.#eager.has(from) && streak < this.#l.pruneAfterDuplicates) {
        this.#duplicates.set(from, streak);
        return { fresh: false, actions };
      }
      this.#duplicates.delete(from);
      // Lazy at both ends: the PRUNE makes this node lazy at the sender's. Sent even when the
      // sender is lazy here already: it pushed, so it holds this node as eager.
      this.#eager.delete(from);
      if (this.#members.has(from)) this.#addLazy(from);
      actions.push({ kind: 'prune', to: from });
      return { fresh: false, actions };
    }
    this.#remember(ref, now);
    this.#store(ref, message, now);
    const key = keyOf(ref);
    const missing = this.#missing.get(key);
    if (missing !== undefined) {
      missing.timer?.cancel();
      this.#missing.delete(key);
    }
    this.#duplicates.delete(from);
    if (this.#members.has(from)) {
      // A lazy peer that pushed had not yet read this node's PRUNE (or sent its own while this
      // node pushed to it): once it has, it holds this node lazy. An empty GRAFT makes the link
      // eager at both ends again; otherwise this node would count on a link the other end no
      // longer pushes on, and could fall off the tree.
      if (this.#lazy.delete(from)) actions.push({ kind: 'graft', to: from, refs: [] });
      this.#eager.add(from);
    }
    this.#spread(ref, message, from, actions);
    return { fresh: true, actions };
  }

  /**
   * An IHAVE from `from`: each id not seen here is waited for; `graftTimeoutMs` after the first
   * announcement, if it still has not arrived, it is grafted from its first announcer, then
   * from the next one after each `graftRetryMs`.
   */
  ihave(from: string, refs: readonly MessageRef[]): void {
    const now = this.#o.clock.now();
    for (const ref of refs) {
      if (this.#isSeen(ref, now)) continue;
      const key = keyOf(ref);
      let m = this.#missing.get(key);
      if (m === undefined) {
        if (this.#missing.size >= this.#l.maxMissing) continue;
        m = { ref, announcers: [], last: undefined, grafts: 0, timer: undefined };
        this.#missing.set(key, m);
        const entry = m;
        // Jittered up to half again: the nodes that miss a message all heard of it about the
        // same time, and the first GRAFT usually brings it to the others before theirs are due
        // (each GRAFT adds a link, and extra links make cycles for duplicates to prune).
        const wait = this.#l.graftTimeoutMs * (1 + this.#o.random.next() / 2);
        m.timer = this.#o.clock.setTimeout(() => this.#graftDue(entry), wait);
      }
      if (m.last !== from && !m.announcers.includes(from)) m.announcers.push(from);
    }
  }

  /**
   * A GRAFT from `from`: it becomes eager, and each message asked for that is still cached is
   * pushed to it.
   */
  graft(from: string, refs: readonly MessageRef[]): PlumtreeAction<T>[] {
    if (!this.#members.has(from)) return [];
    this.#lazy.delete(from);
    this.#eager.add(from);
    const now = this.#o.clock.now();
    this.#expireCache(now);
    const actions: PlumtreeAction<T>[] = [];
    for (const ref of refs) {
      const hit = this.#cache.get(keyOf(ref));
      if (hit !== undefined) actions.push({ kind: 'push', to: [from], ref, message: hit.message });
    }
    return actions;
  }

  /** A PRUNE from `from`: it becomes lazy. */
  prune(from: string): void {
    this.#duplicates.delete(from);
    if (this.#eager.delete(from)) this.#addLazy(from);
  }

  /**
   * An empty GRAFT for every eager peer ("push to me"): for a node that starts to use the tree
   * after its view was formed (its greetings were held back until then).
   */
  greetAll(): PlumtreeAction<T>[] {
    this.#toGreet.clear();
    return [...this.#eager].map((to) => ({ kind: 'graft', to, refs: [] }));
  }

  /** The ids waiting to be announced to `peer`, taken out of the queue (to piggyback them). */
  takeIHave(peer: string): MessageRef[] {
    const refs = this.#ihave.get(peer) ?? [];
    this.#ihave.delete(peer);
    return refs;
  }

  /** Announces every queued id now. */
  flush(): PlumtreeAction<T>[] {
    this.#flushTimer?.cancel();
    this.#flushTimer = undefined;
    const actions: PlumtreeAction<T>[] = [];
    for (const [to, refs] of this.#ihave) actions.push({ kind: 'ihave', to, refs });
    this.#ihave.clear();
    return actions;
  }

  /** Cancels every timer and forgets every queued announcement; nothing is sent any more. */
  close(): void {
    this.#closed = true;
    this.#flushTimer?.cancel();
    this.#flushTimer = undefined;
    this.#greetTimer?.cancel();
    this.#greetTimer = undefined;
    this.#toGreet.clear();
    for (const m of this.#missing.values()) m.timer?.cancel();
    this.#missing.clear();
    this.#ihave.clear();
    // The member numbers go back to the process (a simulation stops and starts many nodes).
    this.#members.clear();
  }

  // ---- internals ----------------------------------------------------------------------------

  /** Takes a member into the view, eager, and greets it once the view has settled. */
  #addToView(id: string): void {
    this.#lazy.delete(id);
    this.#eager.add(id);
    this.#toGreet.add(id);
    this.#greetTimer?.cancel();
    this.#greetTimer = this.#o.clock.setTimeout(() => {
      this.#greetTimer = undefined;
      const actions: PlumtreeAction<T>[] = [];
      for (const p of this.#toGreet) {
        if (this.#eager.has(p)) actions.push({ kind: 'graft', to: p, refs: [] });
      }
      this.#toGreet.clear();
      if (actions.length > 0) this.#o.sink(actions);
    }, this.#l.greetDelayMs);
  }

  /**
   * Makes `id` lazy. The lazy set is not capped: a PRUNE makes a link lazy at both ends, so each
   * node is announced to by the peers it announces to, and an orphan of the tree always has
   * someone to graft from. Its size is about the links of the first floods less the tree's.
   */
  #addLazy(id: string): void {
    this.#lazy.add(id);
  }

  /** Pushes to the eager peers but `from` and the origin; queues the id for the lazy ones. */
  #spread(ref: MessageRef, message: T, from: string | undefined, actions: PlumtreeAction<T>[]): void {
    const to = [...this.#eager].filter((p) => p !== from && p !== ref.origin);
    if (to.length > 0) actions.push({ kind: 'push', to, ref, message });
    for (const peer of to) {
      // Pending announcements ride along with the push.
      const refs = this.takeIHave(peer);
      if (refs.length > 0) actions.push({ kind: 'ihave', to: peer, refs });
    }
    for (const peer of this.#lazy) {
      if (peer === from || peer === ref.origin) continue;
      let refs = this.#ihave.get(peer);
      if (refs === undefined) {
        refs = [];
        this.#ihave.set(peer, refs);
      }
      refs.push(ref);
      if (refs.length >= this.#l.maxIHaveIds) {
        this.#ihave.delete(peer);
        actions.push({ kind: 'ihave', to: peer, refs });
      }
    }
    if (this.#ihave.size > 0 && this.#flushTimer === undefined && !this.#closed) {
      this.#flushTimer = this.#o.clock.setTimeout(() => {
        this.#flushTimer = undefined;
        const due = this.flush();
        if (due.length > 0) this.#o.sink(due);
      }, this.#l.ihaveFlushMs);
    }
  }

  #graftDue(m: Missing): void {
    m.timer = undefined;
    if (this.#closed || this.#missing.get(keyOf(m.ref)) !== m) return;
    // The next announcer still a member; with none left, the last one again (its answer may
    // have been lost).
    let to = m.announcers.shift();
    while (to !== undefined && !this.#members.has(to)) to = m.announcers.shift();
    if (to === undefined && m.last !== undefined && this.#members.has(m.last)) to = m.last;
    if (to === undefined || m.grafts >= this.#l.maxGrafts) {
      this.#missing.delete(keyOf(m.ref));
      return;
    }
    m.last = to;
    m.grafts++;
    this.#lazy.delete(to);
    this.#eager.add(to);
    m.timer = this.#o.clock.setTimeout(() => this.#graftDue(m), this.#l.graftRetryMs);
    this.#o.sink([{ kind: 'graft', to, refs: [m.ref] }]);
  }

  #isSeen(ref: MessageRef, now: number): boolean {
    const at = this.#seen.get(keyOf(ref));
    return at !== undefined && now - at < this.#l.seenWindowMs;
  }

  #remember(ref: MessageRef, now: number): void {
    for (const [key, at] of this.#seen) {
      if (now - at < this.#l.seenWindowMs && this.#seen.size < this.#l.seenCapacity) break;
      this.#seen.delete(key);
    }
    this.#seen.set(keyOf(ref), now);
  }

  #store(ref: MessageRef, message: T, now: number): void {
    const bytes = this.#o.sizeOf(message);
    const key = keyOf(ref);
    if (bytes > this.#l.cacheBytes || this.#cache.has(key)) return;
    this.#cache.set(key, { message, bytes, at: now });
    this.#cacheBytes += bytes;
    this.#expireCache(now);
  }

  /** Drops cached messages past the window, then the oldest beyond the count and byte bounds. */
  #expireCache(now: number): void {
    for (const [key, c] of this.#cache) {
      const over = this.#cache.size > this.#l.cacheMessages || this.#cacheBytes > this.#l.cacheBytes;
      if (!over && now - c.at < this.#l.cacheWindowMs) break;
      this.#cache.delete(key);
      this.#cacheBytes -= c.bytes;
    }
  }
}
