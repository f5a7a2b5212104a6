/**
 * The failure detector's network operations, over the node's peer client: ping, ping-req,
 * push-pull sync and gossip. Each carries piggybacked membership updates both ways.
 *
 * @module
 */

import type { Logger } from '../logger.js';
import { decodeAck } from '../protocol/codec.js';
import type { EnvelopeSigner, Sealed } from '../protocol/envelope.js';
import { MessageType, type WireMemberUpdate, type WirePeer } from '../protocol/schema.js';
import { toWirePeer } from '../protocol/wire-peer.js';
import { requestWithSession, type SenderSessions } from '../security/session-request.js';
import type { PeerClient } from '../transport/peer-client.js';
import { isConnectionRefused, type OutboundResponse } from '../transport/transport.js';
import type { IndirectResult, ProbeNet, ProbeOutcome } from './failure-detector.js';
import { destinationOf, type Member } from './member-table.js';
import { type Membership, memberUpdate } from './membership.js';
import type { MemberUpdate } from './merge.js';

/** Builds an outbound membership envelope (a `Sealer`, src/protocol/sealer.ts). */
export interface MembershipSealer {
  /** This node's Ed25519 signer: what signs a request that carries no session MAC. */
  readonly signer: EnvelopeSigner;
  seal(type: MessageType, extra?: MembershipExtra, signer?: EnvelopeSigner): Sealed;
}

/** What a membership request carries besides its sender. */
export interface MembershipExtra {
  readonly m?: readonly WireMemberUpdate[];
  readonly target?: WirePeer;
  readonly digest?: string;
}

/** The answer to a ping that names another node as its `target`: 421 Misdirected Request. */
export const MISDIRECTED = 421;

/** {@link ProbeNet} over HTTP (or any transport). */
export class PeerProbeNet implements ProbeNet {
  readonly #client: PeerClient;
  readonly #membership: Membership;
  readonly #sealer: MembershipSealer;
  readonly #logger: Logger;
  readonly #onRefused: ((member: Member) => void) | undefined;
  readonly #sessions: SenderSessions | undefined;

  /**
   * @param onRefused - a gossip, sync or ping-req to a member was refused a connection: it may
   *   have crashed, and is worth probing now rather than at its turn
   * @param sessions - this node's session keys: requests to a tsp2p member whose key is held
   *   carry a session MAC instead of a signature (see `src/security/session-request.ts`);
   *   without them every request is signed
   */
  constructor(
    client: PeerClient,
    membership: Membership,
    sealer: MembershipSealer,
    logger: Logger,
    onRefused?: (member: Member) => void,
    sessions?: SenderSessions,
  ) {
    this.#client = client;
    this.#membership = membership;
    this.#sealer = sealer;
    this.#logger = logger;
    this.#onRefused = onRefused;
    this.#sessions = sessions;
  }

  /** Sends one membership request to `member`: MAC'd or signed (see the constructor). */
  #request(
    member: Member,
    type: MessageType,
    extra: MembershipExtra,
    signal: AbortSignal,
    timeoutMs: number,
  ): Promise<OutboundResponse> {
    const to = destinationOf(member);
    return requestWithSession(
      this.#sessions,
      member.kind === 'tsp2p' ? member.peer.id : undefined,
      this.#sealer.signer,
      (signer) => this.#sealer.seal(type, extra, signer),
      (sealed) => this.#client.request(to, sealed, signal, timeoutMs),
    );
  }

  /** Pings a member directly: `true` on an answer that counts (see {@link probe}). Never rejects. */
  async ping(member: Member, timeoutMs: number, signal: AbortSignal): Promise<boolean> {
    return (await this.probe(member, timeoutMs, signal)) === 'ack';
  }

  async probe(member: Member, timeoutMs: number, signal: AbortSignal): Promise<ProbeOutcome> {
    // Out of the network (it left while a probe or a ping-req was under way), a node says nothing.
    if (!this.#membership.active) return 'failed';
    // A gop2p peer cannot answer a ping, but any HTTP answer (its 405) shows it is alive.
    let m = member.kind === 'tsp2p' ? this.#membership.piggyback() : undefined;
    // Lifeguard's buddy system: a probe of a suspect tells it so, and it refutes in its answer.
    // Otherwise a suspect that was too slow to receive the few gossiped copies of the news never
    // learns of it, and is declared dead while it answers every probe.
    const cur = this.#membership.get(member.peer.id);
    if (m !== undefined && cur?.state === 'suspect') {
      m = [memberUpdate(cur), ...m.filter((u) => u.id !== cur.peer.id)];
    }
    try {
      // A tsp2p ping names the member it probes (`target`): whoever else answers at that
      // address (a restart under a new id, a squatter) says so, and the probe fails.
      const res = await this.#request(
        member,
        MessageType.Ping,
        m ? { m, target: wirePeer(member) } : {},
        signal,
        timeoutMs,
      );
      if (member.kind === 'tsp2p') {
        // A tsp2p node that answers 403 does not count this node as a member: it was restarted
        // and has not joined again, or it left. It answers, but it is not in the network, and
        // it cannot refute a suspicion: the probe failed. (If only this node is unknown to it,
        // the indirect probes that follow succeed.) 421: another node answers at that address.
        if (res.status === 403) return 'failed';
        // Another identity answers at the member's address: the member's process is gone from
        // there as surely as if nothing listened (a restart under a new key), and it is as
        // strong a piece of evidence as a refused connection. The member, if it runs elsewhere,
        // refutes from there.
        if (res.status === MISDIRECTED) return 'refused';
        if (res.status === 200) this.#merge(res.body);
      }
      return 'ack';
    } catch (err) {
      if (signal.aborted || !isConnectionRefused(err)) return 'failed';
      // Nothing listens where a gop2p peer was: it stopped (a killed chat refuses connections).
      // Such a peer cannot refute a suspicion anyway: its own refusal is evidence enough, and it
      // is suspected with the shortest timeout. A tsp2p member needs its helpers to agree (the
      // failure detector decides).
      if (member.kind === 'gop2p') this.#membership.suspect(member.peer.id, { strong: true });
      return 'refused';
    }
  }

  /**
   * Pushes membership updates to one member directly (a ping that carries them): resolves `true`
   * once the member has answered, which it does after applying them.
   */
  async push(
    member: Member,
    m: readonly MemberUpdate[],
    timeoutMs: number,
    signal: AbortSignal,
  ): Promise<boolean> {
    if (!this.#membership.active || member.kind !== 'tsp2p') return false;
    try {
      const res = await this.#request(member, MessageType.Ping, { m }, signal, timeoutMs);
      if (res.status === 200) this.#merge(res.body);
      return res.status === 200;
    } catch {
      return false;
    }
  }

  async pingReq(
    via: Member,
    target: Member,
    timeoutMs: number,
    signal: AbortSignal,
  ): Promise<IndirectResult> {
    if (!this.#membership.active) return 'none';
    const extra = { target: toWirePeer(target.peer, target), m: this.#membership.piggyback() };
    try {
      const res = await this.#request(via, MessageType.PingReq, extra, signal, timeoutMs);
      if (res.status !== 200) return 'nack';
      const ack = this.#merge(res.body);
      if (ack?.ack === true) return 'ack';
      return ack?.refused === true ? 'refused' : 'nack';
    } catch (err) {
      if (signal.aborted || !isConnectionRefused(err)) return 'none';
      this.#onRefused?.(via);
      return 'gone';
    }
  }

  async sync(member: Member, timeoutMs: number, signal: AbortSignal): Promise<boolean> {
    if (!this.#membership.active) return false;
    // The incarnation the peer knows this node at, as far as this exchange told it.
    let told = this.#membership.incarnation;
    try {
      // The digest first: equal states exchange nothing more. Otherwise the answer is the peer's
      // state (merged here), and this node's state follows in a full sync, as before.
      const digest = this.#membership.digest();
      const first = await this.#request(member, MessageType.Sync, { digest }, signal, timeoutMs);
      if (first.status !== 200) return false;
      const answer = this.#merge(first.body);
      if (answer === undefined) return false;
      if (answer.digest !== digest) {
        if (!this.#membership.active) return false;
        told = this.#membership.incarnation;
        const state = { m: this.#membership.state() };
        const res = await this.#request(member, MessageType.Sync, state, signal, timeoutMs);
        if (res.status !== 200) return false;
        this.#merge(res.body);
      }
    } catch (err) {
      this.#refusedBy(member, err, signal);
      return false;
    }
    // The peer's state said this node was dead or gone, and it refuted after its own state went:
    // tell that peer at once, so that the refutation crosses a healed partition without waiting
    // for another round. (A full state sent after the refutation already carried it.)
    if (this.#membership.incarnation !== told) await this.gossip(member, timeoutMs, signal);
    return true;
  }

  async gossip(member: Member, timeoutMs: number, signal: AbortSignal): Promise<boolean> {
    if (!this.#membership.active) return false;
    // A gossip message exists only to carry news, and HTTP bodies are not bound by a UDP packet:
    // it carries four times what rides on a probe.
    const m = [this.#membership.selfUpdate(), ...this.#membership.piggyback(this.#membership.gossipCapacity)];
    try {
      const res = await this.#request(member, MessageType.Gossip, { m }, signal, timeoutMs);
      if (res.status !== 200) return false;
      this.#merge(res.body);
      return true;
    } catch (err) {
      this.#refusedBy(member, err, signal);
      return false;
    }
  }

  /** A request to `member` other than a probe was refused a connection: tell the owner. */
  #refusedBy(member: Member, err: unknown, signal: AbortSignal): void {
    if (!signal.aborted && isConnectionRefused(err)) this.#onRefused?.(member);
  }

  #merge(body: Uint8Array) {
    const ack = decodeAck(body);
    if (!ack.ok) {
      this.#logger.debug('ignoring a malformed membership answer', { why: ack.refusal.message });
      return undefined;
    }
    this.#membership.applyAll(ack.value.m);
    return ack.value;
  }
}

/** A member as a wire peer, with its incarnation (and its signed self-record, when held). */
export function wirePeer(m: Member): WirePeer {
  const w: WirePeer = { address: m.peer.address, port: m.peer.port, inc: m.incarnation };
  if (m.kind === 'tsp2p') w.id = m.peer.id;
  if (m.peer.name !== undefined) w.name = m.peer.name;
  const r = m.record;
  if (r?.sig !== undefined && r.key !== undefined) {
    w.key = r.key;
    w.rsig = r.sig;
    if (r.inc !== m.incarnation) w.rinc = r.inc;
  }
  if (m.peer.tags !== undefined && Object.keys(m.peer.tags).length > 0) w.tags = { ...m.peer.tags };
  if (m.peer.topics !== undefined && m.peer.topics.length > 0) w.topics = [...m.peer.topics];
  return w;
}
