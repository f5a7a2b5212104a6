/**
 * The sending side of the envelope: one {@link Sealer} per run of a node builds and signs
 * everything it sends. It knows who this node is (address, id, incarnation, session key), where
 * message ids come from, and the wall clock that stamps `ts`.
 *
 * @module
 */

import { type Clock, wallTime } from '../clock.js';
import type { Peer, PeerRecordFields } from '../peer.js';
import type { Random } from '../random.js';
import { type EnvelopeSigner, type Sealed, sealBatch, sealEnvelope } from './envelope.js';
import type { LogRequest } from './log-schema.js';
import type { MessageType, WireMemberUpdate, WirePeer } from './schema.js';

/**
 * Message ids: unique per node, and cheap, since every message needs one. 9 random bytes drawn
 * on first use (72 bits: ids of different nodes do not collide), then a counter. One per node,
 * kept across its runs.
 */
export class MessageIds {
  readonly #random: Random;
  #prefix: string | undefined;
  #counter = 0;

  constructor(random: Random) {
    this.#random = random;
  }

  /** A new id. */
  next(): string {
    this.#prefix ??= Buffer.from(this.#random.bytes(9)).toString('base64url');
    return `${this.#prefix}${(this.#counter++).toString(36)}`;
  }
}

/** The optional parts of an envelope a {@link Sealer} builds. */
export interface SealExtra {
  /** The message id; a new one when absent. */
  readonly id?: string;
  readonly data?: Uint8Array;
  readonly to?: readonly WirePeer[];
  /** Membership updates to carry. */
  readonly m?: readonly WireMemberUpdate[];
  /** For a ping-req: the member to ping. */
  readonly target?: WirePeer;
  /** On a connect: an announcement that needs no member list in answer. */
  readonly announce?: boolean;
  /** On a log request (types 12, 13): what is asked for. */
  readonly log?: LogRequest;
  /** On a sync: the digest of this node's membership state, instead of the state. */
  readonly digest?: string;
}

/** What a {@link Sealer} is made of. */
export interface SealerParts {
  /** This node as others reach it. */
  readonly self: Peer;
  /** This node's session public key (`from.xkey`). */
  readonly xkey: string;
  /**
   * Where this node's current incarnation is read (the membership), its tags and topics, and
   * its signature of its self-record at that incarnation (`from.rsig`, see
   * `src/security/record-signature.ts`): every `from` carries them, so that each envelope is its
   * sender's whole, checkable word about itself.
   */
  readonly incarnation: {
    readonly incarnation: number;
    readonly selfFields?: PeerRecordFields;
    selfSignature?(): string;
  };
  /** Signs every envelope, unless a batch is given a session MAC signer. */
  readonly signer: EnvelopeSigner;
  /** Its wall clock stamps `ts`. */
  readonly clock: Clock;
  readonly ids: MessageIds;
}

/** Builds and signs the envelopes of one run of a node. */
export class Sealer {
  readonly #p: SealerParts;

  constructor(parts: SealerParts) {
    this.#p = parts;
  }

  /** This node as others reach it. */
  get self(): Peer {
    return this.#p.self;
  }

  /** The signer of everything this node sends without a session MAC. */
  get signer(): EnvelopeSigner {
    return this.#p.signer;
  }

  /** A new message id. */
  newId(): string {
    return this.#p.ids.next();
  }

  /** The wall-clock time that stamps an envelope or a message now, in ms since the epoch. */
  now(): number {
    return wallTime(this.#p.clock);
  }

  /**
   * This node as the sender of an envelope (`from`), with its incarnation, its self-record's
   * signature and its session key.
   */
  from(): WirePeer {
    const self = this.#p.self;
    const from: WirePeer = {
      address: self.address,
      port: self.port,
      id: self.id,
      inc: this.#p.incarnation.incarnation,
      xkey: this.#p.xkey,
    };
    const rsig = this.#p.incarnation.selfSignature?.();
    if (rsig !== undefined) from.rsig = rsig;
    if (self.name !== undefined) from.name = self.name;
    // The tags and topics the signature covers (issue 19): on every envelope, not only a connect.
    const fields = this.#p.incarnation.selfFields;
    if (fields?.tags !== undefined && Object.keys(fields.tags).length > 0) from.tags = { ...fields.tags };
    if (fields?.topics !== undefined && fields.topics.length > 0) from.topics = [...fields.topics];
    return from;
  }

  /**
   * An envelope of `type`, signed, or authenticated by `signer` (a session MAC: see
   * `src/security/session-keys.ts`).
   */
  seal(type: MessageType, extra: SealExtra = {}, signer: EnvelopeSigner = this.#p.signer): Sealed {
    const from = this.from();
    return sealEnvelope(
      {
        type,
        from,
        id: extra.id ?? this.newId(),
        ts: this.now(),
        ...(extra.data !== undefined ? { data: extra.data } : {}),
        ...(extra.to !== undefined ? { to: extra.to } : {}),
        ...(extra.m !== undefined ? { m: extra.m } : {}),
        ...(extra.target !== undefined ? { target: extra.target } : {}),
        ...(extra.announce === true ? { announce: true } : {}),
        ...(extra.log !== undefined ? { log: extra.log } : {}),
        ...(extra.digest !== undefined ? { digest: extra.digest } : {}),
      },
      signer,
    );
  }

  /**
   * A batch of entries encoded once each (see `batch-entry.ts`), numbered from `seq` on `stream`,
   * authenticated by `signer` (a session MAC) or this node's signature.
   */
  sealBatch(
    stream: string,
    seq: number,
    fragments: readonly (Uint8Array | string)[],
    base: number | undefined,
    signer: EnvelopeSigner = this.#p.signer,
  ): Sealed {
    return sealBatch(
      { from: this.from(), id: this.newId(), ts: this.now(), stream, seq, base },
      fragments,
      signer,
    );
  }
}
