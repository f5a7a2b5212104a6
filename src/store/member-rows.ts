/**
 * The memory store's member snapshot, in columns: one row per member, found by id, with no
 * object of its own per member.
 *
 * A node saves each member's state in its store on every member event, and a simulation holds N
 * nodes in one process: N² rows (10⁸ at 10,000 nodes). A row as an object (a copy of the
 * {@link MemberRecord}, its wall-clock `lastSeen` a heap number) and its map entry cost about
 * 136 bytes; here a row is its map entry (id to row number), a pointer to the member's identity
 * (id, address, port, name and kind: one frozen object shared by every store of the process that
 * saved the same identity, as the nodes of a simulation do) and three numbers in typed arrays.
 * `all()` builds the records again, as the store hands them out (fresh objects each time).
 *
 * @module
 */

import type { PeerKind } from '../peer.js';
import type { MemberRecord, MemberState } from './store.js';

/** What a member record states about who the member is and where. */
interface Identity {
  readonly id: string;
  readonly address: string;
  readonly port: number;
  readonly name?: string;
  readonly kind: PeerKind;
}

const STATES: readonly MemberState[] = ['alive', 'suspect', 'dead', 'left'];
const STATE_CODES: Readonly<Record<MemberState, number>> = { alive: 0, suspect: 1, dead: 2, left: 3 };

/** Most identities shared across the process (a member table holds 10,000 members by default). */
const CAPACITY = 16_384;

/** The last identity saved for each id, by any store of the process. */
const identities = new Map<string, Identity>();

/** The shared identity of `m`: the one saved last for its id when it says the same, else its own. */
function identityOf(m: MemberRecord): Identity {
  const held = identities.get(m.id);
  if (
    held !== undefined &&
    held.address === m.address &&
    held.port === m.port &&
    held.name === m.name &&
    held.kind === m.kind
  ) {
    return held;
  }
  const identity: Identity = Object.freeze({
    id: m.id,
    address: m.address,
    port: m.port,
    ...(m.name !== undefined ? { name: m.name } : {}),
    kind: m.kind,
  });
  if (held !== undefined) identities.delete(m.id);
  else if (identities.size >= CAPACITY) identities.delete(identities.keys().next().value as string);
  identities.set(m.id, identity);
  return identity;
}

/** The member snapshot of one memory store. */
export class MemberRows {
  readonly #rows = new Map<string, number>();
  /** Row numbers of removed members, to use again. */
  readonly #free: number[] = [];
  #who: (Identity | undefined)[] = [];
  #state = new Uint8Array(0);
  #incarnation = new Float64Array(0);
  #lastSeen = new Float64Array(0);
  #used = 0;

  /** How many members are held. */
  get size(): number {
    return this.#rows.size;
  }

  /** Replaces or adds the member `m` (by id). */
  set(m: MemberRecord): void {
    let row = this.#rows.get(m.id);
    if (row === undefined) {
      row = this.#free.pop() ?? this.#newRow();
      this.#rows.set(m.id, row);
    }
    this.#who[row] = identityOf(m);
    this.#state[row] = STATE_CODES[m.state];
    this.#incarnation[row] = m.incarnation;
    this.#lastSeen[row] = m.lastSeen;
  }

  /** Removes the member with this id. */
  delete(id: string): void {
    const row = this.#rows.get(id);
    if (row === undefined) return;
    this.#rows.delete(id);
    this.#who[row] = undefined;
    this.#free.push(row);
  }

  /** Every member, as new records, in no particular order. */
  all(): MemberRecord[] {
    const out: MemberRecord[] = [];
    for (const row of this.#rows.values()) {
      const who = this.#who[row]!;
      out.push({
        id: who.id,
        address: who.address,
        port: who.port,
        ...(who.name !== undefined ? { name: who.name } : {}),
        kind: who.kind,
        state: STATES[this.#state[row]!]!,
        incarnation: this.#incarnation[row]!,
        lastSeen: this.#lastSeen[row]!,
      });
    }
    return out;
  }

  /** Removes every member. */
  clear(): void {
    this.#rows.clear();
    this.#free.length = 0;
    this.#who = [];
    this.#state = new Uint8Array(0);
    this.#incarnation = new Float64Array(0);
    this.#lastSeen = new Float64Array(0);
    this.#used = 0;
  }

  #newRow(): number {
    const row = this.#used++;
    if (row >= this.#state.length) {
      const capacity = Math.max(16, this.#state.length * 2);
      this.#state = grown(this.#state, new Uint8Array(capacity));
      this.#incarnation = grown(this.#incarnation, new Float64Array(capacity));
      this.#lastSeen = grown(this.#lastSeen, new Float64Array(capacity));
    }
    return row;
  }
}

function grown<T extends Uint8Array | Float64Array>(from: T, to: T): T {
  to.set(from);
  return to;
}
