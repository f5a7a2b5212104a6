/**
 * The inbound guard and its replay cache: which envelopes pass, which are refused (and why),
 * which are duplicates; the clock skew window; a refusal after admission frees the id for a
 * retry; a full cache refuses rather than forgets.
 */

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { identityFromSeed } from '../../src/identity.js';
import { sealEnvelope } from '../../src/protocol/envelope.js';
import { MessageType } from '../../src/protocol/schema.js';
import {
  type Admission,
  DEFAULT_MAX_FUTURE_SKEW_MS,
  InboundGuard,
} from '../../src/security/inbound-guard.js';
import { ReplayCache } from '../../src/security/replay-cache.js';
import { identitySigner, KeyCache, SIGNATURE_HEADER } from '../../src/security/signature.js';
import { type GuardRequest, guardRequest } from '../helpers/security-sign.js';

const alice = identityFromSeed(new Uint8Array(32).fill(1));
const mallory = identityFromSeed(new Uint8Array(32).fill(2));
const T0 = 1_800_000_000_000;
const SKEW = 60_000;

function signed(
  fields: { type?: number; id?: string; ts?: number } = {},
  identity = alice,
  claimedId = identity.id,
): GuardRequest {
  const sealed = sealEnvelope(
    {
      type: (fields.type ?? MessageType.Broadcast) as MessageType,
      from: { address: '127.0.0.1', port: 5000, id: claimedId },
      id: fields.id ?? 'm1',
      ts: fields.ts ?? T0,
      data: new Uint8Array([1]),
    },
    identitySigner(identity),
  );
  return guardRequest(sealed.body, { ...sealed.headers });
}

function guard(
  options: { compat?: boolean; now?: () => number; capacity?: number; quota?: number } = {},
): InboundGuard {
  return new InboundGuard({
    compat: options.compat ?? false,
    maxClockSkewMs: SKEW,
    now: options.now ?? (() => T0),
    keyCache: new KeyCache(16),
    ...(options.capacity !== undefined ? { replayCapacity: options.capacity } : {}),
    ...(options.quota !== undefined ? { replayQuota: options.quota } : {}),
  });
}

function admit(g: InboundGuard, r: GuardRequest): Admission {
  return g.admit(r.envelope, r.body, r.headers);
}

function refusal(a: Admission): string {
  assert.equal(a.kind, 'refused', `expected a refusal, got ${a.kind}`);
  return a.kind === 'refused' ? a.refusal.reason : '';
}

describe('the inbound guard', () => {
  test('accepts a signed envelope once; the same bytes again are a duplicate', () => {
    const g = guard();
    const r = signed();
    assert.equal(admit(g, r).kind, 'signed');
    assert.equal(admit(g, r).kind, 'duplicate');
    assert.equal(g.stats.verified, 1, 'the duplicate was not verified again');
    assert.equal(g.stats.duplicates, 1);
  });

  test('refuses unsigned, forged and tampered envelopes with 401', () => {
    const g = guard();
    const good = signed({ id: 'good' });
    // No signature header.
    assert.equal(refusal(admit(g, { ...good, headers: {} })), 'unsigned');
    // Mallory signs in alice's name, with her own key in from.key: the key is not alice's.
    const forged = signed({ id: 'good' }, mallory, alice.id);
    assert.equal(refusal(admit(g, forged)), 'bad_key', "mallory's key does not hash to alice's id");
    // Alice's genuine signature over a body changed afterwards.
    const body = Buffer.from(good.body).toString().replace('"data":"AQ=="', '"data":"Ag=="');
    assert.equal(refusal(admit(g, guardRequest(body, good.headers))), 'bad_signature', 'tampered data');
    // Alice's key and id, but mallory's signature.
    const swapped = {
      ...good,
      headers: { [SIGNATURE_HEADER]: signed({ id: 'good' }, mallory).headers[SIGNATURE_HEADER] },
    };
    assert.equal(refusal(admit(g, swapped)), 'bad_signature');
    // Every refusal is a 401 on one line.
    const a = admit(g, swapped);
    assert.ok(a.kind === 'refused' && a.refusal.status === 401 && !a.refusal.message.includes('\n'));
    assert.equal(g.stats.refused.bad_signature, 3);
    // The genuine one still passes afterwards.
    assert.equal(admit(g, good).kind, 'signed');
  });

  test('refuses an envelope that claims to be signed but lacks a part', () => {
    const g = guard();
    const r = signed();
    const without = (field: 'v' | 'id' | 'ts' | 'from.id' | 'from.key'): GuardRequest => {
      const obj = JSON.parse(Buffer.from(r.body).toString()) as Record<string, Record<string, unknown>>;
      if (field.startsWith('from.')) delete obj.from![field.slice(5)];
      else delete obj[field];
      return guardRequest(JSON.stringify(obj), r.headers);
    };
    for (const field of ['v', 'id', 'ts', 'from.id', 'from.key'] as const) {
      assert.equal(refusal(admit(g, without(field))), 'unsigned', field);
    }
  });

  test('gop2p-style envelopes pass unsigned in compat mode only', () => {
    const gop2p = guardRequest(
      JSON.stringify({ type: 2, data: 'aGk=', from: { address: '127.0.0.1', port: 1 } }),
      {},
    );
    assert.equal(admit(guard({ compat: true }), gop2p).kind, 'unsigned');
    assert.equal(refusal(admit(guard(), gop2p)), 'gop2p_not_allowed');
    // A gop2p-looking envelope with a tsp2p id or a signature header must be signed, even in compat mode.
    const claimsId = guardRequest(
      JSON.stringify({ type: 2, data: 'aGk=', from: { address: '127.0.0.1', port: 1, id: alice.id } }),
      {},
    );
    assert.equal(refusal(admit(guard({ compat: true }), claimsId)), 'unsigned');
    const withSig = { ...gop2p, headers: { [SIGNATURE_HEADER]: 'x' } };
    assert.equal(refusal(admit(guard({ compat: true }), withSig)), 'unsigned');
  });

  test('refuses timestamps outside the skew window, either way; ahead, beyond 10 s', () => {
    const g = guard();
    assert.equal(refusal(admit(g, signed({ id: 'old', ts: T0 - SKEW - 1 }))), 'stale');
    assert.equal(refusal(admit(g, signed({ id: 'new', ts: T0 + SKEW + 1 }))), 'stale');
    assert.equal(admit(g, signed({ id: 'edge-old', ts: T0 - SKEW })).kind, 'signed');
    // Stamped ahead: only DEFAULT_MAX_FUTURE_SKEW_MS (a future stamp would outlive the window).
    assert.equal(refusal(admit(g, signed({ id: 'ahead', ts: T0 + SKEW }))), 'stale');
    assert.equal(
      refusal(admit(g, signed({ id: 'ahead-1', ts: T0 + DEFAULT_MAX_FUTURE_SKEW_MS + 1 }))),
      'stale',
    );
    assert.equal(admit(g, signed({ id: 'edge-new', ts: T0 + DEFAULT_MAX_FUTURE_SKEW_MS })).kind, 'signed');
  });

  test('a replay after the window is refused as stale, not taken as new', () => {
    let now = T0;
    const g = guard({ now: () => now });
    const r = signed({ id: 'r1', ts: T0 });
    assert.equal(admit(g, r).kind, 'signed');
    now = T0 + SKEW + 1;
    assert.equal(refusal(admit(g, r)), 'stale');
  });

  test('released after a refusal: the same bytes may come again', () => {
    const g = guard();
    const r = signed({ id: 'retry' });
    const first = admit(g, r);
    assert.equal(first.kind, 'signed');
    if (first.kind === 'signed') first.release();
    assert.equal(admit(g, r).kind, 'signed', 'the retry is new again');
    assert.equal(admit(g, r).kind, 'duplicate');
  });

  test('the same id re-signed by its sender is a duplicate; by another key, refused', () => {
    const g = guard();
    assert.equal(admit(g, signed({ id: 'x', ts: T0 })).kind, 'signed');
    // The sender re-sealed the message (same id, fresh timestamp): verified, then a duplicate.
    assert.equal(admit(g, signed({ id: 'x', ts: T0 + 5 })).kind, 'duplicate');
    assert.equal(g.stats.verified, 2);
  });

  test('a full replay cache refuses old envelopes rather than forget them', () => {
    let now = T0;
    const g = guard({ now: () => now, capacity: 3, quota: 3 });
    const sent: GuardRequest[] = [];
    for (let i = 0; i < 5; i++) {
      now = T0 + i;
      const r = signed({ id: `f${i}`, ts: now });
      sent.push(r);
      assert.equal(admit(g, r).kind, 'signed');
    }
    // f0 and f1 were dropped from the cache: replaying them must not work.
    assert.equal(refusal(admit(g, sent[0]!)), 'stale');
    assert.equal(refusal(admit(g, sent[1]!)), 'stale');
    assert.equal(admit(g, sent[4]!).kind, 'duplicate');
    assert.equal(g.remembered, 3);
    // Newer envelopes still pass.
    assert.equal(admit(g, signed({ id: 'f9', ts: now + 1 })).kind, 'signed');
  });
});

describe('the replay cache', () => {
  test('forgets entries once their timestamp leaves the window', () => {
    const cache = new ReplayCache(100, 1000);
    cache.add('a', '1', 0, 'sig-a', 0);
    cache.add('a', '2', 500, 'sig-b', 500);
    assert.equal(cache.status('a', '1', 'sig-a', 1000), 'same');
    assert.equal(cache.status('a', '1', 'sig-a', 1001), 'new');
    assert.equal(cache.size, 1);
    assert.equal(cache.status('a', '2', 'other', 1001), 'other');
    assert.equal(cache.floor('a'), Number.NEGATIVE_INFINITY, 'expiry does not raise the floor');
  });

  test('tells the same signature or MAC from another by its end: MACs of one session share their start', () => {
    const cache = new ReplayCache(100, 1000);
    const sig = Buffer.alloc(64, 7).toString('base64url');
    const kid = 'AbCdEfGhIjKlMnOp';
    const mac = (tag: string) => `${kid}.${tag.padStart(43, 'x')}`;
    cache.add('a', 's', 0, sig, 0);
    cache.add('a', 'm', 0, mac('tag-one'), 0);
    assert.equal(cache.status('a', 's', sig, 1), 'same');
    assert.equal(cache.status('a', 's', `${sig.slice(0, 80)}Zzzzzz`, 1), 'other');
    assert.equal(cache.status('a', 'm', mac('tag-one'), 1), 'same');
    assert.equal(cache.status('a', 'm', mac('tag-two'), 1), 'other', 'same key id, another tag');
  });

  test('a release does not remove a newer entry for the same key', () => {
    const cache = new ReplayCache(100, 1000);
    const release = cache.add('s', 'k', 0, 'one', 0);
    cache.add('s', 'k', 1, 'two', 1);
    release();
    assert.equal(cache.status('s', 'k', 'two', 1), 'same');
  });

  test("a sender over its quota drops its own oldest entries: others' floors do not move", () => {
    const cache = new ReplayCache(100, 60_000, 10);
    cache.add('honest', 'h1', 1000, 'sig-h', 1000);
    // A flood from one sender, stamped ahead of the clock.
    for (let i = 0; i < 1000; i++) cache.add('flooder', `f${i}`, 1000 + 9000, `sig-${i}`, 1000);
    assert.equal(cache.status('honest', 'h1', 'sig-h', 1000), 'same', 'the honest entry is kept');
    assert.equal(cache.floor('honest'), Number.NEGATIVE_INFINITY);
    assert.equal(cache.floor('flooder'), 10_000, "the flooder's floor is its own stamp");
    assert.ok(cache.size <= 11);
  });

  test('a full cache drops the oldest entry overall, and raises only its sender’s floor', () => {
    const cache = new ReplayCache(4, 60_000, 4);
    cache.add('a', '1', 100, 'x', 100);
    for (let i = 0; i < 4; i++) cache.add(`k${i}`, 'm', 200, 'y', 200);
    assert.equal(cache.status('a', '1', 'x', 200), 'new', 'dropped');
    assert.equal(cache.floor('a'), 100, 'a replay of it is refused');
    assert.equal(cache.floor('k0'), Number.NEGATIVE_INFINITY);
    assert.equal(cache.size, 4);
  });

  test('sender records are bounded; a dropped one folds its floor, never past now, into all', () => {
    const cache = new ReplayCache(4, 60_000, 1);
    for (let i = 0; i < 50; i++) {
      cache.add(`s${i}`, 'a', 100 + i, 'x', 100 + i);
      cache.add(`s${i}`, 'b', 5000, 'x', 100 + i); // drops 'a': floor 100 + i
    }
    assert.ok(cache.senders <= 8, `${cache.senders} sender records`);
    assert.ok(cache.floor('s0') >= 100, "s0's dropped entry stays refused");
    assert.ok(cache.floor('new') <= 150, 'the shared floor is at most the time it was set');
  });
});
