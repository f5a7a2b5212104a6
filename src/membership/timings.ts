/**
 * The failure detector's and the anti-entropy's timings: options, presets and formulas.
 *
 * @module
 */

/** Every timing of membership, in ms unless said otherwise. */
export interface MembershipTimings {
  /** How often a member is probed (one member per period, round-robin). */
  readonly probeIntervalMs: number;
  /** How long a direct probe waits for its answer before asking others to probe. */
  readonly probeTimeoutMs: number;
  /** `k`: how many other members are asked to probe indirectly when a direct probe fails. */
  readonly indirectProbes: number;
  /**
   * Suspicion timeout multiplier. A suspect is declared dead after between
   * `min = suspicionMult × max(1, log10(n)) × probeIntervalMs` and
   * `max = suspicionMaxMult × min`: it starts at `max` and shrinks toward `min` as independent
   * confirmations arrive, `max − (max − min) × log(c + 1) / log(k + 1)` after `c` of the `k`
   * expected ones (Lifeguard).
   */
  readonly suspicionMult: number;
  /** See {@link MembershipTimings.suspicionMult}. */
  readonly suspicionMaxMult: number;
  /**
   * The suspicion timeout on strong evidence: the direct probe and every indirect probe were
   * refused a connection (the host is up, nothing listens: the process crashed). It is the time
   * left for a process restarted at once to rejoin and refute, so it stays above a restart's
   * join round trip; it is never longer than the shortest ordinary suspicion. On LAN timings,
   * `probe wait (≤ one period, less: a refused request to the member probes it at once) +
   * refusedSuspicionMs + gossip spread (a few gossip periods)` keeps a crash's detection by
   * every member under 2 s.
   */
  readonly refusedSuspicionMs: number;
  /**
   * Each update is gossiped `retransmitMult × ⌈log10(n + 1)⌉` times. memberlist uses 4 over UDP,
   * where a packet can vanish; over HTTP a request either arrives or fails visibly, and
   * push-pull repairs the rare node that gossip missed, so the LAN preset uses 3 (WAN keeps 4).
   * A confirmation of a suspicion passed on by a third node goes out `⌈log10(n + 1)⌉` times fewer
   * (from 10 members): the suspicion itself spread in full.
   */
  readonly retransmitMult: number;
  /** How often queued updates are gossiped to `gossipNodes` random members. */
  readonly gossipIntervalMs: number;
  /** How many random members each gossip round goes to. */
  readonly gossipNodes: number;
  /** Most updates piggybacked on one probe message; a gossip message carries four times as many. */
  readonly maxPiggyback: number;
  /**
   * How often a full state exchange (push-pull sync) runs with one random member. For more
   * than 32 members it stretches by `⌈log2(n) − log2(32)⌉ + 1`, as memberlist's does.
   */
  readonly pushPullIntervalMs: number;
  /** How often a dead member is contacted to see whether it is back (partition healing). */
  readonly reconnectIntervalMs: number;
  /** How long dead members are remembered (and retried) before being forgotten. */
  readonly deadRetentionMs: number;
  /** How long members that left are remembered, so that stale news cannot revive them. */
  readonly leftRetentionMs: number;
  /**
   * The most a node's own health can stretch its probe period and timeouts: after failed
   * probes it waits `(1 + awareness)` times as long, up to `(1 + maxAwareness)` (Lifeguard's
   * local health awareness).
   */
  readonly maxAwareness: number;
  /** How many listed members a newcomer announces itself to directly; gossip tells the rest. */
  readonly announceLimit: number;
}

/**
 * Timings for a local network: memberlist's LAN defaults, except push-pull every 10 s rather
 * than 30 s, and a suspicion multiplier of 5 rather than 4 (a refutation over HTTP costs a round
 * trip more than over UDP; with 10% loss the simulation showed rare false deaths at 4). Gossip alone leaves a node uninformed now and then (each update reaches each node
 * with probability about 1 − e^−retransmits); push-pull is what repairs that, so it pays to run
 * it more often. A full state is about 100 bytes per member.
 */
export const LAN: MembershipTimings = Object.freeze({
  probeIntervalMs: 1_000,
  probeTimeoutMs: 500,
  indirectProbes: 3,
  suspicionMult: 5,
  suspicionMaxMult: 6,
  refusedSuspicionMs: 500,
  retransmitMult: 3,
  gossipIntervalMs: 200,
  gossipNodes: 3,
  maxPiggyback: 32,
  pushPullIntervalMs: 10_000,
  reconnectIntervalMs: 10_000,
  deadRetentionMs: 24 * 3_600_000,
  leftRetentionMs: 5 * 60_000,
  maxAwareness: 8,
  announceLimit: 64,
});

/** Timings for networks across the internet (memberlist's WAN defaults). */
export const WAN: MembershipTimings = Object.freeze({
  ...LAN,
  retransmitMult: 4,
  probeIntervalMs: 5_000,
  probeTimeoutMs: 3_000,
  suspicionMult: 6,
  refusedSuspicionMs: 2_000,
  gossipIntervalMs: 500,
  gossipNodes: 4,
  pushPullIntervalMs: 60_000,
  reconnectIntervalMs: 30_000,
});

/** Timings for nodes on one machine, and for tests: fast detection. */
export const LOCAL: MembershipTimings = Object.freeze({
  ...LAN,
  probeIntervalMs: 200,
  probeTimeoutMs: 100,
  suspicionMult: 3,
  refusedSuspicionMs: 200,
  gossipIntervalMs: 50,
  pushPullIntervalMs: 2_000,
  reconnectIntervalMs: 1_000,
});

/** The named presets. */
export const PRESETS = Object.freeze({ lan: LAN, wan: WAN, local: LOCAL });

/** The bounds of the suspicion timeout for a network of `n` members. */
export function suspicionBounds(t: MembershipTimings, n: number): { minMs: number; maxMs: number } {
  const minMs = t.suspicionMult * Math.max(1, Math.log10(Math.max(n, 1))) * t.probeIntervalMs;
  return { minMs, maxMs: t.suspicionMaxMult * minMs };
}

/** The suspicion timeout after `confirmations` of `expected` independent confirmations. */
export function suspicionTimeout(
  minMs: number,
  maxMs: number,
  confirmations: number,
  expected: number,
): number {
  if (expected < 1) return minMs;
  const frac = Math.log(confirmations + 1) / Math.log(expected + 1);
  return Math.max(minMs, Math.floor(maxMs - (maxMs - minMs) * frac));
}

/** The push-pull period for a network of `n` members. */
export function pushPullInterval(t: MembershipTimings, n: number): number {
  if (n <= 32) return t.pushPullIntervalMs;
  return t.pushPullIntervalMs * (Math.ceil(Math.log2(n) - Math.log2(32)) + 1);
}
