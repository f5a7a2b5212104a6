/**
 * `import-cost`: what loading each module costs a process in memory, before any node starts.
 * For each module, fresh plain `node --expose-gc` processes import it alone, run a full garbage
 * collection and report their RSS and heap; the report quotes the median of `--runs` processes
 * and the difference from a bare `node` process (modules that are measured together with
 * everything they import).
 *
 * @module
 */

import { execFile } from 'node:child_process';
import { availableParallelism, loadavg } from 'node:os';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { intFlag } from './lib/args.js';
import { BenchError } from './lib/errors.js';
import type { Scenario } from './lib/scenario.js';
import { median, round } from './lib/stats.js';

const run = promisify(execFile);

const usage = `  --runs R           processes per module, the median is quoted (default 3)
  --deadline S       kill everything and exit 1 after S seconds (default 300)`;

const root = resolve(import.meta.dirname, '..');
const dist = (path: string): string => pathToFileURL(resolve(root, 'dist', path)).href;

/** What is measured: a label and the specifier imported (`''`: nothing, a bare process). */
const MODULES: readonly (readonly [string, string])[] = [
  ['bare node', ''],
  ['node:http', 'node:http'],
  ['node:https', 'node:https'],
  ['node:crypto', 'node:crypto'],
  ['zod (loaded only for unusual input)', 'zod'],
  ['better-sqlite3 (only with dataDir)', 'better-sqlite3'],
  ['undici (dev only: the bench baseline)', 'undici'],
  ['dist/protocol/codec.js', dist('protocol/codec.js')],
  ['dist/transport/http.js', dist('transport/http.js')],
  ['dist/security/inbound-guard.js', dist('security/inbound-guard.js')],
  ['dist/membership/membership.js', dist('membership/membership.js')],
  ['dist/delivery/dissemination.js', dist('delivery/dissemination.js')],
  ['dist/web/web-handler.js', dist('web/web-handler.js')],
  ['dist/node.js (the library as tsc wrote it: ~100 modules)', dist('node.js')],
  ['dist/index.js (the library, one bundle: what applications load)', dist('index.js')],
  ['dist/cli/main.js (the command, one bundle)', dist('cli/main.js')],
];

interface Sample {
  readonly rss: number;
  readonly heapUsed: number;
}

async function sample(specifier: string): Promise<Sample> {
  const load = specifier === '' ? '' : `await import(${JSON.stringify(specifier)});`;
  const code = `${load} globalThis.gc(); await new Promise((r) => setTimeout(r, 50)); globalThis.gc();
const m = process.memoryUsage(); console.log(JSON.stringify({ rss: m.rss, heapUsed: m.heapUsed }));`;
  const { stdout } = await run(process.execPath, ['--expose-gc', '--input-type=module', '-e', code], {
    cwd: root,
  });
  return JSON.parse(stdout.trim().split('\n').at(-1)!) as Sample;
}

const MB = 1024 * 1024;

export const importCost: Scenario = {
  name: 'import-cost',
  summary: 'memory (RSS, heap after a full GC) of a plain node process importing each module alone',
  usage,
  flags: { runs: { type: 'string', default: '3' }, deadline: { type: 'string', default: '300' } },
  async run(values, log) {
    const runs = intFlag(values, 'runs', 1, 20);
    const loadBefore = loadavg();
    const samples = new Map<string, Sample[]>(MODULES.map(([label]) => [label, []]));
    // Alternated: each round imports every module once, so that load drifts touch all alike.
    for (let r = 0; r < runs; r++) {
      for (const [label, specifier] of MODULES) {
        try {
          samples.get(label)!.push(await sample(specifier));
        } catch (err) {
          throw new BenchError(`importing ${label} failed: ${(err as Error).message.split('\n')[0]}`);
        }
      }
      log(`round ${r + 1}/${runs} done`);
    }
    const rssOf = (label: string): number => median(samples.get(label)!.map((s) => s.rss));
    const bare = rssOf('bare node');
    const modules = MODULES.map(([label]) => {
      const rss = rssOf(label);
      const heap = median(samples.get(label)!.map((s) => s.heapUsed));
      return {
        module: label,
        rss_mb: round(rss / MB, 1),
        over_bare_mb: round((rss - bare) / MB, 1),
        heap_used_mb: round(heap / MB, 1),
      };
    });
    for (const m of modules)
      log(`${m.module}: ${m.rss_mb} MB RSS (+${m.over_bare_mb}), heap ${m.heap_used_mb} MB`);
    return {
      scenario: 'import-cost',
      runs,
      modules,
      load: { before: loadBefore.map((l) => round(l)), after: loadavg().map((l) => round(l)) },
      node: process.version,
      cpus: availableParallelism(),
    };
  },
};
