/**
 * A peer that behaves like a gop2p (Go) node on the wire, written from the recorded facts in
 * `/work/shared/gop2p-wire/exchanges.json`. Used to test tsp2p's compat mode without Go.
 *
 * Server side (node:http), as gop2p answers:
 * - a request whose `Host` header equals this node's own `address:port` gets
 *   400 'You can not connect with yourself.';
 * - a body that is not a gop2p message gets 400 'No valid Message provided\n' (GET included);
 * - an unknown type gets 405 'Method not allowed\n';
 * - connect (0) is answered 200 `text/plain` with the member list as it stood BEFORE the
 *   newcomer was added, never this node itself; the newcomer is then added;
 * - disconnect (1), broadcast (2) and direct (3) from a non-member get 403 'Peer not registered\n';
 * - every answer carries gop2p's CORS headers.
 * Members are identified by the exact pair (address, port).
 *
 * Client side, as gop2p sends: `Host` = this node's OWN `address:port`; connect goes to the entry
 * point, then to every listed member (answers ignored), and the entry point is added last;
 * broadcast goes to one member after another and stops at the first failure.
 *
 * @module
 */

import { createServer, type IncomingMessage, request, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

/** A gop2p member: an exact (address, port) pair. */
export interface GoMember {
  readonly address: string;
  readonly port: number;
}

/** A message the peer received (broadcast or direct). */
export interface GoMessage {
  readonly type: number;
  readonly text: string;
  readonly from: GoMember;
  readonly to: GoMember[] | null;
}

/** One request the peer received, with its answer. */
export interface GoRequestLog {
  readonly method: string;
  readonly host: string | undefined;
  readonly body: string;
  readonly status: number;
}

/** An answer the peer got to one of its own requests. */
export interface GoAnswer {
  readonly status: number;
  readonly body: string;
  readonly headers: Record<string, string | string[] | undefined>;
}

/** Options of {@link GoPeer.start}. */
export interface GoPeerOptions {
  /** Port to listen on (on 127.0.0.1); 0 picks one. @default 0 */
  readonly port?: number;
  /**
   * The address this peer puts in `from` and in its Host header. gop2p's chat example uses
   * '0.0.0.0'. @default '127.0.0.1'
   */
  readonly advertise?: string;
  /** Per-request time limit of the client side, in ms. @default 5000 */
  readonly timeoutMs?: number;
}

const CORS: Readonly<Record<string, string>> = Object.freeze({
  'Access-Control-Allow-Credentials': 'true',
  'Access-Control-Allow-Headers': '*',
  'Access-Control-Allow-Methods': '*',
  'Access-Control-Allow-Origin': '*',
});

const TYPE_CONNECT = 0;
const TYPE_DISCONNECT = 1;
const TYPE_BROADCAST = 2;
const TYPE_DIRECT = 3;

/** Go decodes JSON field names case-insensitively (exact match first). */
function field(obj: Record<string, unknown>, name: string): unknown {
  if (name in obj) return obj[name];
  const lower = name.toLowerCase();
  for (const key of Object.keys(obj)) if (key.toLowerCase() === lower) return obj[key];
  return undefined;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Decodes a gop2p member as Go's decoder would: missing fields are zero values. */
function decodeMember(v: unknown): GoMember | undefined {
  if (v === undefined || v === null) return { address: '', port: 0 };
  if (!isObject(v)) return undefined;
  const address = field(v, 'address') ?? '';
  const port = field(v, 'port') ?? 0;
  if (typeof address !== 'string' || typeof port !== 'number' || !Number.isInteger(port)) return undefined;
  return { address, port };
}

interface GoEnvelope {
  readonly type: number;
  readonly data: Buffer;
  readonly from: GoMember;
  readonly to: GoMember[] | null;
}

function decodeEnvelope(body: string): GoEnvelope | undefined {
  let raw: unknown;
  try {
    raw = JSON.parse(body);
  } catch {
    return undefined;
  }
  if (!isObject(raw)) return undefined;
  const type = field(raw, 'type') ?? 0;
  if (typeof type !== 'number' || !Number.isInteger(type)) return undefined;
  const data = field(raw, 'data');
  if (data !== undefined && data !== null && typeof data !== 'string') return undefined;
  if (typeof data === 'string' && !/^[A-Za-z0-9+/]*={0,2}$/.test(data)) return undefined;
  const from = decodeMember(field(raw, 'from'));
  if (from === undefined) return undefined;
  const rawTo = field(raw, 'to');
  let to: GoMember[] | null = null;
  if (rawTo !== undefined && rawTo !== null) {
    if (!Array.isArray(rawTo)) return undefined;
    to = [];
    for (const item of rawTo) {
      const m = decodeMember(item);
      if (m === undefined) return undefined;
      to.push(m);
    }
  }
  return { type, data: Buffer.from(typeof data === 'string' ? data : '', 'base64'), from, to };
}

function sameMember(a: GoMember, b: GoMember): boolean {
  return a.address === b.address && a.port === b.port;
}

function parseHostPort(text: string): GoMember {
  const colon = text.lastIndexOf(':');
  return { address: text.slice(0, colon), port: Number(text.slice(colon + 1)) };
}

/** A gop2p-behaving node. */
export class GoPeer {
  /** This node as it names itself (in `from` and in its Host header). */
  readonly self: GoMember;
  /** The members, in the order they were added. */
  readonly members: GoMember[] = [];
  /** Broadcast and direct messages received, in order. */
  readonly received: GoMessage[] = [];
  /** Every request received, with its answer status. */
  readonly requests: GoRequestLog[] = [];
  /** Whether the node is in a network (gop2p's `Connected`). */
  connected = false;
  readonly #server: Server;
  readonly #sockets = new Set<Socket>();
  readonly #timeoutMs: number;

  private constructor(server: Server, self: GoMember, timeoutMs: number) {
    this.#server = server;
    this.self = self;
    this.#timeoutMs = timeoutMs;
    server.on('connection', (socket: Socket) => {
      this.#sockets.add(socket);
      socket.once('close', () => this.#sockets.delete(socket));
    });
    server.on('request', (req: IncomingMessage, res: ServerResponse) => this.#serve(req, res));
  }

  /** Starts listening on 127.0.0.1. */
  static async start(options: GoPeerOptions = {}): Promise<GoPeer> {
    const server = createServer();
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(options.port ?? 0, '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
    const port = (server.address() as AddressInfo).port;
    return new GoPeer(
      server,
      { address: options.advertise ?? '127.0.0.1', port },
      options.timeoutMs ?? 5_000,
    );
  }

  /** `'address:port'` to reach this peer at (always on 127.0.0.1). */
  get address(): string {
    return `127.0.0.1:${this.self.port}`;
  }

  /** The messages received with this text. */
  messages(text?: string): GoMessage[] {
    return text === undefined ? this.received : this.received.filter((m) => m.text === text);
  }

  isMember(member: GoMember): boolean {
    return this.members.some((m) => sameMember(m, member));
  }

  // ---- server ---------------------------------------------------------------------------------

  #serve(req: IncomingMessage, res: ServerResponse): void {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      const answer = this.#answer(req.headers.host, body);
      this.requests.push({ method: req.method ?? '', host: req.headers.host, body, status: answer.status });
      res.statusCode = answer.status;
      for (const [k, v] of Object.entries(CORS)) res.setHeader(k, v);
      if (answer.contentType) res.setHeader('Content-Type', answer.contentType);
      if (answer.status !== 200) res.setHeader('X-Content-Type-Options', 'nosniff');
      res.end(answer.body);
    });
  }

  #answer(host: string | undefined, body: string): { status: number; body: string; contentType?: string } {
    const error = (status: number, message: string) => ({
      status,
      body: `${message}\n`,
      contentType: 'text/plain; charset=utf-8',
    });
    if (host === `${this.self.address}:${this.self.port}`) {
      return error(400, 'You can not connect with yourself.');
    }
    const msg = decodeEnvelope(body);
    if (msg === undefined) return error(400, 'No valid Message provided');
    switch (msg.type) {
      case TYPE_CONNECT: {
        // The list as it stood before the newcomer: never this node, the newcomer only if known.
        const list = this.members.map((m) => ({ port: m.port, address: m.address }));
        if (!this.isMember(msg.from)) this.members.push(msg.from);
        this.connected = true;
        return { status: 200, body: JSON.stringify(list), contentType: 'text/plain' };
      }
      case TYPE_DISCONNECT: {
        const i = this.members.findIndex((m) => sameMember(m, msg.from));
        if (i < 0) return error(403, 'Peer not registered');
        this.members.splice(i, 1);
        if (this.members.length === 0) this.connected = false;
        return { status: 200, body: '' };
      }
      case TYPE_BROADCAST:
      case TYPE_DIRECT: {
        if (!this.isMember(msg.from)) return error(403, 'Peer not registered');
        this.received.push({ type: msg.type, text: msg.data.toString('utf8'), from: msg.from, to: msg.to });
        return { status: 200, body: '' };
      }
      default:
        return error(405, 'Method not allowed');
    }
  }

  // ---- client ---------------------------------------------------------------------------------

  #envelope(type: number, data: string | null, to?: GoMember[]): string {
    const from = { port: this.self.port, address: this.self.address };
    const dataField = data === null ? null : Buffer.from(data).toString('base64');
    const env: Record<string, unknown> = { type, data: dataField, from };
    if (to !== undefined) env.to = to.map((m) => ({ port: m.port, address: m.address }));
    return JSON.stringify(env);
  }

  /** POSTs a body to `member` exactly as a Go client does. Rejects on a network error. */
  post(member: GoMember, body: string): Promise<GoAnswer> {
    return new Promise<GoAnswer>((resolve, reject) => {
      const req = request(
        {
          host: member.address,
          port: member.port,
          method: 'POST',
          path: '/',
          agent: false,
          headers: {
            Host: `${this.self.address}:${this.self.port}`,
            'User-Agent': 'Go-http-client/1.1',
            'Content-Length': Buffer.byteLength(body),
            'Accept-Encoding': 'gzip',
          },
          timeout: this.#timeoutMs,
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () =>
            resolve({
              status: res.statusCode ?? 0,
              body: Buffer.concat(chunks).toString('utf8'),
              headers: res.headers,
            }),
          );
          res.on('error', reject);
        },
      );
      req.on('timeout', () => req.destroy(new Error(`no answer from ${member.address}:${member.port}`)));
      req.on('error', reject);
      req.end(body);
    });
  }

  /**
   * Joins through `entry` ('host:port') as gop2p does. Resolves with the entry point's answer.
   * Throws when the entry point cannot be reached or does not answer 200.
   */
  async connect(entry: string): Promise<GoAnswer> {
    const entryMember = parseHostPort(entry);
    const body = this.#envelope(TYPE_CONNECT, null);
    const answer = await this.post(entryMember, body);
    if (answer.status !== 200) throw new Error(`connect refused: ${answer.status} ${answer.body.trim()}`);
    const list = JSON.parse(answer.body) as GoMember[] | null;
    for (const listed of list ?? []) {
      const member = { address: listed.address, port: listed.port };
      await this.post(member, body).catch(() => undefined); // answers ignored, as gop2p does
      if (!this.isMember(member)) this.members.push(member);
    }
    if (!this.isMember(entryMember)) this.members.push(entryMember); // the entry point last
    this.connected = true;
    return answer;
  }

  /**
   * Broadcasts as gop2p does: to one member after another, stopping at the first failure.
   * Resolves with the members reached and the one that failed, if any.
   */
  async broadcast(text: string): Promise<{ sent: GoMember[]; failedAt?: GoMember }> {
    return this.#sendInTurn([...this.members], this.#envelope(TYPE_BROADCAST, text));
  }

  /** Sends a direct message to `targets` ('host:port' or members), in turn. */
  async send(
    targets: (string | GoMember)[],
    text: string,
  ): Promise<{ sent: GoMember[]; failedAt?: GoMember }> {
    const to = targets.map((t) => (typeof t === 'string' ? parseHostPort(t) : t));
    return this.#sendInTurn(to, this.#envelope(TYPE_DIRECT, text, to));
  }

  /** Tells every member it leaves, then forgets them. */
  async disconnect(): Promise<void> {
    const body = this.#envelope(TYPE_DISCONNECT, null);
    for (const m of [...this.members]) await this.post(m, body).catch(() => undefined);
    this.members.length = 0;
    this.connected = false;
  }

  async #sendInTurn(targets: GoMember[], body: string): Promise<{ sent: GoMember[]; failedAt?: GoMember }> {
    const sent: GoMember[] = [];
    for (const m of targets) {
      try {
        const answer = await this.post(m, body);
        if (answer.status !== 200) return { sent, failedAt: m };
      } catch {
        return { sent, failedAt: m };
      }
      sent.push(m);
    }
    return { sent };
  }

  /** Closes the server and every connection at once. Idempotent. */
  async stop(): Promise<void> {
    if (!this.#server.listening) return;
    const closed = new Promise<void>((resolve) => this.#server.close(() => resolve()));
    for (const s of this.#sockets) s.destroy();
    await closed;
  }
}
