/**
 * The conversation of one node, as its page shows it: the messages it received and the ones it
 * sent (from the program, the page or the HTTP API), oldest first. A page that opens, or
 * reloads, starts from the node's history (its message log, `node.history()`): the same
 * conversation the terminal chat prints, and, with a `dataDir`, the one from before a restart.
 *
 * {@link RecentMessages} is the small interface the web layer reads it through; the node
 * implements it over its log (`src/node/web-history.ts`).
 *
 * @module
 */

import type { Message } from '../types.js';

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
      /** When this node got it (from history: when its sender sent it), in ms since the epoch. */
      readonly ts: number;
      /** Delivered late (caught up after an absence, or after its causal wait gave up). */
      readonly late?: true;
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
      /**
       * How many recipients got it, and how many did not. Absent for a message of history that
       * this run of the node did not send (its outcome was not kept).
       */
      readonly delivered?: number;
      readonly failed?: number;
      /** When it was sent, in ms since the epoch. */
      readonly ts: number;
    };

/** Where the web layer reads the conversation so far. */
export interface RecentMessages {
  /**
   * The last `n` messages at most, received and sent, of every kind (plain broadcasts, the
   * node's topics, direct messages), oldest first.
   */
  recent(n: number): Promise<readonly Message[]>;
}

/** No history: a page starts empty (a node without a log, in tests). */
export const NO_HISTORY: RecentMessages = { recent: () => Promise.resolve([]) };
