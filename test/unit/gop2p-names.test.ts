import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ManualClock } from '../../src/clock.js';
import { Gop2pNames } from '../../src/compat/gop2p-names.js';
import { noopLogger, type Peer } from '../../src/index.js';
import type { OutboundResponse } from '../../src/transport/transport.js';

const SELF: Peer = { id: 'self', address: '127.0.0.1', port: 7000 };
const enc = new TextEncoder();
const dec = new TextDecoder();

function answer(status: number, body = ''): OutboundResponse {
  return { status, headers: {}, body: enc.encode(body) };
}

/** A gop2p peer named `own` that knows this node by `knows` (or by nothing). */
function gop2p(own: string, knows: string | undefined) {
  const got: { from: string; host: string; body: Record<string, unknown> }[] = [];
  const probe = async (_a: string, _p: number, host: string): Promise<OutboundResponse> =>
    host === own
      ? answer(400, 'You can not connect with yourself.\n')
      : answer(400, 'No valid Message provided\n');
  const send = async (body: Uint8Array, host: string): Promise<OutboundResponse> => {
    const env = JSON.parse(dec.decode(body)) as { from: { address: string; port: number } } & Record<
      string,
      unknown
    >;
    const from = `${env.from.address}:${env.from.port}`;
    got.push({ from, host, body: env });
    if (env.type === 0 || from === knows) return answer(200);
    return answer(403, 'Peer not registered\n');
  };
  return { got, probe, send };
}

function names(probe: (a: string, p: number, h: string) => Promise<OutboundResponse>): Gop2pNames {
  return new Gop2pNames({ self: () => SELF, clock: new ManualClock(0), logger: noopLogger, probe });
}

const tsp2pEnvelope = (type: number): Uint8Array =>
  enc.encode(
    JSON.stringify({
      type,
      v: 1,
      id: 'x',
      ts: 1,
      data: 'aGk=',
      from: { address: '127.0.0.1', port: 7000, id: 'self' },
    }),
  );

describe('Gop2pNames', () => {
  test('asks a gop2p peer its name through the Host header, and speaks to the chat as 0.0.0.0', async () => {
    const peer = gop2p('0.0.0.0:6001', '0.0.0.0:7000');
    const n = names(peer.probe);
    assert.deepEqual(await n.discover('127.0.0.1', 6001), { address: '0.0.0.0', port: 6001 });
    assert.deepEqual(n.nameFor('127.0.0.1', 6001), { address: '0.0.0.0', port: 7000 });
    const res = await n.request({ address: '127.0.0.1', port: 6001 }, tsp2pEnvelope(2), peer.send);
    assert.equal(res.status, 200);
    // A plain gop2p envelope, with its own name as Host.
    assert.deepEqual(peer.got, [
      {
        from: '0.0.0.0:7000',
        host: '0.0.0.0:7000',
        body: { type: 2, data: 'aGk=', from: { port: 7000, address: '0.0.0.0' } },
      },
    ]);
  });

  test('a library user that names itself 127.0.0.1 gets the advertised name', async () => {
    const peer = gop2p('127.0.0.1:6002', '127.0.0.1:7000');
    const n = names(peer.probe);
    assert.deepEqual(await n.discover('127.0.0.1', 6002), { address: '127.0.0.1', port: 6002 });
    assert.deepEqual(n.nameFor('127.0.0.1', 6002), { address: '127.0.0.1', port: 7000 });
  });

  test('a 403 Peer not registered tries the other names at once and keeps the one taken', async () => {
    const peer = gop2p('0.0.0.0:6003', 'localhost:7000');
    const n = names(peer.probe);
    await n.discover('127.0.0.1', 6003);
    const res = await n.request({ address: '127.0.0.1', port: 6003 }, tsp2pEnvelope(3), peer.send);
    assert.equal(res.status, 200);
    assert.deepEqual(
      peer.got.map((g) => g.from),
      ['0.0.0.0:7000', '127.0.0.1:7000', 'localhost:7000'],
    );
    assert.deepEqual(n.nameFor('127.0.0.1', 6003), { address: 'localhost', port: 7000 });
  });

  test('a connect is sent once, in the likeliest name; a refusal by every name says which were tried', async () => {
    const peer = gop2p('0.0.0.0:6004', undefined);
    const n = names(peer.probe);
    await n.discover('127.0.0.1', 6004);
    await n.request({ address: '127.0.0.1', port: 6004 }, tsp2pEnvelope(0), peer.send);
    assert.equal(peer.got.length, 1);
    const res = await n.request({ address: '127.0.0.1', port: 6004 }, tsp2pEnvelope(1), peer.send);
    assert.equal(res.status, 403);
    assert.match(
      dec.decode(res.body),
      /^Peer not registered: 127\.0\.0\.1:6004 knows this node by none of 0\.0\.0\.0:7000, 127\.0\.0\.1:7000/,
    );
  });

  test('a gop2p newcomer gets members in names it can match', async () => {
    const n = names(gop2p('x', undefined).probe);
    n.learn('127.0.0.1', 6005, { address: '0.0.0.0', port: 6005 });
    const members = [
      { kind: 'gop2p' as const, peer: { id: '127.0.0.1:6005', address: '127.0.0.1', port: 6005 } },
      { kind: 'tsp2p' as const, peer: { id: 'b', address: '127.0.0.1', port: 7001 } },
      { kind: 'tsp2p' as const, peer: { id: 'c', address: '192.0.2.7', port: 7002 } },
    ];
    assert.deepEqual(n.listFor({ address: '0.0.0.0', port: 6006 }, '127.0.0.1', members), [
      { address: '0.0.0.0', port: 6005 },
      { address: '0.0.0.0', port: 7001 },
      { address: '192.0.2.7', port: 7002 },
    ]);
    // A newcomer that names itself 127.0.0.1 gets the advertised addresses.
    assert.deepEqual(n.listFor({ address: '127.0.0.1', port: 6007 }, '127.0.0.1', members).slice(1), [
      { address: '127.0.0.1', port: 7001 },
      { address: '192.0.2.7', port: 7002 },
    ]);
    // A sender naming itself 0.0.0.0 is dialed at its source address.
    assert.equal(n.dialAddress({ address: '0.0.0.0', port: 6005 }, '127.0.0.1'), '127.0.0.1');
  });
});
