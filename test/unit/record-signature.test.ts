/**
 * Self-record signatures (src/security/record-signature.ts): the canonical encoding PROTOCOL.md
 * defines, byte for byte, and signatures that hold only for the member's key and the exact
 * fields.
 */

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { identityFromSeed } from '../../src/identity.js';
import { recordAuthority, recordBytes } from '../../src/security/record-signature.js';
import { KeyCache } from '../../src/security/signature.js';

const alice = identityFromSeed(new Uint8Array(32).fill(7));
const mallory = identityFromSeed(new Uint8Array(32).fill(8));

describe('self-records', () => {
  test('the canonical encoding: sorted keys, empty fields left out, tag keys sorted by code unit', () => {
    assert.equal(
      recordBytes({ id: 'ab', address: '127.0.0.1', port: 5001, name: 'ada', inc: 7 }).toString(),
      'tsp2p-rec/1\n{"address":"127.0.0.1","id":"ab","inc":7,"name":"ada","port":5001}',
    );
    assert.equal(
      recordBytes({ id: 'ab', address: 'h', port: 1, name: '', tags: {}, topics: [], inc: 0 }).toString(),
      'tsp2p-rec/1\n{"address":"h","id":"ab","inc":0,"port":1}',
    );
    // Integer-like keys too are sorted as strings ("10" < "9" < "b"), not as a JS object orders them.
    assert.equal(
      recordBytes({
        id: 'ab',
        address: 'h',
        port: 1,
        tags: { b: '1', 9: 'x', 10: 'y' },
        topics: ['z', 'a'],
        inc: 2,
      }).toString(),
      'tsp2p-rec/1\n{"address":"h","id":"ab","inc":2,"port":1,"tags":{"10":"y","9":"x","b":"1"},"topics":["z","a"]}',
    );
    assert.equal(
      recordBytes({ id: 'ab', address: 'h', port: 1, name: 'é"\n', inc: 1 }).toString(),
      'tsp2p-rec/1\n{"address":"h","id":"ab","inc":1,"name":"é\\"\\n","port":1}',
    );
  });

  test('a signature holds for its member’s key and the exact fields only', () => {
    const keys = new KeyCache(8);
    const a = recordAuthority(alice, keys);
    const m = recordAuthority(mallory, keys);
    const record = { id: alice.id, address: '127.0.0.1', port: 5001, name: 'alice', inc: 3 };
    const sig = a.sign(record);
    assert.equal(sig.length, 86);
    assert.ok(a.verify(record, a.key, sig));
    assert.ok(m.verify(record, a.key, sig), 'anyone can check it');
    assert.ok(a.verify(record, a.key, sig), 'and again (from the cache)');
    for (const changed of [
      { ...record, port: 5002 },
      { ...record, address: '127.0.0.2' },
      { ...record, name: 'mallory' },
      { ...record, inc: 4 },
      { ...record, tags: { room: 'x' } },
      { ...record, topics: ['x'] },
    ]) {
      assert.equal(a.verify(changed, a.key, sig), false, JSON.stringify(changed));
    }
    // Mallory's key does not hash to alice's id; mallory's signature is not alice's.
    assert.equal(a.verify(record, m.key, m.sign(record)), false);
    assert.equal(a.verify(record, a.key, m.sign(record)), false);
  });
});
