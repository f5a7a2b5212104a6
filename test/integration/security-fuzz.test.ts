/**
 * A short seeded fuzz run against a live node in compat mode (the mode that accepts the most):
 * random and mutated requests, signed and unsigned. No answer is a 5xx, the node never stops
 * answering, its real member stays a member and still gets its messages through, and its
 * memory does not climb. `npm run fuzz` runs the same fuzzer for 100,000 requests and more.
 */

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { startNode } from '../helpers/nodes.js';
import { fuzz } from '../helpers/security-fuzz.js';
import { ChildNode } from '../helpers/security-node.js';
import { waitFor } from '../helpers/wait.js';
import { testSeed } from '../sim/network.js';

const REQUESTS = Number(process.env.TSP2P_FUZZ_REQUESTS ?? 4_000);

test(`${REQUESTS} random and mutated requests: no 5xx, no crash, membership kept, memory flat`, async (t) => {
  const seed = testSeed();
  t.diagnostic(`seed ${seed} (replay with TSP2P_SEED=${seed})`);
  const node = await ChildNode.start({
    compat: 'gop2p',
    maxMessageBytes: 4096,
    trackTexts: false,
    // The replay cache holds a window's worth of envelopes: a short window keeps it small here.
    maxClockSkewMs: 20_000,
  });
  t.after(() => node.stop());
  const member = await startNode(t);
  await member.connect(node.self);

  const result = await fuzz(
    { port: node.self.port, memory: () => node.memory() },
    {
      seed,
      requests: REQUESTS,
      samples: 4,
      member: { id: member.id, address: member.self.address, port: member.self.port },
    },
  );
  t.diagnostic(`statuses ${JSON.stringify(result.statuses)} in ${result.elapsedMs} ms`);
  t.diagnostic(`kinds ${JSON.stringify(result.kinds)}`);
  assert.equal(result.sent, REQUESTS);
  assert.deepEqual(result.serverErrors, [], `seed ${seed}: 5xx answers`);
  assert.equal(
    result.noAnswer,
    0,
    `seed ${seed}: requests without an answer: ${result.noAnswerReasons.join('; ')}`,
  );
  assert.ok(node.alive, 'the node is still running');
  assert.ok((result.statuses[200] ?? 0) > 0, 'some requests were accepted');
  assert.ok((result.statuses[401] ?? 0) > 0, 'some requests were refused as unauthenticated');

  // The real member is still a member, and still gets through.
  assert.ok((await node.members()).includes(member.id), `seed ${seed}: the member was dropped`);
  const before = (await node.received()).count;
  await member.broadcast('after the fuzz');
  await waitFor(async () => (await node.received()).count > before, { message: 'the broadcast to arrive' });

  const [first, last] = [result.memory[0]!, result.memory[result.memory.length - 1]!];
  const growth = (last.heapUsed - first.heapUsed) / 2 ** 20;
  t.diagnostic(
    `heap ${(first.heapUsed / 2 ** 20).toFixed(1)} -> ${(last.heapUsed / 2 ** 20).toFixed(1)} MiB`,
  );
  assert.ok(growth < 16, `seed ${seed}: heap grew by ${growth.toFixed(1)} MiB`);
});
