/**
 * Resolving what a caller names: a recipient to a live member, a payload to its bytes within
 * the size limit, and an address to whether it is this very node; and the members and the
 * messages sent as a caller reads them.
 *
 * @module
 */

import {
  InvalidAddressError,
  InvalidMessageError,
  MessageTooLargeError,
  UnknownPeerError,
} from '../errors.js';
import type { Member } from '../membership/member-table.js';
import { isLive } from '../membership/merge.js';
import {
  formatHostPort,
  isUnspecifiedAddress,
  type Peer,
  type PeerAddressInput,
  parseAddress,
} from '../peer.js';
import type { DeliveryReport, MemberInfo, Payload, SentMessage, Target } from '../types.js';

const utf8Encoder = new TextEncoder();

/** Where members are looked up. */
export interface MemberLookup {
  get(id: string): Member | undefined;
  getByAddress(host: string, port: number): Member | undefined;
}

/**
 * The live member a target names: by id (a {@link Peer}, or a string without `:`), else by
 * address.
 *
 * @throws {InvalidAddressError} `ERR_INVALID_ADDRESS` for a malformed target
 * @throws {UnknownPeerError} `ERR_UNKNOWN_PEER` when no live member answers to it
 */
export function resolveMember(members: MemberLookup, t: Target): Member {
  if (typeof t === 'object' && t !== null && 'id' in t && typeof t.id === 'string') {
    const byId = members.get(t.id);
    if (byId !== undefined && isLive(byId.state)) return byId;
  }
  if (typeof t === 'string' && !t.includes(':')) {
    const byId = members.get(t);
    if (byId !== undefined && isLive(byId.state)) return byId;
  }
  const { host, port } = parseAddress(t as PeerAddressInput);
  const member = members.getByAddress(host, port);
  if (member === undefined || !isLive(member.state)) {
    throw new UnknownPeerError(`${formatHostPort(host, port)} is not a member`);
  }
  return member;
}

/**
 * The live members one target or a list of them names, each once.
 *
 * @throws {InvalidAddressError} `ERR_INVALID_ADDRESS` for an empty list or a malformed target
 * @throws {UnknownPeerError} `ERR_UNKNOWN_PEER` when a target is not a member
 */
export function resolveMembers(members: MemberLookup, to: Target | readonly Target[]): Member[] {
  const list = Array.isArray(to) ? (to as readonly Target[]) : [to as Target];
  if (list.length === 0) throw new InvalidAddressError('send() needs at least one recipient');
  const found = new Map<string, Member>();
  for (const t of list) {
    const m = resolveMember(members, t);
    found.set(m.peer.id, m);
  }
  return [...found.values()];
}

/**
 * A payload's bytes: a string as UTF-8.
 *
 * @throws {InvalidMessageError} `ERR_INVALID_MESSAGE` for anything but a string or bytes
 * @throws {MessageTooLargeError} `ERR_MESSAGE_TOO_LARGE` above `maxBytes`
 */
export function payloadBytes(data: Payload, maxBytes: number): Uint8Array {
  let bytes: Uint8Array;
  if (typeof data === 'string') bytes = utf8Encoder.encode(data);
  else if (data instanceof Uint8Array) bytes = data;
  else throw new InvalidMessageError(`a message must be a string or a Uint8Array, got ${typeof data}`);
  if (bytes.length > maxBytes) {
    throw new MessageTooLargeError(
      `message is ${bytes.length} bytes: the limit (maxMessageBytes) is ${maxBytes}`,
    );
  }
  return bytes;
}

/**
 * Whether `host:port` reaches the node at `self`, which listens on `listenHost`: its own
 * address, or a loopback name of this machine when it listens there.
 */
export function isSelfAddress(
  self: Peer | undefined,
  listenHost: string,
  host: string,
  port: number,
): boolean {
  if (self === undefined || port !== self.port) return false;
  if (host === self.address) return true;
  const local = host === 'localhost' || host === '127.0.0.1' || host === '::1';
  const selfLocal =
    self.address === '127.0.0.1' ||
    self.address === 'localhost' ||
    self.address === '::1' ||
    isUnspecifiedAddress(listenHost);
  return local && selfLocal;
}

/** Members as `Node.memberStates()` reports them, at clock time `now`. */
export function memberInfos(members: readonly Member[], now: number): MemberInfo[] {
  return members.map((m) => ({
    peer: m.peer,
    kind: m.kind,
    state: m.state,
    incarnation: m.incarnation,
    lastSeenMsAgo: Math.max(0, Math.round(now - m.lastSeen)),
  }));
}

/** A message this node sent, as the `message:sent` event reports it: to nobody in particular is a broadcast. */
export function sentMessage(
  report: DeliveryReport,
  origin: SentMessage['origin'],
  to: Peer[],
  data: Payload,
  topic?: string,
): SentMessage {
  // Encoded or decoded on first read only: most listeners want the report, not the payload.
  let bytes = typeof data === 'string' ? undefined : data;
  let text = typeof data === 'string' ? data : undefined;
  const type = to.length === 0 ? 'broadcast' : 'direct';
  return {
    id: report.id,
    type,
    to,
    get data(): Uint8Array {
      bytes ??= utf8Encoder.encode(text ?? '');
      return bytes;
    },
    get text(): string {
      text ??=
        bytes === undefined
          ? ''
          : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8');
      return text;
    },
    origin,
    report,
    ...(topic !== undefined ? { topic } : {}),
  };
}
