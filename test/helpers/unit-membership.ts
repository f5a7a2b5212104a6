/**
 * Unit-test helpers for the membership layer: peers, updates, and a {@link Membership} driven by a
 * {@link ManualClock} whose events and log lines are recorded.
 */

import { ManualClock } from '../../src/clock.js';
import type { LogFields, Logger } from '../../src/logger.js';
import type { MemberState, PeerKind } from '../../src/membership/member-table.js';
import { type MemberEvent, Membership } from '../../src/membership/membership.js';
import type { MemberUpdate } from '../../src/membership/merge.js';
import { LAN, type MembershipTimings } from '../../src/membership/timings.js';
import { addressId, type Peer } from '../../src/peer.js';
import { SeededRandom } from '../../src/random.js';

/** The address every test peer listens at. */
export const HOST = '127.0.0.1';

/** A test peer at 127.0.0.1:`port`. */
export function peer(id: string, port: number, name?: string): Peer {
  return name === undefined ? { id, address: HOST, port } : { id, address: HOST, port, name };
}

/** An update about `p`. */
export function update(
  p: Peer,
  state: MemberState,
  inc: number,
  extra: { by?: string; kind?: 'gop2p' } = {},
): MemberUpdate {
  const u: MemberUpdate = { id: p.id, address: p.address, port: p.port, state, inc, ...extra };
  return p.name === undefined ? u : { ...u, name: p.name };
}

/** A gop2p peer: its id is its address. */
export function gopPeer(port: number): Peer {
  return { id: addressId(HOST, port), address: HOST, port };
}

/** One recorded member event. */
export interface RecordedEvent {
  readonly event: MemberEvent;
  readonly id: string;
  readonly peer: Peer;
}

/** One recorded log line. */
export interface RecordedLog {
  readonly level: 'debug' | 'info' | 'warn' | 'error';
  readonly message: string;
  readonly fields: LogFields | undefined;
}

/** A logger that keeps every line. */
export function recordingLogger(): { logger: Logger; lines: RecordedLog[] } {
  const lines: RecordedLog[] = [];
  const at =
    (level: RecordedLog['level']) =>
    (message: string, fields?: LogFields): void => {
      lines.push({ level, message, fields });
    };
  return { logger: { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') }, lines };
}

/** A membership under test, with its clock and what it reported. */
export interface MembershipHarness {
  readonly self: Peer;
  readonly clock: ManualClock;
  readonly random: SeededRandom;
  readonly timings: MembershipTimings;
  readonly membership: Membership;
  readonly events: RecordedEvent[];
  readonly logs: RecordedLog[];
  /** The recorded events as `'event id'` strings, then forgets them. */
  take(): string[];
  /** Joins `peers` (alive, incarnation 0) and forgets the events that fired. */
  joinAll(peers: readonly Peer[], kind?: PeerKind): void;
}

/** Options of {@link membershipHarness}. */
export interface MembershipHarnessOptions {
  readonly self?: Peer;
  readonly timings?: Partial<MembershipTimings>;
  readonly maxMembers?: number;
  readonly seed?: number;
  readonly clock?: ManualClock;
  /** Whether gop2p members may join (compat mode). @default true */
  readonly admitGop2p?: boolean;
}

/** A {@link Membership} on a manual clock, recording its events. */
export function membershipHarness(options: MembershipHarnessOptions = {}): MembershipHarness {
  const self = options.self ?? peer('self', 4000, 'me');
  const clock = options.clock ?? new ManualClock(1_000);
  const random = new SeededRandom(options.seed ?? 1);
  const timings: MembershipTimings = Object.freeze({ ...LAN, ...options.timings });
  const { logger, lines } = recordingLogger();
  const events: RecordedEvent[] = [];
  const membership = new Membership({
    self,
    clock,
    random,
    timings,
    logger,
    maxMembers: options.maxMembers ?? 1_000,
    ...(options.admitGop2p !== undefined ? { admitGop2p: options.admitGop2p } : {}),
    emit: (event, p) => {
      events.push({ event, id: p.id, peer: p });
    },
  });
  return {
    self,
    clock,
    random,
    timings,
    membership,
    events,
    logs: lines,
    take() {
      const out = events.map((e) => `${e.event} ${e.id}`);
      events.length = 0;
      return out;
    },
    joinAll(peers, kind = 'tsp2p') {
      for (const p of peers) membership.join(p, kind);
      events.length = 0;
    },
  };
}

/** The view of a membership as `id → 'state@inc'`, sorted by id. */
export function viewOf(membership: Membership): Map<string, string> {
  const entries = membership
    .all()
    .map((m) => [m.peer.id, `${m.state}@${m.incarnation}`] as const)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return new Map(entries);
}
