/**
 * The server half of the HTTP transport: a `node:http` (or `node:https`) server with the limits
 * that keep a node alive under bad clients (header and request timeouts, idle connections, a
 * connection cap, a per-source rate limit, body caps checked before the body is read), and
 * streamed answers (Server-Sent Events).
 *
 * @module
 */

import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { AddressInUseError, P2PError, type RefusalReason } from '../errors.js';
import type { Logger } from '../logger.js';
import { formatHostPort, normalizeRemoteAddress } from '../peer.js';
import { RateLimiter, type RateLimitOptions } from './rate-limit.js';
import { type ResolvedTls, serverTlsOptions } from './tls.js';
import type {
  InboundRequest,
  InboundResponse,
  ListenAddress,
  ListenOptions,
  ResponseStream,
} from './transport.js';

/** The server's settings (see `HttpTransportOptions` for each one's default). */
export interface HttpServerOptions {
  readonly headersTimeoutMs: number;
  readonly requestTimeoutMs: number;
  readonly keepAliveTimeoutMs: number;
  readonly maxConnections: number;
  readonly rateLimit: RateLimitOptions | undefined;
  readonly tls: ResolvedTls | undefined;
  readonly logger: Logger;
}

const TEXT = 'text/plain; charset=utf-8';
/** A streamed answer whose client reads slower than this many buffered bytes is cut. */
const MAX_STREAM_BACKLOG = 4 * 1024 * 1024;

/** One node's HTTP server. */
export class HttpServer {
  readonly #options: HttpServerOptions;
  readonly #logger: Logger;
  readonly #limiter: RateLimiter | undefined;
  readonly #tls: ResolvedTls | undefined;
  readonly #sockets = new Set<Socket>();
  /** Closers of the open streamed answers. */
  readonly #streams = new Set<() => void>();
  #server: Server | undefined;

  constructor(options: HttpServerOptions) {
    this.#options = options;
    this.#logger = options.logger;
    this.#limiter = options.rateLimit === undefined ? undefined : new RateLimiter(options.rateLimit);
    this.#tls = options.tls;
  }

  async listen(options: ListenOptions): Promise<ListenAddress> {
    if (this.#server) throw new P2PError('ERR_ALREADY_STARTED', 'the transport is already listening');
    const httpOptions = {
      headersTimeout: this.#options.headersTimeoutMs,
      requestTimeout: this.#options.requestTimeoutMs,
      keepAliveTimeout: this.#options.keepAliveTimeoutMs,
      maxHeaderSize: 16 * 1024,
      // How often the timeouts above are checked: Node's default, 30 s, lets a slow client stay
      // that much longer; every second costs an idle node a wake-up a second. Half the header
      // timeout cuts a silent client within 1.5 times that timeout.
      connectionsCheckingInterval: Math.max(
        100,
        Math.min(5_000, Math.floor(this.#options.headersTimeoutMs / 2)),
      ),
    };
    const server: Server = this.#tls
      ? createHttpsServer({
          ...httpOptions,
          ...serverTlsOptions(this.#tls),
          // A client that never finishes its handshake is cut like one that never sends headers.
          handshakeTimeout: this.#options.headersTimeoutMs,
        })
      : createServer(httpOptions);
    server.maxConnections = this.#options.maxConnections;
    server.on('drop', () => options.onRefused?.(503, 'too_many_connections'));
    server.on('connection', (socket: Socket) => {
      this.#sockets.add(socket);
      socket.once('close', () => this.#sockets.delete(socket));
    });
    // A connection that never sends a byte is no request yet, so the header timeout does not
    // see it: an idle timer cuts it, until its first request arrives (Node's own timeouts then
    // take over: headers, request, keep-alive).
    const silent = new WeakSet<Socket>();
    server.on(this.#tls ? 'secureConnection' : 'connection', (socket: Socket) => {
      silent.add(socket);
      socket.setTimeout(this.#options.headersTimeoutMs);
    });
    server.on('request', (req: IncomingMessage, res: ServerResponse) => {
      if (silent.delete(req.socket)) req.socket.setTimeout(0);
      // No Date header: nobody reads it, and Node caches its text behind a timer that fires
      // within a second of each answer, one more wake-up per request for an idle node.
      res.sendDate = false;
      this.#serve(req, res, options).catch((err: unknown) => {
        this.#logger.error('request handler failed', { err });
        if (!res.headersSent) send(res, { status: 500, body: 'internal error\n' });
        else res.destroy();
      });
    });
    // Answer rather than letting the socket hang. Malformed HTTP: 400; headers over the size limit: 431; a request too slow to arrive whole
    // (header or request timeout): 408.
    server.on('clientError', (err: Error, socket: Socket) => {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ERR_HTTP_REQUEST_TIMEOUT' && socket.bytesRead === 0) {
        // A connection that never sent a byte asked nothing: closed without an answer, as the
        // idle timer below does (Node's header timeout and that timer race for such a socket).
        socket.destroy();
        return;
      }
      const [status, reason]: [string, RefusalReason] =
        code === 'ERR_HTTP_REQUEST_TIMEOUT'
          ? ['408 Request Timeout', 'timeout']
          : code === 'HPE_HEADER_OVERFLOW'
            ? ['431 Request Header Fields Too Large', 'headers_too_large']
            : ['400 Bad Request', 'malformed_http'];
      options.onRefused?.(Number(status.slice(0, 3)), reason);
      if (!socket.writable) {
        socket.destroy();
        return;
      }
      socket.end(`HTTP/1.1 ${status}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
      // Closed for good once the answer is out: a client that never reads must not keep it half-open.
      socket.once('finish', () => socket.destroy());
    });
    await new Promise<void>((resolve, reject) => {
      const onError = (err: NodeJS.ErrnoException): void => {
        server.off('listening', onListening);
        if (err.code === 'EADDRINUSE') {
          reject(
            new AddressInUseError(`port ${options.port} on ${options.host} is already in use`, {
              cause: err,
            }),
          );
        } else {
          reject(
            new P2PError(
              'ERR_INVALID_ADDRESS',
              `cannot listen on ${formatHostPort(options.host, options.port)}: ${err.message}`,
              {
                cause: err,
              },
            ),
          );
        }
      };
      const onListening = (): void => {
        server.off('error', onError);
        resolve();
      };
      server.once('error', onError);
      server.once('listening', onListening);
      server.listen(options.port, options.host);
    });
    server.on('error', (err) => this.#logger.error('server error', { err }));
    this.#server = server;
    const addr = server.address() as AddressInfo;
    return { host: options.host, port: addr.port };
  }

  async #serve(req: IncomingMessage, res: ServerResponse, options: ListenOptions): Promise<void> {
    const wait = this.#limiter?.take(normalizeRemoteAddress(req.socket.remoteAddress)) ?? 0;
    if (wait > 0) {
      // Before a byte of the body is read; the rest is discarded, never buffered.
      options.onRefused?.(429, 'rate_limited');
      const seconds = Math.ceil(wait / 1000);
      refuseEarly(req, res, 429, `too many requests: try again in ${seconds} s\n`, {
        'retry-after': String(seconds),
      });
      return;
    }
    const declared = req.headers['content-length'];
    if (declared !== undefined && Number(declared) > options.maxBodyBytes) {
      // Refuse before reading a byte of it; the rest is discarded, never buffered.
      options.onRefused?.(413, 'too_large');
      refuseTooLarge(req, res, options.maxBodyBytes);
      return;
    }
    const body = await readCapped(req, options.maxBodyBytes);
    if (body === undefined) {
      options.onRefused?.(413, 'too_large');
      refuseTooLarge(req, res, options.maxBodyBytes);
      return;
    }
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const request: InboundRequest = {
      method: req.method ?? 'GET',
      path: q < 0 ? url : url.slice(0, q),
      query: q < 0 ? '' : url.slice(q + 1),
      headers: req.headers as Record<string, string | undefined>,
      body,
      remoteAddress: normalizeRemoteAddress(req.socket.remoteAddress),
    };
    const response = await options.handler(request);
    if (response.stream !== undefined) this.#openStream(res, response, response.stream);
    else send(res, response);
  }

  /** Sends a streamed answer's head, then hands the open stream to its producer. */
  #openStream(res: ServerResponse, response: InboundResponse, produce: (out: ResponseStream) => void): void {
    if (this.#server === undefined || res.destroyed) {
      send(res, { status: 503, body: 'shutting down\n' });
      return;
    }
    // The connection ends with the stream, so that closing it never waits for an idle timeout.
    res.shouldKeepAlive = false;
    res.writeHead(response.status, {
      'content-type': response.contentType ?? 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      'x-accel-buffering': 'no',
      ...response.headers,
    });
    res.flushHeaders();
    res.socket?.setNoDelay(true);
    const ac = new AbortController();
    const close = (): void => {
      if (ac.signal.aborted) return;
      this.#streams.delete(close);
      ac.abort();
      if (!res.writableEnded) res.end();
    };
    this.#streams.add(close);
    res.once('close', close);
    const out: ResponseStream = {
      write: (chunk) => {
        if (ac.signal.aborted) return false;
        if (res.writableLength > MAX_STREAM_BACKLOG) {
          this.#logger.warn('cutting a streamed answer: its client does not read');
          close();
          return false;
        }
        res.write(chunk);
        return true;
      },
      end: close,
      signal: ac.signal,
    };
    try {
      produce(out);
    } catch (err) {
      this.#logger.error('stream producer failed', { err });
      close();
    }
  }

  /**
   * Stops listening: ends the streamed answers, waits for `before` (the client's connections), then
   * closes the server, cutting what is still open after `graceMs`.
   */
  async close(graceMs: number, before: Promise<void> = Promise.resolve()): Promise<void> {
    const server = this.#server;
    this.#server = undefined;
    // Streams never end on their own: end them, or the server would wait for the grace timer.
    for (const close of [...this.#streams]) close();
    await before;
    if (server === undefined) return;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    server.closeIdleConnections();
    const timer = setTimeout(() => {
      for (const s of this.#sockets) s.destroy();
    }, graceMs);
    timer.unref();
    await closed;
    clearTimeout(timer);
  }
}

function send(res: ServerResponse, response: InboundResponse): void {
  const body = response.body ?? '';
  res.statusCode = response.status;
  res.setHeader('content-type', response.contentType ?? TEXT);
  res.setHeader('content-length', typeof body === 'string' ? Buffer.byteLength(body) : body.byteLength);
  if (response.headers) for (const [k, v] of Object.entries(response.headers)) res.setHeader(k, v);
  // A string goes out in one write with the head; a Buffer would cost a second chunk (writev).
  res.end(body);
}

/** How long a refused upload may go on being discarded before its connection is closed. */
const LINGER_MS = 1_000;
/** How much of a refused upload is discarded at most before its connection is closed. */
const LINGER_BYTES = 4 * 1024 * 1024;

/**
 * Answers 413 at once, then closes the connection once the client stops sending, or after
 * {@link LINGER_MS}. Closing a socket while the client still sends makes the kernel answer with
 * a reset, and the client then loses the 413 before it reads it (HTTP servers' "lingering close").
 */
function refuseTooLarge(req: IncomingMessage, res: ServerResponse, max: number): void {
  refuseEarly(req, res, 413, `body too large: limit is ${max} bytes\n`);
}

/** Answers `status` before the body is read (see {@link refuseTooLarge}): the body is discarded. */
function refuseEarly(
  req: IncomingMessage,
  res: ServerResponse,
  status: number,
  text: string,
  headers: Record<string, string> = {},
): void {
  const buf = Buffer.from(text);
  res.shouldKeepAlive = false;
  res.writeHead(status, { ...headers, 'content-type': TEXT, 'content-length': buf.byteLength });
  res.write(buf); // the whole answer is on its way; end() below only closes the connection
  let discarded = 0;
  const onData = (chunk: Buffer): void => {
    discarded += chunk.length;
    if (discarded > LINGER_BYTES) close();
  };
  req.on('data', onData); // discard the rest of the body (no more than LINGER_BYTES of it)
  req.resume();
  const close = (): void => {
    clearTimeout(timer);
    req.off('data', onData);
    if (!res.writableEnded) res.end();
  };
  const timer = setTimeout(close, LINGER_MS);
  timer.unref();
  req.once('end', close);
  req.once('close', close);
}

/** Reads the whole body, or resolves `undefined` as soon as it passes `max` bytes. */
function readCapped(req: IncomingMessage, max: number): Promise<Uint8Array | undefined> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size > max) {
        cleanup();
        req.resume(); // discard the rest; the connection is closed after the answer
        resolve(undefined);
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = (): void => {
      cleanup();
      resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks));
    };
    const onError = (err: Error): void => {
      cleanup();
      reject(err);
    };
    const cleanup = (): void => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
    };
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
  });
}
