/**
 * Raw HTTP for integration tests: one request on a fresh connection, with full control of
 * method, path, headers and body, and a time limit so that a hang fails the test.
 *
 * @module
 */

import { createServer, request, type Server } from 'node:http';
import { type AddressInfo, connect, type Socket } from 'node:net';

/** An answer to {@link rawRequest}. */
export interface RawAnswer {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly body: string;
}

/** Options of {@link rawRequest}. */
export interface RawRequestOptions {
  /** @default 'POST' */
  readonly method?: string;
  /** @default '/' */
  readonly path?: string;
  /** The request headers (Host and Content-Length are added when absent). */
  readonly headers?: Record<string, string | number>;
  /** Reject when no full answer arrived within this many ms. @default 5000 */
  readonly timeoutMs?: number;
}

/**
 * Given headers replace the default Content-Type entirely (a gop2p client sends none). A body
 * always gets an explicit Content-Length: Node's client sends none for GET or DELETE otherwise.
 */
function requestHeaders(
  body: string | Uint8Array | undefined,
  given: Record<string, string | number> | undefined,
): Record<string, string | number> {
  const headers = given ?? (body !== undefined ? { 'content-type': 'application/json' } : {});
  if (body === undefined || Object.keys(headers).some((k) => k.toLowerCase() === 'content-length')) {
    return headers;
  }
  return {
    ...headers,
    'content-length': typeof body === 'string' ? Buffer.byteLength(body) : body.byteLength,
  };
}

/** Sends one request to 127.0.0.1:`port` and resolves with the whole answer. */
export function rawRequest(
  port: number,
  body: string | Uint8Array | undefined,
  options: RawRequestOptions = {},
): Promise<RawAnswer> {
  const timeoutMs = options.timeoutMs ?? 5_000;
  return new Promise<RawAnswer>((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        method: options.method ?? 'POST',
        path: options.path ?? '/',
        agent: false,
        headers: requestHeaders(body, options.headers),
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          clearTimeout(timer);
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: Buffer.concat(chunks).toString('utf8'),
          });
        });
        res.on('error', (err) => {
          clearTimeout(timer);
          reject(err);
        });
      },
    );
    const timer = setTimeout(() => {
      req.destroy(new Error(`no answer within ${timeoutMs} ms`));
    }, timeoutMs);
    req.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    req.end(body);
  });
}

/** POSTs `value` as JSON to `/`. */
export function postJson(port: number, value: unknown, options: RawRequestOptions = {}): Promise<RawAnswer> {
  return rawRequest(port, JSON.stringify(value), options);
}

/** What arrived on a raw socket until it closed (or the deadline passed). */
export interface SocketTranscript {
  /** Everything the server wrote. */
  readonly data: string;
  /** Whether the server closed the connection before the deadline. */
  readonly closed: boolean;
}

/**
 * Opens a TCP connection to 127.0.0.1:`port`, lets `drive` write to it, and collects what the
 * server answers until it closes the connection or `timeoutMs` passes.
 */
export function rawSocket(
  port: number,
  drive: (socket: Socket, answered: () => boolean) => void | Promise<void>,
  timeoutMs = 5_000,
): Promise<SocketTranscript> {
  return new Promise<SocketTranscript>((resolve, reject) => {
    let data = '';
    let done = false;
    const socket = connect(port, '127.0.0.1');
    const finish = (closed: boolean): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      resolve({ data, closed });
    };
    const timer = setTimeout(() => finish(false), timeoutMs);
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      data += chunk;
    });
    // The server may reset the connection while we are still writing: that is a close too.
    socket.on('error', () => finish(true));
    socket.on('end', () => finish(true));
    socket.on('close', () => finish(true));
    socket.on('connect', () => {
      Promise.resolve(drive(socket, () => data.length > 0)).catch((err: unknown) => {
        if (!done) {
          done = true;
          clearTimeout(timer);
          socket.destroy();
          reject(err);
        }
      });
    });
  });
}

/** Parses the status code and body of the first HTTP/1.1 answer in a socket transcript. */
export function parseRawAnswer(data: string): { status: number; body: string } {
  const m = /^HTTP\/1\.[01] (\d{3})/.exec(data);
  const split = data.indexOf('\r\n\r\n');
  return { status: m ? Number(m[1]) : 0, body: split < 0 ? '' : data.slice(split + 4) };
}

/** A port on 127.0.0.1 that nothing listens on (bound, then released). */
export async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/**
 * An HTTP server on 127.0.0.1 that accepts requests and never answers them: a member that hangs.
 */
export class SilentServer {
  readonly #server: Server;
  readonly #sockets = new Set<Socket>();
  /** How many requests it holds. */
  pending = 0;
  /** The bodies of the requests it holds, once each has arrived whole. */
  readonly bodies: string[] = [];

  private constructor(server: Server) {
    this.#server = server;
    server.on('connection', (s: Socket) => {
      this.#sockets.add(s);
      s.once('close', () => this.#sockets.delete(s));
    });
    server.on('request', (req) => {
      this.pending++;
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => this.bodies.push(Buffer.concat(chunks).toString('utf8')));
    });
  }

  /** How many of the held requests carry a message of this type (0 connect … 3 direct). */
  /**
   * How many messages of `type` it holds: envelopes of that type, and for broadcasts and direct
   * messages (2, 3) also the messages of that type inside batches (type 8).
   */
  held(type: number): number {
    let n = 0;
    for (const b of this.bodies) {
      try {
        const env = JSON.parse(b) as { type?: unknown; msgs?: { type?: unknown }[] };
        if (env.type === type) n++;
        else if (env.type === 8 && (type === 2 || type === 3))
          n += (env.msgs ?? []).filter((m) => m.type === type).length;
      } catch {
        // not JSON: not a message
      }
    }
    return n;
  }

  static async start(): Promise<SilentServer> {
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return new SilentServer(server);
  }

  get port(): number {
    return (this.#server.address() as AddressInfo).port;
  }

  /** Closes the server and cuts every held connection. */
  async stop(): Promise<void> {
    if (!this.#server.listening) return;
    const closed = new Promise<void>((resolve) => this.#server.close(() => resolve()));
    for (const s of this.#sockets) s.destroy();
    await closed;
  }
}
