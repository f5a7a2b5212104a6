/**
 * Node identity: an Ed25519 key pair. A node's id is the fingerprint of its public key.
 *
 * @module
 */

import {
  createHash,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  type KeyObject,
} from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { InvalidOptionsError } from './errors.js';

/**
 * Key material for a node's identity:
 * - a path to a PKCS#8 PEM file (created with mode 0600 when it does not exist);
 * - a PEM string (`-----BEGIN PRIVATE KEY-----...`);
 * - a 32-byte Ed25519 seed;
 * - a private `KeyObject`.
 */
export type IdentityInput = string | Uint8Array | KeyObject;

/** A node's key pair and the id derived from it. */
export interface Identity {
  /** The fingerprint of the public key: 32 lowercase hex characters. */
  readonly id: string;
  /** The raw 32-byte Ed25519 public key. */
  readonly publicKey: Uint8Array;
  /** The public key as a KeyObject, for verification. */
  readonly publicKeyObject: KeyObject;
  /** The private key, for signing. */
  readonly privateKey: KeyObject;
}

// The fixed DER prefix of a PKCS#8 Ed25519 private key; the 32-byte seed follows it.
const PKCS8_ED25519_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');

/** The fingerprint of a raw Ed25519 public key: the first 16 bytes of its SHA-256, in hex. */
export function fingerprint(publicKey: Uint8Array): string {
  return createHash('sha256').update(publicKey).digest('hex').slice(0, 32);
}

/**
 * The raw 32 bytes of an Ed25519 or X25519 public key: the last 32 of its SPKI DER. Not a JWK
 * export: on Node 20 a JWK export of a key fresh from `generateKeyPairSync` deadlocks the process
 * when a garbage collection runs inside it (the export holds the key's lock while it allocates,
 * and the collected key-generation job takes the same lock).
 */
export function rawPublicKey(publicKey: KeyObject): Buffer {
  const spki = publicKey.export({ format: 'der', type: 'spki' });
  return spki.subarray(spki.length - 32);
}

function fromPrivateKey(privateKey: KeyObject): Identity {
  if (privateKey.type !== 'private' || privateKey.asymmetricKeyType !== 'ed25519') {
    throw new InvalidOptionsError('identity must be an Ed25519 private key');
  }
  const publicKeyObject = createPublicKey(privateKey);
  const publicKey = new Uint8Array(rawPublicKey(publicKeyObject));
  return { id: fingerprint(publicKey), publicKey, publicKeyObject, privateKey };
}

/** Generates a fresh identity. */
export function generateIdentity(): Identity {
  return fromPrivateKey(generateKeyPairSync('ed25519').privateKey);
}

/** An identity from a 32-byte Ed25519 seed (deterministic: useful in simulations). */
export function identityFromSeed(seed: Uint8Array): Identity {
  if (seed.length !== 32) throw new InvalidOptionsError(`an Ed25519 seed is 32 bytes, got ${seed.length}`);
  const der = Buffer.concat([PKCS8_ED25519_PREFIX, seed]);
  return fromPrivateKey(createPrivateKey({ key: der, format: 'der', type: 'pkcs8' }));
}

/** Options of {@link loadOrCreateIdentityFile}. */
export interface IdentityFileOptions {
  /**
   * Accept a key file that the group or others can read (some containers mount secrets
   * world-readable). Without it such a file is refused, as ssh refuses such keys.
   * @default false
   */
  readonly allowReadable?: boolean;
}

/**
 * Refuses a key file that the group or others may read: one line that says how to fix it. Does
 * nothing on Windows (no POSIX modes) or with `allowReadable`.
 *
 * @throws {InvalidOptionsError} `ERR_INVALID_OPTIONS` when the file's mode has any of 0o077.
 */
export function checkKeyFileMode(path: string, allowReadable = false): void {
  if (allowReadable || process.platform === 'win32') return;
  let mode: number;
  try {
    mode = statSync(path).mode & 0o777;
  } catch (cause) {
    throw new InvalidOptionsError(`cannot read identity file ${path}`, { cause });
  }
  if ((mode & 0o077) === 0) return;
  throw new InvalidOptionsError(
    `identity file ${path} is readable by others (mode ${mode.toString(8).padStart(4, '0')}): ` +
      `run chmod 600 ${path}, or allow it with allowReadableIdentity (CLI --allow-readable-identity)`,
  );
}

/**
 * The identity stored at `path` as PKCS#8 PEM, created there (mode 0600) when the file does not
 * exist: a node keeps its id across restarts. Passing the path as the `identity` option does the
 * same inside `new Node()`; this gives the identity (and its id) before the node exists. An
 * existing file must be private to its owner (see {@link checkKeyFileMode}).
 *
 * @throws {InvalidOptionsError} `ERR_INVALID_OPTIONS` when the file cannot be read or written,
 *   holds no Ed25519 PEM key, or is readable by others.
 * @example
 * ```ts
 * const identity = loadOrCreateIdentityFile('./node.key');
 * const node = new Node({ identity: identity.privateKey });
 * ```
 */
export function loadOrCreateIdentityFile(path: string, options: IdentityFileOptions = {}): Identity {
  if (existsSync(path)) {
    checkKeyFileMode(path, options.allowReadable);
    let pem: string;
    try {
      pem = readFileSync(path, 'utf8');
    } catch (cause) {
      throw new InvalidOptionsError(`cannot read identity file ${path}`, { cause });
    }
    return identityFromPem(pem, path);
  }
  const identity = generateIdentity();
  try {
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    writeFileSync(path, identity.privateKey.export({ format: 'pem', type: 'pkcs8' }), {
      mode: 0o600,
      flag: 'wx',
    });
  } catch (cause) {
    throw new InvalidOptionsError(`cannot write identity file ${path}`, { cause });
  }
  return identity;
}

function identityFromPem(pem: string, where: string): Identity {
  let key: KeyObject;
  try {
    key = createPrivateKey({ key: pem, format: 'pem' });
  } catch (cause) {
    throw new InvalidOptionsError(`${where} does not hold a PEM private key`, { cause });
  }
  return fromPrivateKey(key);
}

/** Resolves the `identity` option into an {@link Identity}; generates one when absent. */
export function resolveIdentity(
  input: IdentityInput | undefined,
  options: IdentityFileOptions = {},
): Identity {
  if (input === undefined) return generateIdentity();
  if (typeof input === 'string') {
    return input.includes('-----BEGIN')
      ? identityFromPem(input, 'identity')
      : loadOrCreateIdentityFile(input, options);
  }
  if (input instanceof Uint8Array) return identityFromSeed(input);
  return fromPrivateKey(input);
}
