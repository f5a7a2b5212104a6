import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { SeenSet } from '../../src/delivery/seen-set.js';

describe('SeenSet', () => {
  test('add reports new ids once, duplicates after', () => {
    const seen = new SeenSet(10, 1000);
    assert.equal(seen.add('a', 0), true);
    assert.equal(seen.add('b', 0), true);
    assert.equal(seen.add('a', 5), false);
    assert.equal(seen.add('b', 999), false);
    assert.equal(seen.size, 2);
  });

  test('has is true within the window and false after it', () => {
    const seen = new SeenSet(10, 1000);
    assert.equal(seen.has('a', 0), false);
    seen.add('a', 100);
    assert.equal(seen.has('a', 100), true);
    assert.equal(seen.has('a', 1099), true);
    assert.equal(seen.has('a', 1100), false);
    assert.equal(seen.has('b', 100), false);
  });

  test('an id is new again once its window has passed, and expired ids are forgotten', () => {
    const seen = new SeenSet(10, 1000);
    seen.add('a', 0);
    seen.add('b', 500);
    assert.equal(seen.add('a', 999), false);
    assert.equal(seen.add('a', 1000), true, 'a expired at 1000');
    assert.equal(seen.add('b', 1200), false, 'b is still within its window');
    seen.add('c', 5000);
    assert.equal(seen.size, 1, 'a and b expired');
  });

  test('a duplicate does not extend the window', () => {
    const seen = new SeenSet(10, 1000);
    seen.add('a', 0);
    assert.equal(seen.add('a', 900), false);
    assert.equal(seen.has('a', 1000), false);
  });

  test('capacity bounds memory: the oldest ids are forgotten first', () => {
    const seen = new SeenSet(3, 1_000_000);
    for (const [i, id] of ['a', 'b', 'c', 'd', 'e'].entries()) assert.equal(seen.add(id, i), true);
    assert.equal(seen.size, 3);
    assert.equal(seen.has('a', 10), false);
    assert.equal(seen.has('b', 10), false);
    for (const id of ['c', 'd', 'e']) assert.equal(seen.has(id, 10), true, id);
    assert.equal(seen.add('a', 10), true, 'a was forgotten, so it is new');
    assert.equal(seen.size, 3);
  });

  test('size never exceeds capacity under sustained traffic', () => {
    const seen = new SeenSet(100, 50);
    for (let i = 0; i < 10_000; i++) {
      seen.add(`m${i}`, i);
      assert.ok(seen.size <= 100);
    }
    // Only the ids of the last 50 ms are remembered.
    assert.equal(seen.size, 50);
  });
});
