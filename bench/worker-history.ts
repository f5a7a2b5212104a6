/**
 * A benchmark worker running one tsp2p node with a `dataDir` (from the built `dist/`), for the
 * `catchup` scenario, driven over IPC: see `HistoryCommands` in `lib/protocol.ts`.
 *
 * It runs under plain `node`, without tsx (`lib/plain.ts` turns it into JavaScript before it is
 * forked): the node measured starts in a fresh process, as a restarted node does, and its
 * start-up should not include a TypeScript loader.
 *
 * @module
 */

import { get } from 'node:http';
import { Node } from '../dist/index.js';
import type { HistoryCommands } from './lib/protocol.js';

type Handlers = {
  [K in keyof HistoryCommands]: (args: HistoryCommands[K]['args']) => Promise<HistoryCommands[K]['result']>;
};

type Reply =
  | { readonly ev: 'ready' }
  | { readonly id: number; readonly ok: true; readonly result: unknown }
  | { readonly id: number; readonly ok: false; readonly error: string };

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

let node: Node | undefined;
/** When `start()` was called and when it resolved (wall-clock ms). */
let startAt = 0;
let startedAt = 0;
let cpuAtStart: NodeJS.CpuUsage = process.cpuUsage();
let delivered = 0;
let late = 0;
/** Waiting for `count` deliveries since the start. */
let waiter: { count: number; resolve: (at: number) => void } | undefined;

function need(): Node {
  if (node === undefined) throw new Error('the node is not started');
  return node;
}

/** The node's `/metrics` text (node:http: fetch would load a second HTTP client). */
function metricsText(n: Node): Promise<string> {
  return new Promise((resolve, reject) => {
    get(`${n.url}metrics`, (res) => {
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

/** The `tsp2p_catchup_*` samples of a metrics text, by name and labels. */
function catchUpSamples(text: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const line of text.split('\n')) {
    if (!line.startsWith('tsp2p_catchup_') && !line.startsWith('tsp2p_store_')) continue;
    const space = line.lastIndexOf(' ');
    out[line.slice(0, space)] = Number(line.slice(space + 1));
  }
  return out;
}

const handlers: Handlers = {
  async start({ dataDir, port }) {
    const n = new Node({ host: '127.0.0.1', port, dataDir });
    node = n;
    delivered = 0;
    late = 0;
    n.on('message', (msg) => {
      delivered++;
      if (msg.late === true) late++;
      if (waiter !== undefined && delivered >= waiter.count) {
        const w = waiter;
        waiter = undefined;
        w.resolve(wallNow());
      }
    });
    cpuAtStart = process.cpuUsage();
    startAt = wallNow();
    const self = await n.start();
    startedAt = wallNow();
    return { address: `${self.address}:${self.port}`, port: self.port, startAt, startedAt };
  },
  async connect({ entry }) {
    const n = need();
    await n.connect(entry);
    return { members: n.members().length };
  },
  async publish({ count, size, window }) {
    const n = need();
    const payload = new Uint8Array(size).fill(120);
    let next = 0;
    const t0 = wallNow();
    const lane = async (): Promise<void> => {
      while (next < count) {
        next++;
        await n.broadcast(payload);
      }
    };
    await Promise.all(Array.from({ length: Math.min(window, count) }, lane));
    return { ms: wallNow() - t0 };
  },
  async wait({ count }) {
    const doneAt =
      delivered >= count
        ? wallNow()
        : await new Promise<number>((resolve) => {
            waiter = { count, resolve };
          });
    const cpu = process.cpuUsage(cpuAtStart);
    const metrics = catchUpSamples(await metricsText(need()));
    return {
      startAt,
      startedAt,
      doneAt,
      delivered,
      late,
      cpuMs: (cpu.user + cpu.system) / 1000,
      metrics,
    };
  },
  async cpu() {
    const c = process.cpuUsage();
    return { cpuMs: (c.user + c.system) / 1000 };
  },
  async status() {
    return { delivered, late, members: node?.members().length ?? 0 };
  },
  async stopNode() {
    await node?.stop();
    node = undefined;
    return {};
  },
  async stop() {
    await node?.stop();
    // Exit once the reply is on its way.
    setImmediate(() => process.exit(0));
    return {};
  },
};

process.on('message', (raw: unknown) => {
  const req = raw as { id: number; cmd: keyof HistoryCommands; args: unknown };
  const handler = handlers[req.cmd] as ((args: unknown) => Promise<unknown>) | undefined;
  const reply = (r: Reply): void => {
    send(r);
  };
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
