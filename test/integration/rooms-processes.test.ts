/**
 * Subscribe, then publish at once (issue 14), with four real `tsp2p node` processes on
 * 127.0.0.1: a publish made by any member after a subscribe resolved reaches the subscriber,
 * and nobody else.
 */

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type CliProcess, events, startListening, waitForEvent } from '../helpers/cli-process.js';

test('four processes: each subscribes, and the others publish at once; every publish reaches exactly the subscribers', async (t) => {
  const { p: first, address: a } = await startListening(t, 'n0', ['node', '--name', 'n0']);
  const nodes: CliProcess[] = [first];
  for (let i = 1; i < 4; i++) {
    const { p } = await startListening(t, `n${i}`, ['node', '--name', `n${i}`, '--join', a]);
    await waitForEvent(p, 'connected');
    nodes.push(p);
  }
  // Every node sees the three others.
  const joins = (p: CliProcess) =>
    new Set(
      events(p)
        .filter((ev) => ev.event === 'member:join')
        .map((ev) => ev.id),
    ).size;
  for (const p of nodes) if (joins(p) < 3) await p.waitFor(() => joins(p) >= 3);
  const texts = (p: CliProcess, topic: string) =>
    events(p)
      .filter((ev) => ev.event === 'message' && ev.topic === topic)
      .map((ev) => ev.text as string);

  // Round 1, for each node in turn: it subscribes to its own room; the moment that resolves,
  // the three others publish to it.
  for (const [i, p] of nodes.entries()) {
    const room = `room-${i}`;
    const mark = p.mark();
    p.send(JSON.stringify({ subscribe: room }));
    await waitForEvent(p, 'subscribed', () => true, mark);
    for (const [j, q] of nodes.entries())
      if (j !== i) q.send(JSON.stringify({ topic: room, text: `${room} from n${j}` }));
  }
  for (const [i, p] of nodes.entries()) {
    const room = `room-${i}`;
    for (const [j] of nodes.entries()) {
      if (j !== i)
        await waitForEvent(p, 'message', (ev) => ev.topic === room && ev.text === `${room} from n${j}`);
    }
  }
  // Round 2: all four subscribe to 'all' at once, and publish as soon as their own call resolved.
  const marks = nodes.map((p) => p.mark());
  for (const p of nodes) p.send('{"subscribe":"all"}');
  await Promise.all(nodes.map((p, i) => waitForEvent(p, 'subscribed', () => true, marks[i])));
  for (const [i, p] of nodes.entries()) p.send(JSON.stringify({ topic: 'all', text: `all from n${i}` }));
  for (const [i, p] of nodes.entries()) {
    for (let j = 0; j < 4; j++) {
      if (j !== i)
        await waitForEvent(p, 'message', (ev) => ev.topic === 'all' && ev.text === `all from n${j}`);
    }
  }
  // A plain broadcast after them, to each: it arrives after everything sent before it.
  nodes[0]!.send('the end');
  for (const p of nodes.slice(1)) await waitForEvent(p, 'message', (ev) => ev.text === 'the end');
  for (const [i, p] of nodes.entries()) {
    for (let k = 0; k < 4; k++) {
      // Exactly its own room's three publishes, once each; none of another room.
      assert.equal(texts(p, `room-${k}`).length, k === i ? 3 : 0, `n${i} room-${k}`);
    }
    assert.equal(texts(p, 'all').length, 3, `n${i} all`);
    assert.equal(new Set(texts(p, 'all')).size, 3);
  }
});
