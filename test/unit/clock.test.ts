import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { flushMicrotasks, ManualClock, SystemClock } from '../../src/clock.js';
import { P2PError, TimeoutError } from '../../src/errors.js';
import { SeededRandom } from '../../src/random.js';

function abortReason(signal: AbortSignal): Promise<unknown> {
  return new Promise((resolve) => {
    if (signal.aborted) resolve(signal.reason);
    else signal.addEventListener('abort', () => resolve(signal.reason), { once: true });
  });
}

describe('ManualClock', () => {
  test('now() starts at the given origin and moves only on advance()', async () => {
    const clock = new ManualClock(1000);
    assert.equal(clock.now(), 1000);
    await clock.advance(250);
    assert.equal(clock.now(), 1250);
    assert.equal(new ManualClock().now(), 0);
  });

  test('timers fire in deadline order, ties in creation order', async () => {
    const clock = new ManualClock();
    const fired: string[] = [];
    clock.setTimeout(() => fired.push('c@30'), 30);
    clock.setTimeout(() => fired.push('a@10'), 10);
    clock.setTimeout(() => fired.push('b1@20'), 20);
    clock.setTimeout(() => fired.push('b2@20'), 20);
    clock.setTimeout(() => fired.push('z@0'), 0);
    clock.setTimeout(() => fired.push('b3@20'), 20);
    clock.setTimeout(() => fired.push('neg'), -5);
    assert.equal(clock.pending, 7);
    await clock.advance(20);
    assert.deepEqual(fired, ['z@0', 'neg', 'a@10', 'b1@20', 'b2@20', 'b3@20']);
    assert.equal(clock.pending, 1);
    await clock.advance(9);
    assert.equal(fired.length, 6, 'c is not due before 30');
    await clock.advance(1);
    assert.deepEqual(fired.at(-1), 'c@30');
    assert.equal(clock.pending, 0);
  });

  test('many timers in random order fire sorted by deadline, then by creation', async () => {
    const seed = 4242;
    const random = new SeededRandom(seed);
    const clock = new ManualClock();
    const fired: { at: number; seq: number }[] = [];
    const cancelled = new Set<number>();
    for (let seq = 0; seq < 500; seq++) {
      const at = Math.floor(random.next() * 50);
      const handle = clock.setTimeout(() => fired.push({ at: clock.now(), seq }), at);
      if (random.next() < 0.2) {
        handle.cancel();
        cancelled.add(seq);
      }
    }
    await clock.advance(25);
    await clock.advance(25);
    assert.equal(fired.length, 500 - cancelled.size, `seed ${seed}`);
    for (let i = 1; i < fired.length; i++) {
      const p = fired[i - 1]!;
      const c = fired[i]!;
      assert.ok(p.at < c.at || (p.at === c.at && p.seq < c.seq), `seed ${seed}: order at ${i}`);
    }
    assert.ok(
      fired.every((f) => !cancelled.has(f.seq)),
      `seed ${seed}: a cancelled timer fired`,
    );
  });

  test('a timer sees now() equal to its deadline', async () => {
    const clock = new ManualClock();
    const seen: number[] = [];
    clock.setTimeout(() => seen.push(clock.now()), 10);
    clock.setTimeout(() => seen.push(clock.now()), 25);
    await clock.advance(100);
    assert.deepEqual(seen, [10, 25]);
    assert.equal(clock.now(), 100);
  });

  test('cancel() prevents firing; cancelling twice or after firing does nothing', async () => {
    const clock = new ManualClock();
    const fired: string[] = [];
    const a = clock.setTimeout(() => fired.push('a'), 10);
    const b = clock.setTimeout(() => fired.push('b'), 10);
    a.cancel();
    a.cancel();
    assert.equal(clock.pending, 1);
    await clock.advance(10);
    assert.deepEqual(fired, ['b']);
    b.cancel();
    assert.equal(clock.pending, 0);
  });

  test('many cancelled timers (the heap drops them): the rest fire in order, pending counts them', async () => {
    const clock = new ManualClock();
    const random = new SeededRandom(7);
    const fired: number[] = [];
    const kept: { at: number; i: number }[] = [];
    for (let i = 0; i < 5000; i++) {
      const at = Math.floor(random.next() * 1000);
      const handle = clock.setTimeout(() => fired.push(i), at);
      // Four in five cancelled, some twice: more than the live ones, so the heap is rebuilt.
      if (i % 5 !== 0) {
        handle.cancel();
        if (i % 3 === 0) handle.cancel();
      } else kept.push({ at, i });
    }
    assert.equal(clock.pending, kept.length);
    await clock.advance(500);
    const due = kept.filter((k) => k.at <= 500);
    assert.equal(clock.pending, kept.length - due.length);
    await clock.advance(500);
    kept.sort((a, b) => a.at - b.at || a.i - b.i);
    assert.deepEqual(
      fired,
      kept.map((k) => k.i),
    );
    assert.equal(clock.pending, 0);
  });

  test('a timer can cancel a later one', async () => {
    const clock = new ManualClock();
    const fired: string[] = [];
    const later = clock.setTimeout(() => fired.push('later'), 20);
    clock.setTimeout(() => later.cancel(), 10);
    await clock.advance(30);
    assert.deepEqual(fired, []);
  });

  test('advance() runs the promise chains a timer starts before the next timer fires', async () => {
    const clock = new ManualClock();
    const log: string[] = [];
    clock.setTimeout(() => {
      log.push('t1');
      void Promise.resolve()
        .then(() => log.push('t1.then1'))
        .then(() => Promise.resolve())
        .then(() => log.push('t1.then2'));
    }, 10);
    clock.setTimeout(() => log.push('t2'), 10);
    await clock.advance(10);
    assert.deepEqual(log, ['t1', 't1.then1', 't1.then2', 't2']);
  });

  test('timers scheduled while advancing fire within the same advance when due', async () => {
    const clock = new ManualClock();
    const fired: number[] = [];
    const tick = (): void => {
      fired.push(clock.now());
      if (fired.length < 5) clock.setTimeout(tick, 10);
    };
    clock.setTimeout(tick, 10);
    await clock.advance(35);
    assert.deepEqual(fired, [10, 20, 30]);
    await clock.advance(100);
    assert.deepEqual(fired, [10, 20, 30, 40, 50]);
  });

  test('an async loop awaiting sleeps runs to completion under advance()', async () => {
    const clock = new ManualClock();
    const sleep = (ms: number): Promise<void> => new Promise((r) => clock.setTimeout(r, ms));
    const times: number[] = [];
    const loop = (async () => {
      for (let i = 0; i < 3; i++) {
        await sleep(100);
        await Promise.resolve();
        times.push(clock.now());
      }
    })();
    await clock.advance(1000);
    await loop;
    assert.deepEqual(times, [100, 200, 300]);
  });

  test('timeoutSignal aborts with ERR_TIMEOUT exactly when due', async () => {
    const clock = new ManualClock();
    const signal = clock.timeoutSignal(100);
    await clock.advance(99);
    assert.equal(signal.aborted, false);
    await clock.advance(1);
    assert.equal(signal.aborted, true);
    const reason = signal.reason as unknown;
    assert.ok(reason instanceof TimeoutError);
    assert.ok(reason instanceof P2PError);
    assert.equal(reason.code, 'ERR_TIMEOUT');
  });

  test('timeoutSignal carries the given message', async () => {
    const clock = new ManualClock();
    const signal = clock.timeoutSignal(5, 'no answer within 5 ms');
    await clock.advance(5);
    assert.equal((signal.reason as Error).message, 'no answer within 5 ms');
  });

  test('timeoutSignal rejects a pending operation through AbortSignal.any', async () => {
    const clock = new ManualClock();
    const caller = new AbortController();
    const combined = AbortSignal.any([caller.signal, clock.timeoutSignal(50)]);
    const reason = abortReason(combined);
    await clock.advance(50);
    const err = (await reason) as P2PError;
    assert.equal(err.code, 'ERR_TIMEOUT');
  });

  test('a timeoutSignal leaves no timer behind once it fired', async () => {
    const clock = new ManualClock();
    clock.timeoutSignal(10);
    assert.equal(clock.pending, 1);
    await clock.advance(10);
    assert.equal(clock.pending, 0);
  });

  test('advanceUntil stops once the predicate holds', async () => {
    const clock = new ManualClock();
    let done = false;
    clock.setTimeout(() => {
      done = true;
    }, 45);
    assert.equal(await clock.advanceUntil(() => done, 1000), true);
    assert.equal(done, true);
    assert.ok(clock.now() >= 45 && clock.now() < 1000, `stopped at ${clock.now()}`);
  });

  test('advanceUntilSettled stops once the promise settles, fulfilled or rejected', async () => {
    const clock = new ManualClock();
    const fulfilled = new Promise((resolve) => clock.setTimeout(() => resolve('ok'), 30));
    assert.equal(await clock.advanceUntilSettled(fulfilled, 1000), true);
    assert.ok(clock.now() >= 30 && clock.now() < 1000, `stopped at ${clock.now()}`);
    assert.equal(await fulfilled, 'ok');
    const failure = new Error('refused');
    const rejected = new Promise((_, reject) => clock.setTimeout(() => reject(failure), 20));
    // The rejection is handled while the clock runs: no unhandled rejection, and it is read after.
    assert.equal(await clock.advanceUntilSettled(rejected, 1000), true);
    await assert.rejects(rejected, (err) => err === failure);
  });

  test('advanceUntilSettled returns false after maxMs for a promise that never settles', async () => {
    const clock = new ManualClock();
    assert.equal(await clock.advanceUntilSettled(new Promise(() => {}), 200), false);
    assert.equal(clock.now(), 200);
  });

  test('advanceUntil returns false after maxMs when the predicate never holds', async () => {
    const clock = new ManualClock(100);
    assert.equal(await clock.advanceUntil(() => false, 95, 10), false);
    assert.equal(clock.now(), 195);
  });

  test('advanceUntil does not advance when the predicate already holds', async () => {
    const clock = new ManualClock();
    assert.equal(await clock.advanceUntil(() => true, 1000), true);
    assert.equal(clock.now(), 0);
  });

  test('flushMicrotasks lets chained promise callbacks run', async () => {
    let n = 0;
    void Promise.resolve()
      .then(() => n++)
      .then(() => n++)
      .then(() => n++);
    await flushMicrotasks();
    assert.equal(n, 3);
  });
});

describe('SystemClock', () => {
  test('now() does not go backwards', () => {
    const clock = new SystemClock();
    const a = clock.now();
    const b = clock.now();
    assert.ok(b >= a);
  });

  test('setTimeout fires, and a cancelled timer does not', async () => {
    const clock = new SystemClock();
    const fired: string[] = [];
    clock.setTimeout(() => fired.push('cancelled'), 1).cancel();
    // SystemClock timers are unref'd: a ref'd interval keeps the process alive while we wait.
    const keepAlive = setInterval(() => {}, 1000);
    try {
      await new Promise<void>((resolve) => clock.setTimeout(resolve, 20));
    } finally {
      clearInterval(keepAlive);
    }
    assert.deepEqual(fired, []);
  });

  test('timeoutSignal aborts with ERR_TIMEOUT', async () => {
    const clock = new SystemClock();
    const keepAlive = setInterval(() => {}, 1000);
    try {
      const reason = (await abortReason(clock.timeoutSignal(5, 'late'))) as P2PError;
      assert.ok(reason instanceof TimeoutError);
      assert.equal(reason.code, 'ERR_TIMEOUT');
      assert.equal(reason.message, 'late');
    } finally {
      clearInterval(keepAlive);
    }
  });
});
