/**
 * Output formatting for the command line: colours (picocolors, off for NO_COLOR and non-TTY
 * output), safe text for terminals, and the one-line descriptions of peers.
 *
 * @module
 */

import pc from 'picocolors';
import { ConnectFailedError, formatHostPort, type Peer } from '../index.js';

/** The colour functions the CLI uses; identity functions when colour is off. */
export type Colors = ReturnType<typeof pc.createColors>;

/** The environment variables that decide colour. */
export interface ColorEnv {
  readonly NO_COLOR?: string | undefined;
  readonly FORCE_COLOR?: string | undefined;
  readonly TERM?: string | undefined;
}

/**
 * Whether to colour output written to `stream`: never when `NO_COLOR` is set and non-empty
 * (https://no-color.org), always when `FORCE_COLOR` is set (and not `0`), otherwise only on
 * a terminal that is not `TERM=dumb`.
 */
export function useColor(stream: { isTTY?: boolean }, env: ColorEnv): boolean {
  if (env.NO_COLOR !== undefined && env.NO_COLOR !== '') return false;
  if (env.FORCE_COLOR !== undefined && env.FORCE_COLOR !== '') return env.FORCE_COLOR !== '0';
  return stream.isTTY === true && env.TERM !== 'dumb';
}

/** The colour functions for `enabled`. */
export function colors(enabled: boolean): Colors {
  return pc.createColors(enabled);
}

// C0 and C1 controls, DEL, and the bidirectional overrides that could disguise text.
// biome-ignore lint/suspicious/noControlCharactersInRegex: these are exactly what must be escaped
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/g;

/**
 * Makes text from the network safe to print on one terminal line: control characters and
 * escape sequences are shown as `\n`, `\t`, `\u001b` and so on, so that a peer can neither
 * break the line nor drive the terminal.
 */
export function safeText(text: string): string {
  return text.replace(UNSAFE, (ch) => {
    if (ch === '\n') return '\\n';
    if (ch === '\r') return '\\r';
    if (ch === '\t') return '\\t';
    return `\\u${ch.charCodeAt(0).toString(16).padStart(4, '0')}`;
  });
}

/** `address:port`, as typed to reach the peer. */
export function addressOf(peer: Pick<Peer, 'address' | 'port'>): string {
  return formatHostPort(peer.address, peer.port);
}

/** `address:port (name)`, coloured, with the name made safe. */
export function who(peer: Pick<Peer, 'address' | 'port' | 'name'>, c: Colors): string {
  const hp = c.cyan(addressOf(peer));
  return peer.name ? `${hp} ${c.bold(`(${safeText(peer.name)})`)}` : hp;
}

/** A peer as plain JSON: `{ id, address, port, name? }`. */
export function peerJson(peer: Peer): { id: string; address: string; port: number; name?: string } {
  return peer.name === undefined
    ? { id: peer.id, address: peer.address, port: peer.port }
    : { id: peer.id, address: peer.address, port: peer.port, name: peer.name };
}

/** The message of an error, on one line, in the CLI's terms (flags, not library options). */
export function errorMessage(err: unknown): string {
  if (err instanceof ConnectFailedError && err.reason === 'gop2p-compat-required') {
    return 'the entry point is a gop2p node: restart with --gop2p to join it';
  }
  const message = err instanceof Error ? err.message : String(err);
  return safeText(message.split('\n')[0] ?? message);
}

/** The code of an error (`ERR_...`), or `ERR_UNEXPECTED` when it has none. */
export function errorCode(err: unknown): string {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : 'ERR_UNEXPECTED';
}
