/**
 * Peers and their addresses: parsing what users type, formatting what goes on the wire.
 *
 * @module
 */

import { isIP } from 'node:net';
import { InvalidAddressError } from './errors.js';

/** What kind of node a peer is: a full tsp2p node, or a gop2p node (compat mode). */
export type PeerKind = 'tsp2p' | 'gop2p';

/**
 * A member of the network, as the API reports it.
 *
 * `id` is the node's public-key fingerprint; a gop2p peer has no key, so its `id` is
 * `'address:port'`.
 */
export interface Peer {
  /** The node's public-key fingerprint, or `'address:port'` for a gop2p peer. */
  readonly id: string;
  /** The host name or IP address the node is reached at. */
  readonly address: string;
  /** The TCP port the node listens on. */
  readonly port: number;
  /** The display name the node chose, if any. */
  readonly name?: string;
  /** The node's tags (`tags` option, `setTags()`), when it has any. */
  readonly tags?: Readonly<Record<string, string>>;
  /** The topics the node is subscribed to (`subscribe()`), when it has any. */
  readonly topics?: readonly string[];
}

/** What a peer states about itself besides where it is: its tags and topics. */
export interface PeerRecordFields {
  readonly tags?: Readonly<Record<string, string>> | undefined;
  readonly topics?: readonly string[] | undefined;
}

/** Anything that names a peer: `'host:port'`, `'http(s)://host:port'`, or an object with `address` and `port`. */
export type PeerAddressInput = string | { readonly address: string; readonly port: number };

/** A parsed network address. */
export interface HostPort {
  /** Host name or IP address, without brackets. */
  readonly host: string;
  /** TCP port, 1-65535. */
  readonly port: number;
  /** The scheme given, if any. */
  readonly scheme?: 'http' | 'https';
}

const HOSTNAME =
  /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$/;

/** Whether `host` is a syntactically valid host name or IP address. */
export function isValidHost(host: string): boolean {
  return isIP(host) !== 0 || HOSTNAME.test(host);
}

/** Whether `port` is a valid TCP port to reach a peer at (1-65535). */
export function isValidPort(port: unknown): port is number {
  return typeof port === 'number' && Number.isInteger(port) && port >= 1 && port <= 65535;
}

/**
 * Parses `'host:port'`, `'[v6]:port'`, `'http://host:port'`, `'https://host:port'`, or an
 * `{ address, port }` object.
 *
 * @throws {InvalidAddressError} `ERR_INVALID_ADDRESS` with a message naming what is wrong.
 */
export function parseAddress(input: PeerAddressInput): HostPort {
  if (typeof input === 'object' && input !== null) {
    const { address, port } = input;
    if (typeof address !== 'string' || !isValidHost(address)) {
      throw new InvalidAddressError(`invalid peer address: ${JSON.stringify(address)}`);
    }
    if (!isValidPort(port)) throw new InvalidAddressError(`invalid peer port: ${JSON.stringify(port)}`);
    return { host: address, port };
  }
  if (typeof input !== 'string') {
    throw new InvalidAddressError(`invalid address: expected 'host:port', got ${typeof input}`);
  }
  const text = input.trim();
  let scheme: 'http' | 'https' | undefined;
  let rest = text;
  const m = /^([a-zA-Z][a-zA-Z0-9+.-]*):\/\//.exec(text);
  if (m) {
    const s = m[1]!.toLowerCase();
    if (s !== 'http' && s !== 'https') {
      throw new InvalidAddressError(`invalid address '${text}': scheme must be http or https`);
    }
    scheme = s;
    rest = text.slice(m[0].length).replace(/\/+$/, '');
    if (rest.includes('/') || rest.includes('?') || rest.includes('#')) {
      throw new InvalidAddressError(`invalid address '${text}': a peer address has no path`);
    }
  }
  let host: string;
  let portText: string;
  if (rest.startsWith('[')) {
    const close = rest.indexOf(']');
    if (close < 0 || rest[close + 1] !== ':') {
      throw new InvalidAddressError(`invalid address '${text}': expected '[ipv6]:port'`);
    }
    host = rest.slice(1, close);
    portText = rest.slice(close + 2);
    if (isIP(host) !== 6) throw new InvalidAddressError(`invalid address '${text}': '${host}' is not IPv6`);
  } else {
    const colon = rest.lastIndexOf(':');
    if (colon < 0) throw new InvalidAddressError(`invalid address '${text}': expected 'host:port'`);
    host = rest.slice(0, colon);
    portText = rest.slice(colon + 1);
    if (host.includes(':')) {
      throw new InvalidAddressError(`invalid address '${text}': write IPv6 addresses as '[addr]:port'`);
    }
  }
  if (!/^\d{1,5}$/.test(portText)) {
    throw new InvalidAddressError(`invalid address '${text}': port must be a number from 1 to 65535`);
  }
  const port = Number(portText);
  if (!isValidPort(port)) {
    throw new InvalidAddressError(`invalid address '${text}': port must be a number from 1 to 65535`);
  }
  if (host === '' || !isValidHost(host)) {
    throw new InvalidAddressError(`invalid address '${text}': '${host}' is not a valid host`);
  }
  return scheme === undefined ? { host, port } : { host, port, scheme };
}

/** Formats a host and port as `'host:port'` (`'[v6]:port'` for IPv6). */
export function formatHostPort(host: string, port: number): string {
  // Only an IPv6 address holds a colon: host names and IPv4 addresses cannot.
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

/** Whether `address` is an unspecified ("any") address, such as `0.0.0.0` or `::`. */
export function isUnspecifiedAddress(address: string): boolean {
  return address === '0.0.0.0' || address === '::' || address === '::0' || address === '0:0:0:0:0:0:0:0';
}

/** Strips the IPv4-mapped IPv6 prefix from a socket's remote address (`::ffff:127.0.0.1`). */
export function normalizeRemoteAddress(address: string | undefined): string {
  if (address === undefined) return '';
  return address.startsWith('::ffff:') && isIP(address.slice(7)) === 4 ? address.slice(7) : address;
}

/** The id a gop2p peer gets, having no key: `'address:port'`. */
export function addressId(address: string, port: number): string {
  return formatHostPort(address, port);
}

/** Formats a peer as `'address:port'`, followed by ` (name)` when it has one. */
export function describePeer(peer: Pick<Peer, 'address' | 'port' | 'name'>): string {
  const hp = formatHostPort(peer.address, peer.port);
  return peer.name ? `${hp} (${peer.name})` : hp;
}

/** A peer as plain JSON (what `/members`, the event feed and `tsp2p node` print): copies, no extra keys. */
export interface PeerJson {
  id: string;
  address: string;
  port: number;
  name?: string;
  tags?: Record<string, string>;
  topics?: string[];
}

/**
 * `peer` as plain JSON: `id`, `address`, `port`, and `name`, `tags` and `topics` when it has them.
 *
 * @example
 * JSON.stringify(peerJson(node.self)); // {"id":"…","address":"127.0.0.1","port":5001,"name":"ada"}
 */
export function peerJson(peer: Peer): PeerJson {
  return {
    id: peer.id,
    address: peer.address,
    port: peer.port,
    ...(peer.name !== undefined ? { name: peer.name } : {}),
    ...(peer.tags !== undefined ? { tags: { ...peer.tags } } : {}),
    ...(peer.topics !== undefined ? { topics: [...peer.topics] } : {}),
  };
}

/** A frozen {@link Peer}; an empty `name`, empty tags and no topics count as none. */
export function peerOf(
  id: string,
  address: string,
  port: number,
  name?: string,
  fields: PeerRecordFields = {},
): Peer {
  const p: { -readonly [K in keyof Peer]: Peer[K] } = { id, address, port };
  if (name !== undefined && name !== '') p.name = name;
  if (fields.tags !== undefined && Object.keys(fields.tags).length > 0)
    p.tags = Object.freeze({ ...fields.tags });
  if (fields.topics !== undefined && fields.topics.length > 0) p.topics = Object.freeze([...fields.topics]);
  return Object.freeze(p);
}

/** Whether two peers state the same tags and topics (in the same order). */
export function sameRecordFields(a: PeerRecordFields, b: PeerRecordFields): boolean {
  const ka = a.tags === undefined ? [] : Object.keys(a.tags);
  const kb = b.tags === undefined ? [] : Object.keys(b.tags);
  if (ka.length !== kb.length || !ka.every((k) => b.tags !== undefined && b.tags[k] === a.tags![k]))
    return false;
  const ta = a.topics ?? [];
  const tb = b.topics ?? [];
  return ta.length === tb.length && ta.every((t, i) => t === tb[i]);
}

/**
 * A canonical text of a peer's tags and topics, to order two statements of them: `''` for none,
 * which sorts below any (a statement of them outranks a report that omits them).
 */
export function recordFieldsKey(f: PeerRecordFields): string {
  const tags =
    f.tags === undefined
      ? []
      : Object.keys(f.tags)
          .sort()
          .map((k) => [k, f.tags![k]]);
  const topics = f.topics ?? [];
  return tags.length === 0 && topics.length === 0 ? '' : JSON.stringify([tags, topics]);
}
