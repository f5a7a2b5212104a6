/**
 * A test double of gop2p's own chat example (`example/cli-chat`), written from the recorded
 * facts in `/work/shared/gop2p-wire/real-chat.md` and `exchanges.json`. Two flavours:
 *
 * - `'chat'` (the default), as the real chat: it names itself `0.0.0.0:PORT`; `connect PORT`
 *   dials and records the entry point as `0.0.0.0:PORT`; `dm PORT` targets `0.0.0.0:PORT`.
 * - `'library'`, as a program using the gop2p library might: it names itself `127.0.0.1:PORT`,
 *   and its `connect` and `dm` take the `'host:port'` they are given.
 *
 * Server side (node:http on 127.0.0.1), as gop2p answers, in gop2p's order:
 * - a request whose `Host` header equals this node's own name gets 400
 *   'You can not connect with yourself.' (whatever its method and body);
 * - OPTIONS gets 204; a body that is not a gop2p message gets 400 'No valid Message provided';
 * - connect (0) is answered 200 `text/plain` with the member list as it stood BEFORE the
 *   newcomer was added, never this node itself; `from` is then appended exactly as it is;
 * - disconnect (1), broadcast (2) and direct (3) from a `from` that is not exactly a member's
 *   (address, port) get 403 'Peer not registered'; an unknown type gets 405 'Method not allowed';
 * - every answer after the Host check carries gop2p's CORS headers.
 *
 * Client side, as gop2p sends: `Host` = this node's OWN name. connect goes to the entry point,
 * then to every listed member (answers ignored; a member it cannot reach aborts the join, and
 * the entry point is then not added); the entry point is added last. A broadcast, a leave and a
 * direct message go to one member after another, ignore every answer's status, and stop at the
 * first member that cannot be reached. Members named `0.0.0.0` are dialed on 127.0.0.1, where
 * Linux sends a connection to 0.0.0.0 anyway.
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

/** The flavour of a double: gop2p's chat example, or a program using the gop2p library. */
export type GoFlavour = 'chat' | 'library';

/** Options of {@link GoPeer.start}. */
export interface GoPeerOptions {
  /** @default 'chat' */
  readonly flavour?: GoFlavour;
  /** Port to listen on (on 127.0.0.1); 0 picks a free one. @default 0 */
  readonly port?: number;
  /** Per-request time limit of the client side, in ms. @default 5000 */
  readonly timeoutMs?: number;
  /** Called with each line the real chat would print (`[MSG] ...`, `[ERROR]: ...`). */
  readonly print?: (line: string) => void;
}

/** What a gop2p operation ended with: gop2p reports errors on its Error channel. */
export interface GoResult {
  /** The members a broadcast, leave or direct message reached (whatever they answered). */
  readonly sent: GoMember[];
  /** The member it stopped at (connection error), if any. */
  readonly failedAt?: GoMember;
  /** The line gop2p's chat prints for the error, if any (without `[ERROR]: `). */
  readonly error?: string;
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

/** Whether two members are the same exact (address, port) pair, as gop2p compares them. */
export function sameMember(a: GoMember, b: GoMember): boolean {
  return a.address === b.address && a.port === b.port;
}

/** `'address:port'`, as gop2p prints a peer. */
export function goName(m: GoMember): string {
  return `${m.address}:${m.port}`;
}

function parseHostPort(text: string): GoMember {
  const colon = text.lastIndexOf(':');
  return { address: text.slice(0, colon), port: Number(text.slice(colon + 1)) };
}

/** Where a member is dialed: gop2p dials `0.0.0.0`, which Linux sends to the loopback. */
function dialHost(address: string): string {
  return address === '0.0.0.0' ? '127.0.0.1' : address;
}

/** A gop2p-behaving node. */
export class GoPeer {
  readonly flavour: GoFlavour;
  /** This node as it names itself (in `from` and in its Host header). */
  readonly self: GoMember;
  /** The members, in the order they were added. */
  readonly members: GoMember[] = [];
  /** Broadcast and direct messages received, in order. */
  readonly received: GoMessage[] = [];
  /** Every request received, with its answer status. */
  readonly requests: GoRequestLog[] = [];
  /** The errors gop2p's chat would have printed, in order (without `[ERROR]: `). */
  readonly errors: string[] = [];
  /** Whether the node is in a network (gop2p's `Connected`). */
  connected = false;
  readonly #server: Server;
  readonly #sockets = new Set<Socket>();
  readonly #timeoutMs: number;
  readonly #print: (line: string) => void;

  private constructor(server: Server, flavour: GoFlavour, port: number, options: GoPeerOptions) {
    this.#server = server;
    this.flavour = flavour;
    this.self = { address: flavour === 'chat' ? '0.0.0.0' : '127.0.0.1', port };
    this.#timeoutMs = options.timeoutMs ?? 5_000;
    this.#print = options.print ?? (() => {});
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
    return new GoPeer(server, options.flavour ?? 'chat', port, options);
  }

  /** `'127.0.0.1:port'`: where to reach this peer. */
  get address(): string {
    return `127.0.0.1:${this.self.port}`;
  }

  /** This node's own name, `'address:port'`. */
  get name(): string {
    return goName(this.self);
  }

  /** The messages received with this text. */
  messages(text?: string): GoMessage[] {
    return text === undefined ? this.received : this.received.filter((m) => m.text === text);
  }

  isMember(member: GoMember): boolean {
    return this.members.some((m) => sameMember(m, member));
  }

  /** The member a `connect`/`dm` argument names: a port (the chat's `0.0.0.0:PORT`) or `'host:port'`. */
  target(arg: string | number): GoMember {
    if (typeof arg === 'number' || /^\d+$/.test(arg)) {
      const port = Number(arg);
      return this.flavour === 'chat' ? { address: '0.0.0.0', port } : { address: '127.0.0.1', port };
    }
    return parseHostPort(arg);
  }

  // ---- server ---------------------------------------------------------------------------------

  #serve(req: IncomingMessage, res: ServerResponse): void {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      const answer = this.#answer(req.method ?? '', req.headers.host, body);
      const reply = (): void => {
        this.requests.push({ method: req.method ?? '', host: req.headers.host, body, status: answer.status });
        res.statusCode = answer.status;
        if (!answer.bare) for (const [k, v] of Object.entries(CORS)) res.setHeader(k, v);
        if (answer.contentType) res.setHeader('Content-Type', answer.contentType);
        if (answer.status !== 200) res.setHeader('X-Content-Type-Options', 'nosniff');
        res.end(answer.body);
      };
      reply();
    });
  }

  #answer(
    method: string,
    host: string | undefined,
    body: string,
  ): { status: number; body: string; contentType?: string; bare?: boolean } {
    const error = (status: number, message: string) => ({
      status,
      body: `${message}\n`,
      contentType: 'text/plain; charset=utf-8',
    });
    // gop2p checks the Host header before anything else, even before its CORS headers.
    if (host === this.name) return { ...error(400, 'You can not connect with yourself.'), bare: true };
    if (method === 'OPTIONS') return error(204, 'No Content');
    const msg = decodeEnvelope(body);
    if (msg === undefined) return error(400, 'No valid Message provided');
    switch (msg.type) {
      case TYPE_CONNECT: {
        // The list as it stood before the newcomer: never this node; `from` as it is.
        const list = this.members.map((m) => ({ port: m.port, address: m.address }));
        if (!this.isMember(msg.from)) this.members.push(msg.from);
        this.connected = true;
        return { status: 200, body: JSON.stringify(list), contentType: 'text/plain' };
      }
      case TYPE_DISCONNECT: {
        if (!this.isMember(msg.from)) return error(403, 'Peer not registered');
        const i = this.members.findIndex((m) => sameMember(m, msg.from));
        this.members.splice(i, 1);
        if (this.members.length === 0) this.connected = false;
        return { status: 200, body: '' };
      }
      case TYPE_BROADCAST:
      case TYPE_DIRECT: {
        if (!this.isMember(msg.from)) return error(403, 'Peer not registered');
        const text = msg.data.toString('utf8');
        this.received.push({ type: msg.type, text, from: msg.from, to: msg.to });
        this.#print(`[MSG] (${goName(msg.from)}) -> ${text}`);
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
          host: dialHost(member.address),
          port: member.port,
          method: 'POST',
          path: '/',
          agent: false,
          headers: {
            Host: this.name,
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
      req.on('timeout', () => req.destroy(new Error(`no answer from ${goName(member)}`)));
      req.on('error', reject);
      req.end(body);
    });
  }

  #error(line: string): string {
    this.errors.push(line);
    this.#print(`[ERROR]: ${line}`);
    return line;
  }

  /**
   * Joins through `entry` as gop2p does: a port (the chat's `connect PORT`: `0.0.0.0:PORT`) or
   * `'host:port'`. Resolves with the entry point's answer, or with the error gop2p's chat prints
   * (it then stays as it was, with the members added before the failure).
   */
  async connect(entry: string | number): Promise<{ answer?: GoAnswer; error?: string }> {
    const entryMember = this.target(entry);
    const body = this.#envelope(TYPE_CONNECT, null);
    let answer: GoAnswer;
    try {
      answer = await this.post(entryMember, body);
    } catch (err) {
      return { error: this.#error(`connection error: error trying to connect to a peer: ${String(err)}`) };
    }
    if (answer.status !== 200) {
      return {
        answer,
        error: this.#error(
          `connection error: error making the request to a peer: ${answer.status} http status received from ${goName(entryMember)}`,
        ),
      };
    }
    let list: GoMember[];
    try {
      list = ((JSON.parse(answer.body) as GoMember[] | null) ?? []).map((m) => ({
        address: m.address,
        port: m.port,
      }));
    } catch (err) {
      return {
        answer,
        error: this.#error(`parse error: error parsing incoming member list: ${String(err)}`),
      };
    }
    for (const member of list) {
      if (sameMember(member, this.self)) continue;
      try {
        await this.post(member, body); // the answer is ignored, whatever its status
      } catch (err) {
        return {
          answer,
          error: this.#error(`connection error: error trying to perform the request: ${String(err)}`),
        };
      }
      if (!this.isMember(member)) this.members.push(member);
    }
    this.connected = true;
    if (!this.isMember(entryMember)) this.members.push(entryMember); // the entry point last
    return { answer };
  }

  /** Broadcasts as gop2p does: to one member after another, stopping at the first unreachable. */
  broadcast(text: string): Promise<GoResult> {
    if (!this.connected)
      return Promise.resolve({ sent: [], error: this.#error('connection error: node not connected') });
    return this.#sendInTurn([...this.members], this.#envelope(TYPE_BROADCAST, text));
  }

  /**
   * The chat's `dm PORT WORD` (the library flavour takes `'host:port'`): refused locally unless
   * the target is exactly a member.
   */
  dm(target: string | number, text: string): Promise<GoResult> {
    if (!this.connected)
      return Promise.resolve({ sent: [], error: this.#error('connection error: node not connected') });
    const to = this.target(target);
    if (!this.isMember(to)) {
      return Promise.resolve({
        sent: [],
        error: this.#error('connection error: target peer is not into the network'),
      });
    }
    return this.#sendInTurn([to], this.#envelope(TYPE_DIRECT, text, [to]));
  }

  /** Tells every member it leaves (stopping at the first unreachable one, as gop2p does). */
  async disconnect(): Promise<GoResult> {
    if (!this.connected) return { sent: [], error: this.#error('connection error: node not connected') };
    const result = await this.#sendInTurn([...this.members], this.#envelope(TYPE_DISCONNECT, null));
    if (result.failedAt !== undefined) return result; // gop2p keeps its members then
    this.members.length = 0;
    this.connected = false;
    return result;
  }

  async #sendInTurn(targets: GoMember[], body: string): Promise<GoResult> {
    const sent: GoMember[] = [];
    for (const m of targets) {
      try {
        await this.post(m, body); // an HTTP error status is ignored, as gop2p does
      } catch (err) {
        return {
          sent,
          failedAt: m,
          error: this.#error(`connection error: error trying to perform the request: ${String(err)}`),
        };
      }
      sent.push(m);
    }
    return { sent };
  }

  /** Closes the server and every connection at once (a `kill -9`). Idempotent. */
  async stop(): Promise<void> {
    if (!this.#server.listening) return;
    const closed = new Promise<void>((resolve) => this.#server.close(() => resolve()));
    for (const s of this.#sockets) s.destroy();
    await closed;
  }

  /** The chat's `exit`: leaves if connected, then stops. */
  async exit(): Promise<void> {
    if (this.connected) await this.disconnect();
    await this.stop();
  }
}
