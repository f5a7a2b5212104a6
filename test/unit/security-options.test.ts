/**
 * The security options of a node: `secret`, `tls`, `limits` and `maxClockSkewMs`, their
 * validation and their defaults.
 */

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DEFAULT_LIMITS, DEFAULT_MAX_CLOCK_SKEW_MS, Node } from '../../src/index.js';
import { resolveOptions } from '../../src/options.js';

test('defaults: no secret, no TLS, the documented limits and a 5-minute skew window', () => {
  const o = resolveOptions({});
  assert.deepEqual(o.secret, []);
  assert.equal(o.tls, undefined);
  assert.deepEqual(o.limits, DEFAULT_LIMITS);
  assert.equal(o.maxClockSkewMs, DEFAULT_MAX_CLOCK_SKEW_MS);
  assert.equal(DEFAULT_MAX_CLOCK_SKEW_MS, 300_000);
  assert.deepEqual(DEFAULT_LIMITS, {
    maxConnections: 4096,
    ratePerSecond: 2000,
    rateBurst: 4000,
    rateLimitLoopback: false,
    headersTimeoutMs: 10_000,
    requestTimeoutMs: 30_000,
  });
  assert.deepEqual(resolveOptions({ limits: { rateBurst: 5 } }).limits, { ...DEFAULT_LIMITS, rateBurst: 5 });
});

test('a secret is a string or a list of strings of 16 characters or more', () => {
  assert.deepEqual(resolveOptions({ secret: 'sixteen chars ok' }).secret, ['sixteen chars ok']);
  assert.deepEqual(resolveOptions({ secret: ['0123456789abcdef', 'fedcba9876543210'] }).secret, [
    '0123456789abcdef',
    'fedcba9876543210',
  ]);
  for (const secret of ['short', ['0123456789abcdef', 'x'], [''], 42, [1]]) {
    assert.throws(
      () => new Node({ secret: secret as string }),
      { code: 'ERR_INVALID_OPTIONS' },
      String(secret),
    );
  }
  const node = new Node({ secret: '0123456789abcdef' });
  assert.throws(() => node.setSecret('short'), { code: 'ERR_INVALID_OPTIONS' });
  node.setSecret([]);
});

test('bad tls and limits options are refused when the node is made', () => {
  const bad: unknown[] = [
    { tls: {} },
    { tls: { key: 'x' } },
    { tls: { key: '/no/such/key.pem', cert: '/no/such/cert.pem' } },
    { tls: { key: '-----BEGIN', cert: '-----BEGIN', extra: 1 } },
    { limits: { maxConnections: 0 } },
    { limits: { ratePerSecond: -1 } },
    { limits: { rateBurst: 1.5 } },
    { limits: { unknown: 1 } },
    { maxClockSkewMs: 0 },
  ];
  for (const options of bad) {
    assert.throws(
      () => new Node(options as object),
      { code: 'ERR_INVALID_OPTIONS' },
      JSON.stringify(options),
    );
  }
});
