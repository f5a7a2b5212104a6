/**
 * Process-wide member numbers: each member id that some structure of the process holds has one
 * number, taken with {@link acquireNumber} and given back with {@link releaseNumber} (reused
 * once no holder is left). Per-node structures indexed by them need no map of their own: a
 * simulation of N nodes in one process holds each member N times (N² entries, 10⁸ at 10,000
 * nodes), and a map entry per holder and member costs 30 to 46 bytes where an index into a typed
 * array costs one to eight. A process with one node numbers its members 0 to N.
 *
 * A holder that is dropped without giving its numbers back keeps them taken (the numbers grow);
 * holders give them back when they are cleared or closed.
 *
 * @module
 */

interface Numbered {
  readonly n: number;
  refs: number;
}

const numbers = new Map<string, Numbered>();
const ids: (string | undefined)[] = [];
const free: number[] = [];

/** The number of `id`, while some holder holds it. */
export function numberOf(id: string): number | undefined {
  return numbers.get(id)?.n;
}

/** The id numbered `n`, while some holder holds it. */
export function idOfNumber(n: number): string | undefined {
  return ids[n];
}

/** Takes the number of `id` for one more holder (a new number when it has none). */
export function acquireNumber(id: string): number {
  const held = numbers.get(id);
  if (held !== undefined) {
    held.refs++;
    return held.n;
  }
  const n = free.pop() ?? numbers.size;
  numbers.set(id, { n, refs: 1 });
  ids[n] = id;
  return n;
}

/** Gives back one holder's number of `id`. */
export function releaseNumber(id: string): void {
  const held = numbers.get(id);
  if (held === undefined || --held.refs > 0) return;
  numbers.delete(id);
  ids[held.n] = undefined;
  free.push(held.n);
}

/**
 * The capacity a column indexed by member numbers grows to, from `length`, to hold at least
 * `least` slots: by a quarter, not double (at 10,000 members a doubled column is 61% full:
 * 16,384 slots), and at least 16.
 */
export function columnCapacity(length: number, least: number): number {
  return Math.max(16, least, length + (length >> 2));
}

/** A copy of `from` in a new array of `capacity` slots (the rest zero). */
export function grownColumn<T extends Uint8Array | Int32Array | Float64Array>(from: T, capacity: number): T {
  const to = new (from.constructor as new (length: number) => T)(capacity);
  to.set(from);
  return to;
}

/**
 * A set of member ids held as flags at their numbers: one byte per number of the process
 * rather than a hash table entry per id. Iterates in number order.
 */
export class NumberedSet implements Iterable<string> {
  #flags = new Uint8Array(0);
  #size = 0;

  /** How many ids are in the set. */
  get size(): number {
    return this.#size;
  }

  /** Whether `id` is in the set. */
  has(id: string): boolean {
    const n = numberOf(id);
    return n !== undefined && this.#flags[n] === 1;
  }

  /** Adds `id`; false when it was in the set already. */
  add(id: string): boolean {
    if (this.has(id)) return false;
    const n = acquireNumber(id);
    if (n >= this.#flags.length)
      this.#flags = grownColumn(this.#flags, columnCapacity(this.#flags.length, n + 1));
    this.#flags[n] = 1;
    this.#size++;
    return true;
  }

  /** Removes `id`; false when it was not in the set. */
  delete(id: string): boolean {
    const n = numberOf(id);
    if (n === undefined || this.#flags[n] !== 1) return false;
    this.#flags[n] = 0;
    this.#size--;
    releaseNumber(id);
    return true;
  }

  /** Empties the set (its numbers go back to the process). */
  clear(): void {
    for (const id of [...this]) this.delete(id);
    this.#flags = new Uint8Array(0);
  }

  *[Symbol.iterator](): Iterator<string> {
    const flags = this.#flags;
    for (let n = 0; n < flags.length; n++) if (flags[n] === 1) yield ids[n]!;
  }
}
