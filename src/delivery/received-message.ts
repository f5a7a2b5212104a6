/**
 * The message object handed to the application.
 *
 * @module
 */

import type { Peer } from '../peer.js';
import type { Message } from '../types.js';

const utf8 = new TextDecoder();

/** A received message; `text` is decoded on first use. */
export class ReceivedMessage implements Message {
  readonly id: string;
  readonly type: 'broadcast' | 'direct';
  readonly from: Peer;
  readonly data: Uint8Array;
  readonly hops?: number;
  #text: string | undefined;

  constructor(id: string, type: 'broadcast' | 'direct', from: Peer, data: Uint8Array, hops?: number) {
    this.id = id;
    this.type = type;
    this.from = from;
    this.data = data;
    if (hops !== undefined) this.hops = hops;
  }

  get text(): string {
    this.#text ??= utf8.decode(this.data);
    return this.#text;
  }

  toJSON(): { id: string; type: 'broadcast' | 'direct'; from: Peer; text: string } {
    return { id: this.id, type: this.type, from: this.from, text: this.text };
  }
}
