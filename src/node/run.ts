/**
 * The parts of a started node, built at each `start()` and wired to one another here, and the
 * settings each part takes from the node's options.
 *
 * @module
 */

import { setMaxListeners } from 'node:events';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { type Clock, systemClock, wallTime } from '../clock.js';
import { Gop2pNames } from '../compat/gop2p-names.js';
import { CausalOrder, DEFAULT_MAX_HELD } from '../delivery/causal.js';
import { Dissemination, type DisseminationSettings } from '../delivery/dissemination.js';
import { LinkOrder } from '../delivery/link-order.js';
import { Outbox, type OutboxOptions } from '../delivery/outbox.js';
import type { ReceivedMessage } from '../delivery/received-message.js';
import { InvalidOptionsError } from '../errors.js';
import { type Identity, resolveIdentity } from '../identity.js';
import { createDebugLogger, type Logger } from '../logger.js';
import { FailureDetector } from '../membership/failure-detector.js';
import type { JoinDeps } from '../membership/join.js';
import { type MemberEvent, Membership, startIncarnation } from '../membership/membership.js';
import { PeerProbeNet } from '../membership/probe-net.js';
import { NodeMetrics } from '../metrics/node-metrics.js';
import { DEFAULTS, type ResolvedOptions } from '../options.js';
import type { Peer, PeerRecordFields } from '../peer.js';
import type { EnvelopeSigner } from '../protocol/envelope.js';
import { MessageIds, Sealer } from '../protocol/sealer.js';
import { type Random, systemRandom } from '../random.js';
import { AuthenticatedTransport } from '../security/authenticated-transport.js';
import { originSigner } from '../security/gossip-signature.js';
import { InboundGuard } from '../security/inbound-guard.js';
import { NetworkKeyring } from '../security/keyring.js';
import { type RecordAuthority, recordAuthority } from '../security/record-signature.js';
import { SessionKeys } from '../security/session-keys.js';
import { identitySigner, sharedKeyCache } from '../security/signature.js';
import type { Store } from '../store/store.js';
import { HttpTransport } from '../transport/http.js';
import { PeerClient } from '../transport/peer-client.js';
import { resolveTls } from '../transport/tls.js';
import type { Transport } from '../transport/transport.js';
import { isWebRequest, type WebHandler } from '../web/web-handler.js';
import { CatchUp } from './catch-up.js';
import type { Journal } from './journal.js';

/** The parts of a node that live as long as it does. */
export interface NodeParts {
  readonly options: ResolvedOptions;
  readonly clock: Clock;
  readonly random: Random;
  readonly logger: Logger;
  readonly identity: Identity;
  /** The network secret's keys: replaced at run time by `setSecret()`. */
  readonly keyring: NetworkKeyring;
  /** The options' transport (HTTP by default), wrapped in the network secret. */
  readonly transport: Transport;
  readonly client: PeerClient;
  /** Signs every envelope this node sends. */
  readonly signer: EnvelopeSigner;
  /** Pairwise session keys: batches to a member whose key we hold carry a MAC, not a signature. */
  readonly sessions: SessionKeys;
  /** Signature, key, timestamp and replay checks of every envelope received. */
  readonly guard: InboundGuard;
  /** Counters, kept for the node's whole life. */
  readonly metrics: NodeMetrics;
  /** Message ids, kept across runs. */
  readonly ids: MessageIds;
  /** Signs this node's self-record; checks the ones gossip brings (src/security/record-signature.ts). */
  readonly records: RecordAuthority;
  /** The incarnation the last run ended at (-1 before the first): the next run starts above it. */
  readonly incarnations: { last: number };
  /** Compat mode: the names of this node and of its gop2p members (src/compat/gop2p-names.ts). */
  readonly gop2p: Gop2pNames | undefined;
}

/** Builds the parts of a node from its resolved options; `self` reads the node's address once started. */
export function createParts(o: ResolvedOptions, self: () => Peer): NodeParts {
  const clock = o.clock ?? systemClock;
  const random = o.random ?? systemRandom;
  const logger = o.logger ?? createDebugLogger();
  const identity = resolveIdentity(o.identity ?? dataDirIdentity(o.dataDir), {
    allowReadable: o.allowReadableIdentity,
  });
  const sessions = new SessionKeys(identity.id);
  const guard = new InboundGuard({
    compat: o.compat === 'gop2p',
    now: () => wallTime(clock),
    maxClockSkewMs: o.maxClockSkewMs,
    sessions,
  });
  const keyring = new NetworkKeyring(o.secret);
  // The web and operations endpoints have their own access rules: no network secret.
  const transport = new AuthenticatedTransport(
    o.transport ?? httpTransport(o, logger),
    keyring,
    isWebRequest,
  );
  const gop2p =
    o.compat === 'gop2p'
      ? new Gop2pNames({
          self: () => {
            try {
              return self();
            } catch {
              return undefined; // not started
            }
          },
          clock,
          logger,
          // An empty POST with this Host header: gop2p answers `400 You can not connect with
          // yourself.` when the Host is its own name, and refuses the empty body otherwise.
          probe: (address, port, host) =>
            transport.request({
              host: address,
              port,
              body: new Uint8Array(0),
              hostHeader: host,
              signal: clock.timeoutSignal(o.requestTimeoutMs),
            }),
        })
      : undefined;
  const metrics = new NodeMetrics();
  return {
    options: o,
    clock,
    random,
    logger,
    identity,
    keyring,
    transport,
    client: new PeerClient(transport, clock, self, gop2p, (type, bytes) =>
      metrics.recordRequest(type, bytes),
    ),
    gop2p,
    signer: identitySigner(identity),
    sessions,
    guard,
    metrics,
    ids: new MessageIds(random),
    records: recordAuthority(identity),
    incarnations: { last: -1 },
  };
}

/** What a run tells its node. */
export interface RunEvents {
  /** A member event, after the membership changed. */
  onMemberEvent(event: MemberEvent, peer: Peer): void;
  /** A new message for the application. */
  deliver(message: ReceivedMessage): void;
  /** Whether the node is subscribed to `topic` now. */
  subscribed(topic: string): boolean;
  /** The node's tags and topics, as its entry states them at the start of the run. */
  selfFields(): PeerRecordFields;
  /** Whether the node's `message` listeners are behind (catch-up waits for them). */
  listenersBehind?(): boolean;
}

/** The parts that exist only while the node is started. */
export interface Running {
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
  /** How broadcasts spread, both ways. */
  readonly dissemination: Dissemination;
  /** The node's log: its store, written before sending and before delivering. */
  readonly journal: Journal;
  /** Anti-entropy over the log: fetching what this node missed, serving what others missed. */
  readonly catchUp: CatchUp;
  /** Causal order within topics: what a publish depends on, and received ones held for theirs. */
  readonly causal: CausalOrder<ReceivedMessage>;
}

/** Builds the parts of a run of a node reached at `self` (its detector not yet started). */
export function createRun(
  p: NodeParts,
  self: Peer,
  web: { readonly handler: WebHandler | undefined; readonly token: string },
  events: RunEvents,
  journal: Journal,
): Running {
  const o = p.options;
  const shutdown = new AbortController();
  // Every in-flight request listens to it.
  setMaxListeners(0, shutdown.signal);
  const membership = new Membership({
    self,
    clock: p.clock,
    random: p.random,
    timings: o.timings,
    logger: p.logger,
    maxMembers: o.maxMembers,
    records: p.records,
    // A time-based start outranks what others remember of an earlier run; a restart of the same
    // node object, or from the same dataDir (its store keeps the incarnation), starts above it.
    incarnation: Math.max(
      startIncarnation(wallTime(p.clock)),
      p.incarnations.last + 1,
      journal.store.incarnation() + 1,
    ),
    ...events.selfFields(),
    emit: (event, peer) => events.onMemberEvent(event, peer),
    // A newcomer states a live member's address: probe the holder now (it keeps the address
    // until it fails to answer).
    onContest: (holder) => detector.probeSoon(holder.peer.id),
    // Others suspected this node or declared it dead: it may be the slow one (Lifeguard).
    onRefute: () => detector.selfSuspected(),
    admitGop2p: o.compat === 'gop2p',
  });
  const sealer = new Sealer({
    self,
    xkey: p.sessions.publicKey,
    incarnation: membership,
    signer: p.signer,
    clock: p.clock,
    ids: p.ids,
  });
  // A gossip, sync or ping-req refused a connection: the member may have crashed; probe it now.
  const net = new PeerProbeNet(
    p.client,
    membership,
    sealer,
    p.logger,
    (m) => detector.probeNow(m.peer.id),
    p.sessions,
  );
  const detector = new FailureDetector({
    membership,
    net,
    clock: p.clock,
    random: p.random,
    timings: o.timings,
    logger: p.logger,
    onPingAnswered: (ms) => p.metrics.probeRtt.observe(ms / 1000),
  });
  const outbox = new Outbox({
    client: p.client,
    clock: p.clock,
    random: p.random,
    logger: p.logger,
    options: outboxOptions(o),
    signal: shutdown.signal,
    sessions: p.sessions,
    sealer,
    onBatch: (messages, ok) => p.metrics.recordBatch(messages, ok),
    // What this node wrote is committed to its log before anything leaves.
    beforeSend: () => journal.flush(),
  });
  const catchUp = new CatchUp({
    journal,
    membership,
    client: p.client,
    sealer,
    clock: p.clock,
    random: p.random,
    logger: p.logger,
    keys: sharedKeyCache,
    selfId: p.identity.id,
    channels: () => ['b', ...(events.selfFields().topics?.map((t) => `t:${t}`) ?? []), `d:${p.identity.id}`],
    historyOnJoin: o.historyOnJoin,
    takenBefore: channelsTakenBefore(journal.store, p.identity.id),
    repairIntervalMs: o.timings.pushPullIntervalMs,
    tailDelayMs: o.requestTimeoutMs,
    liveOwedMs: o.deliveryTimeoutMs + o.requestTimeoutMs,
    ...(events.listenersBehind !== undefined ? { listenersBehind: () => events.listenersBehind!() } : {}),
    requestTimeoutMs: o.requestTimeoutMs,
    signal: shutdown.signal,
  });
  // What the log takes as new passes through the causal order: a publish may wait there for its
  // dependencies; anything else goes straight on.
  const causal = new CausalOrder<ReceivedMessage>({
    clock: p.clock,
    settings: { waitMs: o.causalWaitMs, maxHeld: DEFAULT_MAX_HELD },
    deliver: (message, late) => {
      if (late) message.late = true;
      events.deliver(message);
    },
    // Delivered before, by this run or an earlier one (the log), and not held here.
    known: (ids) => journal.store.has(ids),
    // The member it came from had delivered them: a catch-up session with it fetches them.
    fetch: (_ids, waiting) => catchUp.soon(waiting.from.id),
    signal: shutdown.signal,
  });
  const dissemination = new Dissemination({
    settings: disseminationSettings(o),
    clock: p.clock,
    random: p.random,
    logger: p.logger,
    members: membership,
    outbox,
    sealer,
    signer: originSigner(p.identity.privateKey),
    origins: p.guard,
    audience: () => membership.live(),
    // Through the log (delivered when it takes the message as new), then the causal order.
    deliver: (message) => journal.receive(message),
    subscribed: (topic) => events.subscribed(topic),
    droppedPublish: () => p.metrics.recordTopicDropped('not_subscribed'),
    gossiped: (channel) => catchUp.tail(channel),
    signal: shutdown.signal,
    log: journal,
  });
  return {
    self,
    sealer,
    shutdown,
    membership,
    detector,
    net,
    web: web.handler,
    webToken: web.token,
    outbox,
    links: new LinkOrder(p.clock),
    dissemination,
    journal,
    catchUp,
    causal,
  };
}

/** What joining through an entry point needs, for a run (see `src/membership/join.ts`). */
export function joinDeps(
  p: NodeParts,
  run: Running,
  isSelfAddress: (host: string, port: number) => boolean,
): JoinDeps {
  const o = p.options;
  return {
    selfId: p.identity.id,
    settings: {
      compat: o.compat === 'gop2p',
      announceLimit: o.timings.announceLimit,
      requestTimeoutMs: o.requestTimeoutMs,
      leaveTimeoutMs: o.leaveTimeoutMs,
    },
    random: p.random,
    logger: p.logger,
    client: p.client,
    membership: run.membership,
    sealer: run.sealer,
    isSelfAddress,
    ...(p.gop2p !== undefined ? { gop2p: p.gop2p } : {}),
  };
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

/** Dissemination's settings, from the node's options. */
function disseminationSettings(o: ResolvedOptions): DisseminationSettings {
  return {
    mode: o.dissemination,
    gossipThreshold: o.gossipThreshold,
    fanout: o.fanout,
    maxHops: o.maxHops,
    deliveryTimeoutMs: o.deliveryTimeoutMs,
  };
}

/** The HTTP transport the options describe (limits, TLS). */
function httpTransport(o: ResolvedOptions, logger: Logger): HttpTransport {
  const l = o.limits;
  const tls = resolveTls(o.tls);
  return new HttpTransport({
    logger,
    headersTimeoutMs: l.headersTimeoutMs,
    requestTimeoutMs: l.requestTimeoutMs,
    maxConnections: l.maxConnections,
    rateLimit: { ratePerSecond: l.ratePerSecond, burst: l.rateBurst, limitLoopback: l.rateLimitLoopback },
    ...(tls !== undefined ? { tls } : {}),
  });
}

/**
 * With `dataDir` and no `identity`: the key file in `dataDir` (created, with the directory, when
 * absent), so that the node keeps its id across restarts.
 */
function dataDirIdentity(dataDir: string | undefined): string | undefined {
  if (dataDir === undefined) return undefined;
  try {
    if (!existsSync(dataDir)) mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  } catch (err) {
    throw new InvalidOptionsError(`dataDir ${dataDir}: ${(err as Error).message}`, { cause: err });
  }
  return join(dataDir, IDENTITY_FILE);
}

/** The node's key file inside `dataDir`, when no `identity` option is given. */
export const IDENTITY_FILE = 'identity.pem';

/**
 * The channels this node took in its run before, by what its store kept (a store without
 * `dataDir` is new each start: none): plain broadcasts (`b`) when it was a member of a network
 * (its member snapshot, or any message in its log), and the topics it was subscribed to.
 */
function channelsTakenBefore(store: Store, selfId: string): Set<string> {
  const taken = new Set(store.subscriptions().map((t) => `t:${t}`));
  if (store.members().some((m) => m.id !== selfId) || store.summary().length > 0) taken.add('b');
  return taken;
}
