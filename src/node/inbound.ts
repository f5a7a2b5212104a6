/**
 * A node's inbound protocol: the requests to `POST /`, checked (envelope, signature, sender) and
 * dispatched by type: connect, disconnect, the membership types (ping, ping-req, sync, gossip),
 * batches (in order per sender stream), gossiped broadcasts (delivered once, relayed on) and classic
 * single messages.
 *
 * @module
 */

import type { Clock } from '../clock.js';
import type { Gop2pNames } from '../compat/gop2p-names.js';
import type { LinkOrder } from '../delivery/link-order.js';
import { STREAM_ENDED } from '../delivery/link-order.js';
import type { Outbox, SealMessage } from '../delivery/outbox.js';
import type { OutboundMessage } from '../delivery/peer-queue.js';
import type { PlumtreeGlue } from '../delivery/plumtree-glue.js';
import { ReceivedMessage } from '../delivery/received-message.js';
import { SeenSet } from '../delivery/seen-set.js';
import type { Logger } from '../logger.js';
import type { FailureDetector } from '../membership/failure-detector.js';
import type { Membership } from '../membership/membership.js';
import { isLive } from '../membership/merge.js';
import { type PeerProbeNet, wirePeer } from '../membership/probe-net.js';
import { messageTypeName, type NodeMetrics } from '../metrics/node-metrics.js';
import type { ResolvedOptions } from '../options.js';
import { addressId, isUnspecifiedAddress, type Peer, peerOf } from '../peer.js';
import { decodeData, encodeMemberList } from '../protocol/codec.js';
import { isTsp2pEnvelope, openEnvelope } from '../protocol/envelope.js';
import {
  type BatchedMessage,
  type Envelope,
  Headers,
  isTreeControl,
  MessageType,
  PROTOCOL_VERSION,
  type WireMemberUpdate,
  type WirePeer,
} from '../protocol/schema.js';
import { type Random, shuffle } from '../random.js';
import type { InboundGuard } from '../security/inbound-guard.js';
import type { InboundRequest, InboundResponse } from '../transport/transport.js';

/** How long message ids are remembered to drop duplicates, and how many at most. */
const SEEN_WINDOW_MS = 10 * 60_000;
const SEEN_CAPACITY = 100_000;

/** The parts of a started node that inbound requests use. */
export interface InboundRun {
  readonly shutdown: AbortController;
  readonly membership: Membership;
  readonly detector: FailureDetector;
  readonly net: PeerProbeNet;
  /** Per sender: the stream and the last sequence number delivered from it. */
  readonly links: LinkOrder;
  readonly tree: PlumtreeGlue;
  readonly outbox: Outbox;
}

/** The options {@link Inbound} reads. */
export type InboundOptions = Pick<
  ResolvedOptions,
  | 'compat'
  | 'name'
  | 'maxMembers'
  | 'maxMessageBytes'
  | 'maxHops'
  | 'deliveryTimeoutMs'
  | 'timings'
  | 'requestTimeoutMs'
>;

/** What {@link Inbound} needs from its node. */
export interface InboundDeps {
  readonly selfId: string;
  readonly options: InboundOptions;
  readonly clock: Clock;
  readonly random: Random;
  readonly logger: Logger;
  /** Signature, key, timestamp and replay checks (src/security/). */
  readonly guard: InboundGuard;
  readonly metrics: NodeMetrics;
  /** The running parts while the node is started; `undefined` otherwise (requests get a 503). */
  readonly running: () => InboundRun | undefined;
  /** Whether `host:port` reaches this very node. */
  readonly isSelfAddress: (host: string, port: number) => boolean;
  /** Another node joined through this one (`true`), or every member left (`false`). */
  readonly setConnected: (connected: boolean) => void;
  /** How many members a gossiped broadcast goes on to, among `members`. */
  readonly fanout: (members: number) => number;
  readonly seal: SealMessage;
  /** A new message id. */
  readonly newId: () => string;
  /** Hands a new message to the application. */
  readonly hand: (message: ReceivedMessage) => void;
  /** Compat mode: how gop2p members name themselves, and this node towards each. */
  readonly gop2p?: Gop2pNames;
  /** A gop2p peer was refused because this node does not run in compat mode. */
  readonly onGop2pRefused?: (from: { address: string; port: number }, remoteAddress: string) => void;
}

/** A node's handler of protocol requests (`POST /`). */
export class Inbound {
  readonly #d: InboundDeps;
  readonly #seen = new SeenSet(SEEN_CAPACITY, SEEN_WINDOW_MS);

  constructor(deps: InboundDeps) {
    this.#d = deps;
  }

  /** Answers a request that is not for the web endpoints. */
  async handle(req: InboundRequest): Promise<InboundResponse> {
    if (req.path !== '/') return text(404, `not found: ${req.path}`);
    if (req.method !== 'POST') {
      if (req.body.length === 0 && (req.method === 'GET' || req.method === 'HEAD')) {
        return text(400, 'No valid Message provided: send a JSON envelope with POST /');
      }
      return text(405, `Method not allowed: ${req.method}; use POST /`);
    }
    const run = this.#d.running();
    if (run === undefined) return text(503, 'node is shutting down');
    const opened = openEnvelope(req.body, req.headers);
    if (!opened.ok) return text(opened.refusal.status, opened.refusal.message);
    this.#d.metrics.requests.inc({ type: messageTypeName(opened.value.type) });
    // Signature, key, timestamp and replay, before anything else happens (src/security/).
    const admitted = this.#d.guard.admit(opened.value, req.body, req.headers);
    if (admitted.kind === 'refused') {
      if (admitted.refusal.reason === 'gop2p_not_allowed') {
        this.#d.onGop2pRefused?.(opened.value.from, req.remoteAddress);
      }
      return text(admitted.refusal.status, admitted.refusal.message);
    }
    if (admitted.kind === 'duplicate') return text(200, '');
    const res = await this.#receive(run, opened.value, req.remoteAddress);
    // Refused after all (a sender not yet known, say): its retry must not look like a replay.
    if (admitted.kind === 'signed' && res.status >= 300) admitted.release();
    return res;
  }

  async #receive(run: InboundRun, envelope: Envelope, remoteAddress: string): Promise<InboundResponse> {
    const tsp2p = isTsp2pEnvelope(envelope);
    if (!tsp2p && !this.#d.options.compat) {
      this.#d.onGop2pRefused?.(envelope.from, remoteAddress);
      return text(403, "gop2p-style request refused: this node does not run with compat: 'gop2p'");
    }
    if (!tsp2p && envelope.type > MessageType.Direct) return text(405, 'Method not allowed');
    // gop2p's chat example advertises 0.0.0.0: such a sender is reached at its source address.
    const names = tsp2p ? undefined : this.#d.gop2p;
    const address =
      names !== undefined
        ? names.dialAddress(envelope.from, remoteAddress)
        : isUnspecifiedAddress(envelope.from.address)
          ? remoteAddress
          : envelope.from.address;
    const port = envelope.from.port;
    if ((tsp2p && envelope.from.id === this.#d.selfId) || this.#d.isSelfAddress(address, port)) {
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
        return text(503, `member table is full (${this.#d.options.maxMembers} members)`);
      }
      // The answer lists the members as they stood before the newcomer: never self, never it.
      const before = envelope.announce === true ? [] : m.live().filter((x) => x.peer.id !== senderId);
      let list: WirePeer[];
      if (names !== undefined) {
        // A gop2p newcomer gets names it can match (src/compat/gop2p-names.ts).
        names.learn(address, port, envelope.from);
        await names.settle(before, this.#d.options.requestTimeoutMs);
        list = names
          .listFor(envelope.from, address, before)
          .map((n) => ({ port: n.port, address: n.address }));
      } else {
        list = before.map((x) => wirePeer(x));
      }
      m.join(
        peerOf(senderId, address, port, envelope.from.name),
        tsp2p ? 'tsp2p' : 'gop2p',
        envelope.from.inc ?? 0,
      );
      if (tsp2p) m.applyAll(envelope.m);
      this.#d.setConnected(true);
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
    else names?.learn(address, port, envelope.from);

    switch (envelope.type) {
      case MessageType.Disconnect:
        m.leave(sender.peer.id, envelope.from.inc ?? 0);
        if (m.liveCount === 0) this.#d.setConnected(false);
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
  async #pingFor(run: InboundRun, target: WirePeer | undefined): Promise<boolean> {
    if (target === undefined) return false;
    const member =
      (target.id !== undefined ? run.membership.get(target.id) : undefined) ??
      run.membership.getByAddress(target.address, target.port);
    if (member === undefined) return false;
    return run.net.ping(member, this.#d.options.timings.probeTimeoutMs, run.shutdown.signal);
  }

  /**
   * A batch: its messages are numbered on the sender's stream, and each number is delivered
   * once, in order, however often the sender retries (an answer lost on the way back makes it
   * send the same messages again).
   */
  async #deliverBatch(run: InboundRun, from: Peer, envelope: Envelope): Promise<InboundResponse> {
    const msgs = envelope.msgs;
    if (msgs === undefined || envelope.stream === undefined || envelope.seq === undefined) {
      return text(400, 'No valid Message provided: a batch needs stream, seq and msgs');
    }
    const decoded = msgs.map((msg) => decodeData(isTreeControl(msg) ? undefined : msg.data));
    for (const data of decoded) {
      if (data.length > this.#d.options.maxMessageBytes) {
        return text(413, `message too large: limit is ${this.#d.options.maxMessageBytes} bytes`);
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
      this.#d.hand(message);
    }
    return text(200, '');
  }

  /**
   * A gossiped broadcast: delivered once (by origin and id: it may come along several paths),
   * then passed on to `fanout` random members other than the one it came from and its origin,
   * while it is under the hop limit.
   */
  #receiveGossip(
    run: InboundRun,
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
    if (this.#seen.has(seenKey, this.#d.clock.now())) return;
    // A relay's signature covers only its batch: a relayed message needs its origin's own.
    if (originWire !== undefined && !this.#d.guard.checkRelayed(originWire, msg, msg.sig)) {
      this.#d.logger.warn('relayed message refused: not signed by its origin', {
        id: msg.id,
        from: sender.id,
      });
      return;
    }
    if (!this.#seen.add(seenKey, this.#d.clock.now())) return;
    const hops = msg.hops ?? 0;
    const message = new ReceivedMessage(msg.id, 'broadcast', origin, data, hops);
    this.#d.hand(message);
    if (hops + 1 >= this.#d.options.maxHops) return;
    const live = run.membership
      .live()
      .filter((m) => m.peer.id !== sender.id && m.peer.id !== origin.id && m.kind === 'tsp2p');
    const targets = shuffle([...live], this.#d.random).slice(0, this.#d.fanout(live.length + 1));
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
      single: () => this.#d.seal(MessageType.Broadcast, { id: msg.id, data }),
      deadline: this.#d.clock.now() + this.#d.options.deliveryTimeoutMs,
    };
    // Relaying is best effort beyond the queue's retries: the other paths cover a loss.
    for (const m of targets) run.outbox.offer(m, out);
  }

  #deliverLocally(from: Peer, envelope: Envelope): InboundResponse {
    const data = decodeData(envelope.data);
    if (data.length > this.#d.options.maxMessageBytes) {
      return text(413, `message too large: limit is ${this.#d.options.maxMessageBytes} bytes`);
    }
    const id = envelope.id ?? this.#d.newId();
    if (envelope.id !== undefined && !this.#seen.add(`${from.id}/${envelope.id}`, this.#d.clock.now())) {
      return text(200, ''); // a duplicate: acknowledged, not delivered twice
    }
    const message = new ReceivedMessage(
      id,
      envelope.type === MessageType.Broadcast ? 'broadcast' : 'direct',
      from,
      data,
    );
    this.#d.hand(message);
    return text(200, '');
  }

  #answerHeaders(): Record<string, string> {
    const h: Record<string, string> = {
      [Headers.id]: this.#d.selfId,
      [Headers.version]: String(PROTOCOL_VERSION),
    };
    if (this.#d.options.name !== undefined) h[Headers.name] = encodeURIComponent(this.#d.options.name);
    return h;
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

function wireOf(peer: Peer): WirePeer {
  const isGop2p = peer.id === addressId(peer.address, peer.port);
  const wire: WirePeer = { port: peer.port, address: peer.address };
  if (!isGop2p) wire.id = peer.id;
  if (peer.name !== undefined) wire.name = peer.name;
  return wire;
}
