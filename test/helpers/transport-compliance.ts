/**
 * The transport compliance suite: one set of tests that every {@link Transport} passes, the
 * memory one (test/unit/transport-memory.test.ts) and the HTTP one
 * (test/integration/transport-http.test.ts) alike. It pins the contract in
 * src/transport/transport.ts: requests and answers, the body cap, close, errors and abort.
 */

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { P2PError } from '../../src/errors.js';
import type {
  InboundHandler,
  InboundRequest,
  ListenOptions,
  OutboundResponse,
  Transport,
} from '../../src/transport/transport.js';

/** What the suite needs of one kind of transport. */
export interface TransportFixture {
  /** A new transport: a node's attachment to the network. */
  transport(): Transport;
  /** The host transports listen on. */
  readonly host: string;
}

/** A listening transport, and what its handler saw and its transport refused. */
interface Server {
  readonly transport: Transport;
  readonly port: number;
  readonly seen: InboundRequest[];
  readonly refused: [number, string][];
}

const utf8 = (b: Uint8Array): string => Buffer.from(b).toString('utf8');

/** Registers the compliance tests for one kind of transport. */
export function transportCompliance(name: string, fixture: TransportFixture): void {
  const listen = async (
    handler: InboundHandler,
    extra: Partial<ListenOptions> = {},
    cleanup: (fn: () => Promise<void>) => void,
  ): Promise<Server> => {
    const transport = fixture.transport();
    const seen: InboundRequest[] = [];
    const refused: [number, string][] = [];
    const bound = await transport.listen({
      host: fixture.host,
      port: 0,
      maxBodyBytes: 1024,
      handler: (req) => {
        seen.push(req);
        return handler(req);
      },
      onRefused: (status, reason) => refused.push([status, reason]),
      ...extra,
    });
    cleanup(() => transport.close({ graceMs: 0 }));
    return { transport, port: bound.port, seen, refused };
  };
  const client = (cleanup: (fn: () => Promise<void>) => void): Transport => {
    const t = fixture.transport();
    cleanup(() => t.close({ graceMs: 0 }));
    return t;
  };
  const post = (
    from: Transport,
    port: number,
    body: string | Uint8Array,
    extra: { headers?: Record<string, string>; signal?: AbortSignal } = {},
  ): Promise<OutboundResponse> =>
    from.request({
      host: fixture.host,
      port,
      body: typeof body === 'string' ? Buffer.from(body) : body,
      ...(extra.headers !== undefined ? { headers: extra.headers } : {}),
      signal: extra.signal ?? new AbortController().signal,
    });

  describe(`transport compliance: ${name}`, () => {
    test('a request reaches the handler whole, and its answer comes back whole', async (t) => {
      const server = await listen(
        (req) => ({
          status: 201,
          body: `got ${utf8(req.body)}`,
          contentType: 'text/plain; charset=utf-8',
          headers: { 'x-answer': 'yes' },
        }),
        {},
        (fn) => t.after(fn),
      );
      const res = await post(
        client((fn) => t.after(fn)),
        server.port,
        '{"hello":"wörld"}',
        {
          headers: { 'x-extra': 'one' },
        },
      );
      assert.equal(res.status, 201);
      assert.equal(utf8(res.body), 'got {"hello":"wörld"}');
      assert.equal(res.headers['x-answer'], 'yes');
      assert.ok(res.body instanceof Uint8Array);
      const [req] = server.seen;
      assert.ok(req);
      assert.equal(req.method, 'POST');
      assert.equal(req.path, '/');
      assert.equal(req.headers['x-extra'], 'one', 'header names arrive lowercase, values as sent');
      assert.equal(utf8(req.body), '{"hello":"wörld"}');
      assert.equal(typeof req.remoteAddress, 'string');
      assert.ok(!req.remoteAddress.startsWith('::ffff:'), 'no IPv4-mapped prefix');
    });

    test('every status resolves: a refusal is an answer, not an error', async (t) => {
      const server = await listen(
        () => ({ status: 403, body: 'Peer not registered\n' }),
        {},
        (fn) => t.after(fn),
      );
      const res = await post(
        client((fn) => t.after(fn)),
        server.port,
        '{}',
      );
      assert.equal(res.status, 403);
      assert.equal(utf8(res.body), 'Peer not registered\n');
    });

    test('a body over the cap is answered 413 before the handler, and counted', async (t) => {
      const server = await listen(
        () => ({ status: 200 }),
        { maxBodyBytes: 64 },
        (fn) => t.after(fn),
      );
      const res = await post(
        client((fn) => t.after(fn)),
        server.port,
        'x'.repeat(65),
      );
      assert.equal(res.status, 413);
      assert.equal(server.seen.length, 0);
      assert.deepEqual(server.refused, [[413, 'too_large']]);
      const ok = await post(
        client((fn) => t.after(fn)),
        server.port,
        'x'.repeat(64),
      );
      assert.equal(ok.status, 200, 'a body at the cap is taken');
    });

    test('a handler that throws is answered 500', async (t) => {
      const server = await listen(
        () => {
          throw new Error('boom');
        },
        {},
        (fn) => t.after(fn),
      );
      const res = await post(
        client((fn) => t.after(fn)),
        server.port,
        '{}',
      );
      assert.equal(res.status, 500);
    });

    test('nobody listening: the request rejects with ERR_PEER_UNREACHABLE', async (t) => {
      const server = await listen(
        () => ({ status: 200 }),
        {},
        (fn) => t.after(fn),
      );
      await server.transport.close({ graceMs: 0 });
      const err = (await post(
        client((fn) => t.after(fn)),
        server.port,
        '{}',
      ).catch((e: unknown) => e)) as P2PError;
      assert.equal(err.code, 'ERR_PEER_UNREACHABLE');
    });

    test('close is idempotent, and the transport may listen again after it', async (t) => {
      const server = await listen(
        () => ({ status: 200 }),
        {},
        (fn) => t.after(fn),
      );
      await Promise.all([server.transport.close({ graceMs: 0 }), server.transport.close({ graceMs: 0 })]);
      await server.transport.close({ graceMs: 0 });
      const again = await server.transport.listen({
        host: fixture.host,
        port: 0,
        maxBodyBytes: 1024,
        handler: () => ({ status: 204 }),
      });
      const res = await post(
        client((fn) => t.after(fn)),
        again.port,
        '{}',
      );
      assert.equal(res.status, 204);
    });

    test('listening twice without a close is refused; a taken port is ERR_ADDRESS_IN_USE', async (t) => {
      const server = await listen(
        () => ({ status: 200 }),
        {},
        (fn) => t.after(fn),
      );
      const twice = (await server.transport
        .listen({ host: fixture.host, port: 0, maxBodyBytes: 1, handler: () => ({ status: 200 }) })
        .catch((e: unknown) => e)) as P2PError;
      assert.equal(twice.code, 'ERR_ALREADY_STARTED');
      const other = fixture.transport();
      t.after(() => other.close({ graceMs: 0 }));
      const taken = (await other
        .listen({ host: fixture.host, port: server.port, maxBodyBytes: 1, handler: () => ({ status: 200 }) })
        .catch((e: unknown) => e)) as P2PError;
      assert.equal(taken.code, 'ERR_ADDRESS_IN_USE');
    });

    test('an aborted signal rejects with its reason, before sending and while waiting', async (t) => {
      let release: () => void = () => {};
      const held = new Promise<void>((resolve) => {
        release = resolve;
      });
      const server = await listen(
        async () => {
          await held;
          return { status: 200 };
        },
        {},
        (fn) => t.after(fn),
      );
      t.after(() => release());
      const from = client((fn) => t.after(fn));
      const early = new AbortController();
      const reason = new Error('stop now');
      early.abort(reason);
      assert.equal(
        await post(from, server.port, '{}', { signal: early.signal }).catch((e: unknown) => e),
        reason,
      );
      const late = new AbortController();
      const pending = post(from, server.port, '{}', { signal: late.signal }).catch((e: unknown) => e);
      while (server.seen.length === 0) await new Promise<void>((r) => setImmediate(r));
      const later = new Error('stop later');
      late.abort(later);
      assert.equal(await pending, later);
    });
  });
}
