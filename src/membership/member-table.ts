/**
 * The member table: who this node believes is in the network, indexed by id and by address.
 *
 * @module
 */

import { formatHostPort, type Peer, type PeerKind } from '../peer.js';
import {
  acquireNumber,
  columnCapacity,
  grownColumn,
  numberOf,
  releaseNumber,
} from '../store/member-numbers.js';
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
  // One slot per process-wide member number (`member-numbers.ts`): a simulation holds N nodes'
  // tables of N members each in one process (10⁸ rows at 10,000 nodes), and a row as an object
  // in an id map costs about 130 bytes where these columns cost about 40. A row is the member's
  // statement (peer, kind, record: one object shared by the rows that state the same, and by
  // every node of the process for a signed one), its state's code, incarnation, last-seen and
  // state-since times. No slot of a member this table does not hold has a statement.
  #statements: (MemberStatement | undefined)[] = [];
  #state = new Uint8Array(0);
  #incarnation = new Float64Array(0);
  #lastSeen = new Float64Array(0);
  #stateSince = new Float64Array(0);
  // The numbers of the members held, in insertion order (as a Map's keys: a record replaced in
  // place keeps its place, a new one goes last). It decides the live list's order, the address
  // heir and, through them, the probe and gossip picks.
  readonly #order = new NumberList();
  // By address: only the addresses whose holder is not simply the one record at them (two or
  // more records state it, or its one record does not hold it). Any other address's holder is
  // the one record this table holds there, found through the process-wide `addressNumbers`.
  readonly #addresses = new Map<string, AddressSlot>();
  // The live members' numbers, built on first read and then kept in step by #put and #drop
  // (rebuilt only when that cannot be done in place): read on every probe, gossip and broadcast.
  // Always the insertion order of the live members.
  #live: NumberList | undefined;
  // The others (dead and departed), in no particular order, kept in step the same way.
  #gone: NumberList | undefined;
  #liveCount = 0;
  #size = 0;
  #version = 0;

  /** The number of `id` when this table holds it. */
  #numberOf(id: string): number | undefined {
    const n = numberOf(id);
    return n !== undefined && this.#statements[n]?.peer.id === id ? n : undefined;
  }

  /** The row at `n`, as a new {@link Member}. */
  #row(n: number): Member {
    return new MemberRow(
      this.#statements[n]!,
      STATES[this.#state[n]!]!,
      this.#incarnation[n]!,
      this.#lastSeen[n]!,
      this.#stateSince[n]!,
    );
  }

  /** The statement `member` is stored with: its own row's, else `held` when that states the same. */
  #statementOf(member: Member, held: MemberStatement | undefined): MemberStatement {
    if (member instanceof MemberRow) return member.statement;
    const { peer, kind, record } = member;
    if (held !== undefined && held.peer === peer && held.kind === kind && held.record === record) return held;
    return { peer, kind, record };
  }

  #put(member: Member, statement: MemberStatement): number {
    const id = member.peer.id;
    let n = this.#numberOf(id);
    const fresh = n === undefined;
    let wasLive = false;
    if (n === undefined) {
      n = acquireNumber(id);
      if (n >= this.#state.length) this.#grow(n + 1);
      this.#order.push(n);
      this.#size++;
      addressNumbers.add(addressKey(statement.peer), n);
    } else {
      wasLive = this.#state[n]! <= LIVE_MAX;
      const oldKey = addressKey(this.#statements[n]!.peer);
      const key = addressKey(statement.peer);
      if (oldKey !== key) {
        addressNumbers.remove(oldKey, n);
        addressNumbers.add(key, n);
      }
    }
    const code = STATE_CODES[member.state];
    const isLive = code <= LIVE_MAX;
    if (wasLive) this.#liveCount--;
    if (isLive) this.#liveCount++;
    this.#statements[n] = statement;
    this.#state[n] = code;
    this.#incarnation[n] = member.incarnation;
    this.#lastSeen[n] = member.lastSeen;
    this.#stateSince[n] = member.stateSince;
    this.#version++;
    // The live list is kept in step rather than rebuilt: a partition changes the state of half
    // the members one by one, and each rebuild costs O(n). Its order stays insertion order: a
    // record replaced in place keeps its place; a new id goes last; a removal keeps the rest.
    const live = this.#live;
    if (live !== undefined) {
      if (wasLive && !isLive) {
        if (!live.remove(n)) this.#live = undefined;
      } else if (isLive && fresh) live.push(n);
      // A tombstone back in the network keeps its id's place in the table: rebuild then.
      else if (isLive && !wasLive) this.#live = undefined;
    }
    const gone = this.#gone;
    if (gone !== undefined) {
      if (!fresh && !wasLive) {
        const at = gone.indexOf(n);
        if (at < 0) this.#gone = undefined;
        else if (isLive) gone.removeAt(at);
      } else if (!isLive) gone.push(n);
    }
    return n;
  }

  #drop(n: number): void {
    const id = this.#statements[n]!.peer.id;
    if (this.#state[n]! <= LIVE_MAX) {
      this.#liveCount--;
      if (this.#live !== undefined && !this.#live.remove(n)) this.#live = undefined;
    } else if (this.#gone !== undefined && !this.#gone.remove(n)) this.#gone = undefined;
    this.#order.remove(n);
    addressNumbers.remove(addressKey(this.#statements[n]!.peer), n);
    this.#statements[n] = undefined;
    this.#size--;
    this.#version++;
    releaseNumber(id);
  }

  #grow(least: number): void {
    const capacity = columnCapacity(this.#state.length, least);
    this.#state = grownColumn(this.#state, capacity);
    this.#incarnation = grownColumn(this.#incarnation, capacity);
    this.#lastSeen = grownColumn(this.#lastSeen, capacity);
    this.#stateSince = grownColumn(this.#stateSince, capacity);
    const statements = new Array<MemberStatement | undefined>(capacity);
    for (let i = 0; i < this.#statements.length; i++) statements[i] = this.#statements[i];
    this.#statements = statements;
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
    return this.#size;
  }

  /** The member with this id (a new object on each call: a copy of its row). */
  get(id: string): Member | undefined {
    const n = this.#numberOf(id);
    return n === undefined ? undefined : this.#row(n);
  }

  /** The member reached at `address:port`. */
  getByAddress(address: string, port: number): Member | undefined {
    const id = this.#slot(formatHostPort(address, port)).holder;
    return id === undefined ? undefined : this.get(id);
  }

  /**
   * Stores `member` as it is, replacing the record with the same id. The address index keeps a
   * live holder: another member stated at the same address takes it over only once the holder
   * is no longer live (two members at one address is news about one of them that is false, or a
   * restart, which the failure detector settles).
   */
  set(member: Member): void {
    const id = member.peer.id;
    const held = this.#numberOf(id);
    const old = held === undefined ? undefined : this.#statements[held];
    const statement = this.#statementOf(member, old);
    const key = addressKey(statement.peer);
    const oldKey = old === undefined ? undefined : addressKey(old.peer);
    // The address slots as they were: the implicit ones are read from the rows.
    const at = this.#slot(key);
    const from = oldKey !== undefined && oldKey !== key ? this.#slot(oldKey) : undefined;
    this.#put(member, statement);
    if (old === undefined) at.count++;
    else if (from !== undefined) {
      from.count--;
      at.count++;
      const heir = from.holder === id;
      if (heir) from.holder = undefined;
      this.#write(oldKey!, from.holder, from.count);
      if (heir) this.#reindex(old!.peer.address, old!.peer.port);
    }
    const { address, port } = statement.peer;
    const live = isLiveState(member.state);
    let lookForHeir = false;
    if (at.holder === id) {
      // The holder left the network: a live member at the same address takes over.
      lookForHeir = !live;
    } else {
      const h = at.holder === undefined ? undefined : this.#numberOf(at.holder);
      if (h === undefined || this.#state[h]! > LIVE_MAX) {
        at.holder = id;
        lookForHeir = !live;
      }
    }
    this.#write(key, at.holder, at.count);
    if (lookForHeir) this.#reindex(address, port, id);
  }

  /** An alive member at this address (other than `except`) holds it, if there is one. */
  #reindex(address: string, port: number, except?: string): void {
    const key = formatHostPort(address, port);
    // `except` is one of the records at the address: no other there, no heir.
    if (this.#slot(key).count <= (except === undefined ? 0 : 1)) return;
    // The first in insertion order, as live().find() would give.
    const order = this.#order;
    for (let i = 0; i < order.length; i++) {
      const n = order.at(i);
      if (this.#state[n] !== ALIVE) continue;
      const p = this.#statements[n]!.peer;
      if (p.id !== except && p.address === address && p.port === port) {
        this.#hold(key, p.id);
        return;
      }
    }
  }

  /** The holder of the address `key` and how many records state it (a copy to change). */
  #slot(key: string): { holder: string | undefined; count: number } {
    const slot = this.#addresses.get(key);
    if (slot !== undefined) return { holder: slot.holder, count: slot.count };
    // Not listed: its one record holds it, or no record states it.
    for (const n of addressNumbers.at(key)) {
      const s = this.#statements[n];
      if (s !== undefined && addressKey(s.peer) === key) return { holder: s.peer.id, count: 1 };
    }
    return { holder: undefined, count: 0 };
  }

  #hold(key: string, holder: string | undefined): void {
    this.#write(key, holder, this.#slot(key).count);
  }

  #write(key: string, holder: string | undefined, count: number): void {
    // One record, holding it: implicit (its holder is always a record stating the address).
    if (count <= 0 || (count === 1 && holder !== undefined)) this.#addresses.delete(key);
    else this.#addresses.set(key, { holder, count });
  }

  /** Removes the member with this id, and returns it. */
  remove(id: string): Member | undefined {
    const n = this.#numberOf(id);
    if (n === undefined) return undefined;
    const member = this.#row(n);
    const key = addressKey(member.peer);
    const slot = this.#slot(key);
    this.#drop(n);
    slot.count--;
    const heir = slot.holder === id;
    if (heir) slot.holder = undefined;
    this.#write(key, slot.holder, slot.count);
    if (heir) this.#reindex(member.peer.address, member.peer.port);
    return member;
  }

  /** Notes that the member was heard from. */
  touch(id: string, now: number): void {
    const n = this.#numberOf(id);
    if (n !== undefined) this.#lastSeen[n] = now;
  }

  /** Empties the table (its member numbers go back to the process). */
  clear(): void {
    const order = this.#order;
    for (let i = 0; i < order.length; i++) {
      const n = order.at(i);
      const s = this.#statements[n]!;
      addressNumbers.remove(addressKey(s.peer), n);
      releaseNumber(s.peer.id);
    }
    order.clear();
    this.#statements = [];
    this.#state = new Uint8Array(0);
    this.#incarnation = new Float64Array(0);
    this.#lastSeen = new Float64Array(0);
    this.#stateSince = new Float64Array(0);
    this.#addresses.clear();
    this.#version++;
    this.#live = undefined;
    this.#gone = undefined;
    this.#liveCount = 0;
    this.#size = 0;
  }

  /** Every member, in insertion order (new objects). */
  all(): Member[] {
    const out: Member[] = [];
    const order = this.#order;
    for (let i = 0; i < order.length; i++) out.push(this.#row(order.at(i)));
    return out;
  }

  /** The dead and departed members, in insertion order (new objects). */
  tombstones(): Member[] {
    const gone = this.#numbers(false);
    const out: Member[] = [];
    for (let i = 0; i < gone.length; i++) out.push(this.#row(gone.at(i)));
    return out;
  }

  #liveList(): NumberList {
    this.#live ??= this.#numbers(true);
    return this.#live;
  }

  #goneList(): NumberList {
    this.#gone ??= this.#numbers(false);
    return this.#gone;
  }

  /** The numbers of the live members (or of the others), in insertion order. */
  #numbers(live: boolean): NumberList {
    const out = new NumberList();
    const order = this.#order;
    for (let i = 0; i < order.length; i++) {
      const n = order.at(i);
      if (this.#state[n]! <= LIVE_MAX === live) out.push(n);
    }
    return out;
  }

  /** The members that are in the network (alive or suspect), in insertion order: a new array of new objects. */
  live(): Member[] {
    const live = this.#liveList();
    const out: Member[] = [];
    for (let i = 0; i < live.length; i++) out.push(this.#row(live.at(i)));
    return out;
  }

  /** The `i`th of {@link MemberTable.live} (0 to `liveCount - 1`), without listing the rest. */
  liveAt(i: number): Member {
    return this.#row(this.#liveList().at(i));
  }

  /** The ids of the live members, in the order of {@link MemberTable.live}. */
  liveIds(): string[] {
    const live = this.#liveList();
    const out: string[] = [];
    for (let i = 0; i < live.length; i++) out.push(this.#statements[live.at(i)]!.peer.id);
    return out;
  }

  /** The dead and departed members, in no particular order: a new array of new objects. */
  gone(): Member[] {
    const gone = this.#goneList();
    const out: Member[] = [];
    for (let i = 0; i < gone.length; i++) out.push(this.#row(gone.at(i)));
    return out;
  }

  /** How many members are dead or departed. */
  get goneCount(): number {
    return this.#size - this.#liveCount;
  }

  /** The `i`th of {@link MemberTable.gone} (0 to `goneCount - 1`), without listing the rest. */
  goneAt(i: number): Member {
    return this.#row(this.#goneList().at(i));
  }
}

const STATES: readonly MemberState[] = ['alive', 'suspect', 'dead', 'left'];
const STATE_CODES: Readonly<Record<MemberState, number>> = { alive: 0, suspect: 1, dead: 2, left: 3 };
const ALIVE = 0;
/** The highest state code of a live member (alive 0, suspect 1). */
const LIVE_MAX = 1;

/** A list of member numbers in an `Int32Array`: 4 bytes each, where an array of objects costs 8. */
class NumberList {
  #items = new Int32Array(0);
  length = 0;

  at(i: number): number {
    return this.#items[i]!;
  }

  push(n: number): void {
    if (this.length === this.#items.length) {
      this.#items = grownColumn(this.#items, columnCapacity(this.length, this.length + 1));
    }
    this.#items[this.length++] = n;
  }

  indexOf(n: number): number {
    const at = this.#items.indexOf(n);
    return at < this.length ? at : -1;
  }

  removeAt(at: number): void {
    this.#items.copyWithin(at, at + 1, this.length);
    this.length--;
  }

  /** Removes `n`; false when it was not in the list. */
  remove(n: number): boolean {
    const at = this.indexOf(n);
    if (at < 0) return false;
    this.removeAt(at);
    return true;
  }

  clear(): void {
    this.#items = new Int32Array(0);
    this.length = 0;
  }
}

/**
 * For each address, the member numbers that some table of the process holds a record at it
 * for, and how many tables do: an address's one record is found through it, so that a table
 * lists only the addresses two of its records share (the usual address has one record: its
 * holder).
 */
const addressNumbers = {
  byKey: new Map<string, Map<number, number>>(),
  none: [] as readonly number[],

  at(key: string): Iterable<number> {
    return this.byKey.get(key)?.keys() ?? this.none;
  },

  add(key: string, n: number): void {
    let refs = this.byKey.get(key);
    if (refs === undefined) {
      refs = new Map();
      this.byKey.set(key, refs);
    }
    refs.set(n, (refs.get(n) ?? 0) + 1);
  },

  remove(key: string, n: number): void {
    const refs = this.byKey.get(key);
    const count = refs?.get(n);
    if (refs === undefined || count === undefined) return;
    if (count > 1) refs.set(n, count - 1);
    else {
      refs.delete(n);
      if (refs.size === 0) this.byKey.delete(key);
    }
  },
};

/** The holder of an address and how many records state it, when that is not one record, its holder. */
interface AddressSlot {
  readonly holder: string | undefined;
  readonly count: number;
}

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
