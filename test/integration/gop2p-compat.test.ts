/**
 * Compatibility with gop2p on the wire, against the recorded exchanges
 * (`/work/shared/gop2p-wire/exchanges.json`) and a gop2p-behaving peer (test/helpers/gop2p-peer.ts).
 */

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import type { Message, Node, Peer } from '../../src/index.js';
import { type GoMember, GoPeer } from '../helpers/gop2p-peer.js';
import { postJson, rawRequest } from '../helpers/http-raw.js';
import { addressOf, ids, startNode } from '../helpers/nodes.js';
import { collect, onceEvent, waitFor } from '../helpers/wait.js';

interface Exchanges {
  requests_sent_by_a_go_node: { what: string; headers?: Record<string, string>; body: string }[];
  answers_of_a_go_node: { request: string; status: number; body: string }[];
}

const EXCHANGES = JSON.parse(readFileSync('/work/shared/gop2p-wire/exchanges.json', 'utf8')) as Exchanges;

/** A request a Go node sent, exactly as recorded, found by the start of its description. */
function recorded(what: string): { headers: Record<string, string>; body: string } {
  const found = EXCHANGES.requests_sent_by_a_go_node.find((r) => r.what.startsWith(what));
  assert.ok(found, `no recorded request '${what}'`);
  const headers = found.headers ?? EXCHANGES.requests_sent_by_a_go_node[0]!.headers!;
  return {
    headers: { ...headers, 'content-length': String(Buffer.byteLength(found.body)) },
    body: found.body,
  };
}

/** A gop2p double: `'0.0.0.0'` is gop2p's chat example; the default names itself 127.0.0.1. */
async function startGo(t: { after(fn: () => unknown): void }, advertise?: '0.0.0.0'): Promise<GoPeer> {
  const peer = await GoPeer.start({ flavour: advertise === '0.0.0.0' ? 'chat' : 'library' });
  t.after(() => peer.stop());
  return peer;
}

/** The id a tsp2p node gives a gop2p peer reached at 127.0.0.1. */
function goId(go: GoPeer): string {
  return `127.0.0.1:${go.self.port}`;
}

function member(node: Node): GoMember {
  return { address: node.self.address, port: node.self.port };
}

/**
 * The name a gop2p peer knows a compat node by: gop2p's chat names every node `0.0.0.0:PORT`
 * (it dials `connect PORT` so); a library user the address it was given.
 */
function knownAs(go: GoPeer, node: Node): GoMember {
  return go.flavour === 'chat' ? { address: '0.0.0.0', port: node.self.port } : member(node);
}

function messages(node: Node): Message[] {
  const got: Message[] = [];
  node.on('message', (m) => got.push(m));
  return got;
}

function isGoMemberList(value: unknown): value is GoMember[] {
  return (
    Array.isArray(value) &&
    value.every(
      (m) =>
        typeof m === 'object' &&
        m !== null &&
        typeof (m as GoMember).address === 'string' &&
        Number.isInteger((m as GoMember).port),
    )
  );
}

test('a compat node answers the recorded gop2p connect with a Go member list', async (t) => {
  const a = await startNode(t, { compat: 'gop2p', leaveTimeoutMs: 500 });
  const b = await startNode(t);
  await b.connect(a.self);
  const joins = collect<[Peer]>(a, 'member:join');
  t.after(() => joins.stop());

  const connect = recorded('connect to the entry point');
  const answer = await rawRequest(a.self.port, connect.body, { headers: connect.headers });
  assert.equal(answer.status, 200, answer.body);
  assert.match(String(answer.headers['content-type']), /^text\/plain/);
  const list: unknown = JSON.parse(answer.body);
  assert.ok(isGoMemberList(list), `not a Go member list: ${answer.body}`);
  // The list as it stood before the newcomer: b only; never a itself, never the newcomer. The
  // newcomer names itself 0.0.0.0 (gop2p's chat): b is listed as it will name itself to it.
  assert.deepEqual(
    list.map((m) => addressOf(m)),
    [`0.0.0.0:${b.self.port}`],
  );
  // The newcomer advertised 0.0.0.0: it is known by the address it came from.
  await waitFor(() => joins.items.some(([p]) => p.id === '127.0.0.1:6100'), {
    message: 'a to see 6100 join',
  });
  const newcomer = a.members().find((m) => m.port === 6100);
  assert.deepEqual(newcomer, { id: '127.0.0.1:6100', address: '127.0.0.1', port: 6100 });

  // A second newcomer gets the list before it: b and the first newcomer.
  const second = connect.body.replace('6100', '6101');
  const answer2 = await rawRequest(a.self.port, second, {
    headers: {
      ...connect.headers,
      host: '0.0.0.0:6101',
      'content-length': String(Buffer.byteLength(second)),
    },
  });
  assert.equal(answer2.status, 200);
  assert.deepEqual(
    (JSON.parse(answer2.body) as GoMember[]).map((m) => addressOf(m)).sort(),
    [`0.0.0.0:${b.self.port}`, '0.0.0.0:6100'].sort(),
  );

  // The recorded broadcast, direct message and disconnect from the first newcomer.
  const got = messages(a);
  const broadcast = recorded('broadcast');
  assert.equal((await rawRequest(a.self.port, broadcast.body, { headers: broadcast.headers })).status, 200);
  const direct = recorded('direct message');
  assert.equal((await rawRequest(a.self.port, direct.body, { headers: direct.headers })).status, 200);
  await waitFor(() => got.length === 2, { message: 'two messages at a' });
  assert.deepEqual(
    got.map((m) => [m.type, m.text, m.from.id]),
    [
      ['broadcast', 'hello world', '127.0.0.1:6100'],
      ['direct', 'private', '127.0.0.1:6100'],
    ],
  );
  const left = onceEvent<[Peer]>(a, 'member:leave');
  const disconnect = recorded('disconnect');
  assert.equal((await rawRequest(a.self.port, disconnect.body, { headers: disconnect.headers })).status, 200);
  assert.equal((await left)[0].id, '127.0.0.1:6100');
  assert.deepEqual(a.members().map(addressOf).sort(), [addressOf(b.self), '127.0.0.1:6101'].sort());
});

test('a compat node answers like gop2p to the recorded refusals', async (t) => {
  const a = await startNode(t, { compat: 'gop2p' });
  const b = await startNode(t);
  await b.connect(a.self);
  // The recorded state: 127.0.0.1:6001 is a member (it joined the gop2p way).
  const join = await rawRequest(
    a.self.port,
    '{"type":0,"data":null,"from":{"port":6001,"address":"127.0.0.1"}}',
  );
  assert.equal(join.status, 200);
  const before = ids(a.members());
  assert.ok(before.includes('127.0.0.1:6001'));
  for (const exchange of EXCHANGES.answers_of_a_go_node) {
    if (exchange.status === 200 || exchange.request.startsWith('GET')) continue;
    // Type 4 is unknown to gop2p but is one of tsp2p's own types: replay it with a type that
    // neither knows.
    const request =
      exchange.status === 405 ? exchange.request.replace('"type":4', '"type":99') : exchange.request;
    if (exchange.status === 405) assert.notEqual(request, exchange.request, 'the unknown type was replaced');
    const answer = await rawRequest(a.self.port, request);
    assert.equal(answer.status, exchange.status, `${exchange.request} -> ${answer.body}`);
    // tsp2p keeps gop2p's words and may say more on the same line.
    assert.ok(answer.body.startsWith(exchange.body.trimEnd()), answer.body);
  }
  const get = await rawRequest(a.self.port, undefined, { method: 'GET' });
  assert.equal(get.status, 400);
  assert.ok(get.body.startsWith('No valid Message provided'));
  assert.deepEqual(ids(a.members()), before);
});

test('a compat node joins through a gop2p entry point and talks both ways', async (t) => {
  const entry = await startGo(t); // advertises 127.0.0.1: the usual Host header would be refused
  const other = await startGo(t);
  await other.connect(entry.address);
  assert.deepEqual(entry.members, [other.self]);

  // Without the Host quirk, the entry point refuses: the test below is not trivially passing.
  const plain = await postJson(entry.self.port, {
    type: 0,
    data: null,
    from: { port: 1, address: '127.0.0.1' },
  });
  assert.equal(plain.status, 400);
  assert.equal(plain.body.trim(), 'You can not connect with yourself.');

  const node = await startNode(t, { compat: 'gop2p', leaveTimeoutMs: 1_000 });
  const report = await node.connect(entry.address);
  assert.equal(report.entry.id, goId(entry));
  assert.deepEqual(report.failed, []);
  assert.deepEqual(ids(report.members), [goId(entry), goId(other)].sort());
  // Both gop2p peers registered it, and saw its own address in the Host header.
  assert.ok(entry.isMember(member(node)));
  assert.ok(other.isMember(member(node)));
  for (const go of [entry, other]) {
    const hosts = go.requests.filter((r) => r.body.includes(`"port":${node.self.port}`)).map((r) => r.host);
    assert.ok(hosts.length > 0);
    for (const host of hosts) assert.equal(host, addressOf(node.self));
  }

  // tsp2p -> gop2p: broadcast and direct.
  const sent = await node.broadcast('hello gophers');
  assert.deepEqual(ids(sent.delivered), [goId(entry), goId(other)].sort());
  assert.deepEqual(sent.failed, []);
  for (const go of [entry, other]) {
    const got = go.messages('hello gophers');
    assert.equal(got.length, 1);
    assert.deepEqual(got[0]?.from, member(node));
    assert.equal(got[0]?.type, 2);
  }
  const dm = await node.send(other.address, 'psst, other');
  assert.deepEqual(ids(dm.delivered), [goId(other)]);
  assert.equal(other.messages('psst, other')[0]?.type, 3);
  assert.deepEqual(other.messages('psst, other')[0]?.to, [other.self]);
  assert.equal(entry.messages('psst, other').length, 0);

  // gop2p -> tsp2p: broadcast and direct.
  const got = messages(node);
  const fromEntry = await entry.broadcast('hello from go');
  assert.equal(fromEntry.failedAt, undefined);
  assert.deepEqual(fromEntry.sent, [other.self, member(node)]);
  const fromOther = await other.dm(addressOf(node.self), 'direct from go');
  assert.equal(fromOther.failedAt, undefined);
  await waitFor(() => got.length === 2, { message: 'two messages from the gop2p peers' });
  assert.deepEqual(
    got.map((m) => [m.type, m.text, m.from.id]),
    [
      ['broadcast', 'hello from go', goId(entry)],
      ['direct', 'direct from go', goId(other)],
    ],
  );

  // Leaving: a gop2p leave is seen, and a tsp2p leave is accepted by gop2p.
  const left = onceEvent<[Peer]>(node, 'member:leave');
  await other.disconnect();
  assert.equal((await left)[0].id, goId(other));
  assert.deepEqual(ids(node.members()), [goId(entry)]);
  const bye = await node.disconnect();
  assert.deepEqual(ids(bye.notified), [goId(entry)]);
  assert.equal(entry.isMember(member(node)), false);
});

test('gop2p-style peers join a tsp2p network and talk both ways', async (t) => {
  const a = await startNode(t, { compat: 'gop2p', leaveTimeoutMs: 1_000 });
  const b = await startNode(t, { compat: 'gop2p', leaveTimeoutMs: 1_000 });
  await b.connect(a.self);
  const goAny = await startGo(t, '0.0.0.0'); // as gop2p's chat example
  const goLocal = await startGo(t); // advertises 127.0.0.1

  // gop2p's chat joins with `connect PORT`, and gets the members in the names it will match:
  // each tsp2p node as it will name itself towards the chat, 0.0.0.0:PORT.
  const { answer } = await goAny.connect(a.self.port);
  assert.deepEqual(
    (JSON.parse(answer!.body) as GoMember[]).map((m) => addressOf(m)),
    [addressOf(knownAs(goAny, b))],
  );
  assert.deepEqual(goAny.members, [knownAs(goAny, b), knownAs(goAny, a)], 'the entry point is added last');
  await goLocal.connect(addressOf(b.self));
  // A gop2p member is listed as it names itself (0.0.0.0 for the chat).
  assert.deepEqual(
    goLocal.members.map((m) => addressOf(m)),
    [addressOf(a.self), goAny.name, addressOf(b.self)],
  );
  assert.ok(goAny.isMember(goLocal.self), 'the gop2p peers met through the tsp2p entry point');
  for (const node of [a, b]) {
    await waitFor(() => node.members().length === 3, { message: 'a and b to know both gop2p peers' });
    assert.deepEqual(ids(node.members()), [node === a ? b.id : a.id, goId(goAny), goId(goLocal)].sort());
    const seen = node.members().find((m) => m.id === goId(goAny));
    assert.equal(seen?.address, '127.0.0.1', 'the 0.0.0.0 peer is known by its source address');
  }

  // gop2p -> tsp2p.
  const gotA = messages(a);
  const gotB = messages(b);
  const s1 = await goAny.broadcast('any says hi');
  // b listed goAny as it names itself (0.0.0.0), so goLocal takes its messages too.
  assert.deepEqual(s1, { sent: [knownAs(goAny, b), knownAs(goAny, a), goLocal.self] });
  assert.equal(goLocal.requests.at(-1)?.status, 200);
  const s2 = await goLocal.dm(addressOf(a.self), 'local to a');
  assert.equal(s2.failedAt, undefined);
  await waitFor(() => gotA.length === 2 && gotB.length === 1, { message: 'messages from the gop2p peers' });
  assert.deepEqual(
    gotA.map((m) => [m.type, m.text, m.from.id]),
    [
      ['broadcast', 'any says hi', goId(goAny)],
      ['direct', 'local to a', goId(goLocal)],
    ],
  );
  assert.deepEqual(
    gotB.map((m) => [m.type, m.text, m.from.id]),
    [['broadcast', 'any says hi', goId(goAny)]],
  );
  assert.deepEqual(goLocal.messages('any says hi')[0]?.from, goAny.self);

  // tsp2p -> gop2p.
  const r1 = await a.broadcast('a says hi');
  assert.deepEqual(ids(r1.delivered), [b.id, goId(goAny), goId(goLocal)].sort());
  assert.deepEqual(r1.failed, []);
  for (const go of [goAny, goLocal]) assert.deepEqual(go.messages('a says hi')[0]?.from, knownAs(go, a));
  const r2 = await b.send([goId(goAny), goLocal.address], 'b to both');
  assert.deepEqual(ids(r2.delivered), [goId(goAny), goId(goLocal)].sort());
  for (const go of [goAny, goLocal]) {
    const m = go.messages('b to both');
    assert.equal(m.length, 1);
    assert.equal(m[0]?.type, 3);
    assert.deepEqual(m[0]?.from, knownAs(go, b));
  }

  // A tsp2p node joining later announces itself to the gop2p members too (Host quirk included).
  const c = await startNode(t, { compat: 'gop2p', leaveTimeoutMs: 1_000 });
  const joined = await c.connect(a.self);
  assert.deepEqual(joined.failed, []);
  assert.deepEqual(ids(joined.members), [a.id, b.id, goId(goAny), goId(goLocal)].sort());
  assert.ok(goLocal.isMember(knownAs(goLocal, c)));
  assert.ok(goAny.isMember(knownAs(goAny, c)));
  const gotC = messages(c);
  await goLocal.broadcast('local to all');
  await waitFor(() => gotC.some((m) => m.text === 'local to all'), { message: 'c to hear goLocal' });

  // A gop2p leave is seen by every tsp2p node.
  const leaves = [a, b, c].map((n) =>
    onceEvent<[Peer]>(n, 'member:leave', { filter: (p) => p.id === goId(goAny) }),
  );
  await goAny.disconnect();
  await Promise.all(leaves);
  for (const n of [a, b, c]) assert.ok(!n.members().some((m) => m.id === goId(goAny)));
});

test('without compat mode, gop2p requests get 401 (unsigned) and a gop2p entry point is refused', async (t) => {
  const node = await startNode(t, { requestTimeoutMs: 2_000, leaveTimeoutMs: 1_000 });
  const other = await startNode(t);
  await other.connect(node.self);
  const before = ids(node.members());

  for (const what of ['connect to the entry point', 'broadcast', 'direct message', 'disconnect']) {
    const r = recorded(what);
    const answer = await rawRequest(node.self.port, r.body, { headers: r.headers });
    assert.equal(answer.status, 401, `${what}: ${answer.body}`);
    assert.match(answer.body, /^gop2p-style request refused: .*compat/);
  }
  assert.deepEqual(ids(node.members()), before);

  // A gop2p entry point that refuses the usual Host header.
  const goLocal = await startGo(t);
  const loner = await startNode(t, { requestTimeoutMs: 2_000, leaveTimeoutMs: 1_000 });
  await assert.rejects(loner.connect(goLocal.address), { code: 'ERR_CONNECT_FAILED' });
  // A gop2p entry point that accepts it: the node refuses to stay, and undoes its registration.
  const goAny = await startGo(t, '0.0.0.0');
  await assert.rejects(loner.connect(goAny.address), { code: 'ERR_CONNECT_FAILED' });
  assert.equal(loner.isConnected, false);
  assert.deepEqual(loner.members(), []);
  await waitFor(() => goAny.requests.length === 2, { message: 'the undoing disconnect at the gop2p peer' });
  assert.deepEqual(goAny.members, []);
  assert.equal(goAny.requests[1]?.status, 200);

  // A tsp2p entry point whose members include a gop2p peer: that one is skipped and reported.
  const mixed = await startNode(t, { compat: 'gop2p' });
  const goMember = await startGo(t);
  await goMember.connect(addressOf(mixed.self));
  const report = await loner.connect(mixed.self);
  assert.deepEqual(ids(report.members), [mixed.id]);
  assert.deepEqual(
    report.failed.map((f) => f.peer.id),
    [goId(goMember)],
  );
  assert.equal(goMember.isMember(member(loner)), false);
});
