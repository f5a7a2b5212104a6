/**
 * A node's inbound protocol: the requests to `POST /`, checked (envelope, signature, sender) and
 * dispatched by type: connect, disconnect, the membership types (ping, ping-req, sync, gossip),
 * batches (in order per sender stream), gossiped broadcasts (delivered once, relayed on) and classic
 * single messages.
 *
 * @module
 */

import type { Gop2pNames } from '../compat/gop2p-names.js';
import type { Dissemination } from '../delivery/dissemination.js';
import type { LinkOrder } from '../delivery/link-order.js';
import { STREAM_ENDED } from '../delivery/link-order.js';
import type { FailureDetector, ProbeOutcome } from '../membership/failure-detector.js';
import type { Member } from '../membership/member-table.js';
import { type Membership, memberUpdate, signedFields } from '../membership/membership.js';
import { isLive } from '../membership/merge.js';
import { MISDIRECTED, type PeerProbeNet, wirePeer } from '../membership/probe-net.js';
import { messageTypeName, type NodeMetrics } from '../metrics/node-metrics.js';
import type { ResolvedOptions } from '../options.js';
import { addressId, isUnspecifiedAddress, type Peer, peerOf } from '../peer.js';
import { decodeData, encodeMemberList, encodeSelfHeader, encodeWithUpdates } from '../protocol/codec.js';
import { isTsp2pEnvelope, openEnvelope } from '../protocol/envelope.js';
import { type Refusal, type RefusalReason, refusal } from '../protocol/refusal.js';
import {
  type Envelope,
  Headers,
  isTreeControl,
  MessageType,
  PROTOCOL_VERSION,
  type WireMemberUpdate,
  type WirePeer,
} from '../protocol/schema.js';
import type { Sealer } from '../protocol/sealer.js';
import type { InboundGuard } from '../security/inbound-guard.js';
import type { InboundRequest, InboundResponse } from '../transport/transport.js';
import type { CatchUp } from './catch-up.js';
import type { Journal } from './journal.js';

/** The empty 200 answer. */
const OK: InboundResponse = { status: 200, body: '' };

/** The parts of a started node that inbound requests use. */
export interface InboundRun {
  readonly sealer: Sealer;
  readonly shutdown: AbortController;
  readonly membership: Membership;
  readonly detector: FailureDetector;
  readonly net: PeerProbeNet;
  /** Per sender: the stream and the last sequence number delivered from it. */
  readonly links: LinkOrder;
  /** How messages spread: every message entry and classic message goes there. */
  readonly dissemination: Dissemination;
  /** The node's log: a batch's messages are appended in one transaction. */
  readonly journal?: Journal;
  /** Catch-up: answers log requests (types 12, 13) from the store. */
  readonly catchUp?: CatchUp;
}

/** The options {@link Inbound} reads. */
export type InboundOptions = Pick<
  ResolvedOptions,
  'compat' | 'name' | 'maxMembers' | 'maxMessageBytes' | 'timings' | 'requestTimeoutMs'
>;

/** What {@link Inbound} needs from its node. */
export interface InboundDeps {
  readonly selfId: string;
  readonly options: InboundOptions;
  /** Signature, key, timestamp and replay checks (src/security/). */
  readonly guard: InboundGuard;
  readonly metrics: NodeMetrics;
  /** The running parts while the node is started; `undefined` otherwise (requests get a 503). */
  readonly running: () => InboundRun | undefined;
  /** Whether `host:port` reaches this very node. */
  readonly isSelfAddress: (host: string, port: number) => boolean;
  /** Another node joined through this one (`true`), or every member left (`false`). */
  readonly setConnected: (connected: boolean) => void;
  /** Compat mode: how gop2p members name themselves, and this node towards each. */
  readonly gop2p?: Gop2pNames;
  /** A gop2p peer was refused because this node does not run in compat mode. */
  readonly onGop2pRefused?: (from: { address: string; port: number }, remoteAddress: string) => void;
  /**
   * Whether the node's `message` listeners are so far behind that application batches are
   * refused for now (503 busy, `Retry-After`): their senders keep them queued and retry.
   */
  readonly listenersBehind?: () => boolean;
}

/** How long a sender refused as busy waits before it retries, in seconds (`Retry-After`). */
const BUSY_RETRY_AFTER_S = 1;

/** A node's handler of protocol requests (`POST /`). */
export class Inbound {
  readonly #d: InboundDeps;

  constructor(deps: InboundDeps) {
    this.#d = deps;
  }

  /** Answers a request that is not for the web endpoints. */
  async handle(req: InboundRequest): Promise<InboundResponse> {
    if (req.path !== '/') return this.#refuse(404, 'not_found', `not found: ${req.path}`);
    if (req.method !== 'POST') {
      if (req.body.length === 0 && (req.method === 'GET' || req.method === 'HEAD')) {
        return this.#refuse(
          400,
          'invalid_message',
          'No valid Message provided: send a JSON envelope with POST /',
        );
      }
      return this.#refuse(405, 'method_not_allowed', `Method not allowed: ${req.method}; use POST /`);
    }
    const run = this.#d.running();
    if (run === undefined) return this.#refuse(503, 'shutting_down', 'node is shutting down');
    const opened = openEnvelope(req.body, req.headers);
    if (!opened.ok) return this.#refused(opened.refusal);
    this.#d.metrics.requests.inc({ type: messageTypeName(opened.value.type) });
    // Signature, key, timestamp and replay, before anything else happens (src/security/).
    const admitted = this.#d.guard.admit(opened.value, req.body, req.headers);
    if (admitted.kind === 'refused') {
      if (admitted.refusal.reason === 'gop2p_not_allowed') {
        this.#d.onGop2pRefused?.(opened.value.from, req.remoteAddress);
      }
      return this.#refused(admitted.refusal);
    }
    if (admitted.kind === 'duplicate') return OK;
    const res = await this.#receive(run, opened.value, req.remoteAddress);
    // Refused after all (a sender not yet known, say): its retry must not look like a replay.
    if (admitted.kind === 'signed' && res.status >= 300) admitted.release();
    return res;
  }

  async #receive(run: InboundRun, envelope: Envelope, remoteAddress: string): Promise<InboundResponse> {
    const tsp2p = isTsp2pEnvelope(envelope);
    if (!tsp2p && !this.#d.options.compat) {
      this.#d.onGop2pRefused?.(envelope.from, remoteAddress);
      return this.#refuse(
        403,
        'gop2p_not_allowed',
        "gop2p-style request refused: this node does not run with compat: 'gop2p'",
      );
    }
    if (!tsp2p && envelope.type > MessageType.Direct) {
      return this.#refuse(405, 'method_not_allowed', 'Method not allowed');
    }
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
      return this.#refuse(400, 'self', 'You can not connect with yourself.');
    }
    const m = run.membership;
    const senderId = tsp2p ? envelope.from.id! : addressId(address, port);
    // A ping names the member it probes: another node at that address says it is not that one.
    const target = envelope.type === MessageType.Ping ? envelope.target?.id : undefined;
    if (target !== undefined && target !== this.#d.selfId) {
      return this.#refuse(
        MISDIRECTED,
        'misdirected',
        `not the member probed: this node is ${this.#d.selfId}`,
      );
    }
    // The sender's own word about itself: its signed `from`, with its self-record signature
    // (which covers the address it states, not one put in its place).
    const own =
      tsp2p && address === envelope.from.address ? envelope.from : { key: undefined, rsig: undefined };
    // An unsigned (gop2p) request can prove nothing: it may not speak for a signed member's address.
    const holder = tsp2p ? undefined : m.getByAddress(address, port);
    if (holder !== undefined && holder.kind === 'tsp2p' && isLive(holder.state)) {
      return this.#refuse(
        403,
        'not_registered',
        'Peer not registered: that address is a tsp2p member, whose requests are signed',
      );
    }

    if (envelope.type === MessageType.Connect) {
      const existing = m.liveMember(tsp2p ? senderId : undefined, address, port);
      if (existing === undefined && !m.hasRoom()) {
        return this.#refuse(
          503,
          'table_full',
          `member table is full (${this.#d.options.maxMembers} members)`,
        );
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
        // With each member's signed self-record: the newcomer can take those it does not
        // announce itself to (news.ts takes no unsigned news of unknown members).
        list = before.map((x) => wirePeer(x));
      }
      m.join(
        peerOf(senderId, address, port, envelope.from.name, envelope.from),
        tsp2p ? 'tsp2p' : 'gop2p',
        envelope.from.inc ?? 0,
        own,
      );
      if (tsp2p) m.applyAll(envelope.m);
      this.#d.setConnected(true);
      // An entry point tells the others at once. An announcement needs no round of its own: the
      // newcomer tells every member itself, and the news goes with the next round (when many
      // join at once, one round per announcement would flood the network).
      if (envelope.announce !== true) run.detector.gossipNow();
      return {
        status: 200,
        body: encodeMemberList(list),
        contentType: 'text/plain',
        // Its own record, tags and topics: the newcomer knows them at once (a gop2p one ignores it).
        headers: { ...this.#answerHeaders(), [Headers.self]: encodeSelfHeader(run.sealer.from()) },
      };
    }

    // A tsp2p node that speaks membership (ping, ping-req, sync, gossip) announces itself by
    // doing so: while views converge, a receiver may not know it yet, and refusing it would stop
    // the very gossip that spreads the news. Its alive state counts like any gossiped update
    // (news of its death or departure at a higher or equal incarnation still wins).
    if (tsp2p && envelope.type >= MessageType.Ping) {
      const inc = envelope.from.inc ?? 0;
      m.apply(
        {
          id: senderId,
          address,
          port,
          state: 'alive',
          inc,
          ...(envelope.from.name !== undefined ? { name: envelope.from.name } : {}),
          ...signedFields(own, inc),
        },
        { own: true },
      );
    }
    const sender = tsp2p ? m.get(senderId) : m.getByAddress(address, port);
    // A leave that gossip delivered before the leaver's own notice: already done.
    if (envelope.type === MessageType.Disconnect && sender?.state === 'left') return OK;
    // Members, and members declared dead (they may not know yet, and can refute): a departed or
    // unknown sender is not registered.
    if (sender === undefined || !(isLive(sender.state) || sender.state === 'dead')) {
      return this.#refuse(403, 'not_registered', 'Peer not registered');
    }
    m.touch(sender.peer.id);
    if (tsp2p) {
      const inc = m.incarnation;
      m.applyAll(envelope.m);
      // The news said this node is suspect, dead, gone or elsewhere: refute at once.
      if (m.incarnation !== inc) run.detector.gossipNow();
    } else names?.learn(address, port, envelope.from);

    switch (envelope.type) {
      case MessageType.Disconnect:
        m.leave(sender.peer.id, envelope.from.inc ?? 0);
        if (m.liveCount === 0) this.#d.setConnected(false);
        return OK;
      case MessageType.Ping:
      case MessageType.Gossip:
        return ack({ ack: true, m: m.piggyback(undefined, envelope.m) });
      case MessageType.Sync: {
        // A digest alone: the whole state only when the digests differ (and then the sender
        // sends its own in a full sync). A full state (or an older tsp2p node): the whole state.
        if (envelope.digest === undefined || envelope.m !== undefined) return ack({ m: m.state() });
        const digest = m.digest();
        return digest === envelope.digest ? ack({ digest }) : ack({ m: m.state(), digest });
      }
      case MessageType.PingReq: {
        // A target this node holds as gone (left, or dead): say so rather than ping it. A member
        // that stopped gracefully refuses connections too, and an asker that missed its leave
        // must learn of the leave, not suspect a crash.
        const gone = this.#goneTarget(run, envelope.target);
        if (gone !== undefined)
          return ack({ ack: false, m: [memberUpdate(gone), ...m.piggyback(undefined, envelope.m)] });
        // `refused`: nothing listens at the target's address (a crashed process), which the
        // asker counts as strong evidence when every probe of the target says so.
        const outcome = await this.#pingFor(run, envelope.target);
        return ack({
          ack: outcome === 'ack',
          refused: outcome === 'refused',
          m: m.piggyback(undefined, envelope.m),
        });
      }
      case MessageType.Batch:
        return this.#deliverBatch(run, sender.peer, envelope);
      case MessageType.LogSummary:
      case MessageType.LogFetch: {
        if (!tsp2p || run.catchUp === undefined)
          return this.#refuse(405, 'method_not_allowed', 'Method not allowed');
        const answer = run.catchUp.answer(sender.peer.id, envelope.type, envelope.log);
        return 'reason' in answer ? this.#refused(answer) : answer;
      }
      default:
        return this.#deliverLocally(run, sender.peer, envelope);
    }
  }

  /** The ping-req's target, when this node holds it as dead or departed. */
  #goneTarget(run: InboundRun, target: WirePeer | undefined): Member | undefined {
    if (target?.id === undefined) return undefined;
    const member = run.membership.get(target.id);
    return member !== undefined && !isLive(member.state) ? member : undefined;
  }

  /** A ping-req: ping `target` on the sender's behalf. */
  async #pingFor(run: InboundRun, target: WirePeer | undefined): Promise<ProbeOutcome> {
    if (target === undefined) return 'failed';
    const member =
      (target.id !== undefined ? run.membership.get(target.id) : undefined) ??
      run.membership.getByAddress(target.address, target.port);
    if (member === undefined) return 'failed';
    return run.detector.probeFor(member, run.shutdown.signal);
  }

  /**
   * A batch: its messages are numbered on the sender's stream, and each number is delivered
   * once, in order, however often the sender retries (an answer lost on the way back makes it
   * send the same messages again).
   */
  async #deliverBatch(run: InboundRun, from: Peer, envelope: Envelope): Promise<InboundResponse> {
    const msgs = envelope.msgs;
    if (msgs === undefined || envelope.stream === undefined || envelope.seq === undefined) {
      return this.#refuse(
        400,
        'invalid_message',
        'No valid Message provided: a batch needs stream, seq and msgs',
      );
    }
    // An indexed loop, no iterator: this runs once per message received. A payload over the
    // limit refuses the batch before the rest is decoded.
    const decoded: Uint8Array[] = new Array(msgs.length);
    for (let i = 0; i < msgs.length; i++) {
      const msg = msgs[i]!;
      const data = decodeData(isTreeControl(msg) ? undefined : msg.data);
      if (data.length > this.#d.options.maxMessageBytes) {
        return this.#refuse(
          413,
          'too_large',
          `message too large: limit is ${this.#d.options.maxMessageBytes} bytes`,
        );
      }
      decoded[i] = data;
    }
    // The listeners are behind: refused before the stream takes the batch, so that the retry
    // is the same batch again.
    if (this.#d.listenersBehind?.() === true) {
      return {
        ...this.#refuse(503, 'busy', "application is busy: this node's message listener is behind; retry"),
        headers: { 'retry-after': String(BUSY_RETRY_AFTER_S) },
      };
    }
    const taken = run.links.take(from.id, envelope.stream, envelope.seq, msgs.length, envelope.base);
    // A batch that overtook its predecessor waits for it, so that delivery stays in order.
    if (taken === STREAM_ENDED) {
      return this.#refuse(
        409,
        'stream_ended',
        'this stream has ended: the sender has started a newer one to this node',
      );
    }
    const first = typeof taken === 'number' ? taken : await taken;
    if (first === undefined) {
      return this.#refuse(503, 'out_of_order', 'earlier messages of this stream have not arrived: retry');
    }
    const receive = (): void => {
      for (let i = first; i < msgs.length; i++) {
        run.dissemination.receive(from, msgs[i]!, decoded[i]!, envelope.from.key);
      }
    };
    // One store transaction for the batch's messages.
    if (run.journal !== undefined) run.journal.batch(receive);
    else receive();
    return OK;
  }

  #deliverLocally(run: InboundRun, from: Peer, envelope: Envelope): InboundResponse {
    const data = decodeData(envelope.data);
    if (data.length > this.#d.options.maxMessageBytes) {
      return this.#refuse(
        413,
        'too_large',
        `message too large: limit is ${this.#d.options.maxMessageBytes} bytes`,
      );
    }
    const type = envelope.type === MessageType.Broadcast ? 'broadcast' : 'direct';
    run.dissemination.receiveSingle(from, type, envelope.id, data, envelope.ts);
    return OK;
  }

  /** Answers a refusal, counted under its reason. */
  #refused(r: Refusal): InboundResponse {
    this.#d.metrics.refuse(r.status, r.reason);
    return text(r.status, r.message);
  }

  #refuse(status: number, reason: RefusalReason, message: string): InboundResponse {
    return this.#refused(refusal(status, reason, message));
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

function ack(value: {
  ack?: boolean;
  refused?: boolean;
  m?: readonly WireMemberUpdate[];
  digest?: string;
}): InboundResponse {
  const body: { ack?: boolean; refused?: true; m?: readonly WireMemberUpdate[]; digest?: string } = {};
  if (value.ack !== undefined) body.ack = value.ack;
  if (value.refused === true) body.refused = true;
  if (value.m !== undefined && value.m.length > 0) body.m = value.m;
  if (value.digest !== undefined) body.digest = value.digest;
  return { status: 200, body: encodeWithUpdates(body), contentType: 'application/json' };
}
