/**
 * The HTTP transport: a `node:http` server (`http-server.ts`) and a keep-alive `node:http` `Agent`
 * for the requests to peers (`http-client.ts`).
 *
 * @module
 */

import type { Logger } from '../logger.js';
import { noopLogger } from '../logger.js';
import { HttpClient } from './http-client.js';
import { HttpServer } from './http-server.js';
import type { RateLimitOptions } from './rate-limit.js';
import type { ResolvedTls } from './tls.js';
import type {
  ListenAddress,
  ListenOptions,
  OutboundRequest,
  OutboundResponse,
  Transport,
} from './transport.js';

/** Tunables of {@link HttpTransport}. */
export interface HttpTransportOptions {
  /** Keep-alive connections per peer. @default 4 */
  readonly connectionsPerPeer?: number;
  /** How long the server waits for a request's headers, in ms (slowloris guard). @default 10000 */
  readonly headersTimeoutMs?: number;
  /** How long the server waits for a whole request, in ms. @default 30000 */
  readonly requestTimeoutMs?: number;
  /**
   * How long an idle outbound keep-alive connection to a peer stays open, in ms. It outlasts a
   * probe round (a node probes each member once every `n` probe periods), so that at rest a probe
   * reuses its connection instead of opening one; an idle socket costs a few kB. The server keeps
   * an idle inbound connection 5 s longer, so that the client is always the side that closes it
   * and never sends on a socket the server is closing. @default 120000
   */
  readonly keepAliveTimeoutMs?: number;
  /** Most open server connections; beyond, a new one is closed at once. @default 4096 */
  readonly maxConnections?: number;
  /** A per-source rate limit, answered 429 with Retry-After before the body is read. @default none */
  readonly rateLimit?: RateLimitOptions;
  /** Serve HTTPS, and reach peers with HTTPS, verifying their certificates. @default plain HTTP */
  readonly tls?: ResolvedTls;
  readonly logger?: Logger;
}

/** The real network: HTTP/1.1 over TCP. */
export class HttpTransport implements Transport {
  readonly #server: HttpServer;
  readonly #client: HttpClient;
  #closing: Promise<void> | undefined;

  constructor(options: HttpTransportOptions = {}) {
    const keepAliveTimeoutMs = options.keepAliveTimeoutMs ?? 120_000;
    this.#server = new HttpServer({
      headersTimeoutMs: options.headersTimeoutMs ?? 10_000,
      requestTimeoutMs: options.requestTimeoutMs ?? 30_000,
      keepAliveTimeoutMs: keepAliveTimeoutMs + 5_000,
      maxConnections: options.maxConnections ?? 4096,
      rateLimit: options.rateLimit,
      tls: options.tls,
      logger: options.logger ?? noopLogger,
    });
    this.#client = new HttpClient({
      connectionsPerPeer: options.connectionsPerPeer ?? 4,
      keepAliveTimeoutMs,
      tls: options.tls,
    });
  }

  listen(options: ListenOptions): Promise<ListenAddress> {
    const bound = this.#server.listen(options);
    this.#client.onConnectionLost = options.onConnectionLost;
    this.#closing = undefined;
    return bound;
  }

  request(request: OutboundRequest): Promise<OutboundResponse> {
    return this.#client.request(request);
  }

  close(options: { graceMs?: number } = {}): Promise<void> {
    // Pools first: our own outbound requests are done or aborted by now.
    this.#closing ??= this.#server.close(options.graceMs ?? 2_000, this.#client.close());
    return this.#closing;
  }
}
