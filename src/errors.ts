/**
 * Typed errors. Every error tsp2p raises is a {@link P2PError} with a literal `code`.
 * Callers (and tests) branch on `code`, never on the message text.
 *
 * @module
 */

/** Every error code tsp2p can raise. */
export type P2PErrorCode =
  | 'ERR_NOT_STARTED'
  | 'ERR_ALREADY_STARTED'
  | 'ERR_NOT_CONNECTED'
  | 'ERR_INVALID_ADDRESS'
  | 'ERR_INVALID_OPTIONS'
  | 'ERR_INVALID_MESSAGE'
  | 'ERR_CONNECT_FAILED'
  | 'ERR_UNKNOWN_PEER'
  | 'ERR_MESSAGE_TOO_LARGE'
  | 'ERR_UNAUTHORIZED'
  | 'ERR_FORBIDDEN'
  | 'ERR_TIMEOUT'
  | 'ERR_PEER_UNREACHABLE'
  | 'ERR_PEER_REFUSED'
  | 'ERR_PROTOCOL'
  | 'ERR_ADDRESS_IN_USE'
  | 'ERR_STOPPED'
  | 'ERR_BACKPRESSURE'
  | 'ERR_STORE_CORRUPT'
  | 'ERR_STORE_VERSION'
  | 'ERR_STORE_LOCKED'
  | 'ERR_INVALID_TOPIC'
  | 'ERR_TAGS_TOO_LARGE';

/**
 * Base class of every tsp2p error.
 *
 * @example
 * ```ts
 * try { await node.send('127.0.0.1:9', 'hi'); }
 * catch (err) { if (err instanceof P2PError && err.code === 'ERR_UNKNOWN_PEER') {} }
 * ```
 */
export class P2PError extends Error {
  /** The stable, machine-readable error code. */
  readonly code: P2PErrorCode;

  /**
   * @param code - the stable error code
   * @param message - a one-line human-readable explanation
   * @param options - `cause`, the underlying error, where there is one
   */
  constructor(code: P2PErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }

  override get name(): string {
    return this.constructor.name;
  }

  /** A plain `{ code, message }` object, for logs and for answers sent over the wire. */
  toJSON(): { code: P2PErrorCode; message: string } {
    return { code: this.code, message: this.message };
  }
}

/** The node is not started: call `start()` first. */
export class NotStartedError extends P2PError {
  declare readonly code: 'ERR_NOT_STARTED';
  constructor(message = 'the node is not started: call start() first') {
    super('ERR_NOT_STARTED', message);
  }
}

/** `start()` was called on a node that is already started (or starting). */
export class AlreadyStartedError extends P2PError {
  declare readonly code: 'ERR_ALREADY_STARTED';
  constructor(message = 'the node is already started') {
    super('ERR_ALREADY_STARTED', message);
  }
}

/** The call needs a connected node: call `connect()` first, or wait for a peer to join. */
export class NotConnectedError extends P2PError {
  declare readonly code: 'ERR_NOT_CONNECTED';
  constructor(message = 'the node is not connected to a network: call connect() first') {
    super('ERR_NOT_CONNECTED', message);
  }
}

/** An address could not be parsed, or names something that cannot be a peer. */
export class InvalidAddressError extends P2PError {
  declare readonly code: 'ERR_INVALID_ADDRESS';
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_INVALID_ADDRESS', message, options);
  }
}

/** The options given to `new Node()` (or to a method) are invalid. */
export class InvalidOptionsError extends P2PError {
  declare readonly code: 'ERR_INVALID_OPTIONS';
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_INVALID_OPTIONS', message, options);
  }
}

/** A message payload is neither a string nor a Uint8Array. */
export class InvalidMessageError extends P2PError {
  declare readonly code: 'ERR_INVALID_MESSAGE';
  constructor(message: string) {
    super('ERR_INVALID_MESSAGE', message);
  }
}

/**
 * Why a join failed, where the node can tell: `'gop2p-compat-required'` when the entry point is
 * a gop2p node and this node does not run in compat mode (option `compat: 'gop2p'`).
 */
export type ConnectFailureReason = 'gop2p-compat-required';

/** Joining through an entry point failed. `cause` holds the underlying error. */
export class ConnectFailedError extends P2PError {
  declare readonly code: 'ERR_CONNECT_FAILED';
  /** Why, when the node can tell more than the message says (a literal, for front ends). */
  readonly reason: ConnectFailureReason | undefined;
  constructor(message: string, options?: { cause?: unknown; reason?: ConnectFailureReason }) {
    super('ERR_CONNECT_FAILED', message, options);
    this.reason = options?.reason;
  }
}

/** A direct message named a peer that is not a member. */
export class UnknownPeerError extends P2PError {
  declare readonly code: 'ERR_UNKNOWN_PEER';
  constructor(message: string) {
    super('ERR_UNKNOWN_PEER', message);
  }
}

/** A payload is larger than `maxMessageBytes`, or a request body larger than the node accepts. */
export class MessageTooLargeError extends P2PError {
  declare readonly code: 'ERR_MESSAGE_TOO_LARGE';
  constructor(message: string) {
    super('ERR_MESSAGE_TOO_LARGE', message);
  }
}

/** A request lacked valid credentials (answered with HTTP 401). */
export class UnauthorizedError extends P2PError {
  declare readonly code: 'ERR_UNAUTHORIZED';
  constructor(message: string) {
    super('ERR_UNAUTHORIZED', message);
  }
}

/** A request came from a sender that may not do it, such as a non-member (HTTP 403). */
export class ForbiddenError extends P2PError {
  declare readonly code: 'ERR_FORBIDDEN';
  constructor(message: string) {
    super('ERR_FORBIDDEN', message);
  }
}

/** An operation did not finish within its time limit. */
export class TimeoutError extends P2PError {
  declare readonly code: 'ERR_TIMEOUT';
  constructor(message = 'the operation timed out') {
    super('ERR_TIMEOUT', message);
  }
}

/** A peer could not be reached at all (connection refused, reset, DNS failure). */
export class PeerUnreachableError extends P2PError {
  declare readonly code: 'ERR_PEER_UNREACHABLE';
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_PEER_UNREACHABLE', message, options);
  }
}

/**
 * Why a node refused a request: the one code that travels from the check that refused it to the
 * HTTP answer (its status and first words, see PROTOCOL.md), the `reason` label of
 * `tsp2p_requests_refused_total`, and the sender's {@link PeerRefusedError}.
 */
export type RefusalReason =
  // The envelope and its sender (src/node/inbound.ts, src/protocol/codec.ts).
  | 'invalid_message'
  | 'self'
  | 'not_registered'
  | 'gop2p_not_allowed'
  | 'method_not_allowed'
  | 'not_found'
  | 'too_large'
  | 'table_full'
  | 'shutting_down'
  | 'out_of_order'
  // The node's 'message' listeners are behind (src/delivery/listener-lane.ts): 503, retry.
  | 'busy'
  | 'stream_ended'
  // A ping for another member (src/node/inbound.ts): 421.
  | 'misdirected'
  // Signatures, MACs and timestamps (src/security/inbound-guard.ts).
  | 'unsigned'
  | 'bad_key'
  | 'bad_signature'
  | 'bad_mac'
  | 'no_session'
  | 'stale'
  // The network secret (src/security/authenticated-transport.ts).
  | 'no_network_tag'
  | 'bad_network_tag'
  // The HTTP server itself (src/transport/http-server.ts).
  | 'rate_limited'
  | 'timeout'
  | 'headers_too_large'
  | 'malformed_http'
  | 'too_many_connections'
  // An answer whose words name no reason above: by its status alone.
  | 'bad_request'
  | 'unauthorized'
  | 'forbidden'
  | 'unavailable'
  | 'other';

/** A peer answered, but refused the request. `status` and `body` hold its answer, `reason` why. */
export class PeerRefusedError extends P2PError {
  declare readonly code: 'ERR_PEER_REFUSED';
  /** The HTTP status the peer answered with. */
  readonly status: number;
  /** The first line of the peer's answer. */
  readonly body: string;
  /** How long the peer asked us to wait before trying again (its `Retry-After`), in ms. */
  readonly retryAfterMs: number | undefined;
  /** Why the peer refused (`'other'` when its answer does not say). */
  readonly reason: RefusalReason;
  constructor(status: number, body: string, retryAfterMs?: number, reason: RefusalReason = 'other') {
    super('ERR_PEER_REFUSED', `peer refused the request: ${status} ${body}`.trim());
    this.status = status;
    this.body = body;
    this.retryAfterMs = retryAfterMs;
    this.reason = reason;
  }
}

/** A peer sent something that does not follow the protocol. */
export class ProtocolError extends P2PError {
  declare readonly code: 'ERR_PROTOCOL';
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_PROTOCOL', message, options);
  }
}

/** The port the node should listen on is taken. */
export class AddressInUseError extends P2PError {
  declare readonly code: 'ERR_ADDRESS_IN_USE';
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_ADDRESS_IN_USE', message, options);
  }
}

/** The node was stopped while the call was in progress. */
export class StoppedError extends P2PError {
  declare readonly code: 'ERR_STOPPED';
  constructor(message = 'the node was stopped') {
    super('ERR_STOPPED', message);
  }
}

/** A peer's outbound queue is full and the node runs with `backpressure: 'reject'`. */
export class BackpressureError extends P2PError {
  declare readonly code: 'ERR_BACKPRESSURE';
  constructor(message: string) {
    super('ERR_BACKPRESSURE', message);
  }
}

/**
 * The database in `dataDir` cannot be used: it is not an SQLite database, it is damaged, or it
 * cannot be opened. Raised when the node starts, never later; `cause` holds SQLite's error.
 * Restore the directory from a backup, or move it away to start with an empty history.
 */
export class StoreCorruptError extends P2PError {
  declare readonly code: 'ERR_STORE_CORRUPT';
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_STORE_CORRUPT', message, options);
  }
}

/**
 * The database in `dataDir` was written by a newer tsp2p (its schema version is above the one
 * this version knows). Raised when the node starts; nothing in the database is changed.
 */
export class StoreVersionError extends P2PError {
  declare readonly code: 'ERR_STORE_VERSION';
  /** The schema version found in the database. */
  readonly found: number;
  /** The newest schema version this tsp2p knows. */
  readonly supported: number;
  constructor(found: number, supported: number, path: string) {
    super(
      'ERR_STORE_VERSION',
      `${path}: database schema version ${found} is newer than this tsp2p supports (${supported}): upgrade tsp2p`,
    );
    this.found = found;
    this.supported = supported;
  }
}

/**
 * A topic name that is not 1 to 64 bytes of letters, digits and `-_.:/`, or a subscription
 * beyond the most topics a node may hold (see `src/rooms.ts`).
 */
export class InvalidTopicError extends P2PError {
  declare readonly code: 'ERR_INVALID_TOPIC';
  constructor(message: string) {
    super('ERR_INVALID_TOPIC', message);
  }
}

/**
 * Tags that do not fit: more bytes than `maxTagBytes`, or beyond the per-tag limits every node
 * accepts (see `src/rooms.ts`). Raised at `new Node()` and at `setTags()`, never later.
 */
export class TagsTooLargeError extends P2PError {
  declare readonly code: 'ERR_TAGS_TOO_LARGE';
  constructor(message: string) {
    super('ERR_TAGS_TOO_LARGE', message);
  }
}

/**
 * Another node (in this process or another) has the same `dataDir` open. Raised when the node
 * starts. Give each node a `dataDir` of its own; the lock goes when that node stops or dies.
 */
export class StoreLockedError extends P2PError {
  declare readonly code: 'ERR_STORE_LOCKED';
  constructor(dataDir: string, options?: { cause?: unknown }) {
    super('ERR_STORE_LOCKED', `dataDir ${dataDir} is in use by another node`, options);
  }
}

/**
 * The one table from error code to HTTP status, used when an error becomes an HTTP answer.
 * Codes missing here map to 500.
 */
export const HTTP_STATUS_BY_CODE: Readonly<Partial<Record<P2PErrorCode, number>>> = Object.freeze({
  ERR_INVALID_MESSAGE: 400,
  ERR_PROTOCOL: 400,
  ERR_INVALID_ADDRESS: 400,
  ERR_INVALID_TOPIC: 400,
  ERR_TAGS_TOO_LARGE: 400,
  ERR_UNAUTHORIZED: 401,
  ERR_FORBIDDEN: 403,
  ERR_UNKNOWN_PEER: 403,
  ERR_MESSAGE_TOO_LARGE: 413,
  ERR_TIMEOUT: 408,
  ERR_STOPPED: 503,
  ERR_NOT_STARTED: 503,
});

/** The HTTP status an error should be answered with. */
export function httpStatusOf(err: unknown): number {
  if (err instanceof P2PError) return HTTP_STATUS_BY_CODE[err.code] ?? 500;
  return 500;
}

/** An error as a {@link P2PError}: anything else counts as the peer being unreachable. */
export function asP2PError(err: unknown): P2PError {
  if (err instanceof P2PError) return err;
  return new P2PError('ERR_PEER_UNREACHABLE', (err as Error)?.message ?? String(err), { cause: err });
}
