/**
 * How a broadcast spreads, at both ends: the one place that knows fanouts, hops and trees.
 *
 * Sending, by the `dissemination` option and the size of the audience (the members a broadcast
 * is for, see {@link DisseminationDeps.audience}):
 * - `'full'`: to every member of the audience.
 * - `'gossip'`: to {@link gossipFanout} random members, each of which relays it to as many more
 *   (below the hop limit; each node relays a message once).
 * - `'plumtree'`: along the broadcast tree ({@link PlumtreeGlue}); ids to the other peers of
 *   the view.
 * - `'auto'`: full up to `gossipThreshold` members, Plumtree above.
 *
 * Receiving: every message entry of a batch, and every classic single-message envelope, comes
 * here. A plain one is handed to the node at once. A relayed one (gossip or tree) is checked
 * against its origin's signature first (once, here, for both), delivered once per origin and id,
 * and passed on.
 *
 * The node hears of a message through one callback, {@link DisseminationDeps.deliver}.
 *
 * Topics (rooms): a publish goes to the live members whose entries list its topic, and to no
 * one else: in full to each of them up to `gossipThreshold` subscribers (or in `'full'` mode),
 * above it (or in `'gossip'` and `'plumtree'` modes) by gossip relay among the subscribers
 * only. A receiver relays a publish only to subscribers, and drops (and counts, in
 * {@link Dissemination.stats}) one for a topic it is not subscribed to.
 *
 * @module
 */

import type { Clock } from '../clock.js';
import type { Logger } from '../logger.js';
import type { Member } from '../membership/member-table.js';
import type { MemberEvent } from '../membership/membership.js';
import type { Peer } from '../peer.js';
import { encodeMessageEntry, type LogNumber, logOf } from '../protocol/batch-entry.js';
import {
  type BatchedMessage,
  isTreeControl,
  MessageType,
  type TreeControl,
  type WirePeer,
} from '../protocol/schema.js';
import type { Sealer } from '../protocol/sealer.js';
import { fromWirePeer, toWirePeer } from '../protocol/wire-peer.js';
import { type Random, shuffle } from '../random.js';
import type { GossipFields, OriginSigner } from '../security/gossip-signature.js';
import { channelOf } from '../store/store.js';
import type { DeliveryReport } from '../types.js';
import type { OutboundMessage } from './outbound.js';
import type { Outbox, WrittenOutbound } from './outbox.js';
import type { OwnLog, PendingSignature, WrittenMessage } from './own-log.js';
import { PlumtreeGlue } from './plumtree-glue.js';
import { type ReceivedLog, ReceivedMessage } from './received-message.js';
import { SeenSet } from './seen-set.js';

/** How long message ids are remembered to drop duplicates, and how many at most. */
const SEEN_WINDOW_MS = 10 * 60_000;
const SEEN_CAPACITY = 100_000;

/** The settings a {@link Dissemination} reads (the node's options of the same names). */
export interface DisseminationSettings {
  readonly mode: 'full' | 'gossip' | 'plumtree' | 'auto';
  /** Members above which `'auto'` uses Plumtree. */
  readonly gossipThreshold: number;
  /** Overrides both fanout formulas below. */
  readonly fanout: number | undefined;
  /** Relays a gossiped message passes through at most. */
  readonly maxHops: number;
  /** How long a relayed message may wait for delivery, in ms. */
  readonly deliveryTimeoutMs: number;
}

/** Checks a relayed message against its origin's signature (`src/security/inbound-guard.ts`). */
export interface OriginCheck {
  checkRelayed(origin: WirePeer, fields: GossipFields, sig: string | undefined): boolean;
  /**
   * Whether a relayed broadcast is delivered for the first time, by origin and id, beyond what
   * the bounded seen sets remember; records it. A flood cannot push a message out of memory
   * and have it delivered again. @default always (no memory beyond the seen sets)
   */
  relayedOnce?(originId: string, id: string, ts: number): boolean;
}

/** What a {@link Dissemination} is made of. */
export interface DisseminationDeps {
  readonly settings: DisseminationSettings;
  readonly clock: Clock;
  readonly random: Random;
  readonly logger: Logger;
  /** Looks members up by id (relayed origins, tree peers). */
  readonly members: { get(id: string): Member | undefined };
  /** The per-member queues everything goes out through. */
  readonly outbox: Outbox;
  /** Stamps messages, and builds the classic envelope for gop2p members. */
  readonly sealer: Sealer;
  /** Signs the messages this node writes, for relays to pass on. */
  readonly signer: OriginSigner;
  /** Checks the messages relays pass on. */
  readonly origins: OriginCheck;
  /**
   * The members a broadcast is for, asked at each broadcast and relay: the live members. A
   * message for a subset (a topic's subscribers) is where this is narrowed.
   */
  readonly audience: () => readonly Member[];
  /** Hands a new message to the node. */
  readonly deliver: (message: ReceivedMessage) => void;
  /** Whether this node is subscribed to `topic` now. @default never (no topics) */
  readonly subscribed?: (topic: string) => boolean;
  /** Counts a publish dropped on receipt: this node is not subscribed to its topic. */
  readonly droppedPublish?: () => void;
  /**
   * A numbered message of `channel` came by gossip (`'gossip'` mode, or a room's publish): the
   * catch-up looks at the channel again soon (`CatchUp.tail`). Gossip misses a member with
   * probability about e^−fanout, and a missed message is fetched when the next one of its stream
   * shows the gap; the last ones of a burst leave none. @default nothing
   */
  readonly gossiped?: (channel: string) => void;
  /** Aborts when the node stops: every timer is cancelled. */
  readonly signal: AbortSignal;
  /**
   * The node's log: every message this node writes is numbered and recorded there before it is
   * queued, and signed, so that any member can serve it by catch-up. @default none (not numbered)
   */
  readonly log?: OwnLog;
}

/** A written message's signature, or the log's decision on it. */
function signatureOf(msg: WrittenOutbound): { sig: string | undefined; pending?: PendingSignature } {
  return msg.pending !== undefined ? { sig: undefined, pending: msg.pending } : { sig: msg.sig };
}

/**
 * Gossip's fanout for an audience of `n`: ⌈ln n⌉ + 7. A gossiped broadcast misses a node with
 * probability about e^−(fanout − ln n) = e^−7 per round of relays, and the hop limit gives it
 * several rounds (Eugster et al., "Epidemic information dissemination"); `fanout` overrides it.
 */
function gossipFanout(n: number, fanout: number | undefined): number {
  return fanout ?? Math.ceil(Math.log(Math.max(n, 1))) + 7;
}

/**
 * Plumtree's view size for `n` members: ⌈ln n⌉ + 1, as the paper's active view. The view needs
 * only to stay connected (IHAVE and GRAFT make up for losses); `fanout` overrides it.
 */
function treeViewSize(n: number, fanout: number | undefined): number {
  return fanout ?? Math.ceil(Math.log(Math.max(n, 1))) + 1;
}

/** How one node's broadcasts spread, and how it passes on the ones it receives. */
export class Dissemination {
  readonly #d: DisseminationDeps;
  readonly #tree: PlumtreeGlue;
  readonly #seen = new SeenSet(SEEN_CAPACITY, SEEN_WINDOW_MS);
  /** Publishes dropped because this node is not subscribed to their topic. */
  readonly stats = { notSubscribed: 0 };

  constructor(deps: DisseminationDeps) {
    this.#d = deps;
    this.#tree = new PlumtreeGlue({
      selfId: deps.sealer.self.id,
      clock: deps.clock,
      random: deps.random,
      members: deps.members,
      audience: deps.audience,
      fanout: (n) => treeViewSize(n, deps.settings.fanout),
      deliveryTimeoutMs: deps.settings.deliveryTimeoutMs,
      enqueue: (m, out) => deps.outbox.offer(m, out),
      relayedOnce: (origin, id, ts) => deps.origins.relayedOnce?.(origin, id, ts) !== false,
      signer: deps.signer,
      sealer: deps.sealer,
      deliver: deps.deliver,
      treeMode: () => this.#treeMode(deps.audience().length),
      signal: deps.signal,
    });
  }

  /**
   * Sends a broadcast this node writes, as the mode says, and resolves with the report of the
   * members it went to in full. It is numbered and logged only once the queues it goes to have
   * room (see `#whenRoom`).
   */
  broadcast(id: string, data: Uint8Array, signal: AbortSignal | undefined): Promise<DeliveryReport> {
    const audience = this.#d.audience();
    const bound = this.#d.outbox.sizeBound(id, data);
    if (this.#treeMode(audience.length)) {
      // In full along the tree, as ids to the other peers of the view.
      return this.#whenRoom(this.#tree.targets(), bound, signal, () => {
        const log = this.#d.log?.number(channelOf('broadcast'));
        const plan = this.#tree.originate(id, data, log);
        if (log !== undefined) this.#wrote({ id, kind: 'broadcast', log, ts: plan.ts, data, sig: plan.sig });
        return this.#d.outbox.deliver(plan.msg, plan.targets, signal);
      });
    }
    const gossip = this.#d.settings.mode === 'gossip';
    // In full to the audience, or to `fanout` random members that pass it on.
    const targets = gossip
      ? shuffle([...audience], this.#d.random).slice(
          0,
          gossipFanout(audience.length, this.#d.settings.fanout),
        )
      : audience.slice(); // the live list is kept in step with the table: a snapshot of it
    return this.#whenRoom(targets, bound, signal, () => {
      const log = this.#d.log?.number(channelOf('broadcast'));
      const msg = this.#d.outbox.outbound(MessageType.Broadcast, id, data, this.#signing(gossip, log));
      if (log !== undefined)
        this.#wrote({ id, kind: 'broadcast', log, ts: msg.ts, data, ...signatureOf(msg) });
      return this.#d.outbox.deliver(msg, targets, signal);
    });
  }

  /**
   * Runs `send` (which numbers, logs and queues a message this node writes) once the queues of
   * `members` have room for `bytes`: at once when they have, else after waiting (or not at all:
   * `backpressure: 'reject'`, or the caller gave up). A call that fails was thus never numbered
   * nor logged: no receiver gets it later by catch-up, and it leaves no gap in the numbers.
   * Numbering and queueing happen in one go, so the numbers go out in order.
   */
  #whenRoom(
    members: readonly Member[],
    bytes: number,
    signal: AbortSignal | undefined,
    send: () => Promise<DeliveryReport>,
  ): Promise<DeliveryReport> {
    const room = this.#d.outbox.room(members, bytes, signal);
    return room === undefined ? send() : room.then(send);
  }

  /** How a message this node writes is signed: for relays (`gossip`), for the log, or not. */
  #signing(
    gossip: boolean,
    log: LogNumber | undefined,
  ): { gossip?: OriginSigner; signer?: OriginSigner; log?: LogNumber; deferSig?: boolean } {
    // Sent in full, a logged message is signed only at the end of its burst (its log decides).
    return {
      ...(gossip ? { gossip: this.#d.signer } : {}),
      ...(log !== undefined ? { log, signer: this.#d.signer, deferSig: !gossip } : {}),
    };
  }

  /** Records a message this node wrote in its log (before it is queued). */
  #wrote(m: WrittenMessage): void {
    this.#d.log?.wrote(m);
  }

  /** The live tsp2p members subscribed to `topic`. */
  subscribers(topic: string): Member[] {
    return this.#d.audience().filter((m) => m.kind === 'tsp2p' && m.peer.topics?.includes(topic) === true);
  }

  /**
   * Sends a publish this node writes to the subscribers of `topic` only: in full up to the
   * threshold, by gossip relay among them above it. Resolves with the report of the members it
   * went to directly.
   *
   * @param deps - its causal dependencies (`src/delivery/causal.ts`)
   */
  publish(
    topic: string,
    id: string,
    data: Uint8Array,
    signal: AbortSignal | undefined,
    deps: readonly string[] = [],
  ): Promise<DeliveryReport> {
    const audience = this.subscribers(topic);
    const s = this.#d.settings;
    const full = s.mode === 'full' || (s.mode === 'auto' && audience.length <= s.gossipThreshold);
    const targets = full
      ? audience
      : shuffle([...audience], this.#d.random).slice(0, gossipFanout(audience.length, s.fanout));
    const bound = this.#d.outbox.sizeBound(id, data, { topic, deps });
    return this.#whenRoom(targets, bound, signal, () => {
      const log = this.#d.log?.number(channelOf('topic', topic));
      const msg = this.#d.outbox.outbound(MessageType.Broadcast, id, data, {
        ...this.#signing(!full, log),
        topic,
        deps,
      });
      if (log !== undefined)
        this.#wrote({ id, kind: 'topic', topic, log, ts: msg.ts, data, ...signatureOf(msg), deps });
      return this.#d.outbox.deliver(msg, targets, signal);
    });
  }

  /** Sends a direct message to `members`, and resolves with the report. */
  direct(
    id: string,
    data: Uint8Array,
    members: readonly Member[],
    signal: AbortSignal | undefined,
  ): Promise<DeliveryReport> {
    const to = members.map((m) => toWirePeer(m.peer, m));
    const bound = this.#d.outbox.sizeBound(id, data, { to });
    return this.#whenRoom(members, bound, signal, () => {
      if (this.#d.log === undefined) {
        return this.#d.outbox.deliver(
          this.#d.outbox.outbound(MessageType.Direct, id, data, { to }),
          members,
          signal,
        );
      }
      // Numbered per recipient (channel `d:RECIPIENT`): one entry each, in one report.
      const reports = members.map((m) => {
        const log = this.#d.log!.number(channelOf('direct', m.peer.id));
        const msg = this.#d.outbox.outbound(MessageType.Direct, id, data, {
          to,
          ...this.#signing(false, log),
        });
        this.#wrote({ id, kind: 'direct', to: m.peer.id, log, ts: msg.ts, data, ...signatureOf(msg) });
        return this.#d.outbox.deliver(msg, [m], signal);
      });
      return Promise.all(reports).then((all) => ({
        id,
        delivered: all.flatMap((r) => r.delivered),
        failed: all.flatMap((r) => r.failed),
      }));
    });
  }

  /**
   * One entry of a batch from `sender` (whose key, `from.key`, is `senderKey`): a message with
   * its decoded payload, or a Plumtree control entry.
   */
  receive(
    sender: Peer,
    entry: BatchedMessage | TreeControl,
    data: Uint8Array,
    senderKey: string | undefined,
  ): void {
    if (isTreeControl(entry)) {
      this.#tree.control(sender, entry);
      return;
    }
    if (entry.topic !== undefined && (entry.tree === true || !(this.#d.subscribed?.(entry.topic) ?? false))) {
      // Not for this node (it left the topic, or the sender's view is behind): not delivered,
      // not passed on.
      this.stats.notSubscribed++;
      this.#d.droppedPublish?.();
      return;
    }
    if (entry.hops === undefined) {
      this.#d.deliver(
        new ReceivedMessage(
          entry.id,
          entry.type === MessageType.Broadcast ? 'broadcast' : 'direct',
          sender,
          data,
          undefined,
          entry.ts,
          entry.topic,
          entry.deps,
        ).withLog(this.#logOf(entry, sender.id, senderKey)),
      );
      return;
    }
    const origin = entry.origin;
    if (entry.tree === true) {
      // A message the tree already holds is not verified again.
      const known = origin !== undefined && this.#tree.has({ origin: origin.id ?? sender.id, id: entry.id });
      if (origin !== undefined && !known && !this.#signedByOrigin(sender, origin, entry)) return;
      this.#tree.receive(sender, entry, data, senderKey);
      return;
    }
    this.#relay(sender, entry, data, senderKey);
  }

  /**
   * A classic single-message envelope (gop2p's form): delivered once per sender and id; one
   * without an id (gop2p) gets a local one.
   */
  receiveSingle(
    sender: Peer,
    type: 'broadcast' | 'direct',
    id: string | undefined,
    data: Uint8Array,
    at: number = this.#d.sealer.now(),
  ): void {
    if (id !== undefined && !this.#seen.add(`${sender.id}/${id}`, this.#d.clock.now())) return;
    this.#d.deliver(new ReceivedMessage(id ?? this.#d.sealer.newId(), type, sender, data, undefined, at));
  }

  /** Keeps the tree's peer sets in step with the membership. */
  onMemberEvent(event: MemberEvent, peer: Peer): void {
    this.#tree.onMemberEvent(event, peer);
  }

  /** This node left the network: the tree's view is cleared with the member table. */
  clear(): void {
    this.#tree.clear();
  }

  /** An entry's log number, with the origin's signature and key (when known), for the node's store. */
  #logOf(entry: BatchedMessage, originId: string, key: string | undefined): ReceivedLog | undefined {
    // As `logOf`, in one object: this runs once per message received.
    const { epoch, channel, seq } = entry;
    if (epoch === undefined || channel === undefined || seq === undefined) return undefined;
    return {
      epoch,
      channel,
      seq,
      prev: entry.prev,
      sig: entry.sig,
      key: key ?? this.#d.members.get(originId)?.record?.key,
    };
  }

  /** Plumtree: by option, or with `'auto'` above `gossipThreshold` members. */
  #treeMode(members: number): boolean {
    const s = this.#d.settings;
    return s.mode === 'plumtree' || (s.mode === 'auto' && members > s.gossipThreshold);
  }

  /** A relay's signature covers only its batch: a relayed message needs its origin's own. */
  #signedByOrigin(sender: Peer, origin: WirePeer, entry: BatchedMessage): boolean {
    if (this.#d.origins.checkRelayed(origin, entry, entry.sig)) return true;
    this.#d.logger.warn('relayed message refused: not signed by its origin', {
      id: entry.id,
      from: sender.id,
    });
    return false;
  }

  /**
   * A gossiped broadcast: delivered once (by origin and id: it may come along several paths),
   * then passed on to `fanout` random members of the audience other than the one it came from
   * and its origin, while it is under the hop limit. Best effort beyond the queues' retries: the
   * other paths cover a loss.
   */
  #relay(sender: Peer, entry: BatchedMessage, data: Uint8Array, senderKey: string | undefined): void {
    const originWire = entry.origin;
    const origin =
      originWire === undefined
        ? sender
        : (this.#d.members.get(originWire.id ?? '')?.peer ?? fromWirePeer(originWire));
    const seenKey = `${origin.id}/${entry.id}`;
    if (this.#seen.has(seenKey, this.#d.clock.now())) return;
    if (originWire !== undefined && !this.#signedByOrigin(sender, originWire, entry)) return;
    if (!this.#seen.add(seenKey, this.#d.clock.now())) return;
    // The seen set forgets its oldest under a flood: delivered once all the same.
    if (this.#d.origins.relayedOnce?.(origin.id, entry.id, entry.ts) === false) return;
    const hops = entry.hops ?? 0;
    const log = this.#logOf(entry, origin.id, originWire?.key ?? senderKey);
    this.#d.deliver(
      new ReceivedMessage(
        entry.id,
        'broadcast',
        origin,
        data,
        hops,
        entry.ts,
        entry.topic,
        entry.deps,
      ).withLog(log),
    );
    if (log !== undefined) this.#d.gossiped?.(log.channel);
    if (hops + 1 >= this.#d.settings.maxHops) return;
    // A publish is relayed among its topic's subscribers only.
    const audience = entry.topic === undefined ? this.#d.audience() : this.subscribers(entry.topic);
    const others = audience.filter(
      (m) => m.peer.id !== sender.id && m.peer.id !== origin.id && m.kind === 'tsp2p',
    );
    const targets = shuffle([...others], this.#d.random).slice(
      0,
      gossipFanout(others.length + 1, this.#d.settings.fanout),
    );
    if (targets.length === 0) return;
    const fragment = encodeMessageEntry({
      type: entry.type,
      id: entry.id,
      ts: entry.ts,
      data: entry.data,
      hops: hops + 1,
      origin: originWire ?? { ...toWirePeer(origin), ...(senderKey !== undefined ? { key: senderKey } : {}) },
      ...(entry.sig !== undefined ? { sig: entry.sig } : {}),
      ...(entry.topic !== undefined ? { topic: entry.topic } : {}),
      ...(logOf(entry) !== undefined ? { log: logOf(entry) } : {}),
      ...(entry.deps !== undefined ? { deps: entry.deps } : {}),
    });
    // tsp2p members only: no classic form is needed.
    const out: OutboundMessage = {
      id: entry.id,
      fragment,
      bytes: fragment.length,
      deadline: this.#d.clock.now() + this.#d.settings.deliveryTimeoutMs,
    };
    for (const m of targets) this.#d.outbox.offer(m, out);
  }
}
