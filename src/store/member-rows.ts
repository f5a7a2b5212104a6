/**
 * The memory store's member snapshot, in columns: one row per member, found by id, with no
 * object of its own per member.
 *
 * A node saves each member's state in its store on every member event, and a simulation holds N
 * nodes in one process: N² rows (10⁸ at 10,000 nodes). A row as an object (a copy of the
 * {@link MemberRecord}, its wall-clock `lastSeen` a heap number) and its map entry cost about
 * 136 bytes; here a row is a pointer to the member's identity (id, address, port, name and kind:
 * one frozen object shared by every store of the process that saved the same identity, as the
 * nodes of a simulation do) and three numbers in typed arrays, all at the member's number, which
 * the stores of the process share (`member-numbers.ts`: one map for the process, not one per store). A store that is
 * never closed keeps its members' numbers taken.
 * `all()` builds the records again, as the store hands them out (fresh objects each time).
 *
 * @module
 */

import type { PeerKind } from '../peer.js';
import { acquireNumber, columnCapacity, grownColumn, numberOf, releaseNumber } from './member-numbers.js';
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
  /** By member number: the member's identity, undefined when this store does not hold it. */
  #who: (Identity | undefined)[] = [];
  #state = new Uint8Array(0);
  #incarnation = new Float64Array(0);
  #lastSeen = new Float64Array(0);
  #size = 0;

  /** How many members are held. */
  get size(): number {
    return this.#size;
  }

  /** Replaces or adds the member `m` (by id). */
  set(m: MemberRecord): void {
    let n = numberOf(m.id);
    if (n === undefined || this.#who[n] === undefined) {
      n = acquireNumber(m.id);
      this.#size++;
      if (n >= this.#state.length) this.#grow(n + 1);
    }
    this.#who[n] = identityOf(m);
    this.#state[n] = STATE_CODES[m.state];
    this.#incarnation[n] = m.incarnation;
    this.#lastSeen[n] = m.lastSeen;
  }

  /** Removes the member with this id. */
  delete(id: string): void {
    const n = numberOf(id);
    if (n === undefined || this.#who[n] === undefined) return;
    this.#who[n] = undefined;
    this.#size--;
    releaseNumber(id);
  }

  /** Every member, as new records, in no particular order. */
  all(): MemberRecord[] {
    const out: MemberRecord[] = [];
    const who = this.#who;
    for (let n = 0; n < who.length; n++) {
      const w = who[n];
      if (w === undefined) continue;
      out.push({
        id: w.id,
        address: w.address,
        port: w.port,
        ...(w.name !== undefined ? { name: w.name } : {}),
        kind: w.kind,
        state: STATES[this.#state[n]!]!,
        incarnation: this.#incarnation[n]!,
        lastSeen: this.#lastSeen[n]!,
      });
    }
    return out;
  }

  /** Removes every member (their numbers go back to the process). */
  clear(): void {
    for (const w of this.#who) if (w !== undefined) releaseNumber(w.id);
    this.#who = [];
    this.#state = new Uint8Array(0);
    this.#incarnation = new Float64Array(0);
    this.#lastSeen = new Float64Array(0);
    this.#size = 0;
  }

  #grow(least: number): void {
    const capacity = columnCapacity(this.#state.length, least);
    this.#state = grownColumn(this.#state, capacity);
    this.#incarnation = grownColumn(this.#incarnation, capacity);
    this.#lastSeen = grownColumn(this.#lastSeen, capacity);
  }
}
