/**
 * Delivery to a member after the link to it was torn down and built again: the sender left and
 * joined again, the receiver left and joined again, or the receiver was declared dead and came
 * back. The receiver still numbers the sender's
 * messages per link; a new queue must not look like a retry of the old one.
 */

import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Node, Peer } from '../../src/index.js';
import { startNode } from '../helpers/nodes.js';
import { PeerProcess } from '../helpers/spawn-peer.js';
import { onceEvent, waitFor } from '../helpers/wait.js';

const OPTIONS = { preset: 'local', timings: { suspicionMult: 100 } } as const;

function collect(node: Node): string[] {
  const texts: string[] = [];
  node.on('message', (m) => texts.push(m.text));
  return texts;
}

async function waitForMembers(nodes: readonly Node[], count: number): Promise<void> {
  await waitFor(() => nodes.every((n) => n.members().length === count), {
    timeoutMs: 30_000,
    message: () => `members: ${nodes.map((n) => n.members().length).join(', ')}, want ${count} each`,
  });
}

test('a sender that disconnects and connects again is heard again from its first message', async (t) => {
  const a = await startNode(t, OPTIONS);
  const b = await startNode(t, OPTIONS);
  const got = collect(b);
  await a.connect(`${b.self.address}:${b.self.port}`);
  await waitForMembers([a, b], 1);
  for (const text of ['one', 'two', 'three']) await a.broadcast(text);
  await a.disconnect();
  await waitForMembers([b], 0);
  await a.connect(`${b.self.address}:${b.self.port}`);
  await waitForMembers([a, b], 1);
  const report = await a.broadcast('after');
  assert.deepEqual(
    report.delivered.map((p) => p.id),
    [b.id],
  );
  // Acknowledged means delivered: it is there already (events are deferred by a tick).
  await waitFor(() => got.length >= 4, {
    timeoutMs: 5_000,
    message: () => `'after' to arrive; got ${JSON.stringify(got)}`,
  });
  assert.deepEqual(got, ['one', 'two', 'three', 'after']);
});

test('a receiver that disconnects and connects again gets the messages sent after', async (t) => {
  const a = await startNode(t, OPTIONS);
  const b = await startNode(t, OPTIONS);
  const got = collect(b);
  await b.connect(`${a.self.address}:${a.self.port}`);
  await waitForMembers([a, b], 1);
  for (const text of ['one', 'two', 'three']) await a.broadcast(text);
  await b.disconnect();
  await waitForMembers([a], 0);
  await b.connect(`${a.self.address}:${a.self.port}`);
  await waitForMembers([a, b], 1);
  const report = await a.broadcast('after');
  assert.deepEqual(
    report.delivered.map((p) => p.id),
    [b.id],
  );
  await waitFor(() => got.length >= 4, {
    timeoutMs: 5_000,
    message: () => `'after' to arrive; got ${JSON.stringify(got)}`,
  });
  assert.deepEqual(got, ['one', 'two', 'three', 'after']);
});

test('a member declared dead that comes back gets the messages sent after its return', async (t) => {
  const b = await PeerProcess.spawn(t, { preset: 'local' }, { label: 'b' });
  t.after(() => b.signal('SIGCONT'));
  const a = await startNode(t, { preset: 'local' });
  await a.connect(b.address);
  await waitForMembers([a], 1);
  for (const text of ['one', 'two', 'three']) await a.broadcast(text);
  const dead = onceEvent<[Peer]>(a, 'member:fail', { timeoutMs: 60_000, filter: (p) => p.id === b.self.id });
  assert.ok(b.signal('SIGSTOP'));
  try {
    await dead;
  } finally {
    b.signal('SIGCONT');
  }
  // It refutes its death (or the reconnect loop finds it): alive again, at a new incarnation.
  await waitFor(() => a.members().some((p) => p.id === b.self.id), {
    timeoutMs: 60_000,
    message: 'b to be a member again',
  });
  const report = await a.broadcast('after');
  assert.deepEqual(
    report.delivered.map((p) => p.id),
    [b.self.id],
  );
  await waitFor(async () => (await b.received()).length >= 4, {
    timeoutMs: 10_000,
    message: `'after' to arrive`,
  }).catch(async (err: unknown) => {
    assert.fail(`${(err as Error).message}; got ${JSON.stringify(await b.received())}`);
  });
  assert.deepEqual(await b.received(), ['one', 'two', 'three', 'after']);
});
