import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { reasonOfAnswer } from '../../src/protocol/refusal.js';
import { refusedError } from '../../src/transport/peer-client.js';
import type { InboundHandler, OutboundResponse, Transport } from '../../src/transport/transport.js';
import { signEnvelope, testIdentity } from '../helpers/security-sign.js';
import { memoryHarness, settle } from '../helpers/unit-memory.js';

describe('reasonOfAnswer', () => {
  const cases: [number, string, string][] = [
    [400, 'No valid Message provided: data: expected string\n', 'invalid_message'],
    [403, 'Peer not registered\n', 'not_registered'],
    [403, "gop2p-style request refused: this node does not run with compat: 'gop2p'\n", 'gop2p_not_allowed'],
    [400, 'You can not connect with yourself.\n', 'self'],
    [405, 'Method not allowed\n', 'method_not_allowed'],
    [413, 'message too large: limit is 10 bytes\n', 'too_large'],
    [503, 'member table is full (3 members)\n', 'table_full'],
    [404, 'not found: /x\n', 'not_found'],
    [429, 'slow down\n', 'rate_limited'],
    [401, 'bad MAC: tsp2p-mac does not match the body\n', 'bad_mac'],
    [401, 'no session: this node holds no session key for the sender; sign it\n', 'no_session'],
    [503, 'earlier messages of this stream have not arrived: retry\n', 'out_of_order'],
    [503, "application is busy: this node's message listener is behind; retry\n", 'busy'],
    [418, 'teapot\n', 'other'],
  ];
  for (const [status, body, reason] of cases) {
    test(`${status} ${body.trim()} -> ${reason}`, () => {
      assert.equal(reasonOfAnswer(status, body), reason);
      assert.equal(reasonOfAnswer(status, Buffer.from(body)), reason);
    });
  }
});

describe('typed refusals end to end', () => {
  test("the refusing check's reason is the metrics label and the sender's PeerRefusedError.reason", async (t) => {
    const h = memoryHarness(11);
    t.after(() => h.stopAll());
    const served = capturing(h.network.transport());
    const node = h.node({ web: true, transport: served.transport });
    await settle(h.clock, node.start());
    const client = h.network.transport();
    const stranger = testIdentity(3);
    const send = (body: string, headers: Record<string, string> = {}): Promise<OutboundResponse> =>
      settle(
        h.clock,
        client.request({
          host: node.self.address,
          port: node.self.port,
          body: Buffer.from(body),
          headers: { 'content-type': 'application/json', ...headers },
          signal: new AbortController().signal,
        }),
      );
    const signed = (envelope: Record<string, unknown>) => signEnvelope(envelope, stranger);
    const from = { address: '127.0.0.9', port: 4000 };
    const broadcast = signed({ type: 2, data: null, from });
    const cases: [string, Promise<OutboundResponse>][] = [
      ['invalid_message', send('{}')],
      ['method_not_allowed', send(JSON.stringify({ type: 99, data: null, from }))],
      ['gop2p_not_allowed', send(JSON.stringify({ type: 2, data: null, from }))],
      ['unsigned', send(JSON.stringify({ type: 2, data: null, from: { ...from, id: stranger.id } }))],
      ['bad_signature', send(broadcast.body.replace('"data":null', '"data":""'), broadcast.headers)],
      [
        'stale',
        send(
          signed({ type: 2, data: null, from, ts: 1 }).body,
          signed({ type: 2, data: null, from, ts: 1 }).headers,
        ),
      ],
      ['not_registered', send(broadcast.body, broadcast.headers)],
    ];
    const expected = new Map<string, number>();
    for (const [reason, answer] of cases) {
      const res = await answer;
      assert.ok(res.status >= 400, `${reason}: status ${res.status}`);
      assert.equal(refusedError(res).reason, reason);
      const key = `status="${res.status}",reason="${reason}"`;
      expected.set(key, (expected.get(key) ?? 0) + 1);
    }
    const metrics = await served.handler()({
      method: 'GET',
      path: '/metrics',
      headers: {},
      body: new Uint8Array(0),
      remoteAddress: '127.0.0.1',
    });
    const text = String(metrics.body);
    for (const [labels, n] of expected) {
      assert.match(text, new RegExp(`tsp2p_requests_refused_total\\{${labels}\\} ${n}\\n`), labels);
    }
  });
});

/** A transport that keeps its listener's handler, to ask the node for `GET /metrics`. */
function capturing(inner: Transport): { transport: Transport; handler: () => InboundHandler } {
  let handler: InboundHandler | undefined;
  return {
    transport: {
      listen: (options) => {
        handler = options.handler;
        return inner.listen(options);
      },
      request: (request) => inner.request(request),
      close: (options) => inner.close(options),
    },
    handler: () => handler!,
  };
}
