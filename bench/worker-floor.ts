/**
 * The `idle` scenario's floor: what one HTTP exchange a probe period costs a Node process on this
 * machine, with no tsp2p in it. A bare `node:http` server answers every request with as many
 * bytes as it got; a keep-alive `http.Agent` sends a request to the next peer (round-robin, as
 * SWIM probes) every probe period, with a timeout timer that the answer clears, and a larger
 * request every push-pull period. That is the traffic a settled tsp2p node has, so a tsp2p node
 * at rest can cost no less than this process, and the ratio of the two is tsp2p's own overhead.
 *
 * Plain `node`, no tsx: bundled by `lib/plain.ts` with the bench modules it imports.
 *
 * @module
 */

import { Agent, createServer, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { processRecord } from './lib/process-record.js';
import type { FloorCommands } from './lib/protocol.js';

type Handlers = {
  [K in keyof FloorCommands]: (args: FloorCommands[K]['args']) => Promise<FloorCommands[K]['result']>;
};

const send = process.send?.bind(process);
if (send === undefined) {
  process.stderr.write('bench worker: start me with child_process.fork (no IPC channel)\n');
  process.exit(2);
}
process.on('disconnect', () => process.exit(1));

const server = createServer((req, res) => {
  let size = 0;
  req.on('data', (chunk: Buffer) => {
    size += chunk.length;
  });
  req.on('end', () => {
    const body = Buffer.alloc(size, 0x61);
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': body.length });
    res.end(body);
  });
});
// As tsp2p's server and client: idle connections outlive a probe round.
server.keepAliveTimeout = 125_000;
const agent = new Agent({ keepAlive: true, maxSockets: 1, timeout: 120_000 });
const timers: NodeJS.Timeout[] = [];

function exchange(peer: string, bytes: number, timeoutMs: number): void {
  const [host, port] = [peer.slice(0, peer.lastIndexOf(':')), Number(peer.slice(peer.lastIndexOf(':') + 1))];
  const body = Buffer.alloc(bytes, 0x61);
  const timer = setTimeout(() => undefined, timeoutMs);
  const req = request(
    {
      host,
      port,
      method: 'POST',
      path: '/',
      agent,
      headers: { 'content-type': 'application/json', 'content-length': body.length },
    },
    (res) => {
      res.on('data', () => undefined);
      res.on('end', () => clearTimeout(timer));
    },
  );
  req.on('error', () => clearTimeout(timer));
  req.end(body);
}

const handlers: Handlers = {
  start: () =>
    new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => {
        resolve({ address: `127.0.0.1:${(server.address() as AddressInfo).port}` });
      });
    }),
  run: async ({ peers, probeMs, timeoutMs, probeBytes, syncMs, syncBytes }) => {
    const order = [...peers].sort(() => Math.random() - 0.5);
    // Open a connection to every peer first: a settled node holds one to each member.
    for (const peer of order) exchange(peer, probeBytes, timeoutMs);
    let next = 0;
    const pick = (): string => order[next++ % order.length]!;
    // Start at a random phase, as nodes that joined at different instants do.
    const start = setTimeout(() => {
      timers.push(setInterval(() => exchange(pick(), probeBytes, timeoutMs), probeMs));
      timers.push(setInterval(() => exchange(pick(), syncBytes, timeoutMs), syncMs));
    }, Math.random() * probeMs);
    timers.push(start);
    return {};
  },
  memory: async ({ gc }) => processRecord(gc),
  stop: async () => {
    for (const t of timers) clearTimeout(t);
    server.close();
    agent.destroy();
    setImmediate(() => process.exit(0));
    return {};
  },
};

process.on('message', (raw: unknown) => {
  const req = raw as { id: number; cmd: keyof FloorCommands; args: never };
  const handler = handlers[req.cmd] as ((args: unknown) => Promise<unknown>) | undefined;
  if (handler === undefined) {
    send({ id: req.id, ok: false, error: `unknown command ${String(req.cmd)}` });
    return;
  }
  handler(req.args).then(
    (result) => send({ id: req.id, ok: true, result }),
    (err: unknown) =>
      send({ id: req.id, ok: false, error: err instanceof Error ? err.message : String(err) }),
  );
});
send({ ev: 'ready' });
