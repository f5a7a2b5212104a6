import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { type MetricsSnapshot, messageTypeName, NodeMetrics } from '../../src/metrics/node-metrics.js';
import {
  escapeHelp,
  escapeLabelValue,
  formatPrometheus,
  formatValue,
  Histogram,
  LabeledValues,
} from '../../src/metrics/prometheus.js';

/**
 * Checks a text against the exposition format: `# HELP` then `# TYPE` for each family, then its
 * samples, each `name{labels} value` with the family's name (plus `_bucket`, `_sum`, `_count`
 * for a histogram). Returns the families' names in order.
 */
function validate(text: string): string[] {
  assert.ok(text.endsWith('\n'), 'ends with a newline');
  const lines = text.slice(0, -1).split('\n');
  const names: string[] = [];
  let family: { name: string; type: string } | undefined;
  const labelPair = '[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\\\\n]|\\\\[\\\\"n])*"';
  const sample = new RegExp(
    `^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\\{(?:${labelPair})(?:,${labelPair})*\\})? (NaN|[+-]Inf|-?[0-9.e+-]+)$`,
  );
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    const help = /^# HELP ([a-zA-Z_:][a-zA-Z0-9_:]*) (.*)$/.exec(line);
    if (help) {
      const type = /^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram|summary|untyped)$/.exec(
        lines[i + 1] ?? '',
      );
      assert.ok(type, `line ${i + 2} is the TYPE of ${help[1]}: ${lines[i + 1]}`);
      assert.equal(type[1], help[1]);
      assert.ok(!names.includes(help[1]!), `${help[1]} appears once`);
      names.push(help[1]!);
      family = { name: help[1]!, type: type[2]! };
      i++;
      continue;
    }
    const m = sample.exec(line);
    assert.ok(m, `line ${i + 1} is a valid sample: ${JSON.stringify(line)}`);
    assert.ok(family, 'a sample follows a family header');
    const suffixes = family.type === 'histogram' ? ['_bucket', '_sum', '_count'] : [''];
    assert.ok(
      suffixes.some((s) => m[1] === family!.name + s),
      `${m[1]} belongs to ${family.name}`,
    );
    assert.ok(!Number.isNaN(Number(m[2]!.replace('Inf', 'Infinity'))) || m[2] === 'NaN');
  }
  return names;
}

describe('the Prometheus text format', () => {
  test('label values escape backslash, double quote and newline; help escapes backslash and newline', () => {
    assert.equal(escapeLabelValue('a\\b"c\nd'), 'a\\\\b\\"c\\nd');
    assert.equal(escapeHelp('a\\b\nc"d'), 'a\\\\b\\nc"d');
  });

  test('values: integers, decimals, NaN and infinities', () => {
    assert.equal(formatValue(3), '3');
    assert.equal(formatValue(0.25), '0.25');
    assert.equal(formatValue(Number.NaN), 'NaN');
    assert.equal(formatValue(Number.POSITIVE_INFINITY), '+Inf');
    assert.equal(formatValue(Number.NEGATIVE_INFINITY), '-Inf');
  });

  test('a family renders HELP, TYPE and its samples with labels', () => {
    const text = formatPrometheus([
      {
        name: 'x_total',
        help: 'Things.\nMore',
        type: 'counter',
        samples: [{ value: 1 }, { labels: { a: 'q"uote', b: 'x' }, value: 2 }],
      },
      { name: 'y', help: 'Empty.', type: 'gauge', samples: [] },
    ]);
    assert.equal(
      text,
      '# HELP x_total Things.\\nMore\n# TYPE x_total counter\nx_total 1\nx_total{a="q\\"uote",b="x"} 2\n' +
        '# HELP y Empty.\n# TYPE y gauge\n',
    );
    assert.deepEqual(validate(text), ['x_total', 'y']);
    assert.equal(formatPrometheus([]), '');
  });

  test('invalid metric or label names are refused', () => {
    assert.throws(
      () => formatPrometheus([{ name: '1bad', help: '', type: 'gauge', samples: [] }]),
      RangeError,
    );
    assert.throws(
      () =>
        formatPrometheus([
          { name: 'ok', help: '', type: 'gauge', samples: [{ labels: { 'a-b': 'x' }, value: 1 }] },
        ]),
      RangeError,
    );
  });
});

describe('LabeledValues', () => {
  test('counts per label set, whatever the order of the labels', () => {
    const v = new LabeledValues();
    v.inc({ a: '1', b: '2' });
    v.inc({ b: '2', a: '1' }, 2);
    v.inc({ a: '3' });
    assert.equal(v.get({ a: '1', b: '2' }), 3);
    assert.equal(v.get({ a: '3' }), 1);
    assert.equal(v.get({ a: '9' }), 0);
    assert.equal(v.samples().length, 2);
  });

  test('a series kept counts in its label set', () => {
    const v = new LabeledValues();
    const s = v.series({ type: 'broadcast' });
    assert.equal(v.get({ type: 'broadcast' }), 0);
    assert.deepEqual(v.samples(), [{ labels: { type: 'broadcast' }, value: 0 }]);
    s.value += 2;
    v.inc({ type: 'broadcast' });
    assert.equal(v.get({ type: 'broadcast' }), 3);
    assert.equal(v.series({ type: 'broadcast' }), s);
  });
});

describe('Histogram', () => {
  test('buckets are cumulative and end with +Inf, then _sum and _count', () => {
    const h = new Histogram([0.1, 1]);
    for (const x of [0.05, 0.1, 0.5, 3]) h.observe(x);
    assert.deepEqual(h.samples(), [
      { suffix: '_bucket', labels: { le: '0.1' }, value: 2 },
      { suffix: '_bucket', labels: { le: '1' }, value: 3 },
      { suffix: '_bucket', labels: { le: '+Inf' }, value: 4 },
      { suffix: '_sum', value: 3.65 },
      { suffix: '_count', value: 4 },
    ]);
    assert.equal(h.count, 4);
  });

  test('bounds must ascend', () => {
    assert.throws(() => new Histogram([1, 1]), RangeError);
    assert.throws(() => new Histogram([2, 1]), RangeError);
  });
});

test('message type names', () => {
  assert.deepEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 99].map(messageTypeName), [
    'connect',
    'disconnect',
    'broadcast',
    'direct',
    'ping',
    'ping_req',
    'sync',
    'gossip',
    'batch',
    'unknown',
  ]);
});

const snapshot: MetricsSnapshot = {
  started: true,
  connected: true,
  members: { alive: 3, suspect: 1, dead: 2, left: 0 },
  detector: { probes: 10, indirectProbes: 3, suspicions: 1, syncs: 2, gossips: 7, awareness: 1 },
  gossipQueue: 4,
  deliveryQueues: { queues: 2, messages: 7, bytes: 700 },
  inboxes: { iterators: 2, buffered: 5, dropped: 6 },
  webClients: 1,
  causal: { waits: 9, giveUps: 3, overflows: 1, held: 2 },
};

describe('NodeMetrics', () => {
  test('renders every family in the text format, with the counted values', () => {
    const m = new NodeMetrics();
    m.received.inc({ type: 'broadcast' }, 3);
    m.recordReceived('broadcast');
    m.recordReceived('broadcast');
    m.recordSend('broadcast', 3, 1);
    m.recordSend('direct', 1, 0);
    m.requests.inc({ type: 'ping' }, 9);
    m.refuse(403, 'cross_origin');
    m.refuse(403, 'cross_origin');
    m.refuse(413, 'too_large');
    m.probeRtt.observe(0.002);
    m.recordBatch(10, true);
    m.recordBatch(3, false);
    m.recordBatch(3, true);
    const text = m.render(snapshot);
    const names = validate(text);
    for (const name of [
      'tsp2p_up',
      'tsp2p_messages_received_total',
      'tsp2p_messages_sent_total',
      'tsp2p_deliveries_total',
      'tsp2p_requests_refused_total',
      'tsp2p_members',
      'tsp2p_probes_total',
      'tsp2p_suspicions_total',
      'tsp2p_probe_rtt_seconds',
      'tsp2p_gossip_queue_updates',
      'tsp2p_inbox_buffered_messages',
      'tsp2p_web_clients',
    ]) {
      assert.ok(names.includes(name), `${name} is rendered`);
    }
    const lines = new Set(text.split('\n'));
    for (const line of [
      'tsp2p_up 1',
      'tsp2p_messages_received_total{type="broadcast"} 5',
      'tsp2p_messages_received_total{type="direct"} 0',
      'tsp2p_messages_sent_total{type="broadcast"} 1',
      'tsp2p_deliveries_total{type="broadcast",result="ok"} 3',
      'tsp2p_deliveries_total{type="broadcast",result="failed"} 1',
      'tsp2p_requests_received_total{type="ping"} 9',
      'tsp2p_requests_refused_total{status="403",reason="cross_origin"} 2',
      'tsp2p_requests_refused_total{status="413",reason="too_large"} 1',
      'tsp2p_members{state="alive"} 3',
      'tsp2p_members{state="suspect"} 1',
      'tsp2p_members{state="dead"} 2',
      'tsp2p_members{state="left"} 0',
      'tsp2p_probes_total 10',
      'tsp2p_indirect_probes_total 3',
      'tsp2p_suspicions_total 1',
      'tsp2p_local_health_awareness 1',
      'tsp2p_probe_rtt_seconds_bucket{le="0.0025"} 1',
      'tsp2p_probe_rtt_seconds_bucket{le="0.001"} 0',
      'tsp2p_probe_rtt_seconds_count 1',
      'tsp2p_gossip_queue_updates 4',
      'tsp2p_delivery_requests_total{result="ok"} 2',
      'tsp2p_delivery_requests_total{result="failed"} 1',
      'tsp2p_delivery_request_messages_total{result="ok"} 13',
      'tsp2p_delivery_request_messages_total{result="failed"} 3',
      'tsp2p_delivery_queues 2',
      'tsp2p_delivery_queue_messages 7',
      'tsp2p_delivery_queue_bytes 700',
      'tsp2p_inbox_iterators 2',
      'tsp2p_inbox_buffered_messages 5',
      'tsp2p_inbox_dropped_messages_total 6',
      'tsp2p_web_clients 1',
      'tsp2p_causal_waits_total 9',
      'tsp2p_causal_give_ups_total{reason="timeout"} 2',
      'tsp2p_causal_give_ups_total{reason="overflow"} 1',
      'tsp2p_causal_held_messages 2',
    ]) {
      assert.ok(lines.has(line), `has the line ${line}`);
    }
  });

  test('requests sent are counted by message type, with their body bytes', () => {
    const m = new NodeMetrics();
    m.recordRequest(4, 300);
    m.recordRequest(4, 200);
    m.recordRequest(6, 1000);
    m.recordRequest(undefined, 7);
    const text = m.render(snapshot);
    validate(text);
    for (const line of [
      'tsp2p_requests_sent_total{type="ping"} 2',
      'tsp2p_request_bytes_sent_total{type="ping"} 500',
      'tsp2p_requests_sent_total{type="sync"} 1',
      'tsp2p_request_bytes_sent_total{type="sync"} 1000',
      'tsp2p_requests_sent_total{type="unknown"} 1',
    ]) {
      assert.ok(text.includes(`\n${line}\n`), `has the line ${line}`);
    }
  });

  test('a stopped node renders zeros', () => {
    const text = new NodeMetrics().render({
      started: false,
      connected: false,
      members: { alive: 0, suspect: 0, dead: 0, left: 0 },
      gossipQueue: 0,
      inboxes: { iterators: 0, buffered: 0, dropped: 0 },
      webClients: 0,
    });
    validate(text);
    assert.ok(text.includes('\ntsp2p_up 0\n'));
    assert.ok(text.includes('\ntsp2p_probes_total 0\n'));
    assert.ok(text.includes('\ntsp2p_delivery_queue_messages 0\n'));
    assert.ok(text.includes('\ntsp2p_delivery_requests_total{result="failed"} 0\n'));
    assert.ok(text.includes('\ntsp2p_causal_give_ups_total{reason="timeout"} 0\n'));
  });
});

test('history: the store and catch-up families', () => {
  const text = new NodeMetrics().render({
    started: true,
    connected: true,
    members: { alive: 1, suspect: 0, dead: 0, left: 0 },
    gossipQueue: 0,
    inboxes: { iterators: 0, buffered: 0, dropped: 0 },
    webClients: 0,
    store: { kind: 'sqlite', messages: 12, bytes: 4096 },
    catchUp: {
      sessions: 2,
      batchesFetched: 3,
      messagesFetched: 1500,
      batchesServed: 1,
      messagesServed: 7,
      refused: 1,
    },
  });
  validate(text);
  for (const line of [
    'tsp2p_store_messages{kind="sqlite"} 12',
    'tsp2p_store_bytes{kind="sqlite"} 4096',
    'tsp2p_catchup_sessions_total 2',
    'tsp2p_catchup_batches_total{direction="fetched"} 3',
    'tsp2p_catchup_batches_total{direction="served"} 1',
    'tsp2p_catchup_messages_total{direction="fetched"} 1500',
    'tsp2p_catchup_messages_total{direction="served"} 7',
    'tsp2p_catchup_messages_total{direction="refused"} 1',
  ])
    assert.ok(text.includes(`\n${line}\n`), `has the line ${line}`);
});
