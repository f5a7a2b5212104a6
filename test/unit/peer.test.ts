import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { InvalidAddressError, P2PError } from '../../src/errors.js';
import {
  addressId,
  describePeer,
  formatHostPort,
  isUnspecifiedAddress,
  isValidHost,
  isValidPort,
  normalizeRemoteAddress,
  type PeerAddressInput,
  parseAddress,
  peerJson,
  peerOf,
} from '../../src/peer.js';

function assertInvalid(input: unknown): void {
  assert.throws(
    () => parseAddress(input as PeerAddressInput),
    (err: unknown) => {
      assert.ok(
        err instanceof InvalidAddressError,
        `expected InvalidAddressError for ${JSON.stringify(input)}`,
      );
      assert.ok(err instanceof P2PError);
      assert.equal(err.code, 'ERR_INVALID_ADDRESS');
      assert.ok(!err.message.includes('\n'), 'the message is one line');
      return true;
    },
    `parseAddress(${JSON.stringify(input)}) should throw`,
  );
}

describe('parseAddress accepts', () => {
  const cases: [PeerAddressInput, { host: string; port: number; scheme?: 'http' | 'https' }][] = [
    ['127.0.0.1:5000', { host: '127.0.0.1', port: 5000 }],
    ['localhost:1', { host: 'localhost', port: 1 }],
    ['example.com:65535', { host: 'example.com', port: 65535 }],
    ['my-host.local.:8080', { host: 'my-host.local.', port: 8080 }],
    ['  127.0.0.1:5000  ', { host: '127.0.0.1', port: 5000 }],
    ['[::1]:6001', { host: '::1', port: 6001 }],
    ['[fe80::1:2]:7000', { host: 'fe80::1:2', port: 7000 }],
    ['http://127.0.0.1:5000', { host: '127.0.0.1', port: 5000, scheme: 'http' }],
    ['https://example.com:443/', { host: 'example.com', port: 443, scheme: 'https' }],
    ['HTTP://h:80', { host: 'h', port: 80, scheme: 'http' }],
    ['http://[::1]:5000/', { host: '::1', port: 5000, scheme: 'http' }],
    [
      { address: '127.0.0.1', port: 6001 },
      { host: '127.0.0.1', port: 6001 },
    ],
    [
      { address: '::1', port: 6001 },
      { host: '::1', port: 6001 },
    ],
    [
      { address: '0.0.0.0', port: 7777 },
      { host: '0.0.0.0', port: 7777 },
    ],
  ];
  for (const [input, expected] of cases) {
    test(JSON.stringify(input), () => {
      assert.deepEqual(parseAddress(input), expected);
    });
  }

  test('a Peer object (extra fields are ignored)', () => {
    const peer = { id: 'abc', address: '10.0.0.2', port: 9000, name: 'ada' };
    assert.deepEqual(parseAddress(peer), { host: '10.0.0.2', port: 9000 });
  });
});

describe('parseAddress rejects with ERR_INVALID_ADDRESS', () => {
  const bad: unknown[] = [
    '',
    '   ',
    '127.0.0.1',
    'localhost',
    '127.0.0.1:',
    ':5000',
    '127.0.0.1:0',
    '127.0.0.1:65536',
    '127.0.0.1:99999',
    '127.0.0.1:123456',
    '127.0.0.1:abc',
    '127.0.0.1:-1',
    '127.0.0.1:+80',
    '127.0.0.1:5e3',
    '127.0.0.1:80.5',
    'ftp://127.0.0.1:21',
    'ws://127.0.0.1:80',
    'http://127.0.0.1:5000/path',
    'http://127.0.0.1:5000/a/b',
    'http://127.0.0.1:5000?x=1',
    'http://127.0.0.1:5000#frag',
    'http://',
    'bad host:80',
    'a b:80',
    '127.0.0.1 :80',
    'host_name:80',
    '-host:80',
    '::1:5000',
    '::1',
    'fe80::1:80',
    '[::1]',
    '[::1]5000',
    '[::1:5000',
    '[127.0.0.1]:5000',
    '[]:5000',
    'user@host:80',
    `${'a'.repeat(64)}.com:80`,
    { address: '', port: 5000 },
    { address: 'bad host', port: 5000 },
    { address: '127.0.0.1', port: 0 },
    { address: '127.0.0.1', port: 65536 },
    { address: '127.0.0.1', port: 1.5 },
    { address: '127.0.0.1', port: '5000' },
    { address: 5, port: 5000 },
    { port: 5000 },
    5000,
    null,
    undefined,
  ];
  for (const input of bad) {
    test(String(JSON.stringify(input)), () => assertInvalid(input));
  }
});

describe('host and port validation', () => {
  test('isValidPort', () => {
    for (const p of [1, 80, 65535]) assert.equal(isValidPort(p), true, String(p));
    for (const p of [0, -1, 65536, 1.5, Number.NaN, '80', null])
      assert.equal(isValidPort(p), false, String(p));
  });

  test('isValidHost', () => {
    for (const h of ['127.0.0.1', '::1', 'localhost', 'a.b-c.d', 'x']) assert.equal(isValidHost(h), true, h);
    for (const h of ['', 'a b', 'a_b', '-a', 'a-', '[::1]', 'a..b', 'x'.repeat(254)]) {
      assert.equal(isValidHost(h), false, h);
    }
  });
});

describe('formatting', () => {
  test('formatHostPort brackets IPv6 only', () => {
    assert.equal(formatHostPort('127.0.0.1', 5000), '127.0.0.1:5000');
    assert.equal(formatHostPort('localhost', 1), 'localhost:1');
    assert.equal(formatHostPort('::1', 6001), '[::1]:6001');
    assert.equal(formatHostPort('fe80::1', 80), '[fe80::1]:80');
  });

  test('formatHostPort output parses back to the same host and port', () => {
    for (const [host, port] of [
      ['127.0.0.1', 5000],
      ['::1', 6001],
      ['2001:db8::42', 65535],
      ['example.org', 1],
    ] as const) {
      assert.deepEqual(parseAddress(formatHostPort(host, port)), { host, port });
    }
  });

  test('addressId is the gop2p id "address:port"', () => {
    assert.equal(addressId('127.0.0.1', 6001), '127.0.0.1:6001');
    assert.equal(addressId('::1', 6001), '[::1]:6001');
  });

  test('describePeer appends the name when there is one', () => {
    assert.equal(describePeer({ address: '127.0.0.1', port: 5 }), '127.0.0.1:5');
    assert.equal(describePeer({ address: '127.0.0.1', port: 5, name: 'ada' }), '127.0.0.1:5 (ada)');
    assert.equal(describePeer({ address: '::1', port: 5, name: '' }), '[::1]:5');
  });
});

describe('special addresses', () => {
  test('isUnspecifiedAddress', () => {
    for (const a of ['0.0.0.0', '::', '::0', '0:0:0:0:0:0:0:0'])
      assert.equal(isUnspecifiedAddress(a), true, a);
    for (const a of ['127.0.0.1', '::1', '0.0.0.1', 'localhost', '', '10.0.0.0']) {
      assert.equal(isUnspecifiedAddress(a), false, a);
    }
  });

  test('normalizeRemoteAddress strips the IPv4-mapped prefix only', () => {
    assert.equal(normalizeRemoteAddress('::ffff:127.0.0.1'), '127.0.0.1');
    assert.equal(normalizeRemoteAddress('::ffff:10.1.2.3'), '10.1.2.3');
    assert.equal(normalizeRemoteAddress('127.0.0.1'), '127.0.0.1');
    assert.equal(normalizeRemoteAddress('::1'), '::1');
    assert.equal(normalizeRemoteAddress('::ffff:abcd'), '::ffff:abcd');
    assert.equal(normalizeRemoteAddress(undefined), '');
  });
});

describe('peerJson', () => {
  test('plain JSON: copies of tags and topics, no key for what the peer lacks', () => {
    const p = peerOf('id1', '127.0.0.1', 5001, 'ada', { tags: { role: 'db' }, topics: ['ops'] });
    const j = peerJson(p);
    assert.deepEqual(j, {
      id: 'id1',
      address: '127.0.0.1',
      port: 5001,
      name: 'ada',
      tags: { role: 'db' },
      topics: ['ops'],
    });
    j.tags!.role = 'x';
    assert.equal(p.tags?.role, 'db', 'a copy');
    assert.deepEqual(Object.keys(peerJson(peerOf('id2', 'h', 1))), ['id', 'address', 'port']);
  });
});
