import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { encodeMessageEntry, encodePayloadEntry, encodeTreeControl } from '../../src/protocol/batch-entry.js';
import { decodeData, decodeEnvelope } from '../../src/protocol/codec.js';
import { sealBatch } from '../../src/protocol/envelope.js';
import { TreeEntry } from '../../src/protocol/schema.js';
import { testSeed } from '../sim/network.js';

const seed = testSeed();
const runs = { seed, numRuns: 300 };
const SIG = 'A'.repeat(86);

/** The entries of a batch made of `fragments`, as the receiver decodes them. */
function decodeEntries(fragments: (Uint8Array | string)[]): unknown[] {
  const sealed = sealBatch(
    { from: { address: '127.0.0.1', port: 1 }, id: 'b1', ts: 1, stream: 's', seq: 1 },
    fragments,
  );
  const decoded = decodeEnvelope(sealed.body);
  assert.ok(decoded.ok, decoded.ok ? '' : decoded.refusal.message);
  return decoded.value.msgs ?? [];
}

describe('batch entries (src/protocol/batch-entry.ts)', () => {
  test('a direct message entry, byte for byte', () => {
    const bytes = encodePayloadEntry(
      { type: 3, id: 'm1', ts: 1700000000000, to: [{ address: '10.0.0.2', port: 5002, id: 'b' }] },
      Buffer.from('hi'),
    );
    assert.equal(
      bytes.toString(),
      '{"type":3,"id":"m1","ts":1700000000000,"data":"aGk=","to":[{"address":"10.0.0.2","port":5002,"id":"b"}]}',
    );
  });

  test('a plain broadcast entry ends right after its data', () => {
    assert.equal(
      encodeMessageEntry({ type: 2, id: 'x', ts: 5, data: '' }).toString(),
      '{"type":2,"id":"x","ts":5,"data":""}',
    );
  });

  test('a relayed tree entry keeps the field order to, hops, tree, origin, sig', () => {
    const origin = { address: 'a', port: 1, id: 'o', key: 'k' };
    assert.equal(
      encodeMessageEntry({
        type: 2,
        id: 'x',
        ts: 5,
        data: 'AA==',
        hops: 2,
        tree: true,
        origin,
        sig: SIG,
      }).toString(),
      `{"type":2,"id":"x","ts":5,"data":"AA==","hops":2,"tree":true,"origin":${JSON.stringify(origin)},"sig":"${SIG}"}`,
    );
  });

  test('a publish ends with its topic and its causal dependencies', () => {
    assert.equal(
      encodeMessageEntry({ type: 2, id: 'x', ts: 5, data: '', topic: 'ops', deps: ['a1', 'b2'] }).toString(),
      '{"type":2,"id":"x","ts":5,"data":"","topic":"ops","deps":["a1","b2"]}',
    );
    assert.equal(
      encodeMessageEntry({ type: 2, id: 'x', ts: 5, data: '', topic: 'ops', deps: [] }).toString(),
      '{"type":2,"id":"x","ts":5,"data":"","topic":"ops"}',
      'no dependencies: no field',
    );
  });

  test('more than 8 dependencies, or an empty id, is refused', () => {
    for (const deps of [Array.from({ length: 9 }, (_, i) => `d${i}`), ['']]) {
      const sealed = sealBatch(
        { from: { address: '127.0.0.1', port: 1 }, id: 'b1', ts: 1, stream: 's', seq: 1 },
        [encodeMessageEntry({ type: 2, id: 'x', ts: 5, data: '', topic: 'ops', deps })],
      );
      assert.equal(decodeEnvelope(sealed.body).ok, false, JSON.stringify(deps));
    }
  });

  test('tree control entries, byte for byte', () => {
    assert.equal(encodeTreeControl(TreeEntry.Prune, undefined), '{"type":11}');
    assert.equal(
      encodeTreeControl(TreeEntry.IHave, [{ origin: 'o', id: 'm' }]),
      '{"type":9,"ids":[{"origin":"o","id":"m"}]}',
    );
  });

  test('every entry survives the round trip through the batch decoder', () => {
    const wirePeer = fc.record(
      {
        address: fc.string({ minLength: 1, maxLength: 20 }),
        port: fc.integer({ min: 1, max: 65535 }),
        id: fc.string({ minLength: 1, maxLength: 40 }),
      },
      { requiredKeys: ['address', 'port'] },
    );
    const entry = fc.record(
      {
        type: fc.constantFrom(2 as const, 3 as const),
        id: fc.string({ minLength: 1, maxLength: 30 }),
        ts: fc.nat(),
        payload: fc.uint8Array({ maxLength: 60 }),
        to: fc.array(wirePeer, { maxLength: 3 }),
        hops: fc.integer({ min: 0, max: 255 }),
        tree: fc.constant(true as const),
        origin: wirePeer,
        sig: fc.constant(SIG),
        topic: fc.constantFrom('ops', 'a/b.c:d-e_f'),
        deps: fc.array(fc.string({ minLength: 1, maxLength: 64 }), { minLength: 1, maxLength: 8 }),
      },
      { requiredKeys: ['type', 'id', 'ts', 'payload'] },
    );
    fc.assert(
      fc.property(fc.array(entry, { minLength: 1, maxLength: 5 }), (entries) => {
        const fragments = entries.map(({ payload, ...f }) => encodePayloadEntry(f, payload));
        const decoded = decodeEntries(fragments) as Record<string, unknown>[];
        assert.equal(decoded.length, entries.length);
        entries.forEach(({ payload, ...f }, i) => {
          const d = decoded[i]!;
          assert.deepEqual(decodeData(d.data as string), new Uint8Array(payload));
          const { data: _data, ...rest } = d;
          assert.deepEqual(rest, JSON.parse(JSON.stringify(f)));
        });
      }),
      runs,
    );
  });

  test('control entries survive the round trip next to messages', () => {
    const refs = [
      { origin: 'o1', id: 'a' },
      { origin: 'o2', id: 'b' },
    ];
    const decoded = decodeEntries([
      encodeTreeControl(TreeEntry.Graft, refs),
      encodeMessageEntry({ type: 2, id: 'x', ts: 1, data: 'AA==' }),
      encodeTreeControl(TreeEntry.Prune, undefined),
    ]);
    assert.deepEqual(decoded, [
      { type: TreeEntry.Graft, ids: refs },
      { type: 2, id: 'x', ts: 1, data: 'AA==' },
      { type: TreeEntry.Prune },
    ]);
  });
});
