/**
 * The client half of the HTTP transport: Node's own `http.Agent` (and `https.Agent`) with
 * keep-alive, at most `connectionsPerPeer` connections per peer, idle ones kept
 * `keepAliveTimeoutMs`.
 *
 * Node's client rather than undici's `Pool`: undici costs every node memory (its modules, and
 * the WebAssembly HTTP parser it compiles at its first request), while `node:http` is loaded
 * anyway by the server. On the `broadcast` benchmark, where batching keeps requests few and
 * large, the two deliver the same throughput (BENCHMARKS.md, "Cheap at rest").
 *
 * @module
 */

import http, { type ClientRequest, type IncomingMessage } from 'node:http';
import https from 'node:https';
import type { Socket } from 'node:net';
import { P2PError, PeerUnreachableError, ProtocolError } from '../errors.js';
import { formatHostPort } from '../peer.js';
import { clientTlsOptions, type ResolvedTls } from './tls.js';
import { MAX_RESPONSE_BYTES, type OutboundRequest, type OutboundResponse } from './transport.js';

/** The client's settings (see `HttpTransportOptions` for each one's default). */
export interface HttpClientOptions {
  readonly connectionsPerPeer: number;
  readonly keepAliveTimeoutMs: number;
  readonly tls: ResolvedTls | undefined;
}

/** One node's HTTP client. */
export class HttpClient {
  readonly #tls: ResolvedTls | undefined;
  readonly #http: http.Agent;
  readonly #https: https.Agent | undefined;
  /** Sockets already watched for the peer closing them. */
  readonly #watched = new WeakSet<Socket>();
  #closed = false;
  /** Told when a peer closes a pooled connection (see `ListenOptions.onConnectionLost`). */
  onConnectionLost: ((host: string, port: number) => void) | undefined;

  constructor(options: HttpClientOptions) {
    this.#tls = options.tls;
    const agent = {
      keepAlive: true,
      maxSockets: options.connectionsPerPeer,
      maxFreeSockets: options.connectionsPerPeer,
      // An idle (free) connection is closed after this long; the server keeps its end longer.
      timeout: options.keepAliveTimeoutMs,
      scheduling: 'lifo' as const,
    };
    this.#http = new http.Agent(agent);
    this.#https = options.tls ? new https.Agent({ ...agent, ...clientTlsOptions(options.tls) }) : undefined;
  }

  request(request: OutboundRequest): Promise<OutboundResponse> {
    const { signal } = request;
    if (signal.aborted) return Promise.reject(signal.reason);
    const scheme = request.scheme ?? (this.#tls ? 'https' : 'http');
    const origin = `${scheme}://${formatHostPort(request.host, request.port)}`;
    if (this.#closed) return Promise.reject(unreachable(origin, new Error('the client is closed')));
    const headers: Record<string, string> = {
      ...request.headers,
      'content-type': 'application/json',
      'content-length': String(request.body.byteLength),
    };
    if (request.hostHeader !== undefined) headers.host = request.hostHeader;
    const tls = scheme === 'https';
    const agent = tls ? (this.#https ?? this.#httpsFallback()) : this.#http;
    return new Promise<OutboundResponse>((resolve, reject) => {
      let settled = false;
      let req: ClientRequest | undefined;
      const finish = (error: unknown, response?: OutboundResponse): void => {
        if (settled) return;
        settled = true;
        signal.removeEventListener('abort', onAbort);
        if (response !== undefined) resolve(response);
        else reject(error);
      };
      const onAbort = (): void => {
        finish(signal.reason);
        req?.destroy();
      };
      signal.addEventListener('abort', onAbort, { once: true });
      const options = { host: request.host, port: request.port, method: 'POST', path: '/', headers, agent };
      try {
        req = (tls ? https : http).request(options, (res) => this.#read(res, origin, req!, finish));
      } catch (err) {
        finish(unreachable(origin, err));
        return;
      }
      req.on('socket', (socket) => this.#watch(socket, request.host, request.port));
      req.on('error', (err) => finish(signal.aborted ? signal.reason : unreachable(origin, err)));
      req.end(Buffer.from(request.body.buffer, request.body.byteOffset, request.body.byteLength));
    });
  }

  /** Reads an answer whole, up to {@link MAX_RESPONSE_BYTES}. */
  #read(
    res: IncomingMessage,
    origin: string,
    req: ClientRequest,
    finish: (error: unknown, response?: OutboundResponse) => void,
  ): void {
    const chunks: Buffer[] = [];
    let size = 0;
    res.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_RESPONSE_BYTES) {
        finish(new ProtocolError(`answer from ${origin} is larger than ${MAX_RESPONSE_BYTES} bytes`));
        req.destroy();
        return;
      }
      chunks.push(chunk);
    });
    res.on('end', () => {
      finish(undefined, {
        status: res.statusCode ?? 0,
        headers: res.headers as Record<string, string | undefined>,
        body: chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks),
      });
    });
    res.on('error', (err) => finish(unreachable(origin, err)));
  }

  /**
   * Watches a new connection for the peer closing it (a FIN: the peer's process ended, or it
   * closed the connection): `onConnectionLost`. This client's own idle timeout and `close()`
   * destroy the socket without one, so they are not reported.
   */
  #watch(socket: Socket, host: string, port: number): void {
    if (this.#watched.has(socket)) return;
    this.#watched.add(socket);
    socket.once('end', () => {
      if (!this.#closed) this.onConnectionLost?.(host, port);
    });
  }

  /** An `https:` request without TLS options of this node's own: Node's defaults. */
  #httpsFallback(): https.Agent {
    return https.globalAgent;
  }

  /** Closes every connection: outbound requests still open are cut. */
  async close(): Promise<void> {
    this.#closed = true;
    this.#http.destroy();
    this.#https?.destroy();
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
