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

/** The message of an error, on one line, in the CLI's terms (flags, not library options). */
export function errorMessage(err: unknown): string {
  if (err instanceof ConnectFailedError && err.reason === 'gop2p-compat-required') {
    return 'it is a gop2p node: restart with --gop2p to join it';
  }
  const message = err instanceof Error ? err.message : String(err);
  return safeText(message.split('\n')[0] ?? message);
}

/** The code of an error (`ERR_...`), or `ERR_UNEXPECTED` when it has none. */
export function errorCode(err: unknown): string {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : 'ERR_UNEXPECTED';
}

/** What a system error code means for someone joining, in a few words. */
const JOIN_CAUSES: Readonly<Record<string, string>> = {
  ECONNREFUSED: 'nothing is listening there (connection refused)',
  ECONNRESET: 'the connection was reset',
  ETIMEDOUT: 'no answer in time',
  UND_ERR_CONNECT_TIMEOUT: 'no answer in time',
  UND_ERR_HEADERS_TIMEOUT: 'no answer in time',
  ERR_TIMEOUT: 'no answer in time',
  ENOTFOUND: 'no such host',
  EAI_AGAIN: 'the host name cannot be resolved now',
  EHOSTUNREACH: 'the host cannot be reached',
  ENETUNREACH: 'the network cannot be reached',
  EADDRNOTAVAIL: 'that address cannot be reached from here',
  UND_ERR_SOCKET: 'the connection closed before an answer',
};

/**
 * Why a join through `entry` failed, as one clause: `cannot join through H:P: <reason>`. The
 * reason is the innermost cause in a few words (a refused connection, a timeout), or the
 * answer of a node that refused.
 */
export function joinFailure(err: unknown, entry: string): string {
  if (errorCode(err) !== 'ERR_CONNECT_FAILED') return errorMessage(err);
  let reason: string | undefined;
  let innermost: unknown = err;
  let cause: unknown = err;
  for (let depth = 0; cause !== undefined && cause !== null && depth < 8; depth++) {
    const { code, status, body } = cause as { code?: unknown; status?: unknown; body?: unknown };
    if (typeof status === 'number' && typeof body === 'string')
      reason ??= `it answered ${status} ${body}`.trim();
    if (typeof code === 'string' && JOIN_CAUSES[code] !== undefined) reason ??= JOIN_CAUSES[code];
    innermost = cause;
    cause = (cause as { cause?: unknown }).cause;
  }
  if (reason === undefined) {
    // The innermost message, without the "cannot reach X:" or "X refused ...:" it starts with.
    let m = errorMessage(innermost);
    for (let prev = ''; prev !== m; ) {
      prev = m;
      m = m.replace(/^cannot (?:connect to|reach) \S+: /, '');
    }
    const refused = /^\S+ refused (?:the request|to connect): (.*)$/.exec(m);
    reason = refused ? `it answered ${refused[1]}` : m;
  }
  return `cannot join through ${entry}: ${reason}`;
}
