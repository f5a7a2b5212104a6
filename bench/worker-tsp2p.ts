/**
 * A benchmark worker running one tsp2p node (from the built `dist/`), driven over IPC by the
 * parent benchmark. Start it with `child_process.fork`; see `lib/protocol.ts`.
 *
 * @module
 */

import { Node } from '../dist/index.js';
import { type Driver, runWorker } from './lib/worker-harness.js';

const node = new Node({ host: '127.0.0.1', port: 0 });

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
