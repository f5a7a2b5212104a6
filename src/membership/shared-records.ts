/**
 * The identities members state in signed self-records, shared across the nodes of a process: the
 * {@link Peer} and {@link MemberRecord} a node builds for one signed statement of a member are
 * the same objects in every node of the process that holds that statement. A simulation of N
 * nodes in one process holds each member N times (10⁸ entries at 10,000 nodes), and these two
 * objects were a third of each entry; a process with one node holds each member once, and pays
 * one map entry per member for the table.
 *
 * What is shared never changes: a `Peer` is frozen (`peerOf`) and a record is read-only. An entry
 * is reused only for the same signature by the same key over the same fields (the signature
 * covers them all, and it was checked before the record was taken). Bounded: the oldest entry
 * goes first; one that was dropped is only no longer shared.
 *
 * @module
 */

import { type Peer, sameRecordFields } from '../peer.js';
import type { MemberRecord, MemberStatement } from './member-table.js';

/** A member's identity as one signed statement states it (a tsp2p member's: only they sign). */
export interface SharedIdentity extends MemberStatement {
  readonly peer: Peer;
  readonly kind: 'tsp2p';
  readonly record: MemberRecord;
}

/** Most signed statements remembered (a member table holds at most `maxMembers`, 10,000 by default). */
const CAPACITY = 16_384;

const bySig = new Map<string, SharedIdentity>();

/**
 * The shared `peer` and `record` of a signed statement: those of the first node of the process
 * that took the same statement, or these (then remembered for the next). A record without a
 * signature is returned as it is.
 */
export function sharedIdentity(peer: Peer, record: MemberRecord): SharedIdentity {
  const sig = record.sig;
  if (sig === undefined || record.key === undefined) return { peer, kind: 'tsp2p', record };
  const held = bySig.get(sig);
  if (held !== undefined && sameStatement(held, peer, record)) return held;
  if (held === undefined && bySig.size >= CAPACITY) bySig.delete(bySig.keys().next().value as string);
  const entry: SharedIdentity = { peer, kind: 'tsp2p', record };
  bySig.set(sig, entry);
  return entry;
}

function sameStatement(held: SharedIdentity, peer: Peer, record: MemberRecord): boolean {
  const p = held.peer;
  const r = held.record;
  const samePeer =
    p === peer ||
    (p.id === peer.id &&
      p.address === peer.address &&
      p.port === peer.port &&
      p.name === peer.name &&
      sameRecordFields(p, peer));
  return samePeer && r.key === record.key && r.inc === record.inc && sameRecordFields(r, record);
}
