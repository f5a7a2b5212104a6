/**
 * The store contract: one suite, run against every implementation (memory and SQLite). What a
 * store does must not depend on which one the node runs with.
 */

import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import type { P2PError } from '../../src/errors.js';
import type { Store, StoredEntry, StoreOptions } from '../../src/store/store.js';
import { heldRanges, receivedRanges } from '../../src/store/summary.js';
import { memoryImpl, msg, type StoreImpl, sqliteImpl, TestWallClock } from '../helpers/store.js';

const impls: StoreImpl[] = [memoryImpl(), sqliteImpl()];

const code = (fn: () => unknown): string | undefined => {
  try {
    fn();
  } catch (err) {
    return (err as P2PError).code;
  }
  return undefined;
};
const seqs = (entries: readonly StoredEntry[]): number[] => entries.map((e) => e.seq);
const B = { origin: 'alice', epoch: 'e1', channel: 'b' };

for (const impl of impls) {
  describe(`store contract: ${impl.name}`, () => {
    after(() => impl.cleanup());
    const clock = new TestWallClock();
    const open = (options: StoreOptions = {}): Promise<Store> => impl.open({ now: clock.now, ...options });

    test('append reports each message new exactly once, in the same order as given', async () => {
      const s = await open();
      assert.deepEqual(s.append([msg(1), msg(2), msg(1)]), ['new', 'new', 'duplicate']);
      assert.deepEqual(s.append([msg(2), msg(3)]), ['duplicate', 'new']);
      assert.deepEqual(s.append([msg(3, { id: 'other' })]), ['duplicate'], 'a number at or below contiguous');
      assert.deepEqual(s.append([msg(5)]), ['new']);
      assert.deepEqual(s.append([msg(5, { id: 'reused' })]), ['conflict'], 'a held number with another id');
      assert.deepEqual(s.stats().messages, 4);
      s.close();
    });

    test('streams are apart: same numbers of other origins, epochs and channels are new', async () => {
      const s = await open();
      const alice = msg(1);
      const bob = msg(1, { origin: { id: 'bob', address: '127.0.0.1', port: 5002 } });
      const again = msg(1, { epoch: 'e2' });
      const topic = msg(1, { kind: 'topic', topic: 'ops' });
      assert.deepEqual(s.append([alice, bob, again, topic]), ['new', 'new', 'new', 'new']);
      assert.equal(s.summary().length, 4);
      s.close();
    });

    test('what is stored reads back exactly', async () => {
      const s = await open();
      const m = msg(1, {
        kind: 'topic',
        topic: 'ops',
        payload: Uint8Array.from([0, 255, 10, 13]),
        sig: new Uint8Array(64).fill(7),
        deps: ['x1', 'y2'],
        late: true,
        receivedAt: 42,
        origin: { id: 'alice', address: '::1', port: 9, name: 'Ada' },
      });
      s.append([m]);
      const [e] = s.history({ topic: 'ops' });
      assert.ok(e !== undefined);
      assert.equal(e.id, m.id);
      assert.deepEqual(e.origin, m.origin);
      assert.equal(e.kind, 'topic');
      assert.equal(e.topic, 'ops');
      assert.equal(e.peer, undefined);
      assert.equal(e.epoch, 'e1');
      assert.equal(e.channel, 't:ops');
      assert.equal(e.seq, 1);
      assert.equal(e.at, m.at);
      assert.deepEqual([...e.payload], [0, 255, 10, 13]);
      assert.deepEqual([...e.sig], [...m.sig]);
      // Each in memory of its own: a reader never sees (nor reaches) anything else through it.
      for (const bytes of [e.payload, e.sig]) {
        assert.equal(bytes.byteOffset, 0);
        assert.equal(bytes.buffer.byteLength, bytes.byteLength);
      }
      assert.deepEqual(e.deps, ['x1', 'y2']);
      assert.equal(e.late, true);
      assert.equal(e.receivedAt, 42);
      assert.equal(typeof e.key, 'number');
      s.append([msg(1, { kind: 'direct', peer: 'bob', channel: 'd:bob' })]);
      const [d] = s.history({ with: 'bob' });
      assert.equal(d?.peer, 'bob');
      assert.equal(d?.receivedAt, clock.t, 'receivedAt defaults to now');
      assert.equal(d?.origin.name, 'alice');
      s.close();
    });

    test('an invalid entry fails the whole batch with ERR_INVALID_MESSAGE', async () => {
      const s = await open();
      const bad = [
        msg(2, { seq: 0 }),
        msg(2, { id: 'x'.repeat(65) }),
        msg(2, { deps: Array.from({ length: 9 }, (_, i) => `d${i}`) }),
        msg(2, { kind: 'topic', topic: '' }),
        msg(2, { seq: 1.5 }),
        msg(2, { at: Number.NaN }),
      ];
      for (const b of bad)
        assert.equal(
          code(() => s.append([msg(1), b])),
          'ERR_INVALID_MESSAGE',
        );
      assert.equal(s.stats().messages, 0, 'nothing of the failed batches was applied');
      assert.deepEqual(s.append([msg(1)]), ['new']);
      s.close();
    });

    test('nextSeq counts each own channel from where its log stands', async () => {
      const s = await open({ epoch: 'mine' });
      assert.equal(s.epoch, 'mine');
      assert.equal(s.nextSeq('me', 'b'), 1);
      assert.equal(s.nextSeq('me', 'b'), 2);
      assert.equal(s.nextSeq('me', 't:ops'), 1);
      const own = (seq: number) => msg(seq, { origin: { id: 'me', address: 'h', port: 1 }, epoch: 'mine' });
      s.append([own(1), own(2)]);
      assert.equal(s.nextSeq('me', 'b'), 3);
      s.append([own(3), own(4)]);
      assert.equal(s.nextSeq('me', 'b'), 5, 'past what was appended');
      s.close();
    });

    test('summary: contiguous, floor and the held ranges above it; gaps fill in', async () => {
      const s = await open();
      s.append([1, 2, 4, 6, 7].map((n) => msg(n)));
      assert.deepEqual(s.summary(), [
        {
          ...B,
          contiguous: 2,
          floor: 1,
          above: [
            [4, 4],
            [6, 7],
          ],
        },
      ]);
      s.append([msg(3)]);
      assert.deepEqual(s.summary()[0], { ...B, contiguous: 4, floor: 1, above: [[6, 7]] });
      s.append([msg(5)]);
      assert.deepEqual(s.summary()[0], { ...B, contiguous: 7, floor: 1, above: [] });
      assert.deepEqual(s.summary(['t:x']), [], 'filtered by channel');
      s.close();
    });

    test('skip counts numbers received for catch-up; a copy of one that comes later is new, once', async () => {
      const s = await open();
      s.append([msg(7), msg(8), msg(10)]);
      s.skip(B, 5);
      assert.deepEqual(s.summary()[0], {
        ...B,
        contiguous: 5,
        floor: 6,
        above: [
          [7, 8],
          [10, 10],
        ],
      });
      s.skip(B, 6);
      assert.deepEqual(s.summary()[0], { ...B, contiguous: 8, floor: 7, above: [[10, 10]] });
      assert.deepEqual(s.append([msg(3), msg(9)]), ['new', 'new'], 'a skipped number comes: new');
      assert.deepEqual(s.summary()[0], { ...B, contiguous: 10, floor: 7, above: [] });
      assert.deepEqual(s.append([msg(3), msg(6), msg(7), msg(6)]), [
        'duplicate',
        'new',
        'duplicate',
        'duplicate',
      ]);
      assert.deepEqual(s.append([msg(3, { id: 'other' })]), ['conflict'], 'held, with another id');
      s.skip(B, 2);
      assert.equal(s.summary()[0]?.contiguous, 10, 'skipping below contiguous changes nothing');
      s.skip(B, 14);
      assert.deepEqual(s.append([msg(1), msg(12), msg(1), msg(12)]), [
        'new',
        'new',
        'duplicate',
        'duplicate',
      ]);
      assert.deepEqual(s.summary()[0], { ...B, contiguous: 14, floor: 15, above: [] });
      assert.deepEqual(
        s.readRange(B, 1, 20).map((e) => e.seq),
        [1, 3, 6, 7, 8, 9, 10, 12],
        'what came of the skipped numbers is held, and served',
      );
      s.close();
    });

    test('retention ends a skip at what it removes: a copy of a skipped number below is no longer new', async () => {
      const s = await open({ retention: { maxMessages: 2 } });
      s.skip(B, 10);
      assert.deepEqual(s.append([msg(4), msg(6)]), ['new', 'new']);
      assert.deepEqual(s.append([msg(8)]), ['new'], 'the oldest, 4, goes');
      assert.deepEqual(s.append([msg(3), msg(4), msg(5), msg(9)]), ['duplicate', 'duplicate', 'new', 'new']);
      assert.deepEqual(s.append([msg(6)]), ['duplicate'], '5 and 6 went: the oldest');
      assert.deepEqual(s.append([msg(7)]), ['new'], 'above what went');
      assert.deepEqual(s.append([msg(7)]), ['duplicate'], 'gone at once, as the oldest, and not new again');
      s.close();
    });

    test('summary lists at most 32 ranges above contiguous, the lowest', async () => {
      const s = await open();
      s.append(Array.from({ length: 40 }, (_, i) => msg(2 * i + 2)));
      const [sum] = s.summary();
      assert.equal(sum?.above.length, 32);
      assert.deepEqual(sum?.above[31], [64, 64]);
      s.close();
    });

    test('history: scopes apart, oldest first, the newest `limit`, paging back with a cursor', async () => {
      const s = await open();
      s.append([
        ...Array.from({ length: 10 }, (_, i) => msg(i + 1)),
        ...Array.from({ length: 3 }, (_, i) => msg(i + 1, { kind: 'topic', topic: 'ops' })),
        msg(1, { kind: 'topic', topic: 'dev', channel: 't:dev' }),
        msg(1, { kind: 'direct', peer: 'bob', channel: 'd:bob' }),
        msg(1, { kind: 'direct', peer: 'carol', channel: 'd:carol' }),
      ]);
      assert.deepEqual(seqs(s.history()), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 'plain broadcasts');
      assert.deepEqual(seqs(s.history({ topic: 'ops' })), [1, 2, 3]);
      assert.equal(s.history({ topic: 'dev' }).length, 1);
      assert.equal(s.history({ topic: 'none' }).length, 0);
      assert.deepEqual(
        s.history({ with: 'bob' }).map((e) => e.peer),
        ['bob'],
      );
      const page1 = s.history({ limit: 4 });
      assert.deepEqual(seqs(page1), [7, 8, 9, 10]);
      const page2 = s.history({ limit: 4, before: page1[0] });
      assert.deepEqual(seqs(page2), [3, 4, 5, 6]);
      const page3 = s.history({ limit: 4, before: page2[0] });
      assert.deepEqual(seqs(page3), [1, 2]);
      assert.deepEqual(s.history({ limit: 4, before: page3[0] }), []);
      s.close();
    });

    test('history orders by the sender timestamp, then by arrival', async () => {
      const s = await open();
      s.append([msg(1, { at: 500 + clock.t }), msg(2, { at: 100 + clock.t }), msg(3, { at: 500 + clock.t })]);
      assert.deepEqual(seqs(s.history()), [2, 1, 3]);
      assert.deepEqual(seqs(s.history({ before: s.history()[2] })), [2, 1]);
      s.close();
    });

    test('history rejects a bad query with ERR_INVALID_OPTIONS', async () => {
      const s = await open();
      assert.equal(
        code(() => s.history({ topic: 'a', with: 'b' })),
        'ERR_INVALID_OPTIONS',
      );
      for (const limit of [0, -1, 1.5, 10_001])
        assert.equal(
          code(() => s.history({ limit })),
          'ERR_INVALID_OPTIONS',
        );
      s.close();
    });

    test('readRange serves one stream in order, bounded, skipping what it lacks', async () => {
      const s = await open();
      s.append([1, 2, 3, 5, 8, 9].map((n) => msg(n)));
      s.append([msg(4, { origin: { id: 'bob', address: 'h', port: 2 } })]);
      assert.deepEqual(seqs(s.readRange(B, 2, 8)), [2, 3, 5, 8]);
      assert.deepEqual(seqs(s.readRange(B, 2, 8, 2)), [2, 3]);
      assert.deepEqual(
        seqs(s.readRange(B, 1, 1e12)),
        [1, 2, 3, 5, 8, 9],
        'a huge range costs no loop over it',
      );
      assert.deepEqual(s.readRange(B, 8, 2), []);
      assert.deepEqual(s.readRange({ ...B, channel: 't:none' }, 1, 10), []);
      assert.deepEqual(seqs(s.readRange({ ...B, origin: 'bob' }, 1, 10)), [4]);
      s.close();
    });

    test('byIds serves the messages held with these ids, within retention', async () => {
      const s = await open({ retention: { maxAgeMs: 1000 } });
      s.append([
        msg(1, { at: clock.t - 900 }),
        msg(2, { at: clock.t }),
        msg(3, { kind: 'topic', topic: 'ops', at: clock.t }),
      ]);
      const ids = [msg(3, { kind: 'topic', topic: 'ops' }).id, 'nope', msg(1).id, msg(2).id, msg(1).id];
      assert.deepEqual(
        s.byIds(ids).map((e) => e.id),
        [ids[0], ids[2], ids[3]],
      );
      assert.deepEqual([...(s.byIds([msg(2).id])[0]?.payload ?? [])], [...msg(2).payload]);
      clock.t += 200;
      assert.deepEqual(
        s.byIds(ids).map((e) => e.id),
        [ids[0], ids[3]],
        'past its age: never served',
      );
      clock.t -= 200;
      assert.equal(
        code(() => s.byIds(Array.from({ length: 10_001 }, (_, i) => `x${i}`))),
        'ERR_INVALID_OPTIONS',
      );
      s.close();
    });

    test('byIds gives the rows of one id in the order they were stored, whichever scope holds them', async () => {
      const s = await open();
      // The broadcast scope is made first, then the id lands in a direct scope before it
      // lands in the broadcast one: its rows must not come back scope by scope.
      s.append([msg(1)]);
      s.append([
        msg(1, { kind: 'direct', peer: 'bob', channel: 'd:bob', id: 'same' }),
        msg(2, { id: 'same' }),
        msg(1, { kind: 'direct', peer: 'carol', channel: 'd:carol', id: 'same' }),
      ]);
      const rows = s.byIds(['same']);
      assert.deepEqual(
        rows.map((e) => e.channel),
        ['d:bob', 'b', 'd:carol'],
      );
      assert.deepEqual(
        rows.map((e) => e.key),
        rows.map((e) => e.key).sort((a, b) => a - b),
      );
      // Later rows of the id go after those already indexed.
      s.append([msg(2, { kind: 'direct', peer: 'bob', channel: 'd:bob', id: 'same' })]);
      assert.deepEqual(
        s.byIds(['same']).map((e) => `${e.channel}/${e.seq}`),
        ['d:bob/1', 'b/2', 'd:carol/1', 'd:bob/2'],
      );
      s.close();
    });

    test('has says which ids are in the log', async () => {
      const s = await open();
      s.append([msg(1), msg(2)]);
      assert.deepEqual(s.has([msg(1).id, 'nope', msg(2).id]), new Set([msg(1).id, msg(2).id]));
      s.close();
    });

    test('retention by count: the oldest go first; they are never new again, and leave no gap', async () => {
      const s = await open({ retention: { maxMessages: 5, topics: { big: { maxMessages: 8 } } } });
      s.append(Array.from({ length: 8 }, (_, i) => msg(i + 1)));
      assert.deepEqual(seqs(s.history()), [4, 5, 6, 7, 8]);
      assert.deepEqual(s.summary()[0], { ...B, contiguous: 8, floor: 4, above: [] });
      assert.deepEqual(s.append([msg(2), msg(3)]), ['duplicate', 'duplicate']);
      assert.deepEqual(seqs(s.readRange(B, 1, 10)), [4, 5, 6, 7, 8], 'what retention removed is not served');
      s.append(Array.from({ length: 8 }, (_, i) => msg(i + 1, { kind: 'topic', topic: 'big' })));
      assert.equal(s.history({ topic: 'big' }).length, 8, 'a per-topic override');
      assert.equal(s.history().length, 5, 'each scope on its own');
      assert.equal(s.stats().messages, 13);
      s.close();
    });

    test('retention by count removes above-contiguous numbers as settled', async () => {
      const s = await open({ retention: { maxMessages: 2 } });
      s.append([msg(5, { at: clock.t - 30 }), msg(9, { at: clock.t - 20 }), msg(12, { at: clock.t - 10 })]);
      assert.deepEqual(seqs(s.history()), [9, 12]);
      assert.deepEqual(s.summary()[0], {
        ...B,
        contiguous: 5,
        floor: 6,
        above: [
          [9, 9],
          [12, 12],
        ],
      });
      assert.deepEqual(s.append([msg(3)]), ['duplicate'], 'below a removed message: settled');
      assert.deepEqual(s.append([msg(7, { at: clock.t - 25 })]), ['new']);
      assert.deepEqual(seqs(s.history()), [9, 12], 'the newcomer was the oldest, so it went at once');
      assert.deepEqual(
        s.append([msg(7, { at: clock.t - 25 })]),
        ['duplicate'],
        'and is still never new again',
      );
      s.close();
    });

    test('retention by age: refused on arrival, never served once past, pruned with bounded work', async () => {
      const s = await open({ retention: { maxAgeMs: 1000 } });
      assert.deepEqual(s.append([msg(1, { at: clock.t - 2000 }), msg(2, { at: clock.t - 500 })]), [
        'expired',
        'new',
      ]);
      assert.deepEqual(s.summary()[0], { ...B, contiguous: 2, floor: 2, above: [] });
      s.append([3, 4, 5, 6].map((n) => msg(n, { at: clock.t })));
      clock.t += 600; // message 2 is now past its age
      assert.deepEqual(seqs(s.history()), [3, 4, 5, 6], 'past retention, not yet pruned, never returned');
      assert.deepEqual(seqs(s.readRange(B, 1, 10)), [3, 4, 5, 6]);
      assert.equal(s.stats().messages, 5);
      assert.equal(s.prune(), 1);
      assert.equal(s.stats().messages, 4);
      assert.deepEqual(s.summary()[0], { ...B, contiguous: 6, floor: 3, above: [] });
      clock.t += 1000;
      assert.equal(s.prune(3), 3, 'at most the budget');
      assert.equal(s.prune(3), 1);
      assert.equal(s.prune(), 0);
      assert.deepEqual(s.append([msg(7, { at: clock.t })]), ['new']);
      clock.t -= 1600;
      s.close();
    });

    test('an append removes aged messages of its scope as it goes', async () => {
      const s = await open({ retention: { maxAgeMs: 1000 } });
      s.append([1, 2, 3].map((n) => msg(n, { at: clock.t })));
      clock.t += 2000;
      s.append([msg(4, { at: clock.t })]);
      assert.equal(s.stats().messages, 1);
      clock.t -= 2000;
      s.close();
    });

    test('members, subscriptions, incarnation and link state', async () => {
      const s = await open();
      const ada = {
        id: 'ada',
        address: '127.0.0.1',
        port: 5001,
        name: 'Ada',
        kind: 'tsp2p' as const,
        state: 'alive' as const,
        incarnation: 3,
        lastSeen: 10,
      };
      const go = {
        id: '127.0.0.1:6000',
        address: '127.0.0.1',
        port: 6000,
        kind: 'gop2p' as const,
        state: 'dead' as const,
        incarnation: 0,
        lastSeen: 5,
      };
      s.saveMembers([go, ada]);
      assert.deepEqual(s.members(), [go, ada]);
      s.saveMembers([{ ...ada, state: 'suspect', incarnation: 4 }]);
      assert.equal(s.members()[1]?.state, 'suspect');
      s.deleteMember(go.id);
      assert.deepEqual(
        s.members().map((m) => m.id),
        ['ada'],
      );
      assert.deepEqual(s.subscriptions(), []);
      s.setSubscriptions(['ops', 'dev', 'ops']);
      assert.deepEqual(s.subscriptions(), ['dev', 'ops']);
      assert.equal(s.incarnation(), 0);
      s.setIncarnation(7);
      assert.equal(s.incarnation(), 7);
      s.saveLink({ sender: 'bob', stream: 's1', last: 4 });
      s.append([msg(1)], { link: { sender: 'ada', stream: 's9', last: 12 } });
      assert.deepEqual(s.links(), [
        { sender: 'ada', stream: 's9', last: 12 },
        { sender: 'bob', stream: 's1', last: 4 },
      ]);
      s.close();
    });

    test('stats count messages and bytes', async () => {
      const s = await open();
      const before = s.stats();
      s.append(Array.from({ length: 50 }, (_, i) => msg(i + 1, { payload: new Uint8Array(1000) })));
      const afterwards = s.stats();
      assert.equal(afterwards.messages, 50);
      assert.ok(
        afterwards.bytes >= before.bytes + 50_000,
        `bytes grew: ${before.bytes} -> ${afterwards.bytes}`,
      );
      s.close();
    });

    test('a closed store throws ERR_STOPPED; close is idempotent', async () => {
      const s = await open();
      s.close();
      s.close();
      assert.equal(
        code(() => s.append([msg(1)])),
        'ERR_STOPPED',
      );
      assert.equal(
        code(() => s.history()),
        'ERR_STOPPED',
      );
    });

    test('summaries describe exactly what is held and received', async () => {
      const s = await open({ retention: { maxMessages: 6 } });
      const order = [9, 3, 1, 14, 2, 7, 8, 20, 4, 11];
      for (const n of order) s.append([msg(n, { at: clock.t - 100 + n })]);
      const [sum] = s.summary();
      assert.ok(sum !== undefined);
      const held = new Set(s.readRange(B, 1, 100).map((e) => e.seq));
      for (const [a, b] of heldRanges(sum))
        for (let n = a; n <= b; n++) assert.ok(held.has(n), `${n} is held`);
      for (const n of order) {
        const received = receivedRanges(sum).some(([a, b]) => n >= a && n <= b);
        assert.ok(received, `${n} counts as received`);
      }
      s.close();
    });

    if (impl.durable) {
      test('everything survives a reopen', async () => {
        let s = await open({ epoch: 'first' });
        const own = (seq: number) =>
          msg(seq, { origin: { id: 'me', address: 'h', port: 1 }, epoch: 'first' });
        s.append([msg(1), msg(2), msg(4), own(1), own(2)], { link: { sender: 'bob', stream: 'x', last: 9 } });
        s.skip({ ...B, origin: 'carol' }, 50);
        s.saveMembers([
          {
            id: 'ada',
            address: '127.0.0.1',
            port: 5001,
            kind: 'tsp2p',
            state: 'dead',
            incarnation: 3,
            lastSeen: 10,
          },
        ]);
        s.setSubscriptions(['ops']);
        s.setIncarnation(4);
        const summary = s.summary();
        s = await impl.reopen(s, { now: clock.now, epoch: 'second' });
        assert.equal(s.epoch, 'first', 'an existing log keeps its epoch');
        assert.deepEqual(s.summary(), summary);
        assert.deepEqual(
          s.append([msg(2), msg(3), msg(40, { origin: { id: 'carol', address: 'h', port: 3 } })]),
          ['duplicate', 'new', 'new'],
          'a skipped number stays takeable',
        );
        s = await impl.reopen(s, { now: clock.now });
        assert.deepEqual(
          s.append([msg(40, { origin: { id: 'carol', address: 'h', port: 3 } })]),
          ['duplicate'],
          'once',
        );
        assert.equal(s.nextSeq('me', 'b'), 3, 'the own counter survives');
        assert.deepEqual(s.links(), [{ sender: 'bob', stream: 'x', last: 9 }]);
        assert.equal(s.members()[0]?.state, 'dead');
        assert.deepEqual(s.subscriptions(), ['ops']);
        assert.equal(s.incarnation(), 4);
        assert.equal(s.stats().messages, 7);
        s.close();
      });
    }
  });
}
