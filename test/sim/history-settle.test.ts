/**
 * A newcomer's catch-up skips the past of a topic it will never fetch (before its
 * `historyOnJoin` window). The skip must not lose what the live path still owes it: a publish
 * made after `subscribe()` resolved, which a member serving the summary already holds while the
 * publisher's copy to the newcomer is still being retried.
 */

import assert from 'node:assert/strict';
import { type TestContext, test } from 'node:test';
import type { DeliveryReport, Message } from '../../src/index.js';
import type { OutboundRequest, OutboundResponse } from '../../src/transport/transport.js';
import { simNetworkFor } from './network.js';

/** What a publishes after c subscribed. */
const AFTER = ['after0', 'after1', 'after2', 'after3'];

/** The `type` a request body starts with (`{"type":N`). */
function typeOf(body: Uint8Array): number | undefined {
  return Number(/^\{"type":(\d+)/.exec(Buffer.from(body.subarray(0, 16)).toString())?.[1]);
}

/** A promise that rejects only when `signal` aborts: a request lost on the way. */
function lost(signal: AbortSignal): Promise<never> {
  return new Promise((_, reject) =>
    signal.addEventListener('abort', () => reject(signal.reason), { once: true }),
  );
}

/**
 * a, b and c, with the race set up: b and c take topic 'ops' (c after a published five
 * messages), a publishes {@link AFTER} while its requests to c are lost (`batchesOnly`: only its
 * batches, so c stays a member) and c's log summary request waits, b gets them, and then c's
 * catch-up session is let go: it learns b's summary, which lists them. a's requests to c stay
 * lost until `restore()`.
 */
async function race(
  t: TestContext,
  historyOnJoin: number,
  a: { readonly deliveryTimeoutMs?: number; readonly batchesOnly: boolean },
) {
  const sim = simNetworkFor(t);
  let cut = false;
  let hold: Promise<void> | undefined;
  let release = (): void => {};
  const ta = sim.network.transport();
  const toA = ta.request.bind(ta);
  const nodeA = await sim.add({ transport: ta, deliveryTimeoutMs: a.deliveryTimeoutMs });
  const b = await sim.add();
  const tc = sim.network.transport();
  const fromC = tc.request.bind(tc);
  tc.request = async (r: OutboundRequest): Promise<OutboundResponse> => {
    if (hold !== undefined && typeOf(r.body) === 12) await hold;
    return fromC(r);
  };
  const c = await sim.add({ transport: tc, historyOnJoin });
  ta.request = (r: OutboundRequest): Promise<OutboundResponse> =>
    cut && r.port === c.self.port && (!a.batchesOnly || typeOf(r.body) === 8) ? lost(r.signal) : toA(r);
  await sim.joinThroughFirst();
  assert.ok(await sim.fullViews(), `seed ${sim.seed}`);
  await sim.run(b.subscribe('ops'));
  for (let i = 0; i < 5; i++) await sim.run(nodeA.publish('ops', `old${i}`));
  const atC: Message[] = [];
  c.on('message', (m) => atC.push(m));

  hold = new Promise((resolve) => {
    release = resolve;
  });
  await sim.run(c.subscribe('ops'));
  // After subscribe() resolved: a's copy to c is lost for now (and retried); b gets it.
  cut = true;
  const atB: Message[] = [];
  b.on('message', (m) => atB.push(m));
  const sent: Promise<DeliveryReport>[] = [];
  for (const text of AFTER) sent.push(nodeA.publish('ops', text));
  assert.ok(await sim.clock.advanceUntil(() => atB.length === AFTER.length, 10_000));
  // c's catch-up session now learns b's summary, which lists them.
  hold = undefined;
  release();
  return {
    sim,
    b,
    c,
    atC,
    sent,
    restore: (): void => {
      cut = false;
    },
  };
}

for (const historyOnJoin of [0, 2, 6]) {
  test(`historyOnJoin ${historyOnJoin}: publishes made after subscribe() resolved are delivered live and in order, though a catch-up summary already listed them`, async (t) => {
    const { sim, b, c, atC, sent, restore } = await race(t, historyOnJoin, { batchesOnly: false });
    await sim.clock.advance(500);
    restore();
    for (const report of await sim.run(Promise.all(sent))) {
      assert.deepEqual(
        report.delivered.map((p) => p.id).sort(),
        [b.self.id, c.self.id].sort(),
        'the live path delivered it to c',
      );
    }
    assert.ok(
      await sim.clock.advanceUntil(
        () => atC.filter((m) => AFTER.includes(m.text)).length === AFTER.length,
        60_000,
      ),
      `seed ${sim.seed}: c got ${JSON.stringify(atC.map((m) => m.text))}`,
    );
    // Long after (delivery deadlines, repairs): the history before the window is never fetched.
    await sim.clock.advance(120_000);
    // Of the newest `historyOnJoin` messages when c asked, only those sent before it subscribed
    // come as history (late, first); the ones sent since come live, in order.
    const all = ['old0', 'old1', 'old2', 'old3', 'old4', ...AFTER];
    const history = historyOnJoin === 0 ? [] : all.slice(-historyOnJoin).filter((t) => t.startsWith('old'));
    const expected = [...history, ...AFTER];
    assert.deepEqual(
      atC.map((m) => m.text),
      expected,
      `seed ${sim.seed}`,
    );
    assert.ok(
      atC.every((m) => m.late === m.text.startsWith('old') || (m.text === 'after0' && m.late === true)),
      `history late, the rest live: ${JSON.stringify(atC.map((m) => [m.text, m.late]))}`,
    );
    // ('after0' may come marked late: its causal dependency, 'old4', may be before the window,
    // so it waits causalWaitMs for it and gives up.)
  });
}

/**
 * The same race, later: the publisher's copy to the newcomer comes long after the newcomer's
 * `liveOwedMs` (its own delivery deadline and request limit), as it does when the publisher's
 * deadline is longer than the newcomer's, or a slow member's queue is kept while it acknowledges
 * batches. A skipped number was never delivered: its live copy is still taken, once.
 */
for (const historyOnJoin of [0, 2]) {
  test(`historyOnJoin ${historyOnJoin}: a live copy that comes long after the newcomer skipped its number is delivered, once`, async (t) => {
    // a gives a message up only after 10 minutes: its retries outlast c's `liveOwedMs` (35 s).
    const { sim, atC, sent, restore } = await race(t, historyOnJoin, {
      deliveryTimeoutMs: 600_000,
      batchesOnly: true,
    });
    // Past c's `liveOwedMs` after its skip (35 s), and a repair or two: only then does a's copy get through.
    await sim.clock.advance(90_000);
    assert.deepEqual(
      atC.filter((m) => !m.late).map((m) => m.text),
      [],
      `seed ${sim.seed}: nothing came live while cut`,
    );
    restore();
    for (const report of await sim.run(Promise.all(sent), 600_000)) {
      assert.deepEqual(report.failed, [], `seed ${sim.seed}: no delivery failed`);
    }
    assert.ok(
      await sim.clock.advanceUntil(() => AFTER.every((x) => atC.some((m) => m.text === x)), 60_000),
      `seed ${sim.seed}: c got ${JSON.stringify(atC.map((m) => m.text))}`,
    );
    await sim.clock.advance(120_000);
    const texts = atC.map((m) => m.text);
    t.diagnostic(`c got ${JSON.stringify(atC.map((m) => (m.late ? `${m.text} (late)` : m.text)))}`);
    for (const x of AFTER)
      assert.equal(
        texts.filter((y) => y === x).length,
        1,
        `seed ${sim.seed}: ${x} once in ${JSON.stringify(texts)}`,
      );
    // The past before the window is never fetched.
    const history = historyOnJoin === 0 ? [] : ['old3', 'old4'].slice(-historyOnJoin);
    assert.deepEqual(
      texts.filter((x) => x.startsWith('old')),
      history.filter((x) => texts.includes(x)),
      `seed ${sim.seed}: ${JSON.stringify(texts)}`,
    );
  });
}
