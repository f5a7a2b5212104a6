/**
 * The one pair of converters between a {@link Peer} and its form on the wire ({@link WirePeer}).
 *
 * A gop2p peer has no key, so no id on the wire: its id is `'address:port'` ({@link addressId}).
 *
 * @module
 */

import { addressId, type Peer, type PeerKind, peerOf } from '../peer.js';
import type { WirePeer } from './schema.js';

/** What a member adds to a peer on the wire: its kind and incarnation (a `Member` fits). */
export interface WirePeerExtra {
  /** `'gop2p'` leaves the id out; absent, the id is left out when it is the address. */
  readonly kind?: PeerKind;
  /** Carried as `inc`. */
  readonly incarnation?: number;
  /** Carry the peer's tags and topics too (a member list's entries; not `to` or `origin`). */
  readonly withRecord?: boolean;
}

/** A peer as the wire carries it: address, port, id (tsp2p only), name, and `inc` when given. */
export function toWirePeer(peer: Peer, extra: WirePeerExtra = {}): WirePeer {
  const wire: WirePeer = { address: peer.address, port: peer.port };
  if (extra.incarnation !== undefined) wire.inc = extra.incarnation;
  const tsp2p =
    extra.kind === undefined ? peer.id !== addressId(peer.address, peer.port) : extra.kind === 'tsp2p';
  if (tsp2p) wire.id = peer.id;
  if (peer.name !== undefined) wire.name = peer.name;
  if (extra.withRecord === true && peer.tags !== undefined) wire.tags = { ...peer.tags };
  if (extra.withRecord === true && peer.topics !== undefined) wire.topics = [...peer.topics];
  return wire;
}

/**
 * A wire peer as a {@link Peer}: its id, or `'address:port'` for a gop2p peer; an empty name is
 * no name.
 *
 * @param address - where the peer is reached, when not its own `address` (a gop2p peer that names
 *   itself `0.0.0.0` is reached where its request came from)
 */
export function fromWirePeer(wire: WirePeer, address: string = wire.address): Peer {
  return peerOf(wire.id ?? addressId(address, wire.port), address, wire.port, wire.name, wire);
}
