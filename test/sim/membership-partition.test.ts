import assert from 'node:assert/strict';
import { fork } from 'node:child_process';
import { test } from 'node:test';
import { testSeed } from './network.js';
import { HEAL_WITHIN_MS } from './partition-run.js';

// npm test runs 200 nodes; `npm run test:sim:large` runs 1,000, at the same time as
// membership-scale.test.ts (one file per core).
const SIZE = Number(process.env.TSP2P_SIM_NODES ?? 200);

// The simulation runs in a child process (partition-run.ts): the same scenario, without the
// test runner's async hooks on every promise. Each half suspects, declares dead and forgets
// every node of the other, and takes each one back after the heal: O(n²) updates, each gossiped
// 3 × ⌈log10(n + 1)⌉ times. At 1,000 nodes this is the longest test of `test:sim:large` (see
// BENCHMARKS.md, `sim-membership`, session 13).
test(`${SIZE} simulated nodes from a converged view: partition 50/50 for longer than the reap of dead members, then heal: one view again within ${HEAL_WITHIN_MS / 1000} s, no connect()`, async (t) => {
  const seed = testSeed();
  t.diagnostic(`seed ${seed} (replay with TSP2P_SEED=${seed})`);
  const child = fork(new URL('./partition-run.ts', import.meta.url), {
    execArgv: ['--import', 'tsx'],
    env: {
      ...process.env,
      TSP2P_PARTITION_RUN: '1',
      TSP2P_SIM_NODES: String(SIZE),
      TSP2P_SEED: String(seed),
    },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  let outcome: { done: boolean; error?: string } | undefined;
  child.on('message', (m: { diagnostic?: string; done?: boolean; error?: string }) => {
    if (m.diagnostic !== undefined) t.diagnostic(m.diagnostic);
    if (m.done !== undefined)
      outcome = { done: m.done, ...(m.error !== undefined ? { error: m.error } : {}) };
  });
  const code = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
  assert.ok(outcome !== undefined, `seed ${seed}: the simulation ended (exit code ${code}) without a report`);
  assert.ok(outcome.done, `seed ${seed}: ${outcome.error}`);
  assert.equal(code, 0);
});
