/**
 * The client half of the HTTP transport: one keep-alive undici `Pool` per peer, and requests
 * dispatched with a small handler of tsp2p's own (answers are small and read whole).
 *
 * @module
 */

import { createRequire } from 'node:module';
import type { Dispatcher, Pool } from 'undici';
import { P2PError, PeerUnreachableError, ProtocolError } from '../errors.js';
import { formatHostPort } from '../peer.js';
import { clientTlsOptions, type ResolvedTls } from './tls.js';
import { MAX_RESPONSE_BYTES, type OutboundRequest, type OutboundResponse } from './transport.js';

/**
 * undici's `Pool` alone: its package entry point also loads fetch, WebSocket, the cache and the
 * mock agent, about 9 MB of memory that tsp2p never uses. The class is the same.
 */
const PoolClass = createRequire(import.meta.url)('undici/lib/dispatcher/pool.js') as typeof Pool;

/** The client's settings (see `HttpTransportOptions` for each one's default). */
export interface HttpClientOptions {
  readonly connectionsPerPeer: number;
  readonly keepAliveTimeoutMs: number;
  readonly tls: ResolvedTls | undefined;
}

/** One node's HTTP client. */
export class HttpClient {
  readonly #options: HttpClientOptions;
  readonly #tls: ResolvedTls | undefined;
  readonly #pools = new Map<string, Pool>();
  /** Told when a peer closes a pooled connection (see `ListenOptions.onConnectionLost`). */
  onConnectionLost: ((host: string, port: number) => void) | undefined;

  constructor(options: HttpClientOptions) {
    this.#options = options;
    this.#tls = options.tls;
  }

  request(request: OutboundRequest): Promise<OutboundResponse> {
    const { signal } = request;
    if (signal.aborted) return Promise.reject(signal.reason);
    const scheme = request.scheme ?? (this.#tls ? 'https' : 'http');
    const origin = `${scheme}://${formatHostPort(request.host, request.port)}`;
    const headers: Record<string, string> = { ...request.headers, 'content-type': 'application/json' };
    if (request.hostHeader !== undefined) headers.host = request.hostHeader;
    const body = Buffer.from(request.body.buffer, request.body.byteOffset, request.body.byteLength);
    // undici's dispatch with a handler of our own: the answer is small and read whole, so the
    // stream, async iterator and promise machinery of `request()` would be all cost, per request.
    return new Promise<OutboundResponse>((resolve, reject) => {
      let controller: Dispatcher.DispatchController | undefined;
      let status = 0;
      let answerHeaders: Record<string, string | undefined> = {};
      const chunks: Buffer[] = [];
      let size = 0;
      let settled = false;
      const finish = (error: unknown, response?: OutboundResponse): void => {
        if (settled) return;
        settled = true;
        signal.removeEventListener('abort', onAbort);
        if (response !== undefined) resolve(response);
        else reject(error);
      };
      const onAbort = (): void => {
        controller?.abort(signal.reason);
        finish(signal.reason);
      };
      signal.addEventListener('abort', onAbort, { once: true });
      const handler: Dispatcher.DispatchHandler = {
        onRequestStart(c) {
          controller = c;
          if (settled) c.abort(signal.reason);
        },
        onResponseStart(_c, statusCode, h) {
          if (statusCode < 200) return; // an interim answer (100 Continue): the real one follows
          status = statusCode;
          answerHeaders = h as Record<string, string | undefined>;
        },
        onResponseData(c, chunk) {
          size += chunk.length;
          if (size > MAX_RESPONSE_BYTES) {
            const error = new ProtocolError(
              `answer from ${origin} is larger than ${MAX_RESPONSE_BYTES} bytes`,
            );
            finish(error);
            c.abort(error);
            return;
          }
          chunks.push(chunk);
        },
        onResponseEnd() {
          finish(undefined, {
            status,
            headers: answerHeaders,
            body: chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks),
          });
        },
        onResponseError(_c, err) {
          finish(signal.aborted ? signal.reason : unreachable(origin, err));
        },
      };
      try {
        this.#pool(origin).dispatch({ origin, path: '/', method: 'POST', headers, body }, handler);
      } catch (err) {
        finish(unreachable(origin, err));
      }
    });
  }

  #pool(origin: string): Pool {
    let pool = this.#pools.get(origin);
    if (pool === undefined) {
      pool = new PoolClass(origin, {
        connections: this.#options.connectionsPerPeer,
        keepAliveTimeout: this.#options.keepAliveTimeoutMs,
        connectTimeout: 5_000,
        ...(this.#tls && origin.startsWith('https:') ? { connect: clientTlsOptions(this.#tls) } : {}),
      });
      // The peer closed a connection (undici's "other side closed", `UND_ERR_SOCKET`); this
      // client's own idle timeout and destroy are other codes.
      const { hostname, port } = new URL(origin);
      const host = hostname.startsWith('[') ? hostname.slice(1, -1) : hostname;
      pool.on('disconnect', (_origin, _targets, err) => {
        if ((err as { code?: string } | undefined)?.code === 'UND_ERR_SOCKET') {
          this.onConnectionLost?.(host, Number(port) || (origin.startsWith('https:') ? 443 : 80));
        }
      });
      this.#pools.set(origin, pool);
    }
    return pool;
  }

  /** Destroys every pool: outbound requests still open are cut. */
  async close(): Promise<void> {
    const pools = [...this.#pools.values()];
    this.#pools.clear();
    await Promise.all(pools.map((p) => p.destroy().catch(() => undefined)));
  }
}

/** A failed request's error: a P2PError as it is, anything else as the peer being unreachable. */
function unreachable(origin: string, err: unknown): P2PError {
  if (err instanceof P2PError) return err;
  const code = (err as { code?: string }).code ?? 'unknown';
  return new PeerUnreachableError(`cannot reach ${origin}: ${(err as Error).message} (${code})`, {
    cause: err,
  });
}
