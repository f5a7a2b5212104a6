/**
 * The node: composes identity, transport, member table and inbox, and runs the lifecycle
 * `start → connect → … → disconnect → stop`.
 *
 * @module
 */

import { EventEmitter, setMaxListeners } from 'node:events';
import { networkInterfaces } from 'node:os';
import { type Clock, systemClock } from './clock.js';
import { Inbox } from './delivery/inbox.js';
import { SeenSet } from './delivery/seen-set.js';
import {
  AlreadyStartedError,
  ConnectFailedError,
  InvalidAddressError,
  InvalidMessageError,
  MessageTooLargeError,
  NotConnectedError,
  NotStartedError,
  P2PError,
  PeerRefusedError,
  ProtocolError,
  StoppedError,
  TimeoutError,
  UnknownPeerError,
} from './errors.js';
import { type Identity, resolveIdentity } from './identity.js';
import { createDebugLogger, type Logger } from './logger.js';
import { type Member, MemberTable, type PeerKind } from './membership/member-table.js';
import { maxBodyBytes, type NodeOptions, type ResolvedOptions, resolveOptions } from './options.js';
import {
  addressId,
  formatHostPort,
  isUnspecifiedAddress,
  type Peer,
  type PeerAddressInput,
  parseAddress,
} from './peer.js';
import { decodeData, decodeMemberList, encodeMemberList } from './protocol/codec.js';
import { isTsp2pEnvelope, openEnvelope, sealEnvelope } from './protocol/envelope.js';
import { type Envelope, Headers, MessageType, PROTOCOL_VERSION, type WirePeer } from './protocol/schema.js';
import { type Random, systemRandom } from './random.js';
import { HttpTransport } from './transport/http.js';
import type { InboundRequest, InboundResponse, OutboundResponse, Transport } from './transport/transport.js';
import type {
  CallOptions,
  ConnectReport,
  DeliveryFailure,
  DeliveryReport,
  LeaveReport,
  Message,
  NodeEvents,
} from './types.js';

/** The lifecycle states of a {@link Node}. */
export type NodeStatus = 'stopped' | 'starting' | 'started' | 'stopping';

/** A payload: a string (sent as UTF-8) or bytes. */
export type Payload = string | Uint8Array;

/** A recipient: `'host:port'`, a URL, a {@link Peer}, or a member's id. */
export type Target = PeerAddressInput | Peer;

/** Options of {@link Node.messages}. */
export interface MessagesOptions extends CallOptions {
  /** Messages buffered for this iterator; defaults to the node's `inboxSize` option. */
  readonly bufferSize?: number;
}

const utf8 = new TextDecoder();
const utf8Encoder = new TextEncoder();

/** How long message ids are remembered to drop duplicates, and how many at most. */
const SEEN_WINDOW_MS = 10 * 60_000;
const SEEN_CAPACITY = 100_000;

class ReceivedMessage implements Message {
  readonly id: string;
  readonly type: 'broadcast' | 'direct';
  readonly from: Peer;
  readonly data: Uint8Array;
  #text: string | undefined;

  constructor(id: string, type: 'broadcast' | 'direct', from: Peer, data: Uint8Array) {
    this.id = id;
    this.type = type;
    this.from = from;
    this.data = data;
  }

  get text(): string {
    this.#text ??= utf8.decode(this.data);
    return this.#text;
  }

  toJSON(): object {
    return { id: this.id, type: this.type, from: this.from, text: this.text };
  }
}

/**
 * A tsp2p node: an HTTP server and an HTTP client that together join a network, broadcast,
 * send direct messages and leave.
 *
 * @example
 * ```ts
 * const node = new Node({ port: 5001, name: 'ada' });
 * await node.start();
 * node.on('message', (msg) => console.log(msg.from.address, msg.text));
 * await node.connect('127.0.0.1:5000');
 * await node.broadcast('hello');
 * await node.stop();
 * ```
 */
export class Node extends EventEmitter<NodeEvents> {
  readonly #options: ResolvedOptions;
  readonly #clock: Clock;
  readonly #random: Random;
  readonly #logger: Logger;
  readonly #identity: Identity;
  readonly #transport: Transport;
  readonly #members = new MemberTable();
  readonly #seen = new SeenSet(SEEN_CAPACITY, SEEN_WINDOW_MS);
  readonly #inboxes = new Set<Inbox<Message>>();
  #status: NodeStatus = 'stopped';
  #self: Peer | undefined;
  #selfWire: WirePeer | undefined;
  #connected = false;
  #shutdown: AbortController | undefined;
  #stopping: Promise<void> | undefined;

  /**
   * @throws {InvalidOptionsError} `ERR_INVALID_OPTIONS` when an option is invalid.
   */
  constructor(options: NodeOptions = {}) {
    super();
    this.#options = resolveOptions(options);
    this.#clock = this.#options.clock ?? systemClock;
    this.#random = this.#options.random ?? systemRandom;
    this.#logger = this.#options.logger ?? createDebugLogger();
    this.#identity = resolveIdentity(this.#options.identity);
    this.#transport = this.#options.transport ?? new HttpTransport({ logger: this.#logger });
  }

  /** The lifecycle state. */
  get status(): NodeStatus {
    return this.#status;
  }

  /** This node's id: its public-key fingerprint. Known before `start()`. */
  get id(): string {
    return this.#identity.id;
  }

  /**
   * This node as others see it: `{ id, address, port, name? }`.
   *
   * @throws {NotStartedError} `ERR_NOT_STARTED` before `start()` has resolved.
   */
  get self(): Peer {
    if (this.#self === undefined) throw new NotStartedError();
    return this.#self;
  }

  /**
   * Whether the node is in a network: `connect()` succeeded, or another node joined through it,
   * and it has not left since (nor seen every member leave).
   */
  get isConnected(): boolean {
    return this.#connected;
  }

  /** The live members, self excluded. */
  members(): Peer[] {
    return this.#members.live().map((m) => m.peer);
  }

  /**
   * Starts listening. Resolves with {@link Node.self} once the server accepts connections.
   *
   * @throws {AlreadyStartedError} `ERR_ALREADY_STARTED` when the node is started or starting.
   * @throws {AddressInUseError} `ERR_ADDRESS_IN_USE` when the port is taken.
   */
  async start(options: CallOptions = {}): Promise<Peer> {
    if (this.#status !== 'stopped') throw new AlreadyStartedError(`the node is already ${this.#status}`);
    options.signal?.throwIfAborted();
    this.#status = 'starting';
    this.#stopping = undefined;
    try {
      const bound = await this.#transport.listen({
        host: this.#options.host,
        port: this.#options.port,
        maxBodyBytes: maxBodyBytes(this.#options.maxMessageBytes),
        handler: (req) => this.#handle(req),
      });
      const adv = this.#options.advertise;
      const address = adv?.host ?? advertisedHost(bound.host);
      const port = adv?.port ?? bound.port;
      const name = this.#options.name;
      this.#self = Object.freeze(
        name === undefined ? { id: this.id, address, port } : { id: this.id, address, port, name },
      );
      this.#selfWire =
        name === undefined ? { address, port, id: this.id } : { address, port, id: this.id, name };
      this.#shutdown = new AbortController();
      // Every in-flight request listens to it.
      setMaxListeners(0, this.#shutdown.signal);
      this.#status = 'started';
      this.#logger.info('listening', { address: formatHostPort(address, port), id: this.id });
      if (options.signal?.aborted) {
        await this.stop();
        throw options.signal.reason;
      }
      return this.#self;
    } catch (err) {
      if (this.#status === 'starting') {
        this.#status = 'stopped';
        await this.#transport.close({ graceMs: 0 }).catch(() => undefined);
      }
      throw err;
    }
  }

  /**
   * Joins a network through an entry point, as gop2p does: the entry point answers with its
   * members and registers this node; this node then announces itself to each of them. A
   * member that does not answer is reported in `failed` and not added; it does not abort
   * the join.
   *
   * @param entry - `'host:port'`, `'http(s)://host:port'`, or a {@link Peer}
   * @throws {NotStartedError} `ERR_NOT_STARTED`
   * @throws {InvalidAddressError} `ERR_INVALID_ADDRESS` for a malformed address or this node's own
   * @throws {ConnectFailedError} `ERR_CONNECT_FAILED` when the entry point cannot be reached or refuses
   */
  async connect(entry: Target, options: CallOptions = {}): Promise<ConnectReport> {
    const shutdown = this.#requireStarted();
    options.signal?.throwIfAborted();
    const target = parseAddress(entry);
    const self = this.self;
    if (this.#isSelfAddress(target.host, target.port)) {
      throw new InvalidAddressError(
        `cannot connect to ${formatHostPort(target.host, target.port)}: that is this node`,
      );
    }
    const where = formatHostPort(target.host, target.port);
    const body = this.#seal(MessageType.Connect);
    let res: OutboundResponse;
    const entryScope = this.#scope(shutdown, options.signal);
    const call = this.#callSignal(entryScope.signal, this.#options.requestTimeoutMs);
    try {
      res = await this.#transport.request({
        host: target.host,
        port: target.port,
        ...(target.scheme ? { scheme: target.scheme } : {}),
        body,
        // gop2p refuses a request whose Host is its own address; its clients send their own.
        ...(this.#options.compat ? { hostHeader: formatHostPort(self.address, self.port) } : {}),
        signal: call.signal,
      });
    } catch (err) {
      if (options.signal?.aborted) throw options.signal.reason;
      throw new ConnectFailedError(`cannot connect to ${where}: ${(err as Error).message}`, { cause: err });
    } finally {
      call.done();
      entryScope.done();
    }
    if (res.status !== 200) {
      throw new ConnectFailedError(
        `${where} refused to connect: ${res.status} ${firstLine(res.body)}`.trim(),
        {
          cause: new PeerRefusedError(res.status, firstLine(res.body)),
        },
      );
    }
    const entryKind: PeerKind = res.headers[Headers.id] ? 'tsp2p' : 'gop2p';
    if (entryKind === 'gop2p' && !this.#options.compat) {
      // It registered us; undo that before refusing to stay.
      void this.#post(
        { address: target.host, port: target.port, kind: 'gop2p' },
        this.#seal(MessageType.Disconnect),
        shutdown,
        this.#options.leaveTimeoutMs,
      ).catch(() => undefined);
      throw new ConnectFailedError(
        `${where} is a gop2p node: start this node with compat: 'gop2p' to join it`,
      );
    }
    const list = decodeMemberList(res.body);
    if (!list.ok) {
      throw new ConnectFailedError(`${where} answered with ${list.refusal.message}`, {
        cause: new ProtocolError(list.refusal.message),
      });
    }
    const entryPeer = this.#peerFromAnswer(target.host, target.port, entryKind, res);

    // Announce ourselves to every listed member, all at once, each with its own timeout.
    const seen = new Set<string>([formatHostPort(entryPeer.address, entryPeer.port)]);
    const candidates: { wire: WirePeer; address: string; kind: PeerKind }[] = [];
    for (const wire of list.value) {
      const address = isUnspecifiedAddress(wire.address) ? target.host : wire.address;
      const key = formatHostPort(address, wire.port);
      if (seen.has(key) || this.#isSelfAddress(address, wire.port) || wire.id === this.id) continue;
      seen.add(key);
      candidates.push({ wire, address, kind: wire.id ? 'tsp2p' : 'gop2p' });
    }
    const failed: DeliveryFailure[] = [];
    const joined: Peer[] = [];
    const announce = this.#seal(MessageType.Connect);
    const scope = this.#scope(shutdown, options.signal);
    await Promise.all(
      candidates.map(async ({ wire, address, kind }) => {
        const listed = peerOf(wire.id ?? addressId(address, wire.port), address, wire.port, wire.name);
        if (kind === 'gop2p' && !this.#options.compat) {
          failed.push({ peer: listed, error: new ProtocolError('a gop2p member needs compat mode') });
          return;
        }
        try {
          const answer = await this.#post({ address, port: wire.port, kind }, announce, scope.signal);
          const answerKind: PeerKind = answer.headers[Headers.id] ? 'tsp2p' : kind;
          joined.push(this.#peerFromAnswer(address, wire.port, answerKind, answer, wire.name));
        } catch (err) {
          if (options.signal?.aborted) return;
          failed.push({ peer: listed, error: asP2PError(err) });
          this.#logger.warn('member did not answer the announcement', {
            peer: formatHostPort(address, wire.port),
            err,
          });
        }
      }),
    ).finally(scope.done);
    options.signal?.throwIfAborted();
    if (shutdown.aborted) throw new StoppedError();
    // gop2p adds the entry point last.
    joined.push(entryPeer);
    const now = this.#clock.now();
    for (const peer of joined) this.#register(peer, this.#kindOf(peer), now);
    this.#connected = true;
    this.#logger.info('connected', { entry: where, members: this.#members.size, failed: failed.length });
    return { entry: entryPeer, members: this.members(), failed };
  }

  /**
   * Sends a message to every member, all at once, each request with its own timeout. One dead
   * or slow member never delays the others.
   *
   * @throws {NotStartedError} `ERR_NOT_STARTED`
   * @throws {NotConnectedError} `ERR_NOT_CONNECTED`
   * @throws {MessageTooLargeError} `ERR_MESSAGE_TOO_LARGE` when the payload exceeds `maxMessageBytes`
   */
  async broadcast(data: Payload, options: CallOptions = {}): Promise<DeliveryReport> {
    const shutdown = this.#requireStarted();
    if (!this.#connected) throw new NotConnectedError();
    options.signal?.throwIfAborted();
    const bytes = this.#payload(data);
    const id = this.#newId();
    const body = this.#seal(MessageType.Broadcast, { id, data: bytes });
    return this.#deliver(id, this.#members.live(), body, shutdown, options.signal);
  }

  /**
   * Sends a direct message to one member or several.
   *
   * @param to - one target or an array of them: `'host:port'`, a {@link Peer}, or a member id
   * @throws {NotStartedError} `ERR_NOT_STARTED`
   * @throws {NotConnectedError} `ERR_NOT_CONNECTED`
   * @throws {InvalidAddressError} `ERR_INVALID_ADDRESS` for a malformed target
   * @throws {UnknownPeerError} `ERR_UNKNOWN_PEER` when a target is not a member (nothing is sent)
   * @throws {MessageTooLargeError} `ERR_MESSAGE_TOO_LARGE`
   */
  async send(
    to: Target | readonly Target[],
    data: Payload,
    options: CallOptions = {},
  ): Promise<DeliveryReport> {
    const shutdown = this.#requireStarted();
    if (!this.#connected) throw new NotConnectedError();
    options.signal?.throwIfAborted();
    const list = Array.isArray(to) ? (to as readonly Target[]) : [to as Target];
    if (list.length === 0) throw new InvalidAddressError('send() needs at least one recipient');
    const targets = new Map<string, Member>();
    for (const t of list) {
      const m = this.#resolveMember(t);
      targets.set(m.peer.id, m);
    }
    const bytes = this.#payload(data);
    const id = this.#newId();
    const recipients = [...targets.values()].map((m) => wireOf(m.peer));
    const body = this.#seal(MessageType.Direct, { id, data: bytes, to: recipients });
    return this.#deliver(id, [...targets.values()], body, shutdown, options.signal);
  }

  /**
   * Leaves the network gracefully: tells every member (bounded by `leaveTimeoutMs`), then
   * clears the member table. The node stays started and may connect again. Idempotent.
   */
  async disconnect(options: CallOptions = {}): Promise<LeaveReport> {
    options.signal?.throwIfAborted();
    if (!this.#connected || this.#shutdown === undefined) {
      this.#connected = false;
      return { notified: [], failed: [] };
    }
    const shutdown = this.#shutdown.signal;
    const members = this.#members.live();
    this.#connected = false;
    this.#members.clear();
    const body = this.#seal(MessageType.Disconnect);
    const notified: Peer[] = [];
    const failed: DeliveryFailure[] = [];
    const scope = this.#scope(shutdown, options.signal);
    await Promise.all(
      members.map(async (m) => {
        try {
          await this.#post(
            { address: m.peer.address, port: m.peer.port, kind: m.kind },
            body,
            scope.signal,
            this.#options.leaveTimeoutMs,
          );
          notified.push(m.peer);
        } catch (err) {
          failed.push({ peer: m.peer, error: asP2PError(err) });
        }
      }),
    ).finally(scope.done);
    options.signal?.throwIfAborted();
    this.#logger.info('disconnected', { notified: notified.length, failed: failed.length });
    return { notified, failed };
  }

  /**
   * Leaves (if connected), closes the server and every connection, and ends every
   * `messages()` iterator. Afterwards the process can exit on its own. Idempotent.
   */
  stop(): Promise<void> {
    if (this.#status === 'stopped') return Promise.resolve();
    this.#stopping ??= this.#stop();
    return this.#stopping;
  }

  async #stop(): Promise<void> {
    // A start() in progress finishes first, so that its listener is closed too.
    while (this.#status === 'starting') await new Promise<void>((r) => setImmediate(r));
    this.#status = 'stopping';
    try {
      await this.disconnect();
    } catch (err) {
      this.#logger.warn('leave failed during stop', { err });
    }
    this.#shutdown?.abort(new StoppedError());
    await this.#transport.close();
    for (const inbox of [...this.#inboxes]) inbox.end();
    this.#inboxes.clear();
    this.#members.clear();
    this.#connected = false;
    this.#status = 'stopped';
    this.#logger.info('stopped');
  }

  /** Same as {@link Node.stop}, for `await using node = new Node()`. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }

  /**
   * The messages that arrive from now on, as an async iterator. Each iterator gets every
   * message. It buffers up to `bufferSize` messages (default: the node's `inboxSize`); when
   * the consumer falls further behind, the oldest buffered message is dropped for this
   * iterator and counted. It ends on `stop()` or when `signal` aborts.
   */
  messages(options: MessagesOptions = {}): AsyncIterableIterator<Message> {
    const signal = options.signal;
    const onAbort = (): void => inbox.end();
    const inbox: Inbox<Message> = new Inbox<Message>(options.bufferSize ?? this.#options.inboxSize, () => {
      this.#inboxes.delete(inbox);
      signal?.removeEventListener('abort', onAbort);
      if (inbox.dropped > 0)
        this.#logger.warn('messages() iterator dropped messages', { dropped: inbox.dropped });
    });
    if (signal?.aborted || this.#status === 'stopping') {
      inbox.end();
      return inbox;
    }
    this.#inboxes.add(inbox);
    signal?.addEventListener('abort', onAbort, { once: true });
    return inbox;
  }

  // ---- inbound ------------------------------------------------------------------------------

  async #handle(req: InboundRequest): Promise<InboundResponse> {
    if (req.path !== '/') return text(404, `not found: ${req.path}`);
    if (req.method !== 'POST') {
      if (req.body.length === 0 && (req.method === 'GET' || req.method === 'HEAD')) {
        return text(400, 'No valid Message provided: send a JSON envelope with POST /');
      }
      return text(405, `Method not allowed: ${req.method}; use POST /`);
    }
    if (this.#status !== 'started') return text(503, 'node is shutting down');
    const opened = openEnvelope(req.body);
    if (!opened.ok) return text(opened.refusal.status, opened.refusal.message);
    return this.#receive(opened.value, req.remoteAddress);
  }

  #receive(envelope: Envelope, remoteAddress: string): InboundResponse {
    const tsp2p = isTsp2pEnvelope(envelope);
    if (!tsp2p && !this.#options.compat) {
      return text(403, "gop2p-style request refused: this node does not run with compat: 'gop2p'");
    }
    // gop2p's chat example advertises 0.0.0.0: such a sender is reached at its source address.
    const address = isUnspecifiedAddress(envelope.from.address) ? remoteAddress : envelope.from.address;
    const port = envelope.from.port;
    if ((tsp2p && envelope.from.id === this.id) || this.#isSelfAddress(address, port)) {
      return text(400, 'You can not connect with yourself.');
    }
    const senderId = tsp2p ? envelope.from.id! : addressId(address, port);
    const now = this.#clock.now();

    if (envelope.type === MessageType.Connect) {
      const existing = this.#members.get(senderId) ?? this.#members.getByAddress(address, port);
      if (existing === undefined && this.#members.size >= this.#options.maxMembers) {
        return text(503, `member table is full (${this.#options.maxMembers} members)`);
      }
      // The answer lists the members as they stood before the newcomer: never self, never it.
      const list = this.#members
        .live()
        .filter((m) => m.peer.id !== senderId)
        .map((m) => wireOf(m.peer));
      const peer = peerOf(senderId, address, port, envelope.from.name);
      this.#register(peer, tsp2p ? 'tsp2p' : 'gop2p', now);
      this.#connected = true;
      return {
        status: 200,
        body: encodeMemberList(list),
        contentType: 'text/plain',
        headers: this.#answerHeaders(),
      };
    }

    const sender = tsp2p ? this.#members.get(senderId) : this.#members.getByAddress(address, port);
    if (sender === undefined) return text(403, 'Peer not registered');
    this.#members.touch(sender.peer.id, now);

    if (envelope.type === MessageType.Disconnect) {
      this.#members.remove(sender.peer.id);
      if (this.#members.size === 0) this.#connected = false;
      this.#emitLater('member:leave', sender.peer);
      return text(200, '');
    }

    // Broadcast or direct.
    const data = decodeData(envelope.data);
    if (data.length > this.#options.maxMessageBytes) {
      return text(413, `message too large: limit is ${this.#options.maxMessageBytes} bytes`);
    }
    const id = envelope.id ?? this.#newId();
    if (envelope.id !== undefined && !this.#seen.add(`${sender.peer.id}/${envelope.id}`, now)) {
      return text(200, ''); // a duplicate: acknowledged, not delivered twice
    }
    const message = new ReceivedMessage(
      id,
      envelope.type === MessageType.Broadcast ? 'broadcast' : 'direct',
      sender.peer,
      data,
    );
    for (const inbox of this.#inboxes) inbox.push(message);
    this.#emitLater('message', message);
    return text(200, '');
  }

  // ---- helpers --------------------------------------------------------------------------------

  #register(peer: Peer, kind: PeerKind, now: number): void {
    const result = this.#members.upsert(peer, kind, now);
    if (result.replaced) this.#emitLater('member:fail', result.replaced.peer);
    if (result.added) this.#emitLater('member:join', result.member.peer);
    else if (result.updated) this.#emitLater('member:update', result.member.peer);
  }

  #kindOf(peer: Peer): PeerKind {
    return peer.id === addressId(peer.address, peer.port) ? 'gop2p' : 'tsp2p';
  }

  #peerFromAnswer(address: string, port: number, kind: PeerKind, res: OutboundResponse, name?: string): Peer {
    if (kind === 'gop2p') return peerOf(addressId(address, port), address, port, name);
    const id = res.headers[Headers.id]!;
    const encodedName = res.headers[Headers.name];
    let answerName = name;
    if (encodedName !== undefined) {
      try {
        answerName = decodeURIComponent(encodedName).slice(0, 64);
      } catch {
        answerName = name;
      }
    }
    return peerOf(id, address, port, answerName);
  }

  #answerHeaders(): Record<string, string> {
    const h: Record<string, string> = { [Headers.id]: this.id, [Headers.version]: String(PROTOCOL_VERSION) };
    if (this.#options.name !== undefined) h[Headers.name] = encodeURIComponent(this.#options.name);
    return h;
  }

  async #deliver(
    id: string,
    members: readonly Member[],
    body: Uint8Array,
    shutdown: AbortSignal,
    signal: AbortSignal | undefined,
  ): Promise<DeliveryReport> {
    const delivered: Peer[] = [];
    const failed: DeliveryFailure[] = [];
    const scope = this.#scope(shutdown, signal);
    await Promise.all(
      members.map(async (m) => {
        try {
          await this.#post({ address: m.peer.address, port: m.peer.port, kind: m.kind }, body, scope.signal);
          delivered.push(m.peer);
        } catch (err) {
          failed.push({ peer: m.peer, error: asP2PError(err) });
        }
      }),
    ).finally(scope.done);
    signal?.throwIfAborted();
    if (failed.length > 0) {
      this.#logger.warn('delivery failed', {
        id,
        failed: failed.map((f) => `${formatHostPort(f.peer.address, f.peer.port)} ${f.error.code}`),
      });
    }
    return { id, delivered, failed };
  }

  /** POSTs `body` to one peer; resolves with its 200 answer, rejects with a P2PError otherwise. */
  async #post(
    to: { address: string; port: number; kind: PeerKind },
    body: Uint8Array,
    parent: AbortSignal,
    timeoutMs = this.#options.requestTimeoutMs,
  ): Promise<OutboundResponse> {
    const self = this.self;
    const call = this.#callSignal(parent, timeoutMs);
    try {
      const res = await this.#transport.request({
        host: to.address,
        port: to.port,
        body,
        ...(to.kind === 'gop2p' ? { hostHeader: formatHostPort(self.address, self.port) } : {}),
        signal: call.signal,
      });
      if (res.status !== 200) throw new PeerRefusedError(res.status, firstLine(res.body));
      return res;
    } finally {
      call.done();
    }
  }

  /**
   * One signal for a whole call that fans out to many peers: it aborts on shutdown or on the
   * caller's abort. Each per-peer request then listens to this one signal only.
   */
  #scope(shutdown: AbortSignal, signal: AbortSignal | undefined): { signal: AbortSignal; done: () => void } {
    if (signal === undefined) return { signal: shutdown, done: () => {} };
    const ac = new AbortController();
    setMaxListeners(0, ac.signal);
    const onShutdown = (): void => ac.abort(shutdown.reason);
    const onAbort = (): void => ac.abort(signal.reason);
    if (shutdown.aborted) ac.abort(shutdown.reason);
    else shutdown.addEventListener('abort', onShutdown, { once: true });
    if (signal.aborted) ac.abort(signal.reason);
    else signal.addEventListener('abort', onAbort, { once: true });
    return {
      signal: ac.signal,
      done: () => {
        shutdown.removeEventListener('abort', onShutdown);
        signal.removeEventListener('abort', onAbort);
      },
    };
  }

  /**
   * A signal for one request: it aborts with its parent (see {@link Node.#scope}) or after
   * `timeoutMs`. `done()` must be called when the request settles, to release the timer and the
   * listener: a timer left behind per request would cost memory at high message rates.
   */
  #callSignal(parent: AbortSignal, timeoutMs: number): { signal: AbortSignal; done: () => void } {
    const ac = new AbortController();
    const onAbort = (): void => ac.abort(parent.reason);
    const timer = this.#clock.setTimeout(
      () => ac.abort(new TimeoutError(`no answer within ${timeoutMs} ms`)),
      timeoutMs,
    );
    if (parent.aborted) ac.abort(parent.reason);
    else parent.addEventListener('abort', onAbort, { once: true });
    return {
      signal: ac.signal,
      done: () => {
        timer.cancel();
        parent.removeEventListener('abort', onAbort);
      },
    };
  }

  #seal(type: MessageType, extra: { id?: string; data?: Uint8Array; to?: WirePeer[] } = {}): Buffer {
    return sealEnvelope({
      type,
      from: this.#selfWire!,
      id: extra.id ?? this.#newId(),
      ts: Date.now(),
      ...(extra.data !== undefined ? { data: extra.data } : {}),
      ...(extra.to !== undefined ? { to: extra.to } : {}),
    });
  }

  #requireStarted(): AbortSignal {
    if (this.#status !== 'started' || this.#shutdown === undefined) {
      if (this.#status === 'stopping') throw new StoppedError('the node is stopping');
      throw new NotStartedError();
    }
    return this.#shutdown.signal;
  }

  #payload(data: Payload): Uint8Array {
    let bytes: Uint8Array;
    if (typeof data === 'string') bytes = utf8Encoder.encode(data);
    else if (data instanceof Uint8Array) bytes = data;
    else throw new InvalidMessageError(`a message must be a string or a Uint8Array, got ${typeof data}`);
    if (bytes.length > this.#options.maxMessageBytes) {
      throw new MessageTooLargeError(
        `message is ${bytes.length} bytes: the limit (maxMessageBytes) is ${this.#options.maxMessageBytes}`,
      );
    }
    return bytes;
  }

  #resolveMember(t: Target): Member {
    if (typeof t === 'object' && t !== null && 'id' in t && typeof t.id === 'string') {
      const byId = this.#members.get(t.id);
      if (byId && (byId.state === 'alive' || byId.state === 'suspect')) return byId;
    }
    if (typeof t === 'string' && !t.includes(':')) {
      const byId = this.#members.get(t);
      if (byId) return byId;
    }
    const { host, port } = parseAddress(t as PeerAddressInput);
    const m = this.#members.getByAddress(host, port);
    if (m === undefined || (m.state !== 'alive' && m.state !== 'suspect')) {
      throw new UnknownPeerError(`${formatHostPort(host, port)} is not a member`);
    }
    return m;
  }

  #isSelfAddress(host: string, port: number): boolean {
    const self = this.#self;
    if (self === undefined || port !== self.port) return false;
    if (host === self.address) return true;
    // Loopback names of this machine reach this very node when it listens there.
    const local = host === 'localhost' || host === '127.0.0.1' || host === '::1';
    const selfLocal =
      self.address === '127.0.0.1' ||
      self.address === 'localhost' ||
      self.address === '::1' ||
      isUnspecifiedAddress(this.#options.host);
    return local && selfLocal;
  }

  #newId(): string {
    return Buffer.from(this.#random.bytes(12)).toString('base64url');
  }

  #emitLater<K extends keyof NodeEvents>(event: K, ...args: NodeEvents[K]): void {
    process.nextTick(() => {
      (this.emit as (e: K, ...a: NodeEvents[K]) => boolean)(event, ...args);
    });
  }
}

function text(status: number, body: string): InboundResponse {
  return { status, body: body === '' ? '' : `${body}\n` };
}

function firstLine(body: Uint8Array): string {
  const s = Buffer.from(body.buffer, body.byteOffset, Math.min(body.byteLength, 512)).toString('utf8');
  const nl = s.indexOf('\n');
  return (nl < 0 ? s : s.slice(0, nl)).trim();
}

function peerOf(id: string, address: string, port: number, name?: string): Peer {
  return Object.freeze(
    name === undefined || name === '' ? { id, address, port } : { id, address, port, name },
  );
}

function wireOf(peer: Peer): WirePeer {
  const isGop2p = peer.id === addressId(peer.address, peer.port);
  const wire: WirePeer = { port: peer.port, address: peer.address };
  if (!isGop2p) wire.id = peer.id;
  if (peer.name !== undefined) wire.name = peer.name;
  return wire;
}

function asP2PError(err: unknown): P2PError {
  if (err instanceof P2PError) return err;
  return new P2PError('ERR_PEER_UNREACHABLE', (err as Error)?.message ?? String(err), { cause: err });
}

/** The address to advertise for a listening host: the host itself, or an external IPv4 for 0.0.0.0/::. */
function advertisedHost(host: string): string {
  if (!isUnspecifiedAddress(host)) return host;
  for (const list of Object.values(networkInterfaces())) {
    for (const info of list ?? []) {
      if (info.family === 'IPv4' && !info.internal) return info.address;
    }
  }
  return '127.0.0.1';
}
