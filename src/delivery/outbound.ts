/**
 * What travels through a `PeerQueue`: a message encoded once for every receiver, and what
 * a queue is given (its limits, its sealer of batches, its client); and the retry policy of a
 * failed request.
 *
 * @module
 */

import type { Clock } from '../clock.js';
import { type P2PError, PeerRefusedError, ProtocolError } from '../errors.js';
import type { Sealed } from '../protocol/envelope.js';
import type { Random } from '../random.js';
import type { PeerClient } from '../transport/peer-client.js';

/** A message ready to be queued to any number of peers: serialized once for all of them. */
export interface OutboundMessage {
  readonly id: string;
  /** The message as one JSON object, for a batch: bytes (UTF-8) or text. */
  readonly fragment: Uint8Array | string;
  /** Bytes on the wire (approximate when the fragment is text). */
  readonly bytes: number;
  /**
   * The message as a whole gop2p-style envelope, for peers that cannot take batches; absent for
   * what goes to tsp2p members only (relays, tree entries).
   */
  readonly single?: () => Sealed;
  /** Clock time after which the message is given up. */
  readonly deadline: number;
}

/**
 * Builds the sealed batch request for `fragments`, numbered from `seq` on `stream`; every number
 * below `base` is settled (delivered or given up).
 */
export type SealBatch = (
  stream: string,
  seq: number,
  fragments: readonly (Uint8Array | string)[],
  base: number,
) => Sealed;

/** Limits and timings of a queue. */
export interface PeerQueueLimits {
  /** Most messages in one request. */
  readonly maxBatchMessages: number;
  /** Most bytes of messages in one request (a single larger message still goes alone). */
  readonly maxBatchBytes: number;
  /** Most messages waiting. */
  readonly maxQueueMessages: number;
  /** Most bytes waiting. */
  readonly maxQueueBytes: number;
  /**
   * Time limit of one request while nothing is known of the peer's answers, and the least it
   * ever gets: a queue waits longer for a peer whose answers it measured slower (see
   * `PeerQueue`, "Slow peers").
   */
  readonly requestTimeoutMs: number;
  /** First retry delay; each further retry doubles it, up to `retryMaxMs`, with full jitter. */
  readonly retryBaseMs: number;
  /** Longest retry delay. */
  readonly retryMaxMs: number;
  /**
   * A message past its deadline is still kept, and retried, while the peer acknowledged a batch
   * less than this long ago: a peer that keeps taking batches is slow (a process starved of CPU
   * takes seconds for one), not gone, and gets everything, later. A peer that took nothing for
   * this long (since the first request to it, when it never did) loses what is past its deadline,
   * as before. The queue's bounds still hold (senders
   * wait for room). The node passes `deliveryTimeoutMs`. @default 0 (the deadline alone)
   */
  readonly progressMs?: number;
  /** Most batches in flight at once to a tsp2p peer (a gop2p peer always gets one). */
  readonly maxInFlight: number;
  /** Bytes that must be waiting, beyond the batches in flight, before another batch leaves early. */
  readonly pipelineBytes: number;
  /**
   * Send once the current task is done queueing (a microtask later), so that messages queued in
   * one go leave together; `false` sends from inside `enqueue()`.
   */
  readonly coalesce: boolean;
}

/** What a queue needs from its node. */
export interface PeerQueueDeps {
  readonly client: PeerClient;
  readonly clock: Clock;
  readonly random: Random;
  readonly limits: PeerQueueLimits;
  /** Aborts every request when the node stops. */
  readonly signal: AbortSignal;
  readonly sealBatch: SealBatch;
  /** This link's stream id: new each time the node starts. */
  readonly stream: string;
  /** Counters the node exposes. */
  readonly onBatch?: (messages: number, ok: boolean) => void;
  /**
   * Called before any request leaves: the node commits the messages it wrote that its log has
   * not committed yet (`OwnLog.flush`), so that nothing is sent that a crash could take back.
   */
  readonly beforeSend?: () => void;
  /**
   * Called with a refusal before it is retried with backoff: `true` when the node removed its
   * cause (so the batch goes again at once, once), `false` to back off as usual.
   */
  readonly retryAtOnce?: (error: PeerRefusedError) => boolean;
}

/**
 * A message's classic envelope, for a gop2p peer (one message per request).
 *
 * @throws {ProtocolError} `ERR_PROTOCOL` for a message that goes to tsp2p members only
 */
export function classicForm(msg: OutboundMessage): Sealed {
  if (msg.single === undefined)
    throw new ProtocolError(`message ${msg.id} has no form a gop2p peer can take`);
  return msg.single();
}

/** The longest `Retry-After` honoured: a peer cannot park a queue for longer. */
const MAX_RETRY_AFTER_MS = 60_000;

/** Statuses after which retrying cannot help. */
const PERMANENT = new Set([400, 404, 405, 413]);

/** Also final from a gop2p peer: it refuses this node for good. */
const GOP2P_PERMANENT = new Set([401, 403]);

/**
 * What a failed batch of `n` messages calls for: `'halve'` the batches (413 on a batch of
 * several), `'give_up'` its messages (a status retrying cannot help), or `'retry'`.
 *
 * A gop2p peer's 401 or 403 is final: it does not count this node as a member under any of its
 * names (src/compat/), or takes no gop2p traffic at all, and nothing a retry does changes that.
 * A tsp2p peer's 403 may be a view that has not converged yet, and its 401 has its own cure.
 *
 * @param gop2p - whether the peer is a gop2p node
 */
export function afterFailure(error: P2PError, n: number, gop2p = false): 'halve' | 'give_up' | 'retry' {
  if (!(error instanceof PeerRefusedError)) return 'retry';
  if (error.status === 413 && n > 1) return 'halve';
  if (gop2p && GOP2P_PERMANENT.has(error.status)) return 'give_up';
  return PERMANENT.has(error.status) ? 'give_up' : 'retry';
}

/**
 * The delay before retry number `attempt` (from 0): exponential backoff from `retryBaseMs` up to
 * `retryMaxMs`, with full jitter; never sooner than a peer's `Retry-After` (429, 503).
 */
export function retryDelay(
  attempt: number,
  limits: Pick<PeerQueueLimits, 'retryBaseMs' | 'retryMaxMs'>,
  random: Random,
  error: P2PError,
): number {
  const cap = Math.min(limits.retryMaxMs, limits.retryBaseMs * 2 ** Math.min(attempt, 16));
  const delay = Math.max(1, Math.floor(random.next() * cap));
  if (error instanceof PeerRefusedError && error.retryAfterMs !== undefined) {
    return Math.max(delay, Math.min(error.retryAfterMs, MAX_RETRY_AFTER_MS));
  }
  return delay;
}
