/**
 * Binds the {@link Plumtree} state machine to a node, for `dissemination.ts` (its one user):
 * member events feed its peer sets, batch entries feed its handlers, and its actions become
 * entries in the per-member outbound queues (messages with `tree: true`, and IHAVE / GRAFT /
 * PRUNE control entries; see PROTOCOL.md). Relayed entries reach it with their origin's
 * signature already checked.
 *
 * @module
 */

import type { Clock } from '../clock.js';
import type { Member } from '../membership/member-table.js';
import { isLive } from '../membership/merge.js';
import type { Peer } from '../peer.js';
import { encodeMessageEntry, encodeTreeControl, type LogNumber, logOf } from '../protocol/batch-entry.js';
import { encodeData } from '../protocol/codec.js';
import type { Sealed } from '../protocol/envelope.js';
import {
  type BatchedMessage,
  MessageType,
  type TreeControl,
  TreeEntry,
  type WirePeer,
} from '../protocol/schema.js';
import type { Sealer } from '../protocol/sealer.js';
import { fromWirePeer, toWirePeer } from '../protocol/wire-peer.js';
import type { Random } from '../random.js';
import type { OriginSigner } from '../security/gossip-signature.js';
import type { OutboundMessage } from './outbound.js';
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
  /** Its number in the origin's log (history), when it carries one. */
  readonly log?: LogNumber | undefined;
}

/** What the glue needs from its node. */
export interface PlumtreeGlueDeps {
  readonly selfId: string;
  readonly clock: Clock;
  readonly random: Random;
  /** Looks members up by id. */
  readonly members: { get(id: string): Member | undefined };
  /** The members a broadcast is for (its gop2p ones get it in full: they take no part in the tree). */
  readonly audience: () => readonly Member[];
  /** The view size for `members` members. */
  readonly fanout: (members: number) => number;
  readonly deliveryTimeoutMs: number;
  /** Queues an entry to a member, best effort (the tree repairs a loss). */
  readonly enqueue: (member: Member, out: OutboundMessage) => void;
  /**
   * Whether a message is delivered for the first time (by origin and id), beyond what the tree
   * remembers; records it (`InboundGuard.relayedOnce`). @default always
   */
  readonly relayedOnce?: (originId: string, id: string, ts: number) => boolean;
  /** Signs a message this node writes. */
  readonly signer: OriginSigner;
  /** Builds the classic envelope of a broadcast, for gop2p members, and stamps messages. */
  readonly sealer: Sealer;
  /** Hands a new message to the node. */
  readonly deliver: (message: ReceivedMessage) => void;
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

  /** Whether the tree holds the message `ref` (received or sent within its memory). */
  has(ref: MessageRef): boolean {
    return this.#tree.has(ref);
  }

  /** Forgets every peer: this node left the network (its member table is cleared without events). */
  clear(): void {
    this.#tree.removeAll();
  }

  /** Keeps the peer sets in step with the membership. */
  onMemberEvent(event: string, peer: Peer): void {
    if (event === 'member:join') {
      if (this.#d.members.get(peer.id)?.kind !== 'tsp2p') return;
      this.#tree.addPeer(peer.id);
      if (!this.#active && this.#d.treeMode()) this.#activate();
    } else if (event === 'member:fail' || event === 'member:leave') {
      this.#tree.removePeer(peer.id);
    }
  }

  /**
   * The members a broadcast this node writes now would go to in full (see
   * {@link PlumtreeGlue.originate}): the eager peers (the lazy ones while there is none, as one
   * of them is then made eager) and every gop2p member. Changes nothing.
   */
  targets(): Member[] {
    const eager = this.#tree.eager.size > 0 ? this.#tree.eager : this.#tree.lazy;
    const targets = [...eager].map((p) => this.#member(p)).filter((m) => m !== undefined);
    for (const m of this.#d.audience()) if (m.kind === 'gop2p') targets.push(m);
    return targets;
  }

  /**
   * A broadcast this node writes. Returns the message and the members it goes to in full (the
   * eager peers, and every gop2p member, which takes no part in the tree), for the caller to
   * deliver and report; the announcements to lazy peers are queued here.
   */
  originate(
    id: string,
    data: Uint8Array,
    log?: LogNumber,
  ): { msg: OutboundMessage; targets: Member[]; ts: number; sig: string } {
    this.#activate();
    const ts = this.#d.sealer.now();
    const b64 = encodeData(data);
    const sig = this.#d.signer.sign({
      type: MessageType.Broadcast,
      id,
      ts,
      data: b64,
      epoch: log?.epoch,
      channel: log?.channel,
      seq: log?.seq,
      prev: log?.prev,
    });
    const item: TreeMessage = {
      ref: { origin: this.#d.selfId, id },
      ts,
      data: b64,
      sig,
      origin: undefined,
      hops: 0,
      log,
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
    for (const m of this.#d.audience()) if (m.kind === 'gop2p') targets.push(m);
    const msg = this.#push(item);
    let single: Sealed | undefined;
    const withSingle: OutboundMessage = {
      ...msg,
      single: () => {
        single ??= this.#d.sealer.seal(MessageType.Broadcast, { id, data });
        return single;
      },
    };
    return { msg: withSingle, targets, ts, sig };
  }

  /**
   * A broadcast received in a batch with `tree: true` (a relayed one already checked against its
   * origin's signature): delivered once, passed on along the tree.
   *
   * @param senderKey - the batch sender's public key (`from.key`): the origin's, at the first hop
   */
  receive(sender: Peer, msg: BatchedMessage, data: Uint8Array, senderKey: string | undefined): void {
    this.#activate();
    const originWire = msg.origin;
    const originId = originWire?.id ?? sender.id;
    const ref: MessageRef = { origin: originId, id: msg.id };
    const hops = msg.hops ?? 0;
    const item: TreeMessage = {
      ref,
      ts: msg.ts,
      data: msg.data,
      sig: msg.sig,
      origin: originWire ?? { ...toWirePeer(sender), ...(senderKey !== undefined ? { key: senderKey } : {}) },
      hops: hops + 1,
      log: logOf(msg),
    };
    const r = this.#tree.receive(sender.id, ref, item);
    // The tree forgets its oldest ids under a flood: a message is delivered once all the same.
    if (r.fresh && this.#d.relayedOnce?.(originId, msg.id, msg.ts) !== false) {
      const origin =
        originWire === undefined
          ? sender
          : (this.#d.members.get(originId)?.peer ?? fromWirePeer({ ...originWire, id: originId }));
      const log = item.log;
      this.#d.deliver(
        new ReceivedMessage(msg.id, 'broadcast', origin, data, hops, msg.ts).withLog(
          log === undefined
            ? undefined
            : { ...log, sig: msg.sig, key: item.origin?.key ?? this.#d.members.get(originId)?.record?.key },
        ),
      );
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
          this.#d.enqueue(m, out);
        }
        continue;
      }
      const m = this.#member(a.to);
      if (m === undefined) continue;
      if (a.kind === 'ihave') this.#d.enqueue(m, this.#control(TreeEntry.IHave, a.refs));
      else if (a.kind === 'graft') this.#d.enqueue(m, this.#control(TreeEntry.Graft, a.refs));
      else this.#d.enqueue(m, this.#control(TreeEntry.Prune, undefined));
    }
  }

  /** A live tsp2p member by id. */
  #member(id: string): Member | undefined {
    const m = this.#d.members.get(id);
    return m !== undefined && m.kind === 'tsp2p' && isLive(m.state) ? m : undefined;
  }

  #push(item: TreeMessage): OutboundMessage {
    const fragment = encodeMessageEntry({
      type: MessageType.Broadcast,
      id: item.ref.id,
      ts: item.ts,
      data: item.data,
      hops: item.hops,
      tree: true,
      ...(item.origin !== undefined ? { origin: item.origin } : {}),
      ...(item.sig !== undefined ? { sig: item.sig } : {}),
      ...(item.log !== undefined ? { log: item.log } : {}),
    });
    // Tree entries go to tsp2p members only: no classic form.
    return {
      id: item.ref.id,
      fragment,
      bytes: fragment.length,
      deadline: this.#d.clock.now() + this.#d.deliveryTimeoutMs,
    };
  }

  #control(
    type: (typeof TreeEntry)[keyof typeof TreeEntry],
    refs: readonly MessageRef[] | undefined,
  ): OutboundMessage {
    const fragment = encodeTreeControl(type, refs);
    return {
      id: `tree-${type}`,
      fragment,
      bytes: fragment.length,
      deadline: this.#d.clock.now() + Math.min(CONTROL_DEADLINE_MS, this.#d.deliveryTimeoutMs),
    };
  }
}
