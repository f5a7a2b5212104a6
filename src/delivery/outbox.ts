/**
 * A started node's outbound side: one {@link PeerQueue} per member, the messages it builds once for
 * every receiver, and delivery with backpressure. Batches are sealed with the member's session MAC
 * when both hold one, with this node's signature otherwise.
 *
 * @module
 */

import type { Clock } from '../clock.js';
import { BackpressureError, type P2PError, PeerUnreachableError, ProtocolError } from '../errors.js';
import type { Logger } from '../logger.js';
import { destinationOf, type Member } from '../membership/member-table.js';
import type { MemberEvent } from '../membership/membership.js';
import { formatHostPort, type Peer } from '../peer.js';
import { encodeMessageEntry, type LogNumber } from '../protocol/batch-entry.js';
import { encodeData } from '../protocol/codec.js';
import type { Sealed } from '../protocol/envelope.js';
import type { MessageType, WirePeer } from '../protocol/schema.js';
import type { Sealer } from '../protocol/sealer.js';
import type { Random } from '../random.js';
import { type OriginSigner, signedBytes } from '../security/gossip-signature.js';
import type { SessionKeys } from '../security/session-keys.js';
import type { PeerClient } from '../transport/peer-client.js';
import type { DeliveryFailure, DeliveryReport } from '../types.js';
import type { OutboundMessage, PeerQueueLimits } from './outbound.js';
import type { PendingSignature } from './own-log.js';
import { type Outcomes, PeerQueue, type Queued } from './peer-queue.js';

/**
 * What an entry may hold beyond its payload, topic, dependencies and recipients, at most: type,
 * id, timestamp, hop count, signature, and log number (epoch, channel prefix, seq, chain hash),
 * with the JSON around them.
 */
const ENTRY_SLACK = 448;

/** A message this node writes, ready to queue: with its timestamp and origin signature. */
export interface WrittenOutbound extends OutboundMessage {
  /** Its `ts`, ms since the epoch. */
  readonly ts: number;
  /** The origin signature (base64url) in its entry, when signed. */
  readonly sig?: string | undefined;
  /** A signature the log decides on, before the message is first sent (`extra.deferSig`). */
  readonly pending?: PendingSignature;
}

/** What a signature adds to an entry: `"sig":"` and 86 characters of base64url, `"` and a comma. */
const SIG_FIELD_BYTES = 95;

/**
 * A message whose origin signature the log decides before it is first sent
 * ({@link PendingSignature}): its entry is built without `sig`, and again with it once signed.
 * Its `bytes` counts the signature either way, so that the queues' accounting never changes.
 */
class DeferredOutbound implements WrittenOutbound, PendingSignature {
  readonly id: string;
  readonly bytes: number;
  readonly single: () => Sealed;
  readonly deadline: number;
  readonly ts: number;
  readonly signed: Uint8Array;
  readonly #entry: (sig: string | undefined) => Buffer;
  readonly #signer: OriginSigner;
  readonly #decide: (() => void) | undefined;
  #fragment: Buffer;
  #decided = false;
  #sig: string | undefined;

  constructor(
    common: Pick<WrittenOutbound, 'id' | 'single' | 'deadline' | 'ts'> & { single: () => Sealed },
    entry: (sig: string | undefined) => Buffer,
    signed: Uint8Array,
    signer: OriginSigner,
    decide: (() => void) | undefined,
  ) {
    this.id = common.id;
    this.single = common.single;
    this.deadline = common.deadline;
    this.ts = common.ts;
    this.signed = signed;
    this.#entry = entry;
    this.#signer = signer;
    this.#decide = decide;
    this.#fragment = entry(undefined);
    this.bytes = this.#fragment.length + SIG_FIELD_BYTES;
  }

  /** The entry; the log decides its signature first when it has not yet (it always has by then). */
  get fragment(): Buffer {
    if (!this.#decided) this.#decide?.();
    this.#decided = true;
    return this.#fragment;
  }

  /** The signature, once signed. */
  get sig(): string | undefined {
    return this.#sig;
  }

  /** This message has no signature of its own yet: the log decides (see {@link PendingSignature}). */
  get pending(): PendingSignature {
    return this;
  }

  sign(): string {
    if (this.#decided) throw new ProtocolError(`message ${this.id}: its signature was decided already`);
    this.#decided = true;
    this.#sig = this.#signer.signBytes(this.signed);
    this.#fragment = this.#entry(this.#sig);
    return this.#sig;
  }

  skip(): void {
    this.#decided = true;
  }
}

/** The settings an {@link Outbox} reads: the queues' limits, and what a full queue does. */
export interface OutboxOptions extends Omit<PeerQueueLimits, 'coalesce'> {
  /** How long a message may wait for delivery, in ms. */
  readonly deliveryTimeoutMs: number;
  /** A full queue makes `deliver()` wait for room, or refuse at once. */
  readonly backpressure: 'wait' | 'reject';
}

/** What an outbox needs from its node. */
export interface OutboxDeps {
  readonly client: PeerClient;
  readonly clock: Clock;
  readonly random: Random;
  readonly logger: Logger;
  readonly options: OutboxOptions;
  /** Aborts every request when the node stops. */
  readonly signal: AbortSignal;
  /** Pairwise session keys: batches to a member whose key we hold carry a MAC, not a signature. */
  readonly sessions: SessionKeys;
  /** Builds and signs this node's envelopes and batches. */
  readonly sealer: Sealer;
  /** Counters the node exposes. */
  readonly onBatch: (messages: number, ok: boolean) => void;
  /** Called before any request leaves (see `PeerQueueDeps.beforeSend`). */
  readonly beforeSend?: () => void;
}

/**
 * The outcomes of one message queued to several members (see `Outcomes` in `peer-queue.ts`):
 * {@link Fanout.done} resolves, once every queue has settled its slot, with each member's error
 * (`undefined`: delivered). One object and one promise per message, whatever the members.
 */
class Fanout implements Outcomes {
  readonly done: Promise<readonly (P2PError | undefined)[]>;
  readonly #errors: (P2PError | undefined)[];
  readonly #settled: Uint8Array;
  #left: number;
  #resolve!: (errors: readonly (P2PError | undefined)[]) => void;

  constructor(n: number) {
    this.#errors = new Array<P2PError | undefined>(n).fill(undefined);
    this.#settled = new Uint8Array(n);
    this.#left = n;
    this.done = new Promise((resolve) => {
      this.#resolve = resolve;
    });
    if (n === 0) this.#resolve(this.#errors);
  }

  settled(slot: number, error: P2PError | undefined): void {
    if (this.#settled[slot] === 1) return;
    this.#settled[slot] = 1;
    if (error !== undefined) this.#errors[slot] = error;
    if (--this.#left === 0) this.#resolve(this.#errors);
  }
}

/** The outbound queues of one run of a node, by member id. */
export class Outbox {
  readonly #d: OutboxDeps;
  /** One outbound queue per member, by id. */
  readonly #queues = new Map<string, PeerQueue>();

  constructor(deps: OutboxDeps) {
    this.#d = deps;
  }

  /** The queues, and the messages and bytes they hold (for metrics). */
  stats(): { queues: number; messages: number; bytes: number } {
    const deliveryQueues = { queues: this.#queues.size, messages: 0, bytes: 0 };
    for (const q of this.#queues.values()) {
      deliveryQueues.messages += q.length;
      deliveryQueues.bytes += q.bytes;
    }
    return deliveryQueues;
  }

  /** Waits until every queue has sent what it holds, or `timeoutMs` passes. */
  async flush(timeoutMs: number): Promise<void> {
    await Promise.all([...this.#queues.values()].map((q) => q.flush(timeoutMs)));
  }

  /**
   * A message this node writes, serialized once for every receiver (see
   * `src/protocol/batch-entry.ts`), with its classic envelope for gop2p members, built on first need.
   *
   * @param extra - `to`: the recipients of a direct message; `gossip`: relays will pass it on, so
   *   it goes at hop 0 with its origin signature, made by this signer; `topic` and `deps`: a
   *   publish's topic and causal dependencies; `log`: its number in this node's log, with
   *   `signer` to sign it (so that any member can serve it by catch-up); `deferSig` (with `log`
   *   and `signer`, not `gossip`): the log decides whether it is signed, before it is first sent
   *   ({@link WrittenOutbound.pending})
   */
  outbound(
    type: typeof MessageType.Broadcast | typeof MessageType.Direct,
    id: string,
    data: Uint8Array,
    extra: {
      readonly to?: WirePeer[];
      readonly gossip?: OriginSigner;
      readonly topic?: string;
      readonly deps?: readonly string[];
      readonly log?: LogNumber;
      readonly signer?: OriginSigner;
      readonly deferSig?: boolean;
    } = {},
  ): WrittenOutbound {
    const { to, gossip, topic, log } = extra;
    const deps = extra.deps !== undefined && extra.deps.length > 0 ? extra.deps : undefined;
    const ts = this.#d.sealer.now();
    const b64 = encodeData(data);
    const signer = gossip ?? extra.signer;
    const fields = {
      type,
      id,
      ts,
      data: b64,
      topic,
      deps,
      epoch: log?.epoch,
      channel: log?.channel,
      seq: log?.seq,
      prev: log?.prev,
    };
    const deferred =
      extra.deferSig === true && gossip === undefined && log !== undefined && signer !== undefined;
    const sig = signer === undefined || deferred ? undefined : signer.sign(fields);
    const entry = (sig: string | undefined): Buffer =>
      encodeMessageEntry({
        type,
        id,
        ts,
        data: b64,
        ...(to !== undefined ? { to } : {}),
        ...(gossip !== undefined ? { hops: 0 } : {}),
        ...(sig !== undefined ? { sig } : {}),
        ...(topic !== undefined ? { topic } : {}),
        ...(log !== undefined ? { log } : {}),
        ...(deps !== undefined ? { deps } : {}),
      });
    let single: Sealed | undefined;
    const common = {
      id,
      single: () => {
        single ??= this.#d.sealer.seal(type, { id, data, ...(to !== undefined ? { to } : {}) });
        return single;
      },
      deadline: this.#d.clock.now() + this.#d.options.deliveryTimeoutMs,
      ts,
    };
    if (deferred) {
      return new DeferredOutbound(common, entry, signedBytes(fields), signer, this.#d.beforeSend);
    }
    const fragment = entry(sig);
    return { ...common, fragment, bytes: fragment.length, ...(sig !== undefined ? { sig } : {}) };
  }

  /**
   * An upper bound of the bytes of the entry {@link Outbox.outbound} builds for `id` and `data` with
   * `extra`, whatever its log number and signature: what a caller asks
   * {@link Outbox.room} for before it numbers the message.
   */
  sizeBound(
    id: string,
    data: Uint8Array,
    extra: { readonly to?: WirePeer[]; readonly topic?: string; readonly deps?: readonly string[] } = {},
  ): number {
    let bytes = ENTRY_SLACK + Buffer.byteLength(id) + Math.ceil(data.length / 3) * 4;
    // The topic, and the channel named after it.
    if (extra.topic !== undefined) bytes += 2 * (Buffer.byteLength(extra.topic) + 16);
    if (extra.deps !== undefined) bytes += Buffer.byteLength(JSON.stringify(extra.deps)) + 8;
    if (extra.to !== undefined) bytes += Buffer.byteLength(JSON.stringify(extra.to)) + 8;
    return bytes;
  }

  /**
   * Room for a message of up to `bytes` in the queue of each member: `undefined` when every queue
   * has room now (the caller queues at once, synchronously), else a promise that resolves once
   * they all have (`backpressure: 'wait'`; callers are let in in the order they came), or
   * rejects: with `ERR_BACKPRESSURE` (`'reject'`), or with `signal.reason`. A caller numbers and
   * logs its message only once it has room, so a call that fails leaves no trace.
   */
  room(
    members: readonly Member[],
    bytes: number,
    signal: AbortSignal | undefined,
  ): Promise<void> | undefined {
    const full = members.map((m) => this.queueFor(m)).filter((q) => !q.hasRoom(bytes));
    if (full.length === 0) return undefined;
    if (this.#d.options.backpressure === 'reject') {
      return Promise.reject(
        new BackpressureError(
          `the outbound queue of ${full.length} member(s) is full (maxQueueMessages / maxQueueBytes)`,
        ),
      );
    }
    return Promise.all(full.map((q) => q.waitForRoom(bytes, signal))).then(
      () => undefined,
      (err: unknown) => {
        // Queues that let this call in counted it as queued: let the next callers in instead.
        for (const q of full) q.recheckRoom();
        throw err;
      },
    );
  }

  /**
   * Queues `msg` to each member and resolves once each has acknowledged it or it was given up.
   * The caller has made room first ({@link Outbox.room}): nothing waits here.
   */
  async deliver(
    msg: OutboundMessage,
    members: readonly Member[],
    signal: AbortSignal | undefined,
  ): Promise<DeliveryReport> {
    const n = members.length;
    const fanout = new Fanout(n);
    const queued: Queued[] = new Array<Queued>(n);
    for (let i = 0; i < n; i++) queued[i] = this.queueFor(members[i]!).add(msg, fanout, i);
    let errors: readonly (P2PError | undefined)[];
    if (signal === undefined) errors = await fanout.done;
    else {
      const aborted = new Promise<never>((_, reject) => {
        const onAbort = (): void => {
          for (const q of queued) q.cancelled = true;
          reject(signal.reason);
        };
        if (signal.aborted) onAbort();
        else {
          signal.addEventListener('abort', onAbort, { once: true });
          void fanout.done.finally(() => signal.removeEventListener('abort', onAbort));
        }
      });
      errors = await Promise.race([fanout.done, aborted]);
    }
    const delivered: Peer[] = [];
    const failed: DeliveryFailure[] = [];
    for (let i = 0; i < n; i++) {
      const peer = members[i]!.peer;
      const error = errors[i];
      if (error === undefined) delivered.push(peer);
      else failed.push({ peer, error });
    }
    if (failed.length > 0) {
      this.#d.logger.warn('delivery failed', {
        id: msg.id,
        failed: failed.map((f) => `${formatHostPort(f.peer.address, f.peer.port)} ${f.error.code}`),
      });
    }
    return { id: msg.id, delivered, failed };
  }

  /** Queues `out` to a member if its queue has room: best effort (relays and the tree repair a loss). */
  offer(m: Member, out: OutboundMessage): void {
    const q = this.queueFor(m);
    if (q.hasRoom(out.bytes)) q.enqueue(out).done.catch(() => undefined);
  }

  queueFor(m: Member): PeerQueue {
    let q = this.#queues.get(m.peer.id);
    if (q === undefined) {
      const o = this.#d.options;
      q = new PeerQueue(destinationOf(m), m.kind === 'tsp2p', {
        client: this.#d.client,
        clock: this.#d.clock,
        random: this.#d.random,
        signal: this.#d.signal,
        // A new stream per queue: a queue rebuilt after a leave, a death or a reconnect numbers
        // from 1 again, and the receiver would take those numbers for retries of the old ones.
        stream: this.#d.sealer.newId(),
        limits: {
          maxBatchMessages: o.maxBatchMessages,
          maxBatchBytes: o.maxBatchBytes,
          maxQueueMessages: o.maxQueueMessages,
          maxQueueBytes: o.maxQueueBytes,
          requestTimeoutMs: o.requestTimeoutMs,
          progressMs: o.deliveryTimeoutMs,
          retryBaseMs: o.retryBaseMs,
          retryMaxMs: o.retryMaxMs,
          maxInFlight: o.maxInFlight,
          pipelineBytes: o.pipelineBytes,
          coalesce: true,
        },
        sealBatch: (stream, seq, fragments, base) =>
          this.#d.sealer.sealBatch(
            stream,
            seq,
            fragments,
            base,
            this.#d.sessions.signerFor(m.peer.id, this.#d.sealer.signer),
          ),
        // The member holds no session key for us (it restarted, or never saw our key): sign
        // until it has taken a signed request.
        retryAtOnce: (error) => {
          if (error.reason !== 'no_session') return false;
          this.#d.sessions.refused(m.peer.id);
          return true;
        },
        onBatch: (messages, ok) => {
          if (ok) this.#d.sessions.accepted(m.peer.id);
          this.#d.onBatch(messages, ok);
        },
        ...(this.#d.beforeSend !== undefined ? { beforeSend: this.#d.beforeSend } : {}),
      });
      this.#queues.set(m.peer.id, q);
    }
    return q;
  }

  /** A member failed or left: nothing more can reach it, so what waits for it is given up now. */
  memberGone(event: Extract<MemberEvent, 'member:fail' | 'member:leave'>, peer: Peer): void {
    const q = this.#queues.get(peer.id);
    if (q !== undefined) {
      this.#queues.delete(peer.id);
      const where = formatHostPort(peer.address, peer.port);
      q.close(
        new PeerUnreachableError(
          event === 'member:fail' ? `${where} was declared dead` : `${where} left the network`,
        ),
      );
    }
  }

  closeQueues(reason: P2PError): void {
    for (const q of this.#queues.values()) q.close(reason);
    this.#queues.clear();
  }
}
