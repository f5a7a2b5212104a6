/**
 * The node's metrics: its counters, kept for the node's whole life, and the families
 * `GET /metrics` renders from them and a snapshot of the live state (text format:
 * `prometheus.ts`).
 *
 * @module
 */

import {
  formatPrometheus,
  Histogram,
  LabeledValues,
  type MetricFamily,
  RTT_BUCKETS,
  type Sample,
} from './prometheus.js';

const TYPE_NAMES = [
  'connect',
  'disconnect',
  'broadcast',
  'direct',
  'ping',
  'ping_req',
  'sync',
  'gossip',
  'batch',
];

/**
 * Why a publish was dropped: `no_subscribers` (this node published to a topic no live member
 * is in: it reached no one), `too_large` (refused over `maxMessageBytes`, nothing sent),
 * `undelivered` (every subscriber it was sent to failed), `not_subscribed` (this node received a
 * publish for a topic it is not in, and neither delivered nor passed it on).
 */
export type TopicDropReason = 'no_subscribers' | 'too_large' | 'undelivered' | 'not_subscribed';

const TOPIC_DROP_REASONS: readonly TopicDropReason[] = [
  'no_subscribers',
  'too_large',
  'undelivered',
  'not_subscribed',
];

/** Most topics with a label of their own in `tsp2p_topic_messages_total`; later ones are `other`. */
export const TOPIC_LABELS = 20;

/** A protocol message type's label value: `connect`, ..., `batch`, or `unknown`. */
export function messageTypeName(type: number): string {
  return TYPE_NAMES[type] ?? 'unknown';
}

/** The live values a node reads when `/metrics` is asked for. */
export interface MetricsSnapshot {
  /** Whether the node is started. */
  readonly started: boolean;
  /** Whether the node is in a network. */
  readonly connected: boolean;
  /** How many members are in each state (self excluded). */
  readonly members: Readonly<Record<'alive' | 'suspect' | 'dead' | 'left', number>>;
  /** The failure detector's counters since start, and its local health score. */
  readonly detector?: {
    readonly probes: number;
    readonly indirectProbes: number;
    readonly suspicions: number;
    readonly syncs: number;
    readonly gossips: number;
    /** Times this node refuted news that it was suspect or dead. */
    readonly refuted?: number;
    /** Times the local health score rose. */
    readonly healthRaised?: number;
    readonly awareness: number;
    /** How long a direct probe waits now, in ms (the measured round trips, the health score). */
    readonly probeTimeoutMs?: number;
    /** The smoothed round trip of the probes' answers, in ms (0 before the first). */
    readonly roundTripMs?: number;
  };
  /** Membership updates waiting to be gossiped. */
  readonly gossipQueue: number;
  /** Topic subscriptions known (this node's and its live members'). */
  readonly subscriptions?: number;
  /** The per-peer delivery queues: how many, and the messages and bytes waiting or in flight. */
  readonly deliveryQueues?: { readonly queues: number; readonly messages: number; readonly bytes: number };
  /** Open `messages()` iterators, and the messages buffered in them. */
  readonly inboxes: { readonly iterators: number; readonly buffered: number; readonly dropped: number };
  /**
   * The `message` listeners: messages waiting for them, seconds spent in them, and how often
   * they fell so far behind that the node refused new messages for a while.
   */
  readonly listeners?: {
    readonly waiting: number;
    readonly busySeconds: number;
    readonly fullEpisodes: number;
  };
  /** Open Server-Sent Events feeds (browser pages). */
  readonly webClients: number;
  /**
   * Causal order within topics since start (src/delivery/causal.ts): publishes that waited for
   * a dependency, those delivered late without one (of which pushed out of a full hold), and
   * those waiting now.
   */
  readonly causal?: {
    readonly waits: number;
    readonly giveUps: number;
    readonly overflows: number;
    readonly held: number;
  };
  /**
   * Signature checks since start (src/security/inbound-guard.ts): envelopes and relayed
   * messages verified, duplicates acknowledged without effect, unsigned gop2p envelopes
   * accepted in compat mode. Refusals are in `tsp2p_requests_refused_total`, and refused
   * relayed messages (inside an accepted batch) in `relayed`.
   */
  readonly security?: {
    readonly verified: number;
    /** Batches authenticated with a session MAC (src/security/session-keys.ts). */
    readonly macs: number;
    readonly duplicates: number;
    readonly unsigned: number;
    readonly relayedRefused: number;
  };
  /** History: the messages in the store, and the bytes it takes (its files; an estimate in memory). */
  readonly store?: { readonly kind: 'sqlite' | 'memory'; readonly messages: number; readonly bytes: number };
  /** Catch-up since start (src/node/catch-up.ts): requests and messages fetched and served. */
  readonly catchUp?: {
    readonly sessions: number;
    readonly batchesFetched: number;
    readonly messagesFetched: number;
    readonly batchesServed: number;
    readonly messagesServed: number;
    /** Fetched messages dropped: not signed by their origin, or not of the channel asked. */
    readonly refused: number;
  };
}

/**
 * A node's counters, kept for the node's whole life (they survive a restart), and rendered
 * together with a {@link MetricsSnapshot} of its live state.
 */
export class NodeMetrics {
  /** Messages delivered to this node, by `type` (broadcast, direct); duplicates not counted. */
  readonly received = new LabeledValues();
  /** Messages this node sent, by `type`. */
  readonly sent = new LabeledValues();
  /** Deliveries of sent messages, one per recipient, by `type` and `result` (ok, failed). */
  readonly deliveries = new LabeledValues();
  /** Protocol requests received, by message `type`. */
  readonly requests = new LabeledValues();
  /**
   * Protocol requests this node sent, by message `type` (ping, ping_req, sync, gossip, batch,
   * ...): what membership and delivery cost on the wire. Retries count again.
   */
  readonly requestsSent = new LabeledValues();
  /** Body bytes of the requests this node sent, by message `type`. */
  readonly requestBytesSent = new LabeledValues();
  /** Requests refused, by `status` and `reason`. */
  readonly refused = new LabeledValues();
  /** Direct probes' round-trip times, in seconds. */
  readonly probeRtt = new Histogram(RTT_BUCKETS);
  /**
   * Delivery requests (each carrying a batch of messages) by `result`; a failed one is retried
   * with backoff unless the peer refused it for good or the messages' deadline passed.
   */
  readonly deliveryRequests = new LabeledValues();
  /** Messages carried by delivery requests, by `result`. */
  readonly deliveryRequestMessages = new LabeledValues();
  /**
   * Publishes by topic and direction (`in`, `out`). Label cardinality is bounded: the first
   * {@link TOPIC_LABELS} topics seen get their own label, any later one counts as `other`.
   */
  readonly topicMessages = new LabeledValues();
  readonly #topicLabels = new Set<string>();
  /** Publishes dropped, by `reason` (see {@link TopicDropReason}). */
  readonly topicDropped = new LabeledValues();

  constructor() {
    // Series that exist from the start, so that a rate over them is defined before traffic.
    // (`received`'s are the kept series below.)
    for (const type of ['broadcast', 'direct']) this.sent.inc({ type }, 0);
    for (const reason of TOPIC_DROP_REASONS) this.topicDropped.inc({ reason }, 0);
    for (const result of ['ok', 'failed']) {
      this.deliveryRequests.inc({ result }, 0);
      this.deliveryRequestMessages.inc({ result }, 0);
    }
  }

  /** The series of {@link NodeMetrics.received}, kept: counted once per message delivered. */
  readonly #receivedBroadcast = this.received.series({ type: 'broadcast' });
  readonly #receivedDirect = this.received.series({ type: 'direct' });

  /** Counts a message delivered to this node, by its type. */
  recordReceived(type: 'broadcast' | 'direct'): void {
    (type === 'direct' ? this.#receivedDirect : this.#receivedBroadcast).value++;
  }

  /** Counts a refused request. */
  refuse(status: number, reason: string): void {
    this.refused.inc({ status: String(status), reason });
  }

  /** Counts a sent message and its per-recipient outcomes. */
  recordSend(type: 'broadcast' | 'direct', delivered: number, failed: number): void {
    this.sent.inc({ type });
    if (delivered > 0) this.deliveries.inc({ type, result: 'ok' }, delivered);
    if (failed > 0) this.deliveries.inc({ type, result: 'failed' }, failed);
  }

  /** Counts a publish sent (`out`) or delivered (`in`) under its topic's label. */
  recordTopic(topic: string, direction: 'in' | 'out'): void {
    if (!this.#topicLabels.has(topic) && this.#topicLabels.size < TOPIC_LABELS) this.#topicLabels.add(topic);
    this.topicMessages.inc({ topic: this.#topicLabels.has(topic) ? topic : 'other', direction });
  }

  /** Counts one request sent to a peer: its message type and body size. */
  recordRequest(type: number | undefined, bytes: number): void {
    const labels = { type: type === undefined ? 'unknown' : messageTypeName(type) };
    this.requestsSent.inc(labels);
    this.requestBytesSent.inc(labels, bytes);
  }

  /** Counts a publish dropped, sent by this node or received by it. */
  recordTopicDropped(reason: TopicDropReason): void {
    this.topicDropped.inc({ reason });
  }

  /** Counts one delivery request to a peer and the messages it carried. */
  recordBatch(messages: number, ok: boolean): void {
    const result = ok ? 'ok' : 'failed';
    this.deliveryRequests.inc({ result });
    this.deliveryRequestMessages.inc({ result }, messages);
  }

  /** The families: these counters, then the snapshot's gauges. */
  families(s: MetricsSnapshot): MetricFamily[] {
    const d = s.detector;
    const f: MetricFamily[] = [
      {
        name: 'tsp2p_up',
        help: '1 when the node is started.',
        type: 'gauge',
        samples: one(s.started ? 1 : 0),
      },
      {
        name: 'tsp2p_connected',
        help: '1 when the node is in a network.',
        type: 'gauge',
        samples: one(s.connected ? 1 : 0),
      },
      {
        name: 'tsp2p_messages_received_total',
        help: 'Messages delivered to this node, by type (duplicates not counted).',
        type: 'counter',
        samples: this.received.samples(),
      },
      {
        name: 'tsp2p_messages_sent_total',
        help: 'Messages this node sent, by type.',
        type: 'counter',
        samples: this.sent.samples(),
      },
      {
        name: 'tsp2p_topic_messages_total',
        help: `Publishes sent (out) and delivered (in), by topic: the first ${TOPIC_LABELS} topics seen, then "other".`,
        type: 'counter',
        samples: this.topicMessages.samples(),
      },
      {
        name: 'tsp2p_topic_dropped_total',
        help: 'Publishes dropped, by reason: no_subscribers (this node published to a topic nobody else is in), too_large (refused over maxMessageBytes), undelivered (published, and every subscriber failed), not_subscribed (received for a topic this node is not in).',
        type: 'counter',
        samples: this.topicDropped.samples(),
      },
      {
        name: 'tsp2p_subscriptions_known',
        help: 'Topic subscriptions known: this node and its live members, one per member and topic.',
        type: 'gauge',
        samples: one(s.subscriptions ?? 0),
      },
      {
        name: 'tsp2p_deliveries_total',
        help: 'Deliveries of sent messages, one per recipient, by type and result.',
        type: 'counter',
        samples: this.deliveries.samples(),
      },
      {
        name: 'tsp2p_delivery_requests_total',
        help: 'Delivery requests to peers (each a batch of messages), by result; failed ones are retried.',
        type: 'counter',
        samples: this.deliveryRequests.samples(),
      },
      {
        name: 'tsp2p_delivery_request_messages_total',
        help: 'Messages carried by delivery requests, by result (ok / failed: ok over requests is the batch size).',
        type: 'counter',
        samples: this.deliveryRequestMessages.samples(),
      },
      {
        name: 'tsp2p_requests_received_total',
        help: 'Protocol requests received with a valid envelope, by message type.',
        type: 'counter',
        samples: this.requests.samples(),
      },
      {
        name: 'tsp2p_requests_sent_total',
        help: 'Protocol requests sent to peers, by message type (ping, ping_req, sync, gossip, batch, ...).',
        type: 'counter',
        samples: this.requestsSent.samples(),
      },
      {
        name: 'tsp2p_request_bytes_sent_total',
        help: 'Body bytes of the protocol requests sent to peers, by message type.',
        type: 'counter',
        samples: this.requestBytesSent.samples(),
      },
      {
        name: 'tsp2p_requests_refused_total',
        help: 'Requests refused, by HTTP status and reason.',
        type: 'counter',
        samples: this.refused.samples(),
      },
      {
        name: 'tsp2p_members',
        help: 'Members by state, self excluded.',
        type: 'gauge',
        samples: (['alive', 'suspect', 'dead', 'left'] as const).map((state) => ({
          labels: { state },
          value: s.members[state],
        })),
      },
      {
        name: 'tsp2p_probes_total',
        help: 'Direct probes (pings) sent since start.',
        type: 'counter',
        samples: one(d?.probes ?? 0),
      },
      {
        name: 'tsp2p_indirect_probes_total',
        help: 'Indirect probes (ping-req) sent since start.',
        type: 'counter',
        samples: one(d?.indirectProbes ?? 0),
      },
      {
        name: 'tsp2p_suspicions_total',
        help: 'Failed probes that made this node suspect a member, since start.',
        type: 'counter',
        samples: one(d?.suspicions ?? 0),
      },
      {
        name: 'tsp2p_push_pull_syncs_total',
        help: 'Push-pull state exchanges started since start.',
        type: 'counter',
        samples: one(d?.syncs ?? 0),
      },
      {
        name: 'tsp2p_gossip_messages_total',
        help: 'Gossip messages sent since start.',
        type: 'counter',
        samples: one(d?.gossips ?? 0),
      },
      {
        name: 'tsp2p_self_refutations_total',
        help: 'Times this node refuted news that it was suspect or dead (each raises its local health score), since start.',
        type: 'counter',
        samples: one(d?.refuted ?? 0),
      },
      {
        name: 'tsp2p_local_health_raised_total',
        help: "Times Lifeguard's local health score rose (a refutation, or a probe whose helpers did not answer), since start.",
        type: 'counter',
        samples: one(d?.healthRaised ?? 0),
      },
      {
        name: 'tsp2p_local_health_awareness',
        help: "Lifeguard's local health score: 0 is healthy, each unit stretches probe periods.",
        type: 'gauge',
        samples: one(d?.awareness ?? 0),
      },
      {
        name: 'tsp2p_probe_timeout_seconds',
        help: 'How long a direct probe waits now: the configured probe timeout, or more while answers come slower (smoothed round trip + 4 deviations, stretched by the health score).',
        type: 'gauge',
        samples: one((d?.probeTimeoutMs ?? 0) / 1000),
      },
      {
        name: 'tsp2p_probe_rtt_smoothed_seconds',
        help: "The smoothed round trip of the probes' answers (0 before the first).",
        type: 'gauge',
        samples: one((d?.roundTripMs ?? 0) / 1000),
      },
      {
        name: 'tsp2p_probe_rtt_seconds',
        help: 'Round-trip time of answered direct probes.',
        type: 'histogram',
        samples: this.probeRtt.samples(),
      },
      {
        name: 'tsp2p_gossip_queue_updates',
        help: 'Membership updates waiting to be gossiped.',
        type: 'gauge',
        samples: one(s.gossipQueue),
      },
      {
        name: 'tsp2p_delivery_queues',
        help: 'Per-peer delivery queues.',
        type: 'gauge',
        samples: one(s.deliveryQueues?.queues ?? 0),
      },
      {
        name: 'tsp2p_delivery_queue_messages',
        help: 'Messages waiting or in flight in the delivery queues.',
        type: 'gauge',
        samples: one(s.deliveryQueues?.messages ?? 0),
      },
      {
        name: 'tsp2p_delivery_queue_bytes',
        help: 'Bytes waiting or in flight in the delivery queues.',
        type: 'gauge',
        samples: one(s.deliveryQueues?.bytes ?? 0),
      },
      {
        name: 'tsp2p_inbox_iterators',
        help: 'Open messages() iterators.',
        type: 'gauge',
        samples: one(s.inboxes.iterators),
      },
      {
        name: 'tsp2p_inbox_buffered_messages',
        help: 'Messages buffered in open messages() iterators, not yet read.',
        type: 'gauge',
        samples: one(s.inboxes.buffered),
      },
      {
        name: 'tsp2p_inbox_dropped_messages_total',
        help: 'Messages dropped because a messages() iterator fell too far behind.',
        type: 'counter',
        samples: one(s.inboxes.dropped),
      },
      {
        name: 'tsp2p_listener_waiting_messages',
        help: "Received messages waiting for the node's 'message' listeners.",
        type: 'gauge',
        samples: one(s.listeners?.waiting ?? 0),
      },
      {
        name: 'tsp2p_listener_busy_seconds_total',
        help: "Time spent in the node's 'message' listeners.",
        type: 'counter',
        samples: one(s.listeners?.busySeconds ?? 0),
      },
      {
        name: 'tsp2p_listener_behind_total',
        help: "Times the 'message' listeners fell inboxSize messages behind, so that the node refused new messages (503 busy) until they caught up half.",
        type: 'counter',
        samples: one(s.listeners?.fullEpisodes ?? 0),
      },
      {
        name: 'tsp2p_web_clients',
        help: 'Open Server-Sent Events feeds (browser pages).',
        type: 'gauge',
        samples: one(s.webClients),
      },
      {
        name: 'tsp2p_causal_waits_total',
        help: 'Publishes held for a causal dependency not yet delivered, since start.',
        type: 'counter',
        samples: one(s.causal?.waits ?? 0),
      },
      {
        name: 'tsp2p_causal_give_ups_total',
        help:
          'Publishes delivered late without a causal dependency, since start, by reason: timeout (causalWaitMs ' +
          'passed, or no member had it) or overflow (pushed out of a full hold).',
        type: 'counter',
        samples: [
          { labels: { reason: 'timeout' }, value: (s.causal?.giveUps ?? 0) - (s.causal?.overflows ?? 0) },
          { labels: { reason: 'overflow' }, value: s.causal?.overflows ?? 0 },
        ],
      },
      {
        name: 'tsp2p_causal_held_messages',
        help: 'Publishes waiting now for their causal dependencies.',
        type: 'gauge',
        samples: one(s.causal?.held ?? 0),
      },
    ];
    const st = s.store;
    if (st !== undefined) {
      f.push(
        {
          name: 'tsp2p_store_messages',
          help: 'Messages in the history store (within retention).',
          type: 'gauge',
          samples: [{ labels: { kind: st.kind }, value: st.messages }],
        },
        {
          name: 'tsp2p_store_bytes',
          help: 'Bytes the history store takes: its database files (with dataDir), an estimate in memory.',
          type: 'gauge',
          samples: [{ labels: { kind: st.kind }, value: st.bytes }],
        },
      );
    }
    const cu = s.catchUp;
    if (cu !== undefined) {
      f.push(
        {
          name: 'tsp2p_catchup_sessions_total',
          help: 'Catch-up sessions held with a member since start (a summary exchange, then fetches).',
          type: 'counter',
          samples: one(cu.sessions),
        },
        {
          name: 'tsp2p_catchup_batches_total',
          help: 'Catch-up fetch requests since start, by direction: fetched (asked by this node) or served.',
          type: 'counter',
          samples: [
            { labels: { direction: 'fetched' }, value: cu.batchesFetched },
            { labels: { direction: 'served' }, value: cu.batchesServed },
          ],
        },
        {
          name: 'tsp2p_catchup_messages_total',
          help:
            'Messages moved by catch-up since start: fetched (new to this node, delivered late), served, ' +
            'or refused (not signed by their origin, or not of the channel asked).',
          type: 'counter',
          samples: [
            { labels: { direction: 'fetched' }, value: cu.messagesFetched },
            { labels: { direction: 'served' }, value: cu.messagesServed },
            { labels: { direction: 'refused' }, value: cu.refused },
          ],
        },
      );
    }
    const sec = s.security;
    if (sec !== undefined) {
      f.push({
        name: 'tsp2p_signature_checks_total',
        help:
          'Inbound signature checks by result: verified, mac (a session MAC checked), duplicate (no effect), unsigned ' +
          '(gop2p, compat mode), relayed_refused (a relayed message not signed by its origin).',
        type: 'counter',
        samples: [
          { labels: { result: 'verified' }, value: sec.verified },
          { labels: { result: 'mac' }, value: sec.macs },
          { labels: { result: 'duplicate' }, value: sec.duplicates },
          { labels: { result: 'unsigned' }, value: sec.unsigned },
          { labels: { result: 'relayed_refused' }, value: sec.relayedRefused },
        ],
      });
    }
    return f;
  }

  /** The whole text of `/metrics`. */
  render(s: MetricsSnapshot): string {
    return formatPrometheus(this.families(s));
  }
}

function one(value: number): Sample[] {
  return [{ value }];
}
