/**
 * Membership: the member table plus the rules that change it. It applies joins, leaves and
 * gossiped updates, runs suspicion timers, refutes news about this node, and reports every
 * state transition exactly once. It does no I/O: the failure detector and the node feed it.
 *
 * State transitions of a member, and the event each one fires:
 *
 *     (unknown) ──alive──▶ alive            member:join
 *     alive ──suspect──▶ suspect            member:suspect
 *     suspect ──alive, higher inc──▶ alive  member:update   (refuted)
 *     alive|suspect ──dead──▶ dead          member:fail
 *     alive|suspect ──left──▶ left          member:leave
 *     dead|left ──alive, higher inc──▶ alive  member:join  (rejoined)
 *     (unknown)|dead|left ──suspect──▶ suspect  member:join  (joined, already suspected)
 *     alive ──alive, new address/name──▶ alive  member:update
 *
 * A graceful leave is never reported as a failure, nor a failure as a leave: once a member is
 * dead or left, the other of the two changes nothing visible.
 *
 * @module
 */

import { createHash } from 'node:crypto';
import { type Clock, type TimerHandle, wallTime } from '../clock.js';
import type { Logger } from '../logger.js';
import { addressId, type Peer, type PeerRecordFields, peerOf, sameRecordFields } from '../peer.js';
import { MAX_INCARNATION } from '../protocol/schema.js';
import type { Random } from '../random.js';
import type { RecordAuthority } from '../security/record-signature.js';
import { GossipQueue, retransmitLimit } from './gossip-queue.js';
import {
  type Member,
  type MemberFields,
  type MemberState,
  MemberTable,
  memberRow,
  type PeerKind,
} from './member-table.js';
import { isLive, type MemberUpdate, STATE_RANK } from './merge.js';
import { INC_STEP, judgeNews, type MemberRecord, recordOf, sameIdentity } from './news.js';
import { sharedIdentity } from './shared-records.js';
import { type MembershipTimings, suspicionBounds, suspicionTimeout } from './timings.js';

/** The member events, by the name the node emits them under. */
export type MemberEvent = 'member:join' | 'member:leave' | 'member:suspect' | 'member:fail' | 'member:update';

/** What {@link Membership} needs from its owner. */
export interface MembershipOptions {
  readonly self: Peer;
  /** This node's tags, as it states them at start. */
  readonly tags?: Readonly<Record<string, string>> | undefined;
  /** This node's topics, as it states them at start. */
  readonly topics?: readonly string[] | undefined;
  readonly clock: Clock;
  readonly random: Random;
  readonly timings: MembershipTimings;
  readonly logger: Logger;
  readonly maxMembers: number;
  /** Signs this node's self-record, and checks the records gossip brings (see `news.ts`). */
  readonly records: RecordAuthority;
  /**
   * This node's first incarnation: high enough that, after a restart, it still outranks what
   * others remember of its last run (see {@link startIncarnation}). @default 0
   */
  readonly incarnation?: number;
  /** Called after each transition; the node defers it to emit the event. */
  readonly emit: (event: MemberEvent, peer: Peer) => void;
  /**
   * Whether gop2p members may join (compat mode). A node that would refuse a gop2p peer's
   * messages does not admit one learnt through gossip either: it would send to a member that
   * cannot answer. @default true
   */
  readonly admitGop2p?: boolean;
  /**
   * A member stated, on its own word, the address of a live member `holder`: the holder is to
   * be probed now. It keeps the address until it fails to answer (a restart under a new id).
   */
  readonly onContest?: (holder: Member) => void;
  /**
   * This node refuted news that it is suspect or dead: others could not reach it in time, which
   * points at this node's own health (Lifeguard raises its local health score then).
   */
  readonly onRefute?: () => void;
}

/** How an update reached this node. */
export interface ApplyOptions {
  /** Apply even if it does not supersede the current record (explicit joins). */
  readonly force?: boolean;
  /** The update is the member's own word: its signed envelope's `from`. */
  readonly own?: boolean;
}

/**
 * A first incarnation for a node that keeps none across runs: the seconds since 2025-01-01 UTC,
 * so that each run starts above what the last one reached by refuting (at most one refutation a
 * second on average), and far below `MAX_INCARNATION` (2^31 seconds is 68 years).
 */
export function startIncarnation(wallMs: number): number {
  return Math.min(MAX_INCARNATION / 2, Math.max(0, Math.floor((wallMs - Date.UTC(2025, 0, 1)) / 1000)));
}

/**
 * How far above {@link startIncarnation} of the present moment news of this node may be and still
 * be refuted or adopted: 2^20, a million restatements more than the seconds a run has lasted.
 *
 * A node restarted without its store starts at the wall clock's seconds, which may be below the
 * incarnation its last run reached (each tag, topic change or refutation raises it by one), and
 * below what others hold of it: their record of its death, or one step above it when it joins
 * again. It must take up that incarnation at once, or it could never refute a suspicion again.
 * Beyond this reach news is absurd (nobody else takes it, see `news.ts`): refuting it would only
 * spend incarnations. What anyone can make this node spend is then bounded: its incarnation
 * stays below 2^30 + 2^20 for 34 years, far from `MAX_INCARNATION` (2^31).
 */
export const RESTART_REACH = 2 ** 20;

/** Most reaped members whose last incarnation is remembered (a few bytes each). */
const FORGOTTEN_MAX = 65_536;

/** What is remembered of a reaped member. */
interface Forgotten {
  readonly inc: number;
  /** Where a failed member was (undefined for a departed one, or a gop2p one). */
  readonly where: Peer | undefined;
}

interface Suspicion {
  readonly start: number;
  readonly inc: number;
  /** The node whose suspicion this node heard first: the news itself, not a confirmation. */
  readonly from: string | undefined;
  readonly confirmers: Set<string>;
  /** Strong evidence (every probe was refused a connection): the timeout is `refusedSuspicionMs`. */
  strong: boolean;
  timer: TimerHandle;
}

/** The result of an explicit join. */
export interface JoinResult {
  readonly member: Member;
  /** The member was not in the network before (new, or back after dying or leaving). */
  readonly joined: boolean;
}

/** This node's view of the network. */
export class Membership {
  readonly #o: MembershipOptions;
  readonly #table = new MemberTable();
  readonly #queue = new GossipQueue(() => this.#newsListener?.());
  #newsListener: (() => void) | undefined;
  readonly #suspicions = new Map<string, Suspicion>();
  #inc: number;
  // This node's record signature, for the incarnation it was made at.
  #selfSig: { readonly inc: number; readonly sig: string } | undefined;
  // False until this node joins a network, and again after it leaves: news that arrives while
  // out of the network (answers to requests sent before leaving) must not bring members back.
  #active = false;
  // This node left a network: its next join raises its incarnation.
  #left = false;
  // This node's tags and topics, as it states them in its own entry.
  #fields: PeerRecordFields;
  // Within seed(): what is applied is not queued for gossip.
  #seeding = false;

  constructor(options: MembershipOptions) {
    this.#o = options;
    this.#inc = Math.min(MAX_INCARNATION, Math.max(0, options.incarnation ?? 0));
    this.#fields = { tags: options.tags, topics: options.topics };
  }

  /**
   * This node's signature of its self-record at its current incarnation (made once per
   * incarnation): it goes in `from.rsig` of what this node sends, and in its own updates.
   */
  selfSignature(): string {
    if (this.#selfSig?.inc !== this.#inc) {
      const self = this.#o.self;
      const sig = this.#o.records.sign({
        id: self.id,
        address: self.address,
        port: self.port,
        name: self.name,
        tags: this.#fields.tags,
        topics: this.#fields.topics,
        inc: this.#inc,
      });
      this.#selfSig = { inc: this.#inc, sig };
    }
    return this.#selfSig.sig;
  }

  /** This node's tags and topics, as its entry states them. */
  get selfFields(): PeerRecordFields {
    return this.#fields;
  }

  /**
   * This node states new tags or topics: a membership update of its own entry, at a raised
   * incarnation so that it outranks every earlier statement. Returns the new entry (gossiped from
   * now on; the caller may also push it to members directly).
   */
  restate(fields: PeerRecordFields): MemberUpdate {
    this.#fields = { tags: fields.tags ?? this.#fields.tags, topics: fields.topics ?? this.#fields.topics };
    this.#inc++;
    const update = this.selfUpdate();
    if (this.#active) this.#queue.enqueue(update);
    return update;
  }

  /** This node's own incarnation. */
  get incarnation(): number {
    return this.#inc;
  }

  /**
   * Whether this node is in a network: it joined (or was joined) and has not left since. Out of
   * one, it takes no news and must send no membership traffic.
   */
  get active(): boolean {
    return this.#active;
  }

  /**
   * This node as an update: alive at its current incarnation, with its tags and topics and its
   * signed self-record.
   */
  selfUpdate(): MemberUpdate {
    return {
      ...toUpdate(
        peerOf(this.#o.self.id, this.#o.self.address, this.#o.self.port, this.#o.self.name, this.#fields),
        'alive',
        this.#inc,
      ),
      key: this.#o.records.key,
      rsig: this.selfSignature(),
    };
  }

  /** The number of live members (self excluded). */
  get liveCount(): number {
    return this.#table.liveCount;
  }

  /**
   * The live members (alive or suspect), self excluded: a new array of new objects on each call
   * (the table keeps its rows in columns, not as objects), in the table's insertion order. A
   * caller that needs one or a few of them draws them with {@link Membership.liveAt}.
   */
  live(): readonly Member[] {
    return this.#table.live();
  }

  /** The `i`th live member (0 to `liveCount - 1`), in the order of {@link Membership.live}. */
  liveAt(i: number): Member {
    return this.#table.liveAt(i);
  }

  /** The ids of the live members, in the order of {@link Membership.live}. */
  liveIds(): string[] {
    return this.#table.liveIds();
  }

  /**
   * The tombstones: dead and departed members, in no particular order (a new array of new
   * objects on each call).
   */
  gone(): readonly Member[] {
    return this.#table.gone();
  }

  /** How many tombstones there are. */
  get goneCount(): number {
    return this.#table.goneCount;
  }

  /** The `i`th tombstone (0 to `goneCount - 1`), in the order of {@link Membership.gone}. */
  goneAt(i: number): Member {
    return this.#table.goneAt(i);
  }

  /** The tombstones in the table's insertion order (new objects). */
  tombstones(): Member[] {
    return this.#table.tombstones();
  }

  /** Every record, tombstones of dead and departed members included. */
  all(): Member[] {
    return this.#table.all();
  }

  /** The record with this id (live or not). */
  get(id: string): Member | undefined {
    return this.#table.get(id);
  }

  /** The record holding this address (live or not). */
  getByAddress(address: string, port: number): Member | undefined {
    return this.#table.getByAddress(address, port);
  }

  /** The live member with this id or address. */
  liveMember(id: string | undefined, address: string, port: number): Member | undefined {
    const m = id !== undefined ? this.#table.get(id) : this.#table.getByAddress(address, port);
    return m !== undefined && isLive(m.state) ? m : undefined;
  }

  /** Whether the table can take one more live member. */
  hasRoom(): boolean {
    return this.liveCount < this.#o.maxMembers;
  }

  /** Notes that a member was heard from. */
  touch(id: string): void {
    this.#table.touch(id, this.#o.clock.now());
  }

  /**
   * An explicit join: a newcomer's connect, or a member that answered this node's own
   * announcement. A member that had died or left comes back with a higher incarnation, so that
   * news of its departure cannot overturn its return.
   */
  join(peer: Peer, kind: PeerKind, claimedInc = 0, record?: SignedFields): JoinResult {
    if (!this.#active && this.#left) {
      // Back after a leave: outrank the news of it.
      this.#inc++;
      this.#left = false;
    }
    this.#active = true;
    const cur = this.#table.get(peer.id);
    let inc = claimedInc;
    if (cur !== undefined)
      inc = isLive(cur.state)
        ? Math.max(cur.incarnation, claimedInc)
        : Math.max(cur.incarnation + 1, claimedInc);
    const update: MemberUpdate = {
      ...toUpdate(peer, 'alive', inc),
      ...(kind === 'gop2p' ? { kind: 'gop2p' } : {}),
      ...(kind === 'tsp2p' && record !== undefined ? signedFields(record, claimedInc, inc) : {}),
    };
    const wasLive = cur !== undefined && isLive(cur.state);
    // Its own word: its signed connect, or its answer at the address this node dialed. A record
    // that does not check is left out, not the member.
    if (!this.apply(update, { force: true, own: true }) && update.rsig !== undefined) {
      const { key: _k, rsig: _s, rinc: _r, ...unsigned } = update;
      this.apply(unsigned, { force: true, own: true });
    }
    // Undefined only when the table is full (callers check hasRoom() first).
    const member = (this.#table.get(peer.id) ?? cur) as Member;
    return { member, joined: !wasLive && member !== undefined && isLive(member.state) };
  }

  /**
   * A member's own graceful leave (it told this node).
   *
   * @param inc - the incarnation the leaver gave in its notice: the leave is recorded at the
   *   higher of it and the one held, so that nothing the leaver said before (a refutation this
   *   node has not heard yet) outranks its leave
   */
  leave(id: string, inc = 0): Member | undefined {
    const cur = this.#table.get(id);
    if (cur === undefined || !isLive(cur.state)) return undefined;
    this.apply(toUpdate(cur.peer, 'left', Math.max(cur.incarnation, inc), cur.kind), {
      force: true,
      own: true,
    });
    return cur;
  }

  /**
   * Starts suspecting a member that failed a probe.
   *
   * @param options.strong - the evidence is strong (every probe was refused a connection, or a
   *   gop2p peer's was): the suspicion runs for `refusedSuspicionMs` only
   */
  suspect(id: string, options: { strong?: boolean } = {}): void {
    const cur = this.#table.get(id);
    if (cur === undefined) return;
    if (options.strong === true && cur.state === 'suspect') {
      const s = this.#suspicions.get(id);
      if (s !== undefined && !s.strong) {
        s.strong = true;
        this.#schedule(id, s);
      }
      return;
    }
    if (cur.state === 'suspect') {
      // Already suspected by someone else, and our own probe failed too: that is an independent
      // confirmation. Tell the others, naming this node, so that their timeouts shrink (Lifeguard),
      // unless the expected confirmations are all in (see #confirm).
      if (this.#confirmed(this.#suspicions.get(id))) return;
      this.#queue.enqueue({ ...memberUpdate(cur), by: this.#o.self.id });
      return;
    }
    if (cur.state !== 'alive') return;
    this.apply({ ...toUpdate(cur.peer, 'suspect', cur.incarnation, cur.kind), by: this.#o.self.id }, true);
    if (options.strong === true) this.suspect(id, options);
  }

  /**
   * Applies one update (gossiped, synced, the member's own word, or local). Returns whether it
   * changed anything. Who may say what is decided first (`news.ts`): news that does not pass is
   * ignored.
   *
   * @param options - `true` is `{ force: true }` (local news: a suspicion, an expiry)
   */
  apply(update: MemberUpdate, options: ApplyOptions | boolean = {}): boolean {
    if (!this.#active) return false;
    const { force = false, own = false } = typeof options === 'boolean' ? { force: options } : options;
    if (update.id === this.#o.self.id) return this.#aboutSelf(update);
    // Another id at this node's own address: false (this node is there), and probing it would
    // reach this node itself.
    if (update.address === this.#o.self.address && update.port === this.#o.self.port) {
      this.#o.logger.debug('ignoring membership news', { id: update.id, why: 'self_address' });
      return false;
    }
    // A gop2p member's id is its address, whatever id the news gives it.
    if (update.kind === 'gop2p') {
      const id = addressId(update.address, update.port);
      if (id !== update.id) return this.apply({ ...update, id }, options);
    }
    const cur = this.#table.get(update.id);
    // News this node holds already, word for word (gossip brings each update many times): it
    // changes nothing, which the full path below would also conclude, at more cost.
    if (cur !== undefined && !force && !own && isHeldAlready(update, cur)) return false;
    // News of the member's identity as held, word for word, about a state no newer than held: a
    // suspicion of a suspect at its incarnation is a confirmation, anything else changes nothing
    // (as the full path below concludes, at more cost). In a partition every member hears every
    // suspicion and death on the other side a dozen times, from as many members.
    if (cur !== undefined && !force && !own && isHeldRecord(update, cur) && compareState(update, cur) <= 0) {
      if (cur.state === 'suspect' && update.state === 'suspect' && update.by !== undefined) {
        if (update.inc === cur.incarnation) this.#confirm(cur, update.by);
      }
      return false;
    }
    if (cur === undefined) {
      const gone = this.#forgotten.get(update.id);
      if (gone !== undefined && update.inc <= gone.inc) {
        if (!own) {
          this.#o.logger.debug('ignoring membership news', { id: update.id, why: 'reaped' });
          return false;
        }
        // A reaped member back on its own word (a partition longer than the reap has healed):
        // it returns one step above its departure, as join() raises a departed member, so that
        // the news of its return passes every node that forgot it too.
        if (isLive(update.state)) update = raisedTo(update, gone.inc + INC_STEP);
      }
    }
    const verdict = judgeNews(update, cur, own, this.#signed(update, cur));
    if (verdict.kind === 'ignore') {
      this.#o.logger.debug('ignoring membership news', { id: update.id, why: verdict.reason });
      return false;
    }

    // Another node's suspicion of a member we already suspect is a confirmation.
    if (
      cur !== undefined &&
      cur.state === 'suspect' &&
      update.state === 'suspect' &&
      update.inc === cur.incarnation
    ) {
      if (update.by !== undefined) this.#confirm(cur, update.by);
      return false;
    }
    // Another live member at that address: on the newcomer's own word, the holder is probed at
    // once, and keeps the address until it fails to answer; third-party news evicts no one.
    if (own && isLive(update.state)) {
      this.#contest(
        update.id,
        cur === undefined || verdict.identityChanged ? peerOfUpdate(update) : cur.peer,
      );
    }
    const newer = cur === undefined || compareState(update, cur) > 0;
    if (!force && !newer) {
      // Older or equal news; the member's identity may still have moved on (a newer record).
      if (cur !== undefined && verdict.identityChanged) return this.#restate(cur, update, verdict.record);
      if (cur !== undefined && verdict.record !== cur.record)
        this.#table.set(memberRow({ ...fieldsOf(cur), record: verdict.record }, cur));
      return false;
    }
    if (
      update.kind === 'gop2p' &&
      this.#o.admitGop2p === false &&
      isLive(update.state) &&
      (cur === undefined || !isLive(cur.state))
    ) {
      this.#refuseGop2p(update);
      return false;
    }
    // News of a member we never knew joins it, suspect or not (dropping a suspect would make the
    // view depend on the order news arrives in); departures are remembered, so that stale news
    // cannot bring them in later. A member entering the network, new or back, needs room.
    if (isLive(update.state) && (cur === undefined || !isLive(cur.state)) && !this.hasRoom()) {
      this.#o.logger.warn('member table full: ignoring a new member', { id: update.id });
      return false;
    }
    const prev: MemberState | undefined = cur?.state;
    const addressChanged = verdict.identityChanged;
    const kind: PeerKind = update.kind === 'gop2p' ? 'gop2p' : (cur?.kind ?? 'tsp2p');
    const now = this.#o.clock.now();
    let peer = cur === undefined || addressChanged ? peerOfUpdate(update) : cur.peer;
    let record = verdict.record;
    // A signed statement is held by every node of a simulation: one Peer and record for all.
    const shared = record !== undefined && kind === 'tsp2p' ? sharedIdentity(peer, record) : undefined;
    if (shared !== undefined) ({ peer, record } = shared);
    const member = memberRow(
      {
        peer,
        kind,
        state: update.state,
        incarnation: update.inc,
        lastSeen: cur?.lastSeen ?? now,
        stateSince: prev === update.state ? (cur?.stateSince ?? now) : now,
        record,
      },
      cur,
      shared,
    );
    this.#table.set(member);
    if (!this.#seeding) this.#queue.enqueue(memberUpdate(member, update.by));

    const next = update.state;
    if (next !== 'suspect') this.#clearSuspicion(update.id);
    if (prev === undefined || !isLive(prev)) {
      if (next === 'alive' || next === 'suspect') this.#o.emit('member:join', member.peer);
      if (next === 'suspect') this.#startSuspicion(member, update.by);
      return true;
    }
    // prev is alive or suspect.
    switch (next) {
      case 'alive':
        if (prev === 'suspect' || addressChanged) this.#o.emit('member:update', member.peer);
        break;
      case 'suspect':
        if (prev === 'alive') this.#o.emit('member:suspect', member.peer);
        this.#startSuspicion(member, update.by);
        break;
      case 'dead':
        this.#o.emit('member:fail', member.peer);
        break;
      case 'left':
        this.#o.emit('member:leave', member.peer);
        break;
    }
    return true;
  }

  /**
   * For simulations: starts this node in a network whose converged view it is given, as if it
   * had joined long ago and heard every update since. Each update goes through {@link apply}
   * (the same checks as gossip: `judgeNews`, the record signature, room in the table; an update
   * about this node is news about itself), and fires its member events, but none is queued for
   * gossip: in a converged network everyone holds it already. Returns how many records changed.
   *
   * What it skips is the traffic that would have brought the view: the joins, the gossip and the
   * push-pulls (`npm run bench -- sim-membership`, which starts 10,000 nodes this way).
   */
  seed(updates: readonly MemberUpdate[]): number {
    this.#active = true;
    this.#seeding = true;
    let changed = 0;
    try {
      for (const u of updates) if (this.apply(u)) changed++;
    } finally {
      this.#seeding = false;
    }
    return changed;
  }

  /** Applies a batch of updates (piggybacked, or a sync's full state). */
  applyAll(updates: readonly MemberUpdate[] | undefined): void {
    if (updates === undefined) return;
    for (const u of updates) this.apply(u);
  }

  /**
   * Updates to piggyback on one outgoing message.
   *
   * @param heard - when answering a request: the updates it carried. Its sender holds those, so
   *   they are not sent back (nor counted as sent).
   */
  piggyback(max = this.#o.timings.maxPiggyback, heard?: readonly MemberUpdate[]): MemberUpdate[] {
    const limit = retransmitLimit(this.#o.timings.retransmitMult, this.liveCount + 1);
    if (heard === undefined || heard.length === 0 || this.#queue.size === 0)
      return this.#queue.take(max, limit);
    const held = new Map<string, MemberUpdate>();
    for (const u of heard) held.set(u.id, u);
    return this.#queue.take(max, limit, held);
  }

  /** Most updates in one gossip message: four times what rides on a probe. */
  get gossipCapacity(): number {
    return 4 * this.#o.timings.maxPiggyback;
  }

  /** Whether gossip is waiting to be sent. */
  get hasGossip(): boolean {
    return this.#queue.size > 0;
  }

  /**
   * Calls `listener` whenever an update is queued for gossip (the failure detector schedules a
   * gossip round then, and none while there is nothing to say). One listener at a time; returns
   * the function that removes it.
   */
  watchNews(listener: () => void): () => void {
    this.#newsListener = listener;
    return () => {
      if (this.#newsListener === listener) this.#newsListener = undefined;
    };
  }

  /** How many updates wait to be gossiped (for metrics). */
  get gossipQueued(): number {
    return this.#queue.size;
  }

  /** The full state for a push-pull sync: this node, and every record it holds. */
  state(): MemberUpdate[] {
    return [this.selfUpdate(), ...this.#table.all().map((m) => memberUpdate(m))];
  }

  /**
   * The digest of {@link Membership.state}: two nodes with equal digests hold the same records,
   * so a push-pull between them has nothing to exchange. See {@link stateDigest}.
   */
  digest(): string {
    // Asked on every push-pull and reconnect, both ends: kept while neither the table nor this
    // node's incarnation changed, and made from the records without building the state.
    const version = this.#table.version;
    if (this.#digest?.version !== version || this.#digest.inc !== this.#inc) {
      const lines = [digestLine(this.#o.self.id, 'alive', this.#inc, this.#inc)];
      for (const m of this.#table.all()) {
        const r = m.record;
        const signed = r?.sig !== undefined && r.key !== undefined;
        lines.push(digestLine(m.peer.id, m.state, m.incarnation, signed ? r.inc : m.incarnation));
      }
      this.#digest = { version, inc: this.#inc, digest: digestOf(lines) };
    }
    return this.#digest.digest;
  }

  #digest: { readonly version: number; readonly inc: number; readonly digest: string } | undefined;

  /** Forgets dead and departed members whose retention time has passed. */
  reap(): void {
    const now = this.#o.clock.now();
    const t = this.#o.timings;
    for (const m of this.#table.tombstones()) {
      const keep =
        m.state === 'dead'
          ? t.deadRetentionMs
          : m.state === 'left'
            ? t.leftRetentionMs
            : Number.POSITIVE_INFINITY;
      if (now - m.stateSince >= keep) {
        this.#table.remove(m.peer.id);
        this.#forget(m);
      }
    }
  }

  /**
   * Dead and departed members whose records were reaped: their last incarnation, and where a dead
   * one was. News about one of them at or below that incarnation, from anyone but the member
   * itself, is stale (a push-pull from a node that was away, a late gossip) and must not bring a
   * zombie back. A member that really returns says so itself. Bounded: the oldest are dropped.
   */
  readonly #forgotten = new Map<string, Forgotten>();

  #forget(m: Member): void {
    const id = m.peer.id;
    this.#forgotten.delete(id);
    if (this.#forgotten.size >= FORGOTTEN_MAX) {
      const oldest = this.#forgotten.keys().next();
      if (oldest.done !== true) this.#forgotten.delete(oldest.value);
    }
    // A failed member's address is kept to try again (reconnect): a partition that outlasted the
    // reap heals only if someone dials across it. A departed one left on purpose.
    const where = m.state === 'dead' && m.kind === 'tsp2p' ? m.peer : undefined;
    this.#forgotten.set(id, { inc: m.incarnation, where });
  }

  /**
   * The reaped failed members, as dead records at their last address: the reconnect loop tries
   * them too (bounded by the number remembered).
   */
  forgottenFailed(): Member[] {
    const out: Member[] = [];
    for (const [id, f] of this.#forgotten) {
      if (f.where === undefined || this.#table.get(id) !== undefined) continue;
      out.push({
        peer: f.where,
        kind: 'tsp2p',
        state: 'dead',
        incarnation: f.inc,
        lastSeen: 0,
        stateSince: 0,
      });
    }
    return out;
  }

  /** Empties the view (on this node's own leave). Its incarnation is kept. */
  clear(): void {
    for (const s of this.#suspicions.values()) s.timer.cancel();
    this.#suspicions.clear();
    this.#table.clear();
    this.#queue.clear();
  }

  /**
   * This node leaves: the view is emptied. Its incarnation stays the one its leave is recorded
   * at until it joins again (then it is raised, so that its return outranks the leave): whatever
   * it still sends meanwhile (an answer, a request that was in flight) cannot undo the leave.
   */
  leaveNetwork(): void {
    if (this.#active) this.#left = true;
    this.#active = false;
    this.clear();
  }

  /** Stops every timer. */
  close(): void {
    this.clear();
  }

  /**
   * The highest incarnation of news about this node that it refutes or adopts: one step above
   * its own, or what a run of it started now may find others hold of its last one
   * ({@link RESTART_REACH}), whichever is higher.
   */
  #selfReach(): number {
    return Math.max(this.#inc + INC_STEP, startIncarnation(wallTime(this.#o.clock)) + RESTART_REACH);
  }

  #aboutSelf(update: MemberUpdate): boolean {
    // News beyond what anyone can hold of this node changes nothing anywhere: refuting it would
    // only spend incarnations. Within reach, it may be this node's last run (see RESTART_REACH).
    if (update.inc > this.#selfReach()) return false;
    const self = this.#o.self;
    const sameIdentity =
      update.address === self.address &&
      update.port === self.port &&
      (update.name || undefined) === self.name &&
      update.kind === undefined &&
      sameRecordFields(update, this.#fields);
    if (update.state === 'alive' && sameIdentity) {
      // An entry point raised our incarnation on a rejoin: adopt it.
      if (update.inc > this.#inc) this.#inc = update.inc;
      return false;
    }
    // Someone believes this node is suspect, dead or gone, or elsewhere, or named or tagged
    // otherwise: refute with a higher incarnation, and this node's own signed record.
    if (update.inc >= this.#inc) {
      const inc = update.inc + 1;
      if (inc > MAX_INCARNATION) return false;
      this.#inc = inc;
      this.#queue.enqueue(this.selfUpdate());
      if (update.state === 'suspect' || update.state === 'dead') this.#o.onRefute?.();
      this.#o.logger.info('refuted news of this node', {
        state: update.state,
        inc: this.#inc,
        ...(sameIdentity ? {} : { address: `${update.address}:${update.port}` }),
      });
      return true;
    }
    return false;
  }

  /** Whether the update's record is its subject's signature (`undefined`: it carries none). */
  #signed(update: MemberUpdate, cur: Member | undefined): boolean | undefined {
    if (update.rsig === undefined || update.key === undefined || update.kind === 'gop2p') return undefined;
    const r = cur?.record;
    // The record this node holds, already checked: the same signature over the same fields.
    if (
      r?.sig === update.rsig &&
      r.key === update.key &&
      r.inc === (update.rinc ?? update.inc) &&
      cur !== undefined &&
      update.address === cur.peer.address &&
      update.port === cur.peer.port &&
      (update.name || undefined) === cur.peer.name
    ) {
      return true;
    }
    return this.#o.records.verify(recordOf(update), update.key, update.rsig);
  }

  /** The member's identity moved on (a newer record) while its state news is not newer. */
  #restate(cur: Member, update: MemberUpdate, record: MemberRecord | undefined): boolean {
    const peer = peerOfUpdate(update);
    const member = memberRow({ ...fieldsOf(cur), peer, record }, cur);
    this.#table.set(member);
    this.#queue.enqueue(memberUpdate(member));
    if (isLive(member.state)) this.#o.emit('member:update', member.peer);
    return true;
  }

  /** `id`, on its own word, is at `peer`'s address: a live other holder of it is probed now. */
  #contest(id: string, peer: Peer): void {
    const holder = this.#table.getByAddress(peer.address, peer.port);
    if (holder === undefined || holder.peer.id === id || !isLive(holder.state)) return;
    this.#o.logger.info('a member states the address of another: probing the holder', {
      holder: holder.peer.id,
      newcomer: id,
    });
    this.#o.onContest?.(holder);
  }

  /** gop2p members refused already (logged once each). */
  readonly #refusedGop2p = new Set<string>();

  #refuseGop2p(update: MemberUpdate): void {
    if (this.#refusedGop2p.has(update.id)) return;
    if (this.#refusedGop2p.size >= 1024) this.#refusedGop2p.clear();
    this.#refusedGop2p.add(update.id);
    this.#o.logger.warn(
      "not admitting a gop2p member: this node does not run with compat: 'gop2p', so it would refuse its messages",
      { id: update.id },
    );
  }

  #startSuspicion(member: Member, by: string | undefined): void {
    const existing = this.#suspicions.get(member.peer.id);
    if (existing !== undefined && existing.inc === member.incarnation) {
      if (by !== undefined) this.#confirm(member, by);
      return;
    }
    existing?.timer.cancel();
    const now = this.#o.clock.now();
    const suspicion: Suspicion = {
      start: now,
      inc: member.incarnation,
      // As in memberlist, the originator is excluded from the count: the timeout starts at max.
      from: by,
      confirmers: new Set(),
      strong: false,
      timer: { cancel() {} },
    };
    this.#suspicions.set(member.peer.id, suspicion);
    this.#schedule(member.peer.id, suspicion);
  }

  /**
   * Whether this node suspects the member `id` with the `indirectProbes` (k) confirmations
   * Lifeguard expects: its suspicion is at its shortest timeout, and takes no more confirmations.
   */
  confirmed(id: string): boolean {
    return this.#confirmed(this.#suspicions.get(id));
  }

  /**
   * Whether a suspicion has the `indirectProbes` (k) independent confirmations Lifeguard expects:
   * its timeout is at the minimum, and no more confirmations are taken or passed on (as
   * memberlist's suspicion timer does). Each one passed on is news that resets the update's
   * retransmissions in every queue it reaches: in a partition every member of one side confirms
   * every member of the other, and without the bound gossip would carry those confirmations for
   * the whole suspicion.
   */
  #confirmed(s: Suspicion | undefined): boolean {
    return s !== undefined && s.confirmers.size >= this.#o.timings.indirectProbes;
  }

  #confirm(member: Member, by: string): void {
    const s = this.#suspicions.get(member.peer.id);
    if (s === undefined || by === this.#o.self.id || by === s.from || s.confirmers.has(by)) return;
    if (this.#confirmed(s)) return;
    s.confirmers.add(by);
    // Passed on one round of `retransmitMult` fewer than other news (6 times instead of 9 at 100
    // to 999 members, 8 instead of 12 from 1,000; as often below 10): the suspicion itself spread
    // in full already, and a confirmation only shortens timeouts. The confirmer's own word
    // (`suspect()`) goes out in full. In a partition every member of one side passes on k
    // confirmations of every member of the other: most of the gossip of the split.
    const limit = retransmitLimit(this.#o.timings.retransmitMult, this.liveCount + 1);
    this.#queue.enqueue({ ...memberUpdate(member), by }, relaySent(this.#o.timings.retransmitMult, limit));
    this.#schedule(member.peer.id, s);
  }

  #schedule(id: string, s: Suspicion): void {
    s.timer.cancel();
    const t = this.#o.timings;
    const { minMs, maxMs } = suspicionBounds(t, this.liveCount + 1);
    const timeout = s.strong
      ? Math.min(minMs, t.refusedSuspicionMs)
      : suspicionTimeout(minMs, maxMs, s.confirmers.size, t.indirectProbes);
    const wait = Math.max(0, s.start + timeout - this.#o.clock.now());
    s.timer = this.#o.clock.setTimeout(() => this.#expire(id, s), wait);
  }

  #expire(id: string, s: Suspicion): void {
    if (this.#suspicions.get(id) !== s) return;
    this.#suspicions.delete(id);
    const cur = this.#table.get(id);
    if (cur === undefined || cur.state !== 'suspect' || cur.incarnation !== s.inc) return;
    this.#o.logger.info('suspect declared dead', { id, confirmations: s.confirmers.size });
    this.apply(toUpdate(cur.peer, 'dead', cur.incarnation, cur.kind));
  }

  #clearSuspicion(id: string): void {
    const s = this.#suspicions.get(id);
    if (s === undefined) return;
    s.timer.cancel();
    this.#suspicions.delete(id);
  }
}

/**
 * The digest of a membership state (PROTOCOL.md, sync): SHA-256 over one line per record,
 * `id state inc rinc\n` (`rinc`: the record's own incarnation, `inc` when absent), sorted by id
 * as UTF-16 code units; the first 18 bytes, base64url (24 characters).
 */
export function stateDigest(updates: readonly MemberUpdate[]): string {
  return digestOf(updates.map((u) => digestLine(u.id, u.state, u.inc, u.rinc ?? u.inc)));
}

function digestLine(id: string, state: MemberState, inc: number, rinc: number): string {
  return `${id} ${state} ${inc} ${rinc}\n`;
}

function digestOf(lines: string[]): string {
  lines.sort();
  const hash = createHash('sha256');
  for (const line of lines) hash.update(line);
  return hash.digest().subarray(0, 18).toString('base64url');
}

/** A member record as an update, with the member's signed self-record when this node holds one. */
export function memberUpdate(m: Member, by?: string): MemberUpdate {
  const u = toUpdate(m.peer, m.state, m.incarnation, m.kind);
  const r = m.record;
  const out: { -readonly [K in keyof MemberUpdate]: MemberUpdate[K] } = u;
  if (r?.sig !== undefined && r.key !== undefined) {
    out.key = r.key;
    out.rsig = r.sig;
    if (r.inc !== m.incarnation) out.rinc = r.inc;
  }
  if (by !== undefined && m.state === 'suspect') out.by = by;
  return out;
}

/** A member's own signed statement of its identity, as its envelope's `from` carries it. */
export interface SignedFields {
  readonly key?: string | undefined;
  readonly rsig?: string | undefined;
  readonly rinc?: number | undefined;
  readonly tags?: Record<string, string> | undefined;
  readonly topics?: string[] | undefined;
}

/**
 * The record fields of `f` for an update at incarnation `updateInc` (only those present).
 *
 * @param inc - the incarnation `f` came with (its `rinc` defaults to it)
 */
export function signedFields(f: SignedFields, inc: number, updateInc = inc): Partial<MemberUpdate> {
  const out: { -readonly [K in keyof MemberUpdate]?: MemberUpdate[K] } = {};
  if (f.key !== undefined && f.rsig !== undefined) {
    out.key = f.key;
    out.rsig = f.rsig;
    const rinc = f.rinc ?? inc;
    if (rinc !== updateInc) out.rinc = rinc;
  }
  if (f.tags !== undefined) out.tags = f.tags;
  if (f.topics !== undefined) out.topics = f.topics;
  return out;
}

/**
 * Whether `u` states exactly what this node holds of `cur`, with the record it holds (or with no
 * record): same state and incarnation, same identity fields, the same signature over them or
 * none. Such news is accepted by `judgeNews` with the record held, is not newer, and changes
 * nothing. A suspicion is left out (another node's suspicion is a confirmation), and so is a
 * gop2p member (its id is its address).
 */
function isHeldAlready(u: MemberUpdate, cur: Member): boolean {
  if (u.state !== cur.state || u.inc !== cur.incarnation || u.state === 'suspect') return false;
  return isHeldRecord(u, cur);
}

/**
 * Whether `u` states the identity this node holds of `cur` with the record it holds (or with no
 * record), whatever its state and incarnation: such news is accepted by `judgeNews` with the
 * record held, and changes the identity in nothing. A gop2p member is left out.
 */
function isHeldRecord(u: MemberUpdate, cur: Member): boolean {
  if (u.kind !== undefined || cur.kind !== 'tsp2p') return false;
  if (u.rsig !== undefined && u.key !== undefined) {
    const r = cur.record;
    if (r?.sig !== u.rsig || r.key !== u.key || r.inc !== (u.rinc ?? u.inc)) return false;
  }
  return sameIdentity(u, cur);
}

/**
 * How many of its `limit` transmissions a confirmation passed on counts as made already:
 * `limit / retransmitMult` (one ⌈log10(n + 1)⌉), while it still goes out at least
 * `retransmitMult` times.
 */
function relaySent(retransmitMult: number, limit: number): number {
  return Math.max(0, Math.min(limit / retransmitMult, limit - retransmitMult));
}

/** Compares the state part of news: (incarnation, rank of state). */
function compareState(u: MemberUpdate, m: Member): number {
  if (u.inc !== m.incarnation) return u.inc - m.incarnation;
  return STATE_RANK[u.state] - STATE_RANK[m.state];
}

function toUpdate(peer: Peer, state: MemberState, inc: number, kind?: PeerKind): MemberUpdate {
  const u: { -readonly [K in keyof MemberUpdate]: MemberUpdate[K] } = {
    id: peer.id,
    address: peer.address,
    port: peer.port,
    state,
    inc,
  };
  if (peer.name !== undefined) u.name = peer.name;
  if (kind === 'gop2p') u.kind = 'gop2p';
  if (peer.tags !== undefined) u.tags = { ...peer.tags };
  if (peer.topics !== undefined) u.topics = [...peer.topics];
  return u;
}

/** `u` at incarnation `inc`, its record signature still checking at the incarnation it was made at. */
function raisedTo(u: MemberUpdate, inc: number): MemberUpdate {
  return { ...u, inc, ...(u.rsig !== undefined ? { rinc: u.rinc ?? u.inc } : {}) };
}

function peerOfUpdate(u: MemberUpdate): Peer {
  const id = u.kind === 'gop2p' ? addressId(u.address, u.port) : u.id;
  return peerOf(id, u.address, u.port, u.name, u);
}

/** A member row's fields, to build a changed copy of it (a row's own fields are not all its own properties). */
function fieldsOf(m: Member): MemberFields {
  return {
    peer: m.peer,
    kind: m.kind,
    state: m.state,
    incarnation: m.incarnation,
    lastSeen: m.lastSeen,
    stateSince: m.stateSince,
    record: m.record,
  };
}
