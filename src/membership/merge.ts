/**
 * Membership updates and the rule that orders them: pure functions, no I/O.
 *
 * Every piece of membership news is a {@link MemberUpdate}: "member `id`, at `address:port`, is
 * in `state` as of incarnation `inc`". Updates are totally ordered by
 *
 *     (inc, rank(state), address, port, name, tags and topics)
 *                                                    rank: alive 0 < suspect 1 < dead 2 < left 3
 *
 * and a node keeps, for each id, the greatest update it has seen. Taking a maximum is
 * commutative, associative and idempotent, so nodes that see the same updates in any order,
 * any number of times, end with the same view. That is what makes anti-entropy converge.
 *
 * The only way to overturn a suspicion or a death is a higher incarnation, and only the member
 * itself raises its incarnation (to refute) - or an entry point, when a departed member joins
 * again.
 *
 * This order is the state part of the rule. Who may say what about a member - its address,
 * port, name, tags and topics only the member itself, and its incarnation only within a bounded
 * step - is decided first, by `news.ts`: `Membership` applies the order only to news that passed.
 *
 * @module
 */

import { recordFieldsKey } from '../peer.js';
import type { MemberState } from './member-table.js';

/** News about one member, as gossiped and as exchanged in a sync. */
export interface MemberUpdate {
  readonly id: string;
  readonly address: string;
  readonly port: number;
  readonly name?: string;
  readonly state: MemberState;
  /** The member's incarnation number. */
  readonly inc: number;
  /** For `suspect`: the id of the node that suspects it (confirmations are counted by it). */
  readonly by?: string;
  /** `'gop2p'` for a gop2p member, which cannot take part in probing and sync. */
  readonly kind?: 'gop2p';
  /** The member's own public key (base64url), to check `rsig` with. */
  readonly key?: string;
  /**
   * The member's signature of its self-record: `id`, `address`, `port`, `name`, `tags`,
   * `topics` at incarnation `rinc` (see `src/security/record-signature.ts`). Only the member
   * can make it, so only it can change those fields (see `news.ts`).
   */
  readonly rsig?: string;
  /** The incarnation the record was signed at; absent: `inc`. */
  readonly rinc?: number;
  /** The member's tags, as it set them (rooms: `setTags()`). */
  readonly tags?: Record<string, string>;
  /** The member's topics, as it subscribed to them (rooms: `subscribe()`). */
  readonly topics?: string[];
}

/** The rank of each state at equal incarnation. */
export const STATE_RANK: Readonly<Record<MemberState, number>> = Object.freeze({
  alive: 0,
  suspect: 1,
  dead: 2,
  left: 3,
});

/** Compares two updates about the same member: negative when `a` is older than `b`, 0 when equal. */
export function compareUpdates(a: MemberUpdate, b: MemberUpdate): number {
  if (a.inc !== b.inc) return a.inc - b.inc;
  const rank = STATE_RANK[a.state] - STATE_RANK[b.state];
  if (rank !== 0) return rank;
  if (a.address !== b.address) return a.address < b.address ? -1 : 1;
  if (a.port !== b.port) return a.port - b.port;
  const na = a.name ?? '';
  const nb = b.name ?? '';
  if (na !== nb) return na < nb ? -1 : 1;
  // A member changes its tags and topics only with a higher incarnation: at one incarnation
  // there is one statement of them, unless news is false. Ordering by their text keeps the
  // merge a maximum (commutative, idempotent) even then.
  const ra = recordFieldsKey(a);
  const rb = recordFieldsKey(b);
  return ra === rb ? 0 : ra < rb ? -1 : 1;
}

/** Whether `update` is newer than `current` (a member nobody knew is always new). */
export function supersedes(update: MemberUpdate, current: MemberUpdate | undefined): boolean {
  return current === undefined || compareUpdates(update, current) > 0;
}

/** The newer of two updates about the same member. */
export function mergeUpdates(a: MemberUpdate, b: MemberUpdate): MemberUpdate {
  return compareUpdates(a, b) >= 0 ? a : b;
}

/** Whether a state means the member is in the network. */
export function isLive(state: MemberState): boolean {
  return state === 'alive' || state === 'suspect';
}

/**
 * Merges two views (id → update) into one: the greatest update per id. Pure; used by
 * simulations and property tests to state what convergence means.
 */
export function mergeViews(
  a: ReadonlyMap<string, MemberUpdate>,
  b: ReadonlyMap<string, MemberUpdate>,
): Map<string, MemberUpdate> {
  const out = new Map(a);
  for (const [id, u] of b) {
    const cur = out.get(id);
    out.set(id, cur === undefined ? u : mergeUpdates(cur, u));
  }
  return out;
}
