/**
 * A node in its own process for the security tests, so that its memory can be measured apart
 * from the test's. Spawned by {@link ./security-node.ts} with `--expose-gc`.
 *
 * Run: `node --expose-gc --import tsx test/helpers/security-child.ts '<options JSON>'`, where the
 * options are `NodeOptions` plus `identitySeed` (hex, 32 bytes) and `trackTexts` (default true:
 * remember each distinct text received; off for long runs, where that set would grow).
 *
 * stdout, one JSON line each: `{"ready":true,"self":Peer,"pid":n}` once listening, then one
 * answer per command. stdin, one command per line:
 * - `mem`: `{"rss","heapUsed","external","arrayBuffers"}` in bytes, after a full GC;
 * - `received`: `{"count":n,"texts":k}`: messages received, and distinct texts;
 * - `members`: `{"members":[id...]}`;
 * - `stop`: stops the node and exits 0.
 * End of stdin stops the node too.
 *
 * @module
 */

import { createInterface } from 'node:readline';
import { identityFromSeed } from '../../src/identity.js';
import { Node, type NodeOptions } from '../../src/index.js';

const raw = JSON.parse(process.argv[2] ?? '{}') as NodeOptions & {
  identitySeed?: string;
  trackTexts?: boolean;
};
const { identitySeed, trackTexts = true, ...options } = raw;
const node = new Node({
  ...options,
  ...(identitySeed !== undefined
    ? { identity: identityFromSeed(Buffer.from(identitySeed, 'hex')).privateKey }
    : {}),
});
let count = 0;
const texts = new Set<string>();
node.on('message', (m) => {
  count++;
  if (trackTexts) texts.add(m.text);
});

function out(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value)}\n`);
}

const self = await node.start();
out({ ready: true, self, pid: process.pid });

const gc = (globalThis as { gc?: () => void }).gc;
let stopping = false;
async function stop(): Promise<void> {
  if (stopping) return;
  stopping = true;
  await node.stop();
  process.exit(0);
}

const lines = createInterface({ input: process.stdin });
lines.on('line', (line) => {
  switch (line.trim()) {
    case 'mem': {
      gc?.();
      gc?.();
      const m = process.memoryUsage();
      out({ rss: m.rss, heapUsed: m.heapUsed, external: m.external, arrayBuffers: m.arrayBuffers });
      break;
    }
    case 'received':
      out({ count, texts: texts.size });
      break;
    case 'members':
      out({ members: node.members().map((p) => p.id) });
      break;
    case 'stop':
      void stop();
      break;
    default:
      out({ error: `unknown command ${line}` });
  }
});
lines.on('close', () => void stop());
