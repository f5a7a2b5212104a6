/**
 * Signatures of relayed broadcasts. In gossip mode a broadcast travels inside other nodes'
 * batches, and each batch is signed by the relay that sends it, not by the message's origin. So
 * the origin also signs the message itself when it creates it, and every relay passes that
 * signature on with the origin's public key: a receiver checks the message against its origin,
 * whatever the path. A relay can neither forge a message in another member's name nor alter
 * one; what it can change is only `hops` (so it can cut a message's travel short, as dropping it
 * would, or stretch it, which the receivers' de-duplication bounds).
 *
 * The signed bytes are `JSON.stringify(["tsp2p-msg/1", type, id, ts, data])`, `data` being
 * the base64 text as it travels; for a publish, `JSON.stringify(["tsp2p-msg/1", type, id, ts,

 * data, topic])`, so that no relay can move a message to another topic; for a publish with
 * causal dependencies, `JSON.stringify(["tsp2p-msg/1", type, id, ts, data, topic, deps])`, so
 * that no relay can change what it follows. A message that carries its log number (history,
 * `src/store/store.ts`) is signed as `JSON.stringify(["tsp2p-msg/2", type, id, ts, data, topic
 * or null, epoch, channel, seq, deps or []])`: a member serving it to another by catch-up can
 * neither alter it nor renumber it (hiding another message behind it). A logged message that
 * also carries `prev` (the chain hash of its origin's previous message of the stream) is signed
 * as `JSON.stringify(["tsp2p-msg/3", type, id, ts, data, topic or null, epoch, channel, seq,
 * deps or [], prev])`.
 *
 * **The chain.** The chain hash of a logged message is the SHA-256 of `"tsp2p-chain/1\n"`, then
 * the bytes its origin signed, then the raw 64-byte signature when it has one ({@link chainHash}).
 * Since each message's signed bytes hold the hash of the one before it, one verified signature
 * vouches for every message below it that chains to it, signatures included: catch-up checks a
 * run of 1,000 messages with one Ed25519 verification and 1,000 hashes ({@link chainedRuns}), and
 * a member serving history still can neither forge, alter, renumber nor reorder any of them.
 *
 * **Signed ends.** So an origin need not sign every logged message it sends in full to its
 * members (their batch's signature or MAC covers it on the way; the origin signature is for
 * whoever serves it later): of each burst of a stream (what it writes in one task, at most
 * {@link MAX_UNSIGNED_RUN} in a row and {@link MAX_UNSIGNED_RUN_BYTES} of signed bytes; a message of
 * {@link SIGNED_ALONE_BYTES} or more is always signed) it signs the last one only, and the ones before it travel
 * without `sig`, vouched for by the chain. Relayed messages (gossip, Plumtree) are each signed,
 * since relays check each on its own.
 *
 * @module
 */

import { createHash, hash, type KeyObject, verify } from 'node:crypto';
import type { WirePeer } from '../protocol/schema.js';
import { bodyDigest, type KeyCache, signBody, verifyBody } from './signature.js';

/** The fields of a message the origin signs. */
export interface GossipFields {
  readonly type: number;
  readonly id: string;
  readonly ts: number;
  /** The payload as base64, exactly as in the fragment. */
  readonly data: string;
  /** A publish: its topic. */
  readonly topic?: string | undefined;
  /** History: the origin's log identity, channel and number (all three, or none). */
  readonly epoch?: string | undefined;
  readonly channel?: string | undefined;
  readonly seq?: number | undefined;
  /** A publish: its causal dependencies (message ids); none when absent or empty. */
  readonly deps?: readonly string[] | undefined;
  /** History: the chain hash of the origin's previous message of the stream, when known. */
  readonly prev?: string | undefined;
}

const DOMAIN = 'tsp2p-msg/1';
const DOMAIN_LOGGED = 'tsp2p-msg/2';
const DOMAIN_CHAINED = 'tsp2p-msg/3';
const CHAIN_PREFIX = Buffer.from('tsp2p-chain/1\n');
/** Up to this size a chain hash copies its input once and hashes it in one call. */
const ONE_SHOT_BYTES = 4096;

/** The bytes the origin signs for `m` (see the module comment). */
export function signedBytes(m: GossipFields): Buffer {
  if (m.seq !== undefined) {
    // Logged (`/2`), and chained (`/3`: the same fields, then the hash of the previous message).
    const chained = m.prev !== undefined;
    const logged: unknown[] = [
      chained ? DOMAIN_CHAINED : DOMAIN_LOGGED,
      m.type,
      m.id,
      m.ts,
      m.data,
      m.topic ?? null,
      m.epoch ?? '',
      m.channel ?? '',
      m.seq,
      m.deps ?? [],
    ];
    if (chained) logged.push(m.prev);
    return Buffer.from(JSON.stringify(logged));
  }
  const base = [DOMAIN, m.type, m.id, m.ts, m.data];
  if (m.deps !== undefined && m.deps.length > 0)
    return Buffer.from(JSON.stringify([...base, m.topic ?? null, m.deps]));
  return Buffer.from(JSON.stringify(m.topic === undefined ? base : [...base, m.topic]));
}

/**
 * Most logged messages in a row of one stream an origin sends without their own signature (see
 * "Signed ends" in the module comment): a member serving history extends a range by at most this
 * many to reach a signed one.
 */
export const MAX_UNSIGNED_RUN = 64;

/**
 * A run of messages without their own signature stops, signed, once the bytes signed for its
 * messages reach this: a member serving history can then always end an answer on a signed
 * message within a little more than its byte bound.
 */
export const MAX_UNSIGNED_RUN_BYTES = 256 * 1024;

/** A message whose signed bytes reach this is always signed: its signature costs little beside it. */
export const SIGNED_ALONE_BYTES = 16 * 1024;

/** The origin's signature of a message it is about to gossip. */
export function signGossip(fields: GossipFields, privateKey: KeyObject): string {
  return signBody(signedBytes(fields), privateKey);
}

/** Signs a message this node writes, for relays to pass on. */
export interface OriginSigner {
  sign(fields: GossipFields): string;
  /** Signs bytes made by {@link signedBytes}. */
  signBytes(bytes: Uint8Array): string;
}

/** A signer of the messages a node writes, over its private key. */
export function originSigner(privateKey: KeyObject): OriginSigner {
  return {
    sign: (fields) => signGossip(fields, privateKey),
    signBytes: (bytes) => signBody(bytes, privateKey),
  };
}

/** Why a relayed message was refused. */
export type GossipRefusal = 'unsigned' | 'bad_key' | 'bad_signature' | 'stale';

/**
 * Checks a relayed message against its origin: the origin's key hashes to its id, the signature
 * is the key's, and the timestamp is at most `maxSkewMs` before `now` and `maxAheadMs` after it.
 * Returns `undefined` when good.
 */
export function checkGossip(
  keys: KeyCache,
  origin: WirePeer,
  fields: GossipFields,
  sig: string | undefined,
  now: number,
  maxSkewMs: number,
  maxAheadMs = maxSkewMs,
): GossipRefusal | undefined {
  if (sig === undefined || origin.id === undefined || origin.key === undefined) return 'unsigned';
  if (fields.ts < now - maxSkewMs || fields.ts > now + maxAheadMs) return 'stale';
  const key = keys.resolve(origin.id, origin.key);
  if (typeof key === 'string') return 'bad_key';
  return verifyBody(signedBytes(fields), sig, key) ? undefined : 'bad_signature';
}

/**
 * Checks, off the main thread (in libuv's thread pool), that `sig` is the signature of `fields`
 * by the origin `originId` with key `keyText` (which must hash to the id). For catch-up: unlike
 * {@link checkGossip} there is no time window, as history is old by nature. Never rejects.
 */
export function verifyOrigin(
  keys: KeyCache,
  originId: string,
  keyText: string,
  fields: GossipFields,
  sig: string | undefined,
): Promise<boolean> {
  if (sig === undefined) return Promise.resolve(false);
  const key = keys.resolve(originId, keyText);
  if (typeof key === 'string') return Promise.resolve(false);
  const raw = Buffer.from(sig, 'base64url');
  if (raw.length !== 64) return Promise.resolve(false);
  return new Promise((resolve) => {
    try {
      verify(null, bodyDigest(signedBytes(fields)), key, raw, (err, ok) => resolve(err === null && ok));
    } catch {
      resolve(false);
    }
  });
}

/**
 * The chain hash of a logged message (see the module comment): base64url of the SHA-256 of
 * `"tsp2p-chain/1\n"`, the bytes its origin signed, and its raw signature when it has one.
 * `undefined` for a signature that is not 64 bytes of base64url.
 */
export function chainHash(fields: GossipFields, sig: string | undefined): string | undefined {
  return chainHashOf(signedBytes(fields), sig);
}

/** {@link chainHash} of the bytes {@link signedBytes} made. */
export function chainHashOf(signed: Uint8Array, sig: string | undefined): string | undefined {
  if (signed.byteLength > ONE_SHOT_BYTES) {
    // Large: hashed where it lies, not copied first.
    const h = createHash('sha256').update(CHAIN_PREFIX).update(signed);
    if (sig !== undefined) {
      const raw = Buffer.from(sig, 'base64url');
      if (sig.length !== 86 || raw.length !== 64) return undefined;
      h.update(raw);
    }
    return h.digest('base64url');
  }
  const bytes = Buffer.allocUnsafe(CHAIN_PREFIX.length + signed.byteLength + (sig === undefined ? 0 : 64));
  CHAIN_PREFIX.copy(bytes, 0);
  bytes.set(signed, CHAIN_PREFIX.length);
  if (sig !== undefined) {
    if (sig.length !== 86 || bytes.write(sig, CHAIN_PREFIX.length + signed.byteLength, 'base64url') !== 64)
      return undefined;
  }
  // One-shot: a third of the cost of a Hash object, paid per message written.
  return hash('sha256', bytes, 'base64url');
}

/** A logged message as catch-up receives it: its fields, its stream and its origin's key. */
export interface ChainedEntry extends GossipFields {
  readonly seq: number;
  /** Absent on a message vouched for by the chain only (see "Signed ends"). */
  readonly sig?: string | undefined;
  readonly origin: { readonly id?: string | undefined; readonly key?: string | undefined };
}

/**
 * For each entry of a catch-up answer, the index of the entry it chains to, or -1: entry `j`
 * vouches for entry `i` when both are of the same stream (origin id and key, epoch, channel),
 * `j` is numbered `i.seq + 1`, and `j.prev` is the chain hash of `i`. An entry that chains to
 * one whose signature holds is its origin's as surely (see the module comment). Pure; one
 * hash per entry.
 */
export function chainedRuns(entries: readonly ChainedEntry[]): Int32Array {
  const streamOf = (e: ChainedEntry): string =>
    `${e.origin.id ?? ''}\u0000${e.origin.key ?? ''}\u0000${e.epoch ?? ''}\u0000${e.channel ?? ''}`;
  const at = new Map<string, number>();
  entries.forEach((e, i) => {
    at.set(`${streamOf(e)}\u0000${e.seq}`, i);
  });
  const next = new Int32Array(entries.length).fill(-1);
  entries.forEach((e, i) => {
    const j = at.get(`${streamOf(e)}\u0000${e.seq + 1}`);
    if (j === undefined) return;
    const prev = entries[j]!.prev;
    if (prev !== undefined && prev === chainHash(e, e.sig)) next[i] = j;
  });
  return next;
}

/**
 * Whether each entry is as good as the end of its chain: `next[i]` is the entry `i` chains to
 * (as {@link chainedRuns} gives), -1 where a chain ends, and `endOk` says whether an end is good.
 * Each chain is followed once, however many entries share it.
 */
export function vouchedByEnds(next: Int32Array, endOk: (i: number) => boolean): boolean[] {
  const ok = new Array<boolean | undefined>(next.length);
  for (let i = 0; i < next.length; i++) {
    const path: number[] = [];
    let j = i;
    while (ok[j] === undefined && next[j] !== -1) {
      path.push(j);
      j = next[j]!;
      if (path.length > next.length) break; // never: numbers only go up along a chain
    }
    const end = ok[j] ?? endOk(j);
    ok[j] = end;
    for (const k of path) ok[k] = end;
  }
  return ok.map((v) => v === true);
}
