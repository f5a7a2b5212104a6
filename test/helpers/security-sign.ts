/**
 * Hand-made signed envelopes for tests that talk raw HTTP to a node: what a tsp2p sender puts on
 * the wire (its key in `from.key`, its id as the key's fingerprint, the Ed25519 signature of the
 * exact body in `tsp2p-sig`), and the network secret's tag when one is given.
 *
 * @module
 */

import assert from 'node:assert/strict';
import { generateIdentity, type Identity, identityFromSeed } from '../../src/identity.js';
import { decodeEnvelope } from '../../src/protocol/codec.js';
import type { Envelope } from '../../src/protocol/schema.js';
import { AUTH_HEADER, NetworkKeyring } from '../../src/security/keyring.js';
import { SIGNATURE_HEADER, signBody as signBytes } from '../../src/security/signature.js';

/** A body and the headers to send it with. */
export interface SignedRequest {
  readonly body: string;
  readonly headers: Record<string, string>;
}

/** Options of {@link signEnvelope} and {@link signedBody}. */
export interface SignOptions {
  /** Also tag the request with this network secret. */
  readonly secret?: string;
  /** More headers (they override the computed ones). */
  readonly headers?: Record<string, string>;
}

/** A fresh identity, or one from a seed byte (deterministic). */
export function testIdentity(seed?: number): Identity {
  return seed === undefined ? generateIdentity() : identityFromSeed(new Uint8Array(32).fill(seed));
}

/** The base64url public key of an identity, as in `from.key`. */
export function keyText(identity: Identity): string {
  return Buffer.from(identity.publicKey).toString('base64url');
}

let counter = 0;

/**
 * Signs `envelope` as `identity`: fills in `v`, `id`, `ts`, `from.id` and `from.key` where the
 * envelope leaves them out (a field given as `undefined` stays out of the JSON), then signs it.
 */
export function signEnvelope(
  envelope: Record<string, unknown>,
  identity: Identity,
  options: SignOptions = {},
): SignedRequest {
  const from = (envelope.from ?? {}) as Record<string, unknown>;
  const full: Record<string, unknown> = {
    v: 1,
    id: `t${process.pid}-${++counter}`,
    ts: Date.now(),
    ...envelope,
    from: { id: identity.id, key: keyText(identity), ...from },
  };
  return signedBody(JSON.stringify(full), identity, options);
}

/** Signs an exact body as `identity` (and tags it with `options.secret`). */
export function signedBody(body: string, identity: Identity, options: SignOptions = {}): SignedRequest {
  const headers: Record<string, string> = {
    'content-type': 'application/json',
    [SIGNATURE_HEADER]: signBytes(Buffer.from(body), identity.privateKey),
  };
  if (options.secret !== undefined) headers[AUTH_HEADER] = tagBody(body, options.secret);
  return { body, headers: { ...headers, ...options.headers } };
}

/** The network secret's tag header value for a request body. */
export function tagBody(body: string | Uint8Array, secret: string): string {
  return new NetworkKeyring(secret).tagRequest(typeof body === 'string' ? Buffer.from(body) : body).header;
}

/** An inbound request as `InboundGuard.admit()` takes it: the envelope, its exact bytes, the headers. */
export interface GuardRequest {
  envelope: Envelope;
  body: Uint8Array;
  headers: Record<string, string | undefined>;
}

/** Decodes `body` (the test's own envelope: it must decode) into a {@link GuardRequest}. */
export function guardRequest(
  body: Uint8Array | string,
  headers: Record<string, string | undefined>,
): GuardRequest {
  const bytes = typeof body === 'string' ? Buffer.from(body) : body;
  const decoded = decodeEnvelope(bytes);
  assert.ok(decoded.ok, 'test envelope decodes');
  return { envelope: decoded.value, body: bytes, headers };
}
