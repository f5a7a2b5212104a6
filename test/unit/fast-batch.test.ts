import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { decodeEnvelope } from '../../src/protocol/codec.js';
import { sealBatch } from '../../src/protocol/envelope.js';
import { fastBatch, isCanonicalBase64 } from '../../src/protocol/fast-batch.js';
import { isBase64, wireSchemas } from '../../src/protocol/schema.js';
import { testSeed } from '../sim/network.js';
import { mutate, places } from './mutate.js';

// fast-check names the seed when a property fails; TSP2P_SEED=<seed> replays it.
const seed = testSeed();
const runs = { seed, numRuns: 400 };

const b64 = fc.uint8Array({ maxLength: 40 }).map((b) => Buffer.from(b).toString('base64'));
const key = fc.uint8Array({ minLength: 32, maxLength: 32 }).map((b) => Buffer.from(b).toString('base64url'));
const text = (min: number, max: number) => fc.string({ minLength: min, maxLength: max });

const peer = fc.record(
  {
    address: text(1, 20),
    port: fc.integer({ min: 1, max: 65535 }),
    id: text(1, 40),
    name: text(0, 10),
    inc: fc.nat(),
    key,
    xkey: key,
  },
  { requiredKeys: ['address', 'port'] },
);

const message = fc.record(
  {
    type: fc.constantFrom(2, 3),
    id: text(1, 64),
    ts: fc.nat(),
    data: b64,
    to: fc.array(peer, { maxLength: 3 }),
    hops: fc.integer({ min: 0, max: 255 }),
    origin: peer,
    sig: text(86, 86),
    tree: fc.constant(true),
    epoch: text(1, 128),
    channel: text(1, 136),
    seq: fc.integer({ min: 1, max: 2 ** 40 }),
    prev: key,
  },
  { requiredKeys: ['type', 'id', 'ts', 'data'] },
);

const control = fc.record(
  {
    type: fc.constantFrom(9, 10, 11),
    ids: fc.array(fc.record({ origin: text(1, 20), id: text(1, 20) }), { maxLength: 3 }),
  },
  { requiredKeys: ['type'] },
);

const batch = fc.record(
  {
    type: fc.constant(8),
    data: fc.constant(null),
    from: peer,
    v: fc.integer({ min: 1, max: 3 }),
    id: text(1, 64),
    ts: fc.nat(),
    stream: text(1, 64),
    seq: fc.integer({ min: 1, max: 2 ** 40 }),
    base: fc.integer({ min: 1, max: 2 ** 40 }),
    msgs: fc.array(fc.oneof(message, control), { maxLength: 5 }),
  },
  { requiredKeys: ['type', 'from'] },
);

/** What the decoder's slow path (zod) makes of `raw`. */
function slow(raw: unknown): { ok: true; value: unknown } | { ok: false } {
  const r = wireSchemas().EnvelopeSchema.safeParse(raw);
  return r.success ? { ok: true, value: r.data } : { ok: false };
}

describe('fast batch path', () => {
  test('accepts well-formed batches, exactly as zod parses them', () => {
    fc.assert(
      fc.property(batch, (raw) => {
        const z = slow(raw);
        const fast = fastBatch(structuredClone(raw) as Record<string, unknown>);
        assert.ok(z.ok, 'the generator makes valid batches');
        assert.notEqual(fast, undefined, 'a valid batch takes the fast path');
        assert.deepEqual(fast, z.value);
      }),
      runs,
    );
  });

  test('whatever it accepts, zod accepts, with the same result (mutated batches)', () => {
    let accepted = 0;
    let refused = 0;
    fc.assert(
      fc.property(
        batch,
        fc.nat(),
        fc.boolean(),
        fc.oneof(
          fc.jsonValue(),
          // Values on both sides of the schema's bounds.
          fc.constantFrom<unknown>(
            ...[0, -1, 1.5, 2 ** 60, 255, 256, 1024, 65535, 65536, 9, 8, 2],
            ...['', 'QQ=', 'QR==', null, true, [], {}],
            ...[42, 43, 44, 64, 65, 85, 86, 87, 128, 129, 255, 256].map((n) => 'x'.repeat(n)),
          ),
        ),
        fc.constantFrom('extra', '__proto__', 'id', 'type', 'data'),
        (raw, where, add, replacement, extraKey) => {
          const all = places(raw);
          const path = all[where % all.length]!;
          const mutated = JSON.parse(JSON.stringify(mutate(raw, path, replacement, extraKey, add)));
          // The decoder hands the fast path JSON objects only.
          if (typeof mutated !== 'object' || mutated === null || Array.isArray(mutated)) return;
          const fast = fastBatch(mutated as Record<string, unknown>);
          const z = slow(mutated);
          if (fast === undefined) {
            refused++;
            return;
          }
          accepted++;
          assert.ok(z.ok, `fast path accepted what zod refuses: ${JSON.stringify(mutated).slice(0, 300)}`);
          assert.deepEqual(fast, z.value);
        },
      ),
      { ...runs, numRuns: 6000 },
    );
    // Both outcomes happen, so the property says something either way.
    assert.ok(accepted > 100 && refused > 100, `accepted ${accepted}, refused ${refused} (seed ${seed})`);
  });

  test('falls back on anything unusual: other types, unknown fields, explicit undefined, bad base64', () => {
    const from = { address: '127.0.0.1', port: 4000 };
    const ok = {
      type: 8,
      data: null,
      from,
      stream: 's',
      seq: 1,
      msgs: [{ type: 2, id: 'a', ts: 1, data: 'aGk=' }],
    };
    assert.notEqual(fastBatch(ok), undefined);
    for (const raw of [
      { ...ok, type: 2 },
      { ...ok, extra: 1 },
      { ...ok, m: [] },
      { ...ok, data: 'aGk=' },
      { ...ok, seq: undefined },
      { ...ok, from: { ...from, port: 0 } },
      { ...ok, msgs: [{ type: 2, id: 'a', ts: 1, data: 'aGk' }] },
      { ...ok, msgs: [{ type: 2, id: 'a', ts: 1, data: 'aGl=' }] },
      { ...ok, msgs: [{ type: 4, id: 'a', ts: 1, data: 'aGk=' }] },
      { ...ok, msgs: [{ type: 9, ids: [{ origin: 'o' }] }] },
      { ...ok, msgs: [{ type: 2, id: 'a', ts: -1, data: 'aGk=' }] },
      JSON.parse('{"type":8,"data":null,"from":{"address":"a","port":1},"__proto__":{"x":1}}'),
    ]) {
      assert.equal(fastBatch(raw as Record<string, unknown>), undefined, JSON.stringify(raw));
    }
  });

  test('a real batch takes the fast path, and decodes as zod decodes it', () => {
    const fragment = JSON.stringify({
      type: 2,
      id: 'm1',
      ts: 5,
      data: Buffer.from('hello').toString('base64'),
    });
    const { body } = sealBatch(
      {
        from: { address: '127.0.0.1', port: 4000, id: 'abc', inc: 2 },
        id: 'b1',
        ts: 7,
        stream: 's1',
        seq: 3,
        base: 2,
      },
      [fragment, Buffer.from(fragment)],
    );
    const raw = JSON.parse(Buffer.from(body).toString()) as Record<string, unknown>;
    assert.notEqual(fastBatch(structuredClone(raw)), undefined);
    const decoded = decodeEnvelope(body);
    assert.ok(decoded.ok);
    assert.deepEqual(decoded.value, slow(raw).ok ? (slow(raw) as { value: unknown }).value : undefined);
  });

  test('checks base64 character by character exactly as the round trip does', () => {
    // Strings near base64: its alphabet, padding in and out of place, the URL-safe letters,
    // whitespace and characters beyond ASCII.
    const near = fc
      .array(fc.constantFrom(...'AQgwBCDEFfgh+/=-_ \n\u00e9\u0100\ud83d'.split('')), { maxLength: 16 })
      .map((cs) => cs.join(''));
    const valid = fc.uint8Array({ maxLength: 64 }).map((b) => Buffer.from(b).toString('base64'));
    const edited = fc
      .tuple(valid, fc.nat(), fc.constantFrom(...'AB=+/-_ \u00e9'.split('')))
      .map(([s, at, c]) =>
        s.length === 0 ? c : s.slice(0, at % s.length) + c + s.slice((at % s.length) + 1),
      );
    fc.assert(
      fc.property(fc.oneof(near, valid, edited, fc.string({ maxLength: 12 })), (s) => {
        assert.equal(isCanonicalBase64(s), isBase64(s), JSON.stringify(s));
      }),
      { ...runs, numRuns: 20_000 },
    );
    for (const s of ['', 'QQ==', 'QR==', 'QUE=', 'QUF=', '====', 'A===', 'AB=C', 'QUFB', 'QU-B', 'QU_B'])
      assert.equal(isCanonicalBase64(s), isBase64(s), s);
  });
});
