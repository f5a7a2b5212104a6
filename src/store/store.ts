/**
 * The node's durable state behind one interface: the message log, the membership snapshot and
 * the delivery state. Two implementations behave identically and keep the same bounds:
 * `sqlite.ts` (one SQLite database in `dataDir`; its schema and migrations in
 * `sqlite-schema.ts`) and `memory.ts` (nodes without `dataDir`, and simulations). `open.ts`
 * picks one; SQLite is loaded only when a `dataDir` is given. `summary.ts` holds the pure part
 * of catch-up: summaries and the planning of ranges to fetch.
 *
 * ## How messages are identified
 *
 * The delivery layer's numbers (`stream`/`seq` of a batch, see `src/delivery/link-order.ts`)
 * belong to one link, sender to receiver, and start over whenever the sender rebuilds its
 * queue: they cannot name a message to a third node. The log therefore has numbers of its own,
 * chosen by the message's **origin** (the node that wrote it) when it creates it:
 *
 * - `epoch`: the origin's log identity. A node with a `dataDir` keeps one epoch for as long as
 *   its database lives ({@link Store.epoch}); a node without one, or whose database was lost,
 *   starts a new epoch, so its numbers never clash with the ones it gave out before.
 * - `channel`: what the numbers count. The origin numbers each channel on its own, so that a
 *   receiver that takes only some topics still sees every number of the channels it takes, and
 *   a missing number is a real gap: `b` (plain broadcasts), `t:TOPIC` (publishes to TOPIC),
 *   `d:PEER` (direct messages to PEER). See {@link channelOf}.
 * - `seq`: 1, 2, 3, ... within (origin, epoch, channel), in the order the origin wrote them.
 *
 * (origin, epoch, channel) is a **stream**; (stream, seq) names a message for deduplication,
 * summaries and catch-up. The message `id` (random, as today) is kept for the application and
 * for causal dependencies ({@link Store.has}).
 *
 * **The origin's counter survives a restart.** {@link Store.nextSeq} hands out the next number
 * of one of this node's own channels. The node appends its own message to the log *before* it
 * sends it; the log's record of the stream is the persisted counter. A number handed out but
 * never appended (a crash in between) was never sent, so giving it out again is safe.
 *
 * **On the wire** a message then carries `epoch`, `channel` and `seq`, and the origin's
 * signature must cover them along with today's `[type, id, ts, data]` (see
 * `src/security/gossip-signature.ts`): otherwise a member serving catch-up could renumber a
 * message, hiding another behind it. A gop2p sender numbers and signs nothing: the node numbers
 * its messages itself, in a stream of its own epoch, and they can be shown in history but not
 * served to other members as the sender's.
 *
 * ## Exactly once, across restarts
 *
 * For each stream the store keeps the **received set**: every number up to `contiguous`, and the
 * numbers held above it. {@link Store.append} reports a message `new` only when its number is
 * outside that set, and adds it in the same transaction as the message itself. The one
 * exception is a newcomer's **skip** ({@link Store.skip}): numbers below `contiguous` that were
 * never received, only given up by catch-up, stay takeable until a copy comes (then held, so
 * a second copy is a duplicate), as `skipFrom..skipTo` per stream. A message removed
 * by retention stays in the received set: retention advances `contiguous` past it (a number
 * below a message that is past retention is past retention too: the origin numbers in time
 * order), so it is never `new` again. The node delivers exactly the messages `append` reports
 * `new`, and a restart changes nothing.
 *
 * ## What the node will do with it
 *
 * - **Receiving** a batch: check signatures, then `append()` the batch in one transaction (with
 *   the link's high-water mark), deliver the `new` ones, drop the rest.
 * - **Sending**: `nextSeq(channel)`, sign, `append()`, then queue to the peers.
 * - **Catch-up** (anti-entropy over the log): exchange `summary()` with a member, let
 *   `planCatchUp()` (`summary.ts`) say which ranges to ask for, serve requests with
 *   `readRange()`, and `append()` what comes back (with `late: true`). Live traffic keeps
 *   priority; the node rate-limits batches.
 * - **Causal order**: `has(deps)` says which dependencies are already delivered; `byIds()`
 *   serves a member that fetches one it lacks.
 * - **History**: `history()` answers `node.history()`, the chat's `/history` and the page.
 * - **Restart**: `members()`, `subscriptions()`, `incarnation()` and `links()` restore what the
 *   node knew; `start()` rejoins the members of the snapshot (failed ones included).
 * - **Retention** (per scope: each topic, plain broadcasts, each direct conversation) is
 *   enforced inside `append()` with bounded work, and by `prune()` on the push-pull period; a
 *   message past retention is never returned by any read.
 *
 * All methods are synchronous (SQLite through better-sqlite3 is), and each does bounded work
 * (`summary()` and `members()` grow with the streams and members known, not with the log).
 * A call after {@link Store.close} throws `ERR_STOPPED`. With SQLite, one store at a time may
 * have a `dataDir` open (`ERR_STORE_LOCKED` otherwise).
 *
 * @module
 */

import { InvalidMessageError, InvalidOptionsError } from '../errors.js';
import type { PeerKind } from '../peer.js';
import type { Range, StreamSummary } from './summary.js';

/** What a message is: a plain broadcast, a publish to a topic, or a direct message. */
export type MessageKind = 'broadcast' | 'topic' | 'direct';

/** The node that wrote a message, as it was when it wrote it. */
export interface StoredOrigin {
  /** Node id (public-key fingerprint; `'address:port'` for a gop2p peer). */
  readonly id: string;
  readonly address: string;
  readonly port: number;
  readonly name?: string;
}

/** The numbering of one origin's messages: see the module comment. */
export interface StreamKey {
  /** The origin's node id. */
  readonly origin: string;
  /** The origin's log identity. */
  readonly epoch: string;
  /** What the numbers count: `b`, `t:TOPIC` or `d:PEER` ({@link channelOf}). */
  readonly channel: string;
}

/** A message as the log keeps it. */
export interface StoredMessage {
  /** The message id (at most {@link STORE_LIMITS}.id characters). */
  readonly id: string;
  readonly origin: StoredOrigin;
  readonly kind: MessageKind;
  /** The topic of a `'topic'` message. */
  readonly topic?: string;
  /**
   * The other party of a `'direct'` message: its recipient when this node sent it, its origin
   * when this node received it. `history({ with })` and direct retention go by it.
   */
  readonly peer?: string;
  readonly epoch: string;
  readonly channel: string;
  /** The origin's number for it, from 1. */
  readonly seq: number;
  /** The origin's wall-clock time when it wrote the message, ms since the epoch. */
  readonly at: number;
  readonly payload: Uint8Array;
  /**
   * The origin's signature material, opaque to the store, so that a message served to another
   * node can be checked as the origin's: its signature, and its public key (which hashes to
   * `origin.id`), since the member that fetches it may never have met the origin. Empty when
   * there is none (a gop2p sender); the key without a signature for a message the chain vouches
   * for (`packSig` in `src/node/journal.ts`).
   */
  readonly sig: Uint8Array;
  /** Causal dependencies: ids of messages the origin had delivered (at most `maxDeps`). */
  readonly deps: readonly string[];
  /** Delivered late: by catch-up, or after its causal wait gave up. */
  readonly late: boolean;
  /** This node's wall-clock time when it stored the message (set by the store when absent). */
  readonly receivedAt?: number;
}

/** A message read back from the log. */
export interface StoredEntry extends StoredMessage {
  readonly receivedAt: number;
  /** Local insertion order, for paging ({@link HistoryQuery.before}). */
  readonly key: number;
}

/** Where a history page ends: the `at` and `key` of the oldest message of the previous page. */
export interface HistoryCursor {
  readonly at: number;
  readonly key: number;
}

/** A `history()` query. `topic` and `with` exclude each other; neither means plain broadcasts. */
export interface HistoryQuery {
  readonly topic?: string;
  /** A peer id: the direct messages exchanged with it. */
  readonly with?: string;
  /** Most messages returned (the newest ones), default 100, at most 10,000. */
  readonly limit?: number;
  /** Only messages older than this one (the next page back). */
  readonly before?: HistoryCursor;
}

/** What became of one appended message. */
export type AppendStatus =
  /** Stored; the node delivers it. */
  | 'new'
  /** Its number is already in the received set: not stored again, not delivered again. */
  | 'duplicate'
  /** Its number is held with another id: the origin reused a number; not stored. */
  | 'conflict'
  /** Past its scope's age limit on arrival: not stored, and its number counts as received. */
  | 'expired';

/** The link high-water mark committed with a batch (`src/delivery/link-order.ts`). */
export interface LinkState {
  /** The sending node's id. */
  readonly sender: string;
  /** The sender's link stream. */
  readonly stream: string;
  /** The last number delivered from it. */
  readonly last: number;
}

/** Options of one {@link Store.append}. */
export interface AppendOptions {
  /** Also commit this link state, in the same transaction. */
  readonly link?: LinkState;
}

/**
 * A member's state in the snapshot: the membership layer's `MemberState` (the store sits below
 * that layer, so it names the same four states itself).
 */
export type MemberState = 'alive' | 'suspect' | 'dead' | 'left';

/** A member in the snapshot. Failed and departed members are kept too. */
export interface MemberRecord {
  readonly id: string;
  readonly address: string;
  readonly port: number;
  readonly name?: string;
  readonly kind: PeerKind;
  readonly state: MemberState;
  readonly incarnation: number;
  /** Wall-clock ms when the node last heard from it. */
  readonly lastSeen: number;
}

/** How long a scope keeps messages. */
export interface Retention {
  /** Most messages kept; the oldest (by `at`) go first. */
  readonly maxMessages: number;
  /** Messages older than this (by `at`) are removed, and refused on arrival. */
  readonly maxAgeMs: number;
}

/** The default retention: 100,000 messages and 7 days, per scope. */
export const DEFAULT_RETENTION: Retention = Object.freeze({
  maxMessages: 100_000,
  maxAgeMs: 7 * 24 * 3600 * 1000,
});

/** Retention settings: one default for every scope, and per-topic overrides. */
export interface RetentionOptions extends Partial<Retention> {
  /** Overrides for some topics. */
  readonly topics?: Readonly<Record<string, Partial<Retention>>>;
}

/** Size limits the store enforces on what it is given. */
export const STORE_LIMITS = Object.freeze({
  /** Longest message id. */
  id: 64,
  /** Longest node id, epoch, or peer id. */
  node: 128,
  /** Longest channel (`t:` + a 64-byte topic, or `d:` + a node id). */
  channel: 136,
  /** Most causal dependencies per message. */
  maxDeps: 8,
  /** Most messages one `history()` or `readRange()` returns. */
  maxRead: 10_000,
  /** Retention work per `append()` beyond the batch's own size, in rows. */
  pruneSlack: 256,
  /** Most held ranges above `contiguous` one stream's summary lists. */
  summaryRanges: 32,
});

/** Counters for metrics. */
export interface StoreStats {
  /** Messages in the log. */
  readonly messages: number;
  /** Bytes the store takes: the database files, or an estimate in memory. */
  readonly bytes: number;
}

/** Options common to both implementations. */
export interface StoreOptions {
  /** Retention per scope; see {@link DEFAULT_RETENTION}. */
  readonly retention?: RetentionOptions;
  /**
   * Wall-clock time in ms since the Unix epoch (default `Date.now`); retention goes by it. The
   * node passes `() => wallTime(clock)` (`src/clock.ts`), so simulations age with the manual clock.
   */
  readonly now?: () => number;
  /** The epoch of a new log (default 12 random bytes, base64url); an existing database keeps its own. */
  readonly epoch?: string;
}

/** The node's durable state: see the module comment. */
export interface Store {
  /** `'sqlite'` or `'memory'`. */
  readonly kind: 'sqlite' | 'memory';
  /** This node's log identity: the `epoch` of the messages it writes. */
  readonly epoch: string;

  /** The next number of this node's `channel` (see the module comment); `origin` is this node's id. */
  nextSeq(origin: string, channel: string): number;

  /**
   * Appends a batch of received or sent messages in one transaction, and says, for each, what
   * became of it (same order). A message is `new` exactly once, however often and after however
   * many restarts it is appended. Retention for the scopes touched runs in the same transaction,
   * with bounded work.
   *
   * @throws {InvalidMessageError} `ERR_INVALID_MESSAGE` for an entry beyond {@link STORE_LIMITS}
   *   (the batch is not applied)
   */
  append(messages: readonly StoredMessage[], options?: AppendOptions): AppendStatus[];

  /**
   * The numbers of `stream` up to `upTo` that it has not received are **skipped**: numbers a
   * newcomer to a channel will never fetch (its past, before its `historyOnJoin` window). They
   * count as received for catch-up ({@link Store.summary} reports `contiguous` at least `upTo`,
   * so no member is asked for them), but they were never delivered, and some of them may have
   * been sent after the node took the channel up, with their live copies still on the way (a
   * slow link, a long retry). So a skipped number that comes later is still taken, once: `append`
   * reports it `new`, holds it, and reports any later copy `duplicate`, across restarts too (the
   * skip is durable, committed before it returns). What retention removes of them, and every
   * number below, is no longer taken. A second skip of the same stream extends the first.
   */
  skip(stream: StreamKey, upTo: number): void;

  /**
   * Which of `ids` are in the log (for causal dependencies). A dependency past retention is not
   * in the log and never will be: the node gives it up rather than wait for it.
   */
  has(ids: readonly string[]): Set<string>;

  /**
   * The messages with these ids that it holds within retention (at most
   * {@link STORE_LIMITS}.maxRead ids), in the order of `ids`: to serve a member that fetches
   * a causal dependency it lacks.
   */
  byIds(ids: readonly string[]): StoredEntry[];

  /** One page of history, oldest first: see {@link HistoryQuery}. */
  history(query?: HistoryQuery): StoredEntry[];

  /**
   * The messages of `stream` numbered `from` to `to` that it holds within retention, in order,
   * at most `limit` (default and cap {@link STORE_LIMITS}.maxRead): to serve catch-up.
   */
  readRange(stream: StreamKey, from: number, to: number, limit?: number): StoredEntry[];

  /**
   * What this node holds and has received, per stream (see `summary.ts`), for the streams of
   * `channels` (all when absent), sorted by origin, epoch and channel. A member plans from
   * what this node holds, so the summary sent to it can leave out the streams that hold
   * nothing (`heldRanges(s).length === 0`); this node plans with all of its own.
   *
   * Streams are never forgotten, even once retention has emptied them: their received set is
   * what keeps a late copy from being new again.
   */
  summary(channels?: readonly string[]): StreamSummary[];

  /**
   * Removes up to `budget` messages past their scope's age limit, across scopes; returns how
   * many. For the node's periodic timer, so quiet scopes age too.
   */
  prune(budget?: number): number;

  /** Replaces or adds members in the snapshot (by id). */
  saveMembers(members: readonly MemberRecord[]): void;
  /** Removes a member from the snapshot. */
  deleteMember(id: string): void;
  /** The snapshot, ordered by id. */
  members(): MemberRecord[];

  /** Replaces the node's own subscriptions. */
  setSubscriptions(topics: readonly string[]): void;
  /** The node's own subscriptions, sorted. */
  subscriptions(): string[];

  /** The node's own incarnation, as last saved (0 at first). */
  incarnation(): number;
  /** Saves the node's own incarnation. */
  setIncarnation(incarnation: number): void;

  /** Saves a link's state on its own (`append()` can commit it with a batch). */
  saveLink(link: LinkState): void;
  /** Every link state saved, by sender. */
  links(): LinkState[];

  /** Counters for metrics. */
  stats(): StoreStats;

  /** Closes the store; idempotent. */
  close(): void;
}

/** The channel of a message: `b`, `t:TOPIC` or `d:RECIPIENT` (see the module comment). */
export function channelOf(kind: MessageKind, topicOrRecipient?: string): string {
  if (kind === 'broadcast') return 'b';
  return `${kind === 'topic' ? 't' : 'd'}:${topicOrRecipient ?? ''}`;
}

/**
 * The retention scope of a message, as this node sees it: `b`, `t:TOPIC`, or `d:PEER` for the
 * direct messages exchanged with PEER.
 */
export function scopeOf(m: Pick<StoredMessage, 'kind' | 'topic' | 'peer'>): string {
  if (m.kind === 'broadcast') return 'b';
  return m.kind === 'topic' ? `t:${m.topic ?? ''}` : `d:${m.peer ?? ''}`;
}

/** The scope `history(query)` reads. */
export function scopeOfQuery(query: HistoryQuery): string {
  if (query.topic !== undefined) return `t:${query.topic}`;
  if (query.with !== undefined) return `d:${query.with}`;
  return 'b';
}

/** The retention of `scope` under `options`. */
export function retentionOf(options: RetentionOptions | undefined, scope: string): Retention {
  const base: Retention = {
    maxMessages: options?.maxMessages ?? DEFAULT_RETENTION.maxMessages,
    maxAgeMs: options?.maxAgeMs ?? DEFAULT_RETENTION.maxAgeMs,
  };
  if (!scope.startsWith('t:') || options?.topics === undefined) return base;
  const own = options.topics[scope.slice(2)];
  return own === undefined ? base : { ...base, ...own };
}

/** The stream a message belongs to. */
export function streamOf(m: StoredMessage): StreamKey {
  return { origin: m.origin.id, epoch: m.epoch, channel: m.channel };
}

/**
 * A stream's marks of its skipped numbers ({@link Store.skip}), as both stores keep them:
 * `skipFrom..skipTo` (below `contiguous`) that are not held were skipped, never received; none
 * when `skipTo` is 0.
 */
export interface SkipMarks {
  contiguous: number;
  skipFrom: number;
  skipTo: number;
}

/**
 * Marks the numbers of `s` up to `upTo` skipped; false when there is nothing to skip (`upTo` is
 * received already). A second skip extends the first: every number between them that is not
 * held came up to `contiguous` by a skip, or past retention (which moved `skipFrom` above it).
 * The caller then moves `contiguous` to `upTo`.
 */
export function markSkipped(s: SkipMarks, upTo: number): boolean {
  if (upTo <= s.contiguous) return false;
  if (s.skipTo === 0) s.skipFrom = s.contiguous + 1;
  s.skipTo = upTo;
  return true;
}

/** Whether `seq` of `s` is a skipped number, still taken when a copy comes. */
export function isSkipped(s: SkipMarks, seq: number): boolean {
  return seq >= s.skipFrom && seq <= s.skipTo;
}

/**
 * Retention removed number `seq` of `s`: no skipped number up to it is taken any more (one that
 * came now would be past retention at once, and taken again by the next copy).
 */
export function passSkipped(s: SkipMarks, seq: number): void {
  if (s.skipTo !== 0 && seq >= s.skipFrom) s.skipFrom = seq + 1;
}

/** `stream` as one string, for maps. */
export function streamId(s: StreamKey): string {
  return `${s.origin}\u0000${s.epoch}\u0000${s.channel}`;
}

/** Throws `ERR_INVALID_MESSAGE` unless `m` is within {@link STORE_LIMITS}. */
export function validateMessage(m: StoredMessage): void {
  // Plain checks, no closure per call: this runs once per message received.
  if (!isText(m.id, STORE_LIMITS.id)) badMessage(m, 'bad id');
  if (!isText(m.origin?.id, STORE_LIMITS.node) || !isText(m.epoch, STORE_LIMITS.node))
    badMessage(m, 'bad origin or epoch');
  if (!isText(m.channel, STORE_LIMITS.channel)) badMessage(m, 'bad channel');
  if (!Number.isSafeInteger(m.seq) || m.seq < 1) badMessage(m, 'seq must be a positive integer');
  if (!Number.isFinite(m.at)) badMessage(m, 'bad timestamp');
  if (
    m.kind === 'topic'
      ? !isText(m.topic, STORE_LIMITS.channel)
      : m.kind === 'direct'
        ? !isText(m.peer, STORE_LIMITS.node)
        : m.kind !== 'broadcast'
  )
    badMessage(m, 'bad kind, topic or peer');
  if (!(m.payload instanceof Uint8Array) || !(m.sig instanceof Uint8Array))
    badMessage(m, 'payload and sig must be bytes');
  const deps = m.deps;
  if (!Array.isArray(deps) || deps.length > STORE_LIMITS.maxDeps) badDeps(m);
  for (let i = 0; i < deps.length; i++) if (!isText(deps[i], STORE_LIMITS.id)) badDeps(m);
}

/** A string of 1 to `max` characters. */
function isText(v: unknown, max: number): boolean {
  return typeof v === 'string' && v.length >= 1 && v.length <= max;
}

function badMessage(m: StoredMessage, what: string): never {
  throw new InvalidMessageError(`cannot store message ${String(m.id).slice(0, 64)}: ${what}`);
}

function badDeps(m: StoredMessage): never {
  badMessage(m, `at most ${STORE_LIMITS.maxDeps} dependencies of at most ${STORE_LIMITS.id} characters`);
}

/** The checked limit of a read: default 100, at most {@link STORE_LIMITS}.maxRead. */
export function readLimit(limit: number | undefined, fallback = 100): number {
  const n = limit ?? fallback;
  if (!Number.isSafeInteger(n) || n < 1 || n > STORE_LIMITS.maxRead)
    throw new InvalidOptionsError(`limit must be an integer from 1 to ${STORE_LIMITS.maxRead}`);
  return n;
}

/** Throws `ERR_INVALID_OPTIONS` for a query with both `topic` and `with`. */
export function checkQuery(query: HistoryQuery): void {
  if (query.topic !== undefined && query.with !== undefined)
    throw new InvalidOptionsError('history: give topic or with, not both');
}

export type { Range, StreamSummary };
