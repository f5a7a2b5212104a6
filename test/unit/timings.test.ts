import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import {
  LAN,
  LOCAL,
  type MembershipTimings,
  PRESETS,
  pushPullInterval,
  suspicionBounds,
  suspicionTimeout,
  WAN,
} from '../../src/membership/timings.js';

// Reproduce a failure with TSP2P_SEED=<seed printed below>.
const SEED = process.env.TSP2P_SEED === undefined ? 20261202 : Number(process.env.TSP2P_SEED);
console.log(`timings: fast-check seed ${SEED} (set TSP2P_SEED to replay)`);

function check<Ts extends [unknown, ...unknown[]]>(property: fc.IProperty<Ts>, numRuns = 500): void {
  try {
    fc.assert(property, { seed: SEED, numRuns });
  } catch (err) {
    console.error(`timings property failed with seed ${SEED}`);
    throw err;
  }
}

const t = (over: Partial<MembershipTimings> = {}): MembershipTimings => ({ ...LAN, ...over });

describe('timings: suspicionBounds', () => {
  test('min = suspicionMult × max(1, log10(n)) × probeIntervalMs, max = suspicionMaxMult × min', () => {
    const timings = t({ suspicionMult: 4, suspicionMaxMult: 6, probeIntervalMs: 1_000 });
    // Up to 10 members, log10(n) <= 1: the floor of 1 applies.
    for (const n of [0, 1, 2, 5, 10])
      assert.deepEqual(suspicionBounds(timings, n), { minMs: 4_000, maxMs: 24_000 });
    assert.deepEqual(suspicionBounds(timings, 100), { minMs: 8_000, maxMs: 48_000 });
    assert.deepEqual(suspicionBounds(timings, 1_000), { minMs: 12_000, maxMs: 72_000 });
    const { minMs, maxMs } = suspicionBounds(timings, 50);
    assert.ok(Math.abs(minMs - 4 * Math.log10(50) * 1_000) < 1e-6);
    assert.ok(Math.abs(maxMs - 6 * minMs) < 1e-6);
  });

  test('scales with every factor of the formula', () => {
    const one = suspicionBounds(t({ suspicionMult: 1, probeIntervalMs: 100, suspicionMaxMult: 1 }), 5);
    assert.deepEqual(one, { minMs: 100, maxMs: 100 });
    assert.deepEqual(suspicionBounds(t({ suspicionMult: 3, probeIntervalMs: 100, suspicionMaxMult: 1 }), 5), {
      minMs: 300,
      maxMs: 300,
    });
    assert.deepEqual(suspicionBounds(t({ suspicionMult: 1, probeIntervalMs: 700, suspicionMaxMult: 1 }), 5), {
      minMs: 700,
      maxMs: 700,
    });
    assert.deepEqual(suspicionBounds(t({ suspicionMult: 1, probeIntervalMs: 100, suspicionMaxMult: 5 }), 5), {
      minMs: 100,
      maxMs: 500,
    });
  });

  test('never shrinks as the network grows, and min <= max (fast-check)', () => {
    check(
      fc.property(fc.integer({ min: 0, max: 1_000_000 }), fc.integer({ min: 0, max: 1_000_000 }), (a, b) => {
        const [lo, hi] = a <= b ? [a, b] : [b, a];
        for (const preset of [LAN, WAN, LOCAL]) {
          const small = suspicionBounds(preset, lo);
          const large = suspicionBounds(preset, hi);
          assert.ok(small.minMs <= large.minMs);
          assert.ok(small.maxMs <= large.maxMs);
          assert.ok(small.minMs <= small.maxMs);
          assert.ok(small.minMs >= preset.suspicionMult * preset.probeIntervalMs);
        }
      }),
    );
  });
});

describe('timings: suspicionTimeout (Lifeguard)', () => {
  test('starts at max, reaches min after the k expected confirmations, and never goes below it', () => {
    assert.equal(suspicionTimeout(1_000, 6_000, 0, 3), 6_000);
    assert.equal(suspicionTimeout(1_000, 6_000, 3, 3), 1_000);
    assert.equal(suspicionTimeout(1_000, 6_000, 4, 3), 1_000);
    assert.equal(suspicionTimeout(1_000, 6_000, 100, 3), 1_000);
  });

  test('max − (max − min) × log(c + 1) / log(k + 1), floored', () => {
    // c = 1 of k = 3: log 2 / log 4 = 1/2.
    assert.equal(suspicionTimeout(1_000, 6_000, 1, 3), 3_500);
    // c = 2 of k = 3: log 3 / log 4.
    assert.equal(
      suspicionTimeout(1_000, 6_000, 2, 3),
      Math.floor(6_000 - 5_000 * (Math.log(3) / Math.log(4))),
    );
    // c = 1 of k = 1 is already all of them.
    assert.equal(suspicionTimeout(1_000, 6_000, 1, 1), 1_000);
  });

  test('with no confirmations expected (k < 1), it is min at once', () => {
    assert.equal(suspicionTimeout(1_000, 6_000, 0, 0), 1_000);
    assert.equal(suspicionTimeout(1_000, 6_000, 5, 0), 1_000);
  });

  test('monotone: more confirmations never lengthen it; always within [min, max] (fast-check)', () => {
    check(
      fc.property(
        fc.integer({ min: 1, max: 100_000 }),
        fc.integer({ min: 1, max: 10 }),
        fc.integer({ min: 0, max: 20 }),
        fc.integer({ min: 1, max: 10 }),
        (minMs, mult, c, k) => {
          const maxMs = minMs * mult;
          const now = suspicionTimeout(minMs, maxMs, c, k);
          const later = suspicionTimeout(minMs, maxMs, c + 1, k);
          assert.ok(later <= now, `c=${c}: ${later} > ${now}`);
          assert.ok(now >= minMs && now <= maxMs);
          assert.ok(Number.isInteger(now));
        },
      ),
    );
  });
});

describe('timings: pushPullInterval', () => {
  test('the base interval up to 32 members, then × (⌈log2(n) − log2(32)⌉ + 1)', () => {
    const base = t({ pushPullIntervalMs: 1_000 });
    for (const n of [0, 1, 2, 31, 32]) assert.equal(pushPullInterval(base, n), 1_000);
    assert.equal(pushPullInterval(base, 33), 2_000);
    assert.equal(pushPullInterval(base, 64), 2_000);
    assert.equal(pushPullInterval(base, 65), 3_000);
    assert.equal(pushPullInterval(base, 128), 3_000);
    assert.equal(pushPullInterval(base, 129), 4_000);
    assert.equal(pushPullInterval(base, 1_000), 1_000 * (Math.ceil(Math.log2(1_000) - 5) + 1));
  });

  test('never shrinks as the network grows (fast-check)', () => {
    check(
      fc.property(fc.integer({ min: 0, max: 1_000_000 }), fc.integer({ min: 0, max: 1_000_000 }), (a, b) => {
        const [lo, hi] = a <= b ? [a, b] : [b, a];
        for (const preset of [LAN, WAN, LOCAL]) {
          assert.ok(pushPullInterval(preset, lo) <= pushPullInterval(preset, hi));
          assert.ok(pushPullInterval(preset, lo) >= preset.pushPullIntervalMs);
        }
      }),
    );
  });
});

describe('timings: presets', () => {
  const presets = { LAN, WAN, LOCAL } as const;

  test('PRESETS names lan, wan and local', () => {
    assert.deepEqual(Object.keys(PRESETS).sort(), ['lan', 'local', 'wan']);
    assert.equal(PRESETS.lan, LAN);
    assert.equal(PRESETS.wan, WAN);
    assert.equal(PRESETS.local, LOCAL);
  });

  test('are frozen', () => {
    for (const [name, p] of Object.entries(presets)) {
      assert.ok(Object.isFrozen(p), name);
      assert.throws(() => {
        (p as { probeIntervalMs: number }).probeIntervalMs = 1;
      }, TypeError);
    }
    assert.ok(Object.isFrozen(PRESETS));
    assert.equal(LAN.probeIntervalMs, 1_000);
  });

  test('hold every timing, as a positive finite integer', () => {
    const keys = Object.keys(LAN).sort();
    assert.equal(keys.length, 16);
    for (const [name, p] of Object.entries(presets)) {
      assert.deepEqual(Object.keys(p).sort(), keys, name);
      for (const [k, v] of Object.entries(p)) {
        assert.ok(Number.isInteger(v) && v >= 0, `${name}.${k} = ${v}`);
        if (k !== 'maxAwareness') assert.ok(v > 0, `${name}.${k} = ${v}`);
      }
    }
  });

  test('are sane: a probe times out within its period, the rest stays in proportion', () => {
    for (const [name, p] of Object.entries(presets)) {
      assert.ok(p.probeTimeoutMs < p.probeIntervalMs, `${name}: probe timeout < probe interval`);
      assert.ok(p.gossipIntervalMs < p.probeIntervalMs, `${name}: gossip more often than probes`);
      assert.ok(p.probeIntervalMs < p.pushPullIntervalMs, `${name}: push-pull less often than probes`);
      assert.ok(p.suspicionMaxMult >= 1, `${name}: max suspicion >= min suspicion`);
      assert.ok(p.indirectProbes >= 1, `${name}: at least one indirect probe`);
      assert.ok(p.reconnectIntervalMs < p.deadRetentionMs, `${name}: dead members are retried`);
      assert.ok(p.refusedSuspicionMs < suspicionBounds(p, 1).minMs, `${name}: a refusal shortens suspicion`);
      const { minMs } = suspicionBounds(p, 1);
      assert.ok(minMs > p.probeIntervalMs, `${name}: a suspect gets more than one probe period to refute`);
    }
  });

  test('LOCAL detects faster than LAN, and LAN faster than WAN', () => {
    assert.ok(LOCAL.probeIntervalMs < LAN.probeIntervalMs);
    assert.ok(LAN.probeIntervalMs < WAN.probeIntervalMs);
    assert.ok(suspicionBounds(LOCAL, 10).maxMs < suspicionBounds(LAN, 10).maxMs);
    assert.ok(suspicionBounds(LAN, 10).maxMs < suspicionBounds(WAN, 10).maxMs);
  });
});
