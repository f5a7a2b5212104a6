/**
 * The live state `/metrics` reports, read from a node's parts at the moment it is asked.
 *
 * @module
 */

import type { Inbox } from '../delivery/inbox.js';
import type { MetricsSnapshot } from '../metrics/node-metrics.js';
import type { InboundGuard } from '../security/inbound-guard.js';
import type { Message } from '../types.js';
import type { Running } from './run.js';

/** What a snapshot is read from. */
export interface SnapshotSources {
  readonly started: boolean;
  readonly connected: boolean;
  readonly run: Running | undefined;
  readonly inboxes: ReadonlySet<Inbox<Message>>;
  /** Messages dropped by iterators that have ended. */
  readonly endedInboxDrops: number;
  readonly guard: InboundGuard;
}

/** The snapshot of a node's live state. */
export function metricsSnapshot(s: SnapshotSources): MetricsSnapshot {
  const run = s.run;
  const members = { alive: 0, suspect: 0, dead: 0, left: 0 };
  for (const m of run?.membership.all() ?? []) members[m.state]++;
  let buffered = 0;
  let dropped = s.endedInboxDrops;
  for (const inbox of s.inboxes) {
    buffered += inbox.length;
    dropped += inbox.dropped;
  }
  const d = run?.detector;
  return {
    started: s.started,
    connected: s.connected,
    members,
    ...(d !== undefined ? { detector: { ...d.stats, awareness: d.awareness } } : {}),
    gossipQueue: run?.membership.gossipQueued ?? 0,
    deliveryQueues: run?.outbox.stats() ?? { queues: 0, messages: 0, bytes: 0 },
    inboxes: { iterators: s.inboxes.size, buffered, dropped },
    webClients: run?.web?.clients ?? 0,
    security: s.guard.summary(),
  };
}
