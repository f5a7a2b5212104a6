/**
 * Summarises a V8 `.cpuprofile` (from `node --cpu-prof`, e.g. `npm run bench -- broadcast
 * --profile DIR`): where the time goes, by package and by function, self and inclusive.
 *
 * Usage: `node --import tsx bench/profile-top.ts FILE.cpuprofile [--top N]`
 *
 * @module
 */

import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

interface CallFrame {
  readonly functionName: string;
  readonly url: string;
  readonly lineNumber: number;
}

interface ProfileNode {
  readonly id: number;
  readonly callFrame: CallFrame;
  readonly children?: readonly number[];
}

interface Profile {
  readonly nodes: readonly ProfileNode[];
  readonly samples: readonly number[];
  readonly timeDeltas: readonly number[];
}

/** Where a frame's code lives: a package, a part of Node, our own `dist/`, or a V8 pseudo-frame. */
function area(frame: CallFrame): string {
  const { url, functionName } = frame;
  if (url === '') return functionName.startsWith('(') ? functionName : '(native)';
  if (url.startsWith('node:')) return url.startsWith('node:internal/') ? 'node:internal' : url;
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (pkg) return pkg[1]!;
  const own = /\/(dist|src|bench)\/(.*)$/.exec(url);
  if (own) return `${own[1]}/${own[2]}`;
  return url;
}

function label(frame: CallFrame): string {
  const name = frame.functionName || '(anonymous)';
  if (frame.url === '') return name;
  const short = frame.url
    .replace(/^.*node_modules\//, '')
    .replace(/^file:\/\/.*?\/(dist|src|bench)\//, '$1/');
  return `${name}  ${short}:${frame.lineNumber + 1}`;
}

// Piped into `head`: stop quietly when the reader goes away.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(0);
  throw err;
});

function main(): void {
  const { values, positionals } = parseArgs({
    options: { top: { type: 'string', default: '15' } },
    allowPositionals: true,
  });
  const file = positionals[0];
  if (file === undefined) {
    process.stderr.write('usage: node --import tsx bench/profile-top.ts FILE.cpuprofile [--top N]\n');
    process.exit(2);
  }
  const top = Number(values.top);
  const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map<number, number>();
  let total = 0;
  profile.samples.forEach((id, i) => {
    const dt = profile.timeDeltas[i] ?? 0;
    self.set(id, (self.get(id) ?? 0) + dt);
    total += dt;
  });
  const idle = [...self].reduce(
    (n, [id, t]) => (byId.get(id)?.callFrame.functionName === '(idle)' ? n + t : n),
    0,
  );
  // Stopping an inspector-driven profile serialises it inside the last sample: not the program's time.
  let profiler = 0;
  const profilerTime = (id: number): number => {
    const node = byId.get(id)!;
    return (self.get(id) ?? 0) + (node.children ?? []).reduce((n, c) => n + profilerTime(c), 0);
  };
  const isProfiler = (f: CallFrame): boolean => f.url === 'node:inspector' && f.functionName === 'post';
  const busy = (): number => total - idle - profiler;

  const selfByFn = new Map<string, number>();
  const selfByArea = new Map<string, number>();
  const inclusiveByFn = new Map<string, number>();
  const add = (m: Map<string, number>, k: string, v: number): void => {
    m.set(k, (m.get(k) ?? 0) + v);
  };
  // Inclusive time: a function's subtree, counted once per stack even when it recurses.
  const walk = (id: number, onPath: Set<string>): number => {
    const node = byId.get(id)!;
    if (isProfiler(node.callFrame)) {
      profiler += profilerTime(id);
      return 0;
    }
    const key = label(node.callFrame);
    const own = self.get(id) ?? 0;
    add(selfByFn, key, own);
    add(selfByArea, area(node.callFrame), own);
    const fresh = !onPath.has(key);
    if (fresh) onPath.add(key);
    let sum = own;
    for (const c of node.children ?? []) sum += walk(c, onPath);
    if (fresh) {
      onPath.delete(key);
      add(inclusiveByFn, key, sum);
    }
    return sum;
  };
  const root = profile.nodes[0];
  if (root !== undefined) walk(root.id, new Set());

  const ms = (us: number): string => `${(us / 1000).toFixed(0).padStart(6)} ms`;
  const pct = (us: number): string => `${((100 * us) / Math.max(1, busy())).toFixed(1).padStart(5)}%`;
  const table = (title: string, m: Map<string, number>, skip: (k: string) => boolean): void => {
    process.stdout.write(`\n${title} (% of busy time)\n`);
    const rows = [...m].filter(([k]) => !skip(k)).sort((a, b) => b[1] - a[1]);
    for (const [k, t] of rows.slice(0, top)) process.stdout.write(`${ms(t)} ${pct(t)}  ${k}\n`);
  };
  process.stdout.write(
    `${file}\ntotal ${ms(total)}, idle ${ms(idle)}, profiler ${ms(profiler)}, busy ${ms(busy())}\n`,
  );
  const pseudo = (k: string): boolean => k === '(idle)' || k === '(root)';
  table('self time by area', selfByArea, pseudo);
  table('self time by function', selfByFn, pseudo);
  table('inclusive time by function', inclusiveByFn, (k) => pseudo(k) || k === '(program)');
}

main();
