/**
 * The Server-Sent Events feed behind `GET /events`: each open page gets this node's
 * conversation (the messages it received and the ones it sent, from the program, a page or the
 * API) and its member events, as they happen; and, when it opens, the recent conversation.
 *
 * Events (each `data` is one line of JSON):
 * - `hello`: on connect, `{ self, connected, recent }`, `recent` being the last
 *   {@link RECENT_ON_OPEN} `message` and `sent` entries of the node's history (its message log:
 *   what it received and sent, before a restart too with a `dataDir`), oldest first, each with
 *   its `kind`. Events that happen while the history is read follow the `hello`; one of them may
 *   also be in `recent` (a page shows each `id` once).
 * - `message`: a message arrived, `{ kind, id, type, from, text, topic?, ts }` (`topic` for a
 *   publish)
 * - `sent`: this node sent a message, `{ kind, id, type, to?, text, topic?, origin, delivered, failed, ts }`;
 *   `origin` is `'web'` for a page or the API, `'local'` for the program running the node
 * - `member`: `{ event: 'join' | 'leave' | 'suspect' | 'fail' | 'update', peer, ts }`
 *
 * A comment line every {@link HEARTBEAT_MS} keeps proxies from closing an idle feed.
 *
 * @module
 */

import type { EventEmitter } from 'node:events';
import { systemClock, wallTime } from '../clock.js';
import type { Logger } from '../logger.js';
import { type Peer, peerJson } from '../peer.js';
import type { ResponseStream } from '../transport/transport.js';
import type { Message, NodeEvents, SentMessage } from '../types.js';
import type { ConversationEntry, RecentMessages } from './recent-messages.js';

/** How many sent messages' outcomes (origin, recipients, counts) are kept for the history. */
const SENT_KEPT = 1_000;

/** What a `sent` entry says beyond the message itself. */
type SentInfo = Pick<Extract<ConversationEntry, { kind: 'sent' }>, 'origin' | 'to' | 'delivered' | 'failed'>;

/** How often an idle feed gets a comment line, in ms. */
export const HEARTBEAT_MS = 15_000;

/** How long a browser waits before reconnecting a dropped feed, in ms (sent as `retry:`). */
export const RETRY_MS = 2_000;

/** How many recent entries a page gets when it opens. */
export const RECENT_ON_OPEN = 100;

/** Most feeds open at once; more are refused with 503. */
export const MAX_FEEDS = 64;

const MEMBER_EVENTS = [
  'member:join',
  'member:leave',
  'member:suspect',
  'member:fail',
  'member:update',
] as const;

/** One SSE frame: `event:` and a single `data:` line of JSON. */
export function sseFrame(event: string, data: unknown): string {
  // JSON.stringify escapes CR and LF inside strings, so the data is always a single line.
  return `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
}

/** The node as the feed needs it. */
export interface FeedSource extends Pick<EventEmitter<NodeEvents>, 'on' | 'off'> {
  readonly self: Peer;
  readonly isConnected: boolean;
}

/** The open feeds of one node. */
export class EventFeed {
  readonly #source: FeedSource;
  readonly #logger: Logger;
  readonly #wallNow: () => number;
  readonly #clients = new Set<ResponseStream>();
  /** Feeds waiting for their `hello` (the history is being read), with the frames meanwhile. */
  readonly #opening = new Map<ResponseStream, string[]>();
  /** The outcome of the last {@link SENT_KEPT} messages sent, by id, oldest first. */
  readonly #sent = new Map<string, SentInfo>();
  readonly #unsubscribe: (() => void)[] = [];
  readonly #recent: RecentMessages;
  /** Stops recording the conversation. */
  readonly #stopRecording: () => void;
  #heartbeat: NodeJS.Timeout | undefined;

  /**
   * Starts listening to the node's conversation at once, whether a page is open or not, so that
   * a page opened later shows who got what this node sent; `recent` is where a page that opens
   * reads the conversation so far.
   */
  constructor(
    source: FeedSource,
    logger: Logger,
    recent: RecentMessages,
    /** The wall clock (ms since the epoch) that stamps each event. */
    wallNow: () => number = () => wallTime(systemClock),
  ) {
    this.#source = source;
    this.#logger = logger;
    this.#recent = recent;
    this.#wallNow = wallNow;
    // With no page open, a received message costs nothing here, and a sent one only its outcome.
    const onMessage = (m: Message): void => {
      if (this.size > 0) this.publish('message', receivedEntry(m, this.#wallNow()));
    };
    const onSent = (m: SentMessage): void => {
      this.#keepSent(m);
      if (this.size > 0) this.publish('sent', sentEntry(m, this.#wallNow()));
    };
    source.on('message', onMessage);
    source.on('message:sent', onSent);
    this.#stopRecording = () => {
      source.off('message', onMessage);
      source.off('message:sent', onSent);
    };
  }

  /** Keeps who got what this node sent, for a page opened later. */
  #keepSent(m: SentMessage): void {
    this.#sent.set(m.id, {
      origin: m.origin,
      ...(m.type === 'direct' ? { to: m.to.map(peerJson) } : {}),
      delivered: m.report.delivered.length,
      failed: m.report.failed.length,
    });
    if (this.#sent.size > SENT_KEPT) this.#sent.delete(this.#sent.keys().next().value as string);
  }

  /** How many feeds are open. */
  get size(): number {
    return this.#clients.size + this.#opening.size;
  }

  /** Whether another feed may open. */
  get hasRoom(): boolean {
    return this.size < MAX_FEEDS;
  }

  /**
   * Serves one feed until it closes: the `hello` once the history is read, then the events (the
   * ones that happened meanwhile first).
   */
  open(out: ResponseStream): void {
    if (out.signal.aborted) return;
    let self: Peer | undefined;
    try {
      self = this.#source.self;
    } catch {
      out.end(); // not started (any more)
      return;
    }
    this.#opening.set(out, []);
    out.signal.addEventListener('abort', () => this.#drop(out), { once: true });
    out.write(`retry: ${RETRY_MS}\n\n`);
    if (this.#unsubscribe.length === 0) this.#subscribe();
    const me = self;
    void this.#recent
      .recent(RECENT_ON_OPEN)
      .catch((err: unknown) => {
        this.#logger.warn('could not read the history for a page', { err });
        return [];
      })
      .then((messages) => {
        const meanwhile = this.#opening.get(out);
        if (meanwhile === undefined) return; // closed meanwhile
        this.#opening.delete(out);
        const recent = messages.map((m) => this.#historyEntry(m, me.id));
        const hello = sseFrame('hello', { self: peerJson(me), connected: this.#source.isConnected, recent });
        if (!out.write(hello) || !meanwhile.every((frame) => out.write(frame))) {
          this.#drop(out);
          return;
        }
        this.#clients.add(out);
        this.#heartbeat ??= setInterval(() => this.#broadcast(': ping\n\n'), HEARTBEAT_MS).unref();
      });
  }

  /** A message of history as the page shows it: this node's own ones as `sent`. */
  #historyEntry(m: Message, selfId: string): ConversationEntry {
    if (m.from.id !== selfId) return receivedEntry(m, m.at);
    const info = this.#sent.get(m.id);
    return {
      kind: 'sent',
      id: m.id,
      type: m.type,
      ...(info?.to !== undefined ? { to: info.to } : {}),
      text: m.text,
      ...(m.topic !== undefined ? { topic: m.topic } : {}),
      origin: info?.origin ?? 'local',
      ...(info !== undefined ? { delivered: info.delivered, failed: info.failed } : {}),
      ts: m.at,
    };
  }

  /** Sends an event to every open feed (and keeps it for the ones still opening). */
  publish(event: string, data: unknown): void {
    if (this.size === 0) return;
    const frame = sseFrame(event, data);
    for (const frames of this.#opening.values()) frames.push(frame);
    this.#broadcast(frame);
  }

  /** Ends every feed and stops listening to the node. Idempotent. */
  close(): void {
    this.#stopRecording();
    for (const c of [...this.#clients, ...this.#opening.keys()]) c.end();
    this.#clients.clear();
    this.#opening.clear();
    this.#idle();
  }

  #broadcast(frame: string): void {
    for (const c of [...this.#clients]) if (!c.write(frame)) this.#drop(c);
  }

  #drop(out: ResponseStream): void {
    this.#clients.delete(out);
    this.#opening.delete(out);
    if (this.size === 0) this.#idle();
  }

  /** No feed is open: stop listening and stop the heartbeat. */
  #idle(): void {
    for (const off of this.#unsubscribe.splice(0)) off();
    if (this.#heartbeat !== undefined) clearInterval(this.#heartbeat);
    this.#heartbeat = undefined;
  }

  #subscribe(): void {
    for (const name of MEMBER_EVENTS) {
      const event = name.slice('member:'.length);
      const listener = (peer: Peer): void =>
        this.publish('member', { event, peer: peerJson(peer), ts: this.#wallNow() });
      this.#source.on(name, listener);
      this.#unsubscribe.push(() => this.#source.off(name, listener));
    }
    this.#logger.debug('event feed listening to the node');
  }
}

function receivedEntry(m: Message, ts: number): ConversationEntry {
  return {
    kind: 'message',
    id: m.id,
    type: m.type,
    from: peerJson(m.from),
    text: m.text,
    ...(m.topic !== undefined ? { topic: m.topic } : {}),
    ts,
    ...(m.late === true ? { late: true as const } : {}),
  };
}

function sentEntry(m: SentMessage, ts: number): ConversationEntry {
  return {
    kind: 'sent',
    id: m.id,
    type: m.type,
    ...(m.type === 'direct' ? { to: m.to.map(peerJson) } : {}),
    text: m.text,
    ...(m.topic !== undefined ? { topic: m.topic } : {}),
    origin: m.origin,
    delivered: m.report.delivered.length,
    failed: m.report.failed.length,
    ts,
  };
}
