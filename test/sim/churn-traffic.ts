/**
 * App messages under churn (issue 16, case 7): a settled network carries chat traffic while 2% of
 * its nodes a minute go away (half crash, half leave) and as many newcomers join. Used by
 * `churn-traffic.test.ts` (`npm test`, 100 nodes).
 *
 * What is checked, from what every node's events said:
 * - **no application message is lost**: every message whose sender was still up `boundMs` after
 *   sending reached every node that had joined (its `connect()` had returned) before it was sent
 *   and was still up at the end; exactly once each;
 * - **membership never delays it past the bound**: each of those deliveries came within `boundMs`
 *   of the `broadcast()` call (simulated time);
 * - **no membership update is lost**: at the end every node that is up holds exactly the nodes
 *   that are up, and recorded each node that went away while it knew it: "left" for a leave,
 *   "failed" for a crash, never the other.
 *
 * @module
 */

import type { Node } from '../../src/index.js';
import type { SimNetwork } from './network.js';

/** How {@link churnTraffic} runs. */
export interface ChurnOptions {
  /** Simulated minutes of churn and traffic. */
  readonly minutes: number;
  /** Fraction of the nodes replaced a minute (0.02: 2%). */
  readonly churnPerMinute: number;
  /** Chat messages a second, the whole network together, each from a random node that is up. */
  readonly messagesPerSecond: number;
  /** The delivery bound, in simulated ms. */
  readonly boundMs: number;
  /** Simulated ms to let the last updates settle after the churn ends (suspicions included). */
  readonly settleMs: number;
}

/** What {@link churnTraffic} measured; `problems` is empty when every check held. */
export interface ChurnReport {
  readonly sent: number;
  readonly checkedDeliveries: number;
  readonly crashes: number;
  readonly leaves: number;
  readonly joins: number;
  /** Requests sent during the churn, in all and by message type (the envelope's `type`). */
  readonly requests: number;
  readonly requestTypes: Readonly<Record<string, number>>;
  /** Delivery latency over the checked deliveries, simulated ms. */
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly maxMs: number;
  readonly problems: readonly string[];
}

interface Member {
  node: Node;
  /** Simulated ms when its connect() returned (0 for the starting nodes). */
  joinedAt: number;
  /** When it crashed or began to leave; undefined while up. */
  goneAt: number | undefined;
  how: 'crash' | 'leave' | undefined;
  /** text → simulated ms of its first delivery, and how many times. */
  readonly got: Map<string, { at: number; times: number }>;
  /** member id → 'member:leave' / 'member:fail' events it emitted. */
  readonly departures: Map<string, string[]>;
}

function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

/**
 * Runs the churn and traffic on `sim`'s nodes, which must have joined and converged. Newcomers
 * are started with `options` (as `sim.add`) and join through a random node that is up.
 */
export async function churnTraffic(
  sim: SimNetwork,
  run: ChurnOptions,
  addOptions: Parameters<SimNetwork['add']>[0] = {},
): Promise<ChurnReport> {
  const { clock, random } = sim;
  const members: Member[] = [];
  const track = (node: Node, joinedAt: number): Member => {
    const m: Member = {
      node,
      joinedAt,
      goneAt: undefined,
      how: undefined,
      got: new Map(),
      departures: new Map(),
    };
    node.on('message', (msg) => {
      const seen = m.got.get(msg.text);
      if (seen === undefined) m.got.set(msg.text, { at: clock.now(), times: 1 });
      else seen.times++;
    });
    for (const event of ['member:leave', 'member:fail'] as const) {
      node.on(event, (p) => {
        const list = m.departures.get(p.id) ?? [];
        list.push(event);
        m.departures.set(p.id, list);
      });
    }
    members.push(m);
    return m;
  };
  for (const node of sim.nodes) track(node, 0);
  const up = (): Member[] => members.filter((m) => m.goneAt === undefined);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random.next() * xs.length)]!;

  const sent: { text: string; from: Member; at: number }[] = [];
  const pending: Promise<unknown>[] = [];
  const n = sim.nodes.length;
  const churnEveryMs = 60_000 / Math.max(1e-9, n * run.churnPerMinute);
  const sendEveryMs = 1000 / run.messagesPerSecond;
  const endAt = clock.now() + run.minutes * 60_000;
  let nextChurn = clock.now() + churnEveryMs / 2;
  let nextSend = clock.now();
  let crashes = 0;
  let leaves = 0;
  let joins = 0;
  const stepMs = Math.min(sendEveryMs, 50);
  const requestsBefore = sim.network.stats.requests;
  const byType = (): Map<number, number> => {
    const out = new Map<number, number>();
    for (const m of sim.network.stats.sent.values())
      for (const [k, v] of m) out.set(k, (out.get(k) ?? 0) + v);
    return out;
  };
  const typesBefore = byType();

  while (clock.now() < endAt) {
    while (nextSend <= clock.now()) {
      const from = pick(up().filter((m) => m.node.isConnected));
      const text = `chat ${sent.length}`;
      sent.push({ text, from, at: clock.now() });
      pending.push(from.node.broadcast(text).catch(() => undefined));
      nextSend += sendEveryMs;
    }
    if (nextChurn <= clock.now()) {
      nextChurn += churnEveryMs;
      // Never the first node: it stays as a known entry point, as a seed node would.
      const victim = pick(up().filter((m) => m !== members[0] && m.node.isConnected));
      victim.goneAt = clock.now();
      if ((crashes + leaves) % 2 === 0) {
        victim.how = 'crash';
        crashes++;
        sim.network.kill(`${victim.node.self.address}:${victim.node.self.port}`);
        pending.push(victim.node.stop().catch(() => undefined));
      } else {
        victim.how = 'leave';
        leaves++;
        pending.push(victim.node.stop().catch(() => undefined));
      }
      const entry = pick(up().filter((m) => m.node.isConnected));
      const fresh = await sim.add(addOptions);
      joins++;
      const joining = fresh.connect(entry.node.self).then(
        () => track(fresh, clock.now()),
        () => undefined,
      );
      pending.push(joining);
    }
    await clock.advance(stepMs);
  }
  const requests = sim.network.stats.requests - requestsBefore;
  const typesAfter = byType();
  const requestTypes = Object.fromEntries(
    [...typesAfter].map(([k, v]) => [k, v - (typesBefore.get(k) ?? 0)]),
  );
  await sim.run(Promise.all(pending), run.settleMs + 60_000);
  await clock.advance(run.settleMs);

  const problems: string[] = [];
  const latencies: number[] = [];
  const stayed = up();
  for (const msg of sent) {
    const senderGone = msg.from.goneAt !== undefined && msg.from.goneAt < msg.at + run.boundMs;
    if (senderGone) continue;
    for (const m of stayed) {
      if (m === msg.from || m.joinedAt > msg.at) continue;
      const got = m.got.get(msg.text);
      if (got === undefined) {
        problems.push(`${msg.text} (sent at ${msg.at} ms) never reached ${m.node.self.port}`);
        continue;
      }
      if (got.times !== 1) problems.push(`${msg.text} reached ${m.node.self.port} ${got.times} times`);
      const latency = got.at - msg.at;
      latencies.push(latency);
      if (latency > run.boundMs) {
        problems.push(`${msg.text} reached ${m.node.self.port} after ${latency} ms (bound ${run.boundMs})`);
      }
    }
  }
  const upIds = new Set(stayed.map((m) => m.node.id));
  for (const m of stayed) {
    const held = new Set(m.node.members().map((p) => p.id));
    const extra = [...held].filter((id) => !upIds.has(id));
    const missing = [...upIds].filter((id) => id !== m.node.id && !held.has(id));
    if (extra.length > 0 || missing.length > 0) {
      problems.push(`${m.node.self.port} holds ${extra.length} gone and misses ${missing.length} up`);
    }
    for (const gone of members) {
      if (gone.how === undefined || (gone.goneAt ?? 0) < m.joinedAt) continue;
      const said = m.departures.get(gone.node.id) ?? [];
      const want = gone.how === 'crash' ? 'member:fail' : 'member:leave';
      if (said.length !== 1 || said[0] !== want) {
        problems.push(
          `${m.node.self.port} recorded [${said.join(', ')}] for a ${gone.how} (${want} expected)`,
        );
      }
    }
  }
  latencies.sort((a, b) => a - b);
  return {
    sent: sent.length,
    checkedDeliveries: latencies.length,
    crashes,
    leaves,
    joins,
    requests,
    requestTypes,
    p50Ms: Math.round(quantile(latencies, 0.5)),
    p99Ms: Math.round(quantile(latencies, 0.99)),
    maxMs: Math.round(latencies.at(-1) ?? 0),
    problems,
  };
}
