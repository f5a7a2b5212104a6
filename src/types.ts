/**
 * The public data types: messages, reports and events.
 *
 * @module
 */

import type { P2PError } from './errors.js';
import type { Peer, PeerAddressInput, PeerKind } from './peer.js';

/** A message this node received. */
export interface Message {
  /** The message id. Unique per message; gop2p messages, which carry none, get a local one. */
  readonly id: string;
  /** `'broadcast'` for a message to every member, `'direct'` for one addressed to this node. */
  readonly type: 'broadcast' | 'direct';
  /** The sender. */
  readonly from: Peer;
  /** The payload. */
  readonly data: Uint8Array;
  /** The payload decoded as UTF-8 (invalid sequences become U+FFFD). */
  readonly text: string;
  /** For a gossiped broadcast: how many relays it passed through (0: straight from its sender). */
  readonly hops?: number;
  /** For a publish: its topic; `undefined` for a plain broadcast or a direct message. */
  readonly topic?: string;
  /** The sender's timestamp, in ms since the epoch (the receiver's clock for a gop2p message). */
  readonly at: number;
  /**
   * `true` for a message delivered late: fetched by catch-up after this node was away (crashed,
   * cut off, stopped), or a publish whose causal dependencies could not be had within the
   * `causalWaitMs` option. Absent for a message delivered as it arrived.
   */
  readonly late?: boolean;
}

/** Options of `Node.history()`. `topic` and `with` exclude each other. */
export interface HistoryOptions extends CallOptions {
  /** The messages published to this topic. Without `topic` and `with`: the plain broadcasts. */
  readonly topic?: string;
  /** The direct messages exchanged with one peer: `'host:port'`, a {@link Peer}, or its id. */
  readonly with?: Target;
  /** Most messages returned: the newest ones, oldest first. @default 100, at most 10,000 */
  readonly limit?: number;
}

/** One peer a delivery failed for, and why. */
export interface DeliveryFailure {
  readonly peer: Peer;
  readonly error: P2PError;
}

/** What `broadcast()` and `send()` resolve with. */
export interface DeliveryReport {
  /** The message id. */
  readonly id: string;
  /** The peers that acknowledged the message. */
  readonly delivered: Peer[];
  /** The peers that did not, each with its error. */
  readonly failed: DeliveryFailure[];
}

/** A message this node sent, as the `message:sent` event reports it. */
export interface SentMessage {
  /** The message id (the report's). */
  readonly id: string;
  /** `'broadcast'` for every member, `'direct'` for the recipients in `to`. */
  readonly type: 'broadcast' | 'direct';
  /** The recipients of a direct message; empty for a broadcast. */
  readonly to: Peer[];
  /** The payload. */
  readonly data: Uint8Array;
  /** The payload decoded as UTF-8. */
  readonly text: string;
  /** The topic (room) of a publish; `undefined` for a plain broadcast or a direct message. */
  readonly topic?: string;
  /**
   * Who sent it: `'local'` for a call of `broadcast()`, `send()` or `publish()` in this
   * process, `'web'` for the node's chat page or its HTTP API (`POST /api/broadcast`,
   * `/api/send`, `/api/publish`).
   */
  readonly origin: 'local' | 'web';
  /** Who got it, and who did not. */
  readonly report: DeliveryReport;
}

/** What `connect()` resolves with. */
export interface ConnectReport {
  /** The entry point joined through. */
  readonly entry: Peer;
  /** Every member this node knows after joining, the entry point included. */
  readonly members: Peer[];
  /** Members the entry point listed that did not answer this node's announcement; they were not added. */
  readonly failed: DeliveryFailure[];
}

/** What `disconnect()` resolves with. */
export interface LeaveReport {
  /** Members that acknowledged the leave. */
  readonly notified: Peer[];
  /** Members that did not, within the leave timeout. */
  readonly failed: DeliveryFailure[];
}

/** The events a `Node` emits, with their arguments. */
export interface NodeEvents {
  /** A message arrived. */
  message: [message: Message];
  /**
   * A message this node sent has been delivered (or has failed) to each recipient: one event
   * per successful `broadcast()`, `send()` or `publish()`, from this process or through the web
   * endpoints.
   */
  'message:sent': [message: SentMessage];
  /** A member joined (or was learned of). */
  'member:join': [peer: Peer];
  /** A member left gracefully. */
  'member:leave': [peer: Peer];
  /** A member stopped answering and is suspected of having failed. */
  'member:suspect': [peer: Peer];
  /** A member was declared dead. */
  'member:fail': [peer: Peer];
  /** A member's address or name changed. */
  'member:update': [peer: Peer];
  /**
   * A peer was refused for a reason this node's operator can change: a gop2p node reached a
   * node that does not run in compat mode. At most once per peer per minute.
   */
  'peer:refused': [refusal: PeerRefusal];
}

/** Why a peer was refused: `'gop2p-compat-off'`, a gop2p node and no `compat: 'gop2p'`. */
export type PeerRefusalReason = 'gop2p-compat-off';

/** A refused peer, as the `peer:refused` event reports it. */
export interface PeerRefusal {
  /** The address it named itself by (a gop2p chat says `0.0.0.0`). */
  readonly address: string;
  readonly port: number;
  /** Where its request came from. */
  readonly remoteAddress: string;
  readonly reason: PeerRefusalReason;
  /** One line saying what happened. */
  readonly message: string;
}

/** Options accepted by every async method. */
export interface CallOptions {
  /** Aborts the call; it then rejects with `signal.reason`. */
  readonly signal?: AbortSignal;
}

/** Options of `Node.disconnect()`. */
export interface DisconnectOptions extends CallOptions {
  /**
   * Keep the members known in the `dataDir` snapshot, so that the next `start()` from it
   * rejoins them, as after `stop()`: for a program that leaves because it is closing, not
   * because it means to stay away. Without it, a leave is on purpose and the next start does
   * not rejoin.
   * @default false
   */
  readonly rejoinOnStart?: boolean;
}

/** The lifecycle states of a `Node`. */
export type NodeStatus = 'stopped' | 'starting' | 'started' | 'stopping';

/** A payload: a string (sent as UTF-8) or bytes. */
export type Payload = string | Uint8Array;

/** A recipient: `'host:port'`, a URL, a {@link Peer}, or a member's id. */
export type Target = PeerAddressInput | Peer;

/** Options of `Node.messages()`. */
export interface MessagesOptions extends CallOptions {
  /** Messages buffered for this iterator; defaults to the node's `inboxSize` option. */
  readonly bufferSize?: number;
}

/** A member as `Node.memberStates()` reports it. */
export interface MemberInfo {
  readonly peer: Peer;
  readonly kind: PeerKind;
  readonly state: 'alive' | 'suspect' | 'dead' | 'left';
  readonly incarnation: number;
  /** Milliseconds since this node last heard from the member. */
  readonly lastSeenMsAgo: number;
}
