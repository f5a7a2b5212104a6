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

/**
 * Who a member is, as one statement of it says: its peer, kind and record. One object for the
 * rows of a member that state the same (its state changes keep it), and for a signed statement
 * one object for every node of the process (`shared-records.ts`).
 */
export interface MemberStatement {
  readonly peer: Peer;
  readonly kind: PeerKind;
  readonly record: MemberRecord | undefined;
}

/**
 * A {@link Member} as the member table keeps it: its statement in one field rather than three
 * (a simulation holds N² rows: 16 bytes each). Read-only but for `lastSeen`, like any row.
 */
class MemberRow implements Member {
  readonly statement: MemberStatement;
  state: MemberState;
  incarnation: number;
  lastSeen: number;
  stateSince: number;

  constructor(
    statement: MemberStatement,
    state: MemberState,
    incarnation: number,
    lastSeen: number,
    stateSince: number,
  ) {
    this.statement = statement;
    this.state = state;
    this.incarnation = incarnation;
    this.lastSeen = lastSeen;
    this.stateSince = stateSince;
  }

  get peer(): Peer {
    return this.statement.peer;
  }

  get kind(): PeerKind {
    return this.statement.kind;
  }

  get record(): MemberRecord | undefined {
    return this.statement.record;
  }
}

/** The fields of a new {@link Member} row. */
export interface MemberFields {
  readonly peer: Peer;
  readonly kind: PeerKind;
  readonly state: MemberState;
  readonly incarnation: number;
  readonly lastSeen: number;
  readonly stateSince: number;
  readonly record?: MemberRecord | undefined;
}

/**
 * A new member row with these fields. Its statement (`peer`, `kind`, `record`) is `shared`'s
 * when that states the same, else `prev`'s when that does (the row it replaces), else its own.
 */
export function memberRow(fields: MemberFields, prev?: Member, shared?: MemberStatement): Member {
  const { peer, kind } = fields;
  const record = fields.record;
  const same = (s: MemberStatement | undefined): s is MemberStatement =>
    s !== undefined && s.peer === peer && s.kind === kind && s.record === record;
  let statement: MemberStatement;
  if (same(shared)) statement = shared;
  else if (prev instanceof MemberRow && same(prev.statement)) statement = prev.statement;
  else statement = { peer, kind, record };
  return new MemberRow(statement, fields.state, fields.incarnation, fields.lastSeen, fields.stateSince);
}

/** The member table. Self is never in it. */
export class MemberTable {
  readonly #byId = new Map<string, Member>();
  // By address: the id of the member holding it and how many records (live or not) state it.
  // Nearly always one record, its holder: then the id alone, one map entry per member (an
  // address left by its holder has no heir to look for, and each look is a scan of the table).
  readonly #byAddress = new Map<string, AddressSlot>();
  // The live members, built on first read and then kept in step by #put and #drop (rebuilt only
  // when that cannot be done in place): read on every probe, gossip and broadcast.
  #live: readonly Member[] | undefined;
  // The others (dead and departed), in no particular order, kept in step the same way.
  #gone: readonly Member[] | undefined;
  #liveCount = 0;
  #version = 0;

  #put(member: Member): void {
    const old = this.#byId.get(member.peer.id);
    const wasLive = old !== undefined && isLiveState(old.state);
    const isLive = isLiveState(member.state);
    if (wasLive) this.#liveCount--;
    if (isLive) this.#liveCount++;
    this.#byId.set(member.peer.id, member);
    this.#version++;
    // The cached live list is kept in step rather than rebuilt: a partition changes the state of
    // half the members one by one, and each rebuild costs O(n). Its order stays insertion order:
    // a record replaced in place keeps its place; a new id goes last; a removal keeps the rest.
    const live = this.#live;
    if (live !== undefined) {
      if (wasLive && isLive) this.#replaceLive(old, member);
      else if (wasLive) this.#removeLive(old);
      else if (isLive && old === undefined) (live as Member[]).push(member);
      // A tombstone back in the network keeps its id's place in the table: rebuild then.
      else if (isLive) this.#live = undefined;
    }
    const gone = this.#gone as Member[] | undefined;
    if (gone !== undefined) {
      if (old !== undefined && !wasLive) {
        const at = gone.indexOf(old);
        if (at < 0) this.#gone = undefined;
        else if (isLive) gone.splice(at, 1);
        else gone[at] = member;
      } else if (!isLive) gone.push(member);
    }
  }

  #drop(id: string): void {
    const old = this.#byId.get(id);
    if (old === undefined) return;
    if (isLiveState(old.state)) {
      this.#liveCount--;
      this.#removeLive(old);
    } else if (this.#gone !== undefined) {
      const at = this.#gone.indexOf(old);
      if (at >= 0) (this.#gone as Member[]).splice(at, 1);
      else this.#gone = undefined;
    }
    this.#byId.delete(id);
    this.#version++;
  }

  #replaceLive(old: Member, member: Member): void {
    const live = this.#live as Member[] | undefined;
    const at = live?.indexOf(old) ?? -1;
    if (at >= 0) live![at] = member;
    else this.#live = undefined;
  }

  #removeLive(old: Member): void {
    const live = this.#live as Member[] | undefined;
    const at = live?.indexOf(old) ?? -1;
    if (at >= 0) live!.splice(at, 1);
    else this.#live = undefined;
  }

  /** How many members are alive or suspect. */
  get liveCount(): number {
    return this.#liveCount;
  }

  /** Changes with every record set or removed (what was computed from the table is still true while it holds). */
  get version(): number {
    return this.#version;
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
    const id = this.#holder(formatHostPort(address, port));
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
    const key = addressKey(member.peer);
    if (old === undefined) this.#count(key, 1);
    else {
      const oldKey = addressKey(old.peer);
      if (oldKey !== key) {
        this.#count(oldKey, -1);
        this.#count(key, 1);
      }
      if (oldKey !== key && this.#holder(oldKey) === id) {
        this.#hold(oldKey, undefined);
        this.#reindex(old.peer.address, old.peer.port);
      }
    }
    const holderId = this.#holder(key);
    const holder = holderId === undefined ? undefined : this.#byId.get(holderId);
    if (holderId === id) {
      // The holder left the network: a live member at the same address takes over.
      if (!isLiveState(member.state)) this.#reindex(member.peer.address, member.peer.port, id);
    } else if (holder === undefined || !isLiveState(holder.state)) {
      this.#hold(key, id);
      if (!isLiveState(member.state)) this.#reindex(member.peer.address, member.peer.port, id);
    }
  }

  /** An alive member at this address (other than `except`) holds it, if there is one. */
  #reindex(address: string, port: number, except?: string): void {
    // `except` is one of the records at the address: no other there, no heir.
    if (this.#recordsAt(formatHostPort(address, port)) <= (except === undefined ? 0 : 1)) return;
    // The first in insertion order, as live().find() would give, without rebuilding the live
    // list (each set() drops it, and a partition sets hundreds of members dead in a row).
    for (const m of this.#byId.values()) {
      if (m.state === 'alive' && m.peer.id !== except && m.peer.address === address && m.peer.port === port) {
        this.#hold(formatHostPort(address, port), m.peer.id);
        return;
      }
    }
  }

  /** The id of the member holding the address `key`. */
  #holder(key: string): string | undefined {
    const slot = this.#byAddress.get(key);
    return typeof slot === 'string' ? slot : slot?.holder;
  }

  /** How many records state the address `key`. */
  #recordsAt(key: string): number {
    const slot = this.#byAddress.get(key);
    return typeof slot === 'string' ? 1 : (slot?.count ?? 0);
  }

  #count(key: string, by: 1 | -1): void {
    this.#write(key, this.#holder(key), this.#recordsAt(key) + by);
  }

  #hold(key: string, holder: string | undefined): void {
    this.#write(key, holder, this.#recordsAt(key));
  }

  #write(key: string, holder: string | undefined, count: number): void {
    if (count <= 0) this.#byAddress.delete(key);
    else if (count === 1 && holder !== undefined) this.#byAddress.set(key, holder);
    else this.#byAddress.set(key, { holder, count });
  }

  /** Removes the member with this id, and returns it. */
  remove(id: string): Member | undefined {
    const member = this.#byId.get(id);
    if (member === undefined) return undefined;
    this.#drop(id);
    const key = addressKey(member.peer);
    this.#count(key, -1);
    if (this.#holder(key) === id) {
      this.#hold(key, undefined);
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
    this.#version++;
    this.#live = undefined;
    this.#gone = undefined;
    this.#liveCount = 0;
  }

  /** Every member, in insertion order. */
  all(): Member[] {
    return [...this.#byId.values()];
  }

  /**
   * The members that are in the network (alive or suspect). The array must not be changed, and it
   * follows the table's later changes: copy it to keep it across one.
   */
  live(): readonly Member[] {
    this.#live ??= this.all().filter((m) => isLiveState(m.state));
    return this.#live;
  }

  /**
   * The dead and departed members, in no particular order. The array must not be changed, and it
   * follows the table's later changes.
   */
  gone(): readonly Member[] {
    this.#gone ??= this.all().filter((m) => !isLiveState(m.state));
    return this.#gone;
  }
}

/** The holder of an address and how many records state it, when that is not one record, its holder. */
type AddressSlot = string | { readonly holder: string | undefined; readonly count: number };

// `address:port` of each peer, made once per Peer object: peers are frozen, and the nodes of a
// simulation share them (shared-records.ts), so each key string is made once per process.
const addressKeys = new WeakMap<Peer, string>();

function addressKey(peer: Peer): string {
  let key = addressKeys.get(peer);
  if (key === undefined) {
    key = formatHostPort(peer.address, peer.port);
    addressKeys.set(peer, key);
  }
  return key;
}

function isLiveState(state: MemberState): boolean {
  return state === 'alive' || state === 'suspect';
}

/** Where requests to a member go: its address, port and kind. */
export function destinationOf(m: Member): Destination {
  return { address: m.peer.address, port: m.peer.port, kind: m.kind };
}
