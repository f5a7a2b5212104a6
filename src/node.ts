/**
 * The node: composes identity, transport, membership, failure detector and inbox, and runs the
 * lifecycle `start → connect → … → disconnect → stop`.
 *
 * @module
 */

import { randomBytes } from 'node:crypto';
import { EventEmitter, setMaxListeners } from 'node:events';
import { networkInterfaces } from 'node:os';
import { type Clock, systemClock } from './clock.js';
import { Inbox } from './delivery/inbox.js';
import { LinkOrder, STREAM_ENDED } from './delivery/link-order.js';
import { firstLine, PeerClient, scope } from './delivery/peer-client.js';
import { type OutboundMessage, PeerQueue } from './delivery/peer-queue.js';
import { PlumtreeGlue } from './delivery/plumtree-glue.js';
import { ReceivedMessage } from './delivery/received-message.js';
import { SeenSet } from './delivery/seen-set.js';
import {
  AlreadyStartedError,
  BackpressureError,
  ConnectFailedError,
  InvalidAddressError,
  InvalidMessageError,
  MessageTooLargeError,
  NotConnectedError,
  NotStartedError,
  P2PError,
  PeerRefusedError,
  PeerUnreachableError,
  ProtocolError,
  StoppedError,
  UnknownPeerError,
} from './errors.js';
import { type Identity, resolveIdentity } from './identity.js';
import { createDebugLogger, type Logger } from './logger.js';
import { FailureDetector } from './membership/failure-detector.js';
import type { Member, PeerKind } from './membership/member-table.js';
import { type MemberEvent, Membership } from './membership/membership.js';
import { isLive } from './membership/merge.js';
import { PeerProbeNet, wirePeer } from './membership/probe-net.js';
import { messageTypeName, NodeMetrics, refusalReason, timedProbeNet } from './metrics.js';
import { DEFAULTS, maxBodyBytes, type NodeOptions, type ResolvedOptions, resolveOptions } from './options.js';
import {
  addressId,
  formatHostPort,
  isUnspecifiedAddress,
  type Peer,
  type PeerAddressInput,
  parseAddress,
} from './peer.js';
import { decodeData, decodeMemberList, encodeData, encodeMemberList } from './protocol/codec.js';
import {
  type EnvelopeSigner,
  isTsp2pEnvelope,
  openEnvelope,
  type Sealed,
  sealBatch,
  sealEnvelope,
} from './protocol/envelope.js';
import {
  type BatchedMessage,
  type Envelope,
  Headers,
  isTreeControl,
  MessageType,
  PROTOCOL_VERSION,
  type WireMemberUpdate,
  type WirePeer,
} from './protocol/schema.js';
import { type Random, shuffle, systemRandom } from './random.js';
import { AuthenticatedTransport } from './security/authenticated-transport.js';
import { signGossip } from './security/gossip-signature.js';
import { InboundGuard } from './security/inbound-guard.js';
import { NetworkKeyring, type SecretInput } from './security/keyring.js';
import { NO_SESSION, SessionKeys } from './security/session-keys.js';
import { identitySigner } from './security/signature.js';
import { resolveTls } from './security/tls.js';
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
import { isLoopback } from './web/access.js';
import { isWebRequest, WebHandler } from './web/web-handler.js';

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

/** A member as {@link Node.memberStates} reports it. */
export interface MemberInfo {
  readonly peer: Peer;
  readonly kind: PeerKind;
  readonly state: 'alive' | 'suspect' | 'dead' | 'left';
  readonly incarnation: number;
  /** Milliseconds since this node last heard from the member. */
  readonly lastSeenMsAgo: number;
}

const utf8Encoder = new TextEncoder();

/** How long message ids are remembered to drop duplicates, and how many at most. */
const SEEN_WINDOW_MS = 10 * 60_000;
const SEEN_CAPACITY = 100_000;

/** The parts that exist only while the node is started. */
interface Running {
  readonly self: Peer;
  readonly shutdown: AbortController;
  readonly membership: Membership;
  readonly detector: FailureDetector;
  readonly net: PeerProbeNet;
  /** The web and operations endpoints (option `web`), and the token for writes through them. */
  readonly web: WebHandler | undefined;
  readonly webToken: string;
  /** One outbound queue per member, by id. */
  readonly queues: Map<string, PeerQueue>;
  /** Per sender: the stream and the last sequence number delivered from it. */
  readonly links: LinkOrder;
  /** Plumtree broadcast (dissemination `'plumtree'`): src/delivery/plumtree.ts. */
  readonly tree: PlumtreeGlue;
}

/**
 * A tsp2p node: an HTTP server and an HTTP client that together join a network, broadcast,
 * send direct messages and leave, while a SWIM failure detector keeps the member list true.
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
  readonly #client: PeerClient;
  /** Signs every envelope this node sends; checks every envelope it receives (src/security/). */
  readonly #signer: EnvelopeSigner;
  /** Pairwise session keys: batches to a member whose key we hold carry a MAC, not a signature. */
  readonly #sessions: SessionKeys;
  readonly #guard: InboundGuard;
  readonly #keyring: NetworkKeyring;
  readonly #seen = new SeenSet(SEEN_CAPACITY, SEEN_WINDOW_MS);
  readonly #inboxes = new Set<Inbox<Message>>();
  readonly #metrics = new NodeMetrics();
  #status: NodeStatus = 'stopped';
  #run: Running | undefined;
  #connected = false;
  #stopping: Promise<void> | undefined;
  #idPrefix: string | undefined;
  #idCounter = 0;

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
    this.#signer = identitySigner(this.#identity);
    this.#sessions = new SessionKeys(this.#identity.id);
    this.#guard = new InboundGuard({
      compat: this.#options.compat === 'gop2p',
      maxClockSkewMs: this.#options.maxClockSkewMs,
      sessions: this.#sessions,
    });
    this.#keyring = new NetworkKeyring(this.#options.secret);
    this.#transport = new AuthenticatedTransport(
      this.#options.transport ?? this.#httpTransport(),
      this.#keyring,
    );
    this.#client = new PeerClient(this.#transport, this.#clock, () => this.self);
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
    if (this.#run === undefined) throw new NotStartedError();
    return this.#run.self;
  }

  /**
   * Whether the node is in a network: `connect()` succeeded, or another node joined through it,
   * and it has not left since (nor seen every member leave).
   */
  get isConnected(): boolean {
    return this.#connected;
  }

  /**
   * This node's base URL, `http://address:port/`: the chat page for a browser, and `/members`,
   * `/metrics`, `/health` for tools.
   *
   * @throws {NotStartedError} `ERR_NOT_STARTED` before `start()` has resolved.
   */
  get url(): string {
    const self = this.self;
    const scheme = this.#options.tls === undefined ? 'http' : 'https';
    return `${scheme}://${formatHostPort(self.address, self.port)}/`;
  }

  /**
   * The token for writes through the local API from another machine, generated at each start:
   * send it as `Authorization: Bearer <token>`, or open the page as `<url>#token=<token>`.
   * Requests from this machine need none. `undefined` while stopped, or with `web: false`.
   */
  get webToken(): string | undefined {
    return this.#run?.web === undefined ? undefined : this.#run.webToken;
  }

  /** The live members (alive or suspect), self excluded. */
  members(): Peer[] {
    return this.#run?.membership.live().map((m) => m.peer) ?? [];
  }

  /** Every member this node knows of, with its state; dead and departed ones while remembered. */
  memberStates(): MemberInfo[] {
    const now = this.#clock.now();
    return (this.#run?.membership.all() ?? []).map((m) => ({
      peer: m.peer,
      kind: m.kind,
      state: m.state,
      incarnation: m.incarnation,
      lastSeenMsAgo: Math.max(0, Math.round(now - m.lastSeen)),
    }));
  }

  /**
   * Starts listening and starts the failure detector. Resolves with {@link Node.self} once the
   * server accepts connections.
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
        onRefused: (status, reason) => this.#metrics.refuse(status, reason),
      });
      const adv = this.#options.advertise;
      const address = adv?.host ?? advertisedHost(bound.host);
      const port = adv?.port ?? bound.port;
      const self = peerOf(this.id, address, port, this.#options.name);
      const shutdown = new AbortController();
      // Every in-flight request listens to it.
      setMaxListeners(0, shutdown.signal);
      const membership = new Membership({
        self,
        clock: this.#clock,
        random: this.#random,
        timings: this.#options.timings,
        logger: this.#logger,
        maxMembers: this.#options.maxMembers,
        emit: (event, peer) => this.#onMemberEvent(event, peer),
      });
      const net = new PeerProbeNet(
        this.#client,
        membership,
        (type, extra) => this.#seal(type, extra),
        this.#logger,
      );
      const detector = new FailureDetector({
        membership,
        net: timedProbeNet(net, this.#clock, this.#metrics.probeRtt),
        clock: this.#clock,
        random: this.#random,
        timings: this.#options.timings,
        logger: this.#logger,
      });
      const webToken = randomBytes(18).toString('base64url');
      const web = this.#options.web ? this.#webHandler(self, bound.port, webToken) : undefined;
      const tree = this.#plumtree(membership, shutdown.signal);
      this.#run = {
        self,
        shutdown,
        membership,
        detector,
        net,
        web,
        webToken,
        queues: new Map(),
        links: new LinkOrder(this.#clock),
        tree,
      };
      this.#status = 'started';
      detector.start();
      this.#logger.info('listening', { address: formatHostPort(address, port), id: this.id });
      if (options.signal?.aborted) {
        await this.stop();
        throw options.signal.reason;
      }
      return self;
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
   * members and registers this node; this node then announces itself to the listed members
   * (up to `timings.announceLimit` of them; gossip tells the rest). A member that does not
   * answer is reported in `failed` and not added; it does not abort the join.
   *
   * @param entry - `'host:port'`, `'http(s)://host:port'`, or a {@link Peer}
   * @throws {NotStartedError} `ERR_NOT_STARTED`
   * @throws {InvalidAddressError} `ERR_INVALID_ADDRESS` for a malformed address or this node's own
   * @throws {ConnectFailedError} `ERR_CONNECT_FAILED` when the entry point cannot be reached or refuses
   */
  async connect(entry: Target, options: CallOptions = {}): Promise<ConnectReport> {
    const run = this.#requireStarted();
    options.signal?.throwIfAborted();
    const target = parseAddress(entry);
    if (this.#isSelfAddress(target.host, target.port)) {
      throw new InvalidAddressError(
        `cannot connect to ${formatHostPort(target.host, target.port)}: that is this node`,
      );
    }
    const where = formatHostPort(target.host, target.port);
    const call = scope(run.shutdown.signal, options.signal);
    try {
      let res: OutboundResponse;
      try {
        res = await this.#client.request(
          {
            address: target.host,
            port: target.port,
            kind: 'tsp2p',
            ...(target.scheme ? { scheme: target.scheme } : {}),
          },
          this.#seal(MessageType.Connect),
          call.signal,
          this.#options.requestTimeoutMs,
          // The entry point may be gop2p, which refuses the ordinary Host header.
          this.#options.compat === 'gop2p',
        );
      } catch (err) {
        if (options.signal?.aborted) throw options.signal.reason;
        throw new ConnectFailedError(`cannot connect to ${where}: ${(err as Error).message}`, { cause: err });
      }
      if (res.status !== 200) {
        const line = firstLine(res.body);
        throw new ConnectFailedError(`${where} refused to connect: ${res.status} ${line}`.trim(), {
          cause: new PeerRefusedError(res.status, line),
        });
      }
      const entryKind: PeerKind = res.headers[Headers.id] ? 'tsp2p' : 'gop2p';
      if (entryKind === 'gop2p' && !this.#options.compat) {
        // It registered us; undo that before refusing to stay.
        void this.#client
          .request(
            { address: target.host, port: target.port, kind: 'gop2p' },
            this.#seal(MessageType.Disconnect),
            run.shutdown.signal,
            this.#options.leaveTimeoutMs,
          )
          .catch(() => undefined);
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
      const entryPeer = peerFromAnswer(target.host, target.port, entryKind, res);
      const failed = await this.#announce(run, target.host, entryPeer, list.value, call.signal);
      options.signal?.throwIfAborted();
      if (run.shutdown.signal.aborted) throw new StoppedError();
      // gop2p adds the entry point last.
      run.membership.join(entryPeer, entryKind);
      this.#connected = true;
      run.detector.gossipNow();
      this.#logger.info('connected', {
        entry: where,
        members: run.membership.liveCount,
        failed: failed.length,
      });
      return { entry: entryPeer, members: this.members(), failed };
    } finally {
      call.done();
    }
  }

  /** Announces this node to the members an entry point listed; registers those that answer. */
  async #announce(
    run: Running,
    entryHost: string,
    entryPeer: Peer,
    listed: readonly WirePeer[],
    signal: AbortSignal,
  ): Promise<DeliveryFailure[]> {
    const seen = new Set<string>([formatHostPort(entryPeer.address, entryPeer.port)]);
    const candidates: { peer: Peer; kind: PeerKind; inc: number }[] = [];
    for (const wire of listed) {
      // An unspecified address in a gop2p list means "where the entry point is".
      const address = isUnspecifiedAddress(wire.address) ? entryHost : wire.address;
      const key = formatHostPort(address, wire.port);
      if (seen.has(key) || this.#isSelfAddress(address, wire.port) || wire.id === this.id) continue;
      seen.add(key);
      const kind: PeerKind = wire.id ? 'tsp2p' : 'gop2p';
      candidates.push({
        peer: peerOf(wire.id ?? addressId(address, wire.port), address, wire.port, wire.name),
        kind,
        inc: wire.inc ?? 0,
      });
    }
    const failed: DeliveryFailure[] = [];
    const usable = candidates.filter((c) => {
      if (c.kind === 'gop2p' && !this.#options.compat) {
        failed.push({ peer: c.peer, error: new ProtocolError('a gop2p member needs compat mode') });
        return false;
      }
      return true;
    });
    // gop2p announces to everyone; in a large network, gossip carries the news past the first
    // `announceLimit` members (gop2p members always get a direct announcement: they cannot gossip).
    shuffle(usable, this.#random);
    const limit = this.#options.timings.announceLimit;
    const direct = usable.filter((c, i) => i < limit || c.kind === 'gop2p');
    const rest = usable.filter((c, i) => !(i < limit || c.kind === 'gop2p'));
    // The newcomer already has the list: the members need not send theirs back (gop2p members
    // ignore the flag and answer with their list, which is then ignored, as gop2p does).
    const body = this.#seal(MessageType.Connect, { announce: true });
    await Promise.all(
      direct.map(async (c) => {
        try {
          const answer = await this.#client.post(
            { address: c.peer.address, port: c.peer.port, kind: c.kind },
            body,
            signal,
            this.#options.requestTimeoutMs,
          );
          const kind: PeerKind = answer.headers[Headers.id] ? 'tsp2p' : c.kind;
          run.membership.join(
            peerFromAnswer(c.peer.address, c.peer.port, kind, answer, c.peer.name),
            kind,
            c.inc,
          );
        } catch (err) {
          if (signal.aborted) return;
          failed.push({ peer: c.peer, error: asP2PError(err) });
          this.#logger.warn('member did not answer the announcement', {
            peer: formatHostPort(c.peer.address, c.peer.port),
            err,
          });
        }
      }),
    );
    for (const c of rest) {
      run.membership.apply({
        id: c.peer.id,
        address: c.peer.address,
        port: c.peer.port,
        state: 'alive',
        inc: c.inc,
        ...(c.peer.name !== undefined ? { name: c.peer.name } : {}),
      });
    }
    return failed;
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
    const run = this.#requireStarted();
    if (!this.#connected) throw new NotConnectedError();
    options.signal?.throwIfAborted();
    const bytes = this.#payload(data);
    const id = this.#newId();
    const live = run.membership.live();
    if (this.#treeMode(live.length)) {
      // Plumtree: in full along the tree, as ids to the other peers of the view.
      const plan = run.tree.originate(id, bytes);
      const report = await this.#deliver(run, plan.msg, plan.targets, options.signal);
      this.#metrics.recordSend('broadcast', report.delivered.length, report.failed.length);
      return report;
    }
    const gossip = this.#gossipMode(live.length);
    // In gossip mode the message goes to `fanout` random members, and travels on from there.
    const targets = gossip ? shuffle([...live], this.#random).slice(0, this.#fanout(live.length)) : live;
    const msg = this.#outbound(MessageType.Broadcast, id, bytes, undefined, gossip ? 0 : undefined);
    const report = await this.#deliver(run, msg, targets, options.signal);
    this.#metrics.recordSend('broadcast', report.delivered.length, report.failed.length);
    return report;
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
    const run = this.#requireStarted();
    if (!this.#connected) throw new NotConnectedError();
    options.signal?.throwIfAborted();
    const list = Array.isArray(to) ? (to as readonly Target[]) : [to as Target];
    if (list.length === 0) throw new InvalidAddressError('send() needs at least one recipient');
    const targets = new Map<string, Member>();
    for (const t of list) {
      const m = this.#resolveMember(run, t);
      targets.set(m.peer.id, m);
    }
    const bytes = this.#payload(data);
    const id = this.#newId();
    const recipients = [...targets.values()].map((m) => wirePeer(m));
    const msg = this.#outbound(MessageType.Direct, id, bytes, recipients);
    const report = await this.#deliver(run, msg, [...targets.values()], options.signal);
    this.#metrics.recordSend('direct', report.delivered.length, report.failed.length);
    return report;
  }

  /**
   * Leaves the network gracefully: tells every member (bounded by `leaveTimeoutMs`), then
   * clears the member table. The node stays started and may connect again. Idempotent.
   */
  async disconnect(options: CallOptions = {}): Promise<LeaveReport> {
    options.signal?.throwIfAborted();
    const run = this.#run;
    if (!this.#connected || run === undefined) {
      this.#connected = false;
      return { notified: [], failed: [] };
    }
    // Let what is queued go out first, within the leave timeout.
    await Promise.all([...run.queues.values()].map((q) => q.flush(this.#options.leaveTimeoutMs)));
    const members = run.membership.live();
    this.#connected = false;
    run.membership.leaveNetwork();
    // The member table is cleared without events: the tree's view must be cleared with it.
    run.tree.tree.removeAll();
    this.#closeQueues(run, new NotConnectedError('this node left the network'));
    const body = this.#seal(MessageType.Disconnect);
    const notified: Peer[] = [];
    const failed: DeliveryFailure[] = [];
    const call = scope(run.shutdown.signal, options.signal);
    await Promise.all(
      members.map(async (m) => {
        try {
          await this.#client.post(destinationOf(m), body, call.signal, this.#options.leaveTimeoutMs);
          notified.push(m.peer);
        } catch (err) {
          failed.push({ peer: m.peer, error: asP2PError(err) });
        }
      }),
    ).finally(call.done);
    options.signal?.throwIfAborted();
    this.#logger.info('disconnected', { notified: notified.length, failed: failed.length });
    return { notified, failed };
  }

  /**
   * Leaves (if connected), stops the failure detector, closes the server and every connection,
   * and ends every `messages()` iterator. Afterwards the process can exit on its own. Idempotent.
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
    const run = this.#run;
    if (run !== undefined) this.#closeQueues(run, new StoppedError());
    run?.detector.stop();
    run?.shutdown.abort(new StoppedError());
    run?.links.clear();
    run?.membership.close();
    run?.web?.close();
    await this.#transport.close();
    for (const inbox of [...this.#inboxes]) inbox.end();
    this.#inboxes.clear();
    this.#connected = false;
    this.#run = undefined;
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
      this.#metrics.endedInboxDrops += inbox.dropped;
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
    const web = this.#run?.web;
    if (web !== undefined && isWebRequest(req)) return web.handle(req);
    const res = await this.#handleProtocol(req);
    if (res.status >= 400) this.#metrics.refuse(res.status, refusalReason(res.status, res.body));
    return res;
  }

  async #handleProtocol(req: InboundRequest): Promise<InboundResponse> {
    if (req.path !== '/') return text(404, `not found: ${req.path}`);
    if (req.method !== 'POST') {
      if (req.body.length === 0 && (req.method === 'GET' || req.method === 'HEAD')) {
        return text(400, 'No valid Message provided: send a JSON envelope with POST /');
      }
      return text(405, `Method not allowed: ${req.method}; use POST /`);
    }
    const run = this.#run;
    if (this.#status !== 'started' || run === undefined) return text(503, 'node is shutting down');
    const opened = openEnvelope(req.body, req.headers);
    if (!opened.ok) return text(opened.refusal.status, opened.refusal.message);
    this.#metrics.requests.inc({ type: messageTypeName(opened.value.type) });
    // Signature, key, timestamp and replay, before anything else happens (src/security/).
    const admitted = this.#guard.admit(opened.value, req.body, req.headers);
    if (admitted.kind === 'refused') return text(admitted.refusal.status, admitted.refusal.message);
    if (admitted.kind === 'duplicate') return text(200, '');
    const res = await this.#receive(run, opened.value, req.remoteAddress);
    // Refused after all (a sender not yet known, say): its retry must not look like a replay.
    if (admitted.kind === 'signed' && res.status >= 300) admitted.release();
    return res;
  }

  async #receive(run: Running, envelope: Envelope, remoteAddress: string): Promise<InboundResponse> {
    const tsp2p = isTsp2pEnvelope(envelope);
    if (!tsp2p && !this.#options.compat) {
      return text(403, "gop2p-style request refused: this node does not run with compat: 'gop2p'");
    }
    if (!tsp2p && envelope.type > MessageType.Direct) return text(405, 'Method not allowed');
    // gop2p's chat example advertises 0.0.0.0: such a sender is reached at its source address.
    const address = isUnspecifiedAddress(envelope.from.address) ? remoteAddress : envelope.from.address;
    const port = envelope.from.port;
    if ((tsp2p && envelope.from.id === this.id) || this.#isSelfAddress(address, port)) {
      return text(400, 'You can not connect with yourself.');
    }
    const m = run.membership;
    const senderId = tsp2p ? envelope.from.id! : addressId(address, port);
    // An unsigned (gop2p) request can prove nothing: it may not speak for a signed member's address.
    const holder = tsp2p ? undefined : m.getByAddress(address, port);
    if (holder !== undefined && holder.kind === 'tsp2p' && isLive(holder.state)) {
      return text(403, 'Peer not registered: that address is a tsp2p member, whose requests are signed');
    }

    if (envelope.type === MessageType.Connect) {
      const existing = m.liveMember(tsp2p ? senderId : undefined, address, port);
      if (existing === undefined && !m.hasRoom()) {
        return text(503, `member table is full (${this.#options.maxMembers} members)`);
      }
      // The answer lists the members as they stood before the newcomer: never self, never it.
      const list =
        envelope.announce === true
          ? []
          : m
              .live()
              .filter((x) => x.peer.id !== senderId)
              .map((x) => wirePeer(x));
      m.join(
        peerOf(senderId, address, port, envelope.from.name),
        tsp2p ? 'tsp2p' : 'gop2p',
        envelope.from.inc ?? 0,
      );
      if (tsp2p) m.applyAll(envelope.m);
      this.#connected = true;
      run.detector.gossipNow();
      return {
        status: 200,
        body: encodeMemberList(list),
        contentType: 'text/plain',
        headers: this.#answerHeaders(),
      };
    }

    // A tsp2p node that speaks membership (ping, ping-req, sync, gossip) announces itself by
    // doing so: while views converge, a receiver may not know it yet, and refusing it would stop
    // the very gossip that spreads the news. Its alive state counts like any gossiped update
    // (news of its death or departure at a higher or equal incarnation still wins).
    if (tsp2p && envelope.type >= MessageType.Ping) {
      m.apply({
        id: senderId,
        address,
        port,
        state: 'alive',
        inc: envelope.from.inc ?? 0,
        ...(envelope.from.name !== undefined ? { name: envelope.from.name } : {}),
      });
    }
    const sender = tsp2p ? m.get(senderId) : m.getByAddress(address, port);
    // A leave that gossip delivered before the leaver's own notice: already done.
    if (envelope.type === MessageType.Disconnect && sender?.state === 'left') return text(200, '');
    // Members, and members declared dead (they may not know yet, and can refute): a departed or
    // unknown sender is not registered.
    if (sender === undefined || !(isLive(sender.state) || sender.state === 'dead')) {
      return text(403, 'Peer not registered');
    }
    m.touch(sender.peer.id);
    if (tsp2p) m.applyAll(envelope.m);

    switch (envelope.type) {
      case MessageType.Disconnect:
        m.leave(sender.peer.id);
        if (m.liveCount === 0) this.#connected = false;
        return text(200, '');
      case MessageType.Ping:
      case MessageType.Gossip:
        return ack({ ack: true, m: m.piggyback() });
      case MessageType.Sync:
        return ack({ m: m.state() });
      case MessageType.PingReq:
        return ack({ ack: await this.#pingFor(run, envelope.target), m: m.piggyback() });
      case MessageType.Batch:
        return this.#deliverBatch(run, sender.peer, envelope);
      default:
        return this.#deliverLocally(sender.peer, envelope);
    }
  }

  /** A ping-req: ping `target` on the sender's behalf. */
  async #pingFor(run: Running, target: WirePeer | undefined): Promise<boolean> {
    if (target === undefined) return false;
    const member =
      (target.id !== undefined ? run.membership.get(target.id) : undefined) ??
      run.membership.getByAddress(target.address, target.port);
    if (member === undefined) return false;
    return run.net.ping(member, this.#options.timings.probeTimeoutMs, run.shutdown.signal);
  }

  /**
   * A batch: its messages are numbered on the sender's stream, and each number is delivered
   * once, in order, however often the sender retries (an answer lost on the way back makes it
   * send the same messages again).
   */
  async #deliverBatch(run: Running, from: Peer, envelope: Envelope): Promise<InboundResponse> {
    const msgs = envelope.msgs;
    if (msgs === undefined || envelope.stream === undefined || envelope.seq === undefined) {
      return text(400, 'No valid Message provided: a batch needs stream, seq and msgs');
    }
    const decoded = msgs.map((msg) => decodeData(isTreeControl(msg) ? undefined : msg.data));
    for (const data of decoded) {
      if (data.length > this.#options.maxMessageBytes) {
        return text(413, `message too large: limit is ${this.#options.maxMessageBytes} bytes`);
      }
    }
    const taken = run.links.take(from.id, envelope.stream, envelope.seq, msgs.length, envelope.base);
    // A batch that overtook its predecessor waits for it, so that delivery stays in order.
    if (taken === STREAM_ENDED) {
      return text(409, 'this stream has ended: the sender has started a newer one to this node');
    }
    const first = typeof taken === 'number' ? taken : await taken;
    if (first === undefined) {
      return text(503, 'earlier messages of this stream have not arrived: retry');
    }
    for (let i = first; i < msgs.length; i++) {
      const msg = msgs[i]!;
      if (isTreeControl(msg)) {
        run.tree.control(from, msg);
        continue;
      }
      if (msg.hops !== undefined) {
        if (msg.tree === true) run.tree.receive(from, msg, decoded[i]!, envelope.from.key);
        else this.#receiveGossip(run, from, msg, decoded[i]!, envelope.from.key);
        continue;
      }
      const message = new ReceivedMessage(
        msg.id,
        msg.type === MessageType.Broadcast ? 'broadcast' : 'direct',
        from,
        decoded[i]!,
      );
      this.#hand(message);
    }
    return text(200, '');
  }

  /**
   * A gossiped broadcast: delivered once (by origin and id: it may come along several paths),
   * then passed on to `fanout` random members other than the one it came from and its origin,
   * while it is under the hop limit.
   */
  #receiveGossip(
    run: Running,
    sender: Peer,
    msg: BatchedMessage,
    data: Uint8Array,
    senderKey: string | undefined,
  ): void {
    const originWire = msg.origin;
    const origin =
      originWire === undefined
        ? sender
        : (run.membership.get(originWire.id ?? '')?.peer ??
          peerOf(
            originWire.id ?? addressId(originWire.address, originWire.port),
            originWire.address,
            originWire.port,
            originWire.name,
          ));
    const seenKey = `${origin.id}/${msg.id}`;
    if (this.#seen.has(seenKey, this.#clock.now())) return;
    // A relay's signature covers only its batch: a relayed message needs its origin's own.
    if (originWire !== undefined && !this.#guard.checkRelayed(originWire, msg, msg.sig)) {
      this.#logger.warn('relayed message refused: not signed by its origin', { id: msg.id, from: sender.id });
      return;
    }
    if (!this.#seen.add(seenKey, this.#clock.now())) return;
    const hops = msg.hops ?? 0;
    const message = new ReceivedMessage(msg.id, 'broadcast', origin, data, hops);
    this.#hand(message);
    if (hops + 1 >= this.#options.maxHops) return;
    const live = run.membership
      .live()
      .filter((m) => m.peer.id !== sender.id && m.peer.id !== origin.id && m.kind === 'tsp2p');
    const targets = shuffle([...live], this.#random).slice(0, this.#fanout(live.length + 1));
    if (targets.length === 0) return;
    const relayed = JSON.stringify({
      type: msg.type,
      id: msg.id,
      ts: msg.ts,
      data: msg.data,
      hops: hops + 1,
      origin: originWire ?? { ...wireOf(origin), ...(senderKey !== undefined ? { key: senderKey } : {}) },
      ...(msg.sig !== undefined ? { sig: msg.sig } : {}),
    });
    const out: OutboundMessage = {
      id: msg.id,
      fragment: relayed,
      bytes: relayed.length,
      single: () => this.#seal(MessageType.Broadcast, { id: msg.id, data }),
      deadline: this.#clock.now() + this.#options.deliveryTimeoutMs,
    };
    for (const m of targets) {
      const q = this.#queueFor(run, m);
      // Relaying is best effort beyond the queue's retries: the other paths cover a loss.
      if (q.hasRoom(out.bytes)) q.enqueue(out).done.catch(() => undefined);
    }
  }

  /** Hands a received message to the application: every iterator, the count, the event. */
  #hand(message: ReceivedMessage): void {
    for (const inbox of this.#inboxes) inbox.push(message);
    this.#metrics.received.inc({ type: message.type });
    this.#emitLater('message', message);
  }

  #gossipMode(_members: number): boolean {
    return this.#options.dissemination === 'gossip';
  }

  /** Plumtree: by option, or with `'auto'` above `gossipThreshold` members. */
  #treeMode(members: number): boolean {
    const d = this.#options.dissemination;
    return d === 'plumtree' || (d === 'auto' && members > this.#options.gossipThreshold);
  }

  /** The Plumtree dissemination of a run: its actions go out through the member queues. */
  #plumtree(membership: Membership, signal: AbortSignal): PlumtreeGlue {
    return new PlumtreeGlue({
      selfId: this.id,
      clock: this.#clock,
      random: this.#random,
      logger: this.#logger,
      membership,
      // Plumtree's view needs only to stay connected (IHAVE and GRAFT make up for losses):
      // ⌈ln n⌉ + 1, as the paper's active view, unless the `fanout` option says otherwise.
      fanout: (n) => this.#options.fanout ?? Math.ceil(Math.log(Math.max(n, 1))) + 1,
      deliveryTimeoutMs: this.#options.deliveryTimeoutMs,
      enqueue: (m, out) => {
        const run = this.#run;
        if (run === undefined) return;
        const q = this.#queueFor(run, m);
        if (q.hasRoom(out.bytes)) q.enqueue(out).done.catch(() => undefined);
      },
      checkRelayed: (origin, fields, sig) => this.#guard.checkRelayed(origin, fields, sig),
      sign: (fields) => signGossip(fields, this.#identity.privateKey),
      seal: (id, data) => this.#seal(MessageType.Broadcast, { id, data }),
      hand: (message) => this.#hand(message),
      treeMode: () => this.#treeMode(membership.liveCount),
      signal,
    });
  }

  #fanout(members: number): number {
    return this.#options.fanout ?? Math.ceil(Math.log(Math.max(members, 1))) + 7;
  }

  #deliverLocally(from: Peer, envelope: Envelope): InboundResponse {
    const data = decodeData(envelope.data);
    if (data.length > this.#options.maxMessageBytes) {
      return text(413, `message too large: limit is ${this.#options.maxMessageBytes} bytes`);
    }
    const id = envelope.id ?? this.#newId();
    if (envelope.id !== undefined && !this.#seen.add(`${from.id}/${envelope.id}`, this.#clock.now())) {
      return text(200, ''); // a duplicate: acknowledged, not delivered twice
    }
    const message = new ReceivedMessage(
      id,
      envelope.type === MessageType.Broadcast ? 'broadcast' : 'direct',
      from,
      data,
    );
    this.#hand(message);
    return text(200, '');
  }

  // ---- helpers --------------------------------------------------------------------------------

  /** The web and operations endpoints for a node that listens at `self` (bound to `port`). */
  #webHandler(self: Peer, port: number, token: string): WebHandler {
    const hosts = new Set(['127.0.0.1', 'localhost', '::1', self.address.toLowerCase()]);
    if (!isUnspecifiedAddress(this.#options.host)) hosts.add(this.#options.host.toLowerCase());
    const localAddresses = new Set<string>();
    for (const list of Object.values(networkInterfaces())) {
      for (const info of list ?? []) if (!isLoopback(info.address)) localAddresses.add(info.address);
    }
    return new WebHandler({
      node: this,
      access: { token, hosts, ports: new Set([port, self.port]), localAddresses },
      metrics: () => this.#metrics.render(this.#metricsSnapshot()),
      refuse: (status, reason) => this.#metrics.refuse(status, reason),
      privateReads: () => this.#keyring.enabled,
      logger: this.#logger,
    });
  }

  #metricsSnapshot(): Parameters<NodeMetrics['render']>[0] {
    const run = this.#run;
    const members = { alive: 0, suspect: 0, dead: 0, left: 0 };
    for (const m of run?.membership.all() ?? []) members[m.state]++;
    let buffered = 0;
    let dropped = this.#metrics.endedInboxDrops;
    for (const inbox of this.#inboxes) {
      buffered += inbox.length;
      dropped += inbox.dropped;
    }
    const d = run?.detector;
    const deliveryQueues = { queues: run?.queues.size ?? 0, messages: 0, bytes: 0 };
    for (const q of run?.queues.values() ?? []) {
      deliveryQueues.messages += q.length;
      deliveryQueues.bytes += q.bytes;
    }
    return {
      started: this.#status === 'started',
      connected: this.#connected,
      members,
      ...(d !== undefined ? { detector: { ...d.stats, awareness: d.awareness } } : {}),
      gossipQueue: run?.membership.gossipQueued ?? 0,
      deliveryQueues,
      inboxes: { iterators: this.#inboxes.size, buffered, dropped },
      webClients: run?.web?.clients ?? 0,
      security: this.#guard.summary(),
    };
  }

  #onMemberEvent(event: MemberEvent, peer: Peer): void {
    this.#run?.tree.onMemberEvent(event, peer);
    if (event === 'member:fail' || event === 'member:leave') {
      // Nothing more can reach it: give up what waits for it, now, so that reports resolve.
      const run = this.#run;
      const q = run?.queues.get(peer.id);
      if (run !== undefined && q !== undefined) {
        run.queues.delete(peer.id);
        const where = formatHostPort(peer.address, peer.port);
        q.close(
          new PeerUnreachableError(
            event === 'member:fail' ? `${where} was declared dead` : `${where} left the network`,
          ),
        );
      }
    }
    this.#emitLater(event, peer);
  }

  #answerHeaders(): Record<string, string> {
    const h: Record<string, string> = { [Headers.id]: this.id, [Headers.version]: String(PROTOCOL_VERSION) };
    if (this.#options.name !== undefined) h[Headers.name] = encodeURIComponent(this.#options.name);
    return h;
  }

  /** A message, serialized once for every receiver. */
  #outbound(
    type: typeof MessageType.Broadcast | typeof MessageType.Direct,
    id: string,
    data: Uint8Array,
    to: WirePeer[] | undefined,
    hops?: number,
  ): OutboundMessage {
    const ts = Date.now();
    const b64 = encodeData(data);
    // The payload goes in as it is: base64 needs no escaping, and a large one is not scanned again.
    const rest = JSON.stringify({
      ...(to !== undefined ? { to } : {}),
      // A gossiped message carries its origin's signature to the nodes relays pass it to.
      ...(hops !== undefined
        ? { hops, sig: signGossip({ type, id, ts, data: b64 }, this.#identity.privateKey) }
        : {}),
    });
    const fragment = Buffer.concat([
      Buffer.from(`${JSON.stringify({ type, id, ts }).slice(0, -1)},"data":"`),
      Buffer.from(b64, 'latin1'),
      Buffer.from(rest === '{}' ? '"}' : `",${rest.slice(1)}`),
    ]);
    let single: Sealed | undefined;
    return {
      id,
      fragment,
      bytes: fragment.length,
      // gop2p peers get the message alone, in a classic envelope: built once, on first need.
      single: () => {
        single ??= this.#seal(type, { id, data, ...(to !== undefined ? { to } : {}) });
        return single;
      },
      deadline: this.#clock.now() + this.#options.deliveryTimeoutMs,
    };
  }

  /**
   * Queues `msg` to each member and resolves once each has acknowledged it or it was given up.
   * Backpressure first: a full queue makes the call wait for room (or refuse, by option).
   */
  async #deliver(
    run: Running,
    msg: OutboundMessage,
    members: readonly Member[],
    signal: AbortSignal | undefined,
  ): Promise<DeliveryReport> {
    const queues = members.map((m) => this.#queueFor(run, m));
    const full = queues.filter((q) => !q.hasRoom(msg.bytes));
    if (full.length > 0) {
      if (this.#options.backpressure === 'reject') {
        throw new BackpressureError(
          `the outbound queue of ${full.length} member(s) is full (maxQueueMessages / maxQueueBytes)`,
        );
      }
      try {
        await Promise.all(full.map((q) => q.waitForRoom(msg.bytes, signal)));
      } catch (err) {
        // Queues that let this call in counted it as queued: let the next callers in instead.
        for (const q of full) q.recheckRoom();
        throw err;
      }
    }
    const handles = queues.map((q) => q.enqueue(msg));
    const settled = Promise.allSettled(handles.map((h) => h.done));
    let results: PromiseSettledResult<void>[];
    if (signal === undefined) results = await settled;
    else {
      const aborted = new Promise<never>((_, reject) => {
        const onAbort = (): void => {
          for (const h of handles) h.cancel();
          reject(signal.reason);
        };
        if (signal.aborted) onAbort();
        else {
          signal.addEventListener('abort', onAbort, { once: true });
          void settled.finally(() => signal.removeEventListener('abort', onAbort));
        }
      });
      results = await Promise.race([settled, aborted]);
    }
    const delivered: Peer[] = [];
    const failed: DeliveryFailure[] = [];
    results.forEach((r, i) => {
      const peer = members[i]!.peer;
      if (r.status === 'fulfilled') delivered.push(peer);
      else failed.push({ peer, error: asP2PError(r.reason) });
    });
    if (failed.length > 0) {
      this.#logger.warn('delivery failed', {
        id: msg.id,
        failed: failed.map((f) => `${formatHostPort(f.peer.address, f.peer.port)} ${f.error.code}`),
      });
    }
    return { id: msg.id, delivered, failed };
  }

  #queueFor(run: Running, m: Member): PeerQueue {
    let q = run.queues.get(m.peer.id);
    if (q === undefined) {
      const o = this.#options;
      q = new PeerQueue(destinationOf(m), m.kind === 'tsp2p', {
        client: this.#client,
        clock: this.#clock,
        random: this.#random,
        signal: run.shutdown.signal,
        // A new stream per queue: a queue rebuilt after a leave, a death or a reconnect numbers
        // from 1 again, and the receiver would take those numbers for retries of the old ones.
        stream: this.#newId(),
        limits: {
          maxBatchMessages: o.maxBatchMessages,
          maxBatchBytes: o.maxBatchBytes,
          maxQueueMessages: o.maxQueueMessages,
          maxQueueBytes: o.maxQueueBytes,
          requestTimeoutMs: o.requestTimeoutMs,
          retryBaseMs: DEFAULTS.retryBaseMs,
          retryMaxMs: DEFAULTS.retryMaxMs,
          maxInFlight: DEFAULTS.maxInFlightBatches,
          pipelineBytes: DEFAULTS.pipelineBytes,
        },
        sealBatch: (stream, seq, fragments, base) =>
          sealBatch(
            { from: this.#from(run), id: this.#newId(), ts: Date.now(), stream, seq, base },
            fragments,
            this.#sessions.signerFor(m.peer.id, this.#signer),
          ),
        // The member holds no session key for us (it restarted, or never saw our key): sign.
        retryAtOnce: (error) => {
          if (error.status !== 401 || !error.message.includes(NO_SESSION)) return false;
          this.#sessions.forget(m.peer.id);
          return true;
        },
        onBatch: (messages, ok) => this.#metrics.recordBatch(messages, ok),
      });
      run.queues.set(m.peer.id, q);
    }
    return q;
  }

  #closeQueues(run: Running, reason: P2PError): void {
    for (const q of run.queues.values()) q.close(reason);
    run.queues.clear();
  }

  #seal(
    type: MessageType,
    extra: {
      id?: string;
      data?: Uint8Array;
      to?: WirePeer[];
      m?: readonly WireMemberUpdate[];
      target?: WirePeer;
      announce?: boolean;
    } = {},
  ): Sealed {
    return sealEnvelope(
      {
        type,
        from: this.#from(this.#run!),
        id: extra.id ?? this.#newId(),
        ts: Date.now(),
        ...(extra.data !== undefined ? { data: extra.data } : {}),
        ...(extra.to !== undefined ? { to: extra.to } : {}),
        ...(extra.m !== undefined ? { m: extra.m } : {}),
        ...(extra.target !== undefined ? { target: extra.target } : {}),
        ...(extra.announce === true ? { announce: true } : {}),
      },
      this.#signer,
    );
  }

  /** This node as the sender of an envelope. */
  #from(run: Running): WirePeer {
    const self = run.self;
    const from: WirePeer = {
      address: self.address,
      port: self.port,
      id: this.id,
      inc: run.membership.incarnation,
      xkey: this.#sessions.publicKey,
    };
    if (self.name !== undefined) from.name = self.name;
    return from;
  }

  /**
   * Replaces the network secrets at run time, for rotation: every listed secret is accepted,
   * the first is used to send; an empty list turns the secret off. Rotate in three steps across
   * the network, each on every node before the next: `[old, new]`, then `[new, old]`, then
   * `[new]`. No message is refused on the way.
   *
   * @throws {InvalidOptionsError} `ERR_INVALID_OPTIONS` for a secret shorter than 16 characters.
   */
  setSecret(secret: SecretInput): void {
    this.#keyring.set(secret);
    this.#logger.info('network secret changed', { keys: this.#keyring.keyIds.length });
  }

  /** The HTTP transport the options describe (limits, TLS). */
  #httpTransport(): HttpTransport {
    const l = this.#options.limits;
    const tls = resolveTls(this.#options.tls);
    return new HttpTransport({
      logger: this.#logger,
      headersTimeoutMs: l.headersTimeoutMs,
      requestTimeoutMs: l.requestTimeoutMs,
      maxConnections: l.maxConnections,
      rateLimit: { ratePerSecond: l.ratePerSecond, burst: l.rateBurst, limitLoopback: l.rateLimitLoopback },
      ...(tls !== undefined ? { tls } : {}),
    });
  }

  #requireStarted(): Running {
    if (this.#status !== 'started' || this.#run === undefined) {
      if (this.#status === 'stopping') throw new StoppedError('the node is stopping');
      throw new NotStartedError();
    }
    return this.#run;
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

  #resolveMember(run: Running, t: Target): Member {
    const m = run.membership;
    if (typeof t === 'object' && t !== null && 'id' in t && typeof t.id === 'string') {
      const byId = m.get(t.id);
      if (byId !== undefined && isLive(byId.state)) return byId;
    }
    if (typeof t === 'string' && !t.includes(':')) {
      const byId = m.get(t);
      if (byId !== undefined && isLive(byId.state)) return byId;
    }
    const { host, port } = parseAddress(t as PeerAddressInput);
    const member = m.getByAddress(host, port);
    if (member === undefined || !isLive(member.state)) {
      throw new UnknownPeerError(`${formatHostPort(host, port)} is not a member`);
    }
    return member;
  }

  #isSelfAddress(host: string, port: number): boolean {
    const self = this.#run?.self;
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

  /**
   * A new message id: unique per node, and cheap, since every message needs one. 9 random bytes
   * drawn at construction (72 bits: ids of different nodes do not collide), then a counter.
   */
  #newId(): string {
    this.#idPrefix ??= Buffer.from(this.#random.bytes(9)).toString('base64url');
    return `${this.#idPrefix}${(this.#idCounter++).toString(36)}`;
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

function ack(value: { ack?: boolean; m?: readonly WireMemberUpdate[] }): InboundResponse {
  const body: { ack?: boolean; m?: readonly WireMemberUpdate[] } = {};
  if (value.ack !== undefined) body.ack = value.ack;
  if (value.m !== undefined && value.m.length > 0) body.m = value.m;
  return { status: 200, body: JSON.stringify(body), contentType: 'application/json' };
}

function peerOf(id: string, address: string, port: number, name?: string): Peer {
  return Object.freeze(
    name === undefined || name === '' ? { id, address, port } : { id, address, port, name },
  );
}

function peerFromAnswer(
  address: string,
  port: number,
  kind: PeerKind,
  res: OutboundResponse,
  name?: string,
): Peer {
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

function destinationOf(m: Member): { address: string; port: number; kind: PeerKind } {
  return { address: m.peer.address, port: m.peer.port, kind: m.kind };
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
