/**
 * A semi-detached node (issue 16, case 2): its requests go out, but every request to it and
 * every answer to it is lost (one-way loss). It suspects everyone, and tells everyone so. The
 * false suspicions of healthy nodes must stay bounded and none may be declared dead; the
 * semi-detached node itself must be declared dead by every other member.
 */

import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Node } from '../../src/index.js';
import { simNetworkFor } from './network.js';

const N = 10;
const FOR_MS = 60_000;

function addr(n: Node): string {
  return `${n.self.address}:${n.self.port}`;
}

test(`a semi-detached node for ${FOR_MS / 1000} s: declared dead by all, no healthy node declared dead, false suspicions counted`, async (t) => {
  const sim = simNetworkFor(t);
  for (let i = 0; i < N; i++) await sim.add({ preset: 'lan' });
  await sim.joinThroughFirst();
  assert.ok(await sim.fullViews(), `seed ${sim.seed}: the network converges`);
  await sim.clock.advance(5_000);
  const deaf = sim.nodes[N - 1]!;
  const healthy = sim.nodes.slice(0, N - 1);
  const falseSuspicions: string[] = [];
  const falseDeaths: string[] = [];
  const deafDead = new Map<Node, number>();
  for (const node of healthy) {
    node.on('member:suspect', (p) => {
      if (p.id !== deaf.id) falseSuspicions.push(`${node.self.port} ${p.port}`);
    });
    node.on('member:fail', (p) => {
      if (p.id === deaf.id) deafDead.set(node, sim.clock.now());
      else falseDeaths.push(`${node.self.port} ${p.port}`);
    });
  }
  const start = sim.clock.now();
  sim.network.deafen(addr(deaf));
  await sim.clock.advance(FOR_MS);
  t.diagnostic(
    `${falseSuspicions.length} false suspicions of healthy nodes in ${FOR_MS / 1000} s (${(falseSuspicions.length / (FOR_MS / 1000)).toFixed(2)}/s across ${N - 1} healthy nodes); the semi-detached node declared dead by ${deafDead.size} of ${N - 1}, the last after ${deafDead.size > 0 ? (Math.max(...deafDead.values()) - start) / 1000 : '-'} s`,
  );
  assert.deepEqual(falseDeaths, [], `seed ${sim.seed}: no healthy node is declared dead`);
  assert.equal(deafDead.size, N - 1, `seed ${sim.seed}: every healthy node declares it dead`);
  // Bounded: at most one false suspicion per healthy node and 10 s on average.
  assert.ok(
    falseSuspicions.length <= ((N - 1) * FOR_MS) / 10_000,
    `seed ${sim.seed}: ${falseSuspicions.length} false suspicions`,
  );
  for (const node of healthy) assert.equal(node.members().length, N - 2);
});
