/**
 * HTTPS between real nodes on loopback, with a CA and certificates made at test time: nodes
 * that trust the CA talk; a node that trusts another CA, or a certificate for another address,
 * is refused; mutual TLS refuses a client without a certificate.
 */

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { type Message, Node } from '../../src/index.js';
import { rawRequest } from '../helpers/http-raw.js';
import { ids, startNode } from '../helpers/nodes.js';
import { TestCa, tlsHealth } from '../helpers/security-certs.js';
import { onceEvent } from '../helpers/wait.js';

describe('HTTPS', { skip: !TestCa.available() && 'openssl is not available' }, () => {
  let ca: TestCa;
  let rogue: TestCa;
  before(() => {
    ca = TestCa.create('ca');
    rogue = TestCa.create('rogue');
  });
  after(() => {
    ca?.cleanup();
    rogue?.cleanup();
  });

  test('nodes that trust the CA join and broadcast over HTTPS', async (t) => {
    const a = await startNode(t, { tls: { ...ca.issue(), ca: ca.cert } });
    const b = await startNode(t, { tls: { ...ca.issue(), ca: ca.cert } });
    assert.match(a.url, /^https:\/\/127\.0\.0\.1:\d+\/$/);
    const report = await b.connect(a.self);
    assert.deepEqual(ids(report.members), [a.id]);
    const got = onceEvent<[Message]>(a, 'message');
    const sent = await b.broadcast('over TLS');
    assert.deepEqual(ids(sent.delivered), [a.id]);
    assert.equal((await got)[0].text, 'over TLS');
    // Plain HTTP to the HTTPS port gets no HTTP answer.
    await assert.rejects(rawRequest(a.self.port, '{}', { timeoutMs: 3_000 }));
    // A TLS client that trusts the CA is served.
    assert.equal(await tlsHealth(a.self.port, { ca: ca.cert }), 200);
  });

  test('a peer whose certificate the node cannot verify is refused', async (t) => {
    const a = await startNode(t, { tls: { ...ca.issue(), ca: ca.cert } });
    // Trusts another CA.
    const stranger = await startNode(t, { tls: { ...rogue.issue(), ca: rogue.cert } });
    await assert.rejects(stranger.connect(a.self), (err: Error & { code?: string }) => {
      assert.equal(err.code, 'ERR_CONNECT_FAILED');
      assert.match(err.message, /certificate|self.signed|verify/i, err.message);
      return true;
    });
    // A certificate from the right CA, but for another address.
    const elsewhere = await startNode(t, { tls: { ...ca.issue(['127.0.0.2']), ca: ca.cert } });
    const c = await startNode(t, { tls: { ...ca.issue(), ca: ca.cert } });
    await assert.rejects(c.connect(elsewhere.self), (err: Error & { code?: string }) => {
      assert.equal(err.code, 'ERR_CONNECT_FAILED');
      assert.match(err.message, /altnames|IP: 127\.0\.0\.1|ERR_TLS_CERT_ALTNAME_INVALID/i, err.message);
      return true;
    });
    assert.deepEqual(a.members(), []);
    assert.deepEqual(elsewhere.members(), []);
  });

  test('mutual TLS: a client without a certificate from the CA is refused', async (t) => {
    const a = await startNode(t, { tls: { ...ca.issue(), ca: ca.cert, requestCert: true } });
    const b = await startNode(t, { tls: { ...ca.issue(), ca: ca.cert, requestCert: true } });
    await b.connect(a.self);
    assert.deepEqual(ids(a.members()), [b.id]);
    // No client certificate.
    await assert.rejects(tlsHealth(a.self.port, { ca: ca.cert }));
    // A client certificate from another CA.
    await assert.rejects(tlsHealth(a.self.port, { ca: ca.cert, ...rogue.issue() }));
    // One from the CA.
    assert.equal(await tlsHealth(a.self.port, { ca: ca.cert, ...ca.issue() }), 200);
    // A node whose certificate the server does not accept cannot join.
    const outsider = await startNode(t, { tls: { ...rogue.issue(), ca: ca.cert } });
    await assert.rejects(outsider.connect(a.self), { code: 'ERR_CONNECT_FAILED' });
    assert.deepEqual(ids(a.members()), [b.id]);
  });

  test('mutual TLS without a CA is an invalid option', () => {
    assert.throws(() => new Node({ tls: { ...ca.issue(), requestCert: true } }), {
      code: 'ERR_INVALID_OPTIONS',
    });
  });
});
