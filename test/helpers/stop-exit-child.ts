/**
 * "stop() lets the process exit": a child process runs a scenario, stops every node and returns.
 * It never calls `process.exit()`, so it ends only if `stop()` left no handle open; it prints one
 * JSON line per step on stdout. The scenarios:
 *
 * - `nodes`: two nodes start, connect, exchange a broadcast and a direct message, and stop;
 * - `feed`: a node starts, this same process opens `GET /events` on it, and the node stops: the
 *   feed must be ended by the server (`complete`), not cut.
 *
 * A test calls {@link runStopExitChild}; the same file is the child
 * (`node --import tsx test/helpers/stop-exit-child.ts <scenario>`).
 *
 * @module
 */

import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Node } from '../../src/index.js';
import type { HasAfter } from './nodes.js';
import { withDeadline } from './wait.js';
import { openFeed } from './web-client.js';

/** What the child does before it stops its nodes. */
export type ExitScenario = 'nodes' | 'feed';

/** One line the child printed. */
export interface ExitStep {
  readonly step: string;
  readonly [field: string]: unknown;
}

/** How the child ended, and what it printed. */
export interface ExitResult {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly steps: ExitStep[];
  readonly stderr: string;
}

const SCRIPT = fileURLToPath(import.meta.url);
const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/**
 * Runs the child with `scenario` and resolves once it has exited on its own. Rejects, with its
 * output, if it has not exited within 30 s (a dangling handle never ends; loading takes a second
 * or two on a busy machine). The child is killed when the test ends if it still runs.
 */
export async function runStopExitChild(t: HasAfter, scenario: ExitScenario): Promise<ExitResult> {
  const env = { ...process.env };
  delete env.NODE_TEST_CONTEXT;
  delete env.NODE_OPTIONS;
  const child = spawn(process.execPath, ['--import', 'tsx', SCRIPT, scenario], {
    cwd: ROOT,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (c: string) => {
    stdout += c;
  });
  child.stderr.setEncoding('utf8').on('data', (c: string) => {
    stderr += c;
  });
  const exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
  t.after(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  const [code, signal] = await withDeadline(exited, 30_000, 'the child to exit').catch((err: unknown) => {
    throw new Error(`${(err as Error).message}\nstdout:\n${stdout}\nstderr:\n${stderr}`);
  });
  const steps = stdout
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => JSON.parse(line) as ExitStep);
  return { code, signal, steps, stderr };
}

function step(name: string, extra: Record<string, unknown> = {}): void {
  process.stdout.write(`${JSON.stringify({ step: name, ...extra })}\n`);
}

async function twoNodes(): Promise<void> {
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
}

async function openEventFeed(): Promise<void> {
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
}

// Run as the child: the scenario is the first argument.
if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const scenario = process.argv[2];
  if (scenario === 'nodes') await twoNodes();
  else if (scenario === 'feed') await openEventFeed();
  else {
    process.stderr.write(`unknown scenario ${JSON.stringify(scenario)}: nodes or feed\n`);
    process.exitCode = 2;
  }
}
