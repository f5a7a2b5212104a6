/**
 * A benchmark worker hosting one or more tsp2p nodes (from the built `dist/`), for the
 * membership scenarios (`join`, `failure`, `idle`), driven over IPC: see `MemberCommands` in
 * `lib/protocol.ts`.
 *
 * It runs under plain `node`, without tsx (the `idle` scenario measures its memory, and the tsx
 * loader alone adds about 40 MB): `lib/plain.ts` bundles it with the bench modules it imports into
 * one JavaScript file; `dist/` stays outside, loaded as an application loads it.
 *
 * @module
 */

import { get } from 'node:http';
import { Node, type NodeOptions, type Peer } from '../dist/index.js';
import { processRecord } from './lib/process-record.js';
import type { MemberCommands, MemberEventRecord, TrafficRecord } from './lib/protocol.js';

type Handlers = {
  [K in keyof MemberCommands]: (args: MemberCommands[K]['args']) => Promise<MemberCommands[K]['result']>;
};

type Reply =
  | { readonly ev: 'ready' }
  | { readonly id: number; readonly ok: true; readonly result: unknown }
  | { readonly id: number; readonly ok: false; readonly error: string };

const EVENTS = ['member:join', 'member:suspect', 'member:fail', 'member:leave', 'member:update'] as const;

/** Wall-clock ms with sub-ms resolution, comparable across processes (as `lib/payload.ts`). */
function wallNow(): number {
  return performance.timeOrigin + performance.now();
}

const send = process.send?.bind(process);
if (send === undefined) {
  process.stderr.write('bench worker: start me with child_process.fork (no IPC channel)\n');
  process.exit(2);
}
// The parent died or closed the channel: never linger as an orphan.
process.on('disconnect', () => process.exit(1));

let nodes: Node[] = [];
/** Per node: when its view was first full, and since when it has been full without a break. */
let fullAt: (number | null)[] = [];
let fullSince: (number | null)[] = [];
let events: MemberEventRecord[] = [];
let size = 0;

function aliveCount(node: Node): number {
  let n = 0;
  for (const m of node.memberStates()) if (m.state === 'alive') n++;
  return n;
}

/** Records when node `i` holds every other node of the network alive, and when it stops to. */
function checkFull(i: number): void {
  // A member event of a node already stopped and dropped (`stopNodes`): nothing to record.
  const node = nodes[i];
  if (node === undefined) return;
  const full = aliveCount(node) >= size - 1;
  if (!full) {
    fullSince[i] = null;
    return;
  }
  if (fullSince[i] !== null) return;
  const now = wallNow();
  fullSince[i] = now;
  fullAt[i] ??= now;
}

/** A node's `/metrics` text (node:http: fetch would load a second HTTP client into the process). */
function metricsText(node: Node): Promise<string> {
  return new Promise((resolve, reject) => {
    get(`${node.url}metrics`, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        text += chunk;
      });
      res.on('end', () => resolve(text));
      res.on('error', reject);
    }).on('error', reject);
  });
}

/** The per-type sent counters of a node, from its `/metrics` text. */
function trafficOf(text: string): TrafficRecord {
  const requests: Record<string, number> = {};
  const bytes: Record<string, number> = {};
  for (const line of text.split('\n')) {
    const m = /^tsp2p_(requests_sent|request_bytes_sent)_total\{type="([a-z_]+)"\} (\d+)/.exec(line);
    if (m === null) continue;
    (m[1] === 'requests_sent' ? requests : bytes)[m[2]!] = Number(m[3]);
  }
  return { requests, bytes };
}

async function stopNodes(): Promise<void> {
  const stopping = nodes;
  nodes = [];
  await Promise.allSettled(stopping.map((n) => n.stop()));
}

const handlers: Handlers = {
  start: async ({ count, size: networkSize, options }) => {
    await stopNodes();
    size = networkSize;
    events = [];
    fullAt = Array.from({ length: count }, () => null);
    fullSince = Array.from({ length: count }, () => null);
    nodes = Array.from(
      { length: count },
      () => new Node({ host: '127.0.0.1', port: 0, ...(options as NodeOptions) }),
    );
    for (const [i, node] of nodes.entries()) {
      for (const event of EVENTS) {
        node.on(event, (peer: Peer) => {
          events.push({ node: i, event, peer: peer.id, at: wallNow() });
          checkFull(i);
        });
      }
    }
    const selves = await Promise.all(nodes.map((n) => n.start()));
    nodes.forEach((_, i) => {
      checkFull(i); // a network of one is full at once
    });
    return { nodes: selves.map((p) => ({ id: p.id, address: `${p.address}:${p.port}` })) };
  },
  connect: async ({ entries, at }) => {
    await new Promise((r) => setTimeout(r, Math.max(0, at - wallNow())));
    const doneAt: (number | null)[] = entries.map(() => null);
    const errors: string[] = [];
    await Promise.all(
      entries.map(async (entry, i) => {
        if (entry === null) return;
        try {
          await nodes[i]!.connect(entry);
          checkFull(i);
        } catch (err) {
          errors.push(`node ${i} via ${entry}: ${(err as Error).message}`);
        }
        doneAt[i] = wallNow();
      }),
    );
    return { doneAt, errors };
  },
  progress: async () => {
    nodes.forEach((_, i) => {
      checkFull(i);
    });
    return {
      alive: nodes.map(aliveCount),
      live: nodes.map((n) => n.members().length),
      fullAt: [...fullAt],
      fullSince: [...fullSince],
    };
  },
  events: async () => events,
  traffic: async () => Promise.all(nodes.map(async (n) => trafficOf(await metricsText(n)))),
  memory: async ({ gc }) => processRecord(gc),
  stopNodes: async () => {
    await stopNodes();
    return {};
  },
  stop: async () => {
    await stopNodes();
    // Exit once the reply is on its way.
    setImmediate(() => process.exit(0));
    return {};
  },
};

process.on('message', (raw: unknown) => {
  const req = raw as { id: number; cmd: keyof MemberCommands; args: never };
  const reply = (r: Reply): void => {
    send(r);
  };
  const handler = handlers[req.cmd] as ((args: unknown) => Promise<unknown>) | undefined;
  if (handler === undefined) {
    reply({ id: req.id, ok: false, error: `unknown command ${String(req.cmd)}` });
    return;
  }
  handler(req.args).then(
    (result) => reply({ id: req.id, ok: true, result }),
    (err: unknown) =>
      reply({ id: req.id, ok: false, error: err instanceof Error ? err.message : String(err) }),
  );
});
send({ ev: 'ready' } satisfies Reply);
