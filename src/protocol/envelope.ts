/**
 * Sealing and opening envelopes: the one place where an envelope is built for sending and
 * checked on arrival. Signing slots in here.
 *
 * @module
 */

import { type Decoded, decodeEnvelope, encodeData, encodeEnvelope } from './codec.js';
import type { LogRequest } from './log-schema.js';
import {
  type Envelope,
  MessageType,
  PROTOCOL_VERSION,
  type WireMemberUpdate,
  type WirePeer,
} from './schema.js';

/** What the sender fills in; {@link sealEnvelope} adds the protocol fields. */
export interface EnvelopeFields {
  readonly type: MessageType;
  readonly from: WirePeer;
  readonly data?: Uint8Array;
  readonly to?: readonly WirePeer[];
  readonly id: string;
  readonly ts: number;
  /** Membership updates to carry. */
  readonly m?: readonly WireMemberUpdate[];
  /** For a ping-req: the member to ping. */
  readonly target?: WirePeer;
  /** On a connect: an announcement that needs no member list in answer. */
  readonly announce?: boolean;
  /** On a log request (types 12, 13): what is asked for. */
  readonly log?: LogRequest;
  /** On a sync: the digest of the sender's membership state, instead of the state. */
  readonly digest?: string;
}

/**
 * An outbound request, ready to POST: the encoded envelope and the headers that go with it
 * (authentication lives in headers, over the exact body bytes). Sealed once, sent to every
 * receiver.
 */
export interface Sealed {
  readonly body: Uint8Array;
  readonly headers?: Readonly<Record<string, string>>;
  /** The envelope's message type (for the per-type traffic counters); not sent. */
  readonly type?: MessageType;
}

/**
 * Signs sealed envelopes, whatever their type: its public key goes into `from.key` before the
 * body is encoded, and `headers(body)` gives the headers that authenticate the exact body bytes
 * (see `src/security/signature.ts`).
 */
export interface EnvelopeSigner {
  /** The sender's raw Ed25519 public key, base64url. */
  readonly key: string;
  /** The headers that carry the body's signature. */
  headers(body: Uint8Array): Record<string, string>;
}

/** Builds and encodes an outbound envelope, signed by `signer` when given. */
export function sealEnvelope(fields: EnvelopeFields, signer?: EnvelopeSigner): Sealed {
  const envelope: Envelope = {
    type: fields.type,
    data: fields.data === undefined ? null : encodeData(fields.data),
    from: signer === undefined ? fields.from : { ...fields.from, key: signer.key },
    v: PROTOCOL_VERSION,
    id: fields.id,
    ts: fields.ts,
  };
  if (fields.to !== undefined) envelope.to = [...fields.to];
  if (fields.m !== undefined && fields.m.length > 0) envelope.m = [...fields.m];
  if (fields.target !== undefined) envelope.target = fields.target;
  if (fields.announce === true) envelope.announce = true;
  if (fields.log !== undefined) envelope.log = fields.log;
  if (fields.digest !== undefined) envelope.digest = fields.digest;
  const body = encodeEnvelope(envelope);
  const type = fields.type;
  return signer === undefined ? { body, type } : { body, headers: signer.headers(body), type };
}

/** The header fields of a batch; the messages come pre-serialized. */
export interface BatchFields {
  readonly from: WirePeer;
  readonly id: string;
  readonly ts: number;
  readonly stream: string;
  readonly seq: number;
  /** Every number below it is settled by the sender (delivered or given up). */
  readonly base?: number;
}

/**
 * Builds a batch (type 8) from messages serialized once each (`BatchedMessage` JSON objects):
 * the same fragments go into the batches of every receiver, so a message is encoded once
 * however many peers get it.
 */
export function sealBatch(
  fields: BatchFields,
  fragments: readonly (Uint8Array | string)[],
  signer?: EnvelopeSigner,
): Sealed {
  const head: Envelope = {
    type: MessageType.Batch,
    data: null,
    from: signer === undefined ? fields.from : { ...fields.from, key: signer.key },
    v: PROTOCOL_VERSION,
    id: fields.id,
    ts: fields.ts,
    stream: fields.stream,
    seq: fields.seq,
  };
  if (fields.base !== undefined) head.base = fields.base;
  const json = JSON.stringify(head);
  // `{..."seq":N` + `,"msgs":[` + f1 + `,` + f2 ... + `]}`: valid JSON, the fragments copied as
  // they are (no re-encoding, no text in between).
  const parts: Uint8Array[] = [Buffer.from(`${json.slice(0, -1)},"msgs":[`)];
  fragments.forEach((f, i) => {
    if (i > 0) parts.push(COMMA);
    parts.push(typeof f === 'string' ? Buffer.from(f) : f);
  });
  parts.push(CLOSE_BATCH);
  const body = Buffer.concat(parts);
  const type = MessageType.Batch;
  return signer === undefined ? { body, type } : { body, headers: signer.headers(body), type };
}

const COMMA = Buffer.from(',');
const CLOSE_BATCH = Buffer.from(']}');

/**
 * Decodes and validates an inbound body. `headers` (lowercase names) carry what authenticates
 * it.
 */
export function openEnvelope(
  body: Uint8Array,
  _headers: Readonly<Record<string, string | undefined>> = {},
): Decoded<Envelope> {
  return decodeEnvelope(body);
}

/** Whether an envelope comes from a tsp2p node (versioned, with a node id) rather than gop2p. */
export function isTsp2pEnvelope(envelope: Envelope): boolean {
  return envelope.v !== undefined && envelope.from.id !== undefined;
}
