/**
 * A benchmark worker running one tsp2p node with a `dataDir` (an SQLite store in a fresh
 * temporary directory, removed when the worker stops): the `broadcast` scenario's `--data on`
 * and `--data both`. Otherwise as `worker-tsp2p.ts`.
 *
 * @module
 */

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Node } from '../dist/index.js';
import { type Driver, runWorker } from './lib/worker-harness.js';

const dataDir = mkdtempSync(join(tmpdir(), 'tsp2p-bench-data-'));
process.on('exit', () => rmSync(dataDir, { recursive: true, force: true }));
const node = new Node({ host: '127.0.0.1', port: 0, dataDir });

const driver: Driver = {
  async start() {
    const self = await node.start();
    return `${self.address}:${self.port}`;
  },
  async join(entry) {
    if (entry !== undefined) await node.connect(entry);
    return node.members().length;
  },
  members: () => node.members().length,
  async broadcast(payload) {
    const report = await node.broadcast(payload);
    if (report.failed.length === 0) return { failed: 0 };
    return { failed: report.failed.length, error: report.failed[0]!.error.message };
  },
  onDeliver(cb) {
    node.on('message', (msg) => cb(msg.data));
  },
  stop: () => node.stop(),
};

runWorker(driver);
