import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ManualClock, SystemClock, skewedClock, wallTime } from '../../src/clock.js';
import type { P2PError } from '../../src/errors.js';
import { DEFAULT_MAX_CLOCK_SKEW_MS } from '../../src/security/limits.js';
import { memoryHarness, settle } from '../helpers/unit-memory.js';

describe('wall clock', () => {
  test('a ManualClock wall clock starts where told and moves with advance()', async () => {
    const clock = new ManualClock(100, { wall: 1_700_000_000_000 });
    assert.equal(clock.wallNow(), 1_700_000_000_000);
    await clock.advance(2_500);
    assert.equal(clock.wallNow(), 1_700_000_002_500);
    assert.equal(clock.now(), 2_600);
  });

  test('the SystemClock wall clock is the epoch time; wallTime falls back to it', () => {
    const before = Date.now();
    const wall = new SystemClock().wallNow();
    const bare = wallTime({
      now: () => 0,
      setTimeout: () => ({ cancel() {} }),
      timeoutSignal: () => AbortSignal.abort(),
    });
    const after = Date.now();
    for (const t of [wall, bare]) assert.ok(t >= before && t <= after, `${t} within [${before}, ${after}]`);
  });

  test('skewedClock moves the wall clock only', async () => {
    const clock = new ManualClock(0, { wall: 1_000_000 });
    const skewed = skewedClock(clock, -60_000);
    assert.equal(wallTime(skewed), 940_000);
    let fired = false;
    skewed.setTimeout(() => {
      fired = true;
    }, 10);
    await clock.advance(10);
    assert.ok(fired);
    assert.equal(skewed.now(), 10);
    assert.equal(wallTime(skewed), 940_010);
  });
});

describe('clock skew between nodes (the injected wall clock)', () => {
  test('a node whose clock is off by more than maxClockSkewMs is refused as stale; within it, joins', async (t) => {
    const h = memoryHarness(7);
    t.after(() => h.stopAll());
    const entry = h.node();
    const near = h.node({ clock: skewedClock(h.clock, DEFAULT_MAX_CLOCK_SKEW_MS - 30_000) });
    const far = h.node({ clock: skewedClock(h.clock, DEFAULT_MAX_CLOCK_SKEW_MS + 30_000) });
    for (const n of [entry, near, far]) await settle(h.clock, n.start());
    await settle(h.clock, near.connect(entry.self));
    assert.ok(entry.members().some((p) => p.id === near.id));
    const err = (await settle(h.clock, far.connect(entry.self)).catch((e: unknown) => e)) as P2PError & {
      cause?: { status?: number; reason?: string };
    };
    assert.equal(err.code, 'ERR_CONNECT_FAILED');
    assert.equal(err.cause?.status, 401);
    assert.equal(err.cause?.reason, 'stale');
    assert.ok(!entry.members().some((p) => p.id === far.id));
  });
});
