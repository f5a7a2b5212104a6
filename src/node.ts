/**
 * The node: composes identity, transport, membership, failure detector and inbox, and runs the
 * lifecycle `start → connect → … → disconnect → stop`.
 *
 * @module
 */

import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { wallTime } from './clock.js';
import { Inboxes } from './delivery/inbox.js';
import { ListenerLane } from './delivery/listener-lane.js';
import type { ReceivedMessage } from './delivery/received-message.js';
import {
  AlreadyStartedError,
  InvalidAddressError,
  InvalidOptionsError,
  InvalidTopicError,
  MessageTooLargeError,
  NotConnectedError,
  NotStartedError,
  StoppedError,
} from './errors.js';
import { join } from './membership/join.js';
import { notifyLeave } from './membership/leave.js';
import type { MemberEvent } from './membership/membership.js';
import type { MemberUpdate } from './membership/merge.js';
import { Inbound } from './node/inbound.js';
import { Journal } from './node/journal.js';
import { metricsSnapshot } from './node/metrics-snapshot.js';
import { memberRecord, Rejoiner } from './node/rejoin.js';
import { createParts, createRun, joinDeps, type NodeParts, type Running } from './node/run.js';
import { isSelfAddress, memberInfos, payloadBytes, resolveMembers, sentMessage } from './node/targets.js';
import { historyConversation } from './node/web-history.js';
import { advertisedHost, type WebWiring, webHandler } from './node/web-wiring.js';
import { maxBodyBytes, type NodeOptions, resolveOptions } from './options.js';
import {
  formatHostPort,
  type Peer,
  type PeerRecordFields,
  parseAddress,
  peerOf,
  sameRecordFields,
} from './peer.js';
import { MessageType } from './protocol/schema.js';
import { TOPIC_LIMITS, validateTags, validateTopic } from './rooms.js';
import type { SecretInput } from './security/keyring.js';
import { openStore } from './store/open.js';
import type { Store } from './store/store.js';
import { scope } from './transport/peer-client.js';
import type { InboundRequest, InboundResponse } from './transport/transport.js';
import type {
  CallOptions,
  ConnectReport,
  DeliveryReport,
  DisconnectOptions,
  HistoryOptions,
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
import { isWebRequest } from './web/web-handler.js';

/** A refused gop2p peer is logged (and reported as `peer:refused`) at most once per this. */
const GOP2P_REFUSAL_LOG_MS = 60_000;

// Set by Node's static block (it reaches the private run); read through `simulation` below.
let simulationHooks: SimulationHooks | undefined;

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
  static {
    simulationHooks = {
      selfUpdate: (node) => node.#requireStarted().membership.selfUpdate(),
      seedView: (node, updates) => {
        const run = node.#requireStarted();
        const changed = run.membership.seed(updates);
        if (run.membership.liveCount > 0) node.#connected = true;
        return changed;
      },
    };
  }

  /** What the node and every run are made of (src/node/run.ts). */
  readonly #parts: NodeParts;
  /** The protocol requests (`POST /`): src/node/inbound.ts. */
  readonly #inbound: Inbound;
  /** The open `messages()` iterators. */
  readonly #inboxes = new Inboxes<Message>(
    (dropped) => this.#parts.logger.warn('messages() iterator dropped messages', { dropped }),
    (buffered) =>
      this.#parts.logger.warn(
        'a messages() reader is slower than the messages arriving: its oldest buffered messages are dropped (tsp2p_inbox_dropped_messages_total)',
        { buffered },
      ),
  );
  /** The `message` listeners' lane: called in slices, bounded (src/delivery/listener-lane.ts). */
  readonly #lane: ListenerLane<Message>;
  #status: NodeStatus = 'stopped';
  #run: Running | undefined;
  #connected = false;
  #stopping: Promise<void> | undefined;
  /** Resolves when a `start()` in progress has settled (started, or failed back to stopped). */
  #startSettled: Promise<void> = Promise.resolve();
  #settleStart: () => void = () => {};
  /** This node's tags (option `tags`, `setTags()`); kept across stop and start. */
  #tags: Record<string, string>;
  /** This node's topics, in the order subscribed; kept across stop and start. */
  #topics: string[] = [];
  /** This run's self without tags and topics. */
  #selfBase: Peer | undefined;
  /** This run's rejoining of the members its store knew (src/node/rejoin.ts). */
  #rejoiner: Rejoiner | undefined;
  /** The incarnation last saved in the store. */
  #savedIncarnation = -1;
  /** Members declared failed in this run: their return triggers catch-up. */
  readonly #failed = new Set<string>();

  /**
   * @throws {InvalidOptionsError} `ERR_INVALID_OPTIONS` when an option is invalid.
   */
  constructor(options: NodeOptions = {}) {
    super();
    this.#parts = createParts(resolveOptions(options), () => this.self);
    this.#tags = { ...this.#parts.options.tags };
    this.#lane = new ListenerLane<Message>(this.#parts.options.inboxSize, {
      emit: (message) => this.emit('message', message),
      listening: () => this.listenerCount('message') > 0,
      // The node's clock: on a simulation's manual clock a slice never ends, so every message
      // is emitted at once, as the simulation expects.
      now: () => this.#parts.clock.now(),
      onFull: (waiting) =>
        this.#parts.logger.warn(
          "a 'message' listener is slower than the messages arriving: new messages are refused (503 busy) until it catches up, and their senders retry (tsp2p_listener_waiting_messages)",
          { waiting },
        ),
    });
    this.#inbound = new Inbound({
      ...this.#parts,
      selfId: this.id,
      running: () => (this.#status === 'started' ? this.#run : undefined),
      isSelfAddress: (host, port) => this.#isSelfAddress(host, port),
      setConnected: (connected) => {
        this.#connected = connected;
      },
      onGop2pRefused: (from, remoteAddress) => this.#gop2pRefused(from, remoteAddress),
      listenersBehind: () => this.#lane.full,
    });
  }

  /** When each refused gop2p peer was last reported, by `'address:port'`. */
  readonly #gop2pRefusals = new Map<string, number>();

  /**
   * A gop2p peer was refused because this node does not run in compat mode: one log line and
   * one `peer:refused` event per peer per minute, saying how to let it in.
   */
  #gop2pRefused(from: { address: string; port: number }, remoteAddress: string): void {
    const key = formatHostPort(from.address, from.port);
    const now = this.#parts.clock.now();
    const last = this.#gop2pRefusals.get(key);
    if (last !== undefined && now - last < GOP2P_REFUSAL_LOG_MS) return;
    if (this.#gop2pRefusals.size >= 1024) this.#gop2pRefusals.clear();
    this.#gop2pRefusals.set(key, now);
    const message = `refused gop2p node ${key} (from ${remoteAddress}): this node does not run in compat mode`;
    this.#parts.logger.warn(`${message}; start it with compat: 'gop2p' to let gop2p nodes in`, {
      peer: key,
      remote: remoteAddress,
    });
    this.#emitLater('peer:refused', {
      address: from.address,
      port: from.port,
      remoteAddress,
      reason: 'gop2p-compat-off',
      message,
    });
  }

  /** The lifecycle state. */
  get status(): NodeStatus {
    return this.#status;
  }

  /** This node's id: its public-key fingerprint. Known before `start()`. */
  get id(): string {
    return this.#parts.identity.id;
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
    const scheme = this.#parts.options.tls === undefined ? 'http' : 'https';
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
   * incarnation. Once started and in a network, the new entry is pushed to every live member
   * directly, and the call resolves once each has answered (those that fail to answer within
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
    // The topic's history: its latest messages for a newcomer to it, what was missed otherwise.
    this.#run?.catchUp.noteChannel(`t:${topic}`);
    this.#topics = [...this.#topics, topic];
    this.#saveTopics();
    await this.#restate({ topics: this.#topics }, options.signal);
    if (this.#connected) this.#run?.catchUp.soonFor(`t:${topic}`);
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
    this.#saveTopics();
    this.#run?.causal.forget(topic);
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
    const checked = validateTags(tags, this.#parts.options.maxTagBytes);
    options.signal?.throwIfAborted();
    this.#tags = checked;
    await this.#restate({ tags: checked }, options.signal);
  }

  /** Keeps this node's topics in its store (with `dataDir`, the next start takes them up again). */
  #saveTopics(): void {
    try {
      this.#run?.journal.store.setSubscriptions(this.#topics);
    } catch (err) {
      this.#parts.logger.warn('could not save the topics', { err });
    }
  }

  /**
   * A page of history from this node's log, oldest first: the messages of `topic`, or the
   * direct messages exchanged with the peer `with`, or (neither) the plain broadcasts; this
   * node's own messages included (their `from` is {@link Node.self}). Messages past `retention`
   * are not returned. With `dataDir`, history survives restarts.
   *
   * @example
   * ```ts
   * for (const msg of await node.history({ topic: 'ops', limit: 50 })) console.log(msg.text);
   * ```
   * @throws {NotStartedError} `ERR_NOT_STARTED`
   * @throws {InvalidOptionsError} `ERR_INVALID_OPTIONS` for `topic` with `with`, or a bad `limit`
   * @throws {InvalidTopicError} `ERR_INVALID_TOPIC` for a bad topic name
   * @throws {InvalidAddressError} `ERR_INVALID_ADDRESS` for a malformed `with`
   */
  async history(options: HistoryOptions = {}): Promise<Message[]> {
    const run = this.#requireStarted();
    options.signal?.throwIfAborted();
    if (options.topic !== undefined && options.with !== undefined)
      throw new InvalidOptionsError('history: give topic or with, not both');
    if (options.topic !== undefined) validateTopic(options.topic);
    const peer = options.with === undefined ? undefined : this.#peerIdOf(run, options.with);
    run.journal.flush();
    const entries = run.journal.store.history({
      ...(options.topic !== undefined ? { topic: options.topic } : {}),
      ...(peer !== undefined ? { with: peer } : {}),
      ...(options.limit !== undefined ? { limit: options.limit } : {}),
    });
    return run.journal.history(entries);
  }

  /** The node id a `with` target names: a member's id or address, a Peer, or an id as it is. */
  #peerIdOf(run: Running, target: Target): string {
    if (typeof target === 'object' && target !== null && 'id' in target) return target.id;
    if (typeof target === 'string' && run.membership.get(target) !== undefined) return target;
    const { host, port } = parseAddress(target);
    const member = run.membership.getByAddress(host, port);
    if (member !== undefined) return member.peer.id;
    const known = run.journal.store.members().find((m) => m.address === host && m.port === port);
    return known?.id ?? formatHostPort(host, port);
  }

  /** States new tags or topics in this node's entry, and pushes it to the live members. */
  async #restate(fields: PeerRecordFields, signal: AbortSignal | undefined): Promise<void> {
    const run = this.#run;
    if (run === undefined) return;
    const update = run.membership.restate(fields);
    this.#refreshSelf(run);
    if (!run.membership.active) return;
    const members = run.membership.live().filter((m) => m.kind === 'tsp2p');
    const timeout = this.#parts.options.requestTimeoutMs;
    const linked =
      signal === undefined ? run.shutdown.signal : AbortSignal.any([signal, run.shutdown.signal]);
    await Promise.all(members.map((m) => run.net.push(m, [update], timeout, linked)));
    signal?.throwIfAborted();
  }

  /** `self` with this node's current tags and topics. */
  #refreshSelf(run: Running): void {
    const fields = { tags: this.#tags, topics: this.#topics };
    if (sameRecordFields(run.self, fields)) return;
    const base = this.#selfBase ?? run.self;
    run.self = peerOf(base.id, base.address, base.port, base.name, fields);
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
    return this.#publishFrom('local', topic, data, options);
  }

  async #publishFrom(
    origin: SentMessage['origin'],
    topic: string,
    data: Payload,
    options: CallOptions,
  ): Promise<DeliveryReport> {
    validateTopic(topic);
    const run = this.#requireStarted();
    if (!this.#connected) throw new NotConnectedError();
    options.signal?.throwIfAborted();
    const metrics = this.#parts.metrics;
    let bytes: Uint8Array;
    try {
      bytes = payloadBytes(data, this.#parts.options.maxMessageBytes);
    } catch (err) {
      if (err instanceof MessageTooLargeError) metrics.recordTopicDropped('too_large');
      throw err;
    }
    // It follows what this node delivered in the topic, and everything after it follows it.
    const id = run.sealer.newId();
    const deps = run.causal.frontier(topic);
    run.causal.published(topic, id);
    const report = await run.dissemination.publish(topic, id, bytes, options.signal, deps);
    metrics.recordSend('broadcast', report.delivered.length, report.failed.length);
    metrics.recordTopic(topic, 'out');
    // A publish that reached no one is visible in /metrics (the report says so to the caller).
    if (report.delivered.length === 0) {
      metrics.recordTopicDropped(report.failed.length === 0 ? 'no_subscribers' : 'undelivered');
    }
    return this.#sent(origin, [], bytes, report, topic);
  }

  /** The live members (alive or suspect), self excluded. */
  members(): Peer[] {
    return this.#run?.membership.live().map((m) => m.peer) ?? [];
  }

  /** Every member this node knows of, with its state; dead and departed ones while remembered. */
  memberStates(): MemberInfo[] {
    return memberInfos(this.#run?.membership.all() ?? [], this.#parts.clock.now());
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
    let store: Store | undefined;
    try {
      // The store first: a locked, damaged or newer database fails the start before anything listens.
      store = await openStore({
        ...(this.#parts.options.dataDir !== undefined ? { dataDir: this.#parts.options.dataDir } : {}),
        retention: this.#parts.options.retention,
        now: () => wallTime(this.#parts.clock),
      });
      const opened = store;
      // With a dataDir, the topics of the last run are this node's again (unless set since).
      if (this.#topics.length === 0) this.#topics = opened.subscriptions();
      const bound = await this.#parts.transport.listen({
        host: this.#parts.options.host,
        port: this.#parts.options.port,
        maxBodyBytes: maxBodyBytes(this.#parts.options.maxMessageBytes, this.#parts.options.maxMembers),
        handler: (req) => this.#handle(req),
        onRefused: (status, reason) => this.#parts.metrics.refuse(status, reason),
        // A peer closed a kept-alive connection: its process may have crashed. A probe finds
        // out in milliseconds (a crashed process's host refuses the connection).
        onConnectionLost: (host, port) => {
          const run = this.#status === 'started' ? this.#run : undefined;
          const member = run?.membership.liveMember(undefined, host, port);
          if (member !== undefined) run?.detector.probeNow(member.peer.id);
        },
      });
      const adv = this.#parts.options.advertise;
      const address = adv?.host ?? advertisedHost(bound.host);
      const port = adv?.port ?? bound.port;
      const self = peerOf(this.id, address, port, this.#parts.options.name);
      this.#selfBase = self;
      const token = randomBytes(18).toString('base64url');
      const handler = this.#parts.options.web
        ? webHandler(this.#webWiring(), self, bound.port, token)
        : undefined;
      const journal = new Journal({
        store: opened,
        self: () => this.#run?.self ?? self,
        publicKey: Buffer.from(this.#parts.identity.publicKey).toString('base64url'),
        clock: this.#parts.clock,
        logger: this.#parts.logger,
        // What the log takes as new goes on through the causal order (src/delivery/causal.ts).
        deliver: (messages) => {
          if (this.#run !== undefined) this.#run.causal.offerAll(messages);
          else for (const m of messages) this.#hand(m);
        },
        onGap: (origin) => this.#run?.catchUp.soon(origin),
      });
      this.#run = createRun(
        this.#parts,
        self,
        { handler, token },
        {
          onMemberEvent: (event, peer) => this.#onMemberEvent(event, peer),
          deliver: (message) => this.#hand(message),
          subscribed: (topic) => this.#topics.includes(topic),
          selfFields: () => ({ tags: this.#tags, topics: this.#topics }),
          listenersBehind: () => this.#lane.full,
        },
        journal,
      );
      this.#refreshSelf(this.#run);
      const detector = this.#run.detector;
      this.#status = 'started';
      this.#settleStart();
      detector.start();
      this.#saveIncarnation();
      this.#run.catchUp.start(detector);
      this.#startRejoin(this.#run);
      this.#parts.logger.info('listening', { address: formatHostPort(address, port), id: this.id });
      if (options.signal?.aborted) {
        await this.stop();
        throw options.signal.reason;
      }
      return this.#run.self;
    } catch (err) {
      if (this.#status === 'starting') {
        this.#status = 'stopped';
        this.#settleStart();
        await this.#parts.transport.close({ graceMs: 0 }).catch(() => undefined);
        store?.close();
      }
      throw err;
    }
  }

  /**
   * Joins a network through an entry point, as gop2p does: the entry point answers with its
   * members and registers this node; this node then announces itself to the listed members
   * (up to `timings.announceLimit` of them; gossip tells the rest). A member that does not
   * answer is reported in `failed` and not added; it does not abort the join. An entry point
   * that does not answer within `requestTimeoutMs` is asked once more before the call fails.
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
    const call = scope(run.shutdown.signal, options.signal);
    try {
      const { entry: entryPeer, failed } = await join(
        joinDeps(this.#parts, run, (host, port) => this.#isSelfAddress(host, port)),
        target,
        {
          call: call.signal,
          caller: options.signal,
          shutdown: run.shutdown.signal,
        },
      );
      this.#connected = true;
      run.detector.gossipNow();
      // Members that joined at the same time may have missed each other: a push-pull soon.
      run.detector.syncSoon();
      // Back in a network: fetch what was missed (a newcomer: the latest history).
      run.catchUp.afterJoin(entryPeer.id);
      this.#parts.logger.info('connected', {
        entry: formatHostPort(target.host, target.port),
        members: run.membership.liveCount,
        failed: failed.length,
      });
      return { entry: entryPeer, members: this.members(), failed };
    } finally {
      call.done();
    }
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
    const bytes = payloadBytes(data, this.#parts.options.maxMessageBytes);
    const report = await run.dissemination.broadcast(run.sealer.newId(), bytes, options.signal);
    this.#parts.metrics.recordSend('broadcast', report.delivered.length, report.failed.length);
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
    const members = resolveMembers(run.membership, to);
    const bytes = payloadBytes(data, this.#parts.options.maxMessageBytes);
    const report = await run.dissemination.direct(run.sealer.newId(), bytes, members, options.signal);
    this.#parts.metrics.recordSend('direct', report.delivered.length, report.failed.length);
    return this.#sent(
      origin,
      members.map((m) => m.peer),
      bytes,
      report,
    );
  }

  /** Tells the listeners of `message:sent` (later, as every event); returns the report. */
  #sent(
    origin: SentMessage['origin'],
    to: Peer[],
    data: Payload,
    report: DeliveryReport,
    topic?: string,
  ): DeliveryReport {
    if (this.listenerCount('message:sent') > 0) {
      this.#emitLater('message:sent', sentMessage(report, origin, to, data, topic));
    }
    return report;
  }

  /**
   * Leaves the network gracefully: tells every member (bounded by `leaveTimeoutMs`), then
   * clears the member table. The node stays started and may connect again. Idempotent.
   *
   * With `dataDir`, a leave is on purpose: the member snapshot is cleared, and the next start
   * does not rejoin, unless `rejoinOnStart` (what a program that is closing wants; `stop()`
   * keeps the snapshot too).
   */
  async disconnect(options: DisconnectOptions = {}): Promise<LeaveReport> {
    options.signal?.throwIfAborted();
    const run = this.#run;
    if (!this.#connected || run === undefined) {
      this.#connected = false;
      // Still rejoining after a start: leaving stops that too.
      if (run !== undefined) this.#leftOnPurpose(run, options);
      return { notified: [], failed: [] };
    }
    // The whole leave takes at most leaveTimeoutMs, whatever the members' state (a member that
    // crashed a moment ago is still listed, and its queue never drains): what is queued gets
    // half of it to go out, and the notice the rest.
    const leaveTimeoutMs = this.#parts.options.leaveTimeoutMs;
    const started = this.#parts.clock.now();
    await run.outbox.flush(Math.floor(leaveTimeoutMs / 2));
    const members = [...run.membership.live()];
    this.#connected = false;
    this.#leftOnPurpose(run, options);
    run.membership.leaveNetwork();
    // The member table is cleared without events: the tree's view must be cleared with it.
    run.dissemination.clear();
    run.outbox.closeQueues(new NotConnectedError('this node left the network'));
    const notice = run.sealer.seal(MessageType.Disconnect);
    const call = scope(run.shutdown.signal, options.signal);
    const report = await notifyLeave(
      this.#parts.client,
      members,
      notice,
      call.signal,
      Math.max(1, leaveTimeoutMs - (this.#parts.clock.now() - started)),
    ).finally(call.done);
    this.#parts.gop2p?.clear();
    options.signal?.throwIfAborted();
    this.#parts.logger.info('disconnected', {
      notified: report.notified.length,
      failed: report.failed.length,
    });
    return report;
  }

  /**
   * After a leave: no more rejoining in this run, and (unless stopping, or `rejoinOnStart`) the
   * member snapshot is cleared, so that the next start from this dataDir does not rejoin.
   */
  #leftOnPurpose(run: Running, options: DisconnectOptions): void {
    this.#rejoiner?.cancel();
    if (this.#status === 'stopping' || options.rejoinOnStart === true) return;
    try {
      for (const m of run.journal.store.members()) run.journal.store.deleteMember(m.id);
    } catch (err) {
      this.#parts.logger.debug('could not clear the member snapshot', { err });
    }
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
      this.#parts.logger.warn('leave failed during stop', { err });
    }
    const run = this.#run;
    run?.outbox.closeQueues(new StoppedError());
    run?.detector.stop();
    run?.shutdown.abort(new StoppedError());
    run?.links.clear();
    if (run !== undefined) {
      this.#parts.incarnations.last = run.membership.incarnation;
      this.#saveIncarnation();
    }
    run?.membership.close();
    run?.web?.close();
    await this.#parts.transport.close();
    run?.journal.flush();
    run?.journal.store.close();
    this.#inboxes.endAll();
    this.#lane.clear();
    this.#connected = false;
    this.#run = undefined;
    this.#status = 'stopped';
    this.#parts.logger.info('stopped');
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
    const capacity = options.bufferSize ?? this.#parts.options.inboxSize;
    return this.#inboxes.open(capacity, options.signal, this.#status === 'stopping');
  }

  async #handle(req: InboundRequest): Promise<InboundResponse> {
    const web = this.#run?.web;
    if (web !== undefined && isWebRequest(req)) return web.handle(req);
    return this.#inbound.handle(req);
  }

  /** Hands a received message to the application: every iterator, the count, the event. */
  #hand(message: ReceivedMessage): void {
    this.#inboxes.push(message);
    this.#parts.metrics.recordReceived(message.type);
    if (message.topic !== undefined) this.#parts.metrics.recordTopic(message.topic, 'in');
    this.#lane.push(message);
  }

  /** What the web endpoints need from this node. */
  #webWiring(): WebWiring {
    return {
      node: this,
      // What the page and the API send is marked as theirs in the `message:sent` event.
      write: {
        broadcast: async (data, options) =>
          this.#sent('web', [], data, await this.#broadcast(data, options ?? {})),
        send: (to, data, options) => this.#sendFrom('web', to, data, options ?? {}),
        publish: (topic, data, options) => this.#publishFrom('web', topic, data, options ?? {}),
      },
      listenHost: this.#parts.options.host,
      metrics: () =>
        this.#parts.metrics.render(
          metricsSnapshot({
            started: this.#status === 'started',
            connected: this.#connected,
            run: this.#run,
            inboxes: this.#inboxes.stats(),
            listeners: this.#lane.stats(),
            guard: this.#parts.guard,
          }),
        ),
      refuse: (status, reason) => this.#parts.metrics.refuse(status, reason),
      privateReads: () => this.#parts.keyring.enabled,
      wallNow: () => wallTime(this.#parts.clock),
      logger: this.#parts.logger,
      recent: historyConversation(this),
    };
  }

  /**
   * With the store: rejoins the members of its snapshot (src/node/rejoin.ts), unless this node
   * is already in a network.
   */
  #startRejoin(run: Running): void {
    const rejoiner = new Rejoiner({
      store: run.journal.store,
      membership: run.membership,
      clock: this.#parts.clock,
      random: this.#parts.random,
      logger: this.#parts.logger,
      selfId: this.id,
      connect: (m, signal) => this.connect(peerOf(m.id, m.address, m.port, m.name), { signal }),
      connected: () => this.#connected,
      mergeIntervalMs: this.#parts.options.timings.reconnectIntervalMs,
      signal: run.shutdown.signal,
    });
    this.#rejoiner = rejoiner;
    rejoiner.start();
  }

  /** Keeps this node's incarnation in its store: a restart from its dataDir starts above it. */
  #saveIncarnation(): void {
    const run = this.#run;
    if (run === undefined) return;
    try {
      const inc = run.membership.incarnation;
      if (inc !== this.#savedIncarnation) {
        run.journal.store.setIncarnation(inc);
        this.#savedIncarnation = inc;
      }
    } catch (err) {
      this.#parts.logger.debug('could not save the incarnation', { err });
    }
  }

  /** Keeps a member's state in the store's snapshot (failed and departed members too). */
  #saveMember(peer: Peer): void {
    const run = this.#run;
    const m = run?.membership.get(peer.id);
    if (run === undefined || m === undefined) return;
    try {
      run.journal.store.saveMembers([memberRecord(m, wallTime(this.#parts.clock), this.#parts.clock.now())]);
    } catch (err) {
      this.#parts.logger.debug('could not save the member snapshot', { err });
    }
    this.#saveIncarnation();
  }

  #onMemberEvent(event: MemberEvent, peer: Peer): void {
    this.#saveMember(peer);
    // A member back after it had failed (a healed partition, a restart): catch up with it.
    if (event === 'member:fail') this.#failed.add(peer.id);
    else if (event === 'member:join' && this.#failed.delete(peer.id)) this.#run?.catchUp.returned(peer.id);
    this.#run?.dissemination.onMemberEvent(event, peer);
    const names = this.#parts.gop2p;
    if (names !== undefined && this.#run?.membership.get(peer.id)?.kind === 'gop2p') {
      // Learn early how a new gop2p member names itself: member lists for gop2p newcomers need it.
      if (event === 'member:join') void names.discover(peer.address, peer.port);
      else if (event === 'member:fail' || event === 'member:leave') names.forget(peer.address, peer.port);
    }
    if (event === 'member:fail' || event === 'member:leave') {
      // Nothing more can reach it: give up what waits for it, now, so that reports resolve.
      this.#run?.outbox.memberGone(event, peer);
    }
    if (event === 'member:suspect') this.#run?.detector.suspected(peer.id);
    if (event === 'member:fail') {
      // A death is news every member needs soon (a crash is detected in about a second): pass
      // it on at once rather than at the next gossip round.
      const run = this.#run;
      queueMicrotask(() => run?.detector.gossipNow());
    }
    this.#emitLater(event, peer);
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
    this.#parts.keyring.set(secret);
    this.#parts.logger.info('network secret changed', { keys: this.#parts.keyring.keyIds.length });
  }

  #requireStarted(): Running {
    if (this.#status !== 'started' || this.#run === undefined) {
      if (this.#status === 'stopping') throw new StoppedError('the node is stopping');
      throw new NotStartedError();
    }
    return this.#run;
  }

  #isSelfAddress(host: string, port: number): boolean {
    return isSelfAddress(this.#run?.self, this.#parts.options.host, host, port);
  }

  #emitLater<K extends keyof NodeEvents>(event: K, ...args: NodeEvents[K]): void {
    process.nextTick(() => {
      (this.emit as (e: K, ...a: NodeEvents[K]) => boolean)(event, ...args);
    });
  }
}

/** What {@link simulation} offers. */
export interface SimulationHooks {
  /** The node's own signed entry (alive, at its incarnation), as it gossips it. */
  selfUpdate(node: Node): MemberUpdate;
  /**
   * Starts a started node in a network whose converged view it is given: every update goes
   * through the membership's checks as gossip would bring it (`Membership.seed`), the node's
   * member events fire, nothing is queued for gossip, and the node counts as connected.
   * Returns how many records changed.
   */
  seedView(node: Node, updates: readonly MemberUpdate[]): number;
}

/**
 * For simulations of many nodes in one process (`npm run bench -- sim-membership`), not part of
 * the package's API: start each node with the converged view of a network (the signed entries
 * of all its members) instead of joining them one by one, which at 10,000 nodes would take
 * hours of CPU. Only the traffic that would have brought the view is skipped.
 */
export const simulation: SimulationHooks = {
  selfUpdate: (node) => simulationHooks!.selfUpdate(node),
  seedView: (node, updates) => simulationHooks!.seedView(node, updates),
};
