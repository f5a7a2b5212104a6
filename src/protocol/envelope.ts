/**
 * Sealing and opening envelopes: the one place where an envelope is built for sending and
 * checked on arrival. Signing slots in here.
 *
 * @module
 */

import { type Decoded, decodeEnvelope, encodeData, encodeEnvelope } from './codec.js';
import {
  type Envelope,
  type MessageType,
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
}

/** Builds and encodes an outbound envelope, ready to POST. Encoded once, sent to every receiver. */
export function sealEnvelope(fields: EnvelopeFields): Buffer {
  const envelope: Envelope = {
    type: fields.type,
    data: fields.data === undefined ? null : encodeData(fields.data),
    from: fields.from,
    v: PROTOCOL_VERSION,
    id: fields.id,
    ts: fields.ts,
  };
  if (fields.to !== undefined) envelope.to = [...fields.to];
  if (fields.m !== undefined && fields.m.length > 0) envelope.m = [...fields.m];
  if (fields.target !== undefined) envelope.target = fields.target;
  return encodeEnvelope(envelope);
}

/** Decodes and validates an inbound body. */
export function openEnvelope(body: Uint8Array): Decoded<Envelope> {
  return decodeEnvelope(body);
}

/** Whether an envelope comes from a tsp2p node (versioned, with a node id) rather than gop2p. */
export function isTsp2pEnvelope(envelope: Envelope): boolean {
  return envelope.v !== undefined && envelope.from.id !== undefined;
}
