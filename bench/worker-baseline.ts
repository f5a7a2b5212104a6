/**
 * A benchmark worker running the bare baseline: a plain `node:http` server and one undici `Pool`
 * per peer (as many connections per peer as tsp2p's HTTP transport), one POST per delivery,
 * with a small gop2p-style JSON body carrying the same payload. No validation, no membership:
 * the least a node must do to deliver a message over HTTP.
 *
 * @module
 */

import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Pool } from 'undici';
import { type Driver, runWorker } from './lib/worker-harness.js';

/** Same as tsp2p's HttpTransport defaults. */
const CONNECTIONS_PER_PEER = 4;
const KEEP_ALIVE_MS = 10_000;

let deliver: (payload: Uint8Array) => void = () => undefined;
let self = '';
let from = { address: '127.0.0.1', port: 0 };
let pools: Pool[] = [];

const server = createServer(
  { keepAliveTimeout: KEEP_ALIVE_MS },
  (req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
      let status = 200;
      try {
        const envelope = JSON.parse(body.toString('utf8')) as { data?: string };
        deliver(Buffer.from(envelope.data ?? '', 'base64'));
      } catch {
        status = 400;
      }
      res.writeHead(status, { 'content-length': '0' });
      res.end();
    });
  },
);

async function post(pool: Pool, body: Buffer): Promise<void> {
  const res = await pool.request({
    path: '/',
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body,
  });
  await res.body.dump();
  if (res.statusCode !== 200) throw new Error(`status ${res.statusCode}`);
}

const driver: Driver = {
  async start() {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    const port = (server.address() as AddressInfo).port;
    from = { address: '127.0.0.1', port };
    self = `127.0.0.1:${port}`;
    return self;
  },
  async join(_entry, peers) {
    pools = peers
      .filter((p) => p !== self)
      .map(
        (p) =>
          new Pool(`http://${p}`, { connections: CONNECTIONS_PER_PEER, keepAliveTimeout: KEEP_ALIVE_MS }),
      );
    return pools.length;
  },
  members: () => pools.length,
  async broadcast(payload) {
    const body = Buffer.from(
      JSON.stringify({
        type: 2,
        data: Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength).toString('base64'),
        from,
      }),
    );
    const results = await Promise.allSettled(pools.map((pool) => post(pool, body)));
    let failed = 0;
    let error: string | undefined;
    for (const r of results) {
      if (r.status === 'rejected') {
        failed++;
        error ??= r.reason instanceof Error ? r.reason.message : String(r.reason);
      }
    }
    return error === undefined ? { failed } : { failed, error };
  },
  onDeliver(cb) {
    deliver = cb;
  },
  async stop() {
    await Promise.all(pools.map((p) => p.destroy()));
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
  },
};

runWorker(driver);
