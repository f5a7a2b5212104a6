/**
 * The network secret: tags on requests and answers, key rotation, and the transport that
 * applies them (over the memory transport, on a manual clock).
 */

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ManualClock } from '../../src/clock.js';
import { AuthenticatedTransport } from '../../src/security/authenticated-transport.js';
import { AUTH_HEADER, deriveKey, NetworkKeyring, secretList } from '../../src/security/keyring.js';
import { MemoryNetwork } from '../../src/transport/memory.js';
import type { InboundRequest, InboundResponse, Transport } from '../../src/transport/transport.js';

const OLD = 'old-secret-0123456789';
const NEW = 'new-secret-0123456789';
const body = Buffer.from('{"type":2}');

describe('the keyring', () => {
  test('a request tag is accepted by any keyring holding its secret, and by no other', () => {
    const sender = new NetworkKeyring([OLD]);
    const { header } = sender.tagRequest(body);
    assert.match(header, /^[0-9a-f]{8}\.[A-Za-z0-9_-]{43}$/);
    assert.ok(new NetworkKeyring([OLD]).verifyRequest(header, body));
    assert.ok(new NetworkKeyring([NEW, OLD]).verifyRequest(header, body), 'a listed second secret');
    assert.equal(new NetworkKeyring([NEW]).verifyRequest(header, body), undefined);
    assert.equal(new NetworkKeyring([OLD]).verifyRequest(header, Buffer.from('{"type":3}')), undefined);
    for (const bad of [
      undefined,
      '',
      'x',
      `${header}x`,
      header.replace(/.$/, 'A'),
      `zzzzzzzz${header.slice(8)}`,
    ]) {
      if (bad === header) continue;
      assert.equal(new NetworkKeyring([OLD]).verifyRequest(bad, body), undefined, String(bad));
    }
  });

  test('the first secret sends', () => {
    const ring = new NetworkKeyring([NEW, OLD]);
    const { header } = ring.tagRequest(body);
    assert.ok(header.startsWith(`${deriveKey(NEW).id}.`));
    ring.set([OLD]);
    assert.ok(ring.tagRequest(body).header.startsWith(`${deriveKey(OLD).id}.`), 'after set(), the new first');
  });

  test('an answer tag binds the request, the status and the answer body', () => {
    const client = new NetworkKeyring([OLD]);
    const server = new NetworkKeyring([NEW, OLD]);
    const req = client.tagRequest(body);
    const verified = server.verifyRequest(req.header, body);
    assert.ok(verified);
    const answer = Buffer.from('[]');
    const tag = server.tagAnswer(verified, 200, answer);
    assert.equal(client.verifyAnswer(req, tag, 200, answer), true);
    assert.equal(client.verifyAnswer(req, tag, 201, answer), false, 'another status');
    assert.equal(client.verifyAnswer(req, tag, 200, Buffer.from('[ ]')), false, 'another body');
    const other = client.tagRequest(Buffer.from('{"type":3}'));
    assert.equal(client.verifyAnswer(other, tag, 200, answer), false, 'the answer to another request');
    assert.equal(client.verifyAnswer(req, undefined, 200, answer), false);
  });

  test('secrets shorter than 16 characters are refused; none means disabled', () => {
    assert.throws(() => secretList('short'), { code: 'ERR_INVALID_OPTIONS' });
    assert.throws(() => secretList([OLD, '']), { code: 'ERR_INVALID_OPTIONS' });
    assert.deepEqual(secretList(undefined), []);
    assert.equal(new NetworkKeyring().enabled, false);
    assert.equal(new NetworkKeyring([]).enabled, false);
    assert.equal(new NetworkKeyring(OLD).enabled, true);
  });

  test('key ids reveal nothing of the secret and differ between secrets', () => {
    const a = deriveKey(OLD);
    const b = deriveKey(NEW);
    assert.notEqual(a.id, b.id);
    assert.ok(!OLD.includes(a.id));
    assert.equal(deriveKey(OLD).id, a.id, 'stable');
  });
});

describe('the authenticated transport', () => {
  const clock = new ManualClock(0);

  async function pair(serverSecret: string[], clientSecret: string[]) {
    const network = new MemoryNetwork({ clock, latencyMs: 0 });
    const seen: InboundRequest[] = [];
    const serverRing = new NetworkKeyring(serverSecret);
    const server = new AuthenticatedTransport(network.transport(), serverRing);
    const refused: string[] = [];
    await server.listen({
      host: '10.0.0.1',
      port: 1000,
      maxBodyBytes: 1 << 20,
      handler: (req): InboundResponse => {
        seen.push(req);
        return { status: 200, body: 'ok\n' };
      },
      onRefused: (_status, reason) => refused.push(reason),
    });
    const client = new AuthenticatedTransport(network.transport(), new NetworkKeyring(clientSecret));
    return { server, serverRing, client, seen, refused };
  }

  function post(t: Transport, headers: Record<string, string> = {}) {
    return t.request({ host: '10.0.0.1', port: 1000, body, headers, signal: new AbortController().signal });
  }

  async function settle<T>(p: Promise<T>): Promise<T> {
    const guarded = p.finally(() => undefined);
    guarded.catch(() => undefined);
    await clock.advanceUntil(() => false, 10, 1);
    return guarded;
  }

  test('same secret: the request reaches the handler and the answer is checked', async () => {
    const { client, seen } = await pair([OLD], [OLD]);
    const res = await settle(post(client));
    assert.equal(res.status, 200);
    assert.equal(seen.length, 1);
  });

  test('no secret or another one: 401 before the handler, and the client says why', async () => {
    const { client, seen, refused } = await pair([OLD], [NEW]);
    await assert.rejects(settle(post(client)), { code: 'ERR_UNAUTHORIZED' });
    // A client with no secret at all (the transport underneath) gets the 401 as an answer.
    const res = await settle(post(client.inner));
    assert.equal(res.status, 401);
    assert.equal(seen.length, 0, 'the handler never ran');
    assert.deepEqual(refused, ['bad_network_tag', 'no_network_tag']);
  });

  test('rotation: the server accepts both secrets while the clients move over', async () => {
    const { client, serverRing, seen } = await pair([OLD, NEW], [OLD]);
    assert.equal((await settle(post(client))).status, 200);
    serverRing.set([NEW, OLD]);
    assert.equal((await settle(post(client))).status, 200, 'still accepted second');
    serverRing.set([NEW]);
    await assert.rejects(settle(post(client)), { code: 'ERR_UNAUTHORIZED' }, 'the old secret is gone');
    assert.equal(seen.length, 2);
  });

  test('an answer from a node without the secret is refused', async () => {
    const { client } = await pair([], [OLD]);
    await assert.rejects(settle(post(client)), (err: Error & { code?: string }) => {
      assert.equal(err.code, 'ERR_UNAUTHORIZED');
      assert.match(err.message, /not authenticated by the network secret \(status 200: ok\)/);
      return true;
    });
  });

  test('with no secret, requests pass untouched', async () => {
    const { client, seen } = await pair([], []);
    const res = await settle(post(client));
    assert.equal(res.status, 200);
    assert.equal(seen[0]?.headers[AUTH_HEADER], undefined);
  });
});
