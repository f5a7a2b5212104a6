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
import { nodeDriver } from './lib/node-driver.js';
import { runWorker } from './lib/worker-harness.js';

const dataDir = mkdtempSync(join(tmpdir(), 'tsp2p-bench-data-'));
process.on('exit', () => rmSync(dataDir, { recursive: true, force: true }));
const node = new Node({ host: '127.0.0.1', port: 0, dataDir });

runWorker(nodeDriver(node));
