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
 * - **round-trip time**: the time a probe waits follows the answers' measured round trips, as
 *   TCP's retransmission timeout does (RFC 6298), never below the configured probe timeout. On
 *   a quiet network nothing changes; where answers come late (slow links, a machine whose
 *   processes are starved of CPU) probes wait longer instead of suspecting members that answer.
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
 * Probe, push-pull and reconnect share one timer (the probe tick): at rest a node wakes once a
 * probe period, not once per loop.
 *
 * @module
 */

import { setMaxListeners } from 'node:events';
import type { Clock, TimerHandle } from '../clock.js';
import type { Logger } from '../logger.js';
import { type Random, sample, shuffle } from '../random.js';
import type { Member } from './member-table.js';
import type { Membership } from './membership.js';
import { isLive } from './merge.js';
import { type MembershipTimings, pushPullInterval } from './timings.js';

/**
 * A ping-req's outcome: the relay reached the target (`ack`), did not (`nack`), found nothing
 * listening at the target's address (`refused`: a `nack` with strong evidence), did not answer
 * at all (`none`), or refused the connection itself (`gone`: the relay crashed too, and says
 * nothing either way about the target).
 */
export type IndirectResult = 'ack' | 'nack' | 'refused' | 'none' | 'gone';

/**
 * A direct probe's outcome: an answer (`ack`); a refused connection (`refused`: nothing listens
 * at the member's address, as after a crash on a live host); anything else (`failed`: a timeout,
 * or an answer that does not count).
 */
export type ProbeOutcome = 'ack' | 'refused' | 'failed';

/** The network operations the detector needs; the node implements them over its transport. */
export interface ProbeNet {
  /** Pings a member directly, waiting `timeoutMs` at most. Never rejects. */
  probe(member: Member, timeoutMs: number, signal: AbortSignal): Promise<ProbeOutcome>;
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
  /**
   * Told of each answered ping's round trip in ms, this node's own probes and those it sends for
   * others (for metrics).
   */
  readonly onPingAnswered?: (ms: number) => void;
}

/** A periodic task run on the probe tick once due. */
interface SideLoop {
  /** Clock ms when it should run next. */
  due: number;
  readonly period: () => number;
  readonly run: () => Promise<void>;
  running: boolean;
}

/**
 * A failed probe whose wait lasted more than this many times its time limit was waited for by a
 * late event loop (see `FailureDetector.#late`). A timer that fires on time ends the wait within a
 * few ms of the limit; one half a limit late means this process did not run for that long.
 */
const LATE_FACTOR = 1.5;

/**
 * Most failed probes of one member in a row set aside as late: the delay they may add to the
 * suspicion of a member that really stopped answering is this many probe periods.
 */
export const MAX_LATE_PROBES = 2;

/**
 * The smoothed round trip of the probes' answers and the wait it calls for (RFC 6298's
 * estimator: `SRTT`, `RTTVAR`, `RTO = SRTT + 4 × RTTVAR`), between a floor (the configured probe
 * timeout) and a ceiling. A probe that timed out while the member answered through a helper
 * doubles the wait until the next answer is measured (the member is alive, its direct answer
 * was just later than this node waited). Each ping's answer is a sample of its own (nothing is
 * ever sent again under the same request), so Karn's ambiguity does not arise.
 */
export class RoundTrip {
  readonly #floor: number;
  readonly #ceiling: number;
  #srtt: number | undefined;
  #rttvar = 0;
  #backoff = 1;

  /**
   * @param floorMs - the shortest wait: the configured probe timeout
   * @param ceilingMs - the longest wait, however slow the answers
   */
  constructor(floorMs: number, ceilingMs: number) {
    this.#floor = floorMs;
    this.#ceiling = Math.max(floorMs, ceilingMs);
  }

  /** An answer came `ms` after its ping left. */
  sample(ms: number): void {
    const r = Math.max(0, ms);
    if (this.#srtt === undefined) {
      this.#srtt = r;
      this.#rttvar = r / 2;
    } else {
      this.#rttvar = 0.75 * this.#rttvar + 0.25 * Math.abs(this.#srtt - r);
      this.#srtt = 0.875 * this.#srtt + 0.125 * r;
    }
    this.#backoff = 1;
  }

  /** A ping timed out while its member turned out to be alive: wait twice as long until the next answer. */
  backOff(): void {
    if (this.timeoutMs < this.#ceiling) this.#backoff *= 2;
  }

  /** The smoothed round trip in ms (0 before the first answer). */
  get smoothedMs(): number {
    return this.#srtt ?? 0;
  }

  /** How long a ping waits now: `SRTT + 4 × RTTVAR`, times the backoff, within the bounds. */
  get timeoutMs(): number {
    const rto = this.#srtt === undefined ? this.#floor : this.#srtt + 4 * this.#rttvar;
    return Math.min(this.#ceiling, Math.max(this.#floor, Math.ceil(rto)) * this.#backoff);
  }
}

/** Runs the probe, gossip, push-pull and reconnect loops while started. */
export class FailureDetector {
  readonly #o: FailureDetectorOptions;
  #ac: AbortController | undefined;
  readonly #timers = new Set<TimerHandle>();
  #order: string[] = [];
  #next = 0;
  #awareness = 0;
  /** The probes' round trips: how long a probe waits ({@link FailureDetector.probeTimeoutMs}). */
  readonly #rtt: RoundTrip;
  /** The longest a probe ever waits: Lifeguard's longest stretch of the probe timeout. */
  readonly #maxWait: number;
  /** The next gossip round's timer, while one is due; whether a round is under way. */
  #gossipTimer: TimerHandle | undefined;
  #gossiping = false;
  #unwatch: (() => void) | undefined;
  /** Push-pull and reconnect: run on the probe tick once due. */
  #side: SideLoop[] = [];
  /** The push-pull side loop's run (found by it in {@link FailureDetector.syncSoon}). */
  readonly #pushPullRun = (): Promise<void> => this.#pushPull();
  /** Probes sent, and how many failed into a suspicion (for metrics). */
  readonly stats = {
    probes: 0,
    indirectProbes: 0,
    suspicions: 0,
    syncs: 0,
    gossips: 0,
    outOfTurn: 0,
    /** Times this node refuted news that it was suspect or dead. */
    refuted: 0,
    /** Times the local health score rose (a refutation, helpers that did not answer, a late probe). */
    healthRaised: 0,
    /** Failed probes of a suspect whose suspicion was fully confirmed here: no indirect probes. */
    confirmedSkips: 0,
    /**
     * Failed probes set aside because this node's own event loop was late while it waited (see
     * {@link MAX_LATE_PROBES}): the member is probed again the next period instead of suspected.
     */
    lateProbes: 0,
  };
  /** Members with a probe in flight. */
  readonly #inFlight = new Set<string>();
  /** When each member was last probed out of turn ({@link probeNow}). */
  readonly #outOfTurn = new Map<string, number>();
  /** When a suspect was last probed out of turn because it was still suspect ({@link suspected}). */
  #lastSuspectProbe = Number.NEGATIVE_INFINITY;
  /** Per member, its failed probes in a row set aside as late ({@link FailureDetector.#late}). */
  readonly #lateInARow = new Map<string, number>();

  constructor(options: FailureDetectorOptions) {
    this.#o = options;
    const t = options.timings;
    this.#maxWait = t.probeTimeoutMs * (1 + t.maxAwareness);
    this.#rtt = new RoundTrip(t.probeTimeoutMs, this.#maxWait);
  }

  /**
   * How long a direct probe waits for its answer now: the configured probe timeout, or more when
   * the answers measured lately came slower (see {@link RoundTrip}), stretched by the local
   * health score. A node asked to probe for another (a ping-req) waits as long.
   */
  get probeTimeoutMs(): number {
    return Math.min(this.#maxWait, this.#scaled(this.#rtt.timeoutMs));
  }

  /** The smoothed round trip of the probes' answers, in ms (0 before the first). */
  get roundTripMs(): number {
    return this.#rtt.smoothedMs;
  }

  /**
   * Pings `target` for another node (a ping-req): waits as long as this node's own probes do
   * ({@link FailureDetector.probeTimeoutMs}), and the answer's round trip is a sample like theirs.
   * Never rejects.
   */
  probeFor(target: Member, signal: AbortSignal): Promise<ProbeOutcome> {
    return this.#ping(target, this.probeTimeoutMs, signal);
  }

  /** Pings `target`; an answer's round trip is a sample, and is reported. Never rejects. */
  async #ping(target: Member, timeoutMs: number, signal: AbortSignal): Promise<ProbeOutcome> {
    const sentAt = this.#o.clock.now();
    const outcome = await this.#o.net.probe(target, timeoutMs, signal);
    if (outcome === 'ack') {
      const ms = Math.max(0, this.#o.clock.now() - sentAt);
      this.#rtt.sample(ms);
      this.#o.onPingAnswered?.(ms);
    }
    return outcome;
  }

  /** Lifeguard's local health score: 0 is healthy; each unit stretches periods and timeouts. */
  get awareness(): number {
    return this.#awareness;
  }

  /**
   * Others suspected this node (it had to refute): Lifeguard's local health score rises by one,
   * as after a probe whose helpers did not answer, so that a starved or overloaded node waits
   * longer before it suspects anyone else.
   */
  selfSuspected(): void {
    if (this.#ac === undefined) return;
    this.#raiseAwareness();
    this.stats.refuted++;
  }

  /** Starts every loop. Idempotent. */
  start(): void {
    if (this.#ac !== undefined) return;
    this.#ac = new AbortController();
    // Every probe, gossip and sync in flight listens to it.
    setMaxListeners(0, this.#ac.signal);
    const t = this.#o.timings;
    // One timer for the periodic work: push-pull and reconnect run on the probe tick that
    // follows their due time (at most a probe period late), so an idle node wakes once a
    // period rather than once per loop. First runs are spread, so that nodes started together
    // do not move in lock-step.
    const now = this.#o.clock.now();
    this.#side = [
      {
        due: now + this.#jitter(t.pushPullIntervalMs),
        period: () => pushPullInterval(t, this.#o.membership.liveCount + 1),
        run: this.#pushPullRun,
        running: false,
      },
      {
        due: now + this.#jitter(t.reconnectIntervalMs),
        period: () => t.reconnectIntervalMs,
        run: () => this.#reconnect(),
        running: false,
      },
    ];
    this.#loop(
      () => this.#scaled(t.probeIntervalMs),
      () => this.#tick(),
      this.#jitter(t.probeIntervalMs),
    );
    this.#unwatch = this.#o.membership.watchNews(() => this.#newsQueued());
    this.#newsQueued();
  }

  /**
   * Brings the next push-pull forward to two probe periods from now (it runs on the probe tick
   * that follows), unless it is due sooner already. A node that has just joined calls it: members
   * that joined at the same time through other entry points reach it only through gossip, which
   * now and then misses one (the retransmission limit follows the view, small while everyone
   * joins), and the push-pull period is long (10 s and more on LAN timings). Two periods leave
   * the burst's gossip time to arrive first; the exchange then repairs both sides. In
   * simulation (100 nodes joining at once, LAN) the last view is full after about 3 s instead of
   * 9 to 10, with fewer requests in all.
   */
  syncSoon(): void {
    if (this.#ac === undefined) return;
    const task = this.#side.find((x) => x.run === this.#pushPullRun);
    if (task === undefined) return;
    task.due = Math.min(task.due, this.#o.clock.now() + 2 * this.#o.timings.probeIntervalMs);
  }

  /**
   * Runs `run` on the probe tick once every `period()` ms, the first time after `first` ms: a
   * periodic task of another part of the node sharing the detector's one timer (it may be up to
   * a probe period late). It never overlaps itself, and ends when the detector stops. A task
   * added before {@link FailureDetector.start} never runs.
   */
  every(period: () => number, run: () => Promise<void> | void, first: number): void {
    if (this.#ac === undefined) return;
    this.#side.push({ due: this.#o.clock.now() + first, period, run: async () => run(), running: false });
  }

  /**
   * One tick: the side loops that are due start (each never overlaps itself: the next run is
   * due a period after the last one ended), then the probe of the period.
   */
  async #tick(): Promise<void> {
    const now = this.#o.clock.now();
    for (const task of this.#side) {
      if (task.running || now < task.due) continue;
      task.running = true;
      task
        .run()
        .catch((err: unknown) => this.#o.logger.error('membership loop failed', { err }))
        .finally(() => {
          task.running = false;
          // A period after the due time, or after the end when the run took longer.
          task.due = Math.max(task.due + task.period(), this.#o.clock.now());
        });
    }
    await this.#probe();
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

  /**
   * Runs a gossip round now (after a join or a death, so news travels at once). One round is
   * under way at a time: asked while one is, the news it did not carry goes a gossip period
   * after it ends, with whatever else has come by then (a burst of joins is told in a few rounds,
   * not in one round per join).
   */
  gossipNow(): void {
    if (this.#ac === undefined || this.#gossiping) return;
    if (this.#gossipTimer !== undefined) {
      this.#gossipTimer.cancel();
      this.#timers.delete(this.#gossipTimer);
      this.#gossipTimer = undefined;
    }
    this.#runGossip();
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
      if (!ac.signal.aborted) this.#runGossip();
    }, delay);
    this.#gossipTimer = handle;
    this.#timers.add(handle);
  }

  #runGossip(): void {
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
  }

  #jitter(ms: number): number {
    return Math.floor(this.#o.random.next() * ms);
  }

  #scaled(ms: number): number {
    return ms * (1 + this.#awareness);
  }

  /**
   * How long the helpers of an indirect probe get: what is left of the probe period, and at
   * least their own probe's wait twice over (the helper's wait, and the way there and back).
   */
  #indirectTimeout(): number {
    const t = this.#o.timings;
    return Math.max(this.#scaled(t.probeIntervalMs - t.probeTimeoutMs), 2 * this.probeTimeoutMs);
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
      this.#order = shuffle(m.liveIds(), this.#o.random);
      this.#next = 0;
    }
    return undefined;
  }

  async #probe(): Promise<void> {
    const target = this.#nextTarget();
    if (target !== undefined) await this.#probeMember(target);
  }

  /**
   * Probes the member `id` now, out of turn: a request to it was refused a connection, or its
   * connection was closed from its side, and a crashed process is best found at once (a probe of
   * a crashed process takes milliseconds: its host refuses the connection). At most one probe of
   * a member is in flight, and a member is probed out of turn at most once a probe period.
   */
  probeNow(id: string, onlyRefusals = false): void {
    const signal = this.#ac?.signal;
    const member = this.#o.membership.get(id);
    if (signal === undefined || member === undefined || !isLive(member.state)) return;
    if (this.#inFlight.has(id)) return;
    const now = this.#o.clock.now();
    const last = this.#outOfTurn.get(id);
    if (last !== undefined && now - last < this.#o.timings.probeIntervalMs) return;
    if (this.#outOfTurn.size >= 1024) this.#outOfTurn.clear();
    this.#outOfTurn.set(id, now);
    this.stats.outOfTurn++;
    this.#probeMember(member, onlyRefusals).catch((err: unknown) =>
      this.#o.logger.error('membership probe failed', { err }),
    );
  }

  /**
   * A member was reported suspect (by this node or by gossip). If it still is after two strong
   * suspicions' time, probe it out of turn: a crash is declared within `refusedSuspicionMs` by
   * whoever saw every probe refused, and the few members that gossip did not tell of the death
   * would otherwise wait for their own full suspicion. Those that know of it by then send
   * nothing. At most one such probe starts per probe period: a crash makes one suspect or a few,
   * but a partition makes every member across it suspect at once, and probing each of them out
   * of turn (each with its indirect probes) would cost the network n²/2 probes in seconds. The
   * probe looks for a refused connection only: if it times out, no helper is asked (the
   * suspicion runs its course; the member's refutation, if it is alive, ends it).
   */
  suspected(id: string): void {
    if (this.#ac === undefined) return;
    const handle = this.#o.clock.setTimeout(() => {
      this.#timers.delete(handle);
      if (this.#o.membership.get(id)?.state !== 'suspect') return;
      const now = this.#o.clock.now();
      if (now - this.#lastSuspectProbe < this.#o.timings.probeIntervalMs) return;
      this.#lastSuspectProbe = now;
      this.probeNow(id, true);
    }, 2 * this.#o.timings.refusedSuspicionMs);
    this.#timers.add(handle);
  }

  async #probeMember(target: Member, onlyRefusals = false): Promise<void> {
    const signal = this.#ac?.signal;
    if (signal === undefined || this.#inFlight.has(target.peer.id)) return;
    this.#inFlight.add(target.peer.id);
    try {
      await this.#probeOnce(target, signal, onlyRefusals);
    } finally {
      this.#inFlight.delete(target.peer.id);
    }
  }

  /** Lifeguard's local health score rises by one, up to `maxAwareness`. */
  #raiseAwareness(): void {
    if (this.#awareness >= this.#o.timings.maxAwareness) return;
    this.#awareness++;
    this.stats.healthRaised++;
  }

  /**
   * @param onlyRefusals - the probe looks for a crash's evidence only (a suspect probed out of
   *   turn, see {@link FailureDetector.suspected}): a direct probe that times out ends it there,
   *   without indirect probes. Every member that hears of a suspicion probes the suspect once; a
   *   member that is slow rather than gone (a starved process) would otherwise get three more
   *   pings through helpers for each of those, the load that keeps it too slow to answer.
   */
  async #probeOnce(target: Member, signal: AbortSignal, onlyRefusals = false): Promise<void> {
    const t = this.#o.timings;
    this.stats.probes++;
    const timeout = this.probeTimeoutMs;
    const sentAt = this.#o.clock.now();
    const direct = await this.#ping(target, timeout, signal);
    if (direct === 'ack') {
      this.#awareness = Math.max(0, this.#awareness - 1);
      this.#lateInARow.delete(target.peer.id);
      this.#o.membership.touch(target.peer.id);
      return;
    }
    if (signal.aborted || (onlyRefusals && direct !== 'refused')) return;
    if (direct !== 'refused' && this.#late(target, sentAt, timeout)) return;
    const current = this.#o.membership.get(target.peer.id);
    if (current === undefined || !isLive(current.state)) return;
    // A member this node suspects already, with all k confirmations in hand, that let the probe
    // time out: indirect probes could change nothing. Without a refused connection there is no
    // strong evidence to gather, the suspicion's timeout is at its minimum already, and an
    // answer through a helper does not refute it (only the member does, when the suspicion
    // reaches it: this probe carried it). Across a partition this spares 3 ping-reqs and 3 pings
    // for every probe of every member on the other side.
    if (direct === 'failed' && current.state === 'suspect' && this.#o.membership.confirmed(target.peer.id)) {
      this.stats.confirmedSkips++;
      this.#lateInARow.delete(target.peer.id);
      return;
    }
    // k random helpers, drawn without listing the members (a probe fails for every member
    // across a partition).
    const membership = this.#o.membership;
    const helpers = sample(membership.liveCount, t.indirectProbes, this.#o.random, (i) => {
      const m = membership.liveAt(i);
      return m.peer.id !== target.peer.id && m.kind === 'tsp2p' ? m : undefined;
    });
    let acked = false;
    let nacks = 0;
    let refusals = 0;
    let gone = 0;
    const askedAt = this.#o.clock.now();
    if (helpers.length > 0) {
      this.stats.indirectProbes += helpers.length;
      // A helper pings with its own probe timeout; give it that, twice, before giving up.
      const indirectTimeout = this.#indirectTimeout();
      const results = await Promise.all(
        helpers.map((h) => this.#o.net.pingReq(h, target, indirectTimeout, signal)),
      );
      acked = results.includes('ack');
      refusals = results.filter((r) => r === 'refused').length;
      gone = results.filter((r) => r === 'gone').length;
      nacks = refusals + gone + results.filter((r) => r === 'nack').length;
    }
    if (acked) {
      this.#lateInARow.delete(target.peer.id);
      // Alive, and answering others: this node's own wait was too short for the answers of the
      // moment (a direct answer that never came at all is not a round trip to learn from).
      if (direct === 'failed') this.#rtt.backOff();
    }
    if (signal.aborted || acked) return;
    if (direct !== 'refused' && helpers.length > 0 && nacks < helpers.length) {
      if (this.#late(target, askedAt, this.#indirectTimeout())) return;
    }
    // Helpers that did not even answer point at this node's own trouble (Lifeguard).
    if (helpers.length === 0 || nacks < helpers.length) this.#raiseAwareness();
    // Every probe was refused a connection, this node's and each helper's: the member's host is
    // up and nothing listens at its address, so its process is gone. That is strong evidence,
    // and its suspicion is short (`refusedSuspicionMs`). A timeout proves less (a paused or
    // overloaded process, a lost packet): it takes Lifeguard's full suspicion.
    // Helpers that crashed as well (`gone`) are left out: they say nothing about the target.
    const strong = direct === 'refused' && refusals + gone === helpers.length;
    this.#lateInARow.delete(target.peer.id);
    this.stats.suspicions++;
    this.#o.logger.info('probe failed: suspecting member', {
      id: target.peer.id,
      helpers: helpers.length,
      nacks,
      waitedMs: timeout,
      ...(strong ? { refused: true } : {}),
    });
    this.#o.membership.suspect(target.peer.id, { strong });
  }

  /**
   * Whether a probe of `target` that waited from `since` for up to `timeoutMs` and got no answer
   * is set aside, because this node's own event loop was late: the wait lasted more than half as
   * long again as its time limit, so this process did not run for a good part of it (a blocked
   * loop, a starved process), its request may itself have left late, and the silence says as much
   * about this node as about the member. Such a probe raises this node's local health score
   * (Lifeguard: longer timeouts while it is slow) and the member is probed again the next period
   * instead of being asked about and suspected. At most {@link MAX_LATE_PROBES} probes of a member
   * in a row are set aside, so a node that is always late still suspects, a few periods later.
   * A refused connection is never set aside: it is the crash's own evidence, late or not.
   */
  #late(target: Member, since: number, timeoutMs: number): boolean {
    if (this.#o.clock.now() - since <= timeoutMs * LATE_FACTOR) return false;
    const id = target.peer.id;
    const inARow = this.#lateInARow.get(id) ?? 0;
    if (inARow >= MAX_LATE_PROBES) return false;
    if (this.#lateInARow.size >= 1024) this.#lateInARow.clear();
    this.#lateInARow.set(id, inARow + 1);
    this.stats.lateProbes++;
    this.#raiseAwareness();
    this.probeSoon(id);
    this.#o.logger.debug('probe failed while this node was late: probing again', { id, inARow: inARow + 1 });
    return true;
  }

  async #gossip(): Promise<void> {
    const signal = this.#ac?.signal;
    const m = this.#o.membership;
    if (signal === undefined || !m.hasGossip) return;
    const t = this.#o.timings;
    const now = this.#o.clock.now();
    // The recently dead get gossip too: a node declared dead by mistake learns it and refutes.
    // Drawn from the live members and the tombstones without listing them: a round every gossip
    // period would otherwise cost O(n) each.
    const liveCount = m.liveCount;
    const targets = sample(liveCount + m.goneCount, t.gossipNodes, this.#o.random, (i) => {
      const x = i < liveCount ? m.liveAt(i) : m.goneAt(i - liveCount);
      if (x.kind !== 'tsp2p') return undefined;
      return isLive(x.state) || (x.state === 'dead' && now - x.stateSince < 4 * t.pushPullIntervalMs)
        ? x
        : undefined;
    });
    this.stats.gossips += targets.length;
    // A gossip's answer is a round trip too (a ping's, plus the updates each side takes): while
    // the probes that time out say nothing, these still measure how late answers come.
    const timeout = this.probeTimeoutMs * 2;
    await Promise.all(
      targets.map(async (x) => {
        const sentAt = this.#o.clock.now();
        if (await this.#o.net.gossip(x, timeout, signal)) this.#rtt.sample(this.#o.clock.now() - sentAt);
      }),
    );
  }

  async #pushPull(): Promise<void> {
    const signal = this.#ac?.signal;
    if (signal === undefined) return;
    const m = this.#o.membership;
    const peer = sample(m.liveCount, 1, this.#o.random, (i) => {
      const x = m.liveAt(i);
      return x.kind === 'tsp2p' ? x : undefined;
    })[0];
    if (peer === undefined) return;
    this.stats.syncs++;
    await this.#o.net.sync(peer, this.probeTimeoutMs * 4, signal);
  }

  async #reconnect(): Promise<void> {
    const signal = this.#ac?.signal;
    if (signal === undefined) return;
    const m = this.#o.membership;
    m.reap();
    // Failed members that were forgotten too: after a partition that outlasted the reap, the two
    // halves know each other only as addresses.
    const dead = [
      ...m.tombstones().filter((x) => x.state === 'dead' && x.kind === 'tsp2p'),
      ...m.forgottenFailed(),
    ];
    if (dead.length === 0) return;
    const peer = dead[Math.floor(this.#o.random.next() * dead.length)]!;
    await this.#o.net.sync(peer, this.probeTimeoutMs * 4, signal);
  }
}
