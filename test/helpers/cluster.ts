/**
 * Clusters of peer processes for the membership integration tests: spawn many, read their
 * views, wait until every view is complete, and query the member events each one reported.
 *
 * @module
 */

import type { TestContext } from 'node:test';
import { type MemberStateJson, type PeerEvent, PeerProcess } from './spawn-peer.js';
import { waitFor } from './wait.js';

/** Options of {@link spawnCluster}. */
export interface ClusterOptions {
  /** Labels are `${label}${i}`. @default 'p' */
  readonly label?: string;
  /** How many children start at once (each one compiles TypeScript at start). @default 4 */
  readonly concurrency?: number;
  /** Per child: `NodeOptions` overrides (merged over the shared ones). */
  readonly perPeer?: (i: number) => Record<string, unknown>;
  /** Per child: a command prefix, e.g. `['ip', 'netns', 'exec', 'ns1']`. */
  readonly wrap?: (i: number) => readonly string[] | undefined;
  /** Give up waiting for each child's `ready` after this many ms. @default 60000 */
  readonly readyTimeoutMs?: number;
}

/**
 * Spawns `count` peer processes, a few at a time, and resolves once all listen. Each is killed
 * when `t` ends (see {@link PeerProcess.spawn}).
 */
export async function spawnCluster(
  t: TestContext,
  count: number,
  options: Record<string, unknown>,
  cluster: ClusterOptions = {},
): Promise<PeerProcess[]> {
  const peers: PeerProcess[] = new Array(count);
  const concurrency = cluster.concurrency ?? 4;
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < count) {
      const i = next++;
      const wrap = cluster.wrap?.(i);
      peers[i] = await PeerProcess.spawn(
        t,
        { ...options, ...cluster.perPeer?.(i) },
        {
          label: `${cluster.label ?? 'p'}${i}`,
          readyTimeoutMs: cluster.readyTimeoutMs ?? 60_000,
          ...(wrap !== undefined ? { wrap } : {}),
        },
      );
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
  return peers;
}

/** What is wrong with one node's view, or `undefined` when it is complete. */
export function viewProblem(
  self: PeerProcess,
  view: readonly MemberStateJson[],
  expected: readonly PeerProcess[],
  states: readonly MemberStateJson['state'][] = ['alive'],
): string | undefined {
  const byId = new Map(view.map((m) => [m.peer.id, m]));
  const problems: string[] = [];
  for (const q of expected) {
    if (q === self) continue;
    const m = byId.get(q.self.id);
    if (m === undefined) problems.push(`${q.label} missing`);
    else if (!states.includes(m.state)) problems.push(`${q.label} ${m.state}@${m.incarnation}`);
  }
  const expectedIds = new Set(expected.map((q) => q.self.id));
  for (const m of view) {
    if (!expectedIds.has(m.peer.id) && (m.state === 'alive' || m.state === 'suspect')) {
      problems.push(`unexpected live member ${m.peer.address}:${m.peer.port} ${m.state}`);
    }
  }
  return problems.length === 0 ? undefined : `${self.label}: ${problems.join(', ')}`;
}

/** Options of {@link waitForViews}. */
export interface ViewWaitOptions {
  readonly timeoutMs: number;
  /** The states that count as "in the view". @default ['alive'] */
  readonly states?: readonly MemberStateJson['state'][];
  /** Poll every this many ms (each poll asks every process). @default 250 */
  readonly intervalMs?: number;
  readonly message?: string;
}

/**
 * Waits until each of `peers` holds every other one of `peers` in one of `states`, and no
 * live member beyond them. On timeout, the error lists every incomplete view.
 */
export async function waitForViews(peers: readonly PeerProcess[], options: ViewWaitOptions): Promise<void> {
  let last: string[] = [];
  await waitFor(
    async () => {
      const views = await Promise.all(peers.map((p) => p.memberStates()));
      last = peers
        .map((p, i) => viewProblem(p, views[i]!, peers, options.states))
        .filter((x): x is string => x !== undefined);
      return last.length === 0;
    },
    {
      timeoutMs: options.timeoutMs,
      intervalMs: options.intervalMs ?? 250,
      message: () =>
        `${options.message ?? 'complete views'}; ${last.length} incomplete:\n  ${last.slice(0, 20).join('\n  ')}`,
    },
  );
}

/** The member events `peer` reported about the member with id `about` (of `kind`, if given). */
export function memberEvents(peer: PeerProcess, about: string, kind?: string): PeerEvent[] {
  return peer.events.filter(
    (e) => e.event.startsWith('member:') && e.peer?.id === about && (kind === undefined || e.event === kind),
  );
}

/** Every `member:fail` and `member:leave` event of `peer`, as `'event label'` strings. */
export function departures(peer: PeerProcess, all: readonly PeerProcess[]): string[] {
  const label = (id: string | undefined): string => all.find((q) => q.self.id === id)?.label ?? String(id);
  return peer.events
    .filter((e) => e.event === 'member:fail' || e.event === 'member:leave')
    .map((e) => `${e.event} ${label(e.peer?.id)}`);
}

/** A one-line summary of what `peer` reported about `about`, for failure messages. */
export function eventTrail(peer: PeerProcess, about: PeerProcess): string {
  return memberEvents(peer, about.self.id)
    .map((e) => e.event.slice('member:'.length))
    .join(' → ');
}

/**
 * Every member event about `about` that any of `peers` reported, in time order, one per line:
 * `+ms label event@port` (ms since `t0`, a `Date.now()` value). For failure messages.
 */
export function timeline(peers: readonly PeerProcess[], about: string | undefined, t0: number): string {
  const rows: { at: number; line: string }[] = [];
  for (const p of peers) {
    for (const e of p.events) {
      if (!e.event.startsWith('member:') || (about !== undefined && e.peer?.id !== about)) continue;
      const at = typeof e.at === 'number' ? e.at : Number.NaN;
      const who = peers.find((q) => q.self.id === e.peer?.id)?.label ?? `:${e.peer?.port}`;
      rows.push({ at, line: `+${at - t0} ${p.label} ${e.event} ${who}` });
    }
  }
  return rows
    .sort((a, b) => a.at - b.at)
    .map((r) => r.line)
    .join('\n');
}
