/**
 * The limits against a real node on loopback (in a child process where memory is measured):
 * a 1 GB body is refused with 413 while the node's RSS barely moves; 1,000 slow connections do
 * not stop a member's messages, and are cut by the header timeout; connections beyond the cap
 * are closed; a source over its rate gets 429 with Retry-After.
 */

import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { test } from 'node:test';
import { parseRawAnswer, rawRequest, rawSocket } from '../helpers/http-raw.js';
import { startNode } from '../helpers/nodes.js';
import { ChildNode } from '../helpers/security-node.js';
import { waitFor } from '../helpers/wait.js';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

async function startChild(
  t: { after(fn: () => unknown): void },
  options: Parameters<typeof ChildNode.start>[0],
) {
  const child = await ChildNode.start(options);
  t.after(() => child.stop());
  return child;
}

/**
 * Streams a body of `size` bytes (one reused buffer, respecting backpressure) after `head`, and
 * resolves with what the server answered and how much was written before it closed.
 */
function upload(
  port: number,
  head: string,
  size: number,
  chunked: boolean,
): Promise<{ answer: string; written: number }> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    const chunk = Buffer.alloc(MiB, 0x61);
    const chunkHead = Buffer.from(`${chunk.length.toString(16)}\r\n`);
    const crlf = Buffer.from('\r\n');
    let answer = '';
    let written = 0;
    let done = false;
    const finish = (): void => {
      if (done) return;
      done = true;
      socket.destroy();
      resolve({ answer, written });
    };
    socket.setEncoding('latin1');
    socket.on('data', (d: string) => {
      answer += d;
    });
    socket.on('error', finish);
    socket.on('close', finish);
    const pump = (): void => {
      while (!done && written < size) {
        written += chunk.length;
        // A chunk's three parts are written whatever write() says (it queues them all): a
        // short-circuit on backpressure would leave a chunk without its data and break the framing.
        let ok: boolean;
        if (chunked) {
          socket.write(chunkHead);
          socket.write(chunk);
          ok = socket.write(crlf);
        } else ok = socket.write(chunk);
        if (!ok) {
          socket.once('drain', pump);
          return;
        }
      }
      if (!done && chunked) socket.write('0\r\n\r\n');
      // All sent: give the server a moment to answer, then stop.
      if (!done) setTimeout(finish, 2_000).unref();
    };
    socket.on('connect', () => {
      socket.write(head);
      pump();
    });
  });
}

test('a 1 GB body is refused with 413 and the node grows by less than 10 MB', async (t) => {
  const node = await startChild(t, {});
  const port = node.self.port;
  // Warm up the paths first, so that their one-time allocations are not counted.
  for (let i = 0; i < 3; i++) await rawRequest(port, '{}');
  await upload(
    port,
    `POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: ${4 * MiB}\r\n\r\n`,
    4 * MiB,
    false,
  );
  const before = await node.memory();

  const declared = await upload(
    port,
    `POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: ${GiB}\r\n\r\n`,
    GiB,
    false,
  );
  assert.match(declared.answer, /^HTTP\/1\.1 413 /, `declared: ${declared.answer.slice(0, 200)}`);
  const chunked = await upload(
    port,
    'POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n' +
      'Transfer-Encoding: chunked\r\n\r\n',
    GiB,
    true,
  );
  assert.match(chunked.answer, /^HTTP\/1\.1 413 /, `chunked: ${chunked.answer.slice(0, 200)}`);

  const afterUpload = await node.memory();
  const growth = afterUpload.rss - before.rss;
  t.diagnostic(
    `rss ${(before.rss / MiB).toFixed(1)} -> ${(afterUpload.rss / MiB).toFixed(1)} MiB ` +
      `(declared: ${(declared.written / MiB).toFixed(0)} MiB sent before the close; ` +
      `chunked: ${(chunked.written / MiB).toFixed(0)} MiB)`,
  );
  assert.ok(growth < 10 * MiB, `RSS grew by ${(growth / MiB).toFixed(1)} MiB`);
  assert.ok(node.alive);
  assert.equal((await rawRequest(port, undefined, { method: 'GET', path: '/health' })).status, 200);
});

/** Opens `n` connections that send a request head one byte at a time, and never finish it. */
function slowClients(port: number, n: number): { sockets: Socket[]; closed: () => number; stop: () => void } {
  const head = 'POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ';
  const sockets: Socket[] = [];
  let closed = 0;
  const timers: NodeJS.Timeout[] = [];
  for (let i = 0; i < n; i++) {
    const s = connect(port, '127.0.0.1');
    s.on('error', () => undefined);
    s.once('close', () => {
      closed++;
    });
    let at = 0;
    s.on('connect', () => {
      const timer = setInterval(() => {
        if (s.destroyed) return clearInterval(timer);
        s.write(at < head.length ? head[at++]! : 'x');
      }, 500);
      timer.unref();
      timers.push(timer);
    });
    sockets.push(s);
  }
  return {
    sockets,
    closed: () => closed,
    stop: () => {
      for (const timer of timers) clearInterval(timer);
      for (const s of sockets) s.destroy();
    },
  };
}

test("1,000 slow connections do not stop a member's messages; the header timeout cuts them", async (t) => {
  const node = await startChild(t, { limits: { headersTimeoutMs: 6_000 } });
  const slow = slowClients(node.self.port, 1_000);
  t.after(() => slow.stop());
  await waitFor(() => slow.sockets.every((s) => !s.connecting), { message: 'the slow clients to connect' });
  assert.equal(slow.closed(), 0, 'all 1,000 slow connections are open');

  const member = await startNode(t);
  await member.connect(node.self);
  const count = 200;
  const reports = await Promise.all(Array.from({ length: count }, (_, i) => member.broadcast(`msg ${i}`)));
  assert.deepEqual(
    reports.flatMap((r) => r.failed.map((f) => f.error.message)),
    [],
    'every broadcast was delivered',
  );
  await waitFor(async () => (await node.received()).texts === count, { message: 'all messages to arrive' });
  t.diagnostic(`${count} messages through while ${1_000 - slow.closed()} slow connections were open`);
  assert.ok(slow.closed() < 100, `${slow.closed()} slow connections were closed before the timeout`);

  // The header timeout ends them (and keeps the node free of them).
  await waitFor(() => slow.closed() === 1_000, {
    message: 'the slow connections to be cut by the header timeout',
    timeoutMs: 30_000,
  });
  assert.ok(node.alive);
});

test('connections beyond maxConnections are closed at once and counted', async (t) => {
  const node = await startNode(t, { limits: { maxConnections: 20 } });
  const sockets: Socket[] = [];
  let closed = 0;
  t.after(() => {
    for (const s of sockets) s.destroy();
  });
  for (let i = 0; i < 60; i++) {
    const s = connect(node.self.port, '127.0.0.1');
    s.on('error', () => undefined);
    s.once('close', () => {
      closed++;
    });
    sockets.push(s);
  }
  await waitFor(() => closed >= 40, { message: 'the connections beyond the cap to be closed' });
  assert.ok(closed <= 40 + 2, `${closed} closed: the cap holds 20 open`);
  for (const s of sockets) s.destroy();
  await waitFor(() => closed === 60, { message: 'our sockets to close' });
  // Room again: the node answers, and counted what it dropped.
  const metrics = await waitFor(
    async () => {
      const r = await rawRequest(node.self.port, undefined, { method: 'GET', path: '/metrics' });
      return r.status === 200 ? r.body : undefined;
    },
    { message: 'the node to answer again' },
  );
  const line = metrics.split('\n').find((l) => l.includes('reason="too_many_connections"'));
  assert.ok(line !== undefined && Number(line.split(' ').pop()) >= 40, line);
});

test('a source over its rate gets 429 with Retry-After, before its body is read', async (t) => {
  const node = await startNode(t, { limits: { rateLimitLoopback: true, ratePerSecond: 2, rateBurst: 10 } });
  const answers = [];
  for (let i = 0; i < 15; i++) answers.push(await rawRequest(node.self.port, '{}'));
  const statuses = answers.map((a) => a.status);
  assert.deepEqual(statuses.slice(0, 10), Array(10).fill(400), 'the burst passes (and is judged: 400)');
  const limited = answers.slice(10);
  for (const a of limited) {
    assert.equal(a.status, 429);
    assert.match(a.body, /^too many requests: try again in \d+ s\n$/);
    assert.ok(Number(a.headers['retry-after']) >= 1, `Retry-After: ${a.headers['retry-after']}`);
  }
  // Without the loopback opt-in, the same node shape does not limit this machine.
  const local = await startNode(t, { limits: { ratePerSecond: 2, rateBurst: 2 } });
  for (let i = 0; i < 10; i++) assert.equal((await rawRequest(local.self.port, '{}')).status, 400);
});

test('a connection that sends nothing, or its head too slowly, is closed (408 for the slow head)', async (t) => {
  const node = await startNode(t, { limits: { headersTimeoutMs: 1_000 } });
  const idle = await rawSocket(node.self.port, () => undefined, 15_000);
  assert.equal(idle.closed, true, 'the idle connection was closed');
  assert.equal(idle.data, '', 'without an answer: it asked nothing');
  const slow = await rawSocket(
    node.self.port,
    async (socket) => {
      for (const ch of 'POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ') {
        if (socket.destroyed) return;
        socket.write(ch);
        await new Promise((resolve) => setTimeout(resolve, 150));
      }
    },
    15_000,
  );
  assert.equal(slow.closed, true);
  assert.equal(parseRawAnswer(slow.data).status, 408, slow.data);
});
