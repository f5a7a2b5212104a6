/**
 * The public API of `Node` over real HTTP on 127.0.0.1, in-process: lifecycle, errors and their
 * codes, slow members, the entry point's role, abort signals, and a clean process exit.
 */

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type Message, Node, type Peer } from '../../src/index.js';
import { closedPort, rawRequest, SilentServer } from '../helpers/http-raw.js';
import { ids, startNode } from '../helpers/nodes.js';
import { signEnvelope, testIdentity } from '../helpers/security-sign.js';
import { runStopExitChild } from '../helpers/stop-exit-child.js';
import { onceEvent, waitFor } from '../helpers/wait.js';

/**
 * Makes a silent server a member of `node` by sending a signed tsp2p connect in its name, with
 * an identity of its own. Resolves with the member's id (its key's fingerprint).
 */
async function joinAsSilentMember(node: Node, silent: SilentServer): Promise<string> {
  const identity = testIdentity();
  const connect = signEnvelope(
    { type: 0, data: null, from: { address: '127.0.0.1', port: silent.port } },
    identity,
  );
  const answer = await rawRequest(node.self.port, connect.body, { headers: connect.headers });
  assert.equal(answer.status, 200, answer.body);
  return identity.id;
}

test('start() on port 0 listens on a real port', async (t) => {
  const node = await startNode(t);
  assert.equal(node.status, 'started');
  assert.ok(node.self.port > 0 && node.self.port <= 65535);
  assert.equal(node.self.address, '127.0.0.1');
  assert.equal(node.self.id, node.id);
  const answer = await rawRequest(node.self.port, undefined, { method: 'GET' });
  assert.equal(answer.status, 400);
});

test('start() twice fails with ERR_ALREADY_STARTED', async (t) => {
  const node = await startNode(t);
  await assert.rejects(node.start(), { code: 'ERR_ALREADY_STARTED' });
  assert.equal(node.status, 'started');
});

test('start() on a port in use fails with ERR_ADDRESS_IN_USE', async (t) => {
  const first = await startNode(t);
  const second = new Node({ port: first.self.port });
  t.after(() => second.stop());
  await assert.rejects(second.start(), { code: 'ERR_ADDRESS_IN_USE' });
  assert.equal(second.status, 'stopped');
  // The first one still works.
  assert.equal((await rawRequest(first.self.port, undefined, { method: 'GET' })).status, 400);
});

test('calls before connect fail with ERR_NOT_STARTED / ERR_NOT_CONNECTED', async (t) => {
  const idle = new Node();
  await assert.rejects(idle.connect('127.0.0.1:1'), { code: 'ERR_NOT_STARTED' });
  await assert.rejects(idle.broadcast('x'), { code: 'ERR_NOT_STARTED' });
  const node = await startNode(t);
  assert.equal(node.isConnected, false);
  await assert.rejects(node.broadcast('hello?'), { code: 'ERR_NOT_CONNECTED' });
  await assert.rejects(node.send('127.0.0.1:9', 'hello?'), { code: 'ERR_NOT_CONNECTED' });
});

test('connect() to a closed port fails with ERR_CONNECT_FAILED', async (t) => {
  const node = await startNode(t, { requestTimeoutMs: 3_000 });
  const port = await closedPort();
  await assert.rejects(node.connect(`127.0.0.1:${port}`), { code: 'ERR_CONNECT_FAILED' });
  assert.equal(node.isConnected, false);
  assert.deepEqual(node.members(), []);
});

test('connect() to a malformed address or to itself fails with ERR_INVALID_ADDRESS', async (t) => {
  const node = await startNode(t);
  await assert.rejects(node.connect('nonsense'), { code: 'ERR_INVALID_ADDRESS' });
  await assert.rejects(node.connect('127.0.0.1:99999'), { code: 'ERR_INVALID_ADDRESS' });
  await assert.rejects(node.connect('ftp://127.0.0.1:5000'), { code: 'ERR_INVALID_ADDRESS' });
  await assert.rejects(node.connect(`127.0.0.1:${node.self.port}`), { code: 'ERR_INVALID_ADDRESS' });
  await assert.rejects(node.connect(node.self), { code: 'ERR_INVALID_ADDRESS' });
  assert.equal(node.isConnected, false);
});

test('send() to a non-member fails with ERR_UNKNOWN_PEER and sends nothing', async (t) => {
  const a = await startNode(t);
  const b = await startNode(t);
  await b.connect(a.self);
  const received: Message[] = [];
  a.on('message', (m) => received.push(m));
  const port = await closedPort();
  await assert.rejects(b.send(`127.0.0.1:${port}`, 'to nobody'), { code: 'ERR_UNKNOWN_PEER' });
  // One unknown target among known ones: nothing is sent at all.
  await assert.rejects(b.send([a.self, `127.0.0.1:${port}`], 'partly known'), { code: 'ERR_UNKNOWN_PEER' });
  const ok = await b.send(a.self, 'fence');
  assert.deepEqual(ids(ok.delivered), [a.id]);
  await waitFor(() => received.some((m) => m.text === 'fence'), { message: "a to get 'fence'" });
  assert.deepEqual(
    received.map((m) => m.text),
    ['fence'],
  );
});

test('the entry point is connected once someone joined it, and can broadcast', async (t) => {
  const entry = await startNode(t);
  const joiner = await startNode(t);
  assert.equal(entry.isConnected, false);
  const joined = onceEvent<[Peer]>(entry, 'member:join');
  const report = await joiner.connect(`127.0.0.1:${entry.self.port}`);
  assert.equal(report.entry.id, entry.id);
  assert.deepEqual(ids(report.members), [entry.id]);
  assert.equal(joiner.isConnected, true);
  assert.equal(entry.isConnected, true);
  const [peer] = await joined;
  assert.equal(peer.id, joiner.id);
  assert.deepEqual(ids(entry.members()), [joiner.id]);

  const got = onceEvent<[Message]>(joiner, 'message');
  const sent = await entry.broadcast('from the entry point');
  assert.deepEqual(ids(sent.delivered), [joiner.id]);
  assert.deepEqual(sent.failed, []);
  const [msg] = await got;
  assert.equal(msg.text, 'from the entry point');
  assert.equal(msg.type, 'broadcast');
  assert.equal(msg.from.id, entry.id);
});

test('a member that never answers is reported ERR_TIMEOUT and does not hold up the others', async (t) => {
  const silent = await SilentServer.start();
  t.after(() => silent.stop());
  // Retried until the delivery deadline (or until it is declared dead, which takes longer here).
  const a = await startNode(t, { requestTimeoutMs: 400, leaveTimeoutMs: 400, deliveryTimeoutMs: 1_500 });
  const b = await startNode(t);
  const c = await startNode(t);
  await b.connect(a.self);
  await c.connect(a.self);
  const silentId = await joinAsSilentMember(a, silent);
  assert.equal(a.members().length, 3);

  const gotB = onceEvent<[Message]>(b, 'message');
  const gotC = onceEvent<[Message]>(c, 'message');
  const report = await a.broadcast('not waiting for the slow one');
  assert.deepEqual(ids(report.delivered), [b.id, c.id].sort());
  assert.equal(report.failed.length, 1);
  assert.equal(report.failed[0]?.peer.id, silentId);
  assert.equal(report.failed[0]?.error.code, 'ERR_TIMEOUT');
  await waitFor(() => silent.held(2) > 0, { message: 'the silent member to have the broadcast' });
  // Retried (the same batch, the same sequence numbers) until the deadline: held at least once.
  assert.ok(silent.held(2) >= 1);
  assert.equal((await gotB)[0].text, 'not waiting for the slow one');
  assert.equal((await gotC)[0].text, 'not waiting for the slow one');

  // A direct message to it and to a live member: the same.
  const dm = await a.send([b.self, { address: '127.0.0.1', port: silent.port }], 'direct');
  assert.deepEqual(ids(dm.delivered), [b.id]);
  assert.deepEqual(
    dm.failed.map((f) => [f.peer.id, f.error.code]),
    [[silentId, 'ERR_TIMEOUT']],
  );
});

test('an aborted signal rejects with signal.reason', async (t) => {
  const silent = await SilentServer.start();
  t.after(() => silent.stop());
  const a = await startNode(t, { requestTimeoutMs: 30_000, leaveTimeoutMs: 300 });
  const b = await startNode(t);
  await b.connect(a.self);

  const reason = new Error('caller gave up');
  const aborted = AbortSignal.abort(reason);
  const isReason = (err: unknown): boolean => err === reason;
  await assert.rejects(a.broadcast('x', { signal: aborted }), isReason);
  await assert.rejects(a.send(b.self, 'x', { signal: aborted }), isReason);
  await assert.rejects(b.connect(a.self, { signal: aborted }), isReason);
  await assert.rejects(b.disconnect({ signal: aborted }), isReason);
  assert.equal(b.isConnected, true, 'an aborted disconnect leaves the node connected');
  const fresh = new Node();
  t.after(() => fresh.stop());
  await assert.rejects(fresh.start({ signal: aborted }), isReason);
  assert.equal(fresh.status, 'stopped');

  // Aborted while a request hangs at a silent member: rejects with the reason, promptly.
  await joinAsSilentMember(a, silent);
  const ac = new AbortController();
  const midFlight = new Error('aborted mid-flight');
  const pending = a.broadcast('hanging', { signal: ac.signal });
  await waitFor(() => silent.held(2) > 0, { message: 'the silent member to hold the broadcast' });
  ac.abort(midFlight);
  await assert.rejects(pending, (err: unknown) => err === midFlight);

  // A messages() iterator ends when its signal aborts.
  const iac = new AbortController();
  const iterator = a.messages({ signal: iac.signal });
  const next = iterator.next();
  iac.abort(new Error('done reading'));
  assert.deepEqual(await next, { done: true, value: undefined });
});

test('stop() ends messages() iterators, is idempotent, and frees the port', async (t) => {
  const a = await startNode(t);
  const b = await startNode(t);
  await b.connect(a.self);
  const iterator = a.messages();
  const first = iterator.next();
  await b.broadcast('one');
  assert.equal((await first).value?.text, 'one');
  const left = onceEvent<[Peer]>(a, 'member:leave');
  const pendingNext = iterator.next();
  await b.stop();
  assert.equal((await left)[0].id, b.id, 'stop() leaves gracefully');
  const port = a.self.port;
  await Promise.all([a.stop(), a.stop()]);
  await a.stop();
  assert.deepEqual(await pendingNext, { done: true, value: undefined });
  assert.equal(a.status, 'stopped');
  // Its port is free again: a new node can take it.
  const again = await startNode(t, { port });
  assert.equal(again.self.port, port);
});

test('after stop() of all nodes, the process exits on its own', async (t) => {
  const { code, signal, steps, stderr } = await runStopExitChild(t, 'nodes');
  // The ports of `started` vary; the rest is exact.
  const seen = steps.map((s) => (s.step === 'started' ? { step: s.step } : s));
  assert.deepEqual(
    { code, signal, steps: seen },
    {
      code: 0,
      signal: null,
      steps: [
        { step: 'started' },
        { step: 'connected' },
        { step: 'broadcast', delivered: 1, text: 'hello b' },
        { step: 'direct', text: 'hello a' },
        { step: 'stopped', a: 'stopped', b: 'stopped' },
      ],
    },
    `stderr:\n${stderr}`,
  );
});
