import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { InvalidTopicError, TagsTooLargeError } from '../../src/index.js';
import { simNetworkFor } from './network.js';

describe('rooms and tags in membership (memory transport, manual clock)', () => {
  test('tags given at start, and changed with setTags(), reach every member; the newest wins', async (t) => {
    const sim = simNetworkFor(t);
    const a = await sim.add({ tags: { role: 'db' } });
    for (let i = 0; i < 7; i++) await sim.add();
    await sim.joinThroughFirst();
    assert.ok(await sim.fullViews());
    const sees = (tags: Record<string, string> | undefined) =>
      sim.nodes.every(
        (n) =>
          n === a || JSON.stringify(n.members().find((p) => p.id === a.id)?.tags) === JSON.stringify(tags),
      );
    assert.ok(
      await sim.clock.advanceUntil(() => sees({ role: 'db' }), 60_000, 50),
      'every member sees the tags given at start',
    );
    await sim.run(a.setTags({ role: 'db', zone: 'eu' }));
    // Pushed to every live member before setTags() resolved.
    assert.ok(sees({ role: 'db', zone: 'eu' }), 'setTags() resolved once every member had the new tags');
    await sim.run(a.setTags({ role: 'cache' }));
    assert.ok(sees({ role: 'cache' }));
    assert.deepEqual(a.self.tags, { role: 'cache' });
    await assert.rejects(
      sim.run(
        a.setTags({
          big: 'x'.repeat(100),
          more: 'y'.repeat(100),
          again: 'z'.repeat(100),
          last: 'w'.repeat(100),
          one: 'v'.repeat(100),
        }),
      ),
      TagsTooLargeError,
    );
    assert.deepEqual(a.tags(), { role: 'cache' }, 'refused tags change nothing');
  });

  test('subscribe() resolves once every live member lists the topic; unsubscribe() likewise', async (t) => {
    const sim = simNetworkFor(t);
    for (let i = 0; i < 8; i++) await sim.add();
    await sim.joinThroughFirst();
    assert.ok(await sim.fullViews());
    const [a, b] = sim.nodes as [(typeof sim.nodes)[0], (typeof sim.nodes)[0]];
    await sim.run(a.subscribe('ops'));
    assert.deepEqual(a.topics(), ['ops']);
    for (const n of sim.nodes) {
      if (n === a) continue;
      assert.deepEqual(
        n.subscribers('ops').map((p) => p.id),
        [a.id],
        `${n.self.port} knows a subscribes to ops`,
      );
    }
    await sim.run(b.subscribe('ops'));
    await sim.run(a.unsubscribe('ops'));
    for (const n of sim.nodes) {
      const want = n === b ? [] : [b.id];
      assert.deepEqual(
        n.subscribers('ops').map((p) => p.id),
        want,
      );
    }
    // A subscription and an unsubscription racing: the last word, at the highest incarnation,
    // is what every member holds once both resolved.
    await sim.run(Promise.all([a.subscribe('x'), b.subscribe('x'), a.unsubscribe('x'), a.subscribe('y')]));
    assert.deepEqual(a.topics(), ['y']);
    for (const n of sim.nodes) {
      if (n !== a) assert.deepEqual(n.members().find((p) => p.id === a.id)?.topics, ['y']);
      assert.deepEqual(
        n.subscribers('x').map((p) => p.id),
        n === b ? [] : [b.id],
      );
    }
    assert.throws(() => a.subscribers('bad topic'), InvalidTopicError);
    await assert.rejects(a.subscribe(''), InvalidTopicError);
  });

  test('a newcomer learns every member topics and tags from the member list and gossip', async (t) => {
    const sim = simNetworkFor(t);
    for (let i = 0; i < 5; i++) await sim.add({ tags: { n: String(i) } });
    await sim.joinThroughFirst();
    for (const [i, n] of sim.nodes.entries()) await sim.run(n.subscribe(`room-${i % 2}`));
    const late = await sim.add();
    const entry = sim.nodes[0]!;
    await sim.run(late.connect(entry.self));
    // The entry point's own topics and tags come in its connect answer: known at once.
    const known = late.members().find((p) => p.id === entry.id);
    assert.deepEqual(known?.topics, ['room-0']);
    assert.deepEqual(known?.tags, { n: '0' });
    assert.ok(late.subscribers('room-0').some((p) => p.id === entry.id));
    assert.ok(
      await sim.clock.advanceUntil(
        () => late.members().length === 5 && late.subscribers('room-0').length === 3,
        60_000,
        50,
      ),
    );
    assert.equal(late.subscribers('room-1').length, 2);
    assert.ok(late.members().every((p) => p.tags?.n !== undefined));
  });
});
