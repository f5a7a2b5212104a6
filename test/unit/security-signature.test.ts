/**
 * Envelope signatures: sealing signs the exact body whatever the type, the key travels in
 * `from.key` and must hash to `from.id`, and any change to the body breaks the signature.
 */

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { generateIdentity, identityFromSeed } from '../../src/identity.js';
import { decodeEnvelope } from '../../src/protocol/codec.js';
import { sealBatch, sealEnvelope } from '../../src/protocol/envelope.js';
import { MessageType } from '../../src/protocol/schema.js';
import { checkGossip, signGossip } from '../../src/security/gossip-signature.js';
import {
  decodePublicKey,
  identitySigner,
  KeyCache,
  publicKeyObject,
  SIGNATURE_HEADER,
  verifyBody,
} from '../../src/security/signature.js';

const alice = identityFromSeed(new Uint8Array(32).fill(1));
const mallory = identityFromSeed(new Uint8Array(32).fill(2));
const from = { address: '127.0.0.1', port: 5000, id: alice.id };

function keyOf(identity: typeof alice): string {
  return Buffer.from(identity.publicKey).toString('base64url');
}

describe('sealing with a signer', () => {
  test('puts the key in from.key and a signature of the exact body in the header', () => {
    const sealed = sealEnvelope(
      { type: MessageType.Broadcast, from, id: 'm1', ts: 1, data: new Uint8Array([1, 2, 3]) },
      identitySigner(alice),
    );
    const decoded = decodeEnvelope(sealed.body);
    assert.ok(decoded.ok);
    assert.equal(decoded.value.from.key, keyOf(alice));
    const sig = sealed.headers?.[SIGNATURE_HEADER];
    assert.ok(sig !== undefined && sig.length === 86);
    assert.equal(verifyBody(sealed.body, sig, alice.publicKeyObject), true);
    assert.equal(verifyBody(sealed.body, sig, mallory.publicKeyObject), false, 'another key');
  });

  test('every type is signed, batches included', () => {
    const signer = identitySigner(alice);
    for (const type of Object.values(MessageType)) {
      const sealed =
        type === MessageType.Batch
          ? sealBatch(
              { from, id: 'b', ts: 1, stream: 's', seq: 1 },
              ['{"type":2,"id":"x","ts":1,"data":""}'],
              signer,
            )
          : sealEnvelope({ type, from, id: `t${type}`, ts: 1 }, signer);
      const sig = sealed.headers?.[SIGNATURE_HEADER];
      assert.ok(sig !== undefined, `type ${type} has a signature`);
      assert.equal(verifyBody(sealed.body, sig, alice.publicKeyObject), true, `type ${type}`);
      const decoded = decodeEnvelope(sealed.body);
      assert.ok(decoded.ok, `type ${type} decodes`);
      assert.equal(decoded.value.from.key, keyOf(alice));
    }
  });

  test('without a signer, nothing is added', () => {
    const sealed = sealEnvelope({ type: MessageType.Broadcast, from, id: 'm1', ts: 1 });
    assert.equal(sealed.headers, undefined);
    const decoded = decodeEnvelope(sealed.body);
    assert.ok(decoded.ok);
    assert.equal(decoded.value.from.key, undefined);
  });

  test('changing any byte of the body breaks the signature', () => {
    const sealed = sealEnvelope(
      { type: MessageType.Direct, from, id: 'm1', ts: 1, data: new Uint8Array([7]), to: [from] },
      identitySigner(alice),
    );
    const sig = sealed.headers![SIGNATURE_HEADER]!;
    for (let i = 0; i < sealed.body.length; i++) {
      const copy = Buffer.from(sealed.body);
      copy[i] = copy[i]! ^ 0x01;
      assert.equal(verifyBody(copy, sig, alice.publicKeyObject), false, `byte ${i}`);
    }
  });

  test('a malformed signature is refused without throwing', () => {
    const body = Buffer.from('{}');
    for (const sig of ['', 'x', '!'.repeat(86), 'A'.repeat(86), 'A'.repeat(200)]) {
      assert.equal(verifyBody(body, sig, alice.publicKeyObject), false, JSON.stringify(sig));
    }
  });
});

describe('the key cache', () => {
  test('returns the key when its fingerprint is the id, and refuses another id', () => {
    const cache = new KeyCache(4);
    const key = cache.resolve(alice.id, keyOf(alice));
    assert.ok(typeof key !== 'string');
    assert.equal(cache.resolve(mallory.id, keyOf(alice)), 'key_mismatch', 'cached key, wrong id');
    assert.equal(cache.resolve(alice.id, keyOf(mallory)), 'key_mismatch', 'a new key, wrong id');
    assert.equal(cache.resolve(alice.id, 'not a key'), 'bad_key');
    assert.equal(cache.resolve(alice.id, 'A'.repeat(42)), 'bad_key');
  });

  test('stays within its capacity', () => {
    const cache = new KeyCache(3);
    for (let i = 0; i < 10; i++) {
      const id = generateIdentity();
      assert.ok(typeof cache.resolve(id.id, keyOf(id)) !== 'string');
    }
    assert.equal(cache.size, 3);
  });

  test('decodes only 32-byte base64url keys', () => {
    assert.equal(decodePublicKey(keyOf(alice))?.length, 32);
    assert.equal(decodePublicKey(`${keyOf(alice)}=`), undefined);
    assert.equal(decodePublicKey('+'.repeat(43)), undefined);
    const key = publicKeyObject(alice.publicKey);
    assert.equal(key.asymmetricKeyType, 'ed25519');
  });
});

describe('relayed messages', () => {
  const fields = { type: 2, id: 'g1', ts: 1_000_000, data: 'aGk=' };
  const origin = { address: '127.0.0.1', port: 5000, id: alice.id, key: keyOf(alice) };

  test("carry their origin's signature, which a relay cannot forge or alter", () => {
    const cache = new KeyCache(8);
    const sig = signGossip(fields, alice.privateKey);
    const now = fields.ts;
    assert.equal(checkGossip(cache, origin, fields, sig, now, 1000), undefined);
    assert.equal(checkGossip(cache, origin, { ...fields, data: 'aG8=' }, sig, now, 1000), 'bad_signature');
    assert.equal(checkGossip(cache, origin, { ...fields, id: 'g2' }, sig, now, 1000), 'bad_signature');
    assert.equal(checkGossip(cache, origin, { ...fields, type: 3 }, sig, now, 1000), 'bad_signature');
    const forged = signGossip(fields, mallory.privateKey);
    assert.equal(checkGossip(cache, origin, fields, forged, now, 1000), 'bad_signature');
    assert.equal(
      checkGossip(cache, { ...origin, key: keyOf(mallory) }, fields, forged, now, 1000),
      'bad_key',
      "mallory's key does not hash to alice's id",
    );
    assert.equal(checkGossip(cache, origin, fields, undefined, now, 1000), 'unsigned');
    assert.equal(checkGossip(cache, { ...origin, key: undefined }, fields, sig, now, 1000), 'unsigned');
    assert.equal(checkGossip(cache, origin, fields, sig, now + 1001, 1000), 'stale');
  });

  test("a publish's topic and causal dependencies are covered too", () => {
    const cache = new KeyCache(8);
    const publish = { ...fields, topic: 'ops', deps: ['a1', 'b2'] };
    const sig = signGossip(publish, alice.privateKey);
    const now = fields.ts;
    assert.equal(checkGossip(cache, origin, publish, sig, now, 1000), undefined);
    assert.equal(checkGossip(cache, origin, { ...publish, deps: ['a1'] }, sig, now, 1000), 'bad_signature');
    assert.equal(
      checkGossip(cache, origin, { ...publish, deps: undefined }, sig, now, 1000),
      'bad_signature',
    );
    assert.equal(checkGossip(cache, origin, { ...publish, topic: 'dev' }, sig, now, 1000), 'bad_signature');
    // Without dependencies, the bytes signed are those of before (older tsp2p nodes check them).
    const plain = { ...fields, topic: 'ops' };
    assert.equal(
      checkGossip(cache, origin, { ...plain, deps: [] }, signGossip(plain, alice.privateKey), now, 1000),
      undefined,
    );
  });
});
