/**
 * The local API and the event feed over raw HTTP: who may write (this machine, or the token
 * holder), the Origin check on every write, the event feed's contents, the API's errors, and
 * that stop() ends open feeds so that the process can exit.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Message, Node } from '../../src/index.js';
import { checkFeed, checkWrite } from '../../src/web/access.js';
import { rawRequest } from '../helpers/http-raw.js';
import { startNode } from '../helpers/nodes.js';
import { runStopExitChild } from '../helpers/stop-exit-child.js';
import { waitFor, withDeadline } from '../helpers/wait.js';
import { type Feed, openFeed, postApi, sampleValue } from '../helpers/web-client.js';

async function pair(t: Parameters<typeof startNode>[0]): Promise<{ a: Node; b: Node; got: Message[] }> {
  const a = await startNode(t, { name: 'ada', preset: 'local' });
  const b = await startNode(t, { name: 'bob', preset: 'local' });
  await b.connect(a.self);
  await waitFor(() => a.members().some((p) => p.id === b.id), { message: 'a to know b' });
  const got: Message[] = [];
  b.on('message', (m) => got.push(m));
  return { a, b, got };
}

function assertOneLine(body: string, what: string): void {
  assert.ok(
    body.endsWith('\n') && body.indexOf('\n') === body.length - 1,
    `${what}: one line: ${JSON.stringify(body)}`,
  );
}

async function metricsOf(node: Node): Promise<string> {
  return (await rawRequest(node.self.port, undefined, { method: 'GET', path: '/metrics' })).body;
}

test('writes from this machine are allowed: broadcast and direct message', async (t) => {
  const { a, b, got } = await pair(t);
  const port = a.self.port;
  const own = `http://127.0.0.1:${port}`;
  const r1 = await postApi(
    port,
    '/api/broadcast',
    { text: 'to all' },
    { origin: own, 'sec-fetch-site': 'same-origin' },
  );
  assert.equal(r1.status, 200, r1.body);
  const r2 = await postApi(
    port,
    '/api/send',
    { to: b.id, text: 'just you' },
    { origin: `http://localhost:${port}` },
  );
  assert.equal(r2.status, 200, r2.body);
  const r3 = await postApi(port, '/api/send', { to: [`127.0.0.1:${b.self.port}`], text: 'by address' });
  assert.equal(r3.status, 200, r3.body);
  assert.deepEqual(
    (JSON.parse(r3.body) as { delivered: { id: string }[] }).delivered.map((p) => p.id),
    [b.id],
  );
  await waitFor(() => got.length === 3, { message: 'b to get three messages' });
  assert.deepEqual(
    got.map((m) => [m.type, m.text, m.from.id]),
    [
      ['broadcast', 'to all', a.id],
      ['direct', 'just you', a.id],
      ['direct', 'by address', a.id],
    ],
  );
});

test('a cross-origin or rebound write is refused with one line, and nothing is sent', async (t) => {
  const { a, got } = await pair(t);
  const port = a.self.port;
  const cases: [string, Record<string, string>, number, string][] = [
    ['Origin of another port', { origin: 'http://127.0.0.1:1' }, 403, 'cross_origin'],
    ['Origin of another site', { origin: 'https://evil.example' }, 403, 'cross_origin'],
    ['Origin null (sandboxed page)', { origin: 'null' }, 403, 'cross_origin'],
    ['Origin with a path', { origin: `http://127.0.0.1:${port}/x` }, 403, 'cross_origin'],
    ['Sec-Fetch-Site cross-site', { 'sec-fetch-site': 'cross-site' }, 403, 'cross_origin'],
    ['Sec-Fetch-Site same-site', { 'sec-fetch-site': 'same-site' }, 403, 'cross_origin'],
    [
      'a DNS-rebound Host',
      { host: `evil.example:${port}`, origin: `http://evil.example:${port}` },
      403,
      'unknown_host',
    ],
    ['a rebound Host without Origin', { host: `evil.example:${port}` }, 403, 'unknown_host'],
    ['a wrong token', { authorization: 'Bearer nope' }, 401, 'bad_token'],
    ['a form-like body type', { 'content-type': 'text/plain' }, 415, 'not_json'],
  ];
  for (const [what, headers, status, reason] of cases) {
    const r = await postApi(port, '/api/broadcast', { text: `refused: ${what}` }, headers);
    assert.equal(r.status, status, `${what}: ${r.body}`);
    assertOneLine(r.body, what);
    const text = await metricsOf(a);
    assert.ok(
      (sampleValue(text, 'tsp2p_requests_refused_total', { status: String(status), reason }) ?? 0) >= 1,
      `${what}: counted as ${status} ${reason}`,
    );
  }
  // The same refusals on /api/send.
  const dm = await postApi(
    port,
    '/api/send',
    { to: got[0]?.from.id ?? 'x', text: 'refused dm' },
    { origin: 'http://127.0.0.1:1' },
  );
  assert.equal(dm.status, 403);
  // Then one allowed write: once it has arrived, nothing refused can still be on its way.
  assert.equal((await postApi(port, '/api/broadcast', { text: 'allowed' })).status, 200);
  await waitFor(() => got.length > 0, { message: 'the allowed message' });
  assert.deepEqual(
    got.map((m) => m.text),
    ['allowed'],
  );
  assert.equal(sampleValue(await metricsOf(a), 'tsp2p_messages_sent_total', { type: 'broadcast' }), 1);
});

test('the token lets another machine (or another host name) write and read the feed', async (t) => {
  const { a, got } = await pair(t);
  const port = a.self.port;
  const token = a.webToken;
  assert.ok(token !== undefined && token.length >= 20, 'a token is generated at start');
  const auth = { authorization: `Bearer ${token}` };
  // Through a name the node does not know, as a page opened at http://node.example:port/#token=...
  const named = { host: `node.example:${port}`, origin: `http://node.example:${port}` };
  const ok = await postApi(port, '/api/broadcast', { text: 'with token' }, { ...auth, ...named });
  assert.equal(ok.status, 200, ok.body);
  const foreign = await postApi(
    port,
    '/api/broadcast',
    { text: 'no' },
    { ...auth, origin: 'http://evil.example' },
  );
  assert.equal(foreign.status, 403, 'the token does not lift the Origin check');
  await waitFor(() => got.length === 1, { message: 'the message sent with the token' });
  assert.equal(got[0]!.text, 'with token');

  const refused = await openFeed(port, '/events', { host: `node.example:${port}` });
  assert.equal(refused.status, 403);
  refused.close();
  const feed = await openFeed(port, `/events?token=${encodeURIComponent(token)}`, {
    host: `node.example:${port}`,
  });
  t.after(() => feed.close());
  assert.equal(feed.status, 200);
  await waitFor(() => feed.events.some((e) => e.event === 'hello'), { message: 'hello' });
  const bad = await openFeed(port, '/events?token=wrong');
  assert.equal(bad.status, 401);
  bad.close();
});

test('the rules, for a caller on another machine (pure)', () => {
  const ctx = {
    token: 'secret-token',
    hosts: new Set(['127.0.0.1', 'localhost', '::1', '192.0.2.1']),
    ports: new Set([5000]),
    localAddresses: new Set(['192.0.2.1']),
  };
  const req = (remoteAddress: string, headers: Record<string, string>) => ({
    method: 'POST',
    path: '/api/broadcast',
    headers: { 'content-type': 'application/json', ...headers },
    body: new Uint8Array(),
    remoteAddress,
  });
  const remote = checkWrite(req('198.51.100.7', { host: '192.0.2.1:5000' }), ctx);
  assert.deepEqual(remote.ok ? 'allowed' : [remote.status, remote.reason], [403, 'remote_without_token']);
  const withToken = checkWrite(
    req('198.51.100.7', {
      host: '192.0.2.1:5000',
      origin: 'http://192.0.2.1:5000',
      authorization: 'Bearer secret-token',
    }),
    ctx,
  );
  assert.deepEqual(withToken, { ok: true, via: 'token' });
  // This machine through its own external address is local.
  assert.deepEqual(
    checkWrite(req('192.0.2.1', { host: '192.0.2.1:5000', origin: 'http://192.0.2.1:5000' }), ctx),
    {
      ok: true,
      via: 'local',
    },
  );
  assert.deepEqual(checkWrite(req('::1', { host: '[::1]:5000', origin: 'http://[::1]:5000' }), ctx), {
    ok: true,
    via: 'local',
  });
  const feed = checkFeed(
    { ...req('198.51.100.7', { host: 'x:5000' }), method: 'GET', query: 'token=secret-token' },
    ctx,
  );
  assert.deepEqual(feed, { ok: true, via: 'token' });
  const noFeed = checkFeed({ ...req('198.51.100.7', { host: 'x:5000' }), method: 'GET' }, ctx);
  assert.equal(noFeed.ok, false);
});

test('the event feed carries hello, messages, member events and what the page sent', async (t) => {
  const { a, b } = await pair(t);
  const feed = await openFeed(a.self.port);
  t.after(() => feed.close());
  assert.equal(feed.status, 200);
  assert.match(String(feed.headers['content-type']), /^text\/event-stream/);
  const hello = await waitFor(() => feed.events.find((e) => e.event === 'hello'), { message: 'hello' });
  assert.deepEqual(JSON.parse(hello.data), {
    self: { id: a.id, address: '127.0.0.1', port: a.self.port, name: 'ada' },
    connected: true,
    recent: [],
  });
  assert.equal(sampleValue(await metricsOf(a), 'tsp2p_web_clients'), 1);

  await b.broadcast('line one\nline two');
  const msg = await waitFor(() => eventData(feed, 'message'), { message: 'the message event' });
  assert.equal(msg.text, 'line one\nline two', 'a newline in a message does not break the frame');
  assert.equal(msg.type, 'broadcast');
  assert.equal((msg.from as { id: string }).id, b.id);

  assert.equal((await postApi(a.self.port, '/api/send', { to: b.id, text: 'psst' })).status, 200);
  const sent = await waitFor(() => eventData(feed, 'sent'), { message: 'the sent event' });
  assert.equal(sent.type, 'direct');
  assert.equal(sent.text, 'psst');
  assert.equal(sent.delivered, 1);
  assert.deepEqual(
    (sent.to as { id: string }[]).map((p) => p.id),
    [b.id],
  );

  // A feed opened later starts from the conversation so far (issue 17: a page that opens or
  // reloads shows the recent messages).
  const later = await openFeed(a.self.port);
  t.after(() => later.close());
  const again = await waitFor(() => eventData(later, 'hello'), { message: 'the second hello' });
  assert.deepEqual(
    (again.recent as { kind: string; text: string; origin?: string }[]).map((e) => [
      e.kind,
      e.text,
      e.origin,
    ]),
    [
      ['message', 'line one\nline two', undefined],
      ['sent', 'psst', 'web'],
    ],
  );

  const c = await startNode(t, { name: 'cy', preset: 'local' });
  await c.connect(a.self);
  const joined = await waitFor(() => memberEvent(feed, 'join', c.id), { message: 'the join event' });
  assert.equal((joined.peer as { name: string }).name, 'cy');
  await c.disconnect();
  await waitFor(() => memberEvent(feed, 'leave', c.id), { message: 'the leave event' });
});

function eventData(feed: Feed, name: string): Record<string, unknown> | undefined {
  const e = feed.events.find((x) => x.event === name);
  return e === undefined ? undefined : (JSON.parse(e.data) as Record<string, unknown>);
}

function memberEvent(feed: Feed, event: string, id: string): Record<string, unknown> | undefined {
  return feed.events
    .filter((e) => e.event === 'member')
    .map((e) => JSON.parse(e.data) as { event: string; peer: { id: string } })
    .find((d) => d.event === event && d.peer.id === id);
}

test('the API answers errors with a status and one line', async (t) => {
  const a = await startNode(t, { preset: 'local' });
  const port = a.self.port;
  const cases: [string, string, unknown, number][] = [
    ['broadcast before connect', '/api/broadcast', { text: 'x' }, 409],
    ['not JSON', '/api/broadcast', '{nope', 400],
    ['no text', '/api/broadcast', { message: 'x' }, 400],
    ['an empty text', '/api/broadcast', { text: '' }, 400],
    ['a blank text', '/api/send', { to: '127.0.0.1:1', text: '  ' }, 400],
    ['a broadcast with a recipient', '/api/broadcast', { text: 'x', to: 'y' }, 400],
    ['send without a recipient', '/api/send', { text: 'x' }, 400],
    ['send to a list of numbers', '/api/send', { text: 'x', to: [1] }, 400],
  ];
  for (const [what, path, body, status] of cases) {
    const r = await postApi(port, path, body);
    assert.equal(r.status, status, `${what}: ${r.body}`);
    assertOneLine(r.body, what);
  }
  const b = await startNode(t, { preset: 'local' });
  await b.connect(a.self);
  const unknown = await postApi(port, '/api/send', { to: '127.0.0.1:1', text: 'x' });
  assert.equal(unknown.status, 403, unknown.body);
  assert.ok(unknown.body.startsWith('ERR_UNKNOWN_PEER: '), unknown.body);
  const get = await rawRequest(port, undefined, { method: 'GET', path: '/api/broadcast' });
  assert.equal(get.status, 405);
  assert.equal(get.headers.allow, 'POST');
  assertOneLine(get.body, 'GET /api/broadcast');
  const options = await rawRequest(port, undefined, { method: 'OPTIONS', path: '/api/broadcast' });
  assert.equal(options.status, 405, 'no CORS preflight is ever approved');
  assert.equal(options.headers['access-control-allow-origin'], undefined);
  const missing = await rawRequest(port, undefined, { method: 'GET', path: '/nope' });
  assert.equal(missing.status, 404);
  assertOneLine(missing.body, 'GET /nope');
});

test('stop() ends open event feeds cleanly', async (t) => {
  const a = await startNode(t);
  const feeds = [await openFeed(a.self.port), await openFeed(a.self.port)];
  t.after(() => {
    for (const f of feeds) f.close();
  });
  await waitFor(() => feeds.every((f) => f.events.some((e) => e.event === 'hello')), {
    message: 'both hellos',
  });
  await a.stop();
  for (const f of feeds) {
    assert.deepEqual(await withDeadline(f.ended, 10_000, 'the feed to end'), { complete: true });
  }
});

test('with a feed open, stop() still lets the process exit on its own', async (t) => {
  const { code, signal, steps, stderr } = await runStopExitChild(t, 'feed');
  assert.deepEqual(
    { code, signal, steps },
    {
      code: 0,
      signal: null,
      steps: [{ step: 'feed-open' }, { step: 'stopped' }, { step: 'feed-ended', complete: true }],
    },
    `stderr:\n${stderr}`,
  );
});
