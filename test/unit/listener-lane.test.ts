import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ListenerLane, SLICE_MS } from '../../src/delivery/listener-lane.js';

/** A lane on a fake clock: each listener call costs `costMs`; yields are run by `step()`. */
function lane(capacity: number, costMs: number) {
  let now = 0;
  const got: number[] = [];
  const yields: (() => void)[] = [];
  const full: number[] = [];
  let listening = true;
  const l = new ListenerLane<number>(capacity, {
    emit: (n) => {
      now += costMs;
      got.push(n);
    },
    listening: () => listening,
    onFull: (waiting) => full.push(waiting),
    now: () => now,
    yieldThen: (fn) => yields.push(fn),
  });
  return {
    l,
    got,
    full,
    yields,
    mute: () => {
      listening = false;
    },
    /** Runs the next pending slice (after a yield). */
    step: () => yields.shift()?.(),
  };
}

const tick = () => new Promise<void>((r) => process.nextTick(r));

describe('ListenerLane', () => {
  test('calls the listeners in order, soon, in one slice when they are fast', async () => {
    const x = lane(100, 0);
    for (let i = 0; i < 50; i++) x.l.push(i);
    assert.deepEqual(x.got, [], 'not synchronously: after the current task, as an emit would');
    await tick();
    assert.deepEqual(
      x.got,
      Array.from({ length: 50 }, (_, i) => i),
    );
    assert.equal(x.yields.length, 0);
    assert.equal(x.l.waiting, 0);
  });

  test(`yields to I/O after ${SLICE_MS} ms of listener time, and goes on where it stopped`, async () => {
    const x = lane(1_000, 5);
    for (let i = 0; i < 10; i++) x.l.push(i);
    await tick();
    assert.equal(x.got.length, SLICE_MS / 5, 'one slice');
    assert.equal(x.yields.length, 1);
    while (x.yields.length > 0) x.step();
    assert.deepEqual(
      x.got,
      Array.from({ length: 10 }, (_, i) => i),
    );
    assert.equal(x.l.busyMs, 50);
  });

  test('is full at capacity, once per episode, until drained to half', async () => {
    const x = lane(8, 10);
    for (let i = 0; i < 8; i++) x.l.push(i);
    assert.equal(x.l.full, true);
    assert.deepEqual(x.full, [8]);
    x.l.push(8);
    assert.deepEqual(x.full, [8], 'told once');
    await tick(); // 2 calls (20 ms): 7 wait
    assert.equal(x.l.full, true);
    x.step(); // 5 wait: still above half
    assert.equal(x.l.full, true);
    x.step(); // 3 wait
    assert.equal(x.l.full, false);
    x.l.push(9);
    while (x.yields.length > 0) x.step();
    assert.deepEqual(
      x.got,
      Array.from({ length: 10 }, (_, i) => i),
    );
    assert.equal(x.l.fullEpisodes, 1);
  });

  test('keeps nothing when nobody listens, and clear() forgets what waits', async () => {
    const x = lane(4, 10);
    x.mute();
    x.l.push(1);
    assert.equal(x.l.waiting, 0);
    const y = lane(4, 10);
    for (let i = 0; i < 6; i++) y.l.push(i);
    y.l.clear();
    assert.equal(y.l.waiting, 0);
    assert.equal(y.l.full, false);
  });

  test('a listener that throws leaves the rest for the next slice', async () => {
    let now = 0;
    const got: number[] = [];
    const yields: (() => void)[] = [];
    const l = new ListenerLane<number>(10, {
      emit: (n) => {
        now += SLICE_MS; // one call per slice
        if (n === 1) throw new Error('boom');
        got.push(n);
      },
      listening: () => true,
      now: () => now,
      yieldThen: (fn) => yields.push(fn),
    });
    for (let i = 0; i < 3; i++) l.push(i);
    await tick();
    assert.deepEqual(got, [0]);
    assert.throws(() => yields.shift()?.(), /boom/, 'the throw goes on, as an emit would');
    assert.equal(yields.length, 1, 'the rest is scheduled');
    yields.shift()?.();
    assert.deepEqual(got, [0, 2]);
    assert.equal(l.waiting, 0);
  });
});
