/**
 * The failure detector and the anti-entropy loops (SWIM with Lifeguard's refinements):
 *
 * - **probe**: each period, ping the next member of a shuffled round-robin list. No answer
 *   within the probe timeout: ask `k` other members to ping it (ping-req). Still nothing by
 *   the end of the period: suspect it. {@link Membership} turns an unrefuted suspicion into a
 *   death.
 * - **local health** (Lifeguard): a probe that fails while the helpers did not even answer
 *   suggests that this node is the slow one; each such failure stretches this node's probe
 *   period and timeouts by one more unit, each success shrinks them again.
 * - **gossip**: queued membership updates go to a few random members every gossip period,
 *   and to recently dead members too, so that a wrongly declared node learns of it and refutes.
 *   With nothing queued there is no round and no timer: news wakes the loop (within a random
 *   part of a period, the delay a free-running loop would have had), an empty queue ends it.
 * - **push-pull**: a full state exchange with one random member now and then repairs whatever
 *   gossip missed (concurrent joins through different entry points converge this way).
 * - **reconnect**: a dead member is tried again now and then; when a partition heals, this is
 *   how the two halves find each other.
 *
 * Every loop schedules its next run only after the last one finished, so runs never overlap.
 *
 * @module
 */

import { setMaxListeners } from 'node:events';
import type { Clock, TimerHandle } from '../clock.js';
import type { Logger } from '../logger.js';
import { type Random, shuffle } from '../random.js';
import type { Member } from './member-table.js';
import type { Membership } from './membership.js';
import { isLive } from './merge.js';
import { type MembershipTimings, pushPullInterval } from './timings.js';

/** A ping-req's outcome: the relay reached the target, did not, or did not answer at all. */
export type IndirectResult = 'ack' | 'nack' | 'none';

/** The network operations the detector needs; the node implements them over its transport. */
export interface ProbeNet {
  /** Pings a member directly; resolves `true` on an answer within `timeoutMs`. Never rejects. */
  ping(member: Member, timeoutMs: number, signal: AbortSignal): Promise<boolean>;
  /** Asks `via` to ping `target`. Never rejects. */
  pingReq(via: Member, target: Member, timeoutMs: number, signal: AbortSignal): Promise<IndirectResult>;
  /** A push-pull state exchange; resolves `true` when it completed. Never rejects. */
  sync(member: Member, timeoutMs: number, signal: AbortSignal): Promise<boolean>;
  /** Sends queued updates to a member. Never rejects. */
  gossip(member: Member, timeoutMs: number, signal: AbortSignal): Promise<boolean>;
}

/** What the detector needs. */
export interface FailureDetectorOptions {
  readonly membership: Membership;
  readonly net: ProbeNet;
  readonly clock: Clock;
  readonly random: Random;
  readonly timings: MembershipTimings;
  readonly logger: Logger;
}

/** Runs the probe, gossip, push-pull and reconnect loops while started. */
export class FailureDetector {
  readonly #o: FailureDetectorOptions;
  #ac: AbortController | undefined;
  readonly #timers = new Set<TimerHandle>();
  #order: string[] = [];
  #next = 0;
  #awareness = 0;
  /** The next gossip round's timer, while one is due; whether a round is under way. */
  #gossipTimer: TimerHandle | undefined;
  #gossiping = false;
  #unwatch: (() => void) | undefined;
  /** Probes sent, and how many failed into a suspicion (for metrics). */
  readonly stats = { probes: 0, indirectProbes: 0, suspicions: 0, syncs: 0, gossips: 0 };

  constructor(options: FailureDetectorOptions) {
    this.#o = options;
  }

  /** Lifeguard's local health score: 0 is healthy; each unit stretches periods and timeouts. */
  get awareness(): number {
    return this.#awareness;
  }

  /** Starts every loop. Idempotent. */
  start(): void {
    if (this.#ac !== undefined) return;
    this.#ac = new AbortController();
    // Every probe, gossip and sync in flight listens to it.
    setMaxListeners(0, this.#ac.signal);
    const t = this.#o.timings;
    // Spread the first runs, so that nodes started together do not move in lock-step.
    this.#loop(
      () => this.#scaled(t.probeIntervalMs),
      () => this.#probe(),
      this.#jitter(t.probeIntervalMs),
    );
    this.#unwatch = this.#o.membership.watchNews(() => this.#newsQueued());
    this.#newsQueued();
    this.#loop(
      () => pushPullInterval(t, this.#o.membership.liveCount + 1),
      () => this.#pushPull(),
      this.#jitter(t.pushPullIntervalMs),
    );
    this.#loop(
      () => t.reconnectIntervalMs,
      () => this.#reconnect(),
      this.#jitter(t.reconnectIntervalMs),
    );
  }

  /** Stops every loop; runs in progress are aborted. Idempotent. */
  stop(): void {
    this.#ac?.abort();
    this.#ac = undefined;
    this.#unwatch?.();
    this.#unwatch = undefined;
    for (const t of this.#timers) t.cancel();
    this.#timers.clear();
    this.#gossipTimer = undefined;
  }

  /** Runs one gossip round now (after a join or leave, so news travels at once). */
  gossipNow(): void {
    const ac = this.#ac;
    if (ac !== undefined) void this.#gossip();
  }

  /** News waits: a gossip round is due within a period, unless one is already due or under way. */
  #newsQueued(): void {
    if (this.#ac === undefined || this.#gossipTimer !== undefined || this.#gossiping) return;
    if (!this.#o.membership.hasGossip) return;
    this.#scheduleGossip(this.#jitter(this.#o.timings.gossipIntervalMs));
  }

  #scheduleGossip(delay: number): void {
    const ac = this.#ac;
    if (ac === undefined) return;
    const handle = this.#o.clock.setTimeout(() => {
      this.#timers.delete(handle);
      this.#gossipTimer = undefined;
      if (ac.signal.aborted) return;
      this.#gossiping = true;
      this.#gossip()
        .catch((err: unknown) => this.#o.logger.error('membership loop failed', { err }))
        .finally(() => {
          this.#gossiping = false;
          // News left: the next round a period later. None: the loop sleeps until news comes.
          if (this.#ac !== undefined && this.#gossipTimer === undefined && this.#o.membership.hasGossip) {
            this.#scheduleGossip(this.#o.timings.gossipIntervalMs);
          }
        });
    }, delay);
    this.#gossipTimer = handle;
    this.#timers.add(handle);
  }

  #jitter(ms: number): number {
    return Math.floor(this.#o.random.next() * ms);
  }

  #scaled(ms: number): number {
    return ms * (1 + this.#awareness);
  }

  #loop(period: () => number, run: () => Promise<void>, first: number): void {
    const ac = this.#ac;
    if (ac === undefined) return;
    const schedule = (delay: number): void => {
      const handle = this.#o.clock.setTimeout(() => {
        this.#timers.delete(handle);
        if (ac.signal.aborted) return;
        run()
          .catch((err: unknown) => this.#o.logger.error('membership loop failed', { err }))
          .finally(() => {
            if (!ac.signal.aborted) schedule(period());
          });
      }, delay);
      this.#timers.add(handle);
    };
    schedule(first);
  }

  /**
   * Probes the member `id` next, before the rest of the round: a newcomer claims its address,
   * and whether it still answers decides who holds it.
   */
  probeSoon(id: string): void {
    const at = this.#order.indexOf(id, this.#next);
    if (at >= this.#next && at < this.#next + 4) return;
    this.#order.splice(this.#next, 0, id);
  }

  #nextTarget(): Member | undefined {
    const m = this.#o.membership;
    for (let tries = 0; tries < 2; tries++) {
      while (this.#next < this.#order.length) {
        const id = this.#order[this.#next++]!;
        const member = m.get(id);
        if (member !== undefined && isLive(member.state)) return member;
      }
      // A full round done: reshuffle the current members for the next one.
      this.#order = shuffle(
        m.live().map((x) => x.peer.id),
        this.#o.random,
      );
      this.#next = 0;
    }
    return undefined;
  }

  async #probe(): Promise<void> {
    const signal = this.#ac?.signal;
    if (signal === undefined) return;
    const target = this.#nextTarget();
    if (target === undefined) return;
    const t = this.#o.timings;
    this.stats.probes++;
    const timeout = this.#scaled(t.probeTimeoutMs);
    if (await this.#o.net.ping(target, timeout, signal)) {
      this.#awareness = Math.max(0, this.#awareness - 1);
      this.#o.membership.touch(target.peer.id);
      return;
    }
    if (signal.aborted) return;
    const current = this.#o.membership.get(target.peer.id);
    if (current === undefined || !isLive(current.state)) return;
    const helpers = shuffle(
      this.#o.membership.live().filter((m) => m.peer.id !== target.peer.id && m.kind === 'tsp2p'),
      this.#o.random,
    ).slice(0, t.indirectProbes);
    let acked = false;
    let nacks = 0;
    if (helpers.length > 0) {
      this.stats.indirectProbes += helpers.length;
      // A helper pings with its own probe timeout; give it that, twice, before giving up.
      const indirectTimeout = this.#scaled(
        Math.max(t.probeIntervalMs - t.probeTimeoutMs, 2 * t.probeTimeoutMs),
      );
      const results = await Promise.all(
        helpers.map((h) => this.#o.net.pingReq(h, target, indirectTimeout, signal)),
      );
      acked = results.includes('ack');
      nacks = results.filter((r) => r === 'nack').length;
    }
    if (signal.aborted || acked) return;
    // Helpers that did not even answer point at this node's own trouble (Lifeguard).
    if (helpers.length === 0 || nacks < helpers.length) {
      this.#awareness = Math.min(t.maxAwareness, this.#awareness + 1);
    }
    this.stats.suspicions++;
    this.#o.logger.info('probe failed: suspecting member', {
      id: target.peer.id,
      helpers: helpers.length,
      nacks,
    });
    this.#o.membership.suspect(target.peer.id);
  }

  async #gossip(): Promise<void> {
    const signal = this.#ac?.signal;
    const m = this.#o.membership;
    if (signal === undefined || !m.hasGossip) return;
    const t = this.#o.timings;
    const now = this.#o.clock.now();
    // The recently dead get gossip too: a node declared dead by mistake learns it and refutes.
    const candidates = m
      .all()
      .filter(
        (x) =>
          x.kind === 'tsp2p' &&
          (isLive(x.state) || (x.state === 'dead' && now - x.stateSince < 4 * t.pushPullIntervalMs)),
      );
    const targets = shuffle(candidates, this.#o.random).slice(0, t.gossipNodes);
    this.stats.gossips += targets.length;
    await Promise.all(targets.map((x) => this.#o.net.gossip(x, this.#scaled(t.probeTimeoutMs) * 2, signal)));
  }

  async #pushPull(): Promise<void> {
    const signal = this.#ac?.signal;
    if (signal === undefined) return;
    const live = this.#o.membership.live().filter((x) => x.kind === 'tsp2p');
    if (live.length === 0) return;
    const peer = live[Math.floor(this.#o.random.next() * live.length)]!;
    this.stats.syncs++;
    await this.#o.net.sync(peer, this.#scaled(this.#o.timings.probeTimeoutMs) * 4, signal);
  }

  async #reconnect(): Promise<void> {
    const signal = this.#ac?.signal;
    if (signal === undefined) return;
    const m = this.#o.membership;
    m.reap();
    const dead = m.all().filter((x) => x.state === 'dead' && x.kind === 'tsp2p');
    if (dead.length === 0) return;
    const peer = dead[Math.floor(this.#o.random.next() * dead.length)]!;
    await this.#o.net.sync(peer, this.#scaled(this.#o.timings.probeTimeoutMs) * 4, signal);
  }
}
