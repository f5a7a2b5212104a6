/**
 * The recent conversation of one node, as its page shows it: the messages it received and the
 * ones it sent (from the program, the page or the HTTP API), oldest first. A page that opens, or
 * reloads, starts from these.
 *
 * {@link RecentMessages} is the small interface the web layer needs; {@link MessageRing} keeps
 * the last few hundred in memory. The message store (src/store/) can take its place behind the
 * same interface.
 *
 * @module
 */

/** A peer as the page shows it. */
export interface PeerView {
  readonly id: string;
  readonly address: string;
  readonly port: number;
  readonly name?: string;
}

/** One entry of the conversation, as the page's event feed carries it. */
export type ConversationEntry =
  | {
      /** A message this node received. */
      readonly kind: 'message';
      readonly id: string;
      readonly type: 'broadcast' | 'direct';
      readonly from: PeerView;
      readonly text: string;
      /** A publish: its topic (room). */
      readonly topic?: string;
      /** When this node got it, in ms since the epoch. */
      readonly ts: number;
    }
  | {
      /** A message this node sent. */
      readonly kind: 'sent';
      readonly id: string;
      readonly type: 'broadcast' | 'direct';
      /** The recipients of a direct message. */
      readonly to?: readonly PeerView[];
      readonly text: string;
      /** A publish: its topic (room). */
      readonly topic?: string;
      /** `'local'`: the program running the node (e.g. the terminal chat); `'web'`: a page or the API. */
      readonly origin: 'local' | 'web';
      /** How many recipients got it, and how many did not. */
      readonly delivered: number;
      readonly failed: number;
      /** When it was sent, in ms since the epoch. */
      readonly ts: number;
    };

/** Where the web layer keeps the recent conversation. */
export interface RecentMessages {
  /** Records one entry (the newest). */
  add(entry: ConversationEntry): void;
  /** The last `n` entries at most, oldest first. */
  recent(n: number): ConversationEntry[];
}

/** How many entries a {@link MessageRing} keeps by default. */
export const RECENT_MESSAGES = 200;

/** The last `capacity` entries, in memory: a fixed array used as a ring. */
export class MessageRing implements RecentMessages {
  readonly #slots: (ConversationEntry | undefined)[];
  /** Where the next entry goes. */
  #next = 0;
  #size = 0;

  constructor(capacity: number = RECENT_MESSAGES) {
    if (!Number.isInteger(capacity) || capacity < 1)
      throw new RangeError('capacity must be a positive integer');
    this.#slots = new Array<ConversationEntry | undefined>(capacity);
  }

  /** How many entries it holds. */
  get size(): number {
    return this.#size;
  }

  add(entry: ConversationEntry): void {
    this.#slots[this.#next] = entry;
    this.#next = (this.#next + 1) % this.#slots.length;
    this.#size = Math.min(this.#size + 1, this.#slots.length);
  }

  recent(n: number): ConversationEntry[] {
    const count = Math.max(0, Math.min(Math.floor(n), this.#size));
    const cap = this.#slots.length;
    const out: ConversationEntry[] = [];
    for (let i = count; i > 0; i--) out.push(this.#slots[(this.#next - i + cap) % cap]!);
    return out;
  }
}
