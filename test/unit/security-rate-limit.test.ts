/**
 * The per-source rate limit: token buckets on a fake clock, loopback exempt by default, IPv6
 * sources grouped by /64, and a bounded number of sources.
 */

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { RateLimiter, sourceKey } from '../../src/transport/rate-limit.js';

function limiter(options: { limitLoopback?: boolean; maxSources?: number } = {}) {
  let now = 0;
  const l = new RateLimiter({
    ratePerSecond: 10,
    burst: 5,
    limitLoopback: options.limitLoopback ?? false,
    ...(options.maxSources !== undefined ? { maxSources: options.maxSources } : {}),
    now: () => now,
  });
  return { l, advance: (ms: number) => (now += ms) };
}

test('a source gets its burst, then one request per 1/rate, with the wait to the next token', () => {
  const { l, advance } = limiter();
  for (let i = 0; i < 5; i++) assert.equal(l.take('10.0.0.1'), 0, `burst ${i}`);
  assert.equal(l.take('10.0.0.1'), 100, 'empty: a token in 100 ms');
  assert.equal(l.take('10.0.0.2'), 0, 'another source has its own bucket');
  advance(50);
  assert.equal(l.take('10.0.0.1'), 50);
  advance(50);
  assert.equal(l.take('10.0.0.1'), 0);
  advance(10_000);
  for (let i = 0; i < 5; i++) assert.equal(l.take('10.0.0.1'), 0, 'refilled up to the burst only');
  assert.ok(l.take('10.0.0.1') > 0);
});

test('loopback is exempt unless asked for', () => {
  const { l } = limiter();
  for (let i = 0; i < 100; i++) assert.equal(l.take('127.0.0.1'), 0);
  for (let i = 0; i < 100; i++) assert.equal(l.take('::1'), 0);
  assert.equal(l.sources, 0);
  const strict = limiter({ limitLoopback: true }).l;
  for (let i = 0; i < 5; i++) assert.equal(strict.take('127.0.0.1'), 0);
  assert.ok(strict.take('127.0.0.1') > 0);
});

test('IPv6 sources share a bucket per /64', () => {
  assert.equal(sourceKey('2001:db8:1:2:aaaa::1'), '2001:db8:1:2::/64');
  assert.equal(sourceKey('2001:db8:1:2::ffff'), '2001:db8:1:2::/64');
  assert.equal(sourceKey('2001:0db8:0001:0002:0:0:0:1'), '2001:db8:1:2::/64');
  assert.equal(sourceKey('::ffff:10.1.2.3'), '10.1.2.3');
  assert.equal(sourceKey('fe80::1'), 'fe80:0:0:0::/64');
  assert.equal(sourceKey('192.0.2.7'), '192.0.2.7');
  const { l } = limiter();
  for (let i = 0; i < 5; i++) assert.equal(l.take(`2001:db8:1:2::${i + 1}`), 0);
  assert.ok(l.take('2001:db8:1:2::99') > 0, 'another address of the same /64');
  assert.equal(l.take('2001:db8:1:3::1'), 0, 'another /64');
});

test('the number of sources tracked is bounded', () => {
  const { l } = limiter({ maxSources: 100 });
  for (let i = 0; i < 1000; i++) l.take(`10.0.${i >> 8}.${i & 255}`);
  assert.equal(l.sources, 100);
});
