/**
 * PeerProbeNet: a node out of the network sends no membership traffic, and a sync that was in
 * flight when the node left does not end in a "refuting" gossip that would bring it back. With
 * session keys, requests to a member whose key is held carry a MAC, and a `401 no session` is
 * followed at once by the same request, signed.
 */

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { flushMicrotasks } from '../../src/clock.js';
import { noopLogger } from '../../src/logger.js';
import { PeerProbeNet } from '../../src/membership/probe-net.js';
import type { EnvelopeSigner } from '../../src/protocol/envelope.js';
import { MessageType, type WireMemberUpdate } from '../../src/protocol/schema.js';
import type { SenderSessions } from '../../src/security/session-request.js';
import type { PeerClient } from '../../src/transport/peer-client.js';
import { FakeClient } from '../helpers/delivery-fakes.js';
import { membershipHarness, peer } from '../helpers/unit-membership.js';

const A = peer('a', 5001);
const B = peer('b', 5002);

/** What the test's sealer puts in a body. */
interface Body {
  readonly type: MessageType;
  readonly m?: readonly WireMemberUpdate[];
  readonly digest?: string;
  /** Which signer sealed it (the test's signers name themselves in `key`). */
  readonly by: string;
}

/** The Ed25519 signer of the test's sealer. */
const SIGNER: EnvelopeSigner = { key: 'signed', headers: () => ({}) };
/** A session MAC signer, as `SessionKeys.signerFor` gives one. */
const MAC: EnvelopeSigner = { key: 'mac', headers: () => ({}) };

function fixture(sessions?: SenderSessions) {
  const h = membershipHarness();
  h.joinAll([A, B]);
  const client = new FakeClient();
  const net = new PeerProbeNet(
    client as unknown as PeerClient,
    h.membership,
    {
      signer: SIGNER,
      seal: (type, extra, signer = SIGNER) => ({
        body: new TextEncoder().encode(
          JSON.stringify({ type, m: extra?.m, digest: extra?.digest, by: signer.key }),
        ),
      }),
    },
    noopLogger,
    undefined,
    sessions,
  );
  const member = (id: string) => h.membership.get(id)!;
  return { h, client, net, member, signal: new AbortController().signal };
}

test('in the network, each operation sends its request', async () => {
  const { client, net, member, signal } = fixture();
  const done = [
    net.ping(member('a'), 100, signal),
    net.pingReq(member('a'), member('b'), 100, signal),
    net.sync(member('a'), 100, signal),
    net.gossip(member('a'), 100, signal),
  ];
  assert.equal(client.calls.length, 4);
  for (const call of client.calls) call.answer(200, '{"ack":true}');
  // The sync's digest was not answered with an equal one: this node's full state follows.
  await flushMicrotasks();
  assert.equal(client.calls.length, 5);
  const full = client.last.body as unknown as Body;
  assert.equal(full.type, MessageType.Sync);
  assert.ok((full.m?.length ?? 0) > 0, 'the full state');
  client.last.answer(200, '{}');
  assert.deepEqual(await Promise.all(done), [true, 'ack', true, true]);
});

test('a sync whose digest is answered with the same digest sends nothing more', async () => {
  const { h, client, net, member, signal } = fixture();
  const done = net.sync(member('a'), 100, signal);
  assert.equal(client.calls.length, 1);
  const probe = client.last.body as unknown as Body;
  assert.equal(probe.digest, h.membership.digest());
  assert.equal(probe.m, undefined, 'no state with the digest');
  client.last.answer(200, JSON.stringify({ digest: probe.digest }));
  assert.equal(await done, true);
  assert.equal(client.calls.length, 1);
});

test('a tsp2p member answering 403 (it does not know this node) failed the probe; any other answer passes', async () => {
  const { h, client, net, member, signal } = fixture();
  const g = peer('g', 5003);
  h.membership.join(g, 'gop2p');
  const answers: [string, number, boolean][] = [
    ['a', 403, false],
    ['a', 401, true],
    ['a', 429, true],
    ['a', 200, true],
    // A gop2p member cannot answer a ping: its 405 (or any answer) shows it alive.
    ['g', 405, true],
    ['g', 403, true],
  ];
  for (const [id, status, alive] of answers) {
    const target = id === 'g' ? h.membership.getByAddress(g.address, g.port)! : member(id);
    assert.equal(target.kind, id === 'g' ? 'gop2p' : 'tsp2p');
    const done = net.ping(target, 100, signal);
    client.last.answer(status, '');
    assert.equal(await done, alive, `${id} answering ${status}`);
  }
});

test('out of the network, ping, ping-req, sync and gossip send nothing', async () => {
  const { h, client, net, signal } = fixture();
  const a = h.membership.get('a')!;
  const b = h.membership.get('b')!;
  h.membership.leaveNetwork();
  assert.equal(await net.ping(a, 100, signal), false);
  assert.equal(await net.pingReq(a, b, 100, signal), 'none');
  assert.equal(await net.sync(a, 100, signal), false);
  assert.equal(await net.gossip(a, 100, signal), false);
  assert.deepEqual(client.calls, []);
});

test('a sync answered after this node left is not followed by a gossip of this node', async () => {
  const { h, client, net, member, signal } = fixture();
  const done = net.sync(member('a'), 100, signal);
  assert.equal(client.calls.length, 1);
  h.membership.leaveNetwork();
  // The answer says this node is dead: out of the network, there is nothing to refute.
  client.last.answer(200, JSON.stringify({ m: [{ ...h.membership.selfUpdate(), state: 'dead' }] }));
  await done;
  assert.equal(client.calls.length, 1, 'no request after the sync');
  assert.equal(h.membership.incarnation, 0);
});

test('a sync whose answer makes this node refute sends the refutation in its full state', async () => {
  const { h, client, net, member, signal } = fixture();
  const done = net.sync(member('a'), 100, signal);
  client.last.answer(200, JSON.stringify({ m: [{ ...h.membership.selfUpdate(), state: 'suspect' }] }));
  // The full state follows once the answer is merged: it carries the refutation.
  await flushMicrotasks();
  assert.equal(client.calls.length, 2, 'the full state after the digest');
  const full = client.last.body as unknown as Body;
  assert.equal(h.membership.incarnation, 1);
  assert.deepEqual(full.m?.[0], { ...h.membership.selfUpdate() });
  client.last.answer(200, '{}');
  assert.equal(await done, true);
  assert.equal(client.calls.length, 2, 'no gossip: the full state told the peer');
});

test('a refutation that comes with the answer to the full state is followed by a gossip carrying it', async () => {
  const { h, client, net, member, signal } = fixture();
  const done = net.sync(member('a'), 100, signal);
  client.last.answer(200, '{}');
  await flushMicrotasks();
  assert.equal(client.calls.length, 2, 'the full state after the digest');
  client.last.answer(200, JSON.stringify({ m: [{ ...h.membership.selfUpdate(), state: 'suspect' }] }));
  await flushMicrotasks();
  assert.equal(client.calls.length, 3, 'a gossip after the sync');
  const gossip = client.last.body as unknown as Body;
  assert.equal(gossip.type, MessageType.Gossip);
  assert.deepEqual(gossip.m?.[0], { ...h.membership.selfUpdate() });
  client.last.answer(200, '{}');
  assert.equal(await done, true);
});

/** Session keys that hold a key for `a` only, and log what the sender tells them. */
function fakeSessions(): SenderSessions & { readonly log: string[] } {
  const signTo = new Set<string>();
  const log: string[] = [];
  return {
    log,
    confirmedSignerFor: (peer, fallback) => (peer === 'a' && !signTo.has(peer) ? MAC : fallback),
    refused: (peer) => {
      log.push(`refused ${peer}`);
      signTo.add(peer);
    },
    accepted: (peer) => {
      log.push(`accepted ${peer}`);
      signTo.delete(peer);
    },
  };
}

test('with a session key, ping, ping-req, sync and gossip to that member carry its MAC; to another member, a signature', async () => {
  const sessions = fakeSessions();
  const { client, net, member, signal } = fixture(sessions);
  const done = [
    net.ping(member('a'), 100, signal),
    net.pingReq(member('a'), member('b'), 100, signal),
    net.sync(member('a'), 100, signal),
    net.gossip(member('a'), 100, signal),
    net.gossip(member('b'), 100, signal),
  ];
  assert.deepEqual(
    client.calls.map((c) => (c.body as unknown as Body).by),
    ['mac', 'mac', 'mac', 'mac', 'signed'],
  );
  for (const call of client.calls) call.answer(200, '{"digest":"x"}');
  await flushMicrotasks();
  assert.equal((client.last.body as unknown as Body).by, 'mac', "the full sync's state too");
  client.last.answer(200, '{}');
  await Promise.all(done);
  assert.ok(!sessions.log.some((l) => l.startsWith('refused')));
});

test('a MAC answered 401 no session is sent again at once, signed, with the same updates; then MACs again', async () => {
  const sessions = fakeSessions();
  const { client, net, member, signal } = fixture(sessions);
  const done = net.gossip(member('a'), 100, signal);
  assert.equal(client.calls.length, 1);
  const first = client.last.body as unknown as Body;
  assert.equal(first.by, 'mac');
  client.last.answer(401, 'no session: this node holds no session key for the sender; sign it\n');
  await flushMicrotasks();
  assert.equal(client.calls.length, 2, 'sent again without waiting');
  const again = client.last.body as unknown as Body;
  assert.equal(again.by, 'signed');
  assert.equal(again.type, MessageType.Gossip);
  assert.deepEqual(again.m, first.m, 'the same updates: none drawn twice');
  client.last.answer(200, '{}');
  assert.equal(await done, true);
  assert.deepEqual(sessions.log, ['refused a', 'accepted a']);
  // Accepted signed: the member holds this node's key now.
  const next = net.ping(member('a'), 100, signal);
  assert.equal((client.last.body as unknown as Body).by, 'mac');
  client.last.answer(200, '{"ack":true}');
  assert.equal(await next, true);
});

test('a MAC refused for another reason (bad MAC, 401) is not sent again, and a probe still counts the answer', async () => {
  const sessions = fakeSessions();
  const { client, net, member, signal } = fixture(sessions);
  const done = net.ping(member('a'), 100, signal);
  client.last.answer(401, 'bad MAC: tsp2p-mac does not match the body\n');
  // As before: any answer but 403 and 421 shows a tsp2p member alive.
  assert.equal(await done, true);
  assert.equal(client.calls.length, 1);
  assert.deepEqual(sessions.log, []);
});
