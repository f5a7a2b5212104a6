/**
 * HTTPS: the `tls` option, and the options it gives the server (node:https) and the client
 * (its `https.Agent`).
 *
 * The client verifies each peer's certificate against `ca` (or the system's CAs) and against the
 * address it dials, as a browser does: a peer reached at 10.0.0.5 needs that IP address in its
 * certificate's subjectAltName. With `requestCert`, the server asks each client for a
 * certificate signed by `ca` and refuses connections without one (mutual TLS); the node presents
 * its own `cert` as a client, so every node of such a network needs a certificate valid for both
 * uses (no extendedKeyUsage, or both serverAuth and clientAuth).
 *
 * @module
 */

import { readFileSync } from 'node:fs';
import { InvalidOptionsError } from '../errors.js';

/** PEM text or bytes; a string without `-----BEGIN` is read as a file path. */
export type PemInput = string | Uint8Array;

/** The `tls` option. */
export interface TlsOptions {
  /** This node's private key (PEM, or a file path). */
  readonly key: PemInput;
  /** This node's certificate chain (PEM, or a file path). */
  readonly cert: PemInput;
  /**
   * The CA certificates peers' certificates are checked against (PEM or file paths). Absent:
   * the system's CAs.
   */
  readonly ca?: PemInput | readonly PemInput[];
  /** Mutual TLS: refuse clients without a certificate signed by `ca`. @default false */
  readonly requestCert?: boolean;
}

/** {@link TlsOptions} with every PEM loaded. */
export interface ResolvedTls {
  readonly key: Buffer;
  readonly cert: Buffer;
  readonly ca: Buffer[] | undefined;
  readonly requestCert: boolean;
}

function pem(input: PemInput, what: string): Buffer {
  if (typeof input !== 'string') return Buffer.from(input);
  if (input.includes('-----BEGIN')) return Buffer.from(input);
  try {
    return readFileSync(input);
  } catch (cause) {
    throw new InvalidOptionsError(`invalid option tls.${what}: cannot read ${input}`, { cause });
  }
}

/** Loads the PEM material of the `tls` option. */
export function resolveTls(tls: TlsOptions | undefined): ResolvedTls | undefined {
  if (tls === undefined) return undefined;
  const ca = tls.ca === undefined ? undefined : ((Array.isArray(tls.ca) ? tls.ca : [tls.ca]) as PemInput[]);
  if (tls.requestCert === true && ca === undefined) {
    throw new InvalidOptionsError('invalid option tls.requestCert: mutual TLS needs tls.ca');
  }
  return {
    key: pem(tls.key, 'key'),
    cert: pem(tls.cert, 'cert'),
    ca: ca?.map((c) => pem(c, 'ca')),
    requestCert: tls.requestCert === true,
  };
}

/** The TLS part of the server's options. */
export function serverTlsOptions(tls: ResolvedTls): Record<string, unknown> {
  return {
    key: tls.key,
    cert: tls.cert,
    ...(tls.ca !== undefined ? { ca: tls.ca } : {}),
    requestCert: tls.requestCert,
    rejectUnauthorized: tls.requestCert,
    minVersion: 'TLSv1.2',
  };
}

/** The client's TLS options: verify the peer, and present this node's certificate. */
export function clientTlsOptions(tls: ResolvedTls): Record<string, unknown> {
  return {
    ...(tls.ca !== undefined ? { ca: tls.ca } : {}),
    key: tls.key,
    cert: tls.cert,
    rejectUnauthorized: true,
    minVersion: 'TLSv1.2',
  };
}
