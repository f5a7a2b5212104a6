/**
 * Who may use a node's local API from a browser: the rules for writes (`POST /api/...`), for
 * the private event feed (`GET /events`), and for the other reads (the page, `/members`,
 * `/metrics`) when the node has a network secret. Pure: no I/O.
 *
 * - A request carrying the node's token (`Authorization: Bearer <token>`, or `?token=` where a
 *   browser cannot set headers, as for EventSource) is allowed from anywhere.
 * - Without the token, only from this machine: the socket's peer is a loopback address (or one
 *   of this machine's own addresses), and the Host header names this node by an IP address or
 *   `localhost` (a DNS-rebinding page reaches 127.0.0.1 under its own domain name, and is refused).
 * - Every write also checks Origin. A browser sends it with every cross-origin request: a page
 *   from any other origin (another port included) is refused, so no other site can post
 *   through the node. `Sec-Fetch-Site` is checked too where present, and a write must be
 *   `application/json`, which a plain HTML form cannot send.
 *
 * @module
 */

import { timingSafeEqual } from 'node:crypto';
import { isIP } from 'node:net';
import type { InboundRequest } from '../transport/transport.js';

/** What the rules need to know about the node. */
export interface AccessContext {
  /** The token printed at start. */
  readonly token: string;
  /** Host names and addresses this node is known by, lowercase, without brackets. */
  readonly hosts: ReadonlySet<string>;
  /** Ports this node is reached at (the bound one, and the advertised one). */
  readonly ports: ReadonlySet<number>;
  /** This machine's own addresses: a connection from one of them is local. */
  readonly localAddresses: ReadonlySet<string>;
}

/** The outcome of a check: allowed, or refused with a status, a metrics reason and one line. */
export type Verdict =
  | { readonly ok: true; readonly via: 'token' | 'local' }
  | { readonly ok: false; readonly status: number; readonly reason: string; readonly message: string };

/** Whether an address is a loopback address (127.0.0.0/8 or ::1). */
export function isLoopback(address: string): boolean {
  return address === '::1' || (isIP(address) === 4 && address.startsWith('127.'));
}

/** The host part of a Host header value, lowercase, without brackets or port. */
export function hostOf(header: string | undefined): string | undefined {
  if (header === undefined || header === '') return undefined;
  const h = header.trim().toLowerCase();
  if (h.startsWith('[')) {
    const close = h.indexOf(']');
    return close < 0 ? undefined : h.slice(1, close);
  }
  const colon = h.lastIndexOf(':');
  return colon < 0 ? h : h.slice(0, colon);
}

function tokenMatches(given: string, token: string): boolean {
  const a = Buffer.from(given);
  const b = Buffer.from(token);
  return a.length === b.length && timingSafeEqual(a, b);
}

/** The token a request carries: `Authorization: Bearer`, or `token=` in its query when allowed. */
function givenToken(req: InboundRequest, fromQuery: boolean): string | undefined {
  const auth = req.headers.authorization;
  if (auth !== undefined) {
    const m = /^Bearer\s+(\S+)\s*$/i.exec(auth);
    return m ? m[1] : '';
  }
  if (fromQuery && req.query) return new URLSearchParams(req.query).get('token') ?? undefined;
  return undefined;
}

/** Whether an Origin is one of this node's own origins, as reached from this machine. */
function isOwnOrigin(origin: string, ctx: AccessContext): boolean {
  let url: URL;
  try {
    url = new URL(origin);
  } catch {
    return false;
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return false;
  const host = url.hostname.replace(/^\[|\]$/g, '').toLowerCase();
  const port = url.port === '' ? (url.protocol === 'https:' ? 443 : 80) : Number(url.port);
  return ctx.hosts.has(host) && ctx.ports.has(port) && url.origin === origin.toLowerCase();
}

/** Who is asking: the token holder, this machine, or nobody allowed. */
function caller(req: InboundRequest, ctx: AccessContext, tokenFromQuery: boolean): Verdict {
  const given = givenToken(req, tokenFromQuery);
  if (given !== undefined) {
    if (tokenMatches(given, ctx.token)) return { ok: true, via: 'token' };
    return { ok: false, status: 401, reason: 'bad_token', message: 'wrong token' };
  }
  const local = isLoopback(req.remoteAddress) || ctx.localAddresses.has(req.remoteAddress);
  if (!local) {
    return {
      ok: false,
      status: 403,
      reason: 'remote_without_token',
      message: 'only this machine may do this without the token printed at start',
    };
  }
  const host = hostOf(req.headers.host);
  // An IP literal or a name this node knows: a rebound DNS name is neither.
  if (host === undefined || !(ctx.hosts.has(host) || isIP(host) !== 0)) {
    return {
      ok: false,
      status: 403,
      reason: 'unknown_host',
      message: `Host ${JSON.stringify(req.headers.host ?? '')} is not this node: use its address or the token`,
    };
  }
  return { ok: true, via: 'local' };
}

/**
 * Checks a private read: the event feed always, and the page, `/members` and `/metrics` when the
 * node has a network secret. The token may come in the query (`?token=`), where a browser cannot
 * set headers (EventSource, opening the page).
 */
export function checkRead(req: InboundRequest, ctx: AccessContext): Verdict {
  const who = caller(req, ctx, true);
  if (!who.ok) return who;
  const origin = req.headers.origin;
  if (origin !== undefined && !sameOrigin(origin, req, ctx, who.via)) return crossOrigin(origin);
  return who;
}

/** Checks a read of the private event feed: {@link checkRead}. */
export function checkFeed(req: InboundRequest, ctx: AccessContext): Verdict {
  return checkRead(req, ctx);
}

/** Checks a write through the local API. */
export function checkWrite(req: InboundRequest, ctx: AccessContext): Verdict {
  const who = caller(req, ctx, false);
  if (!who.ok) return who;
  const origin = req.headers.origin;
  if (origin !== undefined && !sameOrigin(origin, req, ctx, who.via)) return crossOrigin(origin);
  const site = req.headers['sec-fetch-site'];
  if (site !== undefined && site !== 'same-origin' && site !== 'none') {
    return {
      ok: false,
      status: 403,
      reason: 'cross_origin',
      message: `cross-origin write refused (Sec-Fetch-Site: ${site})`,
    };
  }
  const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
  if (type !== 'application/json') {
    return {
      ok: false,
      status: 415,
      reason: 'not_json',
      message: 'a write must be a JSON body with Content-Type: application/json',
    };
  }
  return who;
}

/**
 * Whether `origin` is the node's own. For the token holder, the origin the request was sent to
 * (its Host header) counts too: a page opened through any name of the node may write with it.
 */
function sameOrigin(
  origin: string,
  req: InboundRequest,
  ctx: AccessContext,
  via: 'token' | 'local',
): boolean {
  if (isOwnOrigin(origin, ctx)) return true;
  if (via !== 'token' || req.headers.host === undefined) return false;
  const lower = origin.toLowerCase();
  const host = req.headers.host.toLowerCase();
  return lower === `http://${host}` || lower === `https://${host}`;
}

function crossOrigin(origin: string): Verdict {
  return {
    ok: false,
    status: 403,
    reason: 'cross_origin',
    message: `cross-origin request refused: Origin ${JSON.stringify(origin).slice(0, 200)} is not this node`,
  };
}
