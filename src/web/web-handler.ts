/**
 * The node's web and operations endpoints, next to the protocol's `POST /`:
 *
 * | route | what |
 * | --- | --- |
 * | `GET /` (Accept: text/html) | the chat page (`/app.js`, `/app.css`) |
 * | `GET /events` | Server-Sent Events: messages, member events, self (local or token) |
 * | `GET /members` | JSON: self and each member's id, address, port, name, state, incarnation, last seen |
 * | `GET /metrics` | Prometheus text format |
 * | `GET /health` | 200 `{"status":"ok"}` when started, 503 otherwise (always open: liveness probes) |
 * | `POST /api/broadcast` | `{"text": "..."}`: broadcast (local or token, same origin, JSON) |
 * | `POST /api/send` | `{"to": id or "host:port" or a list, "text": "..."}`: direct message (same rules) |
 * | `POST /api/publish` | `{"topic": "...", "text": "..."}`: publish to a room's subscribers (same rules) |
 * | `POST /api/subscribe` | `{"topic": "..."}`: join a room; answers `{"topics": [...]}` (same rules) |
 * | `POST /api/unsubscribe` | `{"topic": "..."}`: leave a room; answers `{"topics": [...]}` (same rules) |
 *
 * An empty `text` (or only spaces) is refused with 400: nothing is sent. A topic that is not a
 * topic name is refused with 400 (`ERR_INVALID_TOPIC`).
 *
 * Reads are open, except the event feed; when the node has a network secret, the page (`GET /`),
 * `/members` and `/metrics` need the same caller as the writes (this machine, or the token, which
 * may come as `?token=`). `/app.js` and `/app.css` stay open: they are the same bytes in every copy
 * of tsp2p and say nothing about the node. Errors are one line of text, like the protocol's.
 *
 * @module
 */

import { systemClock, wallTime } from '../clock.js';
import { httpStatusOf, P2PError } from '../errors.js';
import type { Logger } from '../logger.js';
import { PROMETHEUS_CONTENT_TYPE } from '../metrics/prometheus.js';
import { peerJson } from '../peer.js';
import type { InboundRequest, InboundResponse } from '../transport/transport.js';
import type { CallOptions, DeliveryReport, MemberInfo, NodeStatus, Payload, Target } from '../types.js';
import { type AccessContext, checkFeed, checkRead, checkWrite } from './access.js';
import { EventFeed, type FeedSource } from './event-feed.js';
import { PAGE_CSP, PAGE_CSS, PAGE_HTML, PAGE_JS } from './page.js';
import { NO_HISTORY, type RecentMessages } from './recent-messages.js';

/** How the web endpoints send: as the node's `broadcast()`, `send()` and `publish()`. */
export interface WebWriter {
  broadcast(data: Payload, options?: CallOptions): Promise<DeliveryReport>;
  send(to: Target | readonly Target[], data: Payload, options?: CallOptions): Promise<DeliveryReport>;
  publish(topic: string, data: Payload, options?: CallOptions): Promise<DeliveryReport>;
}

/** The node as the web endpoints need it. */
export interface WebNode extends FeedSource, WebWriter {
  readonly status: NodeStatus;
  memberStates(): MemberInfo[];
  /** This node's own topics (rooms). */
  topics(): string[];
  subscribe(topic: string, options?: CallOptions): Promise<void>;
  unsubscribe(topic: string, options?: CallOptions): Promise<void>;
}

/** What a {@link WebHandler} needs. */
export interface WebHandlerOptions {
  readonly node: WebNode;
  /**
   * How to send what the page and the API send, marked as theirs (the `message:sent` event's
   * `origin` is `'web'`). Default: the node's own `broadcast()` and `send()`.
   */
  readonly write?: WebWriter;
  /** Where a page that opens reads the conversation so far (the node's history). Default: none. */
  readonly recent?: RecentMessages;
  readonly access: AccessContext;
  /** The text of `/metrics`. */
  readonly metrics: () => string;
  /** Counts a refused request. */
  readonly refuse: (status: number, reason: string) => void;
  /**
   * Whether the page, `/members` and `/metrics` are private (the node has a network secret now).
   * Asked at each request, so a secret set or removed at run time applies at once. Default: open.
   */
  readonly privateReads?: () => boolean;
  readonly logger: Logger;
  /** The wall clock (ms since the epoch) for the times the page shows. @default the system's */
  readonly wallNow?: () => number;
}

/** Most recipients one `POST /api/send` may name. */
const MAX_RECIPIENTS = 1024;

const STATE_ORDER: Record<MemberInfo['state'], number> = { alive: 0, suspect: 1, dead: 2, left: 3 };

const NO_STORE = { 'cache-control': 'no-store', 'x-content-type-options': 'nosniff' };

type Route = (req: InboundRequest) => InboundResponse | Promise<InboundResponse>;

/**
 * Whether a request is for the web endpoints rather than the protocol: any path but `/`, and
 * `GET /` from a browser (one that accepts `text/html`). `POST /` is always the protocol.
 */
export function isWebRequest(req: InboundRequest): boolean {
  if (req.path !== '/') return true;
  return (req.method === 'GET' || req.method === 'HEAD') && (req.headers.accept ?? '').includes('text/html');
}

/** Serves the web and operations endpoints of one node. */
export class WebHandler {
  readonly #o: WebHandlerOptions;
  readonly #feed: EventFeed;
  readonly #wallNow: () => number;
  readonly #routes: ReadonlyMap<string, { readonly methods: readonly string[]; readonly serve: Route }>;

  constructor(options: WebHandlerOptions) {
    this.#o = options;
    this.#wallNow = options.wallNow ?? (() => wallTime(systemClock));
    this.#feed = new EventFeed(options.node, options.logger, options.recent ?? NO_HISTORY, this.#wallNow);
    const get = ['GET', 'HEAD'];
    this.#routes = new Map<string, { readonly methods: readonly string[]; readonly serve: Route }>([
      ['/', { methods: get, serve: this.#private(() => page(PAGE_HTML, 'text/html; charset=utf-8')) }],
      ['/app.js', { methods: get, serve: () => page(PAGE_JS, 'text/javascript; charset=utf-8') }],
      ['/app.css', { methods: get, serve: () => page(PAGE_CSS, 'text/css; charset=utf-8') }],
      ['/events', { methods: ['GET'], serve: (req) => this.#events(req) }],
      ['/members', { methods: get, serve: this.#private(() => this.#members()) }],
      ['/metrics', { methods: get, serve: this.#private(() => this.#metrics()) }],
      ['/health', { methods: get, serve: () => this.#health() }],
      ['/api/broadcast', { methods: ['POST'], serve: (req) => this.#write(req, 'broadcast') }],
      ['/api/send', { methods: ['POST'], serve: (req) => this.#write(req, 'direct') }],
      ['/api/publish', { methods: ['POST'], serve: (req) => this.#write(req, 'publish') }],
      ['/api/subscribe', { methods: ['POST'], serve: (req) => this.#room(req, 'subscribe') }],
      ['/api/unsubscribe', { methods: ['POST'], serve: (req) => this.#room(req, 'unsubscribe') }],
    ]);
  }

  /** How many event feeds are open. */
  get clients(): number {
    return this.#feed.size;
  }

  /** Answers one request. Never throws. */
  async handle(req: InboundRequest): Promise<InboundResponse> {
    const route = this.#routes.get(req.path);
    if (route === undefined) return this.#refuse(404, 'not_found', `not found: ${req.path.slice(0, 200)}`);
    if (!route.methods.includes(req.method)) {
      const res = this.#refuse(405, 'method_not_allowed', `Method not allowed: ${req.method.slice(0, 20)}`);
      return { ...res, headers: { ...res.headers, allow: route.methods.join(', ') } };
    }
    try {
      return await route.serve(req);
    } catch (err) {
      this.#o.logger.error('web request failed', { path: req.path, err });
      return this.#refuse(500, 'internal', 'internal error');
    }
  }

  /** Ends every event feed (the node is stopping). */
  close(): void {
    this.#feed.close();
  }

  #refuse(status: number, reason: string, message: string): InboundResponse {
    this.#o.refuse(status, reason);
    return { status, body: `${message.replace(/[\r\n]+/g, ' ')}\n`, headers: NO_STORE };
  }

  /** A read that needs this machine or the token while the node has a network secret. */
  #private(serve: () => InboundResponse): Route {
    return (req) => {
      if (this.#o.privateReads?.() === true) {
        const verdict = checkRead(req, this.#o.access);
        if (!verdict.ok) return this.#refuse(verdict.status, verdict.reason, verdict.message);
      }
      return serve();
    };
  }

  #events(req: InboundRequest): InboundResponse {
    const verdict = checkFeed(req, this.#o.access);
    if (!verdict.ok) return this.#refuse(verdict.status, verdict.reason, verdict.message);
    if (this.#o.node.status !== 'started') return this.#refuse(503, 'not_started', 'the node is not started');
    if (!this.#feed.hasRoom) return this.#refuse(503, 'too_many_feeds', 'too many open event feeds');
    return {
      status: 200,
      contentType: 'text/event-stream; charset=utf-8',
      headers: { 'x-content-type-options': 'nosniff' },
      stream: (out) => this.#feed.open(out),
    };
  }

  #members(): InboundResponse {
    const node = this.#o.node;
    const now = this.#wallNow();
    const members = node
      .memberStates()
      .sort(
        (a, b) =>
          STATE_ORDER[a.state] - STATE_ORDER[b.state] ||
          (a.peer.name ?? '').localeCompare(b.peer.name ?? '') ||
          a.peer.address.localeCompare(b.peer.address) ||
          a.peer.port - b.peer.port,
      )
      .map((m) => ({
        ...peerJson(m.peer),
        kind: m.kind,
        state: m.state,
        incarnation: m.incarnation,
        lastSeen: new Date(now - m.lastSeenMsAgo).toISOString(),
        lastSeenMsAgo: m.lastSeenMsAgo,
      }));
    let self: ReturnType<typeof peerJson> | null = null;
    try {
      self = peerJson(node.self);
    } catch {
      self = null; // stopping
    }
    return json(200, { self, connected: node.isConnected, members });
  }

  #metrics(): InboundResponse {
    return { status: 200, body: this.#o.metrics(), contentType: PROMETHEUS_CONTENT_TYPE, headers: NO_STORE };
  }

  #health(): InboundResponse {
    const node = this.#o.node;
    if (node.status !== 'started') return json(503, { status: node.status });
    const live = node.memberStates().filter((m) => m.state === 'alive' || m.state === 'suspect').length;
    return json(200, { status: 'ok', connected: node.isConnected, members: live });
  }

  async #write(req: InboundRequest, type: WriteType): Promise<InboundResponse> {
    const verdict = checkWrite(req, this.#o.access);
    if (!verdict.ok) return this.#refuse(verdict.status, verdict.reason, verdict.message);
    const input = parseWrite(req.body, type);
    if (typeof input === 'string') return this.#refuse(400, 'bad_request', input);
    const write = this.#o.write ?? this.#o.node;
    let report: DeliveryReport;
    try {
      report =
        input.topic !== undefined
          ? await write.publish(input.topic, input.text)
          : input.to === undefined
            ? await write.broadcast(input.text)
            : await write.send(input.to, input.text);
    } catch (err) {
      if (!(err instanceof P2PError)) throw err;
      return this.#refuseError(err);
    }
    const failed = report.failed.map((f) => ({
      peer: peerJson(f.peer),
      code: f.error.code,
      error: f.error.message,
    }));
    // The page learns of it from the feed, as of every message this node sends.
    return json(200, { id: report.id, delivered: report.delivered.map(peerJson), failed });
  }

  /** Joins or leaves a room; answers with this node's topics afterwards. */
  async #room(req: InboundRequest, action: 'subscribe' | 'unsubscribe'): Promise<InboundResponse> {
    const verdict = checkWrite(req, this.#o.access);
    if (!verdict.ok) return this.#refuse(verdict.status, verdict.reason, verdict.message);
    const value = parseObject(req.body);
    if (typeof value === 'string') return this.#refuse(400, 'bad_request', value);
    const { topic } = value as { topic?: unknown };
    if (typeof topic !== 'string') return this.#refuse(400, 'bad_request', 'topic: expected a string');
    try {
      await this.#o.node[action](topic);
    } catch (err) {
      if (!(err instanceof P2PError)) throw err;
      return this.#refuseError(err);
    }
    return json(200, { topics: this.#o.node.topics() });
  }

  /** A typed error of the node, as a refusal: its status, its code and its message. */
  #refuseError(err: P2PError): InboundResponse {
    const status = err.code === 'ERR_NOT_CONNECTED' ? 409 : httpStatusOf(err);
    return this.#refuse(status, err.code.toLowerCase(), `${err.code}: ${err.message}`);
  }
}

type WriteType = 'broadcast' | 'direct' | 'publish';

function page(body: string, contentType: string): InboundResponse {
  return {
    status: 200,
    body,
    contentType,
    headers: {
      'content-security-policy': PAGE_CSP,
      'x-content-type-options': 'nosniff',
      'x-frame-options': 'DENY',
      'referrer-policy': 'no-referrer',
      'cache-control': 'no-cache',
    },
  };
}

function json(status: number, value: unknown): InboundResponse {
  return { status, body: `${JSON.stringify(value)}\n`, contentType: 'application/json', headers: NO_STORE };
}

/** A JSON object body, or a one-line complaint. */
function parseObject(body: Uint8Array): object | string {
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(body).toString('utf8'));
  } catch {
    return 'the body is not JSON';
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    return 'the body must be a JSON object';
  return value;
}

/** Validates a write's JSON body; returns a one-line complaint when it is not valid. */
function parseWrite(
  body: Uint8Array,
  type: WriteType,
): { text: string; to?: string[]; topic?: string } | string {
  const value = parseObject(body);
  if (typeof value === 'string') return value;
  const { text, to, topic } = value as { text?: unknown; to?: unknown; topic?: unknown };
  if (typeof text !== 'string') return 'text: expected a string';
  if (text.trim() === '') return 'text: the message is empty, nothing was sent';
  if (type !== 'publish' && topic !== undefined) return 'topic: only in a publish (use /api/publish)';
  if (type === 'publish') {
    if (to !== undefined) return 'to: not allowed in a publish (use /api/send)';
    if (typeof topic !== 'string') return 'topic: expected a string';
    return { text, topic };
  }
  if (type === 'broadcast') {
    if (to !== undefined) return 'to: not allowed in a broadcast (use /api/send)';
    return { text };
  }
  const list = typeof to === 'string' ? [to] : to;
  if (!Array.isArray(list) || list.length === 0 || !list.every((t) => typeof t === 'string' && t !== '')) {
    return 'to: expected a member id or "host:port", or a list of them';
  }
  if (list.length > MAX_RECIPIENTS) return `to: at most ${MAX_RECIPIENTS} recipients`;
  return { text, to: list as string[] };
}
