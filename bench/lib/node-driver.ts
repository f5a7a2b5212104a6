/**
 * The broadcast workers' driver for a tsp2p node (`worker-tsp2p.ts`, `worker-tsp2p-data.ts`).
 *
 * @module
 */

import type { Node } from '../../dist/index.js';
import type { Driver } from './worker-harness.js';

/** Drives `node` for the broadcast bench: start, join, broadcast, deliveries, stop. */
export function nodeDriver(node: Node): Driver {
  return {
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
}
