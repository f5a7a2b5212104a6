import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { decodeAck, decodeEnvelope, decodeMemberList } from '../../src/protocol/codec.js';
import { fastAck, fastEnvelope, fastLogAnswer, fastMemberList } from '../../src/protocol/fast-wire.js';
import { wireSchemas } from '../../src/protocol/schema.js';
import { testSeed } from '../sim/network.js';
import { mutate, places } from './mutate.js';

// fast-check names the seed when a property fails; TSP2P_SEED=<seed> replays it.
const seed = testSeed();
const runs = { seed, numRuns: 300 };

const key = fc.uint8Array({ minLength: 32, maxLength: 32 }).map((b) => Buffer.from(b).toString('base64url'));
const sig = fc.uint8Array({ minLength: 64, maxLength: 64 }).map((b) => Buffer.from(b).toString('base64url'));
const b64 = fc.uint8Array({ maxLength: 30 }).map((b) => Buffer.from(b).toString('base64'));
const text = (min: number, max: number) => fc.string({ minLength: min, maxLength: max });
const inc = fc.integer({ min: 0, max: 2 ** 31 });
const topic = fc.stringMatching(/^[a-z0-9:._-]{1,12}$/);
const tags = fc.dictionary(text(1, 8), text(0, 12), { maxKeys: 4 });
const channel = fc.oneof(
  fc.constant('b'),
  topic.map((t) => `t:${t}`),
  text(1, 10).map((t) => `d:x${t.replace(/\s/g, '')}`),
);

const self = { rsig: sig, rinc: inc, tags, topics: fc.array(topic, { maxLength: 3 }), key };
const peer = fc.record(
  {
    address: text(1, 20),
    port: fc.integer({ min: 1, max: 65535 }),
    id: text(1, 40),
    name: text(0, 10),
    inc,
    ...self,
    xkey: key,
  },
  { requiredKeys: ['address', 'port'] },
);
const update = fc.record(
  {
    id: text(1, 40),
    address: text(1, 20),
    port: fc.integer({ min: 1, max: 65535 }),
    name: text(0, 10),
    state: fc.constantFrom('alive', 'suspect', 'dead', 'left'),
    inc,
    by: text(1, 20),
    kind: fc.constant('gop2p'),
    ...self,
  },
  { requiredKeys: ['id', 'address', 'port', 'state', 'inc'] },
);
const range = fc
  .record({
    origin: text(1, 20),
    epoch: text(1, 20),
    channel,
    from: fc.integer({ min: 1, max: 50 }),
    n: fc.nat(5),
  })
  .map(({ n, ...r }) => ({ ...r, to: r.from + n }));
const log = fc.record(
  {
    chans: fc.array(channel, { minLength: 1, maxLength: 3 }),
    want: fc.array(range, { maxLength: 3 }),
    last: fc.record({ channel, limit: fc.integer({ min: 1, max: 1000 }) }),
  },
  { requiredKeys: [] },
);
const envelope = fc.record(
  {
    type: fc.constantFrom(0, 1, 2, 3, 4, 5, 6, 7, 12, 13),
    data: fc.oneof(fc.constant(null), b64),
    from: peer,
    to: fc.oneof(fc.constant(null), fc.array(peer, { maxLength: 2 })),
    v: fc.integer({ min: 1, max: 3 }),
    id: text(1, 64),
    ts: fc.nat(),
    m: fc.array(update, { maxLength: 3 }),
    target: peer,
    announce: fc.boolean(),
    digest: text(1, 64),
    log,
  },
  { requiredKeys: ['type', 'from'] },
);
const ack = fc.record(
  { ack: fc.boolean(), refused: fc.boolean(), m: fc.array(update, { maxLength: 3 }), digest: text(1, 64) },
  { requiredKeys: [] },
);
const memberList = fc.array(peer, { maxLength: 4 });
const summary = fc.record({
  origin: text(1, 20),
  epoch: text(1, 20),
  channel,
  contiguous: fc.nat(),
  floor: fc.integer({ min: 1, max: 9 }),
  above: fc.array(fc.tuple(fc.integer({ min: 1, max: 99 }), fc.integer({ min: 1, max: 99 })), {
    maxLength: 3,
  }),
});
const logged = fc.record(
  {
    type: fc.constantFrom(2, 3),
    id: text(1, 64),
    ts: fc.nat(),
    data: b64,
    origin: peer,
    sig: text(86, 86),
    epoch: text(1, 20),
    channel,
    seq: fc.integer({ min: 1, max: 1000 }),
    topic,
  },
  { requiredKeys: ['type', 'id', 'ts', 'data', 'origin', 'sig', 'epoch', 'channel', 'seq'] },
);
const logAnswer = fc.record(
  { sum: fc.array(summary, { maxLength: 3 }), msgs: fc.array(logged, { maxLength: 3 }) },
  { requiredKeys: [] },
);

interface Kind {
  readonly name: string;
  readonly gen: fc.Arbitrary<unknown>;
  readonly fast: (raw: unknown) => unknown;
  readonly schema: () => { safeParse(v: unknown): { success: boolean; data?: unknown } };
}

const kinds: readonly Kind[] = [
  {
    name: 'envelope',
    gen: envelope,
    fast: (raw) =>
      typeof raw === 'object' && raw !== null && !Array.isArray(raw)
        ? fastEnvelope(raw as Record<string, unknown>)
        : undefined,
    schema: () => wireSchemas().EnvelopeSchema,
  },
  { name: 'ack', gen: ack, fast: fastAck, schema: () => wireSchemas().AckSchema },
  {
    name: 'member list',
    gen: memberList,
    fast: fastMemberList,
    // As the decoder does: Go marshals an empty (nil) slice as null.
    schema: () => ({ safeParse: (v) => wireSchemas().MemberListSchema.safeParse(v === null ? [] : v) }),
  },
  { name: 'log answer', gen: logAnswer, fast: fastLogAnswer, schema: () => wireSchemas().LogAnswerSchema },
];

const replacements = fc.oneof(
  fc.jsonValue(),
  fc.constantFrom<unknown>(
    ...[0, -1, 1.5, 2 ** 31, 2 ** 31 + 1, 2 ** 60, 255, 256, 1024, 65535, 65536, 14, 12, 8, 2, 1],
    ...['', 'QQ=', 'QR==', 'alive', 'gone', 'gop2p', 'b', 't:', 'd:x', null, true, [], {}, [1, 2], [2, 1]],
    ...[16, 17, 32, 33, 42, 43, 44, 64, 65, 85, 86, 87, 128, 129, 255, 256].map((n) => 'x'.repeat(n)),
  ),
);

describe('fast wire paths (membership, catch-up, answers)', () => {
  for (const kind of kinds) {
    test(`${kind.name}: accepts well-formed values, exactly as zod parses them`, () => {
      fc.assert(
        fc.property(kind.gen, (raw) => {
          const z = kind.schema().safeParse(raw);
          assert.ok(z.success, 'the generator makes valid values');
          const fast = kind.fast(structuredClone(raw));
          assert.notEqual(fast, undefined, 'a valid value takes the fast path');
          assert.deepEqual(fast, z.data);
        }),
        runs,
      );
    });

    test(`${kind.name}: whatever it accepts, zod accepts, with the same result (mutated)`, () => {
      let accepted = 0;
      let refused = 0;
      fc.assert(
        fc.property(
          kind.gen,
          fc.nat(),
          fc.boolean(),
          replacements,
          fc.constantFrom('extra', '__proto__', 'id', 'type', 'state', 'tags', 'm'),
          (raw, where, add, replacement, extraKey) => {
            const all = places(raw);
            const path = all[where % all.length]!;
            const mutated = JSON.parse(JSON.stringify(mutate(raw, path, replacement, extraKey, add)));
            const fast = kind.fast(mutated);
            if (fast === undefined) {
              refused++;
              return;
            }
            accepted++;
            const z = kind.schema().safeParse(mutated);
            assert.ok(
              z.success,
              `fast path accepted what zod refuses: ${JSON.stringify(mutated).slice(0, 300)}`,
            );
            assert.deepEqual(fast, z.data);
          },
        ),
        { ...runs, numRuns: 3000 },
      );
      assert.ok(accepted > 100 && refused > 100, `accepted ${accepted}, refused ${refused} (seed ${seed})`);
    });
  }

  test('the decoders give zod the unusual input, with its precise refusal', () => {
    const from = { address: '127.0.0.1', port: 4000 };
    const body = (v: unknown) => Buffer.from(JSON.stringify(v));
    const ping = decodeEnvelope(body({ type: 4, from, v: 1 }));
    assert.ok(ping.ok);
    const stripped = decodeEnvelope(body({ type: 4, from, v: 1, extra: 1 }));
    assert.ok(stripped.ok);
    assert.deepEqual(stripped.value, { type: 4, from, v: 1 });
    const bad = decodeEnvelope(
      body({ type: 6, from, m: [{ id: 'a', address: 'h', port: 1, state: 'gone', inc: 0 }] }),
    );
    assert.ok(!bad.ok);
    assert.match(bad.refusal.message, /m\.0\.state/);
    assert.equal(decodeEnvelope(body({ type: 99, from })).ok, false);
    const answer = decodeAck(body({ ack: true, digest: 'abc' }));
    assert.ok(answer.ok);
    assert.equal(decodeAck(body({ ack: 'yes' })).ok, false);
    const list = decodeMemberList(Buffer.from('null'));
    assert.ok(list.ok);
    assert.deepEqual(list.value, []);
    assert.equal(fastEnvelope({ type: 4, from: { ...from, inc: 2 ** 31 + 1 } }), undefined);
  });
});
