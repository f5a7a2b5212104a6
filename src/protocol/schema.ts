/**
 * The wire format's schemas: the one source of truth for encoding and validation.
 * `PROTOCOL.md` describes the same format in prose.
 *
 * The base is gop2p's envelope, `{type, data, from: {address, port}, to?}`, POSTed as JSON to
 * `/`. tsp2p adds fields a gop2p node ignores (`v`, `id`, `ts`, `from.id`, `from.name`).
 *
 * @module
 */

import { createRequire } from 'node:module';
import type * as Z from 'zod';
import { buildLogSchemas, CATCH_UP_LIMITS } from './log-schema.js';

/** Message types. 0-3 are gop2p's; tsp2p's extensions take the numbers above. */
export const MessageType = {
  /** Join: the receiver registers the sender and answers with its member list. */
  Connect: 0,
  /** Graceful leave: the receiver drops the sender. */
  Disconnect: 1,
  /** A message for every member. */
  Broadcast: 2,
  /** A message for the members listed in `to`. */
  Direct: 3,
  /** Failure detection: "are you alive?". Answered with an {@link Ack}. */
  Ping: 4,
  /** Failure detection: "please ping `target` for me". Answered with an {@link Ack}. */
  PingReq: 5,
  /** Anti-entropy: a full state exchange; `m` holds the sender's state, the answer the receiver's. */
  Sync: 6,
  /** Dissemination: membership updates in `m`. */
  Gossip: 7,
  /** Delivery: several broadcast and direct messages in `msgs`, in order (tsp2p peers only). */
  Batch: 8,
  /** Catch-up: "your summary of these channels" (`log.chans`); answered `{"sum": [...]}`. */
  LogSummary: 12,
  /** Catch-up: "these messages" (`log.want` ranges, or `log.last`); answered `{"msgs": [...]}`. */
  LogFetch: 13,
} as const;

/** A message type number. */
export type MessageType = (typeof MessageType)[keyof typeof MessageType];

const KNOWN_TYPES: ReadonlySet<number> = new Set(Object.values(MessageType));

/** Whether `type` is a message type this node understands. */
export function isKnownType(type: number): type is MessageType {
  return KNOWN_TYPES.has(type);
}

/** The tsp2p protocol version this code speaks. */
export const PROTOCOL_VERSION = 1;

/** Limits on field sizes, enforced by the schemas. */
export const FIELD_LIMITS = Object.freeze({
  /** Longest host name or address, in characters (DNS allows 253). */
  address: 255,
  /** Longest node id, in characters. */
  id: 128,
  /** Longest display name, in characters. */
  name: 64,
  /** Longest message id, in characters. */
  messageId: 64,
  /** Most recipients in one direct message. */
  recipients: 1024,
});

/**
 * The highest incarnation a member may have: 2^31. Anything above it is refused, so a member
 * always has room to refute (see `src/membership/news.ts`).
 */
export const MAX_INCARNATION = 2 ** 31;

/** Most membership updates in one message (a sync carries the whole state). */
export const MAX_UPDATES = 100_000;

/** Whether `s` is standard, padded, canonical base64 (the rule of {@link Base64Schema}). */
export function isBase64(s: string): boolean {
  if (s.length % 4 !== 0) return false;
  return Buffer.from(s, 'base64').toString('base64') === s;
}

/** Limits of a message's log fields (`epoch`, `channel`; see `src/store/store.ts`). */
export const LOG_LIMITS = Object.freeze({
  /** Longest epoch, in characters. */
  epoch: 128,
  /** Longest channel: `t:` and a 64-character topic, or `d:` and a node id. */
  channel: 136,
});

/** Most messages in one batch. */
export const MAX_BATCH = 10_000;

/**
 * Most causal dependencies a publish carries (`deps`); a tsp2p node sends at most 4 (see
 * `src/delivery/causal.ts`), receivers take up to this many.
 */
export const MAX_DEPS = 8;

/**
 * Plumtree control entries: they ride inside a batch (type 8) next to messages, and are never
 * envelope types of their own. See `src/delivery/plumtree.ts`.
 */
export const TreeEntry = {
  /** "I have these messages": ids announced to a lazy peer. */
  IHave: 9,
  /** "Send me these messages (if any), and push to me from now on". */
  Graft: 10,
  /** "Stop pushing to me in full: announce instead". */
  Prune: 11,
} as const;

/** Most ids in one IHAVE or GRAFT. */
export const MAX_TREE_IDS = 1024;

/** Whether a batch entry is a Plumtree control entry rather than a message. */
export function isTreeControl(entry: BatchedMessage | TreeControl): entry is TreeControl {
  return entry.type >= TreeEntry.IHave;
}

/** HTTP headers tsp2p adds to its answers (a gop2p node ignores them). */
export const Headers = Object.freeze({
  /** The answering node's id. Its presence marks the answer as coming from a tsp2p node. */
  id: 'tsp2p-id',
  /** The answering node's display name, percent-encoded. */
  name: 'tsp2p-name',
  /** The answering node's protocol version. */
  version: 'tsp2p-version',
  /**
   * In a connect answer: the entry point's own `from` (self-record with tags, topics and record
   * signature), percent-encoded JSON, so that a newcomer knows its topics at once.
   */
  self: 'tsp2p-self',
});

/**
 * Builds the zod schemas of the wire format. They are the reference for every check, but zod
 * (about 13 MB of memory once loaded) is loaded and the schemas built only when something needs
 * them: {@link wireSchemas}. The common, well-formed requests and answers are checked by plain
 * code that accepts only what these schemas accept (`fast-batch.ts`, `fast-wire.ts`), so an idle
 * node, and most busy ones, never load zod.
 */
function buildWireSchemas(z: typeof Z) {
  const log = buildLogSchemas(z);

  const Incarnation = z.int().min(0).max(MAX_INCARNATION);

  /** A self-record's signature (see `src/security/record-signature.ts`): base64url, 86 characters. */
  const RecordSignature = z.string().regex(/^[A-Za-z0-9_-]{86}$/, 'expected a base64url Ed25519 signature');

  /**
   * A member's tags (rooms: the `tags` option and `setTags()`): a small string map. The limits
   * are those of `src/rooms.ts` (`TAG_LIMITS`), which a node checks before it states its tags.
   */
  const TagsSchema = z
    .record(z.string().min(1).max(32), z.string().max(128))
    .refine((t) => Object.keys(t).length <= 16, 'at most 16 tags');

  /** A member's topics (rooms: `subscribe()`): valid topic names, at most 32. */
  const TopicsSchema = z.array(z.string().regex(/^[A-Za-z0-9\-_.:/]{1,64}$/, 'not a topic name')).max(32);

  /** A peer as it appears on the wire: in `from`, in `to`, and in a connect answer's member list. */
  const WirePeerSchema = z.object({
    address: z.string().min(1).max(FIELD_LIMITS.address),
    port: z.int().min(1).max(65535),
    id: z.string().min(1).max(FIELD_LIMITS.id).optional(),
    name: z.string().max(FIELD_LIMITS.name).optional(),
    /** The member's incarnation (tsp2p only), at most {@link MAX_INCARNATION}. */
    inc: Incarnation.optional(),
    /**
     * The member's signature of its self-record `{id, address, port, name, tags, topics}` at
     * incarnation `rinc` (absent: `inc`), with its key in `key`: lets gossip carry the record to
     * nodes the member never talked to (see `src/security/record-signature.ts`).
     */
    rsig: RecordSignature.optional(),
    /** The incarnation `rsig` was made at, when it is not `inc`. */
    rinc: Incarnation.optional(),
    /** Self-record tags (see {@link TagsSchema}). */
    tags: TagsSchema.optional(),
    /** Self-record topics (see {@link TopicsSchema}). */
    topics: TopicsSchema.optional(),
    /**
     * The sender's raw Ed25519 public key, base64url (43 characters); its fingerprint is `id`.
     * Set in a signed envelope's `from` (see `src/security/signature.ts`).
     */
    key: z
      .string()
      .regex(/^[A-Za-z0-9_-]{43}$/, 'expected a base64url Ed25519 public key')
      .optional(),
    /**
     * The sender's raw X25519 public key for session MACs, base64url (43 characters). Trusted only
     * from a signed envelope's `from` (see `src/security/session-keys.ts`).
     */
    xkey: z
      .string()
      .regex(/^[A-Za-z0-9_-]{43}$/, 'expected a base64url X25519 public key')
      .optional(),
  });

  /** News about one member: see `src/membership/merge.ts` for how updates are ordered. */
  const MemberUpdateSchema = z.object({
    id: z.string().min(1).max(FIELD_LIMITS.id),
    address: z.string().min(1).max(FIELD_LIMITS.address),
    port: z.int().min(1).max(65535),
    name: z.string().max(FIELD_LIMITS.name).optional(),
    state: z.enum(['alive', 'suspect', 'dead', 'left']),
    inc: Incarnation,
    by: z.string().min(1).max(FIELD_LIMITS.id).optional(),
    kind: z.literal('gop2p').optional(),
    /** The member's own public key: `rsig` is checked against it, and it against `id`. */
    key: z
      .string()
      .regex(/^[A-Za-z0-9_-]{43}$/, 'expected a base64url Ed25519 public key')
      .optional(),
    /** The member's signature of its self-record (see {@link WirePeerSchema}'s `rsig`). */
    rsig: RecordSignature.optional(),
    /** The incarnation `rsig` was made at, when it is not `inc`. */
    rinc: Incarnation.optional(),
    /** The member's tags, as it stated them at `inc` (see {@link TagsSchema}). */
    tags: TagsSchema.optional(),
    /** The member's topics, as it stated them at `inc` (see {@link TopicsSchema}). */
    topics: TopicsSchema.optional(),
  });

  /**
   * Standard base64 with padding, as Go encodes a `[]byte`. Checked by re-encoding rather than by
   * a regular expression: a 1 MiB payload is checked in about a millisecond, not tens of them.
   */
  const Base64Schema = z.string().refine((s) => isBase64(s), 'Invalid base64-encoded string');

  /** One message inside a batch. */
  const BatchedMessageSchema = z.object({
    type: z.union([z.literal(2), z.literal(3)]),
    id: z.string().min(1).max(FIELD_LIMITS.messageId),
    ts: z.number().nonnegative(),
    data: Base64Schema,
    to: z.array(WirePeerSchema).max(FIELD_LIMITS.recipients).optional(),
    /**
     * Gossip relay: how many relays the message has passed through (0 from its origin). Present
     * only on relayed broadcasts; a receiver passes such a message on while `hops` is below the
     * hop limit.
     */
    hops: z.int().min(0).max(255).optional(),
    /** Gossip relay: the node that wrote the message, when it is not the batch's sender. */
    origin: WirePeerSchema.optional(),
    /**
     * Gossip relay: the origin's Ed25519 signature of the message (see
     * `src/security/gossip-signature.ts`), so that a relay cannot forge or alter it.
     */
    sig: z.string().length(86).optional(),
    /**
     * Plumtree: the message travels along the broadcast tree (dissemination `'plumtree'`), not by
     * gossip relay. Present with `hops`; see {@link TreeEntry}.
     */
    tree: z.literal(true).optional(),
    /**
     * A publish (rooms): the topic it is for. Sent only to the topic's subscribers (and relayed
     * only among them); a receiver not subscribed to it drops it. Covered by the batch's
     * signature, and by the origin's signature when relayed.
     */
    topic: z
      .string()
      .regex(/^[A-Za-z0-9\-_.:/]{1,64}$/, 'not a topic name')
      .optional(),
    /**
     * History (`src/store/store.ts`): the origin's log identity. With `channel` and `seq` it names
     * the message for catch-up; all three are covered by the origin's signature `sig`.
     */
    epoch: z.string().min(1).max(LOG_LIMITS.epoch).optional(),
    /** History: what the origin's numbers count: `b`, `t:TOPIC` or `d:RECIPIENT`. */
    channel: z.string().min(1).max(LOG_LIMITS.channel).optional(),
    /** History: the origin's number for the message in (`epoch`, `channel`), from 1. */
    seq: z.int().min(1).optional(),
    /**
     * History: the chain hash of the origin's previous message of the stream (`seq - 1`),
     * base64url of 32 bytes; covered by `sig` (see `src/security/gossip-signature.ts`).
     */
    prev: z
      .string()
      .regex(/^[A-Za-z0-9_-]{43}$/, 'not a chain hash')
      .optional(),
    /**
     * A publish: the ids of the messages its origin had delivered in the topic when it published
     * (causal order, `src/delivery/causal.ts`). Covered like `topic`.
     */
    deps: z.array(z.string().min(1).max(FIELD_LIMITS.messageId)).min(1).max(MAX_DEPS).optional(),
  });

  /** A broadcast named by its origin's node id and message id, in an IHAVE or a GRAFT. */
  const MessageRefSchema = z.object({
    origin: z.string().min(1).max(FIELD_LIMITS.id),
    id: z.string().min(1).max(FIELD_LIMITS.messageId),
  });

  /** A Plumtree control entry inside a batch: IHAVE (9), GRAFT (10) or PRUNE (11). */
  const TreeControlSchema = z.object({
    type: z.union([z.literal(TreeEntry.IHave), z.literal(TreeEntry.Graft), z.literal(TreeEntry.Prune)]),
    /** IHAVE: the ids announced; GRAFT: the ids asked for (none: only "push to me"). */
    ids: z.array(MessageRefSchema).max(MAX_TREE_IDS).optional(),
  });

  /**
   * The envelope every `POST /` carries. Unknown fields are ignored (stripped), as gop2p does.
   * `type` is any integer here: an unknown type is answered 405 by the decoder, as gop2p does.
   */
  const EnvelopeSchema = z.object({
    type: z.int(),
    data: Base64Schema.nullable().optional(),
    from: WirePeerSchema,
    // Go encodes a nil slice as null.
    to: z.array(WirePeerSchema).max(FIELD_LIMITS.recipients).nullable().optional(),
    /** tsp2p protocol version; absent in gop2p's envelopes. */
    v: z.int().min(1).optional(),
    /** Message id, unique per message; the receiver drops duplicates by it. */
    id: z.string().min(1).max(FIELD_LIMITS.messageId).optional(),
    /** The sender's wall-clock time when it created the message, in ms since the epoch. */
    ts: z.number().nonnegative().optional(),
    /** Membership updates: piggybacked gossip, or a sync's full state. */
    m: z.array(MemberUpdateSchema).max(MAX_UPDATES).optional(),
    /** The member a ping-req asks the receiver to ping. */
    target: WirePeerSchema.optional(),
    /**
     * On a connect: this is a newcomer's announcement to a member the entry point listed, not a
     * join through an entry point, so the answer need not list the members (it is `[]`).
     */
    announce: z.boolean().optional(),
    /**
     * On a sync without `m`: the digest of the sender's membership state (see `PROTOCOL.md`), so
     * that the receiver answers with its whole state only when its own digest differs.
     */
    digest: z.string().min(1).max(64).optional(),
    /**
     * On a batch: the sender's stream for this receiver (new each time the sender starts) and the
     * sequence number of the first message; the messages are numbered consecutively from it.
     * The receiver delivers each sequence number once, in order, whatever the retries.
     */
    stream: z.string().min(1).max(FIELD_LIMITS.messageId).optional(),
    seq: z.int().min(1).optional(),
    /**
     * On a batch: every number below it is settled by the sender (delivered, or given up for good),
     * so the receiver need not wait for those. At most `seq`.
     */
    base: z.int().min(1).optional(),
    /** On a log request (types 12 and 13): what is asked for (`src/protocol/log-schema.ts`). */
    log: log.LogRequestSchema.optional(),
    /** On a batch: the messages, and Plumtree control entries. */
    msgs: z
      .array(z.union([BatchedMessageSchema, TreeControlSchema]))
      .max(MAX_BATCH)
      .optional(),
  });

  /** The answer to a connect: the entry point's members, itself and the newcomer excluded. */
  const MemberListSchema = z.array(WirePeerSchema).max(100_000);

  /** The answer to a ping, ping-req, sync or gossip (`application/json`). */
  const AckSchema = z.object({
    /** For a ping-req: whether the target answered the receiver's ping. */
    ack: z.boolean().optional(),
    /**
     * For a ping-req whose `ack` is false: the receiver's ping was refused a connection (nothing
     * listens at the target's address), rather than timed out.
     */
    refused: z.boolean().optional(),
    m: z.array(MemberUpdateSchema).max(MAX_UPDATES).optional(),
    /** For a sync that carried a digest: the receiver's own digest (equal: nothing to exchange). */
    digest: z.string().min(1).max(64).optional(),
  });

  /**
   * A message served by catch-up (`log-codec.ts`): a batch entry with its origin (and the
   * origin's key) and its log number, required, and the origin's signature, which only a message
   * its successor's `prev` vouches for may lack (the asker checks that).
   */
  const LoggedEntrySchema = BatchedMessageSchema.extend({
    origin: WirePeerSchema,
    sig: z.string().length(86).optional(),
    epoch: z.string().min(1).max(128),
    channel: z.string().min(1).max(136),
    seq: z.int().min(1),
  });

  /** The answer to a log request: `sum` (type 12) or `msgs` (type 13). */
  const LogAnswerSchema = z.object({
    sum: z.array(log.WireSummarySchema).max(CATCH_UP_LIMITS.streams).optional(),
    msgs: z.array(LoggedEntrySchema).max(CATCH_UP_LIMITS.messages).optional(),
  });

  return {
    TagsSchema,
    TopicsSchema,
    WirePeerSchema,
    MemberUpdateSchema,
    Base64Schema,
    BatchedMessageSchema,
    MessageRefSchema,
    TreeControlSchema,
    EnvelopeSchema,
    MemberListSchema,
    AckSchema,
    LoggedEntrySchema,
    LogAnswerSchema,
  };
}

/** The wire format's zod schemas (see {@link wireSchemas}). */
export type WireSchemas = ReturnType<typeof buildWireSchemas>;

let built: WireSchemas | undefined;

/**
 * The wire format's zod schemas, built on the first call (which loads zod: a few milliseconds).
 * Used for what the plain-code checks are unsure of, and for the precise refusal of bad input.
 */
export function wireSchemas(): WireSchemas {
  built ??= buildWireSchemas(loadZod());
  return built;
}

/** zod, loaded on first use (its CommonJS build: it can be loaded synchronously). */
export function loadZod(): typeof Z {
  return createRequire(import.meta.url)('zod') as typeof Z;
}

/** A peer as it appears on the wire. */
export type WirePeer = Z.infer<WireSchemas['WirePeerSchema']>;

/** A membership update on the wire. */
export type WireMemberUpdate = Z.infer<WireSchemas['MemberUpdateSchema']>;

/** A message inside a batch. */
export type BatchedMessage = Z.infer<WireSchemas['BatchedMessageSchema']>;

/** A Plumtree control entry. */
export type TreeControl = Z.infer<WireSchemas['TreeControlSchema']>;

/** The decoded envelope. */
export type Envelope = Z.infer<WireSchemas['EnvelopeSchema']>;

/** A connect answer's member list. */
export type MemberList = Z.infer<WireSchemas['MemberListSchema']>;

/** The answer to a membership request. */
export type Ack = Z.infer<WireSchemas['AckSchema']>;
