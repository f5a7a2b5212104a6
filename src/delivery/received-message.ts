/**
 * The message object handed to the application.
 *
 * @module
 */

import type { Peer } from '../peer.js';
import type { LogNumber } from '../protocol/batch-entry.js';
import type { Message } from '../types.js';

/** A received message's number in its origin's log, with the origin's signature and key. */
export interface ReceivedLog extends LogNumber {
  /** The origin's signature of the message (base64url), when it came with one. */
  readonly sig?: string | undefined;
  /** The origin's public key (base64url), when known. */
  readonly key?: string | undefined;
}

const utf8 = new TextDecoder();

/** A received message; `text` is decoded on first use. */
export class ReceivedMessage implements Message {
  readonly id: string;
  readonly type: 'broadcast' | 'direct';
  readonly from: Peer;
  readonly data: Uint8Array;
  readonly hops?: number;
  readonly topic?: string;
  readonly at: number;
  /**
   * Delivered late: fetched by catch-up, or after its causal wait gave up on a dependency
   * (`src/delivery/causal.ts`). Set by the node before the application sees the message.
   */
  late = false;
  /** A publish's causal dependencies, as its origin signed them (not part of {@link Message}). */
  readonly deps?: readonly string[];
  #text: string | undefined;
  #log: ReceivedLog | undefined;

  /**
   * @param at - the sender's timestamp (ms)
   * @param topic - a publish's topic
   * @param deps - a publish's causal dependencies
   */
  constructor(
    id: string,
    type: 'broadcast' | 'direct',
    from: Peer,
    data: Uint8Array,
    hops: number | undefined,
    at: number,
    topic?: string,
    deps?: readonly string[],
  ) {
    this.id = id;
    this.type = type;
    this.from = from;
    this.data = data;
    if (hops !== undefined) this.hops = hops;
    this.at = at;
    if (topic !== undefined) this.topic = topic;
    if (deps !== undefined && deps.length > 0) this.deps = deps;
  }

  /** Where it stands in its origin's log (for the node's store); not part of {@link Message}. */
  get log(): ReceivedLog | undefined {
    return this.#log;
  }

  /** Sets {@link ReceivedMessage.log} (when `log` is given); returns this message. */
  withLog(log: ReceivedLog | undefined): this {
    if (log !== undefined) this.#log = log;
    return this;
  }

  get text(): string {
    this.#text ??= utf8.decode(this.data);
    return this.#text;
  }

  toJSON(): {
    id: string;
    type: 'broadcast' | 'direct';
    from: Peer;
    text: string;
    topic?: string;
    late?: true;
  } {
    return {
      id: this.id,
      type: this.type,
      from: this.from,
      text: this.text,
      ...(this.topic !== undefined ? { topic: this.topic } : {}),
      ...(this.late ? { late: true as const } : {}),
    };
  }
}
