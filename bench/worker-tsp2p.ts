/**
 * A benchmark worker running one tsp2p node (from the built `dist/`), driven over IPC by the
 * parent benchmark. Start it with `child_process.fork`; see `lib/protocol.ts`.
 *
 * @module
 */

import { Node } from '../dist/index.js';
import { nodeDriver } from './lib/node-driver.js';
import { runWorker } from './lib/worker-harness.js';

const node = new Node({ host: '127.0.0.1', port: 0 });

runWorker(nodeDriver(node));
