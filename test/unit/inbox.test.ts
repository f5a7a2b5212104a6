import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Inbox } from '../../src/delivery/inbox.js';

/** Whether `promise` is still pending once every queued callback has run. */
async function isPending(promise: Promise<unknown>): Promise<boolean> {
  let settled = false;
  promise.then(
    () => {
      settled = true;
    },
    () => {
      settled = true;
    },
  );
  await new Promise<void>((resolve) => setImmediate(resolve));
  return !settled;
}

describe('Inbox', () => {
  test('buffers items in FIFO order', async () => {
    const inbox = new Inbox<number>(10);
    for (const n of [1, 2, 3]) assert.equal(inbox.push(n), true);
    assert.equal(inbox.length, 3);
    assert.deepEqual(await inbox.next(), { value: 1, done: false });
    assert.deepEqual(await inbox.next(), { value: 2, done: false });
    assert.deepEqual(await inbox.next(), { value: 3, done: false });
    assert.equal(inbox.length, 0);
  });

  test('is bounded: a full inbox drops the oldest item and counts it', async () => {
    const inbox = new Inbox<number>(3);
    assert.equal(inbox.push(1), true);
    assert.equal(inbox.push(2), true);
    assert.equal(inbox.push(3), true);
    assert.equal(inbox.push(4), false);
    assert.equal(inbox.push(5), false);
    assert.equal(inbox.length, 3);
    assert.equal(inbox.dropped, 2);
    inbox.end();
    const got: number[] = [];
    for await (const n of inbox) got.push(n);
    assert.deepEqual(got, [3, 4, 5]);
  });

  test('stays bounded and in order over many items (compaction)', async () => {
    const inbox = new Inbox<number>(100);
    const got: number[] = [];
    for (let i = 0; i < 5000; i++) {
      inbox.push(i);
      if (i % 3 === 0) got.push((await inbox.next()).value as number);
      assert.ok(inbox.length <= 100);
    }
    while (inbox.length > 0) got.push((await inbox.next()).value as number);
    for (let i = 1; i < got.length; i++) assert.ok(got[i]! > got[i - 1]!, 'strictly increasing');
    assert.equal(got.length + inbox.dropped, 5000);
    assert.equal(got.at(-1), 4999);
  });

  test('a waiting next() is resolved by push', async () => {
    const inbox = new Inbox<string>(10);
    const pending = inbox.next();
    assert.equal(await isPending(pending), true);
    assert.equal(inbox.push('hello'), true);
    assert.deepEqual(await pending, { value: 'hello', done: false });
    assert.equal(inbox.length, 0, 'handed over, not buffered');
  });

  test('several waiting next() calls are resolved in order', async () => {
    const inbox = new Inbox<string>(10);
    const first = inbox.next();
    const second = inbox.next();
    inbox.push('a');
    inbox.push('b');
    assert.deepEqual(await first, { value: 'a', done: false });
    assert.deepEqual(await second, { value: 'b', done: false });
  });

  test('end() lets buffered items be read, then reports done', async () => {
    let ends = 0;
    const inbox = new Inbox<number>(10, () => ends++);
    inbox.push(1);
    inbox.push(2);
    inbox.end();
    inbox.end();
    assert.equal(ends, 1, 'onEnd runs once');
    assert.deepEqual(await inbox.next(), { value: 1, done: false });
    assert.deepEqual(await inbox.next(), { value: 2, done: false });
    assert.deepEqual(await inbox.next(), { value: undefined, done: true });
    assert.deepEqual(await inbox.next(), { value: undefined, done: true });
  });

  test('end() resolves a waiting next() with done', async () => {
    const inbox = new Inbox<number>(10);
    const pending = inbox.next();
    inbox.end();
    assert.deepEqual(await pending, { value: undefined, done: true });
  });

  test('end() resolves every waiting next() with done', async () => {
    const inbox = new Inbox<number>(10);
    const waiting = [inbox.next(), inbox.next(), inbox.next()];
    inbox.end();
    for (const p of waiting) assert.deepEqual(await p, { value: undefined, done: true });
  });

  test('push after end() is ignored', async () => {
    const inbox = new Inbox<number>(10);
    inbox.end();
    inbox.push(1);
    assert.equal(inbox.length, 0);
    assert.deepEqual(await inbox.next(), { value: undefined, done: true });
  });

  test('return() discards the buffer, ends, and calls onEnd once', async () => {
    let ends = 0;
    const inbox = new Inbox<number>(10, () => ends++);
    inbox.push(1);
    inbox.push(2);
    assert.deepEqual(await inbox.return(), { value: undefined, done: true });
    assert.equal(ends, 1);
    assert.equal(inbox.length, 0);
    assert.deepEqual(await inbox.next(), { value: undefined, done: true });
    await inbox.return();
    inbox.end();
    assert.equal(ends, 1);
  });

  test('for-await receives items pushed while it waits, and break calls return()', async () => {
    let ends = 0;
    const inbox = new Inbox<number>(10, () => ends++);
    const got: number[] = [];
    const consumer = (async () => {
      for await (const n of inbox) {
        got.push(n);
        if (n === 3) break;
      }
    })();
    for (const n of [1, 2, 3, 4]) {
      await new Promise<void>((resolve) => setImmediate(resolve));
      inbox.push(n);
    }
    await consumer;
    assert.deepEqual(got, [1, 2, 3]);
    assert.equal(ends, 1, 'leaving the loop ended the inbox');
    assert.deepEqual(await inbox.next(), { value: undefined, done: true });
  });

  test('for-await ends when end() is called', async () => {
    const inbox = new Inbox<number>(10);
    const got: number[] = [];
    const consumer = (async () => {
      for await (const n of inbox) got.push(n);
    })();
    inbox.push(1);
    await new Promise<void>((resolve) => setImmediate(resolve));
    inbox.push(2);
    inbox.end();
    await consumer;
    assert.deepEqual(got, [1, 2]);
  });

  test('is its own async iterator', () => {
    const inbox = new Inbox<number>(1);
    assert.equal(inbox[Symbol.asyncIterator](), inbox);
  });
});
