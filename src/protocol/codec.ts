/**
 * Encoding and decoding of envelopes and member lists: pure functions, no I/O. Every byte that
 * arrives from the network goes through {@link decodeEnvelope} or {@link decodeMemberList}
 * before anything else looks at it.
 *
 * @module
 */

import { isAscii } from 'node:buffer';
import type * as z from 'zod';
import { fastBatch } from './fast-batch.js';
import { fastAck, fastEnvelope, fastMemberList, fastPeer } from './fast-wire.js';
import { type Refusal, refusal } from './refusal.js';
import {
  type Ack,
  type Envelope,
  isKnownType,
  type MemberList,
  type WirePeer,
  wireSchemas,
} from './schema.js';

/** The result of decoding: the value, or the refusal to answer with. */
export type Decoded<T> =
  | { readonly ok: true; readonly value: T }
  | { readonly ok: false; readonly refusal: Refusal };

// gop2p's answer to anything it cannot decode; tsp2p keeps the words and adds the reason.
const NO_VALID_MESSAGE = 'No valid Message provided';

const decoder = new TextDecoder('utf-8', { fatal: true });

/** `body` as text: ASCII (nearly every body: base64 payloads) is copied as is, the rest decoded. */
function bodyText(body: Uint8Array): string {
  if (isAscii(body)) return Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString('latin1');
  return decoder.decode(body);
}

/** Renders the first zod issue as `path: message`, on one line. */
export function describeIssue(error: z.ZodError): string {
  const issue = error.issues[0];
  if (issue === undefined) return 'invalid value';
  const path = issue.path.length > 0 ? issue.path.join('.') : '(root)';
  return `${path}: ${issue.message}`.replace(/\s+/g, ' ');
}

function parseJson(body: Uint8Array): Decoded<unknown> {
  if (body.length === 0) return refuse(400, `${NO_VALID_MESSAGE}: empty body`);
  let text: string;
  try {
    text = bodyText(body);
  } catch {
    return refuse(400, `${NO_VALID_MESSAGE}: body is not UTF-8`);
  }
  try {
    return { ok: true, value: JSON.parse(text) };
  } catch {
    return refuse(400, `${NO_VALID_MESSAGE}: body is not JSON`);
  }
}

function refuse(status: number, message: string): { ok: false; refusal: Refusal } {
  return {
    ok: false,
    refusal: refusal(status, status === 405 ? 'method_not_allowed' : 'invalid_message', message),
  };
}

/**
 * Decodes and validates a request body. Answers, as gop2p does, 400 for anything that is not an
 * envelope and 405 for an unknown message type; the message says precisely what is wrong.
 */
export function decodeEnvelope(body: Uint8Array): Decoded<Envelope> {
  const json = parseJson(body);
  if (!json.ok) return json;
  const raw = json.value;
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    return refuse(400, `${NO_VALID_MESSAGE}: expected a JSON object`);
  }
  // Well-formed requests are checked without zod (same rules: fast-batch.ts, fast-wire.ts);
  // zod decides the rest, and words the refusal.
  const fast = fastBatch(raw as Record<string, unknown>) ?? fastEnvelope(raw as Record<string, unknown>);
  if (fast !== undefined) return { ok: true, value: fast };
  const parsed = wireSchemas().EnvelopeSchema.safeParse(raw);
  if (!parsed.success) return refuse(400, `${NO_VALID_MESSAGE}: ${describeIssue(parsed.error)}`);
  if (!isKnownType(parsed.data.type)) {
    return refuse(405, `Method not allowed: unknown message type ${parsed.data.type}`);
  }
  return { ok: true, value: parsed.data };
}

/** Encodes an envelope as the JSON request body. */
export function encodeEnvelope(envelope: Envelope): Buffer {
  return Buffer.from(encodeWithUpdates(envelope));
}

/**
 * Where an update keeps its own JSON once encoded (a symbol: `JSON.stringify` skips it). An
 * update is made once and never changed (membership builds a new one for each change), and a
 * node sends the same one many times (every gossip round until its retransmit limit, to several
 * members each): it is encoded once.
 */
const ENCODED: unique symbol = Symbol('tsp2p.encoded');

/** The JSON of one membership update, made on first use and kept on the update. */
function updateJson(u: object): string {
  const held = u as { [ENCODED]?: string };
  let json = held[ENCODED];
  if (json === undefined) {
    json = JSON.stringify(u);
    Object.defineProperty(u, ENCODED, { value: json });
  }
  return json;
}

/**
 * `JSON.stringify(value)`, the same text, for an envelope or an answer that carries membership
 * updates in `m`: each update's JSON is made once (see {@link ENCODED}) and reused.
 */
export function encodeWithUpdates(value: { readonly m?: readonly object[] | undefined }): string {
  const m = value.m;
  if (m === undefined) return JSON.stringify(value);
  // JSON.stringify's own order: the object's keys as Object.keys lists them (none here is an
  // integer), undefined values left out.
  let out = '{';
  for (const key of Object.keys(value)) {
    const v = (value as Record<string, unknown>)[key];
    let text: string | undefined;
    if (key === 'm') {
      const parts: string[] = new Array(m.length);
      for (let i = 0; i < m.length; i++) parts[i] = updateJson(m[i]!);
      text = `[${parts.join(',')}]`;
    } else text = JSON.stringify(v);
    if (text === undefined) continue;
    out += `${out.length > 1 ? ',' : ''}${JSON.stringify(key)}:${text}`;
  }
  return `${out}}`;
}

/** Base64 of a payload, as Go encodes a `[]byte`. */
export function encodeData(data: Uint8Array): string {
  return Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString('base64');
}

/** Bytes of a payload slab (see {@link decodeData}), as Buffer's own pool. */
const SLAB_BYTES = 8 * 1024;
/** Payloads up to this size are decoded into the current slab; larger ones get their own memory. */
const SLAB_MAX = SLAB_BYTES >>> 1;
/** The slab small payloads are decoded into now, and how much of it they use. */
let slab = Buffer.alloc(SLAB_BYTES);
let slabUsed = 0;

/**
 * The payload of an envelope (`null` or absent data is an empty payload), as a plain
 * `Uint8Array`. A small payload (nearly every one) is decoded straight into a shared slab and
 * viewed there, as `Buffer.from` does in its pool, but with one view object per payload rather
 * than two (a Buffer, then the plain view over it): this runs once per message received. The
 * same decoder writes the same bytes either way; input that is not canonical base64 takes the
 * `Buffer.from` path.
 */
export function decodeData(data: string | null | undefined): Uint8Array {
  if (data === null || data === undefined || data === '') return new Uint8Array(0);
  const n = data.length;
  if (n % 4 === 0 && n <= (SLAB_MAX / 3) * 4) {
    // Canonical base64 decodes to exactly this many bytes; anything else to fewer.
    const pad = data.charCodeAt(n - 1) === 61 ? (data.charCodeAt(n - 2) === 61 ? 2 : 1) : 0;
    const bytes = (n / 4) * 3 - pad;
    if (slabUsed + bytes > SLAB_BYTES) {
      slab = Buffer.alloc(SLAB_BYTES);
      slabUsed = 0;
    }
    if (bytes > 0 && slab.write(data, slabUsed, bytes, 'base64') === bytes) {
      const view = new Uint8Array(slab.buffer, slab.byteOffset + slabUsed, bytes);
      slabUsed += bytes;
      return view;
    }
  }
  const buf = Buffer.from(data, 'base64');
  return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
}

/** Decodes a connect answer's member list. */
export function decodeMemberList(body: Uint8Array): Decoded<MemberList> {
  const json = parseJson(body);
  if (!json.ok) return refuse(json.refusal.status, 'member list is not JSON');
  const fast = fastMemberList(json.value);
  if (fast !== undefined) return { ok: true, value: fast };
  // Go marshals an empty (nil) slice as null.
  const parsed = wireSchemas().MemberListSchema.safeParse(json.value === null ? [] : json.value);
  if (!parsed.success) return refuse(400, `invalid member list: ${describeIssue(parsed.error)}`);
  return { ok: true, value: parsed.data };
}

/** Encodes a connect answer's member list; gop2p reads `port` and `address` and ignores the rest. */
export function encodeMemberList(members: readonly WirePeer[]): Buffer {
  return Buffer.from(JSON.stringify(members));
}

/**
 * Encodes a connect answer's `tsp2p-self` header: the entry point's own `from` (its self-record,
 * with tags, topics and its record signature), as percent-encoded JSON.
 */
export function encodeSelfHeader(self: WirePeer): string {
  return encodeURIComponent(JSON.stringify(self));
}

/** Decodes a `tsp2p-self` header; `undefined` when it is absent or not a valid peer. */
export function decodeSelfHeader(value: string | undefined): WirePeer | undefined {
  if (value === undefined || value.length > MAX_SELF_HEADER) return undefined;
  let raw: unknown;
  try {
    raw = JSON.parse(decodeURIComponent(value));
  } catch {
    return undefined;
  }
  const fast = fastPeer(raw);
  if (fast !== undefined) return fast;
  const parsed = wireSchemas().WirePeerSchema.safeParse(raw);
  return parsed.success ? parsed.data : undefined;
}

/** The longest `tsp2p-self` header read: a self-record's tags and topics fit well within it. */
const MAX_SELF_HEADER = 16_384;

/** Decodes the JSON answer to a ping, ping-req, sync or gossip. */
export function decodeAck(body: Uint8Array): Decoded<Ack> {
  const json = parseJson(body);
  if (!json.ok) return refuse(json.refusal.status, 'answer is not JSON');
  const fast = fastAck(json.value);
  if (fast !== undefined) return { ok: true, value: fast };
  const parsed = wireSchemas().AckSchema.safeParse(json.value);
  if (!parsed.success) return refuse(400, `invalid answer: ${describeIssue(parsed.error)}`);
  return { ok: true, value: parsed.data };
}
