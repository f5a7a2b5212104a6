import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import {
  type Decoded,
  decodeData,
  decodeEnvelope,
  decodeMemberList,
  encodeData,
  encodeEnvelope,
  encodeMemberList,
} from '../../src/protocol/codec.js';
import { isTsp2pEnvelope, openEnvelope, sealEnvelope } from '../../src/protocol/envelope.js';
import {
  type Envelope,
  FIELD_LIMITS,
  MessageType,
  PROTOCOL_VERSION,
  type WirePeer,
} from '../../src/protocol/schema.js';

/** The recorded gop2p exchanges (a copy of ../shared/gop2p-wire/exchanges.json). */
interface Exchanges {
  requests_sent_by_a_go_node: { what: string; body: string }[];
  answers_of_a_go_node: { request: string; status: number; body: string }[];
}
const exchanges = JSON.parse(
  readFileSync(new URL('./fixtures/gop2p-exchanges.json', import.meta.url), 'utf8'),
) as Exchanges;

const bytes = (s: string): Uint8Array => Buffer.from(s, 'utf8');
const text = (data: Uint8Array): string => Buffer.from(data).toString('utf8');

function expectOk<T>(decoded: Decoded<T>, what: string): T {
  if (!decoded.ok) assert.fail(`${what}: refused ${decoded.refusal.status} ${decoded.refusal.message}`);
  return decoded.value;
}

function expectRefusal<T>(decoded: Decoded<T>, status: number, what: string): string {
  if (decoded.ok) assert.fail(`${what}: expected a ${status} refusal, got ${JSON.stringify(decoded.value)}`);
  assert.equal(decoded.refusal.status, status, `${what}: ${decoded.refusal.message}`);
  assert.ok(!/[\r\n]/.test(decoded.refusal.message), `${what}: the message is one line`);
  assert.ok(decoded.refusal.message.length > 0);
  return decoded.refusal.message;
}

// What a tsp2p node must read out of each request a gop2p node sends, keyed by the recorded body.
interface Expected {
  type: MessageType;
  text: string;
  from: WirePeer;
  to?: WirePeer[];
}
const GO_NODE = { port: 6100, address: '0.0.0.0' };
const EXPECTED_SENT: Record<string, Expected> = {
  '{"type":0,"data":null,"from":{"port":6100,"address":"0.0.0.0"}}': {
    type: MessageType.Connect,
    text: '',
    from: GO_NODE,
  },
  '{"type":2,"data":"aGVsbG8gd29ybGQ=","from":{"port":6100,"address":"0.0.0.0"}}': {
    type: MessageType.Broadcast,
    text: 'hello world',
    from: GO_NODE,
  },
  '{"type":3,"data":"cHJpdmF0ZQ==","from":{"port":6100,"address":"0.0.0.0"},"to":[{"port":7777,"address":"0.0.0.0"}]}':
    { type: MessageType.Direct, text: 'private', from: GO_NODE, to: [{ port: 7777, address: '0.0.0.0' }] },
  '{"type":1,"data":null,"from":{"port":6100,"address":"0.0.0.0"}}': {
    type: MessageType.Disconnect,
    text: '',
    from: GO_NODE,
  },
};
const EXPECTED_ANSWERED: Record<string, Expected | 405> = {
  '{"type":0,"data":null,"from":{"port":6001,"address":"127.0.0.1"}}': {
    type: MessageType.Connect,
    text: '',
    from: { port: 6001, address: '127.0.0.1' },
  },
  '{"type":0,"data":null,"from":{"port":7777,"address":"127.0.0.1"},"id":"abc","sig":"zzz"}': {
    type: MessageType.Connect,
    text: '',
    from: { port: 7777, address: '127.0.0.1' },
  },
  '{"type":2,"data":"aGk=","from":{"port":6001,"address":"127.0.0.1"},"extra":1}': {
    type: MessageType.Broadcast,
    text: 'hi',
    from: { port: 6001, address: '127.0.0.1' },
  },
  '{"type":2,"data":"aGk=","from":{"port":9999,"address":"127.0.0.1"}}': {
    type: MessageType.Broadcast,
    text: 'hi',
    from: { port: 9999, address: '127.0.0.1' },
  },
  // gop2p answers 405 to type 4; for tsp2p it is a ping, which a node refuses (405) from an
  // unversioned gop2p sender, but which decodes.
  '{"type":4,"from":{"port":6001,"address":"127.0.0.1"}}': {
    type: MessageType.Ping,
    text: '',
    from: { port: 6001, address: '127.0.0.1' },
  },
};

function checkDecoded(envelope: Envelope, expected: Expected, what: string): void {
  assert.equal(envelope.type, expected.type, what);
  assert.equal(text(decodeData(envelope.data)), expected.text, what);
  assert.deepEqual(envelope.from, expected.from, what);
  assert.deepEqual(envelope.to ?? undefined, expected.to, what);
  // No version and no node id: the node must treat it as a gop2p peer (compat mode).
  assert.equal(isTsp2pEnvelope(envelope), false, what);
}

describe('decodeEnvelope reads every request a gop2p node sends', () => {
  test('the recording holds the requests this test expects', () => {
    const sent = new Set(exchanges.requests_sent_by_a_go_node.map((r) => r.body));
    assert.deepEqual([...sent].sort(), Object.keys(EXPECTED_SENT).sort());
    const answered = exchanges.answers_of_a_go_node
      .map((a) => a.request)
      .filter((r) => r.startsWith('{'))
      .sort();
    assert.deepEqual(answered, Object.keys(EXPECTED_ANSWERED).sort());
  });

  for (const request of exchanges.requests_sent_by_a_go_node) {
    test(`sent by gop2p: ${request.what}`, () => {
      const expected = EXPECTED_SENT[request.body];
      assert.ok(expected, `no expectation for ${request.body}`);
      checkDecoded(expectOk(decodeEnvelope(bytes(request.body)), request.what), expected, request.what);
    });
  }

  for (const answer of exchanges.answers_of_a_go_node) {
    if (!answer.request.startsWith('{')) continue;
    test(`answered ${answer.status} by gop2p: ${answer.request}`, () => {
      const expected = EXPECTED_ANSWERED[answer.request];
      assert.ok(expected !== undefined, `no expectation for ${answer.request}`);
      const decoded = decodeEnvelope(bytes(answer.request));
      if (expected === 405) {
        assert.equal(answer.status, 405);
        const message = expectRefusal(decoded, 405, answer.request);
        // gop2p answers 'Method not allowed'; tsp2p keeps those words.
        assert.match(message, /^Method not allowed/);
        return;
      }
      checkDecoded(expectOk(decoded, answer.request), expected, answer.request);
    });
  }

  test("gop2p's 'garbage' request is refused with 400 'No valid Message provided'", () => {
    const recorded = exchanges.answers_of_a_go_node.find((a) => a.request === 'garbage');
    assert.ok(recorded);
    assert.equal(recorded.status, 400);
    const message = expectRefusal(decodeEnvelope(bytes('garbage')), 400, 'garbage');
    assert.ok(message.startsWith(recorded.body.trim()), message);
  });

  test('unknown fields are dropped, known tsp2p fields are kept', () => {
    const env = expectOk(
      decodeEnvelope(
        bytes(
          JSON.stringify({
            type: 2,
            data: 'aGk=',
            from: { address: '127.0.0.1', port: 6001, id: 'n1', name: 'ada', extra: true },
            v: 1,
            id: 'm1',
            ts: 1700000000000,
            sig: 'zzz',
          }),
        ),
      ),
      'tsp2p envelope',
    );
    assert.deepEqual(env, {
      type: 2,
      data: 'aGk=',
      from: { address: '127.0.0.1', port: 6001, id: 'n1', name: 'ada' },
      v: 1,
      id: 'm1',
      ts: 1700000000000,
    });
    assert.equal(isTsp2pEnvelope(env), true);
  });

  test('to: null (a Go nil slice) and data: "" are accepted', () => {
    const env = expectOk(
      decodeEnvelope(bytes('{"type":3,"data":"","from":{"address":"a","port":1},"to":null}')),
      'nil to',
    );
    assert.equal(env.to, null);
    assert.equal(decodeData(env.data).length, 0);
  });
});

describe('decodeEnvelope refuses bad input with a precise status and one-line message', () => {
  const from = { address: '127.0.0.1', port: 6001 };
  const env = (fields: Record<string, unknown>): string => JSON.stringify({ type: 2, from, ...fields });

  const cases: { name: string; body: Uint8Array | string; status: number; mentions?: string }[] = [
    { name: 'empty body', body: '', status: 400, mentions: 'empty' },
    { name: 'not UTF-8', body: new Uint8Array([0x7b, 0xff, 0xfe, 0x7d]), status: 400, mentions: 'UTF-8' },
    { name: 'truncated UTF-8', body: new Uint8Array([0x22, 0xe2, 0x82]), status: 400, mentions: 'UTF-8' },
    { name: 'garbage', body: 'garbage', status: 400, mentions: 'JSON' },
    { name: 'truncated JSON', body: '{"type":2,"from":{', status: 400, mentions: 'JSON' },
    { name: 'JSON array', body: '[{"type":2}]', status: 400, mentions: 'object' },
    { name: 'JSON null', body: 'null', status: 400, mentions: 'object' },
    { name: 'JSON number', body: '42', status: 400, mentions: 'object' },
    { name: 'JSON string', body: '"hello"', status: 400, mentions: 'object' },
    { name: 'missing type', body: JSON.stringify({ from }), status: 400, mentions: 'type' },
    { name: 'type as a string', body: env({ type: '2' }), status: 400, mentions: 'type' },
    { name: 'fractional type', body: env({ type: 2.5 }), status: 400, mentions: 'type' },
    { name: 'type null', body: env({ type: null }), status: 400, mentions: 'type' },
    { name: 'missing from', body: JSON.stringify({ type: 2, data: 'aGk=' }), status: 400, mentions: 'from' },
    { name: 'from as a string', body: env({ from: '127.0.0.1:6001' }), status: 400, mentions: 'from' },
    {
      name: 'from without address',
      body: env({ from: { port: 6001 } }),
      status: 400,
      mentions: 'from.address',
    },
    { name: 'from.address empty', body: env({ from: { address: '', port: 6001 } }), status: 400 },
    { name: 'from without port', body: env({ from: { address: 'a' } }), status: 400, mentions: 'from.port' },
    { name: 'from.port as a string', body: env({ from: { address: 'a', port: '6001' } }), status: 400 },
    {
      name: 'from.port 0',
      body: env({ from: { address: 'a', port: 0 } }),
      status: 400,
      mentions: 'from.port',
    },
    { name: 'from.port 65536', body: env({ from: { address: 'a', port: 65536 } }), status: 400 },
    { name: 'from.port -1', body: env({ from: { address: 'a', port: -1 } }), status: 400 },
    { name: 'from.port fractional', body: env({ from: { address: 'a', port: 80.5 } }), status: 400 },
    { name: 'data as a number', body: env({ data: 123 }), status: 400, mentions: 'data' },
    { name: 'data as bytes array', body: env({ data: [104, 105] }), status: 400, mentions: 'data' },
    { name: 'data invalid base64', body: env({ data: '!!!not base64' }), status: 400, mentions: 'data' },
    { name: 'data base64 without padding', body: env({ data: 'aGk' }), status: 400, mentions: 'data' },
    { name: 'to as an object', body: env({ to: { address: 'a', port: 1 } }), status: 400, mentions: 'to' },
    {
      name: 'to with a bad port',
      body: env({ to: [{ address: 'a', port: 0 }] }),
      status: 400,
      mentions: 'to',
    },
    { name: 'v 0', body: env({ v: 0 }), status: 400, mentions: 'v' },
    { name: 'v as a string', body: env({ v: '1' }), status: 400, mentions: 'v' },
    { name: 'id empty', body: env({ id: '' }), status: 400, mentions: 'id' },
    { name: 'id as a number', body: env({ id: 7 }), status: 400, mentions: 'id' },
    { name: 'ts negative', body: env({ ts: -1 }), status: 400, mentions: 'ts' },
    { name: 'ts as a string', body: env({ ts: 'now' }), status: 400, mentions: 'ts' },
    {
      name: 'from.id as a number',
      body: env({ from: { ...from, id: 1 } }),
      status: 400,
      mentions: 'from.id',
    },
    { name: 'unknown type 99', body: env({ type: 99 }), status: 405 },
    { name: 'unknown type 99', body: env({ type: 99 }), status: 405 },
    { name: 'unknown type -1', body: env({ type: -1 }), status: 405 },
    // over-long fields
    {
      name: 'from.address too long',
      body: env({ from: { address: 'a'.repeat(FIELD_LIMITS.address + 1), port: 1 } }),
      status: 400,
      mentions: 'from.address',
    },
    {
      name: 'from.id too long',
      body: env({ from: { ...from, id: 'x'.repeat(FIELD_LIMITS.id + 1) } }),
      status: 400,
      mentions: 'from.id',
    },
    {
      name: 'from.name too long',
      body: env({ from: { ...from, name: 'n'.repeat(FIELD_LIMITS.name + 1) } }),
      status: 400,
      mentions: 'from.name',
    },
    {
      name: 'message id too long',
      body: env({ id: 'm'.repeat(FIELD_LIMITS.messageId + 1) }),
      status: 400,
      mentions: 'id',
    },
    {
      name: 'too many recipients',
      body: env({
        type: 3,
        to: Array.from({ length: FIELD_LIMITS.recipients + 1 }, (_, i) => ({ address: 'a', port: 1 + i })),
      }),
      status: 400,
      mentions: 'to',
    },
  ];

  for (const c of cases) {
    test(`${c.name} -> ${c.status}`, () => {
      const body = typeof c.body === 'string' ? bytes(c.body) : c.body;
      const message = expectRefusal(decodeEnvelope(body), c.status, c.name);
      if (c.status === 400) assert.match(message, /^No valid Message provided: /);
      if (c.status === 405) assert.match(message, /^Method not allowed/);
      if (c.mentions !== undefined) assert.ok(message.includes(c.mentions), `${c.name}: ${message}`);
    });
  }

  test('fields at their limits are accepted', () => {
    const body = env({
      type: 3,
      from: {
        address: 'a'.repeat(FIELD_LIMITS.address),
        port: 65535,
        id: 'x'.repeat(FIELD_LIMITS.id),
        name: 'n'.repeat(FIELD_LIMITS.name),
      },
      id: 'm'.repeat(FIELD_LIMITS.messageId),
      to: Array.from({ length: FIELD_LIMITS.recipients }, (_, i) => ({ address: 'a', port: 1 + i })),
      ts: 0,
      v: 1,
    });
    const envelope = expectOk(decodeEnvelope(bytes(body)), 'at the limits');
    assert.equal(envelope.to?.length, FIELD_LIMITS.recipients);
  });

  test('a message never echoes a newline from the input', () => {
    const message = expectRefusal(
      decodeEnvelope(bytes(env({ 'a\nb': 1, from: { address: 'a', port: 'x\ny' } }))),
      400,
      'newline in input',
    );
    assert.ok(!message.includes('\n'));
  });
});

describe('sealEnvelope and openEnvelope round-trip', () => {
  const from: WirePeer = { address: '127.0.0.1', port: 5001, id: 'a'.repeat(32), name: 'ada' };

  test('a broadcast keeps every field and every byte', () => {
    const data = new Uint8Array(256).map((_, i) => i);
    const body = sealEnvelope({ type: MessageType.Broadcast, from, data, id: 'msg-1', ts: 1234 }).body;
    const env = expectOk(openEnvelope(body), 'broadcast');
    assert.equal(env.type, MessageType.Broadcast);
    assert.deepEqual(env.from, from);
    assert.equal(env.v, PROTOCOL_VERSION);
    assert.equal(env.id, 'msg-1');
    assert.equal(env.ts, 1234);
    assert.deepEqual(decodeData(env.data), data);
    assert.equal(env.to, undefined);
    assert.equal(isTsp2pEnvelope(env), true);
  });

  test('a direct message keeps its recipients and UTF-8 text', () => {
    const to: WirePeer[] = [
      { address: '127.0.0.1', port: 5002 },
      { address: '::1', port: 5003, id: 'b'.repeat(32), name: 'bob' },
    ];
    const data = bytes('héllo 👋 世界');
    const body = sealEnvelope({ type: MessageType.Direct, from, data, to, id: 'msg-2', ts: 0 }).body;
    const env = expectOk(openEnvelope(body), 'direct');
    assert.equal(env.type, MessageType.Direct);
    assert.deepEqual(env.to, to);
    assert.equal(text(decodeData(env.data)), 'héllo 👋 世界');
  });

  test('a connect without data carries data: null, as gop2p does', () => {
    const body = sealEnvelope({ type: MessageType.Connect, from, id: 'c', ts: 1 }).body;
    const raw = JSON.parse(Buffer.from(body).toString('utf8')) as Record<string, unknown>;
    assert.equal(raw.data, null);
    assert.equal(raw.type, 0);
    assert.deepEqual(raw.from, from);
    const env = expectOk(openEnvelope(body), 'connect');
    assert.equal(decodeData(env.data).length, 0);
  });

  test('an empty payload round-trips as empty', () => {
    const body = sealEnvelope({
      type: MessageType.Broadcast,
      from,
      data: new Uint8Array(0),
      id: 'e',
      ts: 1,
    }).body;
    const env = expectOk(openEnvelope(body), 'empty payload');
    assert.equal(decodeData(env.data).length, 0);
  });

  test('encodeEnvelope of a decoded envelope decodes to the same envelope', () => {
    const original: Envelope = { type: 2, data: 'aGk=', from: { address: 'h', port: 1 }, id: 'x', v: 1 };
    assert.deepEqual(expectOk(decodeEnvelope(encodeEnvelope(original)), 're-encode'), original);
  });

  test('encodeData is standard padded base64 of exactly the given view', () => {
    assert.equal(encodeData(bytes('hello world')), 'aGVsbG8gd29ybGQ=');
    assert.equal(encodeData(new Uint8Array(0)), '');
    const backing = new Uint8Array([0, 1, 2, 0xfb, 0xff, 9]);
    assert.equal(encodeData(backing.subarray(3, 5)), '+/8=');
    assert.deepEqual(decodeData('+/8='), new Uint8Array([0xfb, 0xff]));
    assert.deepEqual(decodeData(null), new Uint8Array(0));
    assert.deepEqual(decodeData(undefined), new Uint8Array(0));
  });

  test('decodeData gives what Buffer.from decodes, as a plain Uint8Array of its own bytes', () => {
    const reference = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'base64'));
    // Canonical payloads of every size around the slab's bounds, and enough to fill several slabs.
    const views: [Uint8Array, Uint8Array][] = [];
    for (let n = 1; n <= 4_200; n += n < 40 ? 1 : 97) {
      const data = Uint8Array.from({ length: n }, (_, i) => (i * 31 + n) & 0xff);
      const got = decodeData(encodeData(data));
      assert.equal(Object.getPrototypeOf(got), Uint8Array.prototype, `size ${n}: a plain Uint8Array`);
      assert.deepEqual(got, data, `size ${n}`);
      views.push([got, data]);
    }
    // Each payload has bytes of its own: writing one changes no other.
    for (const [got] of views) got.fill(0);
    for (const [got, data] of views.slice(0, 3)) {
      got.set(data);
      assert.deepEqual(got, data);
    }
    for (const [got] of views.slice(3)) assert.ok(got.every((b) => b === 0));
    // Not canonical base64 (unpadded, spaces, padding inside, url alphabet, junk): as Buffer.from.
    for (const s of [
      'aGk',
      'aGk=aGk=',
      'aG k=',
      'A===',
      '====',
      '-_8=',
      '+/8',
      'aGVsbG8*',
      'aGVs\nbG8=',
      'QQ==QQ==',
    ]) {
      const got = decodeData(s);
      assert.equal(Object.getPrototypeOf(got), Uint8Array.prototype, s);
      assert.deepEqual(got, reference(s), JSON.stringify(s));
    }
  });
});

describe('decodeMemberList reads the answers of a gop2p node', () => {
  for (const answer of exchanges.answers_of_a_go_node) {
    if (answer.status !== 200 || !answer.body.startsWith('[')) continue;
    test(`recorded answer ${answer.body}`, () => {
      const list = expectOk(decodeMemberList(bytes(answer.body)), answer.body);
      assert.deepEqual(list, JSON.parse(answer.body));
    });
  }

  test("'[]' and 'null' (a Go nil slice) are an empty list", () => {
    assert.deepEqual(expectOk(decodeMemberList(bytes('[]')), '[]'), []);
    assert.deepEqual(expectOk(decodeMemberList(bytes('null')), 'null'), []);
  });

  test('one gop2p member', () => {
    assert.deepEqual(expectOk(decodeMemberList(bytes('[{"port":6001,"address":"127.0.0.1"}]')), 'one'), [
      { port: 6001, address: '127.0.0.1' },
    ]);
  });

  test('extra fields are dropped; tsp2p id and name are kept', () => {
    const body =
      '[{"port":6001,"address":"127.0.0.1","extra":1},{"port":6002,"address":"h","id":"n2","name":"b"}]';
    assert.deepEqual(expectOk(decodeMemberList(bytes(body)), 'extra'), [
      { port: 6001, address: '127.0.0.1' },
      { port: 6002, address: 'h', id: 'n2', name: 'b' },
    ]);
  });

  for (const bad of [
    '',
    'garbage',
    '{}',
    '"[]"',
    '42',
    '[1]',
    '[null]',
    '[{"port":6001}]',
    '[{"address":"127.0.0.1"}]',
    '[{"port":0,"address":"127.0.0.1"}]',
    '[{"port":"6001","address":"127.0.0.1"}]',
    '[{"port":6001,"address":""}]',
  ]) {
    test(`refuses ${JSON.stringify(bad)}`, () => {
      expectRefusal(decodeMemberList(bytes(bad)), 400, bad);
    });
  }

  test('refuses bytes that are not UTF-8', () => {
    expectRefusal(decodeMemberList(new Uint8Array([0x5b, 0xff, 0x5d])), 400, 'not UTF-8');
  });
});

describe('encodeMemberList writes answers a gop2p node accepts', () => {
  test('an array of {port: number, address: string}, extras allowed', () => {
    const members: WirePeer[] = [
      { address: '127.0.0.1', port: 6001 },
      { address: '::1', port: 6002, id: 'c'.repeat(32), name: 'carol' },
    ];
    const parsed: unknown = JSON.parse(Buffer.from(encodeMemberList(members)).toString('utf8'));
    assert.ok(Array.isArray(parsed));
    assert.equal(parsed.length, 2);
    for (const [i, m] of (parsed as Record<string, unknown>[]).entries()) {
      assert.equal(typeof m.port, 'number');
      assert.equal(typeof m.address, 'string');
      assert.equal(m.port, members[i]!.port);
      assert.equal(m.address, members[i]!.address);
    }
    assert.deepEqual(expectOk(decodeMemberList(encodeMemberList(members)), 'round-trip'), members);
  });

  test('an empty list is [] (never null)', () => {
    assert.equal(Buffer.from(encodeMemberList([])).toString('utf8'), '[]');
  });
});
