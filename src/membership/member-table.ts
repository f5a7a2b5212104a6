/**
 * The member table: who this node believes is in the network, indexed by id and by address.
 *
 * @module
 */

import { formatHostPort, type Peer, type PeerKind } from '../peer.js';
import type { Destination } from '../transport/peer-client.js';

export type { PeerKind } from '../peer.js';

/**
 * A member's state. `alive` and `suspect` members are in the network; `dead` (declared failed)
 * and `left` (graceful leave) are kept only as tombstones by the failure detector.
 */
export type MemberState = 'alive' | 'suspect' | 'dead' | 'left';

/** The identity fields of a member as the member last stated them, and how. */
export interface MemberRecord {
  /** The incarnation the member stated them at. */
  readonly inc: number;
  /** The member's key and signature of them, when it signed them (they can then be passed on). */
  readonly key?: string;
  readonly sig?: string;
  readonly tags?: Record<string, string>;
  readonly topics?: string[];
}

/** One row of the member table. */
export interface Member {
  readonly peer: Peer;
  readonly kind: PeerKind;
  state: MemberState;
  /** Raised by the member itself to refute a suspicion or to rejoin. */
  incarnation: number;
  /** When this node last heard from the member (clock ms). */
  lastSeen: number;
  /** When the member entered its current state (clock ms). */
  stateSince: number;
  /**
   * The member's own statement of its identity fields (`peer`'s address, port and name, and its
   * tags and topics), signed when it can be passed on. `undefined` for gop2p members.
   */
  readonly record?: MemberRecord | undefined;
}

/** The member table. Self is never in it. */
export class MemberTable {
  readonly #byId = new Map<string, Member>();
  readonly #byAddress = new Map<string, string>();
  // The live members, rebuilt lazily after a change: read on every probe, gossip and broadcast.
  #live: readonly Member[] | undefined;
  #liveCount = 0;

  #put(member: Member): void {
    const old = this.#byId.get(member.peer.id);
    if (old !== undefined && isLiveState(old.state)) this.#liveCount--;
    if (isLiveState(member.state)) this.#liveCount++;
    this.#byId.set(member.peer.id, member);
    this.#live = undefined;
  }

  #drop(id: string): void {
    const old = this.#byId.get(id);
    if (old === undefined) return;
    if (isLiveState(old.state)) this.#liveCount--;
    this.#byId.delete(id);
    this.#live = undefined;
  }

  /** How many members are alive or suspect. */
  get liveCount(): number {
    return this.#liveCount;
  }

  /** How many members are in the table. */
  get size(): number {
    return this.#byId.size;
  }

  /** The member with this id. */
  get(id: string): Member | undefined {
    return this.#byId.get(id);
  }

  /** The member reached at `address:port`. */
  getByAddress(address: string, port: number): Member | undefined {
    const id = this.#byAddress.get(formatHostPort(address, port));
    return id === undefined ? undefined : this.#byId.get(id);
  }

  /**
   * Stores `member` as it is, replacing the record with the same id. The address index keeps a
   * live holder: another member stated at the same address takes it over only once the holder
   * is no longer live (two members at one address is news about one of them that is false, or a
   * restart, which the failure detector settles).
   */
  set(member: Member): void {
    const id = member.peer.id;
    const old = this.#byId.get(id);
    this.#put(member);
    const key = formatHostPort(member.peer.address, member.peer.port);
    if (old !== undefined) {
      const oldKey = formatHostPort(old.peer.address, old.peer.port);
      if (oldKey !== key && this.#byAddress.get(oldKey) === id) {
        this.#byAddress.delete(oldKey);
        this.#reindex(old.peer.address, old.peer.port);
      }
    }
    const holderId = this.#byAddress.get(key);
    const holder = holderId === undefined ? undefined : this.#byId.get(holderId);
    if (holderId === id) {
      // The holder left the network: a live member at the same address takes over.
      if (!isLiveState(member.state)) this.#reindex(member.peer.address, member.peer.port, id);
    } else if (holder === undefined || !isLiveState(holder.state)) {
      this.#byAddress.set(key, id);
      if (!isLiveState(member.state)) this.#reindex(member.peer.address, member.peer.port, id);
    }
  }

  /** An alive member at this address (other than `except`) holds it, if there is one. */
  #reindex(address: string, port: number, except?: string): void {
    // The first in insertion order, as live().find() would give, without rebuilding the live
    // list (each set() drops it, and a partition sets hundreds of members dead in a row).
    for (const m of this.#byId.values()) {
      if (m.state === 'alive' && m.peer.id !== except && m.peer.address === address && m.peer.port === port) {
        this.#byAddress.set(formatHostPort(address, port), m.peer.id);
        return;
      }
    }
  }

  /** Removes the member with this id, and returns it. */
  remove(id: string): Member | undefined {
    const member = this.#byId.get(id);
    if (member === undefined) return undefined;
    this.#drop(id);
    const key = formatHostPort(member.peer.address, member.peer.port);
    if (this.#byAddress.get(key) === id) {
      this.#byAddress.delete(key);
      this.#reindex(member.peer.address, member.peer.port);
    }
    return member;
  }

  /** Notes that the member was heard from. */
  touch(id: string, now: number): void {
    const m = this.#byId.get(id);
    if (m) m.lastSeen = now;
  }

  /** Empties the table. */
  clear(): void {
    this.#byId.clear();
    this.#byAddress.clear();
    this.#live = undefined;
    this.#liveCount = 0;
  }

  /** Every member, in insertion order. */
  all(): Member[] {
    return [...this.#byId.values()];
  }

  /** The members that are in the network (alive or suspect). The array must not be changed. */
  live(): readonly Member[] {
    this.#live ??= this.all().filter((m) => isLiveState(m.state));
    return this.#live;
  }
}

function isLiveState(state: MemberState): boolean {
  return state === 'alive' || state === 'suspect';
}

/** Where requests to a member go: its address, port and kind. */
export function destinationOf(m: Member): Destination {
  return { address: m.peer.address, port: m.peer.port, kind: m.kind };
}
