/**
 * The vocabulary of the Plumtree state machine (`plumtree.ts`): message references, the actions
 * it asks its node to carry out, its tunables and their defaults.
 *
 * @module
 */

import type { Clock } from '../clock.js';
import type { Random } from '../random.js';

/** Names one broadcast: its origin's node id and the origin's message id. */
export interface MessageRef {
  /** The node id of the message's writer. */
  readonly origin: string;
  /** The message id the writer gave it. */
  readonly id: string;
}

/** What a `Plumtree` asks its node to do. Peers are named by node id. */
export type PlumtreeAction<T> =
  /** Send the message in full to each of `to`. */
  | { readonly kind: 'push'; readonly to: readonly string[]; readonly ref: MessageRef; readonly message: T }
  /** Announce these message ids to `to`. */
  | { readonly kind: 'ihave'; readonly to: string; readonly refs: readonly MessageRef[] }
  /** Ask `to` for these messages, and to push to this node from now on (`refs` may be empty). */
  | { readonly kind: 'graft'; readonly to: string; readonly refs: readonly MessageRef[] }
  /** Tell `to` to stop pushing messages to this node in full. */
  | { readonly kind: 'prune'; readonly to: string };

/** Tunables of a `Plumtree`; every one has a default. */
export interface PlumtreeLimits {
  /** How long an IHAVE'd message may take to arrive before it is grafted. @default 1000 */
  readonly graftTimeoutMs: number;
  /** How long each further announcer is given after a GRAFT. @default 500 */
  readonly graftRetryMs: number;
  /** GRAFTs sent for one missing message before it is given up. @default 4 */
  readonly maxGrafts: number;
  /**
   * How long the view must stay unchanged before its new peers are sent an empty GRAFT: joins
   * come in bursts, and each peer greeted and then replaced would stay linked. @default 1000
   */
  readonly greetDelayMs: number;
  /** How long ids wait to be announced, to go several per IHAVE. @default 250 */
  readonly ihaveFlushMs: number;
  /** Most ids in one IHAVE (more are sent at once). @default 512 */
  readonly maxIHaveIds: number;
  /** Most messages kept to answer GRAFTs. @default 4096 */
  readonly cacheMessages: number;
  /** Most bytes of messages kept to answer GRAFTs. @default 16 MiB */
  readonly cacheBytes: number;
  /** How long a message is kept to answer GRAFTs, in ms. @default 120000 */
  readonly cacheWindowMs: number;
  /** How long a received message id is remembered, to recognise duplicates. @default 600000 */
  readonly seenWindowMs: number;
  /** Most message ids remembered. @default 100000 */
  readonly seenCapacity: number;
  /** Most messages waited for at once (announced, not received). @default 10000 */
  readonly maxMissing: number;
  /**
   * Duplicates in a row from one eager peer, with no new message from it in between, before the
   * link is pruned. 1 is the paper's rule (prune at the first duplicate); with broadcasts from
   * several origins at once, different nodes then prune different links of one cycle for
   * different messages, parts of the tree fall off and wait for GRAFTs. A link that brings any
   * origin's messages first is kept. @default 4
   */
  readonly pruneAfterDuplicates: number;
}

/** The defaults of {@link PlumtreeLimits}. */
export const PLUMTREE_DEFAULTS: PlumtreeLimits = Object.freeze({
  graftTimeoutMs: 1_000,
  graftRetryMs: 500,
  maxGrafts: 4,
  pruneAfterDuplicates: 4,
  greetDelayMs: 1_000,
  ihaveFlushMs: 250,
  maxIHaveIds: 512,
  cacheMessages: 4_096,
  cacheBytes: 16 * 1024 * 1024,
  cacheWindowMs: 120_000,
  seenWindowMs: 600_000,
  seenCapacity: 100_000,
  maxMissing: 10_000,
});

/** What a `Plumtree` needs. */
export interface PlumtreeOptions<T> {
  readonly clock: Clock;
  readonly random: Random;
  /** The view size for `members` members: the number of peers each node starts eager with. */
  readonly fanout: (members: number) => number;
  /** Carries out what timers decide (IHAVE flushes, GRAFTs). */
  readonly sink: (actions: PlumtreeAction<T>[]) => void;
  /** The size of a message in bytes, for the cache's bound. */
  readonly sizeOf: (message: T) => number;
  readonly limits?: Partial<PlumtreeLimits>;
}

/** The result of `Plumtree.receive()`. */
export interface Received<T> {
  /** Whether the message is new here: the node delivers it to the application. */
  readonly fresh: boolean;
  readonly actions: PlumtreeAction<T>[];
}
