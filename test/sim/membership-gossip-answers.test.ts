import assert from 'node:assert/strict';
import { test } from 'node:test';
import { simulation } from '../../src/node.js';
import type { OutboundRequest, OutboundResponse, Transport } from '../../src/transport/transport.js';
import { simNetworkFor } from './network.js';

interface WireUpdate {
  readonly id: string;
  readonly state: string;
  readonly inc: number;
  readonly by?: string;
}

/** `transport`, keeping each ping's and gossip's updates and those of its answer in `exchanges`. */
function spied(transport: Transport, exchanges: { sent: WireUpdate[]; answered: WireUpdate[] }[]): Transport {
  const send = transport.request.bind(transport);
  transport.request = async (request: OutboundRequest): Promise<OutboundResponse> => {
    const res = await send(request);
    const req = JSON.parse(Buffer.from(request.body).toString()) as { type: number; m?: WireUpdate[] };
    if ((req.type === 4 || req.type === 7) && res.status === 200) {
      const ans = JSON.parse(Buffer.from(res.body).toString()) as { m?: WireUpdate[] };
      exchanges.push({ sent: req.m ?? [], answered: ans.m ?? [] });
    }
    return res;
  };
  return transport;
}

const same = (a: WireUpdate, b: WireUpdate) =>
  a.id === b.id && a.state === b.state && a.inc === b.inc && a.by === b.by;

test('the answer to a ping or a gossip never repeats news its request carried', async (t) => {
  const sim = simNetworkFor(t);
  const exchanges: { sent: WireUpdate[]; answered: WireUpdate[] }[] = [];
  const add = () => sim.add({ transport: spied(sim.network.transport(), exchanges) });
  // More than the 64 members a newcomer announces itself to: gossip tells the rest.
  for (let i = 0; i < 100; i++) await add();
  const entries = sim.nodes.map((n) => simulation.selfUpdate(n));
  for (const n of sim.nodes) simulation.seedView(n, entries);
  const fresh = await add();
  await sim.run(fresh.connect(sim.nodes[7]!.self));
  assert.ok(await sim.fullViews(60_000), `the newcomer did not reach every view (seed ${sim.seed})`);
  // Every node spread the newcomer's entry: the exchanges carried it, both ways.
  const carried = exchanges.filter((x) => x.sent.some((u) => u.id === fresh.id));
  assert.ok(carried.length >= sim.nodes.length, `only ${carried.length} requests carried the newcomer`);
  assert.ok(
    exchanges.some((x) => x.answered.length > 0),
    'no answer carried news',
  );
  const repeated = exchanges.filter((x) => x.answered.some((a) => x.sent.some((s) => same(a, s))));
  assert.equal(
    repeated.length,
    0,
    `${repeated.length} answers repeated news their request carried (seed ${sim.seed})`,
  );
});
