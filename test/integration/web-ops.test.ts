/**
 * The operations endpoints through curl, exactly as the README shows them: `/members`,
 * `/metrics`, `/health` and a broadcast through the local API. Also: the web endpoints leave the
 * protocol's `POST /` alone, and `web: false` turns them off.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import type { Node } from '../../src/index.js';
import { startListening } from '../helpers/cli-process.js';
import { rawRequest, SilentServer } from '../helpers/http-raw.js';
import { startNode } from '../helpers/nodes.js';
import { waitFor } from '../helpers/wait.js';
import { curl, sampleValue } from '../helpers/web-client.js';

/** The curl commands in the README, read from it: `6001` there is replaced by a real port. */
const README_COMMANDS = (() => {
  const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
  const lines = readme.split('\n').filter((l) => l.startsWith('curl '));
  const find = (part: string): string => {
    const line = lines.find((l) => l.includes(part));
    assert.ok(line, `the README shows a curl command for ${part}`);
    return line;
  };
  return {
    members: find('/members'),
    metrics: find('/metrics'),
    health: find('/health'),
    broadcast: find('/api/broadcast'),
  };
})();

/** Splits a command line into its words: plain words and single-quoted strings. */
function words(command: string, port: number): string[] {
  const out: string[] = [];
  for (const m of command.replaceAll(':6001/', `:${port}/`).matchAll(/'([^']*)'|(\S+)/g))
    out.push(m[1] ?? m[2]!);
  assert.equal(out[0], 'curl');
  return out.slice(1);
}

async function pair(t: Parameters<typeof startNode>[0]): Promise<{ a: Node; b: Node }> {
  const a = await startNode(t, { name: 'ada', preset: 'local' });
  const b = await startNode(t, { name: 'bob', preset: 'local' });
  await b.connect(a.self);
  await waitFor(() => a.members().some((p) => p.id === b.id), { message: 'a to know b' });
  return { a, b };
}

test("the README's curl examples: /members, /metrics, /health and a broadcast", async (t) => {
  const { a, b } = await pair(t);
  const port = a.self.port;
  const texts: string[] = [];
  b.on('message', (m) => texts.push(m.text));

  const broadcast = await curl(words(README_COMMANDS.broadcast, port));
  assert.equal(broadcast.code, 0, broadcast.stderr);
  const report = JSON.parse(broadcast.stdout) as {
    id: string;
    delivered: { id: string }[];
    failed: unknown[];
  };
  assert.deepEqual(
    report.delivered.map((p) => p.id),
    [b.id],
  );
  assert.deepEqual(report.failed, []);
  await waitFor(() => texts.includes('hello from curl'), { message: 'b to receive the broadcast' });

  const members = await curl(words(README_COMMANDS.members, port));
  assert.equal(members.code, 0, members.stderr);
  const list = JSON.parse(members.stdout) as {
    self: { id: string; port: number; name: string };
    connected: boolean;
    members: Record<string, unknown>[];
  };
  assert.deepEqual(list.self, { id: a.id, address: '127.0.0.1', port, name: 'ada' });
  assert.equal(list.connected, true);
  assert.equal(list.members.length, 1);
  const bob = list.members[0]!;
  assert.equal(bob.id, b.id);
  assert.equal(bob.address, '127.0.0.1');
  assert.equal(bob.port, b.self.port);
  assert.equal(bob.name, 'bob');
  assert.equal(bob.state, 'alive');
  assert.equal(bob.kind, 'tsp2p');
  assert.equal(typeof bob.incarnation, 'number');
  assert.ok(!Number.isNaN(Date.parse(bob.lastSeen as string)), `lastSeen ${bob.lastSeen}`);
  assert.equal(typeof bob.lastSeenMsAgo, 'number');

  const metrics = await curl(words(README_COMMANDS.metrics, port));
  assert.equal(metrics.code, 0, metrics.stderr);
  const text = metrics.stdout;
  assert.equal(sampleValue(text, 'tsp2p_up'), 1);
  assert.equal(sampleValue(text, 'tsp2p_members', { state: 'alive' }), 1);
  assert.equal(sampleValue(text, 'tsp2p_members', { state: 'dead' }), 0);
  assert.equal(sampleValue(text, 'tsp2p_messages_sent_total', { type: 'broadcast' }), 1);
  assert.equal(sampleValue(text, 'tsp2p_deliveries_total', { type: 'broadcast', result: 'ok' }), 1);
  assert.equal(sampleValue(text, 'tsp2p_requests_received_total', { type: 'connect' }), 1);
  assert.ok((sampleValue(text, 'tsp2p_delivery_requests_total', { result: 'ok' }) ?? 0) >= 1);
  assert.equal(sampleValue(text, 'tsp2p_delivery_queue_messages'), 0, 'nothing left queued');
  assert.ok(sampleValue(text, 'tsp2p_probe_rtt_seconds_count') !== undefined);
  assert.ok(text.includes('# TYPE tsp2p_probe_rtt_seconds histogram\n'));
  // The receiving side counts it too.
  const bText = (await curl(words(README_COMMANDS.metrics, b.self.port))).stdout;
  assert.equal(sampleValue(bText, 'tsp2p_messages_received_total', { type: 'broadcast' }), 1);
  assert.equal(sampleValue(bText, 'tsp2p_messages_received_total', { type: 'direct' }), 0);

  const health = await curl(words(README_COMMANDS.health, port));
  assert.equal(health.code, 0, health.stderr);
  assert.deepEqual(JSON.parse(health.stdout), { status: 'ok', connected: true, members: 1 });
});

test('/health answers 503 while the node is stopping, and curl -f fails on it', async (t) => {
  // A gop2p member that never answers: the node's leave waits for it (leaveTimeoutMs).
  const silent = await SilentServer.start();
  t.after(() => silent.stop());
  const a = await startNode(t, { compat: 'gop2p', leaveTimeoutMs: 30_000 });
  const join = await rawRequest(
    a.self.port,
    JSON.stringify({ type: 0, data: null, from: { address: '127.0.0.1', port: silent.port } }),
  );
  assert.equal(join.status, 200, join.body);
  assert.equal((await curl(words(README_COMMANDS.health, a.self.port))).code, 0);

  const stopped = a.stop();
  await waitFor(() => silent.held(1) > 0, {
    timeoutMs: 20_000,
    message: 'the leave to reach the silent member',
  });
  const health = await curl(words(README_COMMANDS.health, a.self.port));
  assert.equal(health.code, 22, `curl -f exits 22 on an HTTP error: ${health.stdout}${health.stderr}`);
  const raw = await rawRequest(a.self.port, undefined, { method: 'GET', path: '/health' });
  assert.equal(raw.status, 503);
  assert.deepEqual(JSON.parse(raw.body), { status: 'stopping' });
  await silent.stop(); // the leave fails at once: stop() finishes
  await stopped;
});

test('the chat page is for browsers only: GET / without text/html keeps the protocol answer', async (t) => {
  const a = await startNode(t);
  const page = await rawRequest(a.self.port, undefined, {
    method: 'GET',
    headers: { accept: 'text/html,application/xhtml+xml,*/*;q=0.8' },
  });
  assert.equal(page.status, 200);
  assert.match(String(page.headers['content-type']), /^text\/html/);
  assert.match(page.body, /<title>tsp2p chat<\/title>/);
  assert.match(String(page.headers['content-security-policy']), /script-src 'self'/);
  assert.equal(page.headers['x-frame-options'], 'DENY');
  const js = await rawRequest(a.self.port, undefined, { method: 'GET', path: '/app.js' });
  assert.equal(js.status, 200);
  assert.match(String(js.headers['content-type']), /^text\/javascript/);

  const plain = await rawRequest(a.self.port, undefined, { method: 'GET' });
  assert.equal(plain.status, 400);
  assert.ok(plain.body.startsWith('No valid Message provided'), plain.body);
});

test('a gop2p-style POST / is unaffected, whatever it accepts', async (t) => {
  const a = await startNode(t, { compat: 'gop2p' });
  const join = await rawRequest(
    a.self.port,
    JSON.stringify({ type: 0, data: null, from: { address: '127.0.0.1', port: 6001 } }),
    { headers: { accept: 'text/html', 'content-type': 'application/json' } },
  );
  assert.equal(join.status, 200, join.body);
  assert.equal(join.body, '[]');
  assert.ok(a.members().some((p) => p.port === 6001));
});

test('web: false turns the endpoints off', async (t) => {
  const a = await startNode(t, { web: false });
  assert.equal(a.webToken, undefined);
  assert.equal(a.url, `http://127.0.0.1:${a.self.port}/`);
  for (const path of ['/members', '/metrics', '/health', '/events']) {
    const r = await rawRequest(a.self.port, undefined, { method: 'GET', path });
    assert.equal(r.status, 404, `${path}: ${r.body}`);
  }
  const page = await rawRequest(a.self.port, undefined, { method: 'GET', headers: { accept: 'text/html' } });
  assert.equal(page.status, 400);
});

test('tsp2p chat prints the page URL at start; with --host 0.0.0.0 it carries the token', async (t) => {
  const { p, address } = await startListening(t, 'ada', ['chat', '--name', 'ada']);
  const { match } = await p.waitFor(/^chat in a browser: (\S+)$/);
  assert.equal(match![1], `http://${address}/`, 'on loopback, no token is needed');
  const port = Number(address.slice(address.lastIndexOf(':') + 1));
  const health = await curl(words(README_COMMANDS.health, port));
  assert.equal(health.code, 0, health.stderr);
  assert.equal((JSON.parse(health.stdout) as { status: string }).status, 'ok');
  const page = await curl(['-s', '-H', 'Accept: text/html', match![1]!]);
  assert.match(page.stdout, /<title>tsp2p chat<\/title>/);
  p.end();
  assert.equal(await p.waitExit(), 0);

  const open = await startListening(t, 'open', ['chat', '--host', '0.0.0.0']);
  const url = (await open.p.waitFor(/^chat in a browser: (\S+)$/)).match![1]!;
  const host = open.address.slice(0, open.address.lastIndexOf(':'));
  if (/^127\./.test(host)) {
    t.diagnostic('no external interface here: the node advertises loopback, and prints no token');
    assert.equal(url, `http://${open.address}/`);
  } else {
    const m = new RegExp(`^http://${host.replaceAll('.', '\\.')}:\\d+/#token=([A-Za-z0-9_-]{24})$`).exec(url);
    assert.ok(m, `a URL with the token: ${url}`);
    // The token works for writes (sent here from loopback with a foreign Host, as another machine would).
    const openPort = Number(open.address.slice(open.address.lastIndexOf(':') + 1));
    const r = await curl([
      '-s',
      '-o',
      '/dev/null',
      '-w',
      '%{http_code}',
      '-H',
      `Host: chat.example:${openPort}`,
      '-H',
      `Authorization: Bearer ${m[1]}`,
      '-H',
      'content-type: application/json',
      '-d',
      '{"text":"x"}',
      `http://127.0.0.1:${openPort}/api/broadcast`,
    ]);
    assert.equal(r.stdout, '409', 'accepted, and refused only because the node is alone');
  }
  open.p.end();
  assert.equal(await open.p.waitExit(), 0);
});
