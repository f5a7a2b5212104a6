/**
 * The entries of a batch (type 8), encoded once each: the same bytes go into the batch of every
 * receiver (`sealBatch` in `envelope.ts` joins them without re-encoding). Decoding is the batch
 * decoder's (`codec.ts`, `fast-batch.ts`); these functions are its inverse, pure, and nothing
 * outside `protocol/` writes an entry by hand.
 *
 * A message entry is `{"type","id","ts","data"}` then, when present, `to`, `hops`, `tree`,
 * `origin`, `sig`, `topic`, the log fields `epoch`, `channel`, `seq` and `prev`, and `deps`, in that
 * order. The payload's base64 is copied in as it is: it needs no
 * escaping, and a large one is not scanned again.
 *
 * @module
 */

import { encodeData } from './codec.js';
import type { BatchedMessage, TreeEntry, WirePeer } from './schema.js';

/** A message entry's fields; `data` is the payload's base64, exactly as it travels. */
export interface MessageEntryFields {
  readonly type: BatchedMessage['type'];
  readonly id: string;
  readonly ts: number;
  readonly data: string;
  readonly to?: readonly WirePeer[];
  /** Gossip and tree: relays passed (0 from the origin). */
  readonly hops?: number;
  /** Plumtree: the message travels along the tree. */
  readonly tree?: true;
  /** Relayed: the node that wrote the message, with its key. */
  readonly origin?: WirePeer;
  /** Gossip and tree: the origin's signature (`src/security/gossip-signature.ts`). */
  readonly sig?: string;
  /** A publish: the topic it is for. */
  readonly topic?: string;
  /** History: the origin's numbering of the message (see `src/store/store.ts`). */
  readonly log?: LogNumber;
  /** A publish: its causal dependencies (ids), when it has any. */
  readonly deps?: readonly string[];
}

/** A message's number in its origin's log: a stream (`epoch`, `channel`) and `seq` in it. */
export interface LogNumber {
  readonly epoch: string;
  readonly channel: string;
  readonly seq: number;
  /**
   * The chain hash of the origin's message `seq - 1` of the same stream (base64url, see
   * `chainHash` in `src/security/gossip-signature.ts`), when the origin knows it: catch-up
   * checks a run of chained messages with one signature.
   */
  readonly prev?: string | undefined;
}

/** The log number an entry carries, when it carries all three fields. */
export function logOf(entry: {
  readonly epoch?: string | undefined;
  readonly channel?: string | undefined;
  readonly seq?: number | undefined;
  readonly prev?: string | undefined;
}): LogNumber | undefined {
  if (entry.epoch === undefined || entry.channel === undefined || entry.seq === undefined) return undefined;
  return entry.prev === undefined
    ? { epoch: entry.epoch, channel: entry.channel, seq: entry.seq }
    : { epoch: entry.epoch, channel: entry.channel, seq: entry.seq, prev: entry.prev };
}

/** Encodes a message entry. */
export function encodeMessageEntry(f: MessageEntryFields): Buffer {
  const rest = JSON.stringify({
    ...(f.to !== undefined ? { to: f.to } : {}),
    ...(f.hops !== undefined ? { hops: f.hops } : {}),
    ...(f.tree === true ? { tree: true } : {}),
    ...(f.origin !== undefined ? { origin: f.origin } : {}),
    ...(f.sig !== undefined ? { sig: f.sig } : {}),
    ...(f.topic !== undefined ? { topic: f.topic } : {}),
    ...(f.log !== undefined ? { epoch: f.log.epoch, channel: f.log.channel, seq: f.log.seq } : {}),
    ...(f.log?.prev !== undefined ? { prev: f.log.prev } : {}),
    ...(f.deps !== undefined && f.deps.length > 0 ? { deps: f.deps } : {}),
  });
  // One string, encoded once: `data` is base64 (ASCII), so it is the same bytes either way.
  const head = `${JSON.stringify({ type: f.type, id: f.id, ts: f.ts }).slice(0, -1)},"data":"`;
  return Buffer.from(`${head}${f.data}${rest === '{}' ? '"}' : `",${rest.slice(1)}`}`, 'utf8');
}

/** A message entry for a payload given as bytes. */
export function encodePayloadEntry(f: Omit<MessageEntryFields, 'data'>, data: Uint8Array): Buffer {
  return encodeMessageEntry({ ...f, data: encodeData(data) });
}

/** A broadcast named by its origin's node id and its message id. */
export interface EntryRef {
  readonly origin: string;
  readonly id: string;
}

/** Encodes a Plumtree control entry: IHAVE and GRAFT with their ids, PRUNE without. */
export function encodeTreeControl(
  type: (typeof TreeEntry)[keyof typeof TreeEntry],
  refs: readonly EntryRef[] | undefined,
): string {
  return JSON.stringify(
    refs === undefined ? { type } : { type, ids: refs.map((r) => ({ origin: r.origin, id: r.id })) },
  );
}
