/**
 * Catch-up: anti-entropy over the message log (see `src/store/store.ts` and `summary.ts`).
 *
 * A **session** with one member:
 *
 * 1. a log summary request (type 12) for the channels this node takes (plain broadcasts `b`, its
 *    topics `t:TOPIC`, its own direct messages `d:ID`); the member answers with its summary of
 *    them: per stream, what it holds;
 * 2. for a channel this node has never held anything of (a newcomer to it; not after a restart
 *    from its dataDir, if it took the channel in the run before): the member's newest
 *    `historyOnJoin` messages of it (a fetch with `last`; those sent since this node took the
 *    channel up are left to the live path, which may be bringing them), and every older number of the
 *    member's streams is never fetched: a newcomer does not fetch a topic's whole past. Those
 *    numbers are **skipped** in the store at once (`Store.skip`: durable, never fetched, but
 *    never delivered either): the member's top may include publishes made after this node took
 *    the channel up (after `subscribe()` resolved), whose live copies are still on the way (a
 *    slow link, a publisher's retries, for as long as its delivery rules keep them), and such a
 *    copy is still taken, once, whenever it comes. While the live path may be bringing them,
 *    nothing of those streams is fetched (a fetch of what follows would overtake them): for
 *    `liveOwedMs`, and after that for as long as live numbers of the stream below its skipped
 *    top keep coming (each `liveOwedMs` at most apart);
 * 3. `planCatchUp` lists what the member holds that this node has not received; it is fetched
 *    (type 13, `want`) in requests of at most 1,000 messages, one request at a time.
 *
 * Every fetched message is checked against its **origin's signature**, whoever served it (off the
 * main thread), and against the channel asked for: a member serving history can neither forge
 * nor alter nor renumber it. What passes is appended with its batch in one transaction and the
 * new ones are delivered with `msg.late`.
 *
 * Sessions run one at a time, when this node is back in a network (a join, a rejoin: with the
 * entry point, and with a member of each of its rooms the entry point is not in), when a
 * member comes back after it had failed (a healed partition), when live traffic shows a gap in a
 * stream, and every push-pull period with a random member taking a random channel of this
 * node's (in a room for a room's channel: only such members hold it), as a repair. Fetches are paced
 * ({@link MAX_RATE} messages/s at most, and the event loop is let go between requests), so live
 * traffic keeps priority.
 *
 * The **serving** side answers both requests from its store: only channels the requester takes
 * (a `d:` channel only its own), only messages within retention that carry their origin's
 * signature, at most 1,000 messages or 4 MiB per answer.
 *
 * @module
 */

import { type Clock, type TimerHandle, wallTime } from '../clock.js';
import { ReceivedMessage } from '../delivery/received-message.js';
import type { Logger } from '../logger.js';
import { destinationOf, type Member } from '../membership/member-table.js';
import type { Membership } from '../membership/membership.js';
import { isLive } from '../membership/merge.js';
import { encodeMessageEntry } from '../protocol/batch-entry.js';
import { decodeData, encodeData } from '../protocol/codec.js';
import {
  decodeLogAnswer,
  encodeMessagesAnswer,
  encodeSummaryAnswer,
  type LogAnswer,
  type LoggedEntry,
} from '../protocol/log-codec.js';
import { CATCH_UP_LIMITS, type LogRange, type LogRequest } from '../protocol/log-schema.js';
import { type Refusal, refusal } from '../protocol/refusal.js';
import { MessageType } from '../protocol/schema.js';
import type { Sealer } from '../protocol/sealer.js';
import { fromWirePeer } from '../protocol/wire-peer.js';
import type { Random } from '../random.js';
import { chainedRuns, MAX_UNSIGNED_RUN, verifyOrigin, vouchedByEnds } from '../security/gossip-signature.js';
import type { KeyCache } from '../security/signature.js';
import type { StoredEntry } from '../store/store.js';
import { type CatchUpRange, heldRanges, planCatchUp, type StreamSummary } from '../store/summary.js';
import type { PeerClient } from '../transport/peer-client.js';
import type { InboundResponse } from '../transport/transport.js';
import { type Journal, unpackSig } from './journal.js';

/** Most messages fetched per second. */
export const MAX_RATE = 50_000;
/**
 * Most fetch requests of one session (about a million messages): a member that answers every
 * range with a little more cannot hold a session, and every catch-up behind it, for ever.
 */
const MAX_SESSION_FETCHES = 1_024;
/** Most sessions waiting. */
const MAX_QUEUED = 8;
/**
 * Most sessions with members back after a failure, per repair interval, beyond those that bring
 * a room no such session covered yet (see {@link CatchUp.returned}).
 */
export const RETURNS_PER_INTERVAL = 16;
/** Whether `member` may hold messages of `channel`: a room's only when it is in the room. */
function takes(member: Member, channel: string): boolean {
  return !channel.startsWith('t:') || member.peer.topics?.includes(channel.slice(2)) === true;
}

/** A random element of `list`, `undefined` when it is empty. */
function pick<T>(list: readonly T[], random: Random): T | undefined {
  return list.length === 0 ? undefined : list[Math.floor(random.next() * list.length)];
}

/** A node id of a tsp2p node (a fingerprint): only their streams can be served. */
const TSP2P_ID = /^[0-9a-f]{32}$/;

/** Counters of catch-up, both sides. */
export interface CatchUpStats {
  sessions: number;
  batchesFetched: number;
  messagesFetched: number;
  batchesServed: number;
  messagesServed: number;
  /** Fetched messages dropped: a bad origin signature, or not of the channel asked for. */
  refused: number;
  /** Members back after a failure that got no session of their own (see {@link CatchUp.returned}). */
  returnsSkipped: number;
}

/** Runs a periodic task on a shared tick (the failure detector's `every`). */
export interface Ticker {
  every(period: () => number, run: () => void, first: number): void;
}

/** What {@link CatchUp} needs. */
export interface CatchUpDeps {
  readonly journal: Journal;
  readonly membership: Membership;
  readonly client: PeerClient;
  readonly sealer: Sealer;
  readonly clock: Clock;
  readonly random: Random;
  readonly logger: Logger;
  readonly keys: KeyCache;
  readonly selfId: string;
  /** The channels this node takes now: `b`, `t:` its topics, `d:` its id. */
  readonly channels: () => string[];
  /** Newest messages of a channel a newcomer to it fetches. */
  readonly historyOnJoin: number;
  /**
   * The channels this node took in an earlier run from the same store (a restart from its
   * dataDir): it is no newcomer to them, even if it never held a message of them, and gets
   * everything of them it missed while away. @default none
   */
  readonly takenBefore?: ReadonlySet<string>;
  /** Time between two repair sessions. */
  readonly repairIntervalMs: number;
  /**
   * How long after a message came by gossip its channel is looked at again ({@link CatchUp.tail}):
   * by then the other copies gossip was bringing have come.
   */
  readonly tailDelayMs: number;
  /**
   * How long after a message was sent the live path may still bring it when nothing shows it
   * coming (the delivery deadline, and the last request's time limit): catch-up leaves the
   * streams a newcomer skipped numbers of to the live path for that long, and then as long as
   * their live numbers keep coming at most this far apart.
   */
  readonly liveOwedMs: number;
  readonly requestTimeoutMs: number;
  /**
   * Whether the application's `message` listeners are behind (`src/delivery/listener-lane.ts`):
   * fetching then waits, as what it fetched would only queue for them. @default never
   */
  readonly listenersBehind?: () => boolean;
  /** Aborts with the run. */
  readonly signal: AbortSignal;
}

/** A busy channel's {@link CatchUp.tail} look waits at most this many delays. */
const TAIL_MAX_WAIT = 4;
/** How often a fetch waiting for the listeners to catch up looks again, in ms. */
const BEHIND_POLL_MS = 100;

/** Catch-up for one run of a node: see the module comment. */
export class CatchUp {
  readonly #d: CatchUpDeps;
  readonly stats: CatchUpStats = {
    sessions: 0,
    batchesFetched: 0,
    messagesFetched: 0,
    batchesServed: 0,
    messagesServed: 0,
    refused: 0,
    returnsSkipped: 0,
  };
  /** The sessions with returning members in the current repair interval, and the rooms they cover. */
  #returns = { since: Number.NEGATIVE_INFINITY, count: 0, rooms: new Set<string>() };
  /**
   * Channels this node has never held anything of, a newcomer's `historyOnJoin` applies, with
   * the wall time (ms) it took each up: what was sent from then on is the live path's to bring.
   */
  readonly #fresh = new Map<string, number>();
  /** Members to hold a session with (`''`: any live member). */
  readonly #queue: string[] = [];
  #running = false;
  /** When fetching may go on, by the rate limit (clock ms). */
  #nextFetchAt = 0;
  /**
   * Per stream a newcomer skipped numbers of, up to `upTo`: left to the live path (not fetched)
   * until `at` (clock ms), and after it while live numbers below `upTo` keep coming; `live` is the
   * last live number seen, at `liveAt` (see {@link CatchUp.#unskipped}).
   */
  readonly #skipped = new Map<
    string,
    { upTo: number; at: number; live: number | undefined; liveAt: number }
  >();
  /**
   * The channels a {@link CatchUp.tail} session is due for: when the first and the last message
   * since the last look came, and the timer.
   */
  readonly #tails = new Map<string, { first: number; last: number; timer: TimerHandle | undefined }>();

  constructor(deps: CatchUpDeps) {
    this.#d = deps;
    for (const ch of deps.channels()) if (deps.takenBefore?.has(ch) !== true) this.noteChannel(ch);
    deps.signal.addEventListener(
      'abort',
      () => {
        for (const t of this.#tails.values()) t.timer?.cancel();
        this.#tails.clear();
      },
      { once: true },
    );
  }

  /** Starts the repair loop, on `ticker`'s periodic tick (the failure detector's: one timer for both). */
  start(ticker: Ticker): void {
    ticker.every(
      () => this.#jitter(this.#d.repairIntervalMs),
      () => {
        if (!this.#d.signal.aborted) this.soon();
      },
      this.#jitter(this.#d.repairIntervalMs),
    );
  }

  /** A channel this node now takes: a newcomer to it when it holds nothing of it. */
  noteChannel(channel: string): void {
    if (channel.startsWith('d:')) return;
    if (this.#d.journal.store.summary([channel]).length === 0 && !this.#fresh.has(channel))
      this.#fresh.set(channel, wallTime(this.#d.clock));
  }

  /**
   * Back in a network through `entryId` (a join, a rejoin): a session with the entry point, and
   * one with a random member of each room this node takes that the entry point is not in. The
   * entry point may hold nothing of a room (it is not in it), and what was published there while
   * this node was away, or while the room's members did not know it was back, is held only by
   * them: the live path never brings it.
   */
  afterJoin(entryId: string): void {
    this.soon(entryId);
    const entry = this.#d.membership.get(entryId);
    for (const ch of this.#d.channels()) {
      if (ch.startsWith('t:') && (entry === undefined || !takes(entry, ch))) this.soonFor(ch);
    }
  }

  /**
   * A member is back after it had failed (a healed partition, a restart): a session with it soon,
   * for what it holds that this node missed meanwhile. At most {@link RETURNS_PER_INTERVAL} such
   * sessions per repair interval, plus one for each room of this node's that none of them
   * covered yet: when a partition heals, half the network comes back at once, and a session with
   * each (n/2 per node, n²/2 in all) would mostly find what the first few brought. What the
   * others alone hold (a direct message one of them sent) comes with the periodic repair, or
   * with the gap the sender's next message shows.
   */
  returned(memberId: string): void {
    const now = this.#d.clock.now();
    if (now - this.#returns.since >= this.#d.repairIntervalMs)
      this.#returns = { since: now, count: 0, rooms: new Set() };
    const member = this.#d.membership.get(memberId);
    const rooms =
      member === undefined
        ? []
        : this.#d
            .channels()
            .filter((ch) => ch.startsWith('t:') && takes(member, ch) && !this.#returns.rooms.has(ch));
    if (this.#returns.count >= RETURNS_PER_INTERVAL && rooms.length === 0) {
      this.stats.returnsSkipped++;
      return;
    }
    this.#returns.count++;
    for (const ch of rooms) this.#returns.rooms.add(ch);
    this.soon(memberId);
  }

  /**
   * A message of `channel` came by gossip: a session with a random live member that takes the
   * channel once the channel has been quiet for about `tailDelayMs` (and at the latest
   * {@link TAIL_MAX_WAIT} delays after the first message not looked at yet). Gossip misses a
   * member now and then (with probability about e^−fanout); a missed message is fetched as soon
   * as the next one of its stream shows the gap, but the last messages of a burst are followed
   * by none, and the periodic repair may be a minute away at 1,000 members. Busy or not, a
   * channel costs one session per delay at most.
   */
  tail(channel: string): void {
    if (this.#d.signal.aborted) return;
    const now = this.#d.clock.now();
    const due = this.#tails.get(channel);
    if (due !== undefined) {
      due.last = now;
      return;
    }
    // A channel name from the wire: only one of this node's sets a timer.
    if (!this.#d.channels().includes(channel)) return;
    const delay = this.#jitter(this.#d.tailDelayMs);
    const look = { first: now, last: now, timer: undefined as TimerHandle | undefined };
    const fire = () => {
      if (this.#d.signal.aborted) return;
      const at = this.#d.clock.now();
      const quietAt = look.last + delay;
      if (quietAt > at && at < look.first + TAIL_MAX_WAIT * delay) {
        look.timer = this.#d.clock.setTimeout(fire, quietAt - at);
        return;
      }
      this.#tails.delete(channel);
      if (this.#d.channels().includes(channel)) this.soonFor(channel);
    };
    look.timer = this.#d.clock.setTimeout(fire, delay);
    this.#tails.set(channel, look);
  }

  /** Holds a session soon with a random live member that takes `channel` (if there is one). */
  soonFor(channel: string): void {
    const m = pick(this.#takers(channel), this.#d.random);
    if (m !== undefined) this.soon(m.peer.id);
  }

  /** Holds a session soon with `memberId` (or a random live member). */
  soon(memberId = ''): void {
    if (this.#d.signal.aborted) return;
    if (this.#queue.includes(memberId) || this.#queue.length >= MAX_QUEUED) return;
    this.#queue.push(memberId);
    if (!this.#running) void this.#drain();
  }

  async #drain(): Promise<void> {
    this.#running = true;
    try {
      while (this.#queue.length > 0 && !this.#d.signal.aborted) {
        const id = this.#queue.shift()!;
        const member = id === '' ? this.#randomMember() : this.#d.membership.get(id);
        if (member === undefined || member.kind !== 'tsp2p' || !isLive(member.state)) continue;
        try {
          await this.#session(member);
        } catch (err) {
          if (!this.#d.signal.aborted) this.#d.logger.debug('catch-up session failed', { member: id, err });
        }
      }
    } finally {
      this.#running = false;
    }
  }

  /**
   * A repair partner: a random live member taking a random channel of this node's (any member
   * for plain broadcasts and direct messages; one in the room for a room's). Drawn among all
   * live members alone, a room's repair would mostly ask members that hold nothing of it.
   */
  #randomMember(): Member | undefined {
    const chans = this.#d.channels();
    const ch = chans[Math.floor(this.#d.random.next() * chans.length)];
    return pick(this.#takers(ch), this.#d.random) ?? pick(this.#takers(undefined), this.#d.random);
  }

  /** The live tsp2p members that take `channel` (every one for `b`, `d:` and `undefined`). */
  #takers(channel: string | undefined): Member[] {
    return this.#d.membership
      .live()
      .filter((m) => m.kind === 'tsp2p' && (channel === undefined || takes(m, channel)));
  }

  async #session(member: Member): Promise<void> {
    this.stats.sessions++;
    const chans = this.#d.channels();
    const answer = await this.#ask(member, MessageType.LogSummary, { chans });
    const remote = (answer?.sum ?? []) as StreamSummary[];
    const store = this.#d.journal.store;
    for (const ch of chans) {
      const since = this.#fresh.get(ch);
      // A member outside a room holds nothing of it: the room's window waits for one inside.
      if (since === undefined || !takes(member, ch)) continue;
      this.#fresh.delete(ch);
      const theirs = remote.filter((s) => s.channel === ch);
      const lowest = new Map<string, number>();
      if (this.#d.historyOnJoin > 0 && theirs.length > 0) {
        // The window is history: a message sent since this node took the channel up is the
        // live path's (it may be on its way), and taking it now would put it before the ones
        // sent just before it. It still bounds what is skipped below.
        const last = await this.#ask(member, MessageType.LogFetch, {
          last: { channel: ch, limit: this.#d.historyOnJoin },
        });
        const got = await this.#take(last, chans, (e) => e.ts < since);
        for (const e of got) {
          const k = `${e.origin.id}\u0000${e.epoch}`;
          lowest.set(k, Math.min(lowest.get(k) ?? e.seq, e.seq));
        }
      }
      for (const s of theirs) {
        const held = heldRanges(s);
        const top = held[held.length - 1]?.[1] ?? s.contiguous;
        const low = lowest.get(`${s.origin}\u0000${s.epoch}`);
        this.#skip(s, low === undefined ? top : low - 1);
      }
    }
    const channels = new Set(chans);
    const tried = new Set<string>();
    const triedKey = (r: { origin: string; epoch: string; channel: string; from: number }) =>
      `${streamKey(r)}\u0000${r.from}`;
    // Pipelined: the next request goes out while the answer before it is checked and appended
    // (one request in flight, one answer being taken); `tried` keeps the range in flight out of
    // the next plan. An answer that stops short of a range (cut by its byte bound: large
    // messages; refused; a member that no longer holds it) would let the next one, already
    // asked for, land first, out of order. So from the first short range on, the session asks
    // one request at a time; what any answer holds of that stream above the point where the
    // range stopped is left out (`cut`: stream → the last number taken in order), and the rest
    // is asked again in order if the range brought anything, else not in this session
    // (`stopped`). Each new request for a stream thus follows its growth in the log, and a
    // session makes at most MAX_SESSION_FETCHES requests.
    let pipelined = true;
    const cut = new Map<string, number>();
    const stopped = new Set<string>();
    let fetches = 0;
    let taking: Promise<LoggedEntry[] | undefined> = Promise.resolve(undefined);
    try {
      for (;;) {
        if (this.#d.signal.aborted || fetches >= MAX_SESSION_FETCHES) return;
        if (!pipelined) {
          // Nothing asked before the cut is in flight any more.
          await taking;
          cut.clear();
        }
        const plan = this.#unskipped(
          planCatchUp(store.summary(chans), remote, {
            channels,
            // Room in the answer for each range to run on to a signed end (see `answer()`): an
            // answer that stopped short of its range would let the next one, already asked for,
            // land first.
            maxBatch: CATCH_UP_LIMITS.messages - MAX_UNSIGNED_RUN,
          }),
        ).filter((r) => !tried.has(triedKey(r)) && !stopped.has(streamKey(r)));
        if (plan.length === 0) {
          // What is being taken may leave a range unserved: plan once more after it.
          const last = taking;
          taking = Promise.resolve(undefined);
          if ((await last) === undefined) return;
          continue;
        }
        const want: LogRange[] = [];
        let count = 0;
        for (const r of plan) {
          const n = r.to - r.from + 1 + MAX_UNSIGNED_RUN;
          if (
            want.length > 0 &&
            (count + n > CATCH_UP_LIMITS.messages || want.length >= CATCH_UP_LIMITS.ranges)
          )
            break;
          want.push({ origin: r.origin, epoch: r.epoch, channel: r.channel, from: r.from, to: r.to });
          tried.add(triedKey(r));
          count += n;
        }
        await this.#pace();
        // The rate limit counts from the request, so that the time taking an answer overlaps it.
        this.#nextFetchAt = this.#d.clock.now() + (1000 * count) / MAX_RATE;
        fetches++;
        const answer = this.#ask(member, MessageType.LogFetch, { want });
        const before = taking;
        const onChecked = (good: readonly LoggedEntry[]) => {
          for (const [k, reached] of shortRanges(want, good)) {
            pipelined = false;
            const last = cut.get(k);
            cut.set(k, last === undefined ? reached.last : Math.min(last, reached.last));
            if (!reached.any) stopped.add(k);
            else for (const t of tried) if (t.startsWith(`${k}\u0000`)) tried.delete(t);
          }
        };
        taking = Promise.all([answer, before]).then(([a]) =>
          this.#take(
            a,
            chans,
            (e) => {
              if (cut.size === 0) return true;
              const last = cut.get(streamKey({ origin: e.origin.id!, epoch: e.epoch, channel: e.channel }));
              return last === undefined || e.seq <= last;
            },
            onChecked,
          ),
        );
        // Never an unhandled rejection: the failure ends the session below, or is dropped with it.
        taking.catch(() => undefined);
        await before;
      }
    } finally {
      await taking.catch(() => undefined);
    }
  }

  /**
   * A newcomer never fetches numbers `1..upTo` of `stream`: skipped in the store at once (a live
   * copy of one is still taken, once), and left to the live path for a while (see
   * {@link CatchUp.#unskipped}).
   */
  #skip(stream: StreamSummary, upTo: number): void {
    if (upTo < 1) return;
    const k = streamKey(stream);
    try {
      this.#d.journal.store.skip(stream, upTo);
    } catch (err) {
      this.#d.logger.debug('catch-up: skipping numbers failed', { err });
      return;
    }
    const now = this.#d.clock.now();
    const before = this.#skipped.get(k);
    this.#skipped.set(k, {
      upTo: Math.max(upTo, before?.upTo ?? 0),
      at: now + this.#d.liveOwedMs,
      live: this.#d.journal.lastLive(k),
      liveAt: now,
    });
  }

  /**
   * `plan` without the streams a newcomer skipped numbers of while the live path may still be
   * bringing some of them: it brings what was sent since this node took the channel up, in
   * order, and a fetch of what follows would overtake it. That is for `liveOwedMs` after the
   * skip, and after it for as long as the stream's live numbers, still below the skipped top,
   * keep coming (a slow member's queue, kept while it acknowledges batches): each seen at most
   * `liveOwedMs` after the one before (as far as the sessions that look show).
   */
  #unskipped(plan: readonly CatchUpRange[]): CatchUpRange[] {
    if (this.#skipped.size === 0) return [...plan];
    const now = this.#d.clock.now();
    for (const [k, s] of this.#skipped) {
      const live = this.#d.journal.lastLive(k);
      if (live !== s.live) {
        s.live = live;
        s.liveAt = now;
      }
      if (now < s.at) continue;
      if (live === undefined || live >= s.upTo || now - s.liveAt >= this.#d.liveOwedMs)
        this.#skipped.delete(k);
    }
    return plan.filter((r) => !this.#skipped.has(streamKey(r)));
  }

  /**
   * Waits for the listeners when they are behind, then for the rate limit, and lets live
   * traffic in between two requests.
   */
  async #pace(): Promise<void> {
    // The listeners are behind: what is fetched would only wait for them, unbounded.
    while (this.#d.listenersBehind?.() === true && !this.#d.signal.aborted) {
      await new Promise<void>((resolve) => this.#d.clock.setTimeout(resolve, BEHIND_POLL_MS));
    }
    const wait = Math.max(0, this.#nextFetchAt - this.#d.clock.now());
    await new Promise<void>((resolve) => this.#d.clock.setTimeout(resolve, wait));
  }

  /**
   * Checks, appends and delivers (late) the messages of a fetch's answer (those `keep` accepts,
   * all by default); returns the ones that passed the checks.
   */
  async #take(
    answer: LogAnswer | undefined,
    chans: readonly string[],
    keep: (e: LoggedEntry) => boolean = () => true,
    checked?: (good: readonly LoggedEntry[]) => void,
  ): Promise<LoggedEntry[]> {
    const msgs = answer?.msgs ?? [];
    this.stats.batchesFetched++;
    const checks = await this.#checkAll(msgs, new Set(chans));
    const good = msgs.filter((_, i) => checks[i]);
    this.stats.refused += msgs.length - good.length;
    checked?.(good);
    const taken = good.filter(keep);
    if (taken.length > 0 && !this.#d.signal.aborted) {
      const received = taken.map((e) => {
        const origin = this.#d.membership.get(e.origin.id!)?.peer ?? fromWirePeer(e.origin);
        const m = new ReceivedMessage(
          e.id,
          e.type === MessageType.Direct ? 'direct' : 'broadcast',
          origin,
          decodeData(e.data),
          undefined,
          e.ts,
          e.topic,
          e.deps,
        ).withLog({
          epoch: e.epoch,
          channel: e.channel,
          seq: e.seq,
          sig: e.sig,
          key: e.origin.key,
          ...(e.prev !== undefined ? { prev: e.prev } : {}),
        });
        m.late = true;
        return m;
      });
      this.stats.messagesFetched += this.#d.journal.take(received);
    }
    return good;
  }

  /**
   * Which fetched messages are their origin's, of a channel this node takes and asked for. A
   * message that chains to the next one of its stream in the answer (`chainedRuns`) is as good
   * as that one; only the last of each chained run has its signature checked (off the main
   * thread). A run whose last signature fails is checked message by message.
   */
  async #checkAll(msgs: readonly LoggedEntry[], allowed: ReadonlySet<string>): Promise<boolean[]> {
    const fit = msgs.map((e) => fits(e, allowed));
    const next = chainedRuns(msgs);
    for (let i = 0; i < msgs.length; i++) if (!fit[i] || !fit[next[i]!]) next[i] = -1;
    const verify = (i: number): Promise<boolean> => {
      const e = msgs[i]!;
      return verifyOrigin(this.#d.keys, e.origin.id!, e.origin.key!, e, e.sig);
    };
    const signed = await Promise.all(msgs.map((_, i) => (fit[i] && next[i] === -1 ? verify(i) : false)));
    // A chained message is as good as the end of its run.
    const ok = vouchedByEnds(next, (j) => fit[j]! && signed[j]!);
    const unsure = msgs.flatMap((_, i) => (fit[i] && !ok[i] && next[i] !== -1 ? [i] : []));
    if (unsure.length > 0) {
      const again = await Promise.all(unsure.map(verify));
      unsure.forEach((i, n) => {
        ok[i] = again[n]!;
      });
    }
    return ok;
  }

  async #ask(member: Member, type: 12 | 13, log: LogRequest) {
    const res = await this.#d.client.request(
      destinationOf(member),
      this.#d.sealer.seal(type, { log }),
      this.#d.signal,
      this.#d.requestTimeoutMs,
    );
    if (res.status !== 200) {
      this.#d.logger.debug('catch-up request refused', { member: member.peer.id, status: res.status });
      return undefined;
    }
    const decoded = decodeLogAnswer(res.body);
    if (!decoded.ok) {
      this.#d.logger.debug('bad catch-up answer', { member: member.peer.id, why: decoded.refusal.message });
      return undefined;
    }
    return decoded.value;
  }

  #jitter(ms: number): number {
    // ±25%: spread out, and still at most one repair per 0.75 push-pull periods.
    return ms * (0.75 + this.#d.random.next() / 2);
  }

  // ---- serving ----

  /**
   * The answer to a log request from member `sender`, or a refusal (403) for a channel it does
   * not take: another node's direct messages.
   */
  answer(sender: string, type: number, log: LogRequest | undefined): InboundResponse | Refusal {
    this.#d.journal.flush();
    const store = this.#d.journal.store;
    if (type === MessageType.LogSummary) {
      const chans = log?.chans;
      if (chans === undefined)
        return refusal(400, 'invalid_message', 'No valid Message provided: a log summary needs log.chans');
      const bad = chans.find((c) => !mayRead(sender, c));
      if (bad !== undefined) return refusal(403, 'forbidden', `forbidden channel: ${bad} is another node's`);
      const sum = store
        .summary(chans)
        .filter((s) => TSP2P_ID.test(s.origin) && heldRanges(s).length > 0)
        .map((s) => ({ ...s, above: s.above.map(([a, b]) => [a, b] as [number, number]) }));
      return { status: 200, body: encodeSummaryAnswer(sum), contentType: 'application/json' };
    }
    const want = log?.want;
    const last = log?.last;
    if (want === undefined && last === undefined)
      return refusal(
        400,
        'invalid_message',
        'No valid Message provided: a log fetch needs log.want or log.last',
      );
    const asked = [...(want ?? []).map((r) => r.channel), ...(last !== undefined ? [last.channel] : [])];
    const bad = asked.find((c) => !mayRead(sender, c));
    if (bad !== undefined) return refusal(403, 'forbidden', `forbidden channel: ${bad} is another node's`);
    // What to serve, in order: at most the answer's count of messages (see `#servable`).
    const picked: StoredEntry[] = [];
    if (last !== undefined) {
      const c = last.channel;
      const entries =
        c === 'b'
          ? store.history({ limit: last.limit })
          : c.startsWith('t:')
            ? store.history({ topic: c.slice(2), limit: last.limit })
            : store.history({ with: c.slice(2), limit: last.limit }).filter((e) => e.channel === c);
      picked.push(...entries.slice(0, CATCH_UP_LIMITS.messages));
    }
    for (const r of want ?? []) {
      const room = CATCH_UP_LIMITS.messages - picked.length;
      if (room <= 0) break;
      const range = store.readRange(r, r.from, r.to, room);
      picked.push(...range);
      // A range that ends on a message without its own signature runs on to the signed one.
      const end = range[range.length - 1];
      if (end !== undefined && !signedOne(end) && picked.length < CATCH_UP_LIMITS.messages) {
        const on = store.readRange(
          r,
          end.seq + 1,
          end.seq + MAX_UNSIGNED_RUN,
          Math.min(MAX_UNSIGNED_RUN, CATCH_UP_LIMITS.messages - picked.length),
        );
        for (let k = 0; k < on.length && on[k]!.seq === end.seq + 1 + k; k++) {
          picked.push(on[k]!);
          if (signedOne(on[k]!)) break;
        }
      }
    }
    const fragments: Uint8Array[] = [];
    const served: StoredEntry[] = [];
    let bytes = 0;
    for (const e of picked) {
      // Past the byte bound, only to finish a run on its signed end (a run stops, signed, within
      // `MAX_UNSIGNED_RUN_BYTES`): cut inside it, the whole run would go unserved.
      const before = served[served.length - 1];
      if (
        before !== undefined &&
        bytes >= CATCH_UP_LIMITS.answerBytes &&
        (signedOne(before) || !follows(before, e))
      )
        break;
      const f = servedEntry(e);
      if (f === undefined) continue;
      fragments.push(f);
      served.push(e);
      bytes += f.length;
    }
    const keep = servable(served);
    const out = fragments.filter((_, i) => keep[i]);
    this.stats.batchesServed++;
    this.stats.messagesServed += out.length;
    return { status: 200, body: encodeMessagesAnswer(out), contentType: 'application/json' };
  }
}

/** A stream's key in {@link CatchUp}'s maps. */
function streamKey(s: { origin: string; epoch: string; channel: string }): string {
  return `${s.origin}\u0000${s.epoch}\u0000${s.channel}`;
}

/**
 * The ranges of `want` that an answer (its checked messages, `got`) stopped short of, by stream:
 * the last number of the first such range that the answer holds with every number before it
 * in the range (`from - 1` when none), and whether it holds any. Asked for because the member
 * listed them, ranges come whole unless the answer was cut (its byte bound), refused, or its
 * member no longer holds them.
 */
function shortRanges(
  want: readonly LogRange[],
  got: readonly LoggedEntry[],
): Map<string, { last: number; any: boolean }> {
  const held = new Map<string, Set<number>>();
  for (const e of got) {
    const k = streamKey({ origin: e.origin.id!, epoch: e.epoch, channel: e.channel });
    const set = held.get(k);
    if (set === undefined) held.set(k, new Set([e.seq]));
    else set.add(e.seq);
  }
  const short = new Map<string, { last: number; any: boolean }>();
  for (const r of want) {
    const k = streamKey(r);
    if (short.has(k)) continue;
    const set = held.get(k);
    let last = r.from - 1;
    while (last < r.to && set?.has(last + 1) === true) last++;
    if (last < r.to) short.set(k, { last, any: last >= r.from });
  }
  return short;
}

/** A fetched message is of a channel this node takes and asked for, as that channel's kind, with its origin's key. */
function fits(e: LoggedEntry, allowed: ReadonlySet<string>): boolean {
  if (!allowed.has(e.channel) || e.origin.id === undefined || e.origin.key === undefined) return false;
  return e.channel === 'b'
    ? e.type === MessageType.Broadcast && e.topic === undefined
    : e.channel.startsWith('t:')
      ? e.type === MessageType.Broadcast && e.topic === e.channel.slice(2)
      : e.type === MessageType.Direct && e.topic === undefined;
}

/** Whether `sender` may read `channel`: anything but another node's direct messages. */
function mayRead(sender: string, channel: string): boolean {
  return !channel.startsWith('d:') || channel === `d:${sender}`;
}

/** Whether `e` is the message right after `before` in the same stream. */
function follows(before: StoredEntry, e: StoredEntry): boolean {
  return (
    e.seq === before.seq + 1 &&
    e.origin.id === before.origin.id &&
    e.epoch === before.epoch &&
    e.channel === before.channel
  );
}

/** Whether a stored message has its origin's own signature. */
function signedOne(e: StoredEntry): boolean {
  return unpackSig(e.sig)?.sig !== undefined;
}

/**
 * Which of `entries` an asker can check: those with their origin's signature, and those whose
 * successor in the answer (same stream, next number, with `prev`) it can check. The rest (the
 * unsigned end of a run this node holds only part of) would be refused: they are not sent.
 */
function servable(entries: readonly StoredEntry[]): boolean[] {
  const key = (e: StoredEntry, seq: number): string =>
    `${e.origin.id}\u0000${e.epoch}\u0000${e.channel}\u0000${seq}`;
  const at = new Map<string, number>();
  for (let i = 0; i < entries.length; i++) at.set(key(entries[i]!, entries[i]!.seq), i);
  const packed = entries.map((e) => unpackSig(e.sig));
  // A signed message ends its run; an unsigned one goes on to its successor, when that has `prev`.
  const next = new Int32Array(entries.length).fill(-1);
  for (let i = 0; i < entries.length; i++) {
    if (packed[i]?.sig !== undefined) continue;
    const j = at.get(key(entries[i]!, entries[i]!.seq + 1));
    if (j !== undefined && packed[j]?.prev !== undefined) next[i] = j;
  }
  return vouchedByEnds(next, (j) => packed[j]?.sig !== undefined);
}

/**
 * A stored message as a catch-up answer carries it; `undefined` without its origin's key. Its
 * `sig` is absent when it has none of its own (see {@link servable}).
 */
function servedEntry(e: StoredEntry): Buffer | undefined {
  const signed = unpackSig(e.sig);
  if (signed === undefined) return undefined;
  return encodeMessageEntry({
    type: e.kind === 'direct' ? MessageType.Direct : MessageType.Broadcast,
    id: e.id,
    ts: e.at,
    data: encodeData(e.payload),
    origin: {
      id: e.origin.id,
      address: e.origin.address,
      port: e.origin.port,
      ...(e.origin.name !== undefined ? { name: e.origin.name } : {}),
      key: signed.key,
    },
    ...(signed.sig !== undefined ? { sig: signed.sig } : {}),
    ...(e.topic !== undefined ? { topic: e.topic } : {}),
    log: {
      epoch: e.epoch,
      channel: e.channel,
      seq: e.seq,
      ...(signed.prev !== undefined ? { prev: signed.prev } : {}),
    },
    ...(e.deps.length > 0 ? { deps: e.deps } : {}),
  });
}
