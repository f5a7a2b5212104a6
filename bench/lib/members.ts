/**
 * The parent's side of the membership scenarios (`join`, `failure`, `idle`): processes that each
 * host one or more tsp2p nodes (`worker-members.ts`, under plain `node`), a network started
 * across them, joined all at once, and watched until every view is full.
 *
 * @module
 */

import { SeededRandom } from '../../dist/index.js';
import { Worker } from './cluster.js';
import { BenchError, UsageError } from './errors.js';
import { wallNow } from './payload.js';
import { bundledScript } from './plain.js';
import type { MemberCommands, MemberEventRecord } from './protocol.js';
import { median, round } from './stats.js';

export type MemberWorker = Worker<MemberCommands>;

/** The membership presets a scenario accepts. */
export const PRESET_NAMES = ['local', 'lan', 'wan'] as const;
export type PresetName = (typeof PRESET_NAMES)[number];

/** Reads `--preset`. */
export function presetFlag(values: Record<string, string | boolean | undefined>): PresetName {
  const p = values.preset;
  if (typeof p === 'string' && (PRESET_NAMES as readonly string[]).includes(p)) return p as PresetName;
  throw new UsageError(`--preset must be one of ${PRESET_NAMES.join(', ')}, got ${JSON.stringify(p)}`);
}

/** Reads `--seed` ('random' or a whole number). */
export function seedFlag(values: Record<string, string | boolean | undefined>): number {
  const s = values.seed;
  if (s === 'random' || s === undefined) return Math.floor(Math.random() * 0x7fffffff);
  if (typeof s === 'string' && /^\d+$/.test(s)) return Number(s) >>> 0;
  throw new UsageError(`--seed needs a whole number or 'random', got ${JSON.stringify(s)}`);
}

/** One node of the network: which worker hosts it, at which index there. */
export interface NodeRef {
  readonly worker: MemberWorker;
  readonly local: number;
  readonly id: string;
  readonly address: string;
}

/** How many nodes each of the processes hosts: `total` nodes, at most `perProcess` each. */
export function layout(total: number, perProcess: number): number[] {
  const counts: number[] = [];
  for (let left = total; left > 0; left -= perProcess) counts.push(Math.min(perProcess, left));
  return counts;
}

/** Forks `processes` membership workers, named `label#i`, and waits until all are ready. */
export async function spawnMemberWorkers(
  label: string,
  processes: number,
  execArgv: readonly string[] = [],
  firstIndex = 0,
): Promise<MemberWorker[]> {
  const script = await bundledScript('worker-members.ts');
  const workers = Array.from(
    { length: processes },
    (_, i) => new Worker<MemberCommands>(`${label}#${firstIndex + i}`, script, execArgv),
  );
  await Promise.all(workers.map((w) => w.ready));
  return workers;
}

/** Starts fresh nodes in every worker (`counts[i]` in worker `i`); returns them in order. */
export async function startNetwork(
  workers: readonly MemberWorker[],
  counts: readonly number[],
  options: Record<string, unknown>,
): Promise<NodeRef[]> {
  const size = counts.reduce((a, b) => a + b, 0);
  const started = await Promise.all(
    workers.map((w, i) => w.call('start', { count: counts[i]!, size, options })),
  );
  return started.flatMap((s, i) =>
    s.nodes.map((n, local) => ({ worker: workers[i]!, local, id: n.id, address: n.address })),
  );
}

/** What {@link joinAtOnce} measured. */
export interface JoinTimes {
  /** Wall-clock ms when every `connect()` began. */
  readonly at: number;
  /** When the last `connect()` returned, in ms after `at`. */
  readonly connectMs: number;
  /** Per node, when its view was first full, in ms after `at` (node 0 included). */
  readonly firstFullMs: readonly number[];
  /** When every view was full at once (and each has stayed full since), in ms after `at`. */
  readonly allFullMs: number;
}

/**
 * Every node but node 0 calls `connect()` at the same wall-clock instant, each through a random
 * node with a lower index (so the joins form a tree: the network is connected, yet most entry
 * points are joining themselves when asked). Resolves once every node holds all the others
 * alive, or fails after `timeoutMs`.
 */
export async function joinAtOnce(
  nodes: readonly NodeRef[],
  random: SeededRandom,
  timeoutMs: number,
): Promise<JoinTimes> {
  const entries = nodes.map((_, i) => (i === 0 ? null : nodes[Math.floor(random.next() * i)]!.address));
  const workers = [...new Set(nodes.map((n) => n.worker))];
  // Far enough ahead that every worker has the command before the instant.
  const at = wallNow() + 100 + 5 * workers.length;
  const connects = await Promise.all(
    workers.map((w) => {
      const mine = nodes.flatMap((n, i) => (n.worker === w ? [i] : []));
      return w.call('connect', { entries: mine.map((i) => entries[i]!), at });
    }),
  );
  const errors = connects.flatMap((c) => c.errors);
  if (errors.length > 0) throw new BenchError(`connect() failed: ${errors.slice(0, 3).join('; ')}`);
  const connectDone = Math.max(...connects.flatMap((c) => c.doneAt.filter((t): t is number => t !== null)));
  const full = await waitFull(nodes, timeoutMs);
  return {
    at,
    connectMs: connectDone - at,
    firstFullMs: full.firstFullAt.map((t) => t - at),
    allFullMs: full.allFullAt - at,
  };
}

/**
 * Polls every worker until every node holds all the others alive at the same time; resolves
 * with when each node's view was first full, and with the moment since which all have been
 * (wall-clock ms). Fails after `timeoutMs` naming the nodes still short.
 */
export async function waitFull(
  nodes: readonly NodeRef[],
  timeoutMs: number,
): Promise<{ firstFullAt: number[]; allFullAt: number }> {
  const workers = [...new Set(nodes.map((n) => n.worker))];
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const progress = new Map(
      await Promise.all(workers.map(async (w) => [w, await w.call('progress', {})] as const)),
    );
    const fullAt = nodes.map((n) => progress.get(n.worker)!.fullAt[n.local] ?? null);
    const fullSince = nodes.map((n) => progress.get(n.worker)!.fullSince[n.local] ?? null);
    if (fullSince.every((t) => t !== null)) {
      return { firstFullAt: fullAt as number[], allFullAt: Math.max(...(fullSince as number[])) };
    }
    if (performance.now() > deadline) {
      const short = nodes
        .map((n, i) => ({
          i,
          alive: progress.get(n.worker)!.alive[n.local]!,
          live: progress.get(n.worker)!.live[n.local]!,
        }))
        .filter((_, i) => fullSince[i] === null);
      // Alive against live: members held suspect (live, not alive) or not held at all.
      const detail = short
        .slice(0, 8)
        .map((s) => `node ${s.i} holds ${s.alive}/${nodes.length - 1} alive (${s.live} live)`)
        .join(', ');
      throw new BenchError(
        `${short.length} of ${nodes.length} nodes lack a full view after ${timeoutMs / 1000} s (${detail})`,
      );
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** A member event with the observing node's global index. */
export interface NetworkEvent extends MemberEventRecord {
  readonly observer: number;
}

/** Every member event every node saw, in time order. */
export async function collectEvents(nodes: readonly NodeRef[]): Promise<NetworkEvent[]> {
  const workers = [...new Set(nodes.map((n) => n.worker))];
  const byWorker = new Map(
    await Promise.all(workers.map(async (w) => [w, await w.call('events', {})] as const)),
  );
  const index = new Map(nodes.map((n, i) => [`${n.worker.name}/${n.local}`, i]));
  const all: NetworkEvent[] = [];
  for (const [w, events] of byWorker) {
    for (const e of events) {
      const observer = index.get(`${w.name}/${e.node}`);
      if (observer !== undefined) all.push({ ...e, observer });
    }
  }
  return all.sort((a, b) => a.at - b.at);
}

/** Median, max and min of some durations in ms, rounded. */
export function spread(ms: readonly number[]): { median_ms: number; max_ms: number; min_ms: number } {
  return {
    median_ms: round(median(ms), 1),
    max_ms: round(Math.max(...ms), 1),
    min_ms: round(Math.min(...ms), 1),
  };
}

export { SeededRandom };
