import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { P2PError, type P2PErrorCode, TimeoutError } from '../../src/errors.js';
import type { Peer } from '../../src/peer.js';
import type { Message } from '../../src/types.js';
import { memoryHarness, settle } from '../helpers/unit-memory.js';

const SEED = process.env.TSP2P_SEED === undefined ? 7 : Number(process.env.TSP2P_SEED);

function hasCode(code: P2PErrorCode): (err: unknown) => boolean {
  return (err: unknown) => {
    assert.ok(err instanceof P2PError, `expected a P2PError ${code}, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    return true;
  };
}

/** A harness whose nodes are stopped after the test; prints the seed when the test fails. */
function setup(t: { after(fn: () => Promise<void>): void; name: string }) {
  const h = memoryHarness(SEED);
  t.after(async () => {
    await h.stopAll();
  });
  return h;
}

/** Two started nodes, `a` joined to `b`. */
async function pair(t: Parameters<typeof setup>[0]) {
  const h = setup(t);
  const a = h.node({ name: 'a' });
  const b = h.node({ name: 'b' });
  await a.start();
  await b.start();
  const report = await settle(h.clock, a.connect(b.self));
  return { ...h, a, b, report };
}

const addr = (p: Peer): string => `${p.address}:${p.port}`;

describe('Node lifecycle (memory transport, manual clock)', () => {
  test('methods that need a started node reject with ERR_NOT_STARTED', async (t) => {
    const h = setup(t);
    const node = h.node();
    assert.equal(node.status, 'stopped');
    assert.throws(() => node.self, hasCode('ERR_NOT_STARTED'));
    await assert.rejects(node.connect('127.0.0.1:5000'), hasCode('ERR_NOT_STARTED'));
    await assert.rejects(node.broadcast('hi'), hasCode('ERR_NOT_STARTED'));
    await assert.rejects(node.send('127.0.0.1:5000', 'hi'), hasCode('ERR_NOT_STARTED'));
    // Leaving and stopping a node that never started are no-ops.
    assert.deepEqual(await node.disconnect(), { notified: [], failed: [] });
    await node.stop();
    assert.equal(node.status, 'stopped');
  });

  test('start resolves with self; a second start rejects with ERR_ALREADY_STARTED', async (t) => {
    const h = setup(t);
    const node = h.node({ name: 'ada' });
    const self = await node.start();
    assert.deepEqual(self, { id: node.id, address: '127.0.0.1', port: self.port, name: 'ada' });
    assert.ok(self.port > 0);
    assert.equal(node.status, 'started');
    await assert.rejects(node.start(), hasCode('ERR_ALREADY_STARTED'));
    assert.equal(node.status, 'started', 'the failed start changed nothing');
  });

  test('concurrent starts: one succeeds, the other rejects with ERR_ALREADY_STARTED', async (t) => {
    const h = setup(t);
    const node = h.node();
    const results = await Promise.allSettled([node.start(), node.start()]);
    assert.equal(results.filter((r) => r.status === 'fulfilled').length, 1);
    const rejected = results.find((r) => r.status === 'rejected');
    assert.ok(rejected && hasCode('ERR_ALREADY_STARTED')(rejected.reason));
  });

  test('a port that is taken rejects with ERR_ADDRESS_IN_USE and leaves the node stopped', async (t) => {
    const h = setup(t);
    const first = h.node({ port: 6001 });
    await first.start();
    const second = h.node({ port: 6001 });
    await assert.rejects(second.start(), hasCode('ERR_ADDRESS_IN_USE'));
    assert.equal(second.status, 'stopped');
    await first.stop();
    await second.start();
    assert.equal(second.self.port, 6001);
  });

  test('broadcast and send before connect reject with ERR_NOT_CONNECTED', async (t) => {
    const h = setup(t);
    const node = h.node();
    await node.start();
    assert.equal(node.isConnected, false);
    await assert.rejects(node.broadcast('hi'), hasCode('ERR_NOT_CONNECTED'));
    await assert.rejects(node.send('127.0.0.1:5000', 'hi'), hasCode('ERR_NOT_CONNECTED'));
  });

  test('connect to this node itself rejects with ERR_INVALID_ADDRESS', async (t) => {
    const h = setup(t);
    const node = h.node();
    const self = await node.start();
    for (const target of [self, addr(self), `localhost:${self.port}`, `http://127.0.0.1:${self.port}/`]) {
      await assert.rejects(node.connect(target), hasCode('ERR_INVALID_ADDRESS'), JSON.stringify(target));
    }
    assert.equal(node.isConnected, false);
  });

  test('connect to a malformed address rejects with ERR_INVALID_ADDRESS', async (t) => {
    const h = setup(t);
    const node = h.node();
    await node.start();
    for (const target of ['', 'nope', '127.0.0.1:0', 'ftp://127.0.0.1:5000', '::1:5000']) {
      await assert.rejects(node.connect(target), hasCode('ERR_INVALID_ADDRESS'), target);
    }
  });

  test('connect to an address nobody listens on rejects with ERR_CONNECT_FAILED', async (t) => {
    const h = setup(t);
    const node = h.node();
    await node.start();
    await assert.rejects(settle(h.clock, node.connect('127.0.0.1:9')), (err: unknown) => {
      hasCode('ERR_CONNECT_FAILED')(err);
      assert.equal(((err as P2PError).cause as P2PError).code, 'ERR_PEER_UNREACHABLE');
      return true;
    });
    assert.equal(node.isConnected, false);
    assert.deepEqual(node.members(), []);
  });

  test('connect to an entry point that never answers times out with ERR_CONNECT_FAILED', async (t) => {
    const h = setup(t);
    const a = h.node({ requestTimeoutMs: 500 });
    const b = h.node();
    await a.start();
    await b.start();
    h.network.partition([[addr(a.self)], [addr(b.self)]]);
    const pending = a.connect(b.self);
    await h.clock.advance(499);
    assert.equal(a.isConnected, false);
    await assert.rejects(settle(h.clock, pending), (err: unknown) => {
      hasCode('ERR_CONNECT_FAILED')(err);
      assert.ok((err as P2PError).cause instanceof TimeoutError);
      return true;
    });
    h.network.heal();
    assert.deepEqual(b.members(), [], 'the entry point never heard of a');
  });

  test('an entry point that answers after the request timeout is given twice as long on the second try', async (t) => {
    const h = setup(t);
    const a = h.node({ requestTimeoutMs: 500 });
    const b = h.node();
    await a.start();
    await b.start();
    // 300 ms each way: the answer comes 600 ms after each connect, after the first try's 500 ms
    // and within the second's 1,000 ms.
    h.network.setLatency(300);
    await settle(h.clock, a.connect(b.self));
    assert.equal(a.isConnected, true);
    assert.deepEqual(
      a.members().map((p) => p.id),
      [b.id],
    );
  });

  test('connect with an aborted signal rejects with the signal’s reason', async (t) => {
    const h = setup(t);
    const a = h.node();
    const b = h.node();
    await a.start();
    await b.start();
    const reason = new Error('changed my mind');
    await assert.rejects(a.connect(b.self, { signal: AbortSignal.abort(reason) }), (err) => err === reason);
    const ac = new AbortController();
    const pending = a.connect(b.self, { signal: ac.signal });
    ac.abort(reason);
    await assert.rejects(settle(h.clock, pending), (err) => err === reason);
  });

  test('connect joins both nodes; each sees the other as a member', async (t) => {
    const { a, b, report } = await pair(t);
    assert.deepEqual(report.entry, b.self);
    assert.deepEqual(report.members, [b.self]);
    assert.deepEqual(report.failed, []);
    assert.equal(a.isConnected, true);
    assert.equal(b.isConnected, true, 'an entry point is connected once someone joined it');
    assert.deepEqual(a.members(), [b.self]);
    assert.deepEqual(b.members(), [a.self]);
  });

  test('a third node joining learns every member', async (t) => {
    const { a, b, clock, node } = await pair(t);
    const c = node({ name: 'c' });
    await c.start();
    const report = await settle(clock, c.connect(addr(a.self)));
    assert.deepEqual(report.failed, []);
    const ids = (peers: Peer[]): string[] => peers.map((p) => p.id).sort();
    assert.deepEqual(ids(c.members()), ids([a.self, b.self]));
    assert.deepEqual(ids(a.members()), ids([b.self, c.self]));
    assert.deepEqual(ids(b.members()), ids([a.self, c.self]));
  });

  test('member:join fires on the entry point with the member already in the table', async (t) => {
    const h = setup(t);
    const a = h.node();
    const b = h.node();
    await a.start();
    await b.start();
    const joinedB: Peer[] = [];
    let membersAtEvent: Peer[] = [];
    b.on('member:join', (p) => {
      joinedB.push(p);
      membersAtEvent = b.members();
    });
    await settle(h.clock, a.connect(b.self));
    await h.clock.advance(1);
    assert.deepEqual(joinedB, [a.self]);
    assert.deepEqual(membersAtEvent, [a.self]);
  });

  test('send to a non-member rejects with ERR_UNKNOWN_PEER and sends nothing', async (t) => {
    const { a, network } = await pair(t);
    const before = network.stats.requests;
    await assert.rejects(a.send('127.0.0.1:9', 'psst'), hasCode('ERR_UNKNOWN_PEER'));
    await assert.rejects(
      a.send({ id: 'nobody', address: '127.0.0.1', port: 9 }, 'psst'),
      hasCode('ERR_UNKNOWN_PEER'),
    );
    await assert.rejects(a.send([a.members()[0]!, '127.0.0.1:9'], 'psst'), hasCode('ERR_UNKNOWN_PEER'));
    await assert.rejects(a.send([], 'psst'), hasCode('ERR_INVALID_ADDRESS'));
    await assert.rejects(a.send('not an address', 'psst'), hasCode('ERR_INVALID_ADDRESS'));
    assert.equal(network.stats.requests, before, 'nothing was sent');
  });

  test('payloads over maxMessageBytes reject with ERR_MESSAGE_TOO_LARGE; non-payloads with ERR_INVALID_MESSAGE', async (t) => {
    const h = setup(t);
    const a = h.node({ maxMessageBytes: 4 });
    const b = h.node();
    await a.start();
    await b.start();
    await settle(h.clock, a.connect(b.self));
    await assert.rejects(a.broadcast('12345'), hasCode('ERR_MESSAGE_TOO_LARGE'));
    await assert.rejects(a.broadcast(new Uint8Array(5)), hasCode('ERR_MESSAGE_TOO_LARGE'));
    await assert.rejects(a.send(b.self, 'éèà'), hasCode('ERR_MESSAGE_TOO_LARGE'), '6 bytes of UTF-8');
    await assert.rejects(a.broadcast(42 as unknown as string), hasCode('ERR_INVALID_MESSAGE'));
    const ok = await settle(h.clock, a.broadcast('1234'));
    assert.deepEqual(ok.delivered, [b.self]);
  });

  test('broadcast and send deliver through messages() and the message event', async (t) => {
    const { a, b, clock } = await pair(t);
    const events: Message[] = [];
    b.on('message', (m) => events.push(m));
    const inbox = b.messages();
    const report = await settle(clock, a.broadcast('hello'));
    assert.deepEqual(report.delivered, [b.self]);
    assert.deepEqual(report.failed, []);
    const direct = await settle(clock, b.send(a.self, new Uint8Array([1, 2, 3])));
    assert.deepEqual(direct.delivered, [a.self]);
    const sent = await settle(clock, a.send(addr(b.self), 'psst'));
    assert.notEqual(sent.id, report.id);

    const first = await inbox.next();
    assert.equal(first.done, false);
    const m1 = first.value as Message;
    assert.equal(m1.id, report.id);
    assert.equal(m1.type, 'broadcast');
    assert.equal(m1.text, 'hello');
    assert.deepEqual(m1.from, a.self);
    const m2 = (await inbox.next()).value as Message;
    assert.equal(m2.type, 'direct');
    assert.equal(m2.text, 'psst');
    await clock.advance(1);
    assert.deepEqual(
      events.map((m) => m.text),
      ['hello', 'psst'],
    );
  });

  test('after a member stops, broadcasts still reach the others', async (t) => {
    const { a, b, clock, node } = await pair(t);
    const c = node();
    await c.start();
    await settle(clock, c.connect(a.self));
    const messages = c.messages();
    await settle(clock, b.stop());
    const report = await settle(clock, a.broadcast('still here?'));
    assert.deepEqual(report.delivered, [c.self]);
    // b left gracefully on stop, so a no longer lists it.
    assert.deepEqual(report.failed, []);
    assert.equal(((await messages.next()).value as Message).text, 'still here?');
  });

  test('a killed member shows in failed, with a P2PError', async (t) => {
    const { a, b, clock, network } = await pair(t);
    network.kill(addr(b.self));
    const report = await settle(clock, a.broadcast('anyone?'));
    assert.deepEqual(report.delivered, []);
    assert.equal(report.failed.length, 1);
    assert.deepEqual(report.failed[0]!.peer, b.self);
    assert.ok(report.failed[0]!.error instanceof P2PError);
  });

  test('disconnect tells the members, empties the table, and may be called again', async (t) => {
    const { a, b, clock } = await pair(t);
    const left: Peer[] = [];
    b.on('member:leave', (p) => left.push(p));
    const report = await settle(clock, a.disconnect());
    assert.deepEqual(report.notified, [b.self]);
    assert.deepEqual(report.failed, []);
    assert.equal(a.isConnected, false);
    assert.deepEqual(a.members(), []);
    await clock.advance(1);
    assert.deepEqual(left, [a.self]);
    assert.deepEqual(b.members(), []);
    assert.equal(b.isConnected, false, 'its last member left');
    assert.deepEqual(await a.disconnect(), { notified: [], failed: [] });
    assert.equal(a.status, 'started', 'the node stays started');
    await assert.rejects(a.broadcast('x'), hasCode('ERR_NOT_CONNECTED'));
    // And it may join again.
    await settle(clock, a.connect(b.self));
    assert.deepEqual(a.members(), [b.self]);
  });

  test('stop is idempotent, leaves gracefully, and a stopped node can start again', async (t) => {
    const { a, b, clock } = await pair(t);
    const stops = [a.stop(), a.stop()];
    await settle(clock, Promise.all(stops));
    assert.equal(a.status, 'stopped');
    assert.equal(a.isConnected, false);
    await a.stop();
    assert.deepEqual(b.members(), [], 'b was told');
    await assert.rejects(a.broadcast('x'), hasCode('ERR_NOT_STARTED'));
    await assert.rejects(a.connect(b.self), hasCode('ERR_NOT_STARTED'));
    await a.start();
    await settle(clock, a.connect(b.self));
    assert.deepEqual(b.members(), [a.self]);
  });

  test('Symbol.asyncDispose stops the node', async (t) => {
    const h = setup(t);
    const node = h.node();
    await node.start();
    await node[Symbol.asyncDispose]();
    assert.equal(node.status, 'stopped');
  });

  test('messages() iterators end on stop, and a waiting next() resolves done', async (t) => {
    const { a, b, clock } = await pair(t);
    const waiting = b.messages();
    const buffered = b.messages();
    await settle(clock, a.broadcast('last words'));
    const next = waiting.next();
    assert.equal(((await next).value as Message).text, 'last words');
    const pending = waiting.next();
    const collected: string[] = [];
    const loop = (async () => {
      for await (const m of buffered) collected.push(m.text);
    })();
    await settle(clock, b.stop());
    assert.deepEqual(await pending, { value: undefined, done: true });
    await loop;
    assert.deepEqual(collected, ['last words']);
    // An ended iterator stays ended.
    assert.deepEqual(await waiting.next(), { value: undefined, done: true });
  });

  test('messages({ signal }) ends when the signal aborts; each iterator gets every message', async (t) => {
    const { a, b, clock } = await pair(t);
    const ac = new AbortController();
    const aborted = b.messages({ signal: ac.signal });
    const other = b.messages();
    await settle(clock, a.broadcast('one'));
    ac.abort();
    await settle(clock, a.broadcast('two'));
    assert.equal(((await aborted.next()).value as Message).text, 'one');
    assert.deepEqual(await aborted.next(), { value: undefined, done: true });
    assert.equal(((await other.next()).value as Message).text, 'one');
    assert.equal(((await other.next()).value as Message).text, 'two');
    const already = b.messages({ signal: AbortSignal.abort() });
    assert.deepEqual(await already.next(), { value: undefined, done: true });
  });

  test('messages() buffers at most bufferSize messages, dropping the oldest', async (t) => {
    const { a, b, clock } = await pair(t);
    const inbox = b.messages({ bufferSize: 2 });
    for (const text of ['1', '2', '3']) await settle(clock, a.broadcast(text));
    const texts: string[] = [];
    texts.push(((await inbox.next()).value as Message).text);
    texts.push(((await inbox.next()).value as Message).text);
    assert.deepEqual(texts, ['2', '3']);
    await inbox.return?.();
  });
});
