/**
 * Who may say what about a member: pure functions, no I/O. `Membership` asks {@link judgeNews}
 * about every update before it applies the merge order of `merge.ts` to it.
 *
 * A member's **identity fields** - address, port, name, tags, topics - change only on the
 * member's own word:
 *
 * - its own signed envelope (`from`, checked by the inbound guard): `own` news;
 * - or a self-record it signed (`rsig` with its `key`, at incarnation `rinc`), which gossip and
 *   push-pull carry unchanged and every node checks. Of two records, the one signed at the higher
 *   incarnation holds.
 *
 * Everyone else (third-party news) may only say `alive`, `suspect`, `dead` or `left` about the
 * identity already known for that id: an unsigned update about an unknown member, or with other
 * identity fields, is ignored, whatever its incarnation or state.
 *
 * **Bounded incarnations.** Third-party news may move a member's incarnation at most
 * {@link INC_STEP} above the member's own record (however often it is told), and only to say
 * `alive` or `suspect` (an entry point raising a departed member's incarnation on its return);
 * `dead` and `left` news must be at or below it. So no third party can push a member out of
 * reach of its refutation (to 2^53 - 1, say), and a member's own incarnation, at most
 * `MAX_INCARNATION` (2^31), always has room above what others hold.
 *
 * gop2p members have no keys: their id is their address (`address:port`), so their address
 * cannot change; the rest is as gop2p does (anyone may speak for them).
 *
 * @module
 */

import type { Peer } from '../peer.js';
import { MAX_INCARNATION } from '../protocol/schema.js';
import type { SelfRecord } from '../security/record-signature.js';
import type { MemberRecord, MemberState, PeerKind } from './member-table.js';

export type { MemberRecord } from './member-table.js';

import type { MemberUpdate } from './merge.js';

/**
 * How far above what a node holds (the member's incarnation, or its record's) third-party news
 * may raise a member's incarnation: 1, what an entry point adds when a departed member returns.
 */
export const INC_STEP = 1;

/** What a node holds about a member, as {@link judgeNews} needs it. */
export interface HeldMember {
  readonly peer: Peer;
  readonly kind: PeerKind;
  readonly state: MemberState;
  readonly incarnation: number;
  readonly record?: MemberRecord | undefined;
}

/** The verdict on one update. */
export type NewsVerdict =
  | { readonly kind: 'ignore'; readonly reason: NewsRefusal }
  | {
      readonly kind: 'accept';
      /** The identity to hold from now on (the update's, or the one held). */
      readonly record: MemberRecord | undefined;
      /** The identity fields change (address, port, name, tags or topics). */
      readonly identityChanged: boolean;
    };

/** Why news was ignored. */
export type NewsRefusal =
  | 'incarnation_too_high'
  | 'unknown_unsigned'
  | 'identity_not_signed'
  | 'bad_record_signature'
  | 'older_record'
  | 'incarnation_step'
  | 'kind_mismatch';

/** The self-record an update carries (its identity fields at `rinc`, or `inc`). */
export function recordOf(u: MemberUpdate): SelfRecord {
  return {
    id: u.id,
    address: u.address,
    port: u.port,
    name: u.name === '' ? undefined : u.name,
    tags: u.tags,
    topics: u.topics,
    inc: u.rinc ?? u.inc,
  };
}

/** Whether the update states the same identity fields as the member held. */
export function sameIdentity(u: MemberUpdate, held: HeldMember): boolean {
  return (
    u.address === held.peer.address &&
    u.port === held.peer.port &&
    (u.name === '' ? undefined : u.name) === held.peer.name &&
    sameTags(u.tags, held.peer.tags) &&
    sameTopics(u.topics, held.peer.topics)
  );
}

/**
 * Judges one update about a member other than this node.
 *
 * @param update - the news
 * @param held - what this node holds for that id, if anything
 * @param own - the news is the member's own signed envelope (its `from`)
 * @param signed - the update's `rsig` is the member's valid signature of {@link recordOf} it
 *   (`undefined` when it carries none)
 */
export function judgeNews(
  update: MemberUpdate,
  held: HeldMember | undefined,
  own: boolean,
  signed: boolean | undefined,
): NewsVerdict {
  if (update.inc > MAX_INCARNATION || (update.rinc ?? 0) > MAX_INCARNATION) {
    return ignore('incarnation_too_high');
  }
  if (update.kind === 'gop2p') {
    // Its id is its address (Membership files it under addressId whatever id it came with).
    if (held !== undefined && held.kind !== 'gop2p') return ignore('kind_mismatch');
    const changed = held !== undefined && (update.name || undefined) !== held.peer.name;
    return { kind: 'accept', record: undefined, identityChanged: changed };
  }
  if (held !== undefined && held.kind === 'gop2p') return ignore('kind_mismatch');
  if (signed === false) return ignore('bad_record_signature');
  const same = held !== undefined && sameIdentity(update, held);
  const heldInc = held?.record?.inc ?? Number.NEGATIVE_INFINITY;
  const rinc = update.rinc ?? update.inc;
  let record: MemberRecord | undefined;
  if (own) {
    // The member's own envelope: fresh (the guard checked its time and replays), and its own.
    // Only a record it signed at a higher incarnation since outranks it.
    if (!same && update.inc < heldInc) return ignore('older_record');
    // The record is what it signed: at `rinc` (the incarnation may stand above it, raised by an
    // entry point on its return), so that it can be passed on and checked.
    const stated = recordFrom(update, signed === true, rinc);
    record = same && held?.record !== undefined && keepHeld(held.record, stated) ? held.record : stated;
    return { kind: 'accept', record, identityChanged: held !== undefined && !same };
  }
  if (signed === true) {
    if (held === undefined || rinc > heldInc) record = recordFrom(update, true, rinc);
    else if (same)
      record = keepHeld(held.record!, recordFrom(update, true, rinc))
        ? held.record
        : recordFrom(update, true, rinc);
    else return ignore('older_record');
  } else {
    if (held === undefined) return ignore('unknown_unsigned');
    if (!same) return ignore('identity_not_signed');
    record = held.record;
  }
  // The incarnation step: what third parties may add to what this node holds. A raise is
  // measured from the member's own word (its record), never from an incarnation third parties
  // raised before: otherwise a chain of news, each one step above the last, would carry the
  // member anywhere (to MAX_INCARNATION, beyond its reach to refute).
  const base = Math.max(
    held?.incarnation ?? Number.NEGATIVE_INFINITY,
    record?.inc ?? Number.NEGATIVE_INFINITY,
  );
  if (update.inc > base) {
    const raises = update.state === 'alive' || update.state === 'suspect';
    const own = record?.inc ?? base;
    if (!raises || update.inc > own + INC_STEP) return ignore('incarnation_step');
  }
  return { kind: 'accept', record, identityChanged: held !== undefined && !same };
}

/** Whether to keep the record held rather than `stated`, when both state the same fields. */
function keepHeld(held: MemberRecord, stated: MemberRecord): boolean {
  // A signed record can be passed on: it is kept over an unsigned statement of the same fields,
  // and replaces one. Between two of a kind, the later incarnation.
  if (held.sig === undefined) return stated.sig === undefined && stated.inc <= held.inc;
  if (stated.sig === undefined) return true;
  return stated.inc <= held.inc;
}

function recordFrom(u: MemberUpdate, signed: boolean, inc: number): MemberRecord {
  const r: { -readonly [K in keyof MemberRecord]: MemberRecord[K] } = { inc };
  if (signed) {
    r.key = u.key;
    r.sig = u.rsig;
  }
  if (u.tags !== undefined && Object.keys(u.tags).length > 0) r.tags = u.tags;
  if (u.topics !== undefined && u.topics.length > 0) r.topics = u.topics;
  return r;
}

function ignore(reason: NewsRefusal): NewsVerdict {
  return { kind: 'ignore', reason };
}

function sameTags(
  a: Readonly<Record<string, string>> | undefined,
  b: Readonly<Record<string, string>> | undefined,
): boolean {
  const ka = a === undefined ? [] : Object.keys(a);
  const kb = b === undefined ? [] : Object.keys(b);
  if (ka.length !== kb.length) return false;
  return ka.every((k) => b !== undefined && Object.hasOwn(b, k) && b[k] === a![k]);
}

function sameTopics(a: readonly string[] | undefined, b: readonly string[] | undefined): boolean {
  const la = a ?? [];
  const lb = b ?? [];
  return la.length === lb.length && la.every((t, i) => t === lb[i]);
}
