/**
 * The network secret: an authentication tag on every protocol request and answer.
 *
 * Each secret is stretched with HKDF-SHA256 into a 32-byte tag key and a key id. A request
 * carries `tsp2p-auth: <key id>.<tag>`, where the tag is HMAC-SHA256(key, "tsp2p-req\n" + body),
 * base64url. A receiver accepts a request tagged with any of its keys, and checks the tag before
 * it parses a byte of the body. The answer carries a tag with the same key over the request's
 * tag, the status and the answer body, so an answer can neither be forged nor replayed to
 * another request.
 *
 * Several secrets may be listed, for rotation: all are accepted, the first is used to send.
 *
 * @module
 */

import { createHmac, hkdfSync, timingSafeEqual } from 'node:crypto';
import { InvalidOptionsError } from '../errors.js';

/** The header that carries the tag, on requests and on answers. */
export const AUTH_HEADER = 'tsp2p-auth';

/** The shortest secret accepted, in characters. */
export const MIN_SECRET_LENGTH = 16;

const SALT = Buffer.from('tsp2p network secret v1');
const REQUEST_DOMAIN = Buffer.from('tsp2p-req\n');
const ANSWER_DOMAIN = Buffer.from('tsp2p-ans\n');
const NEWLINE = Buffer.from('\n');
const TAG_CHARS = 43; // base64url of 32 bytes
const KEY_ID = /^[0-9a-f]{8}$/;

/** One secret's derived key. */
export interface NetworkKey {
  /** 8 hex characters naming the key on the wire (derived, so it reveals nothing of the secret). */
  readonly id: string;
  readonly key: Buffer;
}

/** A tag checked on arrival: the key it was made with, and the tag itself (for the answer). */
export interface VerifiedTag {
  readonly key: NetworkKey;
  readonly tag: string;
}

/** The secret option: one secret or a list of them. */
export type SecretInput = string | readonly string[];

/** Normalizes and checks the `secret` option. Returns `[]` for none. */
export function secretList(input: SecretInput | undefined): string[] {
  if (input === undefined) return [];
  const list = typeof input === 'string' ? [input] : [...input];
  for (const s of list) {
    if (typeof s !== 'string' || s.length < MIN_SECRET_LENGTH) {
      throw new InvalidOptionsError(
        `invalid option secret: each secret needs at least ${MIN_SECRET_LENGTH} characters`,
      );
    }
  }
  return list;
}

/** Derives the key of one secret. */
export function deriveKey(secret: string): NetworkKey {
  const ikm = Buffer.from(secret, 'utf8');
  const key = Buffer.from(hkdfSync('sha256', ikm, SALT, 'tsp2p tag key', 32));
  const idBytes = Buffer.from(hkdfSync('sha256', ikm, SALT, 'tsp2p key id', 4));
  return { id: idBytes.toString('hex'), key };
}

function requestTag(key: Buffer, body: Uint8Array): string {
  return createHmac('sha256', key).update(REQUEST_DOMAIN).update(body).digest('base64url');
}

function answerTag(key: Buffer, request: string, status: number, body: Uint8Array): string {
  return createHmac('sha256', key)
    .update(ANSWER_DOMAIN)
    .update(request)
    .update(NEWLINE)
    .update(String(status))
    .update(NEWLINE)
    .update(body)
    .digest('base64url');
}

function sameTag(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/** Splits `<key id>.<tag>`; `undefined` when malformed. */
function parseHeader(value: string | undefined): { id: string; tag: string } | undefined {
  if (value === undefined || value.length !== 8 + 1 + TAG_CHARS || value[8] !== '.') return undefined;
  const id = value.slice(0, 8);
  return KEY_ID.test(id) ? { id, tag: value.slice(9) } : undefined;
}

/** The keys of the network secrets; changeable at run time, for rotation. */
export class NetworkKeyring {
  #keys: readonly NetworkKey[] = [];
  // Tags of bodies sealed once and sent to many peers: one HMAC per body, not per peer.
  #tags = new WeakMap<Uint8Array, { key: NetworkKey; tag: string }>();

  constructor(secret?: SecretInput) {
    this.set(secret);
  }

  /** Replaces the secrets: all are accepted, the first is used to send. `[]` or `undefined` for none. */
  set(secret: SecretInput | undefined): void {
    this.#keys = secretList(secret).map(deriveKey);
    this.#tags = new WeakMap();
  }

  /** Whether a secret is set. */
  get enabled(): boolean {
    return this.#keys.length > 0;
  }

  /** The ids of the keys, the sending key first (they reveal nothing of the secrets). */
  get keyIds(): string[] {
    return this.#keys.map((k) => k.id);
  }

  /** Tags an outbound request body with the first key: the header value and the tag. */
  tagRequest(body: Uint8Array): VerifiedTag & { header: string } {
    const key = this.#keys[0];
    if (key === undefined) throw new Error('no network secret set');
    let cached = this.#tags.get(body);
    if (cached === undefined || cached.key !== key) {
      cached = { key, tag: requestTag(key.key, body) };
      this.#tags.set(body, cached);
    }
    return { ...cached, header: `${key.id}.${cached.tag}` };
  }

  /** Checks an inbound request's tag header against every key; `undefined` when none matches. */
  verifyRequest(header: string | undefined, body: Uint8Array): VerifiedTag | undefined {
    const parsed = parseHeader(header);
    if (parsed === undefined) return undefined;
    for (const key of this.#keys) {
      if (key.id !== parsed.id) continue;
      if (sameTag(requestTag(key.key, body), parsed.tag)) return { key, tag: parsed.tag };
    }
    return undefined;
  }

  /** The tag header for the answer to a request verified as `request`. */
  tagAnswer(request: VerifiedTag, status: number, body: Uint8Array): string {
    return `${request.key.id}.${answerTag(request.key.key, request.tag, status, body)}`;
  }

  /** Whether an answer's tag header is right for the request tagged `request`. */
  verifyAnswer(request: VerifiedTag, header: string | undefined, status: number, body: Uint8Array): boolean {
    const parsed = parseHeader(header);
    if (parsed === undefined || parsed.id !== request.key.id) return false;
    return sameTag(answerTag(request.key.key, request.tag, status, body), parsed.tag);
  }
}
