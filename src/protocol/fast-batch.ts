/**
 * A fast path for the commonest request: a well-formed batch (type 8).
 *
 * zod's validation of a batch was the largest share of a receiver's work per request at modest
 * rates (BENCHMARKS.md, `latency`). This checks a batch with plain code instead, and answers only
 * when it is sure: it accepts an object only if every field is one the schema knows and every
 * value passes the schema's own rules ({@link EnvelopeSchema}); anything else, however slightly
 * unusual (an unknown field, which zod would strip; a wrong type; a bound crossed), makes it
 * return `undefined`, and the decoder then runs zod, which gives the precise refusal. So the
 * schema stays the one source of truth: `test/unit/fast-batch.test.ts` checks, on generated
 * and mutated batches, that whatever this accepts zod accepts too, with the same result.
 *
 * @module
 */

import {
  type Envelope,
  FIELD_LIMITS,
  LOG_LIMITS,
  MAX_BATCH,
  MAX_DEPS,
  MAX_INCARNATION,
  MAX_TREE_IDS,
  MessageType,
  TreeEntry,
} from './schema.js';

/** A plain JSON object. */
export type Obj = Record<string, unknown>;

const ENVELOPE_KEYS = new Set(['type', 'data', 'from', 'v', 'id', 'ts', 'stream', 'seq', 'base', 'msgs']);
const PEER_KEYS = new Set([
  'address',
  'port',
  'id',
  'name',
  'inc',
  'rsig',
  'rinc',
  'tags',
  'topics',
  'key',
  'xkey',
]);
const MESSAGE_KEYS = new Set([
  'type',
  'id',
  'ts',
  'data',
  'to',
  'hops',
  'origin',
  'sig',
  'tree',
  'topic',
  'epoch',
  'channel',
  'seq',
  'prev',
  'deps',
]);
/** A topic name (the schema's rule). */
export const TOPIC_TEXT = /^[A-Za-z0-9\-_.:/]{1,64}$/;
const CONTROL_KEYS = new Set(['type', 'ids']);
const REF_KEYS = new Set(['origin', 'id']);
/** A base64url Ed25519 or X25519 public key. */
export const KEY_TEXT = /^[A-Za-z0-9_-]{43}$/;
/** A base64url Ed25519 signature of a self-record. */
export const RECORD_SIG_TEXT = /^[A-Za-z0-9_-]{86}$/;

/** Each character's 6-bit value in standard base64, or 64 for one that is not in its alphabet. */
const B64 = (() => {
  const t = new Uint8Array(128).fill(64);
  const abc = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
  for (let i = 0; i < abc.length; i++) t[abc.charCodeAt(i)] = i;
  return t;
})();

/**
 * Whether `s` is standard, padded, canonical base64: exactly what `isBase64` in `schema.ts`
 * (the schema's rule: `s` decoded and encoded again is `s`) accepts, checked character by
 * character instead of by decoding and encoding the payload (which the receiver then decodes
 * once more). So: a length that is a multiple of 4, only the 64 characters of the alphabet,
 * then at most two `=`, and no bits set in the last character that the padding leaves unused.
 * `test/unit/fast-batch.test.ts` checks it against the round trip.
 */
export function isCanonicalBase64(s: string): boolean {
  const n = s.length;
  if (n % 4 !== 0) return false;
  if (n === 0) return true;
  const pad = s.charCodeAt(n - 1) === 61 ? (s.charCodeAt(n - 2) === 61 ? 2 : 1) : 0;
  const end = n - pad;
  let bad = 0;
  for (let i = 0; i < end; i++) {
    const c = s.charCodeAt(i);
    bad |= c < 128 ? B64[c]! : 64;
  }
  if ((bad & 64) !== 0) return false;
  // The last character before the padding carries bits that no byte holds: they must be 0.
  if (pad === 1) return (B64[s.charCodeAt(end - 1)]! & 0b11) === 0;
  if (pad === 2) return (B64[s.charCodeAt(end - 1)]! & 0b1111) === 0;
  return true;
}

/** `raw` as a batch envelope when it certainly is a valid one; `undefined` when unsure. */
export function fastBatch(raw: Obj): Envelope | undefined {
  if (raw.type !== MessageType.Batch || !onlyKeys(raw, ENVELOPE_KEYS)) return undefined;
  if (raw.data !== undefined && raw.data !== null) return undefined;
  if (!isPeer(raw.from)) return undefined;
  if (raw.v !== undefined && !isInt(raw.v, 1)) return undefined;
  if (raw.id !== undefined && !isText(raw.id, 1, FIELD_LIMITS.messageId)) return undefined;
  if (raw.ts !== undefined && !isNonNegative(raw.ts)) return undefined;
  if (raw.stream !== undefined && !isText(raw.stream, 1, FIELD_LIMITS.messageId)) return undefined;
  if (raw.seq !== undefined && !isInt(raw.seq, 1)) return undefined;
  if (raw.base !== undefined && !isInt(raw.base, 1)) return undefined;
  const msgs = raw.msgs;
  if (msgs !== undefined) {
    if (!Array.isArray(msgs) || msgs.length > MAX_BATCH) return undefined;
    // An index, not an iterator: this runs once per message received.
    for (let i = 0; i < msgs.length; i++) if (!isEntry(msgs[i])) return undefined;
  }
  return raw as Envelope;
}

function isEntry(m: unknown): boolean {
  if (!isObject(m)) return false;
  const type = m.type;
  if (type === MessageType.Broadcast || type === MessageType.Direct) return isMessage(m);
  if (type === TreeEntry.IHave || type === TreeEntry.Graft || type === TreeEntry.Prune) return isControl(m);
  return false;
}

/** `m` is a valid broadcast or direct message inside a batch (the schema's rules). */
export function isMessage(m: Obj): boolean {
  if (!onlyKeys(m, MESSAGE_KEYS)) return false;
  if (!isText(m.id, 1, FIELD_LIMITS.messageId) || !isNonNegative(m.ts)) return false;
  if (typeof m.data !== 'string' || !isCanonicalBase64(m.data)) return false;
  if (m.to !== undefined) {
    if (!Array.isArray(m.to) || m.to.length > FIELD_LIMITS.recipients) return false;
    for (const p of m.to) if (!isPeer(p)) return false;
  }
  if (m.hops !== undefined && !(isInt(m.hops, 0) && (m.hops as number) <= 255)) return false;
  if (m.origin !== undefined && !isPeer(m.origin)) return false;
  if (m.sig !== undefined && !(typeof m.sig === 'string' && m.sig.length === 86)) return false;
  if (m.tree !== undefined && m.tree !== true) return false;
  if (m.topic !== undefined && !(typeof m.topic === 'string' && TOPIC_TEXT.test(m.topic))) return false;
  if (m.epoch !== undefined && !isText(m.epoch, 1, LOG_LIMITS.epoch)) return false;
  if (m.channel !== undefined && !isText(m.channel, 1, LOG_LIMITS.channel)) return false;
  if (m.seq !== undefined && !isInt(m.seq, 1)) return false;
  if (m.prev !== undefined && !(typeof m.prev === 'string' && KEY_TEXT.test(m.prev))) return false;
  if (m.deps !== undefined) {
    if (!Array.isArray(m.deps) || m.deps.length < 1 || m.deps.length > MAX_DEPS) return false;
    for (const d of m.deps) if (!isText(d, 1, FIELD_LIMITS.messageId)) return false;
  }
  return true;
}

function isControl(m: Obj): boolean {
  if (!onlyKeys(m, CONTROL_KEYS)) return false;
  if (m.ids === undefined) return true;
  if (!Array.isArray(m.ids) || m.ids.length > MAX_TREE_IDS) return false;
  for (const r of m.ids) {
    if (!isObject(r) || !onlyKeys(r, REF_KEYS)) return false;
    if (!isText(r.origin, 1, FIELD_LIMITS.id) || !isText(r.id, 1, FIELD_LIMITS.messageId)) return false;
  }
  return true;
}

/** `p` is certainly a valid wire peer (`WirePeerSchema`). */
export function isPeer(p: unknown): boolean {
  if (!isObject(p) || !onlyKeys(p, PEER_KEYS)) return false;
  if (!isText(p.address, 1, FIELD_LIMITS.address)) return false;
  if (!(isInt(p.port, 1) && (p.port as number) <= 65535)) return false;
  if (p.id !== undefined && !isText(p.id, 1, FIELD_LIMITS.id)) return false;
  if (p.name !== undefined && !isText(p.name, 0, FIELD_LIMITS.name)) return false;
  if (p.inc !== undefined && !isIncarnation(p.inc)) return false;
  return isSelfRecord(p);
}

/** The fields a peer and a membership update share: key, record signature, tags, topics. */
export function isSelfRecord(p: Obj): boolean {
  if (p.rsig !== undefined && !(typeof p.rsig === 'string' && RECORD_SIG_TEXT.test(p.rsig))) return false;
  if (p.rinc !== undefined && !isIncarnation(p.rinc)) return false;
  if (p.tags !== undefined && !isTags(p.tags)) return false;
  if (p.topics !== undefined) {
    if (!Array.isArray(p.topics) || p.topics.length > 32) return false;
    for (const t of p.topics) if (!(typeof t === 'string' && TOPIC_TEXT.test(t))) return false;
  }
  if (p.key !== undefined && !(typeof p.key === 'string' && KEY_TEXT.test(p.key))) return false;
  if (p.xkey !== undefined && !(typeof p.xkey === 'string' && KEY_TEXT.test(p.xkey))) return false;
  return true;
}

function isTags(t: unknown): boolean {
  if (!isObject(t) || Object.getPrototypeOf(t) !== Object.prototype) return false;
  let n = 0;
  for (const k in t) {
    const v = t[k];
    if (k.length < 1 || k.length > 32 || typeof v !== 'string' || v.length > 128) return false;
    // JSON.parse makes `__proto__` an own key; zod's copy would set the prototype instead.
    if (k === '__proto__') return false;
    n++;
  }
  return n <= 16;
}

/** An incarnation: an integer from 0 to {@link MAX_INCARNATION}. */
export function isIncarnation(v: unknown): boolean {
  return isInt(v, 0) && (v as number) <= MAX_INCARNATION;
}

/** `v` is a JSON object (not null, not an array). */
export function isObject(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Every own key of `o` is one of `allowed` (and none is set to `undefined` explicitly). */
export function onlyKeys(o: Obj, allowed: ReadonlySet<string>): boolean {
  for (const k in o) if (!allowed.has(k) || o[k] === undefined) return false;
  return Object.getPrototypeOf(o) === Object.prototype;
}

/** `v` is a string of `min` to `max` UTF-16 units (zod's `min`/`max`). */
export function isText(v: unknown, min: number, max: number): boolean {
  return typeof v === 'string' && v.length >= min && v.length <= max;
}

/** `v` is a safe integer of at least `min` (zod's `int().min()`). */
export function isInt(v: unknown, min: number): boolean {
  return Number.isSafeInteger(v) && (v as number) >= min;
}

/** `v` is a finite number of at least 0 (zod's `number().nonnegative()`). */
export function isNonNegative(v: unknown): boolean {
  return typeof v === 'number' && Number.isFinite(v) && v >= 0;
}
