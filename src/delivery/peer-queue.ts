/**
 * One outbound queue per peer: FIFO, batching, retries, backpressure.
 *
 * - **Order.** Each message gets the next sequence number on this link when it first leaves, and
 *   the receiver delivers numbers in order, so messages arrive in the order they were queued.
 * - **Batching.** Messages queued in one task (with `coalesce`: a loop of `broadcast()` calls)
 *   leave together, and while requests are in flight new messages wait and go together in the
 *   next one (bounded in count and bytes). An idle queue sends as soon as the task that queued
 *   the message is done, before any timer or I/O: batching costs no latency at low load. A
 *   gop2p peer gets one message per request, as it expects.
 * - **Pipelining.** To a tsp2p peer, a second batch may leave before the first is answered when
 *   enough is waiting (`pipelineBytes`), so that encoding, sending and decoding overlap. The
 *   receiver holds a batch that overtook its predecessor until that one is delivered, so a 200
 *   still means "delivered, and everything before it too".
 * - **Retries.** A failed request is retried with exponential backoff and full jitter until it
 *   succeeds, the peer leaves the network, or a message's delivery deadline passes while the peer
 *   has acknowledged nothing for `progressMs` (see "Slow peers"). Numbers stay
 *   with their messages, so the receiver delivers each one exactly once, however many times a
 *   batch is retried. Each batch tells the receiver the lowest number still unsettled (`base`),
 *   so numbers given up (cancelled, expired, refused for good) leave no gap it would wait for.
 * - **Backpressure.** The queue is bounded in messages and bytes; {@link PeerQueue.hasRoom}
 *   and {@link PeerQueue.waitForRoom} let the caller wait, or refuse, before queueing more.
 * - **Slow peers.** A peer that answers slowly (a process starved of CPU takes seconds for a
 *   batch) is not cut off and sent the same batch again every `requestTimeoutMs`:
 *   - a request waits as long as the peer's measured answers call for: RFC 6298's estimator
 *     (`RoundTrip`, shared with the failure detector's probes) over every answer, never less than
 *     `requestTimeoutMs`; a request that timed out doubles the wait until the next answer. It
 *     never waits past its oldest message's deadline (as kept below) plus `requestTimeoutMs`;
 *   - a request that timed out halves the messages in flight to the peer (its retry included);
 *     each acknowledged batch lets as many more in flight again, until the limits alone decide;
 *   - a peer that acknowledges batches is alive and taking them: its messages are not given up at
 *     their deadline while it acknowledged one less than `progressMs` ago (the node's
 *     `deliveryTimeoutMs`), or before it, while the first request to it is less than that old,
 *     so a message is kept until `max(deadline, last acknowledgement (or first request) +
 *     progressMs)`. A peer that took nothing for `progressMs` loses what is past its deadline,
 *     as before; the queue's bounds keep what waits for it bounded. (A receiver's catch-up takes
 *     a live copy whenever it comes: `Store.skip`.)
 *
 * @module
 */

import type { TimerHandle } from '../clock.js';
import { P2PError, PeerRefusedError, TimeoutError } from '../errors.js';
import { RoundTrip } from '../membership/failure-detector.js';
import { type Destination, refusedError } from '../transport/peer-client.js';
import {
  afterFailure,
  classicForm,
  type OutboundMessage,
  type PeerQueueDeps,
  retryDelay,
} from './outbound.js';

/** The longest a request waits is this many times `requestTimeoutMs` (as a probe's). */
const MAX_WAIT_FACTOR = 9;

/** A caller waiting for room for `bytes`. */
type RoomWaiter = { readonly bytes: number; readonly wake: () => void };

/**
 * Where the outcomes of queued messages go: slot `slot` of it is settled once, with `undefined`
 * (delivered, or cancelled) or the error that gave the message up. One broadcast to N members
 * shares one of these across N queues (`Outbox.deliver`): no promise per member and message.
 */
export interface Outcomes {
  settled(slot: number, error: P2PError | undefined): void;
}

/** A message in a queue, as {@link PeerQueue.add} hands it back: it can be cancelled. */
export interface Queued {
  /** Set to give the message up if it has not left yet (settled with `undefined`). */
  cancelled: boolean;
}

interface Pending extends Queued {
  readonly msg: OutboundMessage;
  /** Its number on this link, given when it first leaves; kept for every retry. */
  seq: number | undefined;
  readonly to: Outcomes;
  readonly slot: number;
}

/** The outcome of one message in one queue, as a promise ({@link PeerQueue.enqueue}). */
class OneOutcome implements Outcomes {
  readonly done: Promise<void>;
  #resolve!: () => void;
  #reject!: (error: P2PError) => void;

  constructor() {
    this.done = new Promise<void>((resolve, reject) => {
      this.#resolve = resolve;
      this.#reject = reject;
    });
  }

  settled(_slot: number, error: P2PError | undefined): void {
    if (error === undefined) this.#resolve();
    else this.#reject(error);
  }
}

/** Settles `p` with `error`. */
function settle(p: Pending, error: P2PError | undefined): void {
  p.to.settled(p.slot, error);
}

/** A batch in flight: how many queue slots it holds, and how its request ended. */
interface Flight {
  readonly n: number;
  readonly bytes: number;
  result: 'ok' | P2PError | undefined;
}

/** The outbound queue to one peer. */
export class PeerQueue {
  readonly #to: Destination;
  readonly #batching: boolean;
  readonly #d: PeerQueueDeps;
  readonly #pending: Pending[] = [];
  #head = 0;
  #bytes = 0;
  #nextSeq = 1;
  /** Batches in flight, oldest first; they hold the queue's first `#inFlight` slots. */
  #flights: Flight[] = [];
  #inFlight = 0;
  #inFlightBytes = 0;
  /** A request failed: nothing more leaves until every batch in flight is back. */
  #draining = false;
  #attempt = 0;
  #retriedAtOnce = false;
  #retryTimer: TimerHandle | undefined;
  #closed: P2PError | undefined;
  readonly #roomWaiters = new Set<RoomWaiter>();
  readonly #idleWaiters = new Set<() => void>();
  /** The peer's answer times: how long a request waits for its answer. */
  readonly #rtt: RoundTrip;
  /** Most messages in flight: unbounded until a request times out (see "Slow peers"). */
  #window = Number.POSITIVE_INFINITY;
  /**
   * Clock ms since which the peer has taken nothing (see "Slow peers"): its last acknowledged
   * batch, or the first request this queue sent it when none was acknowledged yet.
   */
  #ackedAt = Number.NEGATIVE_INFINITY;

  /**
   * @param to - the peer
   * @param batching - whether the peer takes batches (tsp2p) or one message per request (gop2p)
   */
  constructor(to: Destination, batching: boolean, deps: PeerQueueDeps) {
    this.#to = to;
    this.#batching = batching;
    this.#d = deps;
    const l = deps.limits;
    this.#rtt = new RoundTrip(l.requestTimeoutMs, MAX_WAIT_FACTOR * l.requestTimeoutMs);
  }

  /**
   * How long the next request waits for its answer, in ms, as the peer's measured answers call for
   * (see "Slow peers"; a request also never waits past its oldest message's deadline plus
   * `requestTimeoutMs`).
   */
  get requestTimeoutMs(): number {
    return this.#rtt.timeoutMs;
  }

  /** Most messages in flight now: `Infinity` until a request timed out (see "Slow peers"). */
  get window(): number {
    return this.#window;
  }

  /** Messages waiting or in flight. */
  get length(): number {
    return this.#pending.length - this.#head;
  }

  /** Bytes waiting or in flight. */
  get bytes(): number {
    return this.#bytes;
  }

  /**
   * Whether a message of `bytes` fits within the queue's bounds now, without overtaking a caller
   * that waits for room.
   */
  hasRoom(bytes: number): boolean {
    return this.#roomWaiters.size === 0 && this.#fits(this.length, this.#bytes, bytes);
  }

  #fits(length: number, queuedBytes: number, bytes: number): boolean {
    if (length === 0) return true;
    const l = this.#d.limits;
    return length < l.maxQueueMessages && queuedBytes + bytes <= l.maxQueueBytes;
  }

  /**
   * Resolves once a message of `bytes` fits, or the queue closes; callers are let in in the order
   * they came. Rejects with `signal.reason`.
   */
  waitForRoom(bytes: number, signal: AbortSignal | undefined): Promise<void> {
    if (this.hasRoom(bytes) || this.#closed) return Promise.resolve();
    if (signal?.aborted) return Promise.reject(signal.reason);
    return new Promise((resolve, reject) => {
      const onAbort = (): void => {
        this.#roomWaiters.delete(waiter);
        reject(signal?.reason);
        this.#wake(); // the callers behind it may fit
      };
      const waiter: RoomWaiter = {
        bytes,
        wake: () => {
          signal?.removeEventListener('abort', onAbort);
          resolve();
        },
      };
      this.#roomWaiters.add(waiter);
      signal?.addEventListener('abort', onAbort, { once: true });
      // A caller woken earlier may have given up without queueing: look again.
      this.#wake();
    });
  }

  /**
   * Looks again for callers that now fit. For a caller that was let in by
   * {@link PeerQueue.waitForRoom} but then gave up without queueing (it waited on several queues
   * and another one failed it): the room it was counted for would otherwise go unused until the
   * queue next changes, which an idle queue never does.
   */
  recheckRoom(): void {
    this.#wake();
  }

  /**
   * Queues a message. Resolves once the peer acknowledged it; rejects with the reason it was
   * given up (the peer left or died, the deadline passed, or the peer refused it for good).
   */
  enqueue(msg: OutboundMessage): { done: Promise<void>; cancel: () => void } {
    const one = new OneOutcome();
    const e = this.add(msg, one, 0);
    return {
      done: one.done,
      cancel: () => {
        e.cancelled = true;
      },
    };
  }

  /**
   * Queues `msg`, whose outcome goes to slot `slot` of `to` (see {@link Outcomes}; at once when
   * the queue is closed). Returns the queued message, to cancel it.
   */
  add(msg: OutboundMessage, to: Outcomes, slot: number): Queued {
    const e: Pending = { msg, seq: undefined, to, slot, cancelled: false };
    if (this.#closed) {
      to.settled(slot, this.#closed);
      return e;
    }
    this.#pending.push(e);
    this.#bytes += msg.bytes;
    if (this.#d.limits.coalesce) this.#schedulePump();
    else this.#pump();
    return e;
  }

  /** Resolves when nothing is waiting or in flight (or after `timeoutMs`). */
  async flush(timeoutMs: number): Promise<void> {
    if (this.length === 0) return;
    await new Promise<void>((resolve) => {
      const timer = this.#d.clock.setTimeout(() => {
        this.#idleWaiters.delete(done);
        resolve();
      }, timeoutMs);
      const done = (): void => {
        timer.cancel();
        resolve();
      };
      this.#idleWaiters.add(done);
    });
  }

  /** Gives up every waiting message with `reason`; the queue accepts nothing more. Idempotent. */
  close(reason: P2PError): void {
    if (this.#closed) return;
    this.#closed = reason;
    this.#retryTimer?.cancel();
    this.#retryTimer = undefined;
    // Batches in flight settle their own messages when they return.
    const from = this.#head + this.#inFlight;
    for (let i = from; i < this.#pending.length; i++) settle(this.#pending[i]!, reason);
    this.#pending.length = Math.min(this.#pending.length, from);
    this.#wake();
    if (this.length === 0) this.#idle();
  }

  // Lowered when the peer answers 413 to a batch.
  #batchCap = Number.POSITIVE_INFINITY;

  #pumpScheduled = false;

  /**
   * Pumps once the current task has queued what it will: messages queued in one go (a loop of
   * `broadcast()` calls, a burst of relays) leave in one batch instead of one request each, and
   * a message queued alone still leaves before any timer or I/O runs.
   */
  #schedulePump(): void {
    if (this.#pumpScheduled) return;
    this.#pumpScheduled = true;
    queueMicrotask(() => {
      this.#pumpScheduled = false;
      this.#pump();
    });
  }

  /** Sends what can leave now: a first batch, and more while pipelining is worth it. */
  #pump(): void {
    if (!this.#closed && this.#retryTimer === undefined && !this.#draining) {
      if (this.#flights.length === 0) this.#dropCancelledAndExpired();
      const l = this.#d.limits;
      const maxFlights = this.#batching ? Math.max(1, l.maxInFlight) : 1;
      while (this.#flights.length < maxFlights && this.#inFlight < this.#window) {
        // Another batch leaves early only when enough waits; else it gathers for the next one.
        if (this.#flights.length > 0 && this.#bytes - this.#inFlightBytes < l.pipelineBytes) break;
        const batch = this.#takeBatch();
        if (batch.length === 0) break;
        this.#launch(batch);
      }
    }
    if (this.length === 0) this.#idle();
  }

  #launch(batch: Pending[]): void {
    let bytes = 0;
    for (const p of batch) bytes += p.msg.bytes;
    const flight: Flight = { n: batch.length, bytes, result: undefined };
    this.#flights.push(flight);
    this.#inFlight += batch.length;
    this.#inFlightBytes += bytes;
    void this.#send(batch).then((error) => {
      flight.result = error ?? 'ok';
      this.#land();
    });
  }

  /** A batch came back: settle what is known, and send on or retry. */
  #land(): void {
    const flights = this.#flights;
    // A 200 means the receiver delivered that batch and everything before it (it delivers in
    // order, holding a batch that overtook its predecessor): every batch up to it is done.
    let lastOk = -1;
    for (let i = 0; i < flights.length; i++) if (flights[i]!.result === 'ok') lastOk = i;
    if (lastOk >= 0) {
      let n = 0;
      for (let i = 0; i <= lastOk; i++) {
        n += flights[i]!.n;
        this.#inFlightBytes -= flights[i]!.bytes;
      }
      flights.splice(0, lastOk + 1);
      this.#ackedAt = this.#d.clock.now();
      this.#inFlight -= n;
      this.#attempt = 0;
      this.#retriedAtOnce = false;
      this.#acknowledged(n);
      this.#complete(n, undefined);
    }
    if (flights.some((f) => f.result !== undefined)) this.#draining = true;
    if (this.#draining || this.#closed) {
      if (flights.some((f) => f.result === undefined)) return; // wait for the others
      const first = flights[0];
      const sent = this.#inFlight;
      this.#flights = [];
      this.#inFlight = 0;
      this.#inFlightBytes = 0;
      this.#draining = false;
      if (first !== undefined) this.#failed(first.n, first.result as P2PError, sent);
    }
    this.#pump();
  }

  /** The peer acknowledged `n` more messages: as many more may be in flight (see "Slow peers"). */
  #acknowledged(n: number): void {
    if (this.#window === Number.POSITIVE_INFINITY) return;
    const l = this.#d.limits;
    const most = Math.min(l.maxBatchMessages, this.#batchCap) * Math.max(1, l.maxInFlight);
    this.#window += n;
    if (this.#window >= most) this.#window = Number.POSITIVE_INFINITY;
  }

  /**
   * The oldest batch failed with `error` (any later ones failed too, and go again); `sent`
   * messages were in flight.
   */
  #failed(n: number, error: P2PError, sent: number): void {
    if (this.#closed) {
      this.#complete(this.length, this.#closed);
      return;
    }
    if (error instanceof TimeoutError) {
      // The peer is slow to answer (or gone: the deadlines and the failure detector see to that).
      // Wait longer, and send it less at once.
      this.#rtt.backOff();
      this.#window = Math.max(1, Math.floor(Math.min(this.#window, sent) / 2));
    }
    const verdict = afterFailure(error, n, !this.#batching);
    if (verdict === 'halve') {
      // The peer takes smaller bodies than we send: halve the batches to it and try again.
      this.#batchCap = Math.max(1, Math.floor(n / 2));
      return;
    }
    if (verdict === 'give_up') {
      // The peer will never take these: give them up, and carry on with the rest.
      this.#complete(n, error);
      return;
    }
    if (error instanceof PeerRefusedError && !this.#retriedAtOnce && this.#d.retryAtOnce?.(error)) {
      this.#retriedAtOnce = true; // once: if the cure did not work, back off as usual
      return;
    }
    // Retry later, with backoff and full jitter; the messages stay at the head, in order.
    const delay = retryDelay(this.#attempt, this.#d.limits, this.#d.random, error);
    this.#attempt++;
    this.#lastError = error;
    this.#retryTimer = this.#d.clock.setTimeout(() => {
      this.#retryTimer = undefined;
      this.#pump();
    }, delay);
  }

  #idle(): void {
    for (const w of [...this.#idleWaiters]) w();
    this.#idleWaiters.clear();
  }

  #lastError: P2PError | undefined;

  #dropCancelledAndExpired(): void {
    const now = this.#d.clock.now();
    const before = this.#head;
    // One error for all the messages given up together: an error's stack costs microseconds, and
    // a queue under a burst gives up thousands at once.
    let expired: TimeoutError | undefined;
    while (this.#head < this.#pending.length) {
      const p = this.#pending[this.#head]!;
      if (p.cancelled) {
        this.#shift();
        settle(p, undefined);
        continue;
      }
      if (p.msg.deadline <= now && this.#givesUp(now)) {
        this.#shift();
        expired ??= this.#expiredError();
        settle(p, expired);
        continue;
      }
      break;
    }
    const dropped = this.#head !== before;
    this.#compact();
    if (dropped) this.#wake();
  }

  /**
   * The next batch, after those in flight. A message that never left and was cancelled or is
   * past its deadline is settled and taken out here; one that left already keeps its number and
   * goes again (the receiver may have it), until it reaches the head.
   */
  #takeBatch(): Pending[] {
    const l = this.#d.limits;
    const room = Math.max(1, this.#window - this.#inFlight);
    const max = this.#batching ? Math.min(l.maxBatchMessages, this.#batchCap, room) : 1;
    const now = this.#d.clock.now();
    const out: Pending[] = [];
    let bytes = 0;
    let expired: TimeoutError | undefined;
    let i = this.#head + this.#inFlight;
    while (i < this.#pending.length && out.length < max) {
      const p = this.#pending[i]!;
      if (p.seq === undefined && (p.cancelled || (p.msg.deadline <= now && this.#givesUp(now)))) {
        this.#pending.splice(i, 1);
        this.#bytes -= p.msg.bytes;
        if (p.cancelled) settle(p, undefined);
        else {
          expired ??= this.#expiredError();
          settle(p, expired);
        }
        this.#wake();
        continue;
      }
      if (out.length > 0 && bytes + p.msg.bytes > l.maxBatchBytes) break;
      p.seq ??= this.#nextSeq++;
      out.push(p);
      bytes += p.msg.bytes;
      i++;
    }
    return out;
  }

  /**
   * Whether a message past its deadline is given up now: unless the peer acknowledged a batch
   * less than `progressMs` ago (see "Slow peers").
   */
  #givesUp(now: number): boolean {
    return now - this.#ackedAt >= (this.#d.limits.progressMs ?? 0);
  }

  #expiredError(): TimeoutError {
    const why = this.#lastError ? `: ${this.#lastError.message}` : '';
    return new TimeoutError(`not delivered before the delivery deadline${why}`);
  }

  async #send(batch: readonly Pending[]): Promise<P2PError | undefined> {
    try {
      this.#d.beforeSend?.();
      const sealed = this.#batching
        ? this.#d.sealBatch(
            this.#d.stream,
            batch[0]!.seq!,
            batch.map((p) => p.msg.fragment),
            // Everything before the oldest message still queued is settled.
            this.#pending[this.#head]!.seq!,
          )
        : classicForm(batch[0]!.msg);
      const d = this.#d;
      const sentAt = d.clock.now();
      // Asked for the first time: a sender starved of CPU may send a member its first batch late,
      // and the member has had no chance to take anything before.
      if (this.#ackedAt === Number.NEGATIVE_INFINITY) this.#ackedAt = sentAt;
      let due = Number.POSITIVE_INFINITY;
      for (const p of batch) if (p.msg.deadline < due) due = p.msg.deadline;
      const l = d.limits;
      // Kept past its deadline while the peer acknowledges batches (see "Slow peers").
      due = Math.max(due, this.#ackedAt + (l.progressMs ?? 0));
      const wait = Math.ceil(
        Math.max(l.requestTimeoutMs, Math.min(this.#rtt.timeoutMs, due + l.requestTimeoutMs - sentAt)),
      );
      const res = await d.client.request(this.#to, sealed, d.signal, wait);
      this.#rtt.sample(d.clock.now() - sentAt);
      const ok = res.status === 200;
      this.#d.onBatch?.(batch.length, ok);
      return ok ? undefined : refusedError(res);
    } catch (err) {
      this.#d.onBatch?.(batch.length, false);
      return err instanceof P2PError
        ? err
        : new P2PError('ERR_PEER_UNREACHABLE', String(err), { cause: err });
    }
  }

  #complete(n: number, error: P2PError | undefined): void {
    for (let i = 0; i < n && this.#head < this.#pending.length; i++) {
      const p = this.#pending[this.#head]!;
      this.#shift();
      settle(p, error);
    }
    this.#compact();
    this.#wake();
  }

  #shift(): void {
    const p = this.#pending[this.#head]!;
    this.#bytes -= p.msg.bytes;
    this.#pending[this.#head] = undefined as unknown as Pending;
    this.#head++;
  }

  #compact(): void {
    if (this.#head > 1024 && this.#head * 2 > this.#pending.length) {
      this.#pending.splice(0, this.#head);
      this.#head = 0;
    } else if (this.#head === this.#pending.length) {
      this.#pending.length = 0;
      this.#head = 0;
    }
  }

  /**
   * Lets waiting callers in, in the order they came, as many as the room takes: each one queues
   * its message a moment later, so it counts as queued already. The bounds thus hold however
   * many callers wait.
   */
  #wake(): void {
    let length = this.length;
    let bytes = this.#bytes;
    for (const w of this.#roomWaiters) {
      if (!this.#closed && !this.#fits(length, bytes, w.bytes)) break;
      this.#roomWaiters.delete(w);
      w.wake();
      length++;
      bytes += w.bytes;
    }
  }
}
