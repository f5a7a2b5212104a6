/**
 * Restart without loss across a whole network, with real processes and real files: 4 nodes,
 * each with its own `dataDir`, are restarted one by one while all of them publish. In each round
 * every node streams messages and one of them, in the middle of its own stream, is stopped
 * (gracefully, or with SIGKILL every other round) and started again at once from its `dataDir`,
 * with no `connect()`. At the end every node is back in a full view, and every node holds in
 * its history exactly every message written (the restarted writer's own log says how far it
 * got), once each, in each sender's order; no node handed any message to its application twice
 * across its restarts.
 */

import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { waitForViews } from '../helpers/cluster.js';
import { numberedTexts, sequenceProblem } from '../helpers/delivery-streams.js';
import { type HistoryEntryJson, PeerProcess } from '../helpers/spawn-peer.js';
import { tempDir } from '../helpers/store.js';
import { waitFor } from '../helpers/wait.js';

const NODES = 4;
/** Messages each node streams in each round. */
const PER_ROUND = 200;
/** The victim of a round is restarted once it has received this many of the round's messages. */
const RESTART_AFTER = 60;

const root = tempDir('tsp2p-history-restarts-');
after(() => root.remove());

/** One node across its runs. */
interface Slot {
  readonly label: string;
  readonly dataDir: string;
  port: number;
  /** Its processes, the current one last. */
  readonly runs: PeerProcess[];
}

const current = (s: Slot): PeerProcess => s.runs[s.runs.length - 1]!;
const prefixOf = (round: number, node: number): string => `r${round}n${node}`;

test('4 nodes restarted one by one while all publish: nothing lost, nothing twice, all rejoin by themselves', async (t) => {
  const started = Date.now();
  const options = { preset: 'local' };
  const spawn = (slot: Slot): Promise<PeerProcess> =>
    PeerProcess.spawn(
      t,
      {
        ...options,
        name: slot.label,
        dataDir: slot.dataDir,
        ...(slot.port !== 0 ? { port: slot.port } : {}),
      },
      { label: `${slot.label}#${slot.runs.length + 1}`, readyTimeoutMs: 60_000 },
    );
  const slots: Slot[] = Array.from({ length: NODES }, (_, i) => ({
    label: `n${i}`,
    dataDir: join(root.dir, `n${i}`),
    port: 0,
    runs: [],
  }));
  await Promise.all(
    slots.map(async (slot) => {
      const p = await spawn(slot);
      slot.port = p.self.port;
      slot.runs.push(p);
    }),
  );
  for (const slot of slots.slice(1)) await current(slot).connect(current(slots[0]!).address);
  await waitForViews(slots.map(current), { timeoutMs: 60_000, message: 'a full view at first' });

  for (let round = 0; round < NODES; round++) {
    const victim = slots[round]!;
    const before = current(victim);
    const roundStart = Date.now();
    const streams = slots.map((s, j) =>
      current(s).stream(PER_ROUND, { prefix: prefixOf(round, j), window: 16, timeoutMs: 240_000 }),
    );
    const ownStream = streams[round]!.catch(() => undefined); // it dies with its process
    const prefix = `r${round}n`;
    await waitFor(() => before.messages().filter((e) => e.text!.startsWith(prefix)).length >= RESTART_AFTER, {
      timeoutMs: 120_000,
      intervalMs: 5,
      message: `${victim.label} to receive ${RESTART_AFTER} messages of round ${round}`,
    });
    const exit = await before.kill(round % 2 === 0 ? 'SIGTERM' : 'SIGKILL');
    const down = Date.now();
    victim.runs.push(await spawn(victim));
    const up = Date.now();
    await ownStream;
    for (const [j, s] of streams.entries()) {
      if (j === round) continue;
      const result = await s;
      assert.deepEqual(result.errors, [], `round ${round}: no broadcast of ${slots[j]!.label} rejected`);
    }
    // Back in by itself (its snapshot), seen by all.
    await waitForViews(slots.map(current), {
      timeoutMs: 120_000,
      message: `a full view again after ${victim.label}'s restart`,
    });
    t.diagnostic(
      `round ${round}: ${victim.label} ${exit.signal === 'SIGKILL' ? 'killed' : 'stopped'} ` +
        `${down - roundStart} ms into the round, up again ${up - down} ms later, ` +
        `full view ${Date.now() - up} ms after that`,
    );
  }

  // What was written: everything, except the victims' own streams, cut where their log ends.
  const written = new Map<string, string[]>();
  for (let round = 0; round < NODES; round++) {
    for (let j = 0; j < NODES; j++) {
      const prefix = prefixOf(round, j);
      if (j !== round) {
        written.set(prefix, numberedTexts(prefix, PER_ROUND));
        continue;
      }
      const own = (await current(slots[j]!).history({ limit: 10_000 }))
        .map((m) => m.text)
        .filter((text) => text.startsWith(`${prefix}:`));
      const problem = sequenceProblem(own, numberedTexts(prefix, own.length));
      if (problem !== undefined) assert.fail(`${slots[j]!.label}'s own log of round ${round}: ${problem}`);
      assert.ok(own.length > 0, `${slots[j]!.label} wrote some of round ${round} before its restart`);
      written.set(prefix, own);
    }
  }
  const total = [...written.values()].reduce((n, list) => n + list.length, 0);

  const histories: HistoryEntryJson[][] = [];
  for (const slot of slots) {
    const p = current(slot);
    histories.push(
      await waitFor(
        async () => {
          const h = await p.history({ limit: 10_000 });
          return h.length >= total ? h : undefined;
        },
        {
          timeoutMs: 120_000,
          intervalMs: 250,
          message: `${slot.label} to hold all ${total} messages`,
        },
      ),
    );
  }
  let unprinted = 0;
  for (const [i, slot] of slots.entries()) {
    const texts = histories[i]!.map((m) => m.text);
    for (const [prefix, list] of written) {
      const problem = sequenceProblem(
        texts.filter((text) => text.startsWith(`${prefix}:`)),
        list,
      );
      if (problem !== undefined) assert.fail(`${slot.label}, stream ${prefix}: ${problem}`);
    }
    assert.equal(texts.length, total, `${slot.label} holds nothing else`);

    // Handed to the application at most once across all its runs; what it did not print is
    // its own, or was committed in the instant of a SIGKILL.
    const counts = new Map<string, number>();
    for (const run of slot.runs)
      for (const e of run.messages()) counts.set(e.id!, (counts.get(e.id!) ?? 0) + 1);
    const twice = [...counts].filter(([, n]) => n > 1);
    assert.deepEqual(twice, [], `${slot.label}: nothing delivered twice across its restarts`);
    const notPrinted = histories[i]!.filter((m) => !counts.has(m.id) && m.from.id !== current(slot).self.id);
    if (i % 2 === 0)
      assert.deepEqual(notPrinted, [], `${slot.label} (stopped gracefully): everything printed`);
    else assert.ok(notPrinted.length <= PER_ROUND, `${slot.label}: ${notPrinted.length} unprinted`);
    unprinted += notPrinted.length;
  }
  t.diagnostic(
    `${total} messages written; ${NODES} restarts; ${unprinted} committed at a kill but not printed; ` +
      `${Date.now() - started} ms in all`,
  );
});
