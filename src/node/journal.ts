/**
 * The node's side of its store (`src/store/`): what it writes goes into the log before it is
 * queued, what it receives goes into the log before it is delivered, and exactly what the log
 * reports `new` is delivered (so nothing is delivered twice, however often it arrives and
 * however often the node restarts).
 *
 * Received messages are appended **once per batch**: {@link Journal.batch} collects what one
 * request delivers and commits it in one store transaction; a message that arrives outside a
 * batch (a classic gop2p envelope) is committed on its own.
 *
 * The messages this node **writes** are committed together too: {@link Journal.wrote} collects
 * them, and {@link Journal.flush} commits them in one transaction before any request leaves the
 * node (the outbox calls it) and at the latest once the current task ends. A loop of
 * `broadcast()` calls costs one transaction, not one each; and still no number leaves the node
 * before its message is in the log (a crash before the commit sent nothing of it).
 *
 * Each message this node writes carries `prev`, the chain hash of its previous message of the
 * same channel (`chainHash` in `src/security/gossip-signature.ts`), so that catch-up checks a
 * run of them with one signature. The hash of the last one written is kept per channel; after a
 * restart it is computed again from the log (or, when retention removed that message, the next
 * one goes without `prev`, and is checked on its own). Of the messages it sends in full, only the
 * last of each burst per channel (what it writes in one task, at most `MAX_UNSIGNED_RUN` in a
 * row) is signed, at the flush: the chain vouches for the ones before it ("Signed ends" in
 * `src/security/gossip-signature.ts`), and one Ed25519 signature per burst is far cheaper than
 * one per message.
 *
 * A message without a log number (a gop2p sender's, or an older tsp2p node's) is numbered here,
 * in a stream of this node's own epoch for its sender: it is kept in history, and delivered once
 * by id as before, but never served to other members as its sender's.
 *
 * @module
 */

import type { Clock } from '../clock.js';
import type { OwnLog, PendingSignature, WrittenMessage } from '../delivery/own-log.js';
import { ReceivedMessage } from '../delivery/received-message.js';
import type { Logger } from '../logger.js';
import { type Peer, peerOf } from '../peer.js';
import type { LogNumber } from '../protocol/batch-entry.js';
import { encodeData } from '../protocol/codec.js';
import { MessageType } from '../protocol/schema.js';
import {
  chainHash,
  chainHashOf,
  MAX_UNSIGNED_RUN,
  MAX_UNSIGNED_RUN_BYTES,
  SIGNED_ALONE_BYTES,
} from '../security/gossip-signature.js';
import {
  type AppendStatus,
  channelOf,
  type MessageKind,
  type Store,
  type StoredEntry,
  type StoredMessage,
  type StoredOrigin,
} from '../store/store.js';

/** Bytes of an Ed25519 public key and of a signature: the `sig` column holds both, key first. */
const KEY_BYTES = 32;
const SIG_BYTES = 64;
/** Bytes of a chain hash (`prev`), which follows them when the message has one. */
const HASH_BYTES = 32;
/** What a message without dependencies stores: the store copies what it keeps. */
const NO_DEPS: readonly string[] = [];
/** The signature material of a message that has none (the store copies what it keeps). */
const NO_SIG = new Uint8Array(0);

/** What a {@link Journal} needs. */
export interface JournalDeps {
  readonly store: Store;
  /** This node as others see it now. */
  readonly self: () => Peer;
  /** This node's public key, base64url. */
  readonly publicKey: string;
  readonly clock: Clock;
  readonly logger: Logger;
  /** Hands a message the log took as new to the application. */
  /**
   * Hands what the log took as new to the application, one batch together and in order: one
   * message may be the causal dependency of one before it (`src/delivery/causal.ts`).
   */
  readonly deliver: (messages: readonly ReceivedMessage[]) => void;
  /** Counts what the store did with each received message. */
  readonly onAppend?: (status: AppendStatus) => void;
  /** Live traffic skipped numbers of a stream: catch-up should fetch them. */
  readonly onGap?: (origin: string) => void;
}

/** A message at the end of its burst so far: signed at the flush unless another follows. */
interface OpenEnd {
  readonly pending: PendingSignature;
  /** Its place in the messages not committed yet. */
  readonly index: number;
  readonly seq: number;
  readonly prev: string | undefined;
}

/** Streams whose last live number is remembered, to see gaps; beyond it the memory starts over. */
const GAP_STREAMS = 10_000;

/** The node's log: see the module comment. */
export class Journal implements OwnLog {
  readonly #d: JournalDeps;
  /** Messages collected by the batch being received, when one is. */
  #pending: ReceivedMessage[] | undefined;
  /** The last number live traffic brought, per stream. */
  readonly #lastLive = new Map<string, number>();
  /** The key of the last stream `#live` saw. */
  #liveKey: { origin: string; epoch: string; channel: string; key: string } | undefined;
  /** Messages this node wrote that are not committed yet. */
  #own: StoredMessage[] = [];
  /** Per channel of this node: the number and chain hash of the last message it wrote. */
  readonly #heads = new Map<string, { seq: number; hash: string }>();
  /** Per channel: the last message written since the last flush, whose signature is undecided. */
  readonly #ends = new Map<string, OpenEnd>();
  /** Per channel: messages (and their signed bytes) written without a signature since the last signed one. */
  readonly #runs = new Map<string, { count: number; bytes: number }>();

  constructor(deps: JournalDeps) {
    this.#d = deps;
  }

  /** The store. */
  get store(): Store {
    return this.#d.store;
  }

  number(channel: string): LogNumber {
    const store = this.#d.store;
    const seq = store.nextSeq(this.#d.self().id, channel);
    const prev = seq > 1 ? this.#hashOf(channel, seq - 1) : undefined;
    return { epoch: store.epoch, channel, seq, ...(prev !== undefined ? { prev } : {}) };
  }

  /** The chain hash of this node's message `seq` of `channel`, when it is known or in the log. */
  #hashOf(channel: string, seq: number): string | undefined {
    const head = this.#heads.get(channel);
    if (head !== undefined && head.seq === seq) return head.hash;
    try {
      this.flush();
      const store = this.#d.store;
      const e = store.readRange({ origin: this.#d.self().id, epoch: store.epoch, channel }, seq, seq, 1)[0];
      const signed = e === undefined ? undefined : unpackSig(e.sig);
      if (e === undefined || signed === undefined) return undefined;
      return chainHash(
        {
          type: e.kind === 'direct' ? MessageType.Direct : MessageType.Broadcast,
          id: e.id,
          ts: e.at,
          data: encodeData(e.payload),
          topic: e.topic,
          epoch: e.epoch,
          channel: e.channel,
          seq: e.seq,
          deps: e.deps,
          prev: signed.prev,
        },
        signed.sig,
      );
    } catch (err) {
      this.#d.logger.debug('no chain hash for the last message written', { channel, err });
      return undefined;
    }
  }

  wrote(m: WrittenMessage): void {
    const self = this.#d.self();
    const channel = m.log.channel;
    let sig: Uint8Array;
    // Whatever this one is, the open end before it is no longer the last of its burst.
    this.#ends.get(channel)?.pending.skip();
    this.#ends.delete(channel);
    if (m.pending !== undefined) {
      // Signed at the end of its burst (see the module comment), or once the run is long
      // enough: by count, by bytes, or a large message (whose signature costs little beside it).
      const size = m.pending.signed.byteLength;
      let run = this.#runs.get(channel);
      if (run === undefined) {
        run = { count: 0, bytes: 0 };
        this.#runs.set(channel, run);
      }
      run.count++;
      run.bytes += size;
      if (
        run.count >= MAX_UNSIGNED_RUN ||
        run.bytes >= MAX_UNSIGNED_RUN_BYTES ||
        size >= SIGNED_ALONE_BYTES
      ) {
        const signature = m.pending.sign();
        sig = packSig(this.#d.publicKey, signature, m.log.prev);
        this.#signedHead(channel, m.log.seq, chainHashOf(m.pending.signed, signature));
      } else {
        sig = packKey(this.#d.publicKey, m.log.prev);
        this.#ends.set(channel, {
          pending: m.pending,
          index: this.#own.length,
          seq: m.log.seq,
          prev: m.log.prev,
        });
        const hash = chainHashOf(m.pending.signed, undefined);
        if (hash !== undefined) this.#setHead(channel, m.log.seq, hash);
      }
    } else {
      sig = m.sig === undefined ? new Uint8Array(0) : packSig(this.#d.publicKey, m.sig, m.log.prev);
      if (m.sig !== undefined) {
        const hash = chainHash(
          {
            type: m.kind === 'direct' ? MessageType.Direct : MessageType.Broadcast,
            id: m.id,
            ts: m.ts,
            data: encodeData(m.data),
            topic: m.topic,
            epoch: m.log.epoch,
            channel,
            seq: m.log.seq,
            deps: m.deps,
            prev: m.log.prev,
          },
          m.sig,
        );
        this.#signedHead(channel, m.log.seq, hash);
      }
    }
    if (this.#own.length === 0) queueMicrotask(() => this.flush());
    // One shape for every message (no spread of optional fields): this runs once per message.
    this.#own.push({
      id: m.id,
      origin: originOf(self),
      kind: m.kind,
      topic: m.topic,
      peer: m.to,
      epoch: m.log.epoch,
      channel,
      seq: m.log.seq,
      at: m.ts,
      payload: m.data,
      sig,
      deps: m.deps ?? NO_DEPS,
      late: false,
    });
  }

  /** Message `seq` of `channel`, signed, is the last written there. */
  #signedHead(channel: string, seq: number, hash: string | undefined): void {
    this.#runs.delete(channel);
    if (hash !== undefined) this.#setHead(channel, seq, hash);
  }

  /** The last message written in `channel` is `seq`, with chain hash `hash`. */
  #setHead(channel: string, seq: number, hash: string): void {
    const head = this.#heads.get(channel);
    if (head === undefined) this.#heads.set(channel, { seq, hash });
    else {
      head.seq = seq;
      head.hash = hash;
    }
  }

  /**
   * Signs the last message of each stream's burst (the others were skipped as the burst grew),
   * then commits what this node wrote, in one transaction (see the module comment). A store that
   * fails (closed while stopping, damaged) is logged: the messages are still sent.
   */
  flush(): void {
    if (this.#ends.size > 0) {
      for (const [channel, end] of this.#ends) {
        // An open end is the last message written in its channel, not committed yet.
        const signature = end.pending.sign();
        const at = this.#own[end.index]!;
        this.#own[end.index] = { ...at, sig: packSig(this.#d.publicKey, signature, end.prev) };
        this.#signedHead(channel, end.seq, chainHashOf(end.pending.signed, signature));
      }
      this.#ends.clear();
    }
    if (this.#own.length === 0) return;
    const own = this.#own;
    this.#own = [];
    try {
      this.#append(own);
    } catch (err) {
      this.#d.logger.warn('store append failed: messages written without history', { err });
    }
  }

  /**
   * Runs `fn` (which receives one batch's messages), then appends what it delivered in one
   * transaction and hands the new ones to the application, in order.
   */
  batch<T>(fn: () => T): T {
    if (this.#pending !== undefined) return fn();
    this.#pending = [];
    try {
      return fn();
    } finally {
      const list = this.#pending;
      this.#pending = undefined;
      if (list.length > 0) this.take(list);
    }
  }

  /** A message received: appended with its batch (see {@link Journal.batch}), or now. */
  receive(message: ReceivedMessage): void {
    if (this.#pending !== undefined) this.#pending.push(message);
    else this.take([message]);
  }

  /**
   * Appends `messages` in one transaction and delivers the ones the log takes as new; returns
   * how many. A store that fails (closed while stopping, damaged) does not stop delivery: the
   * messages are delivered as they came, and the fault is logged.
   */
  take(messages: readonly ReceivedMessage[]): number {
    // Indexed loops, no callbacks: these run once per message received.
    const n = messages.length;
    let statuses: AppendStatus[];
    try {
      const stored: StoredMessage[] = new Array(n);
      for (let i = 0; i < n; i++) stored[i] = this.#stored(messages[i]!);
      statuses = this.#append(stored);
    } catch (err) {
      this.#d.logger.warn('store append failed: messages delivered without history', { err });
      this.#d.deliver(messages);
      return n;
    }
    // Nearly always every message is new: then the list itself is delivered, not a copy.
    let fresh: ReceivedMessage[] | undefined;
    for (let i = 0; i < n; i++) {
      const status = statuses[i]!;
      this.#d.onAppend?.(status);
      if (status === 'new') {
        const m = messages[i]!;
        if (m.late !== true && m.log !== undefined) this.#live(m.from.id, m.log);
        fresh?.push(m);
      } else fresh ??= messages.slice(0, i);
    }
    const delivered = fresh ?? messages;
    if (delivered.length > 0) this.#d.deliver(delivered);
    return delivered.length;
  }

  /** Remembers a live number; a number beyond the next one is a gap. */
  #live(origin: string, log: LogNumber): void {
    // A batch is nearly always one stream's: its key is built once, not once per message.
    let c = this.#liveKey;
    if (c === undefined || c.origin !== origin || c.epoch !== log.epoch || c.channel !== log.channel) {
      c = {
        origin,
        epoch: log.epoch,
        channel: log.channel,
        key: `${origin}\u0000${log.epoch}\u0000${log.channel}`,
      };
      this.#liveKey = c;
    }
    const key = c.key;
    const last = this.#lastLive.get(key);
    if (last !== undefined && log.seq > last + 1) this.#d.onGap?.(origin);
    if (last === undefined || log.seq > last) {
      if (this.#lastLive.size >= GAP_STREAMS) this.#lastLive.clear();
      this.#lastLive.set(key, log.seq);
    }
  }

  /**
   * The last number live traffic brought of a stream (`origin`, `epoch` and `channel` joined by
   * `\u0000`), as far as this run remembers (see {@link GAP_STREAMS}).
   */
  lastLive(streamKey: string): number | undefined {
    return this.#lastLive.get(streamKey);
  }

  /** One page of history, as messages (oldest first). */
  history(entries: readonly StoredEntry[]): ReceivedMessage[] {
    const self = this.#d.self();
    return entries.map((e) => toMessage(e, self));
  }

  #append(messages: readonly StoredMessage[]): AppendStatus[] {
    return this.#d.store.append(messages);
  }

  /** A received message as the log keeps it. */
  #stored(m: ReceivedMessage): StoredMessage {
    const kind: MessageKind = m.type === 'direct' ? 'direct' : m.topic !== undefined ? 'topic' : 'broadcast';
    const self = this.#d.self();
    let log: LogNumber | undefined = m.log;
    let sig: Uint8Array = NO_SIG;
    if (log === undefined) {
      // Numbered here, in this node's epoch for the sender: history only (see the module comment).
      const channel = channelOf(kind, kind === 'topic' ? m.topic : self.id);
      const store = this.#d.store;
      log = { epoch: store.epoch, channel, seq: store.nextSeq(m.from.id, channel) };
    } else if (m.log?.key !== undefined) {
      sig =
        m.log.sig !== undefined ? packSig(m.log.key, m.log.sig, m.log.prev) : packKey(m.log.key, m.log.prev);
    }
    // One shape for every message (no spread of optional fields): this runs once per delivery.
    return {
      id: m.id,
      origin: originOf(m.from),
      kind,
      topic: kind === 'topic' ? m.topic : undefined,
      peer: kind === 'direct' ? m.from.id : undefined,
      epoch: log.epoch,
      channel: log.channel,
      seq: log.seq,
      at: m.at,
      payload: m.data,
      sig,
      deps: m.deps ?? NO_DEPS,
      late: m.late === true,
    };
  }
}

function nameOf(p: { readonly name?: string | undefined }): { name?: string } {
  return p.name !== undefined ? { name: p.name } : {};
}

/** A peer as the log records a message's origin: one object per peer, not one per message. */
const origins = new WeakMap<Peer, StoredOrigin>();

function originOf(p: Peer): StoredOrigin {
  let o = origins.get(p);
  if (o === undefined) {
    o = Object.freeze({ id: p.id, address: p.address, port: p.port, ...nameOf(p) });
    origins.set(p, o);
  }
  return o;
}

/**
 * The `sig` column: the origin's raw public key, then its signature (see `store.ts`) when the
 * message has one of its own (the last of a burst, or any relayed one; see "Signed ends" in
 * `src/security/gossip-signature.ts`), then the message's `prev` chain hash when it has one
 * (signed with it, so kept with the signature). So 32, 64, 96 or 128 bytes: key; key and `prev`;
 * key and signature; all three.
 */
export function packSig(keyText: string, sigText: string, prevText?: string): Uint8Array {
  return pack(keyText, sigText, prevText);
}

/** The `sig` column of a message without a signature of its own (see {@link packSig}). */
export function packKey(keyText: string, prevText?: string): Uint8Array {
  return pack(keyText, undefined, prevText);
}

function pack(keyText: string, sigText: string | undefined, prevText: string | undefined): Uint8Array {
  // Base64url without padding: 32 bytes are 43 characters, 64 are 86.
  if (
    keyText.length !== 43 ||
    (sigText !== undefined && sigText.length !== 86) ||
    (prevText !== undefined && prevText.length !== 43)
  )
    return EMPTY;
  const sigBytes = sigText === undefined ? 0 : SIG_BYTES;
  const out = Buffer.allocUnsafe(KEY_BYTES + sigBytes + (prevText === undefined ? 0 : HASH_BYTES));
  // Nearly every message of a batch has the same origin: its key is decoded once.
  if (keyText !== lastKey.text) {
    const bytes = Buffer.allocUnsafe(KEY_BYTES);
    if (bytes.write(keyText, 0, 'base64url') !== KEY_BYTES) return EMPTY;
    lastKey = { text: keyText, bytes };
  }
  out.set(lastKey.bytes, 0);
  if (
    (sigText !== undefined && out.write(sigText, KEY_BYTES, 'base64url') !== SIG_BYTES) ||
    (prevText !== undefined && out.write(prevText, KEY_BYTES + sigBytes, 'base64url') !== HASH_BYTES)
  )
    return EMPTY;
  return out;
}

const EMPTY = new Uint8Array(0);

/** The last origin key {@link pack} decoded, with its bytes. */
let lastKey: { readonly text: string; readonly bytes: Buffer } = { text: '', bytes: Buffer.alloc(0) };

/**
 * The origin's key, signature and `prev` (base64url) from a `sig` column, when it holds the key
 * (see {@link packSig}); `sig` is absent for a message vouched for by the chain only.
 */
export function unpackSig(packed: Uint8Array): { key: string; sig?: string; prev?: string } | undefined {
  const n = packed.byteLength;
  const signed = n === KEY_BYTES + SIG_BYTES || n === KEY_BYTES + SIG_BYTES + HASH_BYTES;
  const chained = n === KEY_BYTES + HASH_BYTES || n === KEY_BYTES + SIG_BYTES + HASH_BYTES;
  if (!signed && !chained && n !== KEY_BYTES) return undefined;
  const b = Buffer.from(packed.buffer, packed.byteOffset, packed.byteLength);
  const key = b.subarray(0, KEY_BYTES).toString('base64url');
  const sigEnd = signed ? KEY_BYTES + SIG_BYTES : KEY_BYTES;
  return {
    key,
    ...(signed ? { sig: b.subarray(KEY_BYTES, sigEnd).toString('base64url') } : {}),
    ...(chained ? { prev: b.subarray(sigEnd).toString('base64url') } : {}),
  };
}

/** A stored message as the application sees it; this node's own messages come from `self`. */
export function toMessage(e: StoredEntry, self: Peer): ReceivedMessage {
  const from =
    e.origin.id === self.id ? self : peerOf(e.origin.id, e.origin.address, e.origin.port, e.origin.name);
  const m = new ReceivedMessage(
    e.id,
    e.kind === 'direct' ? 'direct' : 'broadcast',
    from,
    e.payload,
    undefined,
    e.at,
    e.topic,
    e.deps,
  );
  if (e.late) m.late = true;
  return m;
}
