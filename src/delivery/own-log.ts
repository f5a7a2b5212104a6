/**
 * What dissemination tells the node's log about the messages this node writes: each one is
 * numbered in its channel ({@link OwnLog.number}) and recorded ({@link OwnLog.wrote}) before it
 * is queued to anyone, so that a crash between the two never sends a number the log does not
 * hold (see `src/store/store.ts`, "How messages are identified").
 *
 * @module
 */

import type { LogNumber } from '../protocol/batch-entry.js';
import type { MessageKind } from '../store/store.js';

/** A message this node wrote, as it goes out. */
export interface WrittenMessage {
  readonly id: string;
  readonly kind: MessageKind;
  /** A publish's topic. */
  readonly topic?: string;
  /** A direct message's recipient (node id). */
  readonly to?: string;
  readonly log: LogNumber;
  /** Its timestamp, ms since the epoch. */
  readonly ts: number;
  readonly data: Uint8Array;
  /** This node's signature of it (base64url), when it was signed as it was built. */
  readonly sig: string | undefined;
  /** Instead of `sig`: a signature the log decides on (see {@link PendingSignature}). */
  readonly pending?: PendingSignature;
  /** A publish's causal dependencies (covered by the signature). */
  readonly deps?: readonly string[];
}

/**
 * The origin signature of a message this node sends in full to its members, decided by the log:
 * the last message of each burst of a stream is signed, the ones before it are vouched for by the
 * chain (see "Signed ends" in `src/security/gossip-signature.ts`). Decided once, before the
 * message's entry is first read to be sent.
 */
export interface PendingSignature {
  /** The bytes the origin signs (`signedBytes`). */
  readonly signed: Uint8Array;
  /** Signs the message; returns its signature (base64url). */
  sign(): string;
  /** The message goes without a signature of its own. */
  skip(): void;
}

/** The node's log, as dissemination writes to it. */
export interface OwnLog {
  /** The number of this node's next message of `channel` (`b`, `t:TOPIC`, `d:RECIPIENT`). */
  number(channel: string): LogNumber;
  /** Records a message this node wrote, before it is queued. */
  wrote(message: WrittenMessage): void;
}
