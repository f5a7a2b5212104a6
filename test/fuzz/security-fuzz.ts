/**
 * The long fuzz run: `npm run fuzz` (100,000 requests), or
 * `node --import tsx test/fuzz/security-fuzz.ts [--requests N] [--seed S]`.
 *
 * Starts a node in compat mode in a child process, joins a real member to it, and sends the
 * seeded mix of random and mutated requests of `test/helpers/security-fuzz.ts`. It passes with
 * 0 crashes, 0 answers of 500 or more, 0 requests left without an answer, the member still a
 * member and still heard, and the node's heap flat over the second half of the run (after a
 * full GC, growing by less than 10%: the first half fills the bounded caches). It prints the
 * seed; a failure replays with `--seed`. Exit code 0 on success, 1 on failure.
 *
 * @module
 */

import { parseArgs } from 'node:util';
import { Node } from '../../src/index.js';
import { fuzz } from '../helpers/security-fuzz.js';
import { ChildNode } from '../helpers/security-node.js';

const { values } = parseArgs({
  options: { requests: { type: 'string', default: '100000' }, seed: { type: 'string' } },
});
const requests = Number(values.requests);
const seed = values.seed !== undefined ? Number(values.seed) : Math.floor(Math.random() * 0x7fffffff);
const log = (line: string): void => {
  process.stdout.write(`${line}\n`);
};
log(`fuzz: ${requests} requests, seed ${seed} (replay with --seed ${seed})`);

const node = await ChildNode.start({
  compat: 'gop2p',
  maxMessageBytes: 4096,
  trackTexts: false,
  // A replay window of 10 s: the replay cache reaches its steady size early in the run.
  maxClockSkewMs: 10_000,
});
const member = new Node();
await member.start();
const failures: string[] = [];
try {
  await member.connect(node.self);
  const result = await fuzz(
    { port: node.self.port, memory: () => node.memory() },
    {
      seed,
      requests,
      samples: 20,
      member: { id: member.id, address: member.self.address, port: member.self.port },
      log,
    },
  );
  log(`statuses: ${JSON.stringify(result.statuses)}`);
  log(`kinds: ${JSON.stringify(result.kinds)}`);
  log(`slowest answer by kind (ms): ${JSON.stringify(result.slowest)}`);
  log(`${result.sent} requests in ${(result.elapsedMs / 1000).toFixed(1)} s`);
  if (!node.alive) failures.push('the node crashed');
  if (result.serverErrors.length > 0) failures.push(`5xx answers: ${JSON.stringify(result.serverErrors)}`);
  if (result.noAnswer > 0)
    failures.push(`${result.noAnswer} without an answer: ${result.noAnswerReasons.join('; ')}`);
  if (!(await node.members()).includes(member.id)) failures.push('the member was dropped');
  const before = (await node.received()).count;
  await member.broadcast('after the fuzz');
  const deadline = Date.now() + 10_000;
  while ((await node.received()).count === before && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  if ((await node.received()).count === before) failures.push("the member's broadcast did not arrive");
  const half = result.memory.filter((m) => m.at >= requests / 2);
  const [mid, end] = [half[0], half[half.length - 1]];
  if (mid !== undefined && end !== undefined) {
    const growth = (end.heapUsed - mid.heapUsed) / mid.heapUsed;
    const mib = (n: number): string => (n / 2 ** 20).toFixed(1);
    log(
      `heap ${mib(result.memory[0]!.heapUsed)} MiB at the start, ${mib(mid.heapUsed)} at half, ` +
        `${mib(end.heapUsed)} at the end (${(growth * 100).toFixed(1)}% over the second half); ` +
        `rss ${mib(result.memory[0]!.rss)} -> ${mib(mid.rss)} -> ${mib(end.rss)} MiB`,
    );
    if (growth > 0.1) failures.push(`the heap grew by ${(growth * 100).toFixed(1)}% over the second half`);
  }
} catch (err) {
  failures.push(`the run failed: ${(err as Error).stack ?? err}`);
} finally {
  await member.stop();
  await node.stop();
}
if (failures.length > 0) {
  log(`FAIL (seed ${seed}):\n  ${failures.join('\n  ')}`);
  process.exitCode = 1;
} else {
  log(`OK: 0 crashes, 0 5xx, memory flat (seed ${seed})`);
}
