/**
 * The attacks issue 19 listed as not tested yet, tried against real nodes on loopback with an
 * attacker built from PROTOCOL.md (test/helpers/insider.ts): impersonation in compat mode, an
 * outsider on a network with a secret, deeply nested JSON, 512-message batches at the size cap,
 * and flooding the relay's set of seen ids to get a message delivered twice. SECURITY.md's table
 * of attacks tried records each result.
 */

import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { type TestContext, test } from 'node:test';
import type { Message, Node } from '../../src/index.js';
import { maxBodyBytes } from '../../src/options.js';
import { rawRequest } from '../helpers/http-raw.js';
import { Insider } from '../helpers/insider.js';
import { startNode } from '../helpers/nodes.js';
import { waitFor } from '../helpers/wait.js';

/** A listener of the attacker's: answers `{"ack":true}` to everything, and keeps each body. */
async function home(t: TestContext): Promise<{ port: number; bodies: string[] }> {
  const bodies: string[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      bodies.push(Buffer.concat(chunks).toString());
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{"ack":true}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => server.close(() => resolve())));
  t.after(() => server.closeAllConnections());
  const address = server.address();
  assert.ok(address !== null && typeof address === 'object');
  return { port: address.port, bodies };
}

function inbox(t: TestContext, node: Node): Message[] {
  const got: Message[] = [];
  const listener = (m: Message): void => {
    got.push(m);
  };
  node.on('message', listener);
  t.after(() => node.off('message', listener));
  return got;
}

function insider(t: TestContext): Insider {
  const i = new Insider();
  t.after(() => i.close());
  return i;
}

const b64 = (s: string | Buffer) => Buffer.from(s).toString('base64');

test('compat mode: unsigned requests in a signed member’s name are refused; it stays a member', async (t) => {
  const a = await startNode(t, { compat: 'gop2p', name: 'ann' });
  const b = await startNode(t, { name: 'bob' });
  await b.connect(a.self);
  const got = inbox(t, a);
  const asB = { address: b.self.address, port: b.self.port };
  // gop2p-style (no v, no id, no key, no signature) from b's address: broadcast, leave, connect.
  for (const type of [2, 1, 0]) {
    const answer = await rawRequest(a.self.port, JSON.stringify({ type, data: b64('forged'), from: asB }));
    assert.equal(answer.status, 403, `type ${type}: ${answer.body}`);
  }
  // Claiming b's id without a signature: refused before anything else.
  const claim = await rawRequest(
    a.self.port,
    JSON.stringify({
      type: 2,
      data: b64('forged'),
      from: { ...asB, id: b.id },
      v: 1,
      id: 'x',
      ts: Date.now(),
    }),
  );
  assert.equal(claim.status, 401);
  // A signed member's news that calls b a gop2p member at its address changes nothing.
  const mallory = insider(t);
  const h = await home(t);
  const gop = { id: `${asB.address}:${asB.port}`, ...asB, kind: 'gop2p', state: 'left', inc: 9 };
  assert.equal((await mallory.gossip(a.self.port, h.port, [gop])).status, 200);
  const forgedGossip = await rawRequest(a.self.port, JSON.stringify({ type: 7, from: asB, m: [gop] }));
  assert.equal(forgedGossip.status, 405, 'a gop2p-style sender cannot send membership types');
  assert.deepEqual(
    a.members().map((p) => p.id),
    [b.id, mallory.id].filter((id) => a.members().some((p) => p.id === id)),
  );
  assert.ok(a.members().some((p) => p.id === b.id && p.port === b.self.port));
  const report = await b.broadcast('genuine');
  assert.deepEqual(report.failed, []);
  await waitFor(() => got.some((m) => m.text === 'genuine'));
  assert.equal(got.filter((m) => m.text === 'forged').length, 0, 'nothing forged was delivered');
});

test('an outsider without the secret gets 401 for everything it signs, and changes nothing', async (t) => {
  const secret = 'a secret of the network, 2026';
  const a = await startNode(t, { secret, name: 'ann' });
  const b = await startNode(t, { secret, name: 'bob' });
  await b.connect(a.self);
  const mallory = insider(t);
  const h = await home(t);
  const hijack = { id: b.id, address: '127.0.0.1', port: h.port, state: 'alive', inc: 2 ** 31 };
  for (const e of [
    mallory.envelope(0, h.port),
    mallory.envelope(4, h.port),
    mallory.envelope(7, h.port, { m: [hijack] }),
    mallory.envelope(2, h.port, { data: b64('hi') }),
  ]) {
    const answer = await mallory.post(a.self.port, e);
    assert.equal(answer.status, 401, answer.body);
    assert.match(answer.body, /^network secret required/);
  }
  assert.deepEqual(
    a.members().map((p) => p.id),
    [b.id],
  );
  assert.equal(a.members()[0]!.port, b.self.port);
  assert.equal(h.bodies.length, 0, 'the node never contacted the outsider');
});

test('deeply nested JSON is refused with 400 (or ignored where unknown), and the node carries on', async (t) => {
  const a = await startNode(t, { name: 'ann' });
  const b = await startNode(t, { name: 'bob' });
  await b.connect(a.self);
  const depth = 200_000;
  const nested = `${'['.repeat(depth)}${']'.repeat(depth)}`;
  const deepObject = `${'{"a":'.repeat(depth / 2)}1${'}'.repeat(depth / 2)}`;
  const bodies = [
    nested,
    `{"type":2,"data":"aGk=","from":${nested}}`,
    `{"type":2,"data":"aGk=","from":{"address":"127.0.0.1","port":1},"x":${deepObject}}`,
    `{"type":7,"from":{"address":"127.0.0.1","port":1},"m":[${deepObject}]}`,
  ];
  for (const body of bodies) {
    assert.ok(body.length < maxBodyBytes(1024 * 1024));
    const answer = await rawRequest(a.self.port, body);
    assert.ok([400, 401].includes(answer.status), `${answer.status} ${answer.body.slice(0, 80)}`);
  }
  const got = inbox(t, a);
  await b.broadcast('still here');
  await waitFor(() => got.some((m) => m.text === 'still here'));
});

test('a batch of 512 messages just under the body cap is delivered, one above it is refused with 413', async (t) => {
  const maxMessageBytes = 64 * 1024;
  // Few members: the body cap is then the message cap's (see maxBodyBytes).
  const a = await startNode(t, { name: 'ann', maxMessageBytes, maxMembers: 64 });
  const got = inbox(t, a);
  const mallory = insider(t);
  const h = await home(t);
  assert.equal((await mallory.post(a.self.port, mallory.envelope(0, h.port))).status, 200);
  const cap = maxBodyBytes(maxMessageBytes, 64);
  const batch = (seq: number, each: number) =>
    mallory.envelope(8, h.port, {
      stream: 'flood',
      seq,
      msgs: Array.from({ length: 512 }, (_, i) => ({
        type: 2,
        id: `b${seq}-${i}`,
        ts: Date.now(),
        data: b64(Buffer.alloc(each, i % 256)),
      })),
    });
  // Fill the body to just under the cap.
  let each = 1;
  while (batch(1, each + 24).body.length < cap) each += 24;
  const under = batch(1, each);
  assert.ok(under.body.length <= cap && under.body.length > cap - 40 * 512, `${under.body.length} of ${cap}`);
  const ok = await mallory.post(a.self.port, under);
  assert.equal(ok.status, 200, ok.body);
  await waitFor(() => got.length === 512, { message: 'the 512 messages delivered' });
  // Each message at the payload cap: far beyond the body cap, refused before it is read.
  const over = batch(513, maxMessageBytes);
  assert.ok(over.body.length > cap);
  const refused = await mallory.post(a.self.port, over);
  assert.equal(refused.status, 413);
});

test('flooding the relay’s seen set does not get a relayed broadcast delivered twice', async (t) => {
  const a = await startNode(t, { name: 'ann', dissemination: 'gossip' });
  const b = await startNode(t, { name: 'bob', dissemination: 'gossip' });
  await b.connect(a.self);
  const mallory = insider(t);
  const h = await home(t);
  // Mallory becomes a member of both (its own signed pings).
  for (const node of [a, b])
    assert.equal((await mallory.post(node.self.port, mallory.envelope(4, h.port))).status, 200);
  await waitFor(() => b.members().length === 2 && a.members().length === 2, { message: 'mallory a member' });
  const got = inbox(t, a);
  // b broadcasts; mallory captures b's message from the batch b sends it.
  await b.broadcast('once only');
  await waitFor(() => got.some((m) => m.text === 'once only'));
  const captured = await waitFor(() => {
    for (const body of h.bodies) {
      const env = JSON.parse(body) as {
        type: number;
        from: { key?: string };
        msgs?: Record<string, unknown>[];
      };
      const msg = env.type === 8 ? env.msgs?.find((m) => m.data === b64('once only')) : undefined;
      if (msg !== undefined) return { msg, key: env.from.key };
    }
    return undefined;
  });
  // 110,000 messages of mallory's own, relayed style, to push b's id out of a's seen set.
  let seq = 1;
  for (let batch = 0; batch < 11; batch++) {
    const msgs = Array.from({ length: 10_000 }, (_, i) => ({
      type: 2,
      id: `f${batch}-${i}`,
      ts: Date.now(),
      data: 'AA==',
      hops: 0,
    }));
    const answer = await mallory.post(
      a.self.port,
      mallory.envelope(8, h.port, { stream: 'seen', seq, msgs }),
    );
    assert.equal(answer.status, 200, answer.body);
    seq += msgs.length;
  }
  // Now b's message again, relayed by mallory with b's own signature.
  const replay = {
    ...captured.msg,
    hops: 1,
    origin: { id: b.id, address: b.self.address, port: b.self.port, key: captured.key },
  };
  const answer = await mallory.post(
    a.self.port,
    mallory.envelope(8, h.port, { stream: 'seen', seq, msgs: [replay] }),
  );
  assert.equal(answer.status, 200, answer.body);
  // Still once: a ping round trip later (a answered the batch after handing its messages on).
  await b.broadcast('after the replay');
  await waitFor(() => got.some((m) => m.text === 'after the replay'));
  assert.equal(got.filter((m) => m.text === 'once only').length, 1);
});
