/**
 * The benchmark dispatcher: `node --import tsx bench/run.ts <scenario> [flags]`, or
 * `npm run bench -- <scenario> [flags]` (which builds `dist/` first).
 *
 * Progress goes to stderr; the last line of stdout is the scenario's JSON report. A bad command
 * line exits 2 with one line; a failed run, a signal or the `--deadline` exits non-zero after
 * killing every worker process.
 *
 * @module
 */

import { parseArgs } from 'node:util';
import { COMMON_FLAGS, intFlag } from './lib/args.js';
import { killAll } from './lib/cluster.js';
import { UsageError } from './lib/errors.js';
import type { FlagValues, Scenario } from './lib/scenario.js';

/** Each scenario lives in its own file, loaded only when asked for. */
const SCENARIOS: Record<string, () => Promise<Scenario>> = {
  broadcast: async () => (await import('./broadcast.js')).broadcast,
  latency: async () => (await import('./latency.js')).latency,
  'all-to-all': async () => (await import('./all-to-all.js')).allToAll,
  join: async () => (await import('./join.js')).join,
  failure: async () => (await import('./failure.js')).failure,
  idle: async () => (await import('./idle.js')).idle,
  'sim-membership': async () => (await import('./sim-membership.js')).simMembership,
  'sim-gossip': async () => (await import('./sim-gossip.js')).simGossip,
  'sim-churn': async () => (await import('./sim-churn.js')).simChurn,
  store: async () => (await import('./store.js')).store,
  catchup: async () => (await import('./catchup.js')).catchup,
  topics: async () => (await import('./topics.js')).topics,
  'import-cost': async () => (await import('./import-cost.js')).importCost,
};

const log = (line: string): void => {
  process.stderr.write(`${line}\n`);
};

function fail(message: string, code: number): never {
  const n = killAll();
  process.stderr.write(`bench: ${message}${n > 0 ? ` (killed ${n} workers)` : ''}\n`);
  process.exit(code);
}

function topUsage(): string {
  const names = Object.keys(SCENARIOS);
  return `usage: npm run bench -- <scenario> [flags]   (scenarios: ${names.join(', ')}; <scenario> --help for flags)`;
}

async function main(argv: readonly string[]): Promise<void> {
  const [name, ...rest] = argv;
  if (name === '--help' || name === '-h') {
    process.stdout.write(`${topUsage()}\n`);
    return;
  }
  if (name === undefined || name.startsWith('-')) throw new UsageError(topUsage());
  const load = SCENARIOS[name];
  if (load === undefined) {
    throw new UsageError(`unknown scenario '${name}': expected one of ${Object.keys(SCENARIOS).join(', ')}`);
  }
  const scenario = await load();
  let values: FlagValues;
  try {
    values = parseArgs({
      args: rest,
      options: { ...COMMON_FLAGS, ...scenario.flags },
      strict: true,
      allowPositionals: false,
    }).values as FlagValues;
  } catch (err) {
    // parseArgs explains at length; keep its first sentence.
    throw new UsageError(`${name}: ${(err as Error).message.split('. ')[0]} (try: ${name} --help)`);
  }
  if (values.help === true) {
    process.stdout.write(`usage: npm run bench -- ${name} [flags]\n${scenario.summary}\n${scenario.usage}\n`);
    return;
  }
  const deadline = intFlag(values, 'deadline', 1, 24 * 3600);
  const timer = setTimeout(
    () => fail(`${name}: deadline of ${deadline} s passed before the benchmark finished`, 1),
    deadline * 1000,
  );
  try {
    const report = await scenario.run(values, log);
    process.stdout.write(`${JSON.stringify(report)}\n`);
  } finally {
    clearTimeout(timer);
  }
}

process.on('exit', () => killAll());
process.on('SIGINT', () => fail('interrupted', 130));
process.on('SIGTERM', () => fail('terminated', 143));

main(process.argv.slice(2)).then(
  () => process.exit(0),
  (err: unknown) => {
    if (err instanceof UsageError) fail(err.message, 2);
    fail(err instanceof Error ? err.message : String(err), 1);
  },
);
