/**
 * The network secret against real nodes on loopback: a node without it (or with another one)
 * can neither join nor inject, and the membership stays as it was; answers from a node without
 * it are not trusted; the secrets rotate across a running network with no message lost.
 */

import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Message, Node } from '../../src/index.js';
import { rawRequest } from '../helpers/http-raw.js';
import { ids, startNode } from '../helpers/nodes.js';
import { signEnvelope, tagBody, testIdentity } from '../helpers/security-sign.js';
import { waitFor } from '../helpers/wait.js';

const SECRET = 'correct horse battery staple';
const OTHER = 'another secret, not ours';

async function refusedCount(node: Node, reason: string): Promise<number> {
  const text = (await rawRequest(node.self.port, undefined, { method: 'GET', path: '/metrics' })).body;
  let total = 0;
  for (const line of text.split('\n')) {
    if (line.startsWith('tsp2p_requests_refused_total{') && line.includes(`reason="${reason}"`)) {
      total += Number(line.slice(line.lastIndexOf(' ') + 1));
    }
  }
  return total;
}

test('a node without the secret cannot join or inject; membership and inbox are unchanged', async (t) => {
  const aIdentity = testIdentity();
  const bIdentity = testIdentity();
  const a = await startNode(t, { secret: SECRET, identity: aIdentity.privateKey });
  const b = await startNode(t, { secret: [SECRET], identity: bIdentity.privateKey });
  await b.connect(a.self);
  const got: Message[] = [];
  a.on('message', (m) => got.push(m));
  const before = ids(a.members());
  assert.deepEqual(before, [b.id]);

  // Joining without the secret, or with another one, fails, and leaves no trace.
  for (const secret of [undefined, OTHER, [OTHER, `${OTHER}!`]]) {
    const outsider = await startNode(t, secret === undefined ? {} : { secret });
    await assert.rejects(outsider.connect(a.self), (err: Error & { code?: string }) => {
      assert.equal(err.code, 'ERR_CONNECT_FAILED');
      assert.match(err.message, /401 network secret required/, err.message);
      return true;
    });
    assert.equal(outsider.isConnected, false);
  }
  assert.deepEqual(ids(a.members()), before);

  // Injecting: even a request signed by a real member is refused without a valid tag.
  const from = { address: b.self.address, port: b.self.port };
  const broadcast = (id: string) => signEnvelope({ type: 2, id, data: 'aGk=', from }, bIdentity);
  const disconnect = signEnvelope({ type: 1, data: null, from }, bIdentity);
  const attempts: [string, { body: string; headers: Record<string, string> }][] = [
    ['no tag', broadcast('i1')],
    ['a tag from another secret', broadcast('i2')],
    ['a tag of another body', broadcast('i3')],
    ['a malformed tag', broadcast('i4')],
    ['a disconnect without a tag', disconnect],
  ];
  attempts[1]![1].headers['tsp2p-auth'] = tagBody(attempts[1]![1].body, OTHER);
  attempts[2]![1].headers['tsp2p-auth'] = tagBody('{}', SECRET);
  attempts[3]![1].headers['tsp2p-auth'] = 'zzzz.not-a-tag';
  for (const [what, r] of attempts) {
    const answer = await rawRequest(a.self.port, r.body, { headers: r.headers });
    assert.equal(answer.status, 401, `${what}: ${answer.body}`);
    assert.equal(answer.body, 'network secret required: this request carries no valid tsp2p-auth tag\n');
    assert.equal(answer.headers['tsp2p-auth'], undefined, 'a refusal carries no tag');
  }
  // A gop2p-style request, even in compat mode: gop2p peers cannot hold the secret.
  const compat = await startNode(t, { secret: SECRET, compat: 'gop2p' });
  const gop2p = JSON.stringify({ type: 0, data: null, from: { address: '127.0.0.1', port: 40001 } });
  assert.equal((await rawRequest(compat.self.port, gop2p)).status, 401);
  assert.deepEqual(compat.members(), []);

  assert.deepEqual(ids(a.members()), before, 'the membership did not change');
  assert.equal(got.length, 0, 'nothing was delivered');
  assert.ok((await refusedCount(a, 'bad_network_tag')) >= 3);
  assert.ok((await refusedCount(a, 'no_network_tag')) >= 2);

  // The control: the same signed request with the right tag is accepted.
  const ok = broadcast('i5');
  const answer = await rawRequest(a.self.port, ok.body, {
    headers: { ...ok.headers, 'tsp2p-auth': tagBody(ok.body, SECRET) },
  });
  assert.equal(answer.status, 200, answer.body);
  assert.match(
    String(answer.headers['tsp2p-auth']),
    /^[0-9a-f]{8}\.[A-Za-z0-9_-]{43}$/,
    'the answer is tagged',
  );
  await waitFor(() => got.length === 1, { message: 'the tagged message to arrive' });
});

test("a node with the secret does not trust a node without it: the answer's tag is checked", async (t) => {
  const open = await startNode(t);
  const guarded = await startNode(t, { secret: SECRET });
  await assert.rejects(guarded.connect(open.self), (err: Error & { code?: string }) => {
    assert.equal(err.code, 'ERR_CONNECT_FAILED');
    assert.match(err.message, /not authenticated by the network secret/);
    return true;
  });
  assert.equal(guarded.isConnected, false);
  assert.deepEqual(guarded.members(), []);
});

test('the secrets rotate across a running network with no message lost', async (t) => {
  const OLD = 'the old network secret';
  const NEW = 'the new network secret';
  const nodes = [
    await startNode(t, { secret: OLD }),
    await startNode(t, { secret: OLD }),
    await startNode(t, { secret: OLD }),
  ];
  await nodes[1]!.connect(nodes[0]!.self);
  await nodes[2]!.connect(nodes[0]!.self);
  await waitFor(() => nodes.every((n) => n.members().length === 2), { message: 'a full mesh' });
  const received = nodes.map(() => new Map<string, number>());
  nodes.forEach((n, i) => {
    n.on('message', (m) => {
      received[i]!.set(m.text, (received[i]!.get(m.text) ?? 0) + 1);
    });
  });

  // Every node broadcasts without pause while the secrets change under it.
  let running = true;
  const sent = nodes.map(() => [] as string[]);
  const failures: string[] = [];
  const senders = nodes.map(async (n, i) => {
    for (let k = 0; running; k++) {
      const text = `n${i}-${k}`;
      const report = await n.broadcast(text);
      sent[i]!.push(text);
      for (const f of report.failed) failures.push(`${text} to ${f.peer.port}: ${f.error.message}`);
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
  });
  const progress = async (what: string): Promise<void> => {
    const mark = sent.map((s) => s.length);
    await waitFor(() => sent.every((s, i) => s.length >= mark[i]! + 20), {
      message: `traffic after ${what}`,
    });
  };

  await progress('the start');
  // Each step reaches every node, one at a time, before the next step begins.
  for (const step of [[OLD, NEW], [NEW, OLD], [NEW]]) {
    for (const n of nodes) {
      n.setSecret(step);
      await progress(`${n.self.port} took ${step.length} secret(s)`);
    }
  }
  running = false;
  await Promise.all(senders);

  assert.deepEqual(failures, [], 'no delivery failed');
  for (let i = 0; i < nodes.length; i++) {
    for (let j = 0; j < nodes.length; j++) {
      if (i === j) continue;
      const missing = sent[j]!.filter((text) => received[i]!.get(text) !== 1);
      assert.deepEqual(
        missing,
        [],
        `node ${i} got each of node ${j}'s ${sent[j]!.length} messages exactly once`,
      );
    }
  }
  for (const n of nodes) {
    assert.equal(await refusedCount(n, 'bad_network_tag'), 0);
    assert.equal(n.members().length, 2);
  }
  // The old secret no longer opens the network.
  const late = await startNode(t, { secret: OLD });
  await assert.rejects(late.connect(nodes[0]!.self), { code: 'ERR_CONNECT_FAILED' });
  const total = sent.reduce((s, x) => s + x.length, 0);
  t.diagnostic(`${total} broadcasts during the rotation, each delivered to both other nodes once`);
});
