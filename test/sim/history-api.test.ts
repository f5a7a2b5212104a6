/**
 * History through the public API on the memory transport: what a node sends and receives is in
 * its log (`node.history()`), numbered per channel on the wire, delivered once; and with
 * `dataDir` (a real SQLite file) the history, the identity and the topics survive a restart,
 * and a store another node holds is refused at `start()` with a typed error.
 */

import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { type Message, P2PError } from '../../src/index.js';
import { tempDir } from '../helpers/store.js';
import { simNetworkFor } from './network.js';

test('history: broadcasts, publishes and direct messages, both sides, oldest first', async (t) => {
  const net = simNetworkFor(t);
  const [a, b, c] = [await net.add(), await net.add(), await net.add()];
  await net.joinThroughFirst();
  assert.ok(await net.fullViews());
  await net.run(Promise.all([b.subscribe('ops'), c.subscribe('ops')]));
  const got: Message[] = [];
  b.on('message', (m) => got.push(m));
  for (let i = 0; i < 5; i++) await net.run(a.broadcast(`b${i}`));
  for (let i = 0; i < 3; i++) await net.run(a.publish('ops', `t${i}`));
  await net.run(a.send(b.self, 'psst'));
  await net.run(a.send([b.self, c.self], 'to both'));
  assert.ok(await net.clock.advanceUntil(() => got.length === 10, 10_000));

  const plain = await b.history();
  assert.deepEqual(
    plain.map((m) => m.text),
    ['b0', 'b1', 'b2', 'b3', 'b4'],
  );
  assert.equal(plain[0]!.from.id, a.id);
  assert.deepEqual(
    (await b.history({ topic: 'ops', limit: 2 })).map((m) => m.text),
    ['t1', 't2'],
  );
  assert.deepEqual(
    (await b.history({ with: a.self })).map((m) => [m.text, m.type]),
    [
      ['psst', 'direct'],
      ['to both', 'direct'],
    ],
  );
  // The sender holds its own messages too: its direct messages by recipient.
  assert.deepEqual(
    (await a.history()).map((m) => m.text),
    ['b0', 'b1', 'b2', 'b3', 'b4'],
  );
  assert.deepEqual(
    (await a.history({ with: `${c.self.address}:${c.self.port}` })).map((m) => m.text),
    ['to both'],
  );
  assert.equal((await a.history({ topic: 'ops' })).length, 3);
  assert.equal((await a.history({ topic: 'ops' }))[0]!.from.id, a.id);
  await assert.rejects(
    a.history({ topic: 'ops', with: b.self }),
    (e: P2PError) => e.code === 'ERR_INVALID_OPTIONS',
  );
  await assert.rejects(a.history({ limit: 0 }), (e: P2PError) => e.code === 'ERR_INVALID_OPTIONS');
  await assert.rejects(a.history({ topic: 'no spaces' }), (e: P2PError) => e.code === 'ERR_INVALID_TOPIC');
  await net.stopAll();
  await assert.rejects(a.history(), (e: P2PError) => e.code === 'ERR_NOT_STARTED');
});

test('dataDir: history, identity and topics survive a restart; a held dataDir is ERR_STORE_LOCKED', async (t) => {
  const root = tempDir('tsp2p-history-api-');
  t.after(() => root.remove());
  const net = simNetworkFor(t);
  const dataDir = join(root.dir, 'b');
  const a = await net.add();
  const b = await net.add({ dataDir, identity: undefined });
  const id = b.id;
  await net.joinThroughFirst();
  await net.run(b.subscribe('ops'));
  let n = 0;
  b.on('message', () => n++);
  await net.run(a.broadcast('one'));
  await net.run(a.publish('ops', 'two'));
  assert.ok(await net.clock.advanceUntil(() => n === 2, 10_000));
  await assert.rejects(
    net.add({ dataDir, identity: undefined }),
    (e: P2PError) => e instanceof P2PError && e.code === 'ERR_STORE_LOCKED',
  );
  await net.run(b.stop());
  await net.run(b.start());
  assert.equal(b.id, id);
  assert.deepEqual(b.topics(), ['ops']);
  assert.deepEqual(
    (await b.history()).map((m) => m.text),
    ['one'],
  );
  assert.deepEqual(
    (await b.history({ topic: 'ops' })).map((m) => m.text),
    ['two'],
  );
  // A new node object on the same directory is the same node.
  await net.run(b.stop());
  const again = await net.add({ dataDir, identity: undefined });
  assert.equal(again.id, id);
  assert.deepEqual(again.topics(), ['ops']);
  assert.equal((await again.history({ topic: 'ops' })).length, 1);
  await net.stopAll();
});
