import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { optionsSchema, resolveOptions } from '../../src/options.js';
import { optionsCertainlyValid } from '../../src/options-check.js';
import { testSeed } from '../sim/network.js';

const seed = testSeed();

const n = fc.oneof(
  fc.integer({ min: -2, max: 70_000 }),
  fc.constantFrom(0, 0.5, 1.5, 255, 256, 10_000, 10_001, 600_000, 600_001, 2 ** 60, Number.NaN, Infinity),
);
const any = fc.oneof(n, fc.string({ maxLength: 6 }), fc.boolean(), fc.constant(null), fc.constant(undefined));
/** Mostly a valid value, sometimes anything. */
const v = <T>(valid: fc.Arbitrary<T>) =>
  fc.oneof({ arbitrary: valid, weight: 40 }, { arbitrary: any as fc.Arbitrary<unknown>, weight: 1 });
const int = (min: number, max: number) => fc.integer({ min, max });
const options = fc.record(
  {
    host: v(fc.constantFrom('127.0.0.1', 'localhost', '::1')),
    port: v(int(0, 65535)),
    name: v(fc.string({ maxLength: 64 })),
    tags: v(fc.dictionary(fc.string({ maxLength: 4 }), fc.string({ maxLength: 4 }), { maxKeys: 3 })),
    secret: v(fc.oneof(fc.string(), fc.array(fc.string(), { maxLength: 2 }))),
    maxMessageBytes: v(int(1, 64 * 1024 * 1024)),
    causalWaitMs: v(int(0, 600_000)),
    maxHops: v(int(1, 255)),
    historyOnJoin: v(int(0, 10_000)),
    preset: v(fc.constantFrom('lan', 'wan', 'local')),
    dissemination: v(fc.constantFrom('full', 'gossip', 'plumtree', 'auto')),
    web: v(fc.boolean()),
    dataDir: v(fc.string({ minLength: 1, maxLength: 3 })),
    timings: v(
      fc.record(
        {
          probeIntervalMs: v(int(1, 5000)),
          indirectProbes: v(int(0, 5)),
          suspicionMult: v(fc.double({ min: 0.1, max: 9, noNaN: true })),
          suspicionMaxMult: v(fc.double({ min: 1, max: 9, noNaN: true })),
          maxAwareness: v(int(0, 9)),
        },
        { requiredKeys: [] },
      ),
    ),
    limits: v(
      fc.record(
        {
          ratePerSecond: v(fc.double({ min: 0.5, max: 99, noNaN: true })),
          rateLimitLoopback: v(fc.boolean()),
        },
        { requiredKeys: [] },
      ),
    ),
    retention: v(fc.record({ maxMessages: v(int(1, 99)), maxAgeMs: v(int(1, 99)) }, { requiredKeys: [] })),
    logger: v(fc.constant({})),
  },
  { requiredKeys: [] },
);
/** Now and then an unknown option too (the schema is strict). */
const withUnknown = fc
  .tuple(options, fc.nat(9), any)
  .map(([o, k, x]) => (k === 0 ? { ...o, unknownOption: x } : o));

describe('options check without zod', () => {
  test('whatever it accepts, the schema accepts unchanged; what the schema accepts it mostly accepts', () => {
    let accepted = 0;
    let refused = 0;
    fc.assert(
      fc.property(withUnknown, (o) => {
        const z = optionsSchema().safeParse(o);
        if (!optionsCertainlyValid(o)) {
          refused++;
          return;
        }
        accepted++;
        assert.ok(z.success, `accepted what the schema refuses: ${JSON.stringify(o)}`);
        assert.deepEqual(z.data, o);
      }),
      { seed, numRuns: 3000 },
    );
    assert.ok(accepted > 50 && refused > 50, `accepted ${accepted}, refused ${refused} (seed ${seed})`);
  });

  test('common options pass without zod; TLS and bad options go to the schema, which names them', () => {
    for (const o of [
      {},
      { port: 0 },
      { host: '127.0.0.1', port: 5001, name: 'ada', preset: 'lan' as const },
    ]) {
      assert.equal(optionsCertainlyValid(o), true, JSON.stringify(o));
    }
    assert.equal(optionsCertainlyValid({ tls: { key: 'k', cert: 'c' } }), false);
    assert.throws(
      () => resolveOptions({ port: 70_000 }),
      (e: Error & { code?: string }) => e.code === 'ERR_INVALID_OPTIONS' && /port/.test(e.message),
    );
  });
});
