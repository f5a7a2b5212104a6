/**
 * Binds the {@link Plumtree} state machine to a node: member events feed its peer sets, batch
 * entries feed its handlers, and its actions become entries in the per-member outbound queues
 * (messages with `tree: true`, and IHAVE / GRAFT / PRUNE control entries; see PROTOCOL.md).
 *
 * @module
 */

import { type Clock, wallTime } from '../clock.js';
import type { Logger } from '../logger.js';
import type { Member } from '../membership/member-table.js';
import type { Membership } from '../membership/membership.js';
import { isLive } from '../membership/merge.js';
import type { Peer } from '../peer.js';
import { encodeData } from '../protocol/codec.js';
import type { Sealed } from '../protocol/envelope.js';
import {
  type BatchedMessage,
  MessageType,
  type TreeControl,
  TreeEntry,
  type WirePeer,
} from '../protocol/schema.js';
import type { Random } from '../random.js';
import type { GossipFields } from '../security/gossip-signature.js';
import type { OutboundMessage } from './peer-queue.js';
import { type MessageRef, Plumtree, type PlumtreeAction, type PlumtreeLimits } from './plumtree.js';
import { ReceivedMessage } from './received-message.js';

/** A broadcast as the tree keeps it: what is needed to pass it on. */
export interface TreeMessage {
  readonly ref: MessageRef;
  readonly ts: number;
  /** The payload, base64, as it travels. */
  readonly data: string;
  /** The origin's signature (see `src/security/gossip-signature.ts`). */
  readonly sig: string | undefined;
  /** The origin with its key, set on relayed copies; `undefined` for this node's own messages. */
  readonly origin: WirePeer | undefined;
  /** The `hops` this node sends it with. */
  readonly hops: number;
}

/** What the glue needs from its node. */
export interface PlumtreeGlueDeps {
  readonly selfId: string;
  readonly clock: Clock;
  readonly random: Random;
  readonly logger: Logger;
  readonly membership: Membership;
  /** The view size for `members` members. */
  readonly fanout: (members: number) => number;
  readonly deliveryTimeoutMs: number;
  /** Queues an entry to a member, best effort (the tree repairs a loss). */
  readonly enqueue: (member: Member, out: OutboundMessage) => void;
  /** Checks a relayed message's origin signature. */
  readonly checkRelayed: (origin: WirePeer, fields: GossipFields, sig: string | undefined) => boolean;
  /** Signs a message this node writes. */
  readonly sign: (fields: GossipFields) => string;
  /** The classic envelope of a broadcast, for gop2p members. */
  readonly seal: (id: string, data: Uint8Array) => Sealed;
  /** Hands a new message to the application. */
  readonly hand: (message: ReceivedMessage) => void;
  /**
   * Whether this node broadcasts through the tree now (its `dissemination`, and for `'auto'` the
   * network's size): asked at each member event, to activate the tree.
   */
  readonly treeMode: () => boolean;
  /** Aborts when the node stops: every timer is cancelled. */
  readonly signal: AbortSignal;
  readonly limits?: Partial<PlumtreeLimits>;
}

/** Control entries are worth little after this long. */
const CONTROL_DEADLINE_MS = 10_000;

/** A node's Plumtree dissemination. */
export class PlumtreeGlue {
  readonly #d: PlumtreeGlueDeps;
  readonly #tree: Plumtree<TreeMessage>;
  /** Entries sent, by kind, for metrics and simulations. */
  readonly stats = { pushes: 0, ihaveIds: 0, grafts: 0, prunes: 0 };
  /**
   * Whether the tree is in use here: this node broadcast through it, or got a tree entry. Until
   * then the view is kept but nothing is sent (with `dissemination: 'auto'`, a small network
   * never uses the tree); on activation every eager peer is greeted.
   */
  #active = false;

  constructor(deps: PlumtreeGlueDeps) {
    this.#d = deps;
    this.#tree = new Plumtree<TreeMessage>({
      clock: deps.clock,
      random: deps.random,
      fanout: deps.fanout,
      sizeOf: (m) => m.data.length + 256,
      sink: (actions) => this.#execute(actions),
      ...(deps.limits !== undefined ? { limits: deps.limits } : {}),
    });
    if (deps.signal.aborted) this.#tree.close();
    else deps.signal.addEventListener('abort', () => this.#tree.close(), { once: true });
  }

  /** The protocol state (for tests). */
  get tree(): Plumtree<TreeMessage> {
    return this.#tree;
  }

  /** Keeps the peer sets in step with the membership. */
  onMemberEvent(event: string, peer: Peer): void {
    if (event === 'member:join') {
      if (this.#d.membership.get(peer.id)?.kind !== 'tsp2p') return;
      this.#tree.addPeer(peer.id);
      if (!this.#active && this.#d.treeMode()) this.#activate();
    } else if (event === 'member:fail' || event === 'member:leave') {
      this.#tree.removePeer(peer.id);
    }
  }

  /**
   * A broadcast this node writes. Returns the message and the members it goes to in full (the
   * eager peers, and every gop2p member, which takes no part in the tree), for the caller to
   * deliver and report; the announcements to lazy peers are queued here.
   */
  originate(id: string, data: Uint8Array): { msg: OutboundMessage; targets: Member[] } {
    this.#activate();
    const ts = wallTime(this.#d.clock);
    const b64 = encodeData(data);
    const item: TreeMessage = {
      ref: { origin: this.#d.selfId, id },
      ts,
      data: b64,
      sig: this.#d.sign({ type: MessageType.Broadcast, id, ts, data: b64 }),
      origin: undefined,
      hops: 0,
    };
    const actions = this.#tree.broadcast(item.ref, item);
    let eager: readonly string[] = [];
    const rest: PlumtreeAction<TreeMessage>[] = [];
    for (const a of actions) {
      if (a.kind === 'push') eager = a.to;
      else rest.push(a);
    }
    this.#execute(rest);
    const targets = eager.map((p) => this.#member(p)).filter((m) => m !== undefined);
    for (const m of this.#d.membership.live()) if (m.kind === 'gop2p') targets.push(m);
    const msg = this.#push(item);
    let single: Sealed | undefined;
    const withSingle: OutboundMessage = {
      ...msg,
      single: () => {
        single ??= this.#d.seal(id, data);
        return single;
      },
    };
    this.stats.pushes += targets.length;
    return { msg: withSingle, targets };
  }

  /**
   * A broadcast received in a batch with `tree: true`: checked against its origin's signature
   * (when relayed), delivered once, passed on along the tree.
   *
   * @param senderKey - the batch sender's public key (`from.key`): the origin's, at the first hop
   */
  receive(sender: Peer, msg: BatchedMessage, data: Uint8Array, senderKey: string | undefined): void {
    this.#activate();
    const originWire = msg.origin;
    const originId = originWire?.id ?? sender.id;
    const ref: MessageRef = { origin: originId, id: msg.id };
    // A relay's signature covers only its batch: a relayed message needs its origin's own.
    if (originWire !== undefined && !this.#tree.has(ref) && !this.#d.checkRelayed(originWire, msg, msg.sig)) {
      this.#d.logger.warn('relayed message refused: not signed by its origin', {
        id: msg.id,
        from: sender.id,
      });
      return;
    }
    const hops = msg.hops ?? 0;
    const item: TreeMessage = {
      ref,
      ts: msg.ts,
      data: msg.data,
      sig: msg.sig,
      origin: originWire ?? { ...wireOf(sender), ...(senderKey !== undefined ? { key: senderKey } : {}) },
      hops: hops + 1,
    };
    const r = this.#tree.receive(sender.id, ref, item);
    if (r.fresh) {
      const origin =
        originWire === undefined
          ? sender
          : (this.#d.membership.get(originId)?.peer ?? peerOfWire(originId, originWire));
      this.#d.hand(new ReceivedMessage(msg.id, 'broadcast', origin, data, hops));
    }
    this.#execute(r.actions);
  }

  /** An IHAVE, GRAFT or PRUNE entry from `sender`. */
  control(sender: Peer, entry: TreeControl): void {
    this.#activate();
    const refs = entry.ids ?? [];
    switch (entry.type) {
      case TreeEntry.IHave:
        this.#tree.ihave(sender.id, refs);
        break;
      case TreeEntry.Graft:
        this.#execute(this.#tree.graft(sender.id, refs));
        break;
      case TreeEntry.Prune:
        this.#tree.prune(sender.id);
        break;
    }
  }

  #activate(): void {
    if (this.#active) return;
    this.#active = true;
    this.#execute(this.#tree.greetAll());
  }

  #execute(actions: readonly PlumtreeAction<TreeMessage>[]): void {
    if (!this.#active) return;
    for (const a of actions) {
      if (a.kind === 'push') {
        const out = this.#push(a.message);
        for (const p of a.to) {
          const m = this.#member(p);
          if (m === undefined) continue;
          this.stats.pushes++;
          this.#d.enqueue(m, out);
        }
        continue;
      }
      const m = this.#member(a.to);
      if (m === undefined) continue;
      if (a.kind === 'ihave') {
        this.stats.ihaveIds += a.refs.length;
        this.#d.enqueue(m, this.#control(TreeEntry.IHave, a.refs));
      } else if (a.kind === 'graft') {
        this.stats.grafts++;
        this.#d.enqueue(m, this.#control(TreeEntry.Graft, a.refs));
      } else {
        this.stats.prunes++;
        this.#d.enqueue(m, this.#control(TreeEntry.Prune, undefined));
      }
    }
  }

  /** A live tsp2p member by id. */
  #member(id: string): Member | undefined {
    const m = this.#d.membership.get(id);
    return m !== undefined && m.kind === 'tsp2p' && isLive(m.state) ? m : undefined;
  }

  #push(item: TreeMessage): OutboundMessage {
    const fragment = JSON.stringify({
      type: MessageType.Broadcast,
      id: item.ref.id,
      ts: item.ts,
      data: item.data,
      hops: item.hops,
      tree: true,
      ...(item.origin !== undefined ? { origin: item.origin } : {}),
      ...(item.sig !== undefined ? { sig: item.sig } : {}),
    });
    return {
      id: item.ref.id,
      fragment,
      bytes: fragment.length,
      single: () => {
        throw new Error('a tree message goes to tsp2p members only');
      },
      deadline: this.#d.clock.now() + this.#d.deliveryTimeoutMs,
    };
  }

  #control(type: number, refs: readonly MessageRef[] | undefined): OutboundMessage {
    const fragment = JSON.stringify(
      refs === undefined ? { type } : { type, ids: refs.map((r) => ({ origin: r.origin, id: r.id })) },
    );
    return {
      id: `tree-${type}`,
      fragment,
      bytes: fragment.length,
      single: () => {
        throw new Error('a tree control entry goes to tsp2p members only');
      },
      deadline: this.#d.clock.now() + Math.min(CONTROL_DEADLINE_MS, this.#d.deliveryTimeoutMs),
    };
  }
}

function wireOf(peer: Peer): WirePeer {
  const wire: WirePeer = { address: peer.address, port: peer.port, id: peer.id };
  if (peer.name !== undefined) wire.name = peer.name;
  return wire;
}

function peerOfWire(id: string, wire: WirePeer): Peer {
  const base = { id, address: wire.address, port: wire.port };
  return Object.freeze(wire.name === undefined || wire.name === '' ? base : { ...base, name: wire.name });
}
