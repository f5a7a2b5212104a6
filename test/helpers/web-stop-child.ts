/**
 * A child script for the "stop() with an open event feed lets the process exit" test: it starts
 * a node, opens `GET /events` on it from this same process, stops the node and returns. It never
 * calls `process.exit()`: the process ends only if `stop()` ended the feed and left no handle
 * open. It prints one JSON line per step to stdout.
 *
 * Run: `node --import tsx test/helpers/web-stop-child.ts`
 *
 * @module
 */

import { Node } from '../../src/index.js';
import { openFeed } from './web-client.js';

function step(name: string, extra: Record<string, unknown> = {}): void {
  process.stdout.write(`${JSON.stringify({ step: name, ...extra })}\n`);
}

const node = new Node();
await node.start();
const feed = await openFeed(node.self.port);
await new Promise<void>((resolve) => {
  const poll = (): void => {
    if (feed.events.some((e) => e.event === 'hello')) resolve();
    else setTimeout(poll, 10);
  };
  poll();
});
step('feed-open');
await node.stop();
step('stopped');
const { complete } = await feed.ended;
step('feed-ended', { complete });
