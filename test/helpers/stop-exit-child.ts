/**
 * A child script for the "stop() lets the process exit" test: it starts two nodes, connects
 * them, exchanges messages, stops both and returns. It never calls `process.exit()`: the process
 * ends only if `stop()` left no handle open. It prints one JSON line per step to stdout.
 *
 * Run: `node --import tsx test/helpers/stop-exit-child.ts`
 *
 * @module
 */

import { once } from 'node:events';
import { Node } from '../../src/index.js';

function step(name: string, extra: Record<string, unknown> = {}): void {
  process.stdout.write(`${JSON.stringify({ step: name, ...extra })}\n`);
}

const a = new Node({ name: 'a' });
const b = new Node({ name: 'b' });
await a.start();
await b.start();
step('started', { a: a.self.port, b: b.self.port });

await b.connect(a.self);
step('connected');

const gotBroadcast = once(b, 'message');
const report = await a.broadcast('hello b');
const [msg] = (await gotBroadcast) as [{ text: string }];
step('broadcast', { delivered: report.delivered.length, text: msg.text });

const gotDirect = once(a, 'message');
await b.send(a.self, 'hello a');
const [dm] = (await gotDirect) as [{ text: string }];
step('direct', { text: dm.text });

await b.stop();
await a.stop();
step('stopped', { a: a.status, b: b.status });
