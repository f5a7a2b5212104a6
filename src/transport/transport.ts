/**
 * The transport contract: how a node receives requests and sends them. The node speaks only
 * to this interface; {@link HttpTransport} is the real network and {@link MemoryTransport} an
 * in-process one for simulations. The same compliance suite runs against both.
 *
 * @module
 */

import type { RefusalReason } from '../errors.js';

/** A request that arrived at this node. Header names are lowercase. */
export interface InboundRequest {
  readonly method: string;
  /** The request path, without the query string. */
  readonly path: string;
  /** The query string, without its `?`; absent or `''` when there is none. */
  readonly query?: string;
  readonly headers: Readonly<Record<string, string | undefined>>;
  /** The whole body, already capped at the listener's `maxBodyBytes`. */
  readonly body: Uint8Array;
  /** The peer's IP address as the socket sees it (IPv4-mapped prefix removed). */
  readonly remoteAddress: string;
}

/**
 * The open side of a streamed answer (Server-Sent Events): chunks are written as they come,
 * until either side closes it.
 */
export interface ResponseStream {
  /** Writes a chunk. Returns `false`, writing nothing, once the stream is closed. */
  write(chunk: string): boolean;
  /** Ends the answer. Idempotent. */
  end(): void;
  /** Aborts when the stream closes: the client went away, `end()` was called, or the transport closed. */
  readonly signal: AbortSignal;
}

/** The answer to an {@link InboundRequest}. */
export interface InboundResponse {
  readonly status: number;
  readonly body?: string | Uint8Array;
  /** @default 'text/plain; charset=utf-8' (`'text/event-stream'` for a stream) */
  readonly contentType?: string;
  readonly headers?: Readonly<Record<string, string>>;
  /**
   * A streamed answer. When set, `body` is ignored: the transport sends the status and headers
   * at once, without a length, then calls `stream` with the open stream. The transport ends
   * every open stream when it closes. A transport that cannot stream answers 501 instead.
   */
  readonly stream?: (out: ResponseStream) => void;
}

/** Handles one inbound request. It must not throw; a throw is answered 500 and logged. */
export type InboundHandler = (request: InboundRequest) => InboundResponse | Promise<InboundResponse>;

/** What {@link Transport.listen} needs. */
export interface ListenOptions {
  /** Interface to bind; `0.0.0.0` or `::` for all. */
  readonly host: string;
  /** Port to bind; 0 picks a free one. */
  readonly port: number;
  /**
   * Largest request body accepted, in bytes. A larger body is answered 413 before it is read
   * whole (at once, when its Content-Length says so).
   */
  readonly maxBodyBytes: number;
  readonly handler: InboundHandler;
  /**
   * Told of each request the transport refuses itself, before the handler sees it (a body over
   * the cap, malformed HTTP), with its status and a short reason; for metrics.
   */
  readonly onRefused?: (status: number, reason: RefusalReason) => void;
  /**
   * Told when a kept-alive outbound connection to a peer was closed from the peer's side (its
   * process may have stopped or crashed), with the host and port requests went to. A transport
   * without connections never calls it.
   */
  readonly onConnectionLost?: (host: string, port: number) => void;
}

/** Where the listener ended up. */
export interface ListenAddress {
  readonly host: string;
  readonly port: number;
}

/** A request to send to a peer. */
export interface OutboundRequest {
  readonly host: string;
  readonly port: number;
  /** @default 'http' */
  readonly scheme?: 'http' | 'https';
  /** JSON body, POSTed to `/`. */
  readonly body: Uint8Array;
  /** Extra request headers (lowercase names). */
  readonly headers?: Readonly<Record<string, string>>;
  /**
   * Overrides the Host header. gop2p refuses a request whose Host equals its own address, and
   * its own clients send their *own* address there; compat mode does the same.
   */
  readonly hostHeader?: string;
  /** Aborts the request; the call then rejects with `signal.reason`. */
  readonly signal: AbortSignal;
}

/** A peer's answer. Header names are lowercase. */
export interface OutboundResponse {
  readonly status: number;
  readonly headers: Readonly<Record<string, string | undefined>>;
  readonly body: Uint8Array;
}

/**
 * Sends and receives requests.
 *
 * `request()` resolves with any HTTP answer, whatever its status. It rejects with
 * `PeerUnreachableError` when the peer cannot be reached, `ProtocolError` when its answer is
 * malformed or too large, and `signal.reason` when the signal aborts.
 */
export interface Transport {
  listen(options: ListenOptions): Promise<ListenAddress>;
  request(request: OutboundRequest): Promise<OutboundResponse>;
  /**
   * Stops listening and closes every connection. In-flight exchanges get `graceMs` to finish,
   * then are cut. Idempotent.
   */
  close(options?: { graceMs?: number }): Promise<void>;
}

/** Largest answer body a transport reads from a peer, in bytes. */
export const MAX_RESPONSE_BYTES = 64 * 1024 * 1024;

/**
 * Whether a failed request's error says that nothing listens at the peer's address (connection
 * refused): strong evidence that the peer is gone, unlike a timeout.
 */
export function isConnectionRefused(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  const code = (err as { code?: unknown }).code;
  if (code === 'ECONNREFUSED') return true;
  const cause = (err as { cause?: unknown }).cause as { code?: unknown } | undefined;
  return cause?.code === 'ECONNREFUSED';
}
