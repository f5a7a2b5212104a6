/**
 * Session MACs without a network: two `SessionKeys` agree on a key; a MAC is bound to its body,
 * its sender and its receiver (no third party, no reflection); a changed key is recognized; keys
 * are learned only from well-formed input and within a bound. Then the inbound guard: a MAC'd
 * envelope passes once, is counted, and is a duplicate the second time; an `xkey` is learned only
 * from a verified signature, so a forged one can never be used to MAC; the time window holds.
 */

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { type Identity, identityFromSeed } from '../../src/identity.js';
import { type EnvelopeSigner, sealEnvelope } from '../../src/protocol/envelope.js';
import { MessageType, type WirePeer } from '../../src/protocol/schema.js';
import { type Admission, InboundGuard } from '../../src/security/inbound-guard.js';
import { MAC_HEADER, NO_SESSION, SessionKeys } from '../../src/security/session-keys.js';
import { identitySigner, KeyCache, SIGNATURE_HEADER } from '../../src/security/signature.js';
import { type GuardRequest, guardRequest } from '../helpers/security-sign.js';

const alice = identityFromSeed(new Uint8Array(32).fill(11));
const bob = identityFromSeed(new Uint8Array(32).fill(12));
const carol = identityFromSeed(new Uint8Array(32).fill(13));
const mallory = identityFromSeed(new Uint8Array(32).fill(14));
const T0 = 1_800_000_000_000;
const SKEW = 60_000;
const BODY = Buffer.from('{"type":8,"msgs":[{"type":2,"data":"aGVsbG8="}]}');

/** A stand-in for the Ed25519 signer: recognizable, so a test sees which one was used. */
const FALLBACK: EnvelopeSigner = { key: 'the-ed25519-key', headers: () => ({ [SIGNATURE_HEADER]: 'sig' }) };

/** Two nodes' session keys, each having learned the other's public key. */
function pair(): { a: SessionKeys; b: SessionKeys } {
  const a = new SessionKeys(alice.id);
  const b = new SessionKeys(bob.id);
  a.learn(bob.id, b.publicKey);
  b.learn(alice.id, a.publicKey);
  return { a, b };
}

/** The `tsp2p-mac` header `from` puts on `body` for `to`. */
function macOf(from: SessionKeys, to: string, body: Uint8Array = BODY): string {
  const value = from.signerFor(to, FALLBACK).headers(body)[MAC_HEADER];
  assert.ok(value !== undefined, `a MAC header for ${to.slice(0, 8)}`);
  return value;
}

/** `value` with the character at `i` replaced by another valid base64url character. */
function flipChar(value: string, i: number): string {
  const c = value[i] === 'A' ? 'B' : 'A';
  return `${value.slice(0, i)}${c}${value.slice(i + 1)}`;
}

describe('session keys', () => {
  test('making keys never hangs the process, whenever the garbage collector runs', async () => {
    // A regression: a chat hung at its start, inside the JWK export of its new X25519 key.
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', fileURLToPath(new URL('../helpers/key-churn.ts', import.meta.url))],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      out += d;
    });
    const hung = setTimeout(() => child.kill('SIGKILL'), 60_000);
    const [code, signal] = (await new Promise((resolve) => child.on('exit', (c, s) => resolve([c, s])))) as [
      number | null,
      NodeJS.Signals | null,
    ];
    clearTimeout(hung);
    assert.equal(signal, null, 'the child hung making keys and was killed after 60 s');
    assert.equal(code, 0);
    assert.match(out, /^made [1-9]\d*, malformed 0$/m);
  });

  test('two nodes agree: a MAC made by one verifies at the other, both ways', () => {
    const { a, b } = pair();
    const signer = a.signerFor(bob.id, FALLBACK);
    assert.notEqual(signer, FALLBACK, 'a MAC signer once the key is held');
    assert.equal(signer.key, FALLBACK.key, 'from.key stays the Ed25519 key');
    const headers = signer.headers(BODY);
    assert.deepEqual(Object.keys(headers), [MAC_HEADER], 'a MAC and no signature');
    assert.match(headers[MAC_HEADER]!, /^[A-Za-z0-9_-]{16}\.[A-Za-z0-9_-]{43}$/);
    assert.equal(b.verify(alice.id, headers[MAC_HEADER]!, BODY), 'ok');
    assert.equal(a.verify(bob.id, macOf(b, alice.id), BODY), 'ok');
    // The same pair of keys names the same session on both ends.
    assert.equal(macOf(a, bob.id).slice(0, 16), macOf(b, alice.id).slice(0, 16));
  });

  test('before a key is learned, and after it is forgotten, the fallback signer is used', () => {
    const a = new SessionKeys(alice.id);
    const b = new SessionKeys(bob.id);
    assert.equal(a.signerFor(bob.id, FALLBACK), FALLBACK);
    a.learn(bob.id, b.publicKey);
    assert.ok(a.has(bob.id));
    assert.notEqual(a.signerFor(bob.id, FALLBACK), FALLBACK);
    a.forget(bob.id);
    assert.equal(a.has(bob.id), false);
    assert.equal(a.signerFor(bob.id, FALLBACK), FALLBACK);
  });

  test('a refused MAC makes the sender sign until accepted, and keeps the key that checks the peer', () => {
    // Alice learned Bob's key; Bob has not learned Alice's yet (she never signed to him).
    const a = new SessionKeys(alice.id);
    const b = new SessionKeys(bob.id);
    a.learn(bob.id, b.publicKey);
    assert.equal(b.verify(alice.id, macOf(a, bob.id), BODY), 'no_session');
    a.refused(bob.id);
    assert.equal(a.signerFor(bob.id, FALLBACK), FALLBACK, 'signs to Bob now');
    // Her signed request teaches Bob her key; Bob MACs to her, and she can still check it
    // (forgetting Bob's key here made the two alternate: each refused the other's next MAC).
    b.learn(alice.id, a.publicKey);
    assert.equal(a.verify(bob.id, macOf(b, alice.id), BODY), 'ok');
    // Bob took her signed request: MACs again, which Bob checks.
    a.accepted(bob.id);
    assert.equal(b.verify(alice.id, macOf(a, bob.id), BODY), 'ok');
    // A refusal from a peer whose key is not held changes nothing; forget() clears the mark.
    a.refused(carol.id);
    assert.equal(a.signerFor(carol.id, FALLBACK), FALLBACK);
    a.refused(bob.id);
    a.forget(bob.id);
    a.learn(bob.id, b.publicKey);
    assert.notEqual(a.signerFor(bob.id, FALLBACK), FALLBACK, 'a key learned again is used at once');
  });

  test('confirmedSignerFor MACs only once the peer is known to hold our key: it accepted a request, or MAC-ed to us', () => {
    const a = new SessionKeys(alice.id);
    const b = new SessionKeys(bob.id);
    a.learn(bob.id, b.publicKey);
    assert.equal(a.confirmedSignerFor(bob.id, FALLBACK), FALLBACK, 'Bob may not hold her key');
    // Bob accepted a (signed) request of hers: it carried her xkey.
    b.learn(alice.id, a.publicKey);
    a.accepted(bob.id);
    const mac = a.confirmedSignerFor(bob.id, FALLBACK);
    assert.notEqual(mac, FALLBACK);
    assert.equal(b.verify(alice.id, mac.headers(BODY)[MAC_HEADER]!, BODY), 'ok');
    // Refused (Bob restarted, say): signed again until accepted.
    a.refused(bob.id);
    assert.equal(a.confirmedSignerFor(bob.id, FALLBACK), FALLBACK);
    // A MAC from Bob that checks here shows he holds her current key.
    assert.notEqual(b.confirmedSignerFor(alice.id, FALLBACK), FALLBACK, "Bob checked Alice's MAC above");
    assert.equal(a.verify(bob.id, macOf(b, alice.id), BODY), 'ok');
    assert.notEqual(a.confirmedSignerFor(bob.id, FALLBACK), FALLBACK);
    // A bad MAC confirms nothing; forget() drops the confirmation with the key.
    assert.equal(b.verify(carol.id, flipChar(macOf(a, bob.id), 20), BODY), 'no_session');
    a.forget(bob.id);
    a.learn(bob.id, b.publicKey);
    assert.equal(a.confirmedSignerFor(bob.id, FALLBACK), FALLBACK);
    // Without the peer's key, a confirmation alone makes no MAC.
    a.accepted(carol.id);
    assert.equal(a.confirmedSignerFor(carol.id, FALLBACK), FALLBACK);
  });

  test('the same MAC presented as coming from a third node fails', () => {
    const { a, b } = pair();
    const mac = macOf(a, bob.id);
    // Carol has no session with Bob: nothing to check with.
    assert.equal(b.verify(carol.id, mac, BODY), 'no_session');
    // Carol has a session of her own: the MAC names another pair of keys.
    const c = new SessionKeys(carol.id);
    b.learn(carol.id, c.publicKey);
    assert.equal(b.verify(carol.id, mac, BODY), 'no_session');
    // Carol copied Alice's public key into her own (signed) envelope: same key pair, same kid,
    // but the MAC names its sender, so it is not Carol's.
    b.learn(carol.id, a.publicKey);
    assert.equal(b.verify(carol.id, mac, BODY), 'bad_mac');
    assert.equal(b.verify(alice.id, mac, BODY), 'ok', "still Alice's");
  });

  test('a MAC made for Bob and sent back to Alice (reflection) fails', () => {
    const { a } = pair();
    const mac = macOf(a, bob.id);
    // Alice holds the same key for Bob, but the MAC names Alice as the sender, Bob the receiver.
    assert.equal(a.verify(bob.id, mac, BODY), 'bad_mac');
  });

  test('one changed body byte, one changed tag character: bad_mac', () => {
    const { a, b } = pair();
    const mac = macOf(a, bob.id);
    for (let i = 0; i < BODY.length; i++) {
      const body = Buffer.from(BODY);
      body[i] = body[i]! ^ 0x01;
      assert.equal(b.verify(alice.id, mac, body), 'bad_mac', `byte ${i} flipped`);
    }
    assert.equal(b.verify(alice.id, mac, BODY.subarray(0, -1)), 'bad_mac', 'one byte short');
    assert.equal(b.verify(alice.id, mac, Buffer.concat([BODY, Buffer.from(' ')])), 'bad_mac');
    for (const i of [17, 30, mac.length - 2]) {
      assert.equal(b.verify(alice.id, flipChar(mac, i), BODY), 'bad_mac', `tag character ${i}`);
    }
    assert.equal(b.verify(alice.id, mac, BODY), 'ok', 'the genuine one still passes');
  });

  test('a malformed header is bad_mac, whoever it claims to come from', () => {
    const { a, b } = pair();
    const mac = macOf(a, bob.id);
    const [kid, tag] = mac.split('.') as [string, string];
    const malformed = [
      '',
      'x',
      kid,
      `${kid}.`,
      `.${tag}`,
      `${kid}${tag}`,
      `${kid}.${tag}=`,
      `${kid}.${tag.slice(1)}`,
      `${kid}.${tag}A`,
      `${kid}A.${tag}`,
      `${kid}.${tag.slice(0, -1)}+`,
      `${kid}.${tag.slice(0, -1)}/`,
      ` ${mac}`,
      `${mac} `,
      `${mac}.${tag}`,
      Buffer.from(mac).toString('base64'),
    ];
    for (const value of malformed) {
      assert.equal(b.verify(alice.id, value, BODY), 'bad_mac', JSON.stringify(value));
      assert.equal(b.verify(carol.id, value, BODY), 'bad_mac', `${JSON.stringify(value)} from carol`);
    }
  });

  test('an unknown sender is no_session', () => {
    const b = new SessionKeys(bob.id);
    const a = new SessionKeys(alice.id);
    a.learn(bob.id, b.publicKey);
    assert.equal(b.verify(alice.id, macOf(a, bob.id), BODY), 'no_session');
  });

  test("after a peer's key changes (it restarted), its MACs and ours are no_session until relearned", () => {
    const { a, b } = pair();
    // Alice restarts: same id, a new X25519 key. She learns Bob's key again from his next envelope.
    const a2 = new SessionKeys(alice.id);
    assert.notEqual(a2.publicKey, a.publicKey);
    a2.learn(bob.id, b.publicKey);
    const fromA2 = macOf(a2, bob.id);
    assert.equal(b.verify(alice.id, fromA2, BODY), 'no_session', 'Bob holds the old key: kid mismatch');
    // Bob, still on the old key, MACs to the new Alice: she cannot check it either.
    assert.equal(a2.verify(bob.id, macOf(b, alice.id), BODY), 'no_session');
    // Bob learns the new key (from a signed envelope): the old session is gone, the new one works.
    b.learn(alice.id, a2.publicKey);
    assert.equal(b.verify(alice.id, fromA2, BODY), 'ok');
    assert.equal(a2.verify(bob.id, macOf(b, alice.id), BODY), 'ok');
    assert.equal(b.verify(alice.id, macOf(a, bob.id), BODY), 'no_session', "the old Alice's MAC");
  });

  test("learn() ignores malformed keys and the node's own id", () => {
    const b = new SessionKeys(bob.id);
    const good = new SessionKeys(alice.id).publicKey;
    for (const bad of [
      '',
      'short',
      good.slice(1),
      `${good}A`,
      `${good.slice(0, -1)}=`,
      `${good.slice(1)}+`,
    ]) {
      b.learn(alice.id, bad);
      assert.equal(b.has(alice.id), false, JSON.stringify(bad));
    }
    b.learn(bob.id, good);
    assert.equal(b.has(bob.id), false, 'its own id');
    assert.equal(b.size, 0);
    assert.equal(b.signerFor(bob.id, FALLBACK), FALLBACK);
    b.learn(alice.id, good);
    assert.equal(b.size, 1);
  });

  test('a well-formed key that cannot make a session (a low-order point) is dropped on first use', () => {
    const b = new SessionKeys(bob.id);
    const zero = Buffer.alloc(32).toString('base64url');
    b.learn(alice.id, zero);
    assert.equal(b.signerFor(alice.id, FALLBACK), FALLBACK, 'no MAC with it');
    assert.equal(b.has(alice.id), false);
    b.learn(alice.id, zero);
    assert.equal(b.verify(alice.id, `${'A'.repeat(16)}.${'A'.repeat(43)}`, BODY), 'no_session');
    assert.equal(b.has(alice.id), false);
  });

  test('at capacity, the least recently learned peer is evicted first', () => {
    const keys = Array.from({ length: 4 }, (_, i) => new SessionKeys(`peer-${i}`));
    const b = new SessionKeys(bob.id, 2);
    b.learn('peer-0', keys[0]!.publicKey);
    b.learn('peer-1', keys[1]!.publicKey);
    b.learn('peer-0', keys[0]!.publicKey); // the same key again: a no-op, not a refresh
    b.learn('peer-2', keys[2]!.publicKey);
    assert.deepEqual(
      ['peer-0', 'peer-1', 'peer-2'].map((p) => b.has(p)),
      [false, true, true],
    );
    assert.equal(b.size, 2);
    // A changed key for a held peer evicts nobody, and counts as the newest.
    b.learn('peer-1', keys[3]!.publicKey);
    assert.equal(b.size, 2);
    assert.ok(b.has('peer-1') && b.has('peer-2'));
    b.learn('peer-3', keys[3]!.publicKey);
    assert.deepEqual(
      ['peer-1', 'peer-2', 'peer-3'].map((p) => b.has(p)),
      [true, false, true],
    );
    // The evicted peer's MACs cannot be checked any more.
    keys[2]!.learn(bob.id, b.publicKey);
    assert.equal(b.verify('peer-2', macOf(keys[2]!, bob.id), BODY), 'no_session');
  });
});

// ---- the inbound guard ------------------------------------------------------------------------

/** An envelope from `identity`'s node, sealed by `signer`, with `xkey` in its `from`. */
function envelope(
  signer: EnvelopeSigner,
  fields: {
    id?: string;
    ts?: number;
    xkey?: string;
    claimedId?: string;
    identity?: Identity;
    type?: MessageType;
  } = {},
): GuardRequest {
  const from: WirePeer = {
    address: '127.0.0.1',
    port: 5000,
    id: fields.claimedId ?? (fields.identity ?? alice).id,
  };
  if (fields.xkey !== undefined) from.xkey = fields.xkey;
  const sealed = sealEnvelope(
    {
      type: fields.type ?? MessageType.Broadcast,
      from,
      id: fields.id ?? 'm1',
      ts: fields.ts ?? T0,
      data: new Uint8Array([1, 2, 3]),
    },
    signer,
  );
  return guardRequest(sealed.body, { ...sealed.headers });
}

/** Bob's guard, with his session keys. */
function bobGuard(sessions: SessionKeys | undefined, now: () => number = () => T0): InboundGuard {
  return new InboundGuard({
    compat: false,
    maxClockSkewMs: SKEW,
    now,
    keyCache: new KeyCache(16),
    ...(sessions !== undefined ? { sessions } : {}),
  });
}

function admit(g: InboundGuard, r: GuardRequest): Admission {
  return g.admit(r.envelope, r.body, r.headers);
}

function refusal(a: Admission): { reason: string; message: string } {
  assert.equal(a.kind, 'refused', `expected a refusal, got ${a.kind}`);
  return a.kind === 'refused'
    ? { reason: a.refusal.reason, message: a.refusal.message }
    : { reason: '', message: '' };
}

/** Alice's session keys and Bob's, Bob's guard, and Alice introduced to Bob by a signed envelope. */
function introduced(now?: () => number) {
  const a = new SessionKeys(alice.id);
  const b = new SessionKeys(bob.id);
  a.learn(bob.id, b.publicKey);
  const g = bobGuard(b, now);
  const hello = envelope(identitySigner(alice), { id: 'hello', xkey: a.publicKey });
  assert.equal(admit(g, hello).kind, 'signed');
  assert.ok(b.has(alice.id), "Bob learned Alice's key from her signed envelope");
  const macSigner = a.signerFor(bob.id, identitySigner(alice));
  return { a, b, g, macSigner };
}

describe('the inbound guard with session keys', () => {
  test("a MAC'd envelope from a known session is admitted once and counted; again, a duplicate", () => {
    const { g, macSigner } = introduced();
    const r = envelope(macSigner, { id: 'mac-1' });
    assert.ok(r.headers[MAC_HEADER] !== undefined && r.headers[SIGNATURE_HEADER] === undefined);
    assert.equal(admit(g, r).kind, 'signed');
    assert.deepEqual([g.stats.verified, g.stats.macs], [1, 1], 'one signature (the hello), one MAC');
    assert.equal(admit(g, r).kind, 'duplicate');
    assert.equal(admit(g, r).kind, 'duplicate');
    assert.deepEqual([g.stats.macs, g.stats.duplicates], [1, 2], 'duplicates are not checked again');
    assert.equal(g.summary().macs, 1);
    // Another message in the same session passes too.
    assert.equal(admit(g, envelope(macSigner, { id: 'mac-2' })).kind, 'signed');
    assert.equal(g.stats.macs, 2);
  });

  test('MAC failures are 401: no_session ("no session …") and bad_mac', () => {
    const { b, g, macSigner } = introduced();
    // A tampered body under a genuine MAC.
    const good = envelope(macSigner, { id: 'mac-t' });
    const text = Buffer.from(good.body).toString().replace('"data":"AQID"', '"data":"AQIE"');
    assert.notEqual(text, Buffer.from(good.body).toString());
    const tampered = admit(g, guardRequest(text, good.headers));
    assert.equal(refusal(tampered).reason, 'bad_mac');
    assert.ok(tampered.kind === 'refused' && tampered.refusal.status === 401);
    assert.match(refusal(tampered).message, /^bad MAC: /);
    // A malformed header.
    assert.equal(refusal(admit(g, { ...good, headers: { [MAC_HEADER]: 'nonsense' } })).reason, 'bad_mac');
    // Carol, whom Bob never heard from.
    const c = new SessionKeys(carol.id);
    c.learn(bob.id, b.publicKey);
    const fromCarol = envelope(c.signerFor(bob.id, identitySigner(carol)), { id: 'c1', identity: carol });
    const unknown = refusal(admit(g, fromCarol));
    assert.equal(unknown.reason, 'no_session');
    assert.ok(unknown.message.startsWith(`${NO_SESSION}`), unknown.message);
    assert.ok(!unknown.message.includes('\n'));
    assert.deepEqual([g.stats.refused.bad_mac, g.stats.refused.no_session], [2, 1]);
    assert.equal(g.stats.macs, 0);
    // A refused MAC does not spend the id: the genuine bytes still pass.
    assert.equal(admit(g, good).kind, 'signed');
  });

  test("MAC'd membership requests (ping, ping-req, sync, gossip) pass; a tampered one is 401 bad_mac", () => {
    const { g, macSigner } = introduced();
    const types = [MessageType.Ping, MessageType.PingReq, MessageType.Sync, MessageType.Gossip];
    for (const type of types) {
      const good = envelope(macSigner, { id: `mac-${type}`, type });
      assert.equal(admit(g, good).kind, 'signed', `type ${type}`);
      const bad = envelope(macSigner, { id: `bad-${type}`, type });
      const text = Buffer.from(bad.body).toString().replace('"data":"AQID"', '"data":"AQIE"');
      const refused = admit(g, guardRequest(text, bad.headers));
      assert.ok(refused.kind === 'refused' && refused.refusal.status === 401, `type ${type}`);
      assert.equal(refusal(refused).reason, 'bad_mac');
      assert.match(refusal(refused).message, /^bad MAC: /);
    }
    assert.deepEqual([g.stats.macs, g.stats.refused.bad_mac], [4, 4]);
  });

  test('without session keys, a MAC is refused as no_session', () => {
    const { macSigner } = introduced();
    const g = bobGuard(undefined);
    assert.equal(refusal(admit(g, envelope(macSigner))).reason, 'no_session');
  });

  test('a forged xkey in an unsigned or badly signed envelope is never learned', () => {
    const b = new SessionKeys(bob.id);
    const g = bobGuard(b);
    // Mallory's session keys, in Alice's name; she knows Bob's public key (it is public).
    const m = new SessionKeys(alice.id);
    m.learn(bob.id, b.publicKey);
    const forgedXkey = m.publicKey;
    const aliceKey = identitySigner(alice).key;
    const macByMallory = (id: string): GuardRequest =>
      envelope(m.signerFor(bob.id, identitySigner(alice)), { id });

    const attempts: [string, GuardRequest, string][] = [
      [
        'no signature at all',
        (() => {
          const r = envelope(identitySigner(alice), { id: 'f1', xkey: forgedXkey });
          return { ...r, headers: {} };
        })(),
        'unsigned',
      ],
      [
        "signed by mallory's key, in alice's name",
        envelope(identitySigner(mallory), { id: 'f2', xkey: forgedXkey, claimedId: alice.id }),
        'bad_key',
      ],
      [
        "alice's key, mallory's signature",
        envelope({ key: aliceKey, headers: identitySigner(mallory).headers }, { id: 'f3', xkey: forgedXkey }),
        'bad_signature',
      ],
      [
        "alice's genuine signature, the xkey swapped in afterwards",
        (() => {
          const r = envelope(identitySigner(alice), { id: 'f4', xkey: new SessionKeys(alice.id).publicKey });
          const text = Buffer.from(r.body).toString();
          const swapped = text.replace(/"xkey":"[^"]+"/, `"xkey":"${forgedXkey}"`);
          assert.notEqual(swapped, text);
          return guardRequest(swapped, r.headers);
        })(),
        'bad_signature',
      ],
    ];
    for (const [how, r, reason] of attempts) {
      assert.equal(refusal(admit(g, r)).reason, reason, how);
      assert.equal(b.has(alice.id), false, `${how}: nothing learned`);
    }
    // Mallory's MAC in Alice's name is refused: Bob holds no session for Alice.
    assert.equal(refusal(admit(g, macByMallory('x1'))).reason, 'no_session');

    // Once Alice's genuine key is held, forgeries do not replace it either.
    const a = new SessionKeys(alice.id);
    a.learn(bob.id, b.publicKey);
    assert.equal(
      admit(g, envelope(identitySigner(alice), { id: 'hello', xkey: a.publicKey })).kind,
      'signed',
    );
    for (const [how, r, reason] of attempts) {
      assert.equal(refusal(admit(g, r)).reason, reason, `${how} (again)`);
    }
    assert.equal(refusal(admit(g, macByMallory('x2'))).reason, 'no_session', "mallory's kid is not held");
    const genuine = envelope(a.signerFor(bob.id, identitySigner(alice)), { id: 'a1' });
    assert.equal(admit(g, genuine).kind, 'signed', "Alice's own MAC still passes");
  });

  test("an xkey in a MAC'd envelope is not learned: only a signature vouches for it", () => {
    const { a, b, g, macSigner } = introduced();
    const other = new SessionKeys(alice.id);
    const r = envelope(macSigner, { id: 'carries-xkey', xkey: other.publicKey });
    assert.equal(admit(g, r).kind, 'signed');
    // Bob still holds the key he learned from the signed hello: Alice's MACs still pass, and
    // MACs under the other key do not.
    assert.equal(
      admit(g, envelope(a.signerFor(bob.id, identitySigner(alice)), { id: 'next' })).kind,
      'signed',
    );
    other.learn(bob.id, b.publicKey);
    const withOther = envelope(other.signerFor(bob.id, identitySigner(alice)), { id: 'other' });
    assert.equal(refusal(admit(g, withOther)).reason, 'no_session');
  });

  test('a stale timestamp with a good MAC is refused as stale', () => {
    let now = T0;
    const { g, macSigner } = introduced(() => now);
    const old = envelope(macSigner, { id: 'old', ts: T0 - SKEW - 1 });
    const ahead = envelope(macSigner, { id: 'ahead', ts: T0 + SKEW + 1 });
    assert.equal(refusal(admit(g, old)).reason, 'stale');
    assert.equal(refusal(admit(g, ahead)).reason, 'stale');
    assert.equal(g.stats.macs, 0, 'not even checked');
    // A MAC'd envelope accepted once is refused as stale, not taken as new, after the window.
    const r = envelope(macSigner, { id: 'r', ts: T0 });
    assert.equal(admit(g, r).kind, 'signed');
    now = T0 + SKEW + 1;
    assert.equal(refusal(admit(g, r)).reason, 'stale');
  });

  test('a signature takes precedence over a MAC header sent alongside it', () => {
    const { g } = introduced();
    const r = envelope(identitySigner(alice), { id: 'both' });
    const withJunkMac = { ...r, headers: { ...r.headers, [MAC_HEADER]: 'junk' } };
    assert.equal(admit(g, withJunkMac).kind, 'signed');
    assert.equal(g.stats.macs, 0);
    assert.equal(g.stats.verified, 2);
  });
});
