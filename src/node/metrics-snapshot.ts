/**
 * The live state `/metrics` reports, read from a node's parts at the moment it is asked.
 *
 * @module
 */

import type { MetricsSnapshot } from '../metrics/node-metrics.js';
import type { InboundGuard } from '../security/inbound-guard.js';
import type { Running } from './run.js';

/** What a snapshot is read from. */
export interface SnapshotSources {
  readonly started: boolean;
  readonly connected: boolean;
  readonly run: Running | undefined;
  /** The `messages()` iterators: open, buffered, dropped (see `Inboxes.stats()`). */
  readonly inboxes: { readonly iterators: number; readonly buffered: number; readonly dropped: number };
  /** The `message` listeners' lane (see `ListenerLane`). */
  readonly listeners: MetricsSnapshot['listeners'];
  readonly guard: InboundGuard;
}

/** The snapshot of a node's live state. */
export function metricsSnapshot(s: SnapshotSources): MetricsSnapshot {
  const run = s.run;
  const members = { alive: 0, suspect: 0, dead: 0, left: 0 };
  for (const m of run?.membership.all() ?? []) members[m.state]++;
  const d = run?.detector;
  return {
    started: s.started,
    connected: s.connected,
    members,
    ...(d !== undefined
      ? {
          detector: {
            ...d.stats,
            awareness: d.awareness,
            probeTimeoutMs: d.probeTimeoutMs,
            roundTripMs: Math.round(d.roundTripMs * 10) / 10,
          },
        }
      : {}),
    gossipQueue: run?.membership.gossipQueued ?? 0,
    subscriptions:
      (run?.self.topics?.length ?? 0) +
      (run?.membership.live() ?? []).reduce((n, m) => n + (m.peer.topics?.length ?? 0), 0),
    deliveryQueues: run?.outbox.stats() ?? { queues: 0, messages: 0, bytes: 0 },
    inboxes: s.inboxes,
    listeners: s.listeners,
    webClients: run?.web?.clients ?? 0,
    ...(run !== undefined ? { causal: { ...run.causal.stats, held: run.causal.held } } : {}),
    security: s.guard.summary(),
    ...(run !== undefined ? { store: storeStats(run), catchUp: { ...run.catchUp.stats } } : {}),
  };
}

/** The store's counters; zeros when it cannot say (closed while stopping). */
function storeStats(run: Running): { kind: 'sqlite' | 'memory'; messages: number; bytes: number } {
  const store = run.journal.store;
  try {
    return { kind: store.kind, ...store.stats() };
  } catch {
    return { kind: store.kind, messages: 0, bytes: 0 };
  }
}
