/**
 * Signed envelopes against real nodes on loopback: forged broadcasts and disconnects, replays of
 * captured requests, and a tampered relay are refused (or have no effect), and the node's
 * membership and inbox stay exactly as they were. Refusals are counted in /metrics.
 */

import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Message, Node, NodeOptions, OutboundRequest } from '../../src/index.js';
import { signGossip } from '../../src/security/gossip-signature.js';
import { HttpTransport } from '../../src/transport/http.js';
import type { OutboundResponse, Transport } from '../../src/transport/transport.js';
import { rawRequest } from '../helpers/http-raw.js';
import { ids, startNode } from '../helpers/nodes.js';
import {
  keyText,
  type SignedRequest,
  signEnvelope,
  signedBody,
  testIdentity,
} from '../helpers/security-sign.js';
import { waitFor } from '../helpers/wait.js';

/** A transport that keeps a copy of every request it sends: what an eavesdropper would capture. */
class RecordingTransport implements Transport {
  readonly sent: { body: string; headers: Record<string, string> }[] = [];
  readonly #inner = new HttpTransport();
  listen: Transport['listen'] = (o) => this.#inner.listen(o);
  close: Transport['close'] = (o) => this.#inner.close(o);
  request(r: OutboundRequest): Promise<OutboundResponse> {
    this.sent.push({ body: Buffer.from(r.body).toString('utf8'), headers: { ...r.headers } });
    return this.#inner.request(r);
  }
  /** The captured requests of one message type. */
  ofType(type: number): { body: string; headers: Record<string, string> }[] {
    return this.sent.filter((s) => (JSON.parse(s.body) as { type: number }).type === type);
  }
}

function send(node: Node, r: SignedRequest | string) {
  return typeof r === 'string'
    ? rawRequest(node.self.port, r)
    : rawRequest(node.self.port, r.body, { headers: r.headers });
}

/** Counts the messages a node delivers, from now on. */
function inbox(t: { after(fn: () => unknown): void }, node: Node): Message[] {
  const got: Message[] = [];
  const listener = (m: Message): void => {
    got.push(m);
  };
  node.on('message', listener);
  t.after(() => node.off('message', listener));
  return got;
}

async function metric(node: Node, pattern: RegExp): Promise<number> {
  const text = (await rawRequest(node.self.port, undefined, { method: 'GET', path: '/metrics' })).body;
  const line = text.split('\n').find((l) => pattern.test(l));
  return line === undefined ? 0 : Number(line.slice(line.lastIndexOf(' ') + 1));
}

async function network(t: { after(fn: () => unknown): void }, options: NodeOptions = {}) {
  const node = await startNode(t, { leaveTimeoutMs: 1_000, ...options });
  const memberIdentity = testIdentity();
  const recorder = new RecordingTransport();
  const member = await startNode(t, { identity: memberIdentity.privateKey, transport: recorder });
  await member.connect(node.self);
  const wire = { address: member.self.address, port: member.self.port };
  return { node, member, memberIdentity, recorder, wire };
}

test('a forged broadcast and a forged disconnect are refused; membership and inbox unchanged', async (t) => {
  const { node, member, memberIdentity, wire } = await network(t);
  const got = inbox(t, node);
  const before = ids(node.members());
  assert.deepEqual(before, [member.id]);
  const mallory = testIdentity();
  const inMembersName = { ...wire, id: member.id };

  for (const type of [2, 1]) {
    const what = type === 2 ? 'broadcast' : 'disconnect';
    const genuine = signEnvelope({ type, data: type === 2 ? 'Zm9yZ2Vk' : null, from: wire }, memberIdentity);
    const forgeries: [string, SignedRequest | string][] = [
      [
        "unsigned, in the member's name",
        JSON.stringify({ type, v: 1, id: 'f1', ts: Date.now(), data: null, from: inMembersName }),
      ],
      [
        "signed with mallory's key, in the member's name",
        signEnvelope({ type, data: null, from: { ...inMembersName, key: keyText(mallory) } }, mallory),
      ],
      ["the member's key and id, mallory's signature", signedBody(genuine.body, mallory)],
      [
        'a genuine signature over a tampered body',
        { body: genuine.body.replace(wire.address, '127.0.0.9'), headers: genuine.headers },
      ],
      [
        'a genuine signature, no key in from',
        signedBody(genuine.body.replace(/,"key":"[^"]+"/, ''), memberIdentity),
      ],
    ];
    for (const [how, forged] of forgeries) {
      const answer = await send(node, forged);
      assert.equal(answer.status, 401, `${what} ${how}: ${answer.body}`);
      assert.match(answer.body, /^[^\n]+\n$/, 'one line');
    }
  }
  assert.deepEqual(ids(node.members()), before, 'the member is still a member');
  assert.equal(got.length, 0, 'nothing was delivered');

  // The member itself still gets through.
  await member.broadcast('genuine');
  await waitFor(() => got.some((m) => m.text === 'genuine' && m.from.id === member.id), {
    message: "the member's own broadcast to arrive",
  });
  assert.equal(got.length, 1);
  assert.ok(
    (await metric(node, /^tsp2p_requests_refused_total\{status="401",reason="bad_signature"\}/)) >= 4,
  );
  assert.ok((await metric(node, /^tsp2p_requests_refused_total\{status="401",reason="bad_key"\}/)) >= 2);
  assert.ok((await metric(node, /^tsp2p_requests_refused_total\{status="401",reason="unsigned"\}/)) >= 2);
});

test('replays have no effect: a captured broadcast and disconnect; old ones are refused', async (t) => {
  const { node, member, recorder } = await network(t, { maxClockSkewMs: 3_000 });
  const got = inbox(t, node);

  // Capture a real broadcast (inside the member's batch) and replay it.
  await member.broadcast('once');
  await waitFor(() => got.length === 1, { message: 'the broadcast to arrive' });
  const [batch] = recorder.ofType(8).slice(-1);
  assert.ok(batch, 'a batch was captured');
  for (let i = 0; i < 3; i++) {
    const answer = await rawRequest(node.self.port, batch.body, { headers: batch.headers });
    assert.equal(answer.status, 200, `a replay is acknowledged as a duplicate: ${answer.body}`);
  }
  assert.equal(got.length, 1, 'the replays delivered nothing');

  // Capture a real disconnect, rejoin, and replay the disconnect.
  await member.disconnect();
  await waitFor(() => node.members().length === 0, { message: 'the leave to be processed' });
  const [leave] = recorder.ofType(1).slice(-1);
  assert.ok(leave, 'the disconnect was captured');
  await member.connect(node.self);
  assert.deepEqual(ids(node.members()), [member.id]);
  const replayed = await rawRequest(node.self.port, leave.body, { headers: leave.headers });
  assert.equal(replayed.status, 200, replayed.body);
  assert.deepEqual(ids(node.members()), [member.id], 'the replayed leave evicted nobody');

  // Once the timestamps leave the window, the same bytes are refused outright.
  await waitFor(
    async () => (await rawRequest(node.self.port, leave.body, { headers: leave.headers })).status === 401,
    { message: 'the replayed disconnect to be refused as stale', timeoutMs: 20_000 },
  );
  const stale = await rawRequest(node.self.port, batch.body, { headers: batch.headers });
  assert.equal(stale.status, 401);
  assert.match(stale.body, /^stale message: /);
  assert.deepEqual(ids(node.members()), [member.id]);
  assert.equal(got.length, 1);
});

test("a relayed message must carry its origin's signature: a tampered relay is refused", async (t) => {
  const { node, member, memberIdentity, wire } = await network(t);
  // A second member, whose key the test holds: it relays (or forges) messages in batches.
  const relayIdentity = testIdentity();
  const relay = await startNode(t, { identity: relayIdentity.privateKey });
  await relay.connect(node.self);
  await waitFor(() => node.members().length === 2, { message: 'both members to be known' });
  const got = inbox(t, node);
  const origin = { ...wire, id: member.id, key: keyText(memberIdentity) };
  const relayFrom = { address: relay.self.address, port: relay.self.port };

  const msg = (id: string, data: string, sig?: string) => {
    const m = { type: 2, id, ts: Date.now(), data };
    return { ...m, hops: 1, origin, sig: sig ?? signGossip(m, memberIdentity.privateKey) };
  };
  const genuine = msg('g-1', Buffer.from('relayed').toString('base64'));
  const altered = { ...msg('g-2', Buffer.from('original').toString('base64')) };
  altered.data = Buffer.from('altered').toString('base64');
  const forged = msg(
    'g-3',
    Buffer.from('forged').toString('base64'),
    signGossip({ ...genuine, id: 'g-3' }, relayIdentity.privateKey),
  );
  const unsigned = { ...msg('g-4', 'aGk='), sig: undefined };
  const before = await metric(node, /^tsp2p_signature_checks_total\{result="relayed_refused"\}/);
  const batch = signEnvelope(
    {
      type: 8,
      data: null,
      from: relayFrom,
      stream: 's1',
      seq: 1,
      msgs: [altered, forged, unsigned, genuine],
    },
    relayIdentity,
  );
  const answer = await send(node, batch);
  assert.equal(answer.status, 200, answer.body);
  await waitFor(() => got.length >= 1, { message: 'the genuine relayed message to arrive' });
  assert.deepEqual(
    got.map((m) => [m.text, m.from.id]),
    [['relayed', member.id]],
    'only the genuine message arrived, from its origin',
  );
  const after = await metric(node, /^tsp2p_signature_checks_total\{result="relayed_refused"\}/);
  assert.equal(after - before, 3, 'the three bad messages were counted');
});

test("compat mode: an unsigned gop2p request cannot speak for a signed member's address", async (t) => {
  const { node, member, wire } = await network(t, { compat: 'gop2p' });
  const got = inbox(t, node);
  for (const type of [1, 2, 3, 0]) {
    const answer = await send(node, JSON.stringify({ type, data: 'aGk=', from: wire, to: [] }));
    assert.equal(answer.status, 403, `type ${type}: ${answer.body}`);
    assert.match(answer.body, /^Peer not registered: that address is a tsp2p member/);
  }
  assert.deepEqual(ids(node.members()), [member.id]);
  assert.equal(got.length, 0);
  // A real gop2p-style peer at its own address is still welcome in compat mode.
  const gop2p = JSON.stringify({ type: 0, data: null, from: { address: '127.0.0.1', port: 40999 } });
  assert.equal((await send(node, gop2p)).status, 200);
  assert.equal(node.members().length, 2);
});
