/**
 * Restart without loss, the membership side: the snapshot of the members a node knows (kept in
 * its store on every member event, failed and departed members included), and rejoining them
 * when the node starts again with the same `dataDir`.
 *
 * Rejoining: the members of the snapshot (but those that left on purpose) are tried in turn (the most recently heard from first)
 * with a join (`connect()`), until one answers. A full round without an answer waits, with
 * exponential backoff (1 s doubling up to 30 s, jittered), and tries again: after a network-wide
 * outage every node keeps trying the others, and the first two that meet form the network again.
 * Once in, the members of the snapshot that are still not live members are joined one by one,
 * one every `reconnectIntervalMs`, for up to 10 minutes: nodes that found each other in separate
 * groups merge. Every timer is the clock's (unref'd on the system clock), and everything stops
 * with the run.
 *
 * @module
 */

import type { Clock, TimerHandle } from '../clock.js';
import type { Logger } from '../logger.js';
import type { Member } from '../membership/member-table.js';
import type { Membership } from '../membership/membership.js';
import { isLive } from '../membership/merge.js';
import type { Random } from '../random.js';
import type { MemberRecord, Store } from '../store/store.js';

/** First wait after a round in which no member answered. */
const FIRST_BACKOFF_MS = 1_000;
/** Longest wait between rounds. */
const MAX_BACKOFF_MS = 30_000;
/** How long members of the snapshot still missing are tried once the node is back in. */
const MERGE_WINDOW_MS = 10 * 60_000;

/** A member as the snapshot keeps it. */
export function memberRecord(m: Member, wallNow: number, clockNow: number): MemberRecord {
  return {
    id: m.peer.id,
    address: m.peer.address,
    port: m.peer.port,
    ...(m.peer.name !== undefined ? { name: m.peer.name } : {}),
    kind: m.kind,
    state: m.state,
    incarnation: m.incarnation,
    lastSeen: wallNow - Math.max(0, clockNow - m.lastSeen),
  };
}

/** What a {@link Rejoiner} needs. */
export interface RejoinDeps {
  readonly store: Store;
  readonly membership: Membership;
  readonly clock: Clock;
  readonly random: Random;
  readonly logger: Logger;
  /** This node's id (never rejoined). */
  readonly selfId: string;
  /** Joins through `member`; rejects when it does not answer or refuses. */
  readonly connect: (member: MemberRecord, signal: AbortSignal) => Promise<unknown>;
  /** Whether the node is in a network now (joined, or joined by another). */
  readonly connected: () => boolean;
  /** Time between two merge attempts. */
  readonly mergeIntervalMs: number;
  /** Aborts with the run. */
  readonly signal: AbortSignal;
}

/** Rejoins the members of the snapshot: see the module comment. */
export class Rejoiner {
  readonly #d: RejoinDeps;
  #timer: TimerHandle | undefined;
  #cancelled = false;
  readonly stats = { attempts: 0, rejoined: 0 };

  constructor(deps: RejoinDeps) {
    this.#d = deps;
    deps.signal.addEventListener('abort', () => this.#timer?.cancel(), { once: true });
  }

  /** Stops rejoining (the node left on purpose). */
  cancel(): void {
    this.#cancelled = true;
    this.#timer?.cancel();
  }

  /** Starts rejoining, when the snapshot holds any other member; returns whether it does. */
  start(): boolean {
    const known = this.#snapshot();
    if (known.length === 0) return false;
    this.#d.logger.info('rejoining the members known from the last run', { members: known.length });
    void this.#round(known, 0);
    return true;
  }

  /**
   * The snapshot's other tsp2p members, the most recently heard from first. Not the ones that
   * left on purpose: a member that said goodbye is not dialled back into the network (it
   * rejoins by itself, from its own snapshot, if it meant to come back); failed ones are kept.
   */
  #snapshot(): MemberRecord[] {
    return this.#d.store
      .members()
      .filter((m) => m.id !== this.#d.selfId && m.kind === 'tsp2p' && m.state !== 'left')
      .sort((a, b) => b.lastSeen - a.lastSeen);
  }

  async #round(known: readonly MemberRecord[], failedRounds: number): Promise<void> {
    const signal = this.#d.signal;
    for (const m of known) {
      if (signal.aborted || this.#cancelled) return;
      if (this.#d.connected()) break;
      this.stats.attempts++;
      try {
        await this.#d.connect(m, signal);
        this.stats.rejoined++;
        this.#d.logger.info('rejoined', { through: m.id });
        break;
      } catch (err) {
        this.#d.logger.debug('rejoin attempt failed', { member: m.id, err });
      }
    }
    if (signal.aborted || this.#cancelled) return;
    if (this.#d.connected()) {
      this.#merge(known, this.#d.clock.now() + MERGE_WINDOW_MS);
      return;
    }
    const cap = Math.min(MAX_BACKOFF_MS, FIRST_BACKOFF_MS * 2 ** Math.min(failedRounds, 10));
    const wait = cap / 2 + this.#d.random.next() * (cap / 2);
    this.#timer = this.#d.clock.setTimeout(() => void this.#round(known, failedRounds + 1), wait);
  }

  /** Joins, one at a time, the members of the snapshot that are still not live members. */
  #merge(known: readonly MemberRecord[], until: number): void {
    const signal = this.#d.signal;
    if (signal.aborted || this.#cancelled || this.#d.clock.now() > until) return;
    const missing = known.filter((k) => {
      const cur = this.#d.membership.get(k.id);
      return cur === undefined || !isLive(cur.state);
    });
    if (missing.length === 0) return;
    this.#timer = this.#d.clock.setTimeout(async () => {
      const m = missing[Math.floor(this.#d.random.next() * missing.length)]!;
      this.stats.attempts++;
      try {
        await this.#d.connect(m, signal);
      } catch {
        // not there (yet): another one next time
      }
      this.#merge(known, until);
    }, this.#d.mergeIntervalMs);
  }
}
