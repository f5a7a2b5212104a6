/**
 * `topics`: N tsp2p nodes, several per process, in T topics of S subscribers each (node g is in
 * topic `g mod T`). One subscriber of each topic sends M messages: published to its topic, then,
 * in the same run and from the same senders, broadcast to everyone; alternately, `runs` times
 * each. The report quotes medians:
 *
 * - deliveries/s = the deliveries the round owes (T × M × (S−1) for topics, T × M × (N−1) for
 *   broadcast) / (time from the first send until the last one is delivered);
 * - bytes received per node in the round (request bodies sent to it and answers to its own
 *   requests, membership traffic included), median and max over the nodes;
 * - `traffic_ratio` = median bytes per node with broadcast / with topics. With broadcast a node
 *   receives the messages of all T senders, with topics those of its own topic's sender only:
 *   about T when a topic's messages reach its subscribers and no one else.
 *
 * @module
 */

import { availableParallelism, loadavg } from 'node:os';
import { intFlag } from './lib/args.js';
import { Worker } from './lib/cluster.js';
import { BenchError, UsageError } from './lib/errors.js';
import type { FlagValues, Scenario } from './lib/scenario.js';
import { median, round } from './lib/stats.js';
import type { TopicCommands } from './lib/topics-protocol.js';

type TopicWorker = Worker<TopicCommands>;

interface Settings {
  readonly nodes: number;
  readonly processes: number;
  readonly topics: number;
  readonly subscribers: number;
  readonly messages: number;
  readonly size: number;
  readonly window: number;
  readonly runs: number;
  readonly roundTimeoutMs: number;
}

/** The figures of one measured round. */
interface RoundFigures {
  readonly deliveries_per_s: number;
  readonly deliveries: number;
  readonly seconds: number;
  /** Bytes each node received during the round: median and max over the nodes. */
  readonly bytes_per_node_median: number;
  readonly bytes_per_node_max: number;
  /** CPU time of the sending processes' `send` calls together, in ms. */
  readonly senders_cpu_ms: number;
}

const usage = `  --nodes N          nodes in all (default 50)
  --processes P      worker processes; the nodes are shared among them (default 5)
  --topics T         topics (default 10)
  --subscribers S    subscribers per topic; T × S ≤ N (default 5)
  --messages M       messages each of the T senders sends per round (default 300)
  --size B           payload bytes (default 100)
  --window W         sends in flight per sender (default 16)
  --runs R           measured rounds per mode, alternating topics and broadcast (default 3)
  --round-timeout S  seconds a round may take before it fails (default 120)
  --deadline S       kill everything and exit 1 after S seconds (default 170)`;

export const topics: Scenario = {
  name: 'topics',
  summary: 'N nodes in T topics of S subscribers: publish to the topic against broadcast to everyone',
  usage,
  flags: {
    nodes: { type: 'string', default: '50' },
    processes: { type: 'string', default: '5' },
    topics: { type: 'string', default: '10' },
    subscribers: { type: 'string', default: '5' },
    messages: { type: 'string', default: '300' },
    size: { type: 'string', default: '100' },
    window: { type: 'string', default: '16' },
    runs: { type: 'string', default: '3' },
    'round-timeout': { type: 'string', default: '120' },
  },
  run: (values, log) => runTopics(settingsOf(values), log),
};

function settingsOf(values: FlagValues): Settings {
  const nodes = intFlag(values, 'nodes', 2, 500);
  const t = intFlag(values, 'topics', 1, 100);
  const s = intFlag(values, 'subscribers', 2, nodes);
  if (t * s > nodes)
    throw new UsageError(`--topics × --subscribers (${t * s}) must be at most --nodes (${nodes})`);
  return {
    nodes,
    processes: intFlag(values, 'processes', 1, nodes),
    topics: t,
    subscribers: s,
    messages: intFlag(values, 'messages', 1, 1_000_000),
    size: intFlag(values, 'size', 16, 1024 * 1024),
    window: intFlag(values, 'window', 1, 10_000),
    runs: intFlag(values, 'runs', 1, 100),
    roundTimeoutMs: intFlag(values, 'round-timeout', 1, 3600) * 1000,
  };
}

/** Where global node `g` lives: worker `g mod P`, at local index `g div P`. */
function placeOf(g: number, processes: number): { worker: number; local: number } {
  return { worker: g % processes, local: Math.floor(g / processes) };
}

async function until(what: string, timeoutMs: number, check: () => Promise<boolean>): Promise<void> {
  const end = performance.now() + timeoutMs;
  while (!(await check())) {
    if (performance.now() > end) throw new BenchError(`${what}: not within ${timeoutMs / 1000} s`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function runTopics(s: Settings, log: (line: string) => void): Promise<object> {
  log(
    `topics: ${s.nodes} nodes in ${s.processes} processes, ${s.topics} topics × ${s.subscribers} subscribers, ` +
      `${s.messages} messages of ${s.size} B per sender, ${s.runs} runs per mode`,
  );
  const loadBefore = loadavg();
  const workers: TopicWorker[] = Array.from(
    { length: s.processes },
    (_, i) => new Worker<TopicCommands>(`topics#${i}`, 'worker-topics.ts'),
  );
  const figures = { topics: [] as RoundFigures[], broadcast: [] as RoundFigures[] };
  try {
    await Promise.all(workers.map((w) => w.ready));
    const counts = workers.map((_, w) => Math.ceil((s.nodes - w) / s.processes));
    const started = await Promise.all(workers.map((w, i) => w.call('start', { count: counts[i]! })));
    const t0 = performance.now();
    // The first process's nodes join through its first; then each other process joins through a
    // node of its own there, all at once (one entry point for all is slow on a loaded machine).
    const first = started[0]!.addresses;
    await workers[0]!.call('join', { entry: first[0]! });
    await Promise.all(
      workers.slice(1).map((w, i) => w.call('join', { entry: first[(i + 1) % first.length]! })),
    );
    await until('full views', 120_000, async () =>
      (await Promise.all(workers.map((w) => w.call('members', {})))).every((m) => m.min === s.nodes - 1),
    );
    log(`${s.nodes} nodes joined in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    // Node g is in topic g mod T (the first T × S nodes).
    const topicOf = (g: number): string | undefined =>
      g < s.topics * s.subscribers ? `t${g % s.topics}` : undefined;
    await Promise.all(
      workers.map((w, wi) =>
        w.call('subscribe', {
          topics: Array.from({ length: counts[wi]! }, (_, local) => topicOf(local * s.processes + wi)),
        }),
      ),
    );
    for (let k = 0; k < s.topics; k++) {
      await until(`every node knows t${k}`, 30_000, async () =>
        (await Promise.all(workers.map((w) => w.call('knows', { topic: `t${k}` })))).every(
          (x) => x.min >= s.subscribers,
        ),
      );
    }
    // The sender of topic k: its subscriber k + T × (k mod S), so that senders spread over processes.
    const senders = Array.from({ length: s.topics }, (_, k) => k + s.topics * (k % s.subscribers));
    let roundNo = 0;
    const measure = async (mode: 'topics' | 'broadcast'): Promise<RoundFigures> => {
      const r = ++roundNo;
      const owed =
        mode === 'topics'
          ? s.topics * s.messages * (s.subscribers - 1)
          : s.topics * s.messages * (s.nodes - 1);
      const before = await Promise.all(workers.map((w) => w.call('counts', { round: r })));
      const begin = performance.now();
      const sent = Promise.all(
        workers.map((w, wi) =>
          w.call('send', {
            round: r,
            senders: senders
              .filter((g) => placeOf(g, s.processes).worker === wi)
              .map((g) =>
                mode === 'topics'
                  ? { local: placeOf(g, s.processes).local, topic: topicOf(g)! }
                  : { local: placeOf(g, s.processes).local },
              ),
            count: s.messages,
            size: s.size,
            window: s.window,
          }),
        ),
      );
      // A sender's failure is the round's error: report it at once, not the timeout after it
      // (and never as an unhandled rejection once the workers stop).
      let sendError: unknown;
      sent.catch((err: unknown) => {
        sendError = err;
      });
      let after = before;
      await until(`round ${r} (${mode})`, s.roundTimeoutMs, async () => {
        if (sendError !== undefined) {
          throw new BenchError(
            `round ${r} (${mode}): a sender failed: ${sendError instanceof Error ? sendError.message : String(sendError)}`,
          );
        }
        after = await Promise.all(workers.map((w) => w.call('counts', { round: r })));
        return after.flatMap((a) => a.delivered).reduce((a, b) => a + b, 0) >= owed;
      });
      const elapsed = (performance.now() - begin) / 1000;
      const cpu = (await sent).reduce((n, x) => n + x.cpuMs, 0);
      const bytes = after.flatMap((a, wi) => a.received.map((b, i) => b - before[wi]!.received[i]!));
      return {
        deliveries_per_s: Math.round(owed / elapsed),
        deliveries: owed,
        seconds: round(elapsed, 3),
        bytes_per_node_median: Math.round(median(bytes)),
        bytes_per_node_max: Math.max(...bytes),
        senders_cpu_ms: round(cpu),
      };
    };
    // One unmeasured round of each first (JIT, connection pools).
    await measure('topics');
    await measure('broadcast');
    for (let run = 1; run <= s.runs; run++) {
      const order: ('topics' | 'broadcast')[] =
        run % 2 === 1 ? ['topics', 'broadcast'] : ['broadcast', 'topics'];
      for (const mode of order) {
        const f = await measure(mode);
        figures[mode].push(f);
        log(
          `run ${run}/${s.runs} ${mode.padEnd(9)} ${String(f.deliveries_per_s).padStart(7)} deliveries/s ` +
            `(${f.deliveries} in ${f.seconds} s), bytes received per node: median ${f.bytes_per_node_median}, ` +
            `max ${f.bytes_per_node_max}`,
        );
      }
    }
  } finally {
    await Promise.all(workers.map((w) => w.stop()));
  }
  const topicsSummary = summary(figures.topics);
  const broadcastSummary = summary(figures.broadcast);
  return {
    scenario: 'topics',
    nodes: s.nodes,
    processes: s.processes,
    topics: s.topics,
    subscribers: s.subscribers,
    messages: s.messages,
    size: s.size,
    window: s.window,
    runs: s.runs,
    publish: topicsSummary,
    broadcast: broadcastSummary,
    traffic_ratio: round(broadcastSummary.bytes_per_node_median / topicsSummary.bytes_per_node_median, 2),
    deliveries_ratio: round(topicsSummary.deliveries_per_s / broadcastSummary.deliveries_per_s, 3),
    load: { before: loadBefore.map((l) => round(l)), after: loadavg().map((l) => round(l)) },
    node: process.version,
    cpus: availableParallelism(),
  };
}

function summary(runs: readonly RoundFigures[]): {
  deliveries_per_s: number;
  bytes_per_node_median: number;
  bytes_per_node_max: number;
  per_run: readonly RoundFigures[];
} {
  return {
    deliveries_per_s: Math.round(median(runs.map((r) => r.deliveries_per_s))),
    bytes_per_node_median: Math.round(median(runs.map((r) => r.bytes_per_node_median))),
    bytes_per_node_max: Math.round(median(runs.map((r) => r.bytes_per_node_max))),
    per_run: runs,
  };
}
