/**
 * The node: composes identity, transport, membership, failure detector and inbox, and runs the
 * lifecycle `start → connect → … → disconnect → stop`.
 *
 * @module
 */

import { randomBytes } from 'node:crypto';
import { EventEmitter, setMaxListeners } from 'node:events';
import { networkInterfaces } from 'node:os';
import { type Clock, systemClock, wallTime } from './clock.js';
import { Dissemination } from './delivery/dissemination.js';
import { Inbox } from './delivery/inbox.js';
import { LinkOrder } from './delivery/link-order.js';
import { destinationOf, Outbox, type OutboxOptions } from './delivery/outbox.js';
import type { ReceivedMessage } from './delivery/received-message.js';
import {
  AlreadyStartedError,
  asP2PError,
  ConnectFailedError,
  InvalidAddressError,
  InvalidMessageError,
  InvalidTopicError,
  MessageTooLargeError,
  NotConnectedError,
  NotStartedError,
  ProtocolError,
  StoppedError,
  UnknownPeerError,
} from './errors.js';
import { type Identity, resolveIdentity } from './identity.js';
import { createDebugLogger, type Logger } from './logger.js';
import { type AnnounceDeps, announce, peerFromAnswer } from './membership/announce.js';
import { FailureDetector } from './membership/failure-detector.js';
import type { Member } from './membership/member-table.js';
import { type MemberEvent, Membership } from './membership/membership.js';
import { isLive } from './membership/merge.js';
import { PeerProbeNet } from './membership/probe-net.js';
import { NodeMetrics, timedProbeNet } from './metrics/node-metrics.js';
import { Inbound } from './node/inbound.js';
import { DEFAULTS, maxBodyBytes, type NodeOptions, type ResolvedOptions, resolveOptions } from './options.js';
import {
  formatHostPort,
  isUnspecifiedAddress,
  type Peer,
  type PeerAddressInput,
  type PeerKind,
  type PeerRecordFields,
  parseAddress,
  peerOf,
} from './peer.js';
import { decodeMemberList } from './protocol/codec.js';
import type { EnvelopeSigner } from './protocol/envelope.js';
import { Headers, MessageType } from './protocol/schema.js';
import { MessageIds, Sealer } from './protocol/sealer.js';
import { toWirePeer } from './protocol/wire-peer.js';
import { type Random, systemRandom } from './random.js';
import { TOPIC_LIMITS, validateTags, validateTopic } from './rooms.js';
import { AuthenticatedTransport } from './security/authenticated-transport.js';
import { originSigner } from './security/gossip-signature.js';
import { InboundGuard } from './security/inbound-guard.js';
import { NetworkKeyring, type SecretInput } from './security/keyring.js';
import { SessionKeys } from './security/session-keys.js';
import { identitySigner } from './security/signature.js';
import { HttpTransport } from './transport/http.js';
import { PeerClient, refusedError, scope } from './transport/peer-client.js';
import { resolveTls } from './transport/tls.js';
import type { InboundRequest, InboundResponse, OutboundResponse, Transport } from './transport/transport.js';
import type {
  CallOptions,
  ConnectReport,
  DeliveryFailure,
  DeliveryReport,
  LeaveReport,
  MemberInfo,
  Message,
  MessagesOptions,
  NodeEvents,
  NodeStatus,
  Payload,
  SentMessage,
  Target,
} from './types.js';
import { isLoopback } from './web/access.js';
import { isWebRequest, WebHandler } from './web/web-handler.js';

const utf8Encoder = new TextEncoder();

/** The parts that exist only while the node is started. */
interface Running {
  /** This node as others see it, with its current tags and topics. */
  self: Peer;
  /** Builds and signs every envelope of the run. */
  readonly sealer: Sealer;
  readonly shutdown: AbortController;
  readonly membership: Membership;
  readonly detector: FailureDetector;
  readonly net: PeerProbeNet;
  /** The web and operations endpoints (option `web`), and the token for writes through them. */
  readonly web: WebHandler | undefined;
  readonly webToken: string;
  /** The outbound queues, one per member. */
  readonly outbox: Outbox;
  /** Per sender: the stream and the last sequence number delivered from it. */
  readonly links: LinkOrder;
  /** How broadcasts spread, both ways: src/delivery/dissemination.ts. */
  readonly dissemination: Dissemination;
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
  /** The protocol requests (`POST /`): src/inbound.ts. */
  readonly #inbound: Inbound;
  readonly #inboxes = new Set<Inbox<Message>>();
  readonly #metrics = new NodeMetrics();
  #status: NodeStatus = 'stopped';
  #run: Running | undefined;
  #connected = false;
  /** This node's tags (option `tags`, `setTags()`); kept across stop and start. */
  #tags: Record<string, string>;
  /** This node's topics, in the order subscribed; kept across stop and start. */
  #topics: string[] = [];
  /** This run's self without tags and topics. */
  #selfBase: Peer | undefined;
  #stopping: Promise<void> | undefined;
  /** Resolves when a `start()` in progress has settled (started, or failed back to stopped). */
  #startSettled: Promise<void> = Promise.resolve();
  #settleStart: () => void = () => {};
  /** Message ids, kept across runs. */
  readonly #ids: MessageIds;

  /**
   * @throws {InvalidOptionsError} `ERR_INVALID_OPTIONS` when an option is invalid.
   */
  constructor(options: NodeOptions = {}) {
    super();
    this.#options = resolveOptions(options);
    this.#tags = { ...this.#options.tags };
    this.#clock = this.#options.clock ?? systemClock;
    this.#random = this.#options.random ?? systemRandom;
    this.#logger = this.#options.logger ?? createDebugLogger();
    this.#identity = resolveIdentity(this.#options.identity);
    this.#signer = identitySigner(this.#identity);
    this.#ids = new MessageIds(this.#random);
    this.#sessions = new SessionKeys(this.#identity.id);
    this.#guard = new InboundGuard({
      compat: this.#options.compat === 'gop2p',
      now: () => wallTime(this.#clock),
      maxClockSkewMs: this.#options.maxClockSkewMs,
      sessions: this.#sessions,
    });
    this.#keyring = new NetworkKeyring(this.#options.secret);
    this.#inbound = new Inbound({
      selfId: this.#identity.id,
      options: this.#options,
      guard: this.#guard,
      metrics: this.#metrics,
      running: () => (this.#status === 'started' ? this.#run : undefined),
      isSelfAddress: (host, port) => this.#isSelfAddress(host, port),
      setConnected: (connected) => {
        this.#connected = connected;
      },
    });
    // The web and operations endpoints have their own access rules: no network secret.
    this.#transport = new AuthenticatedTransport(
      this.#options.transport ?? this.#httpTransport(),
      this.#keyring,
      isWebRequest,
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

  /** This node's own topics, in the order it subscribed to them. */
  topics(): string[] {
    return [...this.#topics];
  }

  /** This node's own tags. */
  tags(): Record<string, string> {
    return { ...this.#tags };
  }

  /**
   * The live members subscribed to `topic`, self excluded, as their membership entries say.
   *
   * @throws {InvalidTopicError} `ERR_INVALID_TOPIC` for a name that is not a topic name
   */
  subscribers(topic: string): Peer[] {
    validateTopic(topic);
    return this.members().filter((p) => p.topics?.includes(topic) === true);
  }

  /**
   * Subscribes this node to `topic`: its membership entry lists it from now on, at a raised
   * incarnation. Once started and connected, the new entry is pushed to every live member
   * directly, and the call resolves once each has answered (those that fail to answer in
   * `requestTimeoutMs` are left out: gossip tells them later). From then on, any member's
   * `publish(topic)` reaches this node. Subscribing again to a topic held does nothing.
   *
   * @throws {InvalidTopicError} `ERR_INVALID_TOPIC` for a bad name, or beyond 32 topics
   */
  async subscribe(topic: string, options: CallOptions = {}): Promise<void> {
    validateTopic(topic);
    options.signal?.throwIfAborted();
    if (this.#topics.includes(topic)) return;
    if (this.#topics.length >= TOPIC_LIMITS.perNode) {
      throw new InvalidTopicError(`too many topics: a node holds at most ${TOPIC_LIMITS.perNode}`);
    }
    this.#topics = [...this.#topics, topic];
    await this.#restate({ topics: this.#topics }, options.signal);
  }

  /**
   * Unsubscribes this node from `topic` (a topic not held does nothing); resolves, as
   * {@link Node.subscribe}, once the live members have the new entry.
   *
   * @throws {InvalidTopicError} `ERR_INVALID_TOPIC` for a bad name
   */
  async unsubscribe(topic: string, options: CallOptions = {}): Promise<void> {
    validateTopic(topic);
    options.signal?.throwIfAborted();
    if (!this.#topics.includes(topic)) return;
    this.#topics = this.#topics.filter((t) => t !== topic);
    await this.#restate({ topics: this.#topics }, options.signal);
  }

  /**
   * Replaces this node's tags: a membership update at a raised incarnation, so the newest tags
   * always win; pushed to the live members as {@link Node.subscribe} does.
   *
   * @throws {TagsTooLargeError} `ERR_TAGS_TOO_LARGE` beyond `maxTagBytes` or the per-tag limits
   * @throws {InvalidOptionsError} `ERR_INVALID_OPTIONS` when `tags` is not a map of strings
   */
  async setTags(tags: Readonly<Record<string, string>>, options: CallOptions = {}): Promise<void> {
    const checked = validateTags(tags, this.#options.maxTagBytes);
    options.signal?.throwIfAborted();
    this.#tags = checked;
    await this.#restate({ tags: checked }, options.signal);
  }

  /** States new tags or topics in this node's entry, and pushes it to the live members. */
  async #restate(fields: PeerRecordFields, signal: AbortSignal | undefined): Promise<void> {
    const run = this.#run;
    if (run === undefined) return;
    const update = run.membership.restate(fields);
    this.#refreshSelf(run);
    if (!run.membership.active) return;
    const members = run.membership.live().filter((m) => m.kind === 'tsp2p');
    const linked =
      signal === undefined ? run.shutdown.signal : AbortSignal.any([signal, run.shutdown.signal]);
    await Promise.all(members.map((m) => run.net.push(m, [update], this.#options.requestTimeoutMs, linked)));
    signal?.throwIfAborted();
  }

  /** `self` with this node's current tags and topics. */
  #refreshSelf(run: Running): void {
    const base = this.#selfBase ?? run.self;
    run.self = peerOf(base.id, base.address, base.port, base.name, {
      tags: this.#tags,
      topics: this.#topics,
    });
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
    this.#startSettled = new Promise<void>((resolve) => {
      this.#settleStart = resolve;
    });
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
      this.#selfBase = self;
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
        tags: this.#tags,
        topics: this.#topics,
        emit: (event, peer) => this.#onMemberEvent(event, peer),
      });
      const sealer = new Sealer({
        self,
        xkey: this.#sessions.publicKey,
        incarnation: membership,
        signer: this.#signer,
        clock: this.#clock,
        ids: this.#ids,
      });
      const net = new PeerProbeNet(this.#client, membership, sealer, this.#logger);
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
      const outbox = this.#outbox(sealer, shutdown.signal);
      const dissemination = this.#dissemination(membership, outbox, sealer, shutdown.signal);
      this.#run = {
        self,
        sealer,
        shutdown,
        membership,
        detector,
        net,
        web,
        webToken,
        outbox,
        links: new LinkOrder(this.#clock),
        dissemination,
      };
      this.#refreshSelf(this.#run);
      this.#status = 'started';
      this.#settleStart();
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
        this.#settleStart();
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
          run.sealer.seal(MessageType.Connect),
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
        const refused = refusedError(res);
        throw new ConnectFailedError(`${where} refused to connect: ${res.status} ${refused.body}`.trim(), {
          cause: refused,
        });
      }
      const entryKind: PeerKind = res.headers[Headers.id] ? 'tsp2p' : 'gop2p';
      if (entryKind === 'gop2p' && !this.#options.compat) {
        // It registered us; undo that before refusing to stay.
        void this.#client
          .request(
            { address: target.host, port: target.port, kind: 'gop2p' },
            run.sealer.seal(MessageType.Disconnect),
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
      const failed = await announce(this.#announceDeps(run), target.host, entryPeer, list.value, call.signal);
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

  /** What {@link announce} needs, for a run. */
  #announceDeps(run: Running): AnnounceDeps {
    return {
      selfId: this.id,
      settings: {
        compat: this.#options.compat === 'gop2p',
        announceLimit: this.#options.timings.announceLimit,
        requestTimeoutMs: this.#options.requestTimeoutMs,
      },
      random: this.#random,
      logger: this.#logger,
      client: this.#client,
      membership: run.membership,
      isSelfAddress: (host, port) => this.#isSelfAddress(host, port),
      // The newcomer already has the list: the members need not send theirs back (gop2p members
      // ignore the flag and answer with their list, which is then ignored, as gop2p does).
      announcement: () => run.sealer.seal(MessageType.Connect, { announce: true }),
    };
  }

  /**
   * Publishes to `topic`: the message goes to the live members subscribed to it and to no one
   * else (in full up to `gossipThreshold` subscribers, above it by gossip relay among them
   * only). Receivers see it with `msg.topic`. A member whose `subscribe()` resolved before this
   * call gets it. The report names the members it went to directly.
   *
   * @throws {InvalidTopicError} `ERR_INVALID_TOPIC`
   * @throws {NotStartedError} `ERR_NOT_STARTED`
   * @throws {NotConnectedError} `ERR_NOT_CONNECTED`
   * @throws {MessageTooLargeError} `ERR_MESSAGE_TOO_LARGE` when the payload exceeds `maxMessageBytes`
   */
  async publish(topic: string, data: Payload, options: CallOptions = {}): Promise<DeliveryReport> {
    validateTopic(topic);
    const run = this.#requireStarted();
    if (!this.#connected) throw new NotConnectedError();
    options.signal?.throwIfAborted();
    const bytes = this.#payload(data);
    const report = await run.dissemination.publish(topic, run.sealer.newId(), bytes, options.signal);
    this.#metrics.recordSend('broadcast', report.delivered.length, report.failed.length);
    this.#metrics.recordTopic(topic, 'out');
    return report;
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
    return this.#sent('local', [], data, await this.#broadcast(data, options));
  }

  async #broadcast(data: Payload, options: CallOptions): Promise<DeliveryReport> {
    const run = this.#requireStarted();
    if (!this.#connected) throw new NotConnectedError();
    options.signal?.throwIfAborted();
    const bytes = this.#payload(data);
    const report = await run.dissemination.broadcast(run.sealer.newId(), bytes, options.signal);
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
    return this.#sendFrom('local', to, data, options);
  }

  async #sendFrom(
    origin: SentMessage['origin'],
    to: Target | readonly Target[],
    data: Payload,
    options: CallOptions,
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
    const id = run.sealer.newId();
    const recipients = [...targets.values()].map((m) => toWirePeer(m.peer, m));
    const msg = run.outbox.outbound(MessageType.Direct, id, bytes, { to: recipients });
    const report = await run.outbox.deliver(msg, [...targets.values()], options.signal);
    this.#metrics.recordSend('direct', report.delivered.length, report.failed.length);
    return this.#sent(
      origin,
      [...targets.values()].map((m) => m.peer),
      bytes,
      report,
    );
  }

  /** Tells the listeners of `message:sent` (later, as every event); returns the report. */
  #sent(origin: SentMessage['origin'], to: Peer[], data: Payload, report: DeliveryReport): DeliveryReport {
    if (this.listenerCount('message:sent') > 0) {
      const bytes = typeof data === 'string' ? utf8Encoder.encode(data) : data;
      const text = typeof data === 'string' ? data : Buffer.from(data).toString('utf8');
      const type = to.length === 0 ? 'broadcast' : 'direct';
      this.#emitLater('message:sent', { id: report.id, type, to, data: bytes, text, origin, report });
    }
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
    await run.outbox.flush(this.#options.leaveTimeoutMs);
    const members = run.membership.live();
    this.#connected = false;
    run.membership.leaveNetwork();
    // The member table is cleared without events: the tree's view must be cleared with it.
    run.dissemination.clear();
    run.outbox.closeQueues(new NotConnectedError('this node left the network'));
    const body = run.sealer.seal(MessageType.Disconnect);
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
    await this.#startSettled;
    this.#status = 'stopping';
    try {
      await this.disconnect();
    } catch (err) {
      this.#logger.warn('leave failed during stop', { err });
    }
    const run = this.#run;
    run?.outbox.closeQueues(new StoppedError());
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
    return this.#inbound.handle(req);
  }

  /** Hands a received message to the application: every iterator, the count, the event. */
  #hand(message: ReceivedMessage): void {
    for (const inbox of this.#inboxes) inbox.push(message);
    this.#metrics.received.inc({ type: message.type });
    if (message.topic !== undefined) this.#metrics.recordTopic(message.topic, 'in');
    this.#emitLater('message', message);
  }

  /** How broadcasts spread in a run (see {@link Dissemination}). */
  #dissemination(membership: Membership, outbox: Outbox, sealer: Sealer, signal: AbortSignal): Dissemination {
    const o = this.#options;
    return new Dissemination({
      settings: {
        mode: o.dissemination,
        gossipThreshold: o.gossipThreshold,
        fanout: o.fanout,
        maxHops: o.maxHops,
        deliveryTimeoutMs: o.deliveryTimeoutMs,
      },
      clock: this.#clock,
      random: this.#random,
      logger: this.#logger,
      members: membership,
      outbox,
      sealer,
      signer: originSigner(this.#identity.privateKey),
      origins: this.#guard,
      audience: () => membership.live(),
      deliver: (message) => this.#hand(message),
      subscribed: (topic) => this.#topics.includes(topic),
      signal,
    });
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
      // What the page and the API send is marked as theirs in the `message:sent` event.
      write: {
        broadcast: async (data, options) =>
          this.#sent('web', [], data, await this.#broadcast(data, options ?? {})),
        send: (to, data, options) => this.#sendFrom('web', to, data, options ?? {}),
      },
      access: { token, hosts, ports: new Set([port, self.port]), localAddresses },
      metrics: () => this.#metrics.render(this.#metricsSnapshot()),
      refuse: (status, reason) => this.#metrics.refuse(status, reason),
      privateReads: () => this.#keyring.enabled,
      logger: this.#logger,
      wallNow: () => wallTime(this.#clock),
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
    const deliveryQueues = run?.outbox.stats() ?? { queues: 0, messages: 0, bytes: 0 };
    return {
      started: this.#status === 'started',
      connected: this.#connected,
      members,
      ...(d !== undefined ? { detector: { ...d.stats, awareness: d.awareness } } : {}),
      gossipQueue: run?.membership.gossipQueued ?? 0,
      subscriptions:
        this.#topics.length +
        (run?.membership.live() ?? []).reduce((n, m) => n + (m.peer.topics?.length ?? 0), 0),
      deliveryQueues,
      inboxes: { iterators: this.#inboxes.size, buffered, dropped },
      webClients: run?.web?.clients ?? 0,
      security: this.#guard.summary(),
    };
  }

  #onMemberEvent(event: MemberEvent, peer: Peer): void {
    this.#run?.dissemination.onMemberEvent(event, peer);
    if (event === 'member:fail' || event === 'member:leave') {
      // Nothing more can reach it: give up what waits for it, now, so that reports resolve.
      this.#run?.outbox.memberGone(event, peer);
    }
    this.#emitLater(event, peer);
  }

  /** The outbound queues of a run (see {@link Outbox}). */
  #outbox(sealer: Sealer, signal: AbortSignal): Outbox {
    return new Outbox({
      client: this.#client,
      clock: this.#clock,
      random: this.#random,
      logger: this.#logger,
      options: outboxOptions(this.#options),
      signal,
      sessions: this.#sessions,
      sealer,
      onBatch: (messages, ok) => this.#metrics.recordBatch(messages, ok),
    });
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

  #emitLater<K extends keyof NodeEvents>(event: K, ...args: NodeEvents[K]): void {
    process.nextTick(() => {
      (this.emit as (e: K, ...a: NodeEvents[K]) => boolean)(event, ...args);
    });
  }
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

/** The outbound queues' settings, from the node's options. */
function outboxOptions(o: ResolvedOptions): OutboxOptions {
  return {
    maxBatchMessages: o.maxBatchMessages,
    maxBatchBytes: o.maxBatchBytes,
    maxQueueMessages: o.maxQueueMessages,
    maxQueueBytes: o.maxQueueBytes,
    requestTimeoutMs: o.requestTimeoutMs,
    deliveryTimeoutMs: o.deliveryTimeoutMs,
    backpressure: o.backpressure,
    retryBaseMs: DEFAULTS.retryBaseMs,
    retryMaxMs: DEFAULTS.retryMaxMs,
    maxInFlight: DEFAULTS.maxInFlightBatches,
    pipelineBytes: DEFAULTS.pipelineBytes,
  };
}
