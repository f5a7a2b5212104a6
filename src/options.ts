/**
 * `new Node()` options: their types, defaults and validation.
 *
 * @module
 */

import type { KeyObject } from 'node:crypto';
import type * as Z from 'zod';
import type { Clock } from './clock.js';
import { DEFAULT_CAUSAL_WAIT_MS } from './delivery/causal.js';
import { InvalidOptionsError } from './errors.js';
import type { IdentityInput } from './identity.js';
import type { Logger } from './logger.js';
import { type MembershipTimings, PRESETS } from './membership/timings.js';
import { optionsCertainlyValid } from './options-check.js';
import { isUnspecifiedAddress, isValidHost, parseAddress } from './peer.js';
import { describeIssue } from './protocol/codec.js';
import { FIELD_LIMITS, loadZod } from './protocol/schema.js';
import type { Random } from './random.js';
import { DEFAULT_MAX_TAG_BYTES, validateTags } from './rooms.js';
import { type SecretInput, secretList } from './security/keyring.js';
import {
  DEFAULT_MAX_CLOCK_SKEW_MS,
  type LimitOptions,
  type ResolvedLimits,
  resolveLimits,
} from './security/limits.js';
import { DEFAULT_RETENTION, type Retention } from './store/store.js';
import type { TlsOptions } from './transport/tls.js';
import type { Transport } from './transport/transport.js';

/** Options of a {@link Node}. All are optional. */
export interface NodeOptions {
  /** Interface to listen on. @default '127.0.0.1' */
  readonly host?: string;
  /** Port to listen on; 0 picks a free port. @default 0 */
  readonly port?: number;
  /**
   * The `'host:port'` other nodes should use to reach this one. Defaults to the listening
   * address; when listening on `0.0.0.0` or `::`, to this machine's first external IPv4 address.
   */
  readonly advertise?: string;
  /** A display name, carried with this node's membership entry (at most 64 characters). */
  readonly name?: string;
  /**
   * Tags: a small map of strings about this node (role, zone, version...), carried with its
   * membership entry, so every member sees them in `Peer.tags`. Change them with `setTags()`.
   * At most `maxTagBytes` bytes (names and values, UTF-8), 16 tags, names of at most 32
   * characters and values of at most 128: more is `ERR_TAGS_TOO_LARGE` at `new Node()`.
   */
  readonly tags?: Readonly<Record<string, string>>;
  /** Most bytes of tags (every name and value, UTF-8). @default 512 */
  readonly maxTagBytes?: number;
  /** Key material or a key file path (see {@link IdentityInput}); generated when absent. */
  readonly identity?: IdentityInput;
  /**
   * Accept an `identity` key file that the group or others can read. Without it such a file is
   * refused (`ERR_INVALID_OPTIONS`, "run chmod 600 FILE"), as ssh refuses such keys; set it for
   * containers that mount secrets world-readable. See SECURITY.md.
   * @default false
   */
  readonly allowReadableIdentity?: boolean;
  /**
   * `'gop2p'` accepts unversioned gop2p peers and talks to them exactly as gop2p does (Host
   * header quirk included), while tsp2p peers still get the full protocol.
   */
  readonly compat?: 'gop2p';
  /**
   * The network secret: only nodes that hold it can join, read or send. Each protocol request
   * and answer then carries an HMAC-SHA256 tag (see SECURITY.md). A list is for rotation: every
   * listed secret is accepted, the first is used to send. At least 16 characters each.
   * gop2p peers cannot hold a secret: with one set, they are refused even in compat mode.
   */
  readonly secret?: SecretInput;
  /**
   * Serve HTTPS and reach peers over HTTPS, verifying their certificates against `ca` (a
   * custom CA is allowed); `requestCert: true` also asks clients for one (mutual TLS). PEM
   * text, bytes, or file paths.
   */
  readonly tls?: TlsOptions;
  /** Guards against floods and slow clients; see {@link LimitOptions} for each default. */
  readonly limits?: LimitOptions;
  /**
   * How far back from this node's clock a signed envelope's timestamp may be, in ms (ahead, at
   * most 10 s, or this when it is smaller). Envelopes outside are refused (401), and replays are
   * remembered this long.
   * @default 300000 (5 minutes)
   */
  readonly maxClockSkewMs?: number;
  /** Largest message payload, in bytes, sent or accepted. @default 1048576 (1 MiB) */
  readonly maxMessageBytes?: number;
  /**
   * Time limit for each request to a peer, in ms. A connect request its entry point does not
   * answer in time is sent once more, with twice this limit. Requests that deliver messages wait
   * at least this long, and longer for a member whose answers were measured slower (at most 9
   * times this, and never past their messages' delivery deadline, as `deliveryTimeoutMs` keeps
   * it, plus this limit). @default 5000
   */
  readonly requestTimeoutMs?: number;
  /**
   * Time limit for a leave (`disconnect()`, and the leave that `stop()` starts with), in ms,
   * whatever the members' state: queued messages get half of it to go out, the notice to the
   * members the rest. @default 2000
   */
  readonly leaveTimeoutMs?: number;
  /**
   * Messages buffered per `messages()` iterator. When a consumer falls this far behind, the
   * oldest buffered message is dropped for it (events are not affected). @default 10000
   */
  readonly inboxSize?: number;
  /**
   * Most members the table holds; a join beyond it is refused with 503. The largest request
   * body a node accepts grows with it, so that a push-pull can carry the whole state (512 B a
   * member, see {@link maxBodyBytes}). @default 10000
   */
  readonly maxMembers?: number;
  /**
   * How long a message is retried to an unresponsive member before it is given up and reported
   * failed (sooner if the member is declared dead or leaves). A member that acknowledges batches
   * is not unresponsive, only slow (a process starved of CPU takes seconds for one): while it
   * acknowledged a batch less than this long ago, its messages are kept past their deadline, and
   * reach it later; one that acknowledged nothing for this long (since the first request to it,
   * when it never did) loses what is past the deadline.
   * What waits for a member stays within `maxQueueMessages` and `maxQueueBytes` (a full queue
   * makes sends wait, see `backpressure`). @default 30000
   */
  readonly deliveryTimeoutMs?: number;
  /**
   * How long a received publish waits for the messages its sender had delivered in the topic
   * before it (its causal dependencies), in ms. A dependency missing that long is given up: the
   * message is delivered anyway, with `msg.late`. Meanwhile the node asks for the missing ones.
   * At most 1,000 publishes wait at once; one more pushes the oldest out, delivered late. `0`
   * delivers at once. @default 5000
   */
  readonly causalWaitMs?: number;
  /**
   * What `broadcast()` and `send()` do when a member's outbound queue is full: `'wait'` until
   * there is room (or the call's signal aborts), or `'reject'` with `ERR_BACKPRESSURE`.
   * @default 'wait'
   */
  readonly backpressure?: 'wait' | 'reject';
  /** Most messages in one request to a member. @default 512 */
  readonly maxBatchMessages?: number;
  /**
   * Most bytes of messages in one request to a member. The default keeps a batch's body under
   * 128 KiB: a receiver reads a body as one string, and V8 places a string above that size in
   * its large-object space, which made decoding a 160 KB batch cost 3.4-3.8 µs per message
   * against 1.0 µs at 80-120 KB (BENCHMARKS.md, "Session 11: the regression, part way back"). A larger message still
   * goes alone. @default 122880 (120 KiB)
   */
  readonly maxBatchBytes?: number;
  /** Most messages waiting for one member. @default 100000 */
  readonly maxQueueMessages?: number;
  /** Most bytes waiting for one member. @default 67108864 (64 MiB) */
  readonly maxQueueBytes?: number;
  /**
   * How broadcasts spread: `'full'` sends to every member; `'gossip'` sends to `fanout` random
   * members, each of which relays to `fanout` more, until the hop limit (a message is relayed
   * once per node: duplicates are dropped by id); `'auto'` is full up to `gossipThreshold`
   * members and `'plumtree'` above. In gossip mode a broadcast's report covers its first hop.
   *
   * `'plumtree'` sends broadcasts along a spanning tree that repairs itself (Plumtree: Leitão et
   * al., "Epidemic Broadcast Trees"): each node keeps a random view of `fanout` members (by
   * default `⌈ln n⌉ + 1`, as the paper's active view: IHAVE and GRAFT, not redundancy, make
   * up for losses), pushes each new message in full to its "eager" peers and announces its id
   * to the "lazy" ones; a duplicate prunes a link, a missing message is fetched from an
   * announcer (graft), which repairs the tree. Once the tree has formed, a broadcast costs about `n − 1` full copies
   * plus small id announcements, instead of about `fanout × n` copies with gossip. Its report
   * covers the sender's eager peers (and gop2p members, which get it directly). In simulation
   * (200 nodes, 5% of them killed midway) it reached every live node with every broadcast, as
   * gossip does, with about 1.3 full copies per node per broadcast against 12 for gossip (see
   * `test/sim/plumtree.test.ts`, `npm run bench -- sim-gossip`). Every node of a network should
   * use the same setting: nodes of older versions refuse batches with Plumtree entries.
   * @default 'auto'
   */
  readonly dissemination?: 'full' | 'gossip' | 'plumtree' | 'auto';
  /**
   * Members above which `'auto'` dissemination uses Plumtree (and a room's publish gossip
   * relay). Up to it a broadcast goes out in full: the sender's batches to every member, one
   * copy each, no relay, and no origin signature for each receiver to check. At 100 node
   * processes on one 2-core machine a burst of 2,021 broadcasts completed in full (34 s) and
   * failed along the tree, whose first broadcasts flood its links before the prunes come back
   * (about 8.7 full copies per node per broadcast; BENCHMARKS.md, session 16). @default 128
   */
  readonly gossipThreshold?: number;
  /**
   * Relays per gossiped message and node. By default `⌈ln n⌉ + 7` for `n` members: each node
   * then misses a message with probability about `e^−fanout`, under 1 in 10^6 for n = 1,000.
   * With Plumtree: the size of each node's random view, by default `⌈ln n⌉ + 1`.
   */
  readonly fanout?: number;
  /** Most relays a gossiped message passes through. @default 12 */
  readonly maxHops?: number;
  /**
   * The failure detector's timing preset: `'lan'` (probe every 1 s), `'wan'` (every 5 s) or
   * `'local'` (every 200 ms: nodes on one machine, tests). See `MembershipTimings` for every
   * knob, its formula and its default. @default 'lan'
   */
  readonly preset?: 'lan' | 'wan' | 'local';
  /** Overrides of single timings of the preset. */
  readonly timings?: Partial<MembershipTimings>;
  /**
   * Serve the web and operations endpoints next to the protocol: the chat page (`GET /` from a
   * browser), `/events`, `/members`, `/metrics`, `/health` and the local API under `/api/`.
   * Writes through the API need this machine or the token in `node.webToken`. @default true
   */
  readonly web?: boolean;
  /**
   * A directory for this node's durable state: one SQLite database (`tsp2p.db`) with the
   * message log, the membership snapshot and the delivery state, and, when no `identity` is
   * given, the node's key (`identity.pem`). Created `0700` (files `0600`) when absent. With it,
   * a restart keeps the identity, the history, the members known (the node rejoins them at
   * `start()`), the topics and the exactly-once state: nothing is delivered twice across a
   * restart. Without it, the same state is kept in memory, with the same bounds, and lost on
   * stop. One node at a time may use a directory (`ERR_STORE_LOCKED`).
   */
  readonly dataDir?: string;
  /**
   * How long history is kept, per topic (and for plain broadcasts, and per direct
   * conversation): at most `maxMessages` messages (the oldest go first) and none older than
   * `maxAgeMs` (by the sender's timestamp). A message past retention is never delivered by
   * catch-up, nor served to others.
   * @default { maxMessages: 100000, maxAgeMs: 604800000 } (7 days)
   */
  readonly retention?: RetentionInput;
  /**
   * How many of a topic's latest messages a node gets by catch-up when it subscribes to the
   * topic for the first time (and of the plain broadcasts when it first joins a network);
   * delivered with `msg.late`. What is sent after that moment comes live, and a restart from
   * the same `dataDir` is not a first time (the node gets everything it missed). 0 fetches
   * none. @default 100
   */
  readonly historyOnJoin?: number;
  /** Where log lines go. @default util.debuglog('tsp2p'), enabled by NODE_DEBUG=tsp2p */
  readonly logger?: Logger;
  /** Time source (tests inject a ManualClock). @default the system clock */
  readonly clock?: Clock;
  /** Randomness (simulations inject a seeded one). @default node:crypto */
  readonly random?: Random;
  /** The network (simulations inject a MemoryTransport). @default a new HttpTransport */
  readonly transport?: Transport;
}

/** {@link NodeOptions} with defaults applied. */
export interface ResolvedOptions {
  readonly host: string;
  readonly port: number;
  readonly advertise: { readonly host: string; readonly port: number } | undefined;
  readonly name: string | undefined;
  readonly tags: Readonly<Record<string, string>>;
  readonly maxTagBytes: number;
  readonly identity: IdentityInput | undefined;
  readonly allowReadableIdentity: boolean;
  readonly compat: 'gop2p' | undefined;
  readonly secret: readonly string[];
  readonly tls: TlsOptions | undefined;
  readonly limits: ResolvedLimits;
  readonly maxClockSkewMs: number;
  readonly maxMessageBytes: number;
  readonly requestTimeoutMs: number;
  readonly leaveTimeoutMs: number;
  readonly inboxSize: number;
  readonly maxMembers: number;
  readonly deliveryTimeoutMs: number;
  readonly causalWaitMs: number;
  readonly backpressure: 'wait' | 'reject';
  readonly maxBatchMessages: number;
  readonly maxBatchBytes: number;
  readonly maxQueueMessages: number;
  readonly maxQueueBytes: number;
  readonly dissemination: 'full' | 'gossip' | 'plumtree' | 'auto';
  readonly gossipThreshold: number;
  readonly fanout: number | undefined;
  readonly maxHops: number;
  readonly timings: MembershipTimings;
  readonly web: boolean;
  readonly dataDir: string | undefined;
  readonly retention: Retention;
  readonly historyOnJoin: number;
  readonly logger: Logger | undefined;
  readonly clock: Clock | undefined;
  readonly random: Random | undefined;
  readonly transport: Transport | undefined;
}

/** The defaults, in one place. */
export const DEFAULTS = Object.freeze({
  host: '127.0.0.1',
  port: 0,
  maxMessageBytes: 1024 * 1024,
  requestTimeoutMs: 5_000,
  leaveTimeoutMs: 2_000,
  inboxSize: 10_000,
  maxMembers: 10_000,
  deliveryTimeoutMs: 30_000,
  causalWaitMs: DEFAULT_CAUSAL_WAIT_MS,
  backpressure: 'wait' as const,
  maxBatchMessages: 512,
  maxBatchBytes: 120 * 1024,
  maxQueueMessages: 100_000,
  maxQueueBytes: 64 * 1024 * 1024,
  dissemination: 'auto' as const,
  gossipThreshold: 128,
  maxHops: 12,
  /** First retry delay to an unresponsive member; it doubles per attempt (full jitter). */
  retryBaseMs: 50,
  /** Longest retry delay. */
  retryMaxMs: 2_000,
  /** Most batches in flight to one tsp2p member: a second overlaps encoding, sending and decoding. */
  maxInFlightBatches: 2,
  /**
   * Bytes that must wait beyond the batches in flight before another one leaves. 0: whatever
   * waits leaves at once while fewer than `maxInFlightBatches` are in flight (measured: a lower
   * p99 at a modest rate than 64 KiB, the same throughput under full load).
   */
  pipelineBytes: 0,
  historyOnJoin: 100,
});

/** The `retention` option: either limit, or both. */
export interface RetentionInput {
  /** Most messages kept per topic (and for plain broadcasts, and per direct conversation). @default 100000 */
  readonly maxMessages?: number;
  /** Oldest message kept, in ms (by its sender's timestamp). @default 604800000 (7 days) */
  readonly maxAgeMs?: number;
}

/**
 * The options' zod schema: built (and zod loaded) only when the plain check of `options-check.ts`
 * is unsure, which common options never make it.
 */
function buildOptionsSchema(z: typeof Z) {
  const positiveInt = z.int().positive();
  const pemInput = z.union([z.string().min(1), z.instanceof(Uint8Array)]);

  return z.strictObject({
    host: z
      .string()
      .refine((h) => isValidHost(h), 'not a valid host name or IP address')
      .optional(),
    port: z.int().min(0).max(65535).optional(),
    advertise: z.string().optional(),
    name: z.string().max(FIELD_LIMITS.name).optional(),
    tags: z.record(z.string(), z.string()).optional(),
    maxTagBytes: positiveInt.optional(),
    identity: z
      .custom<IdentityInput>(
        (v) =>
          typeof v === 'string' ||
          v instanceof Uint8Array ||
          (typeof v === 'object' && v !== null && 'asymmetricKeyType' in (v as KeyObject)),
        'expected a key file path, a PEM string, a 32-byte seed or a KeyObject',
      )
      .optional(),
    allowReadableIdentity: z.boolean().optional(),
    compat: z.literal('gop2p').optional(),
    secret: z.union([z.string(), z.array(z.string())]).optional(),
    tls: z
      .strictObject({
        key: pemInput,
        cert: pemInput,
        ca: z.union([pemInput, z.array(pemInput)]).optional(),
        requestCert: z.boolean().optional(),
      })
      .optional(),
    limits: z
      .strictObject({
        maxConnections: positiveInt.optional(),
        ratePerSecond: z.number().positive().optional(),
        rateBurst: positiveInt.optional(),
        rateLimitLoopback: z.boolean().optional(),
        headersTimeoutMs: positiveInt.optional(),
        requestTimeoutMs: positiveInt.optional(),
      })
      .optional(),
    maxClockSkewMs: positiveInt.optional(),
    maxMessageBytes: positiveInt.max(64 * 1024 * 1024).optional(),
    requestTimeoutMs: positiveInt.optional(),
    leaveTimeoutMs: positiveInt.optional(),
    inboxSize: positiveInt.optional(),
    maxMembers: positiveInt.optional(),
    deliveryTimeoutMs: positiveInt.optional(),
    causalWaitMs: z.int().min(0).max(600_000).optional(),
    backpressure: z.enum(['wait', 'reject']).optional(),
    maxBatchMessages: positiveInt.max(10_000).optional(),
    maxBatchBytes: positiveInt.optional(),
    maxQueueMessages: positiveInt.optional(),
    maxQueueBytes: positiveInt.optional(),
    dissemination: z.enum(['full', 'gossip', 'plumtree', 'auto']).optional(),
    gossipThreshold: positiveInt.optional(),
    fanout: positiveInt.optional(),
    maxHops: positiveInt.max(255).optional(),
    preset: z.enum(['lan', 'wan', 'local']).optional(),
    timings: z
      .strictObject({
        probeIntervalMs: positiveInt.optional(),
        probeTimeoutMs: positiveInt.optional(),
        indirectProbes: z.int().min(0).optional(),
        suspicionMult: z.number().positive().optional(),
        suspicionMaxMult: z.number().min(1).optional(),
        refusedSuspicionMs: positiveInt.optional(),
        retransmitMult: positiveInt.optional(),
        gossipIntervalMs: positiveInt.optional(),
        gossipNodes: positiveInt.optional(),
        maxPiggyback: positiveInt.optional(),
        pushPullIntervalMs: positiveInt.optional(),
        reconnectIntervalMs: positiveInt.optional(),
        deadRetentionMs: positiveInt.optional(),
        leftRetentionMs: positiveInt.optional(),
        maxAwareness: z.int().min(0).optional(),
        announceLimit: positiveInt.optional(),
      })
      .optional(),
    web: z.boolean().optional(),
    dataDir: z.string().min(1).optional(),
    retention: z
      .strictObject({
        maxMessages: positiveInt.optional(),
        maxAgeMs: positiveInt.optional(),
      })
      .optional(),
    historyOnJoin: z.int().min(0).max(10_000).optional(),
    logger: z
      .custom<Logger>((v) => typeof v === 'object' && v !== null, 'expected a logger object')
      .optional(),
    clock: z.custom<Clock>((v) => typeof v === 'object' && v !== null, 'expected a Clock').optional(),
    random: z.custom<Random>((v) => typeof v === 'object' && v !== null, 'expected a Random').optional(),
    transport: z
      .custom<Transport>((v) => typeof v === 'object' && v !== null, 'expected a Transport')
      .optional(),
  });
}

let builtSchema: ReturnType<typeof buildOptionsSchema> | undefined;

/** The options' zod schema, built on the first call (the reference `options-check.ts` follows). */
export function optionsSchema(): ReturnType<typeof buildOptionsSchema> {
  builtSchema ??= buildOptionsSchema(loadZod());
  return builtSchema;
}

type ParsedOptions = Z.infer<ReturnType<typeof buildOptionsSchema>>;

function parseOptions(options: NodeOptions): ParsedOptions {
  if (optionsCertainlyValid(options)) return options as ParsedOptions;
  const parsed = optionsSchema().safeParse(options);
  if (!parsed.success) throw new InvalidOptionsError(`invalid option ${describeIssue(parsed.error)}`);
  return parsed.data;
}

/**
 * Validates options and applies defaults.
 *
 * @throws {InvalidOptionsError} `ERR_INVALID_OPTIONS`, naming the first bad option.
 */
export function resolveOptions(options: NodeOptions = {}): ResolvedOptions {
  const o = parseOptions(options);
  let advertise: ResolvedOptions['advertise'];
  if (o.advertise !== undefined) {
    try {
      advertise = parseAddress(o.advertise);
    } catch (cause) {
      throw new InvalidOptionsError(`invalid option advertise: ${(cause as Error).message}`, { cause });
    }
    if (isUnspecifiedAddress(advertise.host)) {
      throw new InvalidOptionsError(
        `invalid option advertise: '${o.advertise}' is not an address others can reach: give this node's public address or name`,
      );
    }
  }
  const maxTagBytes = o.maxTagBytes ?? DEFAULT_MAX_TAG_BYTES;
  return {
    host: o.host ?? DEFAULTS.host,
    port: o.port ?? DEFAULTS.port,
    advertise,
    name: o.name,
    tags: validateTags(o.tags ?? {}, maxTagBytes),
    maxTagBytes,
    identity: o.identity,
    allowReadableIdentity: o.allowReadableIdentity ?? false,
    compat: o.compat,
    secret: secretList(o.secret),
    tls: o.tls as TlsOptions | undefined,
    limits: resolveLimits(o.limits),
    maxClockSkewMs: o.maxClockSkewMs ?? DEFAULT_MAX_CLOCK_SKEW_MS,
    maxMessageBytes: o.maxMessageBytes ?? DEFAULTS.maxMessageBytes,
    requestTimeoutMs: o.requestTimeoutMs ?? DEFAULTS.requestTimeoutMs,
    leaveTimeoutMs: o.leaveTimeoutMs ?? DEFAULTS.leaveTimeoutMs,
    inboxSize: o.inboxSize ?? DEFAULTS.inboxSize,
    maxMembers: o.maxMembers ?? DEFAULTS.maxMembers,
    deliveryTimeoutMs: o.deliveryTimeoutMs ?? DEFAULTS.deliveryTimeoutMs,
    causalWaitMs: o.causalWaitMs ?? DEFAULTS.causalWaitMs,
    backpressure: o.backpressure ?? DEFAULTS.backpressure,
    maxBatchMessages: o.maxBatchMessages ?? DEFAULTS.maxBatchMessages,
    maxBatchBytes: o.maxBatchBytes ?? DEFAULTS.maxBatchBytes,
    maxQueueMessages: o.maxQueueMessages ?? DEFAULTS.maxQueueMessages,
    maxQueueBytes: o.maxQueueBytes ?? DEFAULTS.maxQueueBytes,
    dissemination: o.dissemination ?? DEFAULTS.dissemination,
    gossipThreshold: o.gossipThreshold ?? DEFAULTS.gossipThreshold,
    fanout: o.fanout,
    maxHops: o.maxHops ?? DEFAULTS.maxHops,
    timings: { ...PRESETS[o.preset ?? 'lan'], ...stripUndefined(o.timings ?? {}) },
    web: o.web ?? true,
    dataDir: o.dataDir,
    retention: {
      maxMessages: o.retention?.maxMessages ?? DEFAULT_RETENTION.maxMessages,
      maxAgeMs: o.retention?.maxAgeMs ?? DEFAULT_RETENTION.maxAgeMs,
    },
    historyOnJoin: o.historyOnJoin ?? DEFAULTS.historyOnJoin,
    logger: o.logger,
    clock: o.clock,
    random: o.random,
    transport: o.transport,
  };
}

/**
 * Room for one member's entry in a push-pull's full state, in bytes. An entry is 300 B with a
 * name (id, address, port, state, incarnation, key, record signature), about 370 with a few tags
 * and rooms.
 */
export const SYNC_ENTRY_BYTES = 512;

/**
 * The largest request body a node accepts: a base64 payload of `maxMessageBytes`, or a push-pull's
 * full state of `maxMembers` members ({@link SYNC_ENTRY_BYTES} each), whichever is larger, plus
 * 512 KiB for the rest of the envelope. With the defaults (1 MiB, 10,000 members): 5,644,288.
 */
export function maxBodyBytes(maxMessageBytes: number, maxMembers: number = DEFAULTS.maxMembers): number {
  // base64 grows 4/3; the rest of the envelope (up to 1024 recipients) fits in 512 KiB.
  return Math.max(Math.ceil(maxMessageBytes / 3) * 4, maxMembers * SYNC_ENTRY_BYTES) + 512 * 1024;
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
