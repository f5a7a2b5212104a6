/**
 * A room's publish that gossip missed at one subscriber, when it is the last of its burst: no
 * later message of its stream shows the gap, and the periodic repair is made far away here (10
 * minutes), so only the look at the channel that each gossiped message sets (`CatchUp.tail`)
 * can bring it. Found at 1,000 nodes in `test:sim:large`: one subscriber of a gossiped room
 * lacked the second of two publishes for the whole minute the test waited.
 */

import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Message, Node } from '../../src/index.js';
import type { InboundRequest, Transport } from '../../src/transport/transport.js';
import { simNetworkFor } from './network.js';

const TOPIC_KEY = Buffer.from('"topic":"room"', 'latin1');
/** A log summary request (type 12): the first request of each catch-up session. */
const SUMMARY_TYPE = Buffer.from('"type":12', 'latin1');

test('the last publish of a burst that gossip missed at a subscriber comes by catch-up within seconds', async (t) => {
  const sim = simNetworkFor(t);
  // Rooms above 4 subscribers spread by gossip (a fanout of 8 of 10 nodes: every other node
  // has each message within two hops); the periodic repair is out of reach.
  const options = {
    gossipThreshold: 4,
    fanout: 8,
    timings: { pushPullIntervalMs: 600_000 },
  };
  // The victim's inbound side can swallow every request carrying a message of the room, and
  // answer it 200 as if taken: what gossip not choosing it looks like from there.
  const swallow = { on: false, swallowed: 0, summaries: 0 };
  const inner = sim.network.transport();
  const victimTransport: Transport = {
    listen: (o) =>
      inner.listen({
        ...o,
        handler: (req: InboundRequest) => {
          if (swallow.on && Buffer.from(req.body).includes(TOPIC_KEY)) {
            swallow.swallowed++;
            return { status: 200, body: '' };
          }
          return o.handler(req);
        },
      }),
    close: () => inner.close(),
    request: (r) => {
      if (Buffer.from(r.body).includes(SUMMARY_TYPE)) swallow.summaries++;
      return inner.request(r);
    },
  };
  const victim = await sim.add({ ...options, transport: victimTransport });
  for (let i = 0; i < 9; i++) await sim.add(options);
  for (const n of sim.nodes) await n.subscribe('room');
  await sim.joinThroughFirst();
  assert.ok(await sim.fullViews(60_000, 50), `seed ${sim.seed}: views`);

  const got = new Map<Node, Message[]>(sim.nodes.map((n) => [n, []]));
  for (const n of sim.nodes) n.on('message', (m) => got.get(n)!.push(m));
  const has = (n: Node, text: string) => got.get(n)!.some((m) => m.text === text);
  const sender = sim.nodes[5]!;
  const others = sim.nodes.filter((n) => n !== sender);

  // The first of the burst reaches everyone, the victim by gossip (so its look is set) ...
  await sim.run(sender.publish('room', 'one'));
  assert.ok(
    await sim.clock.advanceUntil(() => others.every((n) => has(n, 'one')), 5_000, 5),
    `seed ${sim.seed}: the first publish reaches everyone`,
  );
  assert.equal(got.get(victim)![0]!.hops !== undefined, true, 'the room spreads by gossip');
  // ... the last never reaches the victim live, from any path.
  swallow.on = true;
  const start = sim.clock.now();
  await sim.run(sender.publish('room', 'two'));
  assert.ok(
    await sim.clock.advanceUntil(() => others.every((n) => n === victim || has(n, 'two')), 5_000, 5),
    `seed ${sim.seed}: the last publish reaches everyone else`,
  );
  assert.ok(swallow.swallowed > 0, 'the victim was sent the last publish, and lost it');
  // The look at the room comes about 5 s (the request time limit) after the first message; the
  // fetched message is checked off the main thread, in real time, while the manual clock runs
  // on: hence the margin (the periodic repair is 10 minutes away).
  assert.ok(
    await sim.clock.advanceUntil(() => has(victim, 'two'), 30_000, 50),
    `seed ${sim.seed}: the missed publish never came (${swallow.swallowed} requests swallowed)`,
  );
  const two = got.get(victim)!.filter((m) => m.text === 'two');
  assert.equal(two.length, 1, 'delivered once');
  assert.equal(two[0]!.late, true, 'by catch-up');
  assert.equal(two[0]!.topic, 'room');
  t.diagnostic(`fetched ${((sim.clock.now() - start) / 1000).toFixed(1)} simulated s after the publish`);
  // Once only: the same look is not set again while nothing more comes.
  const before = swallow.summaries;
  assert.ok(before > 0, 'the summary requests are counted');
  await sim.clock.advance(30_000);
  assert.equal(swallow.summaries, before, 'no more sessions without more gossip');
});
