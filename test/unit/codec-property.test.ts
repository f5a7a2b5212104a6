import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import {
  type Decoded,
  decodeData,
  decodeEnvelope,
  decodeMemberList,
  encodeWithUpdates,
} from '../../src/protocol/codec.js';
import { openEnvelope, sealEnvelope } from '../../src/protocol/envelope.js';
import {
  type Envelope,
  FIELD_LIMITS,
  MessageType,
  PROTOCOL_VERSION,
  type WirePeer,
} from '../../src/protocol/schema.js';

// Reproduce a failure with TSP2P_SEED=<seed printed below>.
const SEED = process.env.TSP2P_SEED === undefined ? 20261125 : Number(process.env.TSP2P_SEED);
const NUM_RUNS = 2000;
console.log(`codec-property: fast-check seed ${SEED} (set TSP2P_SEED to replay)`);

function check<Ts extends [unknown, ...unknown[]]>(property: fc.IProperty<Ts>, numRuns = NUM_RUNS): void {
  try {
    fc.assert(property, { seed: SEED, numRuns });
  } catch (err) {
    console.error(`codec-property failed with seed ${SEED}`);
    throw err;
  }
}

/** The contract every decode must keep, whatever the input. */
function assertWellFormed(result: Decoded<unknown>, statuses: readonly number[]): void {
  if (result.ok) return;
  const { status, message } = result.refusal;
  assert.ok(statuses.includes(status), `status ${status} not in ${statuses.join(',')}: ${message}`);
  assert.equal(typeof message, 'string');
  assert.ok(message.length > 0, 'the message is not empty');
  assert.ok(!/[\r\n]/.test(message), `the message is one line: ${JSON.stringify(message)}`);
}

function decodeNeverThrows(body: Uint8Array): Decoded<Envelope> {
  let result: Decoded<Envelope> | undefined;
  assert.doesNotThrow(() => {
    result = decodeEnvelope(body);
  });
  return result!;
}

const utf8 = (s: string): Uint8Array => Buffer.from(s, 'utf8');

// ---- arbitraries -------------------------------------------------------------------------------

const anyString = (maxLength: number): fc.Arbitrary<string> => fc.string({ unit: 'binary', maxLength });

const wirePeer: fc.Arbitrary<WirePeer> = fc
  .record(
    {
      address: fc.string({ unit: 'binary', minLength: 1, maxLength: FIELD_LIMITS.address }),
      port: fc.integer({ min: 1, max: 65535 }),
      id: fc.string({ unit: 'binary', minLength: 1, maxLength: FIELD_LIMITS.id }),
      name: anyString(FIELD_LIMITS.name),
    },
    { requiredKeys: ['address', 'port'] },
  )
  .map((peer) => ({ ...peer })); // a plain object: fast-check may build null-prototype records

const messageType = fc.constantFrom(
  MessageType.Connect,
  MessageType.Disconnect,
  MessageType.Broadcast,
  MessageType.Direct,
);

const envelopeFields = fc
  .record(
    {
      type: messageType,
      from: wirePeer,
      data: fc.uint8Array({ maxLength: 512 }),
      to: fc.array(wirePeer, { maxLength: 5 }),
      id: fc.string({ unit: 'binary', minLength: 1, maxLength: FIELD_LIMITS.messageId }),
      ts: fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }),
    },
    { requiredKeys: ['type', 'from', 'id', 'ts'] },
  )
  .map((fields) => ({ ...fields }));

/** A valid envelope as a plain JSON object, as a peer would send it. */
const validEnvelopeJson = envelopeFields.map(
  (f) => JSON.parse(Buffer.from(sealEnvelope(f).body).toString('utf8')) as object,
);

/** A JSON text edited at random: characters flipped, inserted or deleted. */
const mutatedText = fc
  .tuple(
    validEnvelopeJson.map((e) => JSON.stringify(e)),
    fc.array(
      fc.record({
        op: fc.constantFrom('flip', 'insert', 'delete'),
        at: fc.nat(),
        char: fc.string({ unit: 'binary', minLength: 1, maxLength: 1 }),
      }),
      { minLength: 1, maxLength: 4 },
    ),
  )
  .map(([text, edits]) => {
    let s = text;
    for (const e of edits) {
      const at = s.length === 0 ? 0 : e.at % s.length;
      if (e.op === 'flip') s = s.slice(0, at) + e.char + s.slice(at + 1);
      else if (e.op === 'insert') s = s.slice(0, at) + e.char + s.slice(at);
      else s = s.slice(0, at) + s.slice(at + 1);
    }
    return s;
  });

/** A valid envelope with one field (top-level or in `from`) replaced by an arbitrary JSON value. */
const retypedEnvelope = fc
  .tuple(
    validEnvelopeJson,
    fc.constantFrom('type', 'data', 'from', 'to', 'v', 'id', 'ts', 'from.address', 'from.port', 'from.id'),
    fc.jsonValue(),
  )
  .map(([env, field, value]) => {
    const copy = structuredClone(env) as Record<string, unknown>;
    if (field.startsWith('from.')) (copy.from as Record<string, unknown>)[field.slice(5)] = value;
    else copy[field] = value;
    return copy;
  });

// ---- properties --------------------------------------------------------------------------------

describe('decodeEnvelope never throws and always answers 400 or 405 with one line', () => {
  test('arbitrary bytes', () => {
    check(
      fc.property(fc.uint8Array({ maxLength: 256 }), (body) => {
        assertWellFormed(decodeNeverThrows(body), [400, 405]);
      }),
    );
  });

  test('arbitrary JSON values', () => {
    check(
      fc.property(fc.jsonValue(), (value) => {
        assertWellFormed(decodeNeverThrows(utf8(JSON.stringify(value) ?? 'null')), [400, 405]);
      }),
    );
  });

  test('arbitrary objects with envelope-like keys', () => {
    const key = fc.constantFrom('type', 'data', 'from', 'to', 'v', 'id', 'ts', '__proto__', 'constructor');
    check(
      fc.property(fc.dictionary(key, fc.jsonValue(), { maxKeys: 8 }), (value) => {
        assertWellFormed(decodeNeverThrows(utf8(JSON.stringify(value))), [400, 405]);
      }),
    );
  });

  test('valid envelopes with characters flipped, inserted or deleted', () => {
    check(
      fc.property(mutatedText, (text) => {
        assertWellFormed(decodeNeverThrows(utf8(text)), [400, 405]);
      }),
    );
  });

  test('valid envelopes with a field of another type or value', () => {
    check(
      fc.property(retypedEnvelope, (env) => {
        const result = decodeNeverThrows(utf8(JSON.stringify(env)));
        assertWellFormed(result, [400, 405]);
        if (result.ok) {
          // Whatever was accepted satisfies the schema's promises.
          assert.ok(Number.isInteger(result.value.type));
          assert.ok(Number.isInteger(result.value.from.port) && result.value.from.port >= 1);
          assert.ok(result.value.from.port <= 65535);
        }
      }),
    );
  });

  test('any safe integer type outside the known ones (0-8, 12, 13) is answered 405, any non-integer 400', () => {
    check(
      fc.property(
        validEnvelopeJson,
        fc.oneof(fc.integer(), fc.double({ noNaN: true, noDefaultInfinity: true })),
        (env, type) => {
          const result = decodeEnvelope(utf8(JSON.stringify({ ...env, type })));
          // JSON has no -0: it is written as 0.
          if (Object.values(MessageType).includes(type as MessageType)) {
            assert.ok(result.ok, JSON.stringify(type));
          } else if (Number.isSafeInteger(type)) {
            assert.ok(!result.ok && result.refusal.status === 405, JSON.stringify(type));
          } else if (Number.isInteger(type)) {
            // Beyond 2^53 an integer is not exact any more: either refusal is fair.
            assert.ok(!result.ok && [400, 405].includes(result.refusal.status), JSON.stringify(type));
          } else {
            assert.ok(!result.ok && result.refusal.status === 400, JSON.stringify(type));
          }
        },
      ),
    );
  });
});

describe('valid envelopes round-trip', () => {
  test('sealEnvelope -> openEnvelope keeps every field and byte', () => {
    check(
      fc.property(envelopeFields, (fields) => {
        const opened = openEnvelope(sealEnvelope(fields).body);
        if (!opened.ok) assert.fail(`refused: ${opened.refusal.status} ${opened.refusal.message}`);
        const env = opened.value;
        assert.equal(env.type, fields.type);
        assert.deepEqual(env.from, fields.from);
        assert.equal(env.id, fields.id);
        assert.equal(env.ts, fields.ts);
        assert.equal(env.v, PROTOCOL_VERSION);
        assert.deepEqual(env.to ?? undefined, fields.to);
        assert.deepEqual(decodeData(env.data), fields.data ?? new Uint8Array(0));
      }),
    );
  });
});

describe('decodeMemberList never throws', () => {
  test('arbitrary bytes and JSON values answer ok or 400 with one line', () => {
    check(
      fc.property(
        fc.oneof(
          fc.uint8Array({ maxLength: 128 }),
          fc.jsonValue().map((v) => utf8(JSON.stringify(v) ?? 'null')),
          fc.array(wirePeer, { maxLength: 5 }).map((list) => utf8(JSON.stringify(list))),
        ),
        (body) => {
          let result: Decoded<WirePeer[]> | undefined;
          assert.doesNotThrow(() => {
            result = decodeMemberList(body);
          });
          assertWellFormed(result!, [400]);
        },
      ),
    );
  });
});

describe('encodeWithUpdates', () => {
  test('gives the text JSON.stringify gives, whether an update was encoded before or not', () => {
    const update = fc.record(
      {
        id: fc.string(),
        address: fc.string(),
        port: fc.nat(65535),
        state: fc.constantFrom('alive', 'suspect', 'dead', 'left'),
        inc: fc.nat(),
        name: fc.string(),
        by: fc.string(),
        tags: fc.dictionary(fc.string(), fc.string(), { maxKeys: 3 }),
        topics: fc.array(fc.string(), { maxLength: 3 }),
      },
      { requiredKeys: ['id', 'address', 'port', 'state', 'inc'] },
    );
    check(
      fc.property(
        fc.array(update, { maxLength: 6 }),
        fc.dictionary(
          fc.string().filter((k) => k !== 'm'),
          fc.jsonValue(),
          { maxKeys: 4 },
        ),
        fc.boolean(),
        (m, rest, mFirst) => {
          const value = mFirst ? { m, ...rest, m2: undefined } : { ...rest, m, last: undefined };
          const expected = JSON.stringify(value);
          assert.equal(encodeWithUpdates(value), expected);
          // Again, from what each update keeps of its first encoding; a copy keeps none of it.
          assert.equal(encodeWithUpdates(value), expected);
          const copies = m.map((u) => ({ ...u, inc: u.inc + 1 }));
          assert.equal(encodeWithUpdates({ ...value, m: copies }), JSON.stringify({ ...value, m: copies }));
        },
      ),
      500,
    );
  });
});
