/**
 * `npm run check:layers`: reads the import graph of `src/` and fails on a circle (between files
 * or between layers) or on an import against the layer order below.
 *
 * The layer order is written down here, once. A layer may import its own files and the layers
 * listed before it, unless it names the only layers it may use (`uses`). To add a layer, insert
 * one line where it belongs: every layer after it may then import it. A file that no layer
 * claims is an error too, so that nothing new escapes the order unnoticed.
 *
 * Type-only imports count: a type that points up couples the layers as surely as a value.
 *
 * @module
 */

import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, posix, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

/** One layer: a name, the `src/` paths it holds (a folder ends with `/`), and what it may use. */
export interface Layer {
  readonly name: string;
  readonly paths: readonly string[];
  /** The only layers this one may import (besides itself); absent: every layer before it. */
  readonly uses?: readonly string[];
}

/** The layers of `src/`, lowest first. */
export const LAYERS: readonly Layer[] = [
  // Leaves: no I/O of the network, used everywhere.
  {
    name: 'base',
    paths: ['errors.ts', 'clock.ts', 'logger.ts', 'random.ts', 'peer.ts', 'rooms.ts', 'types.ts'],
  },
  { name: 'identity', paths: ['identity.ts'] },
  // The wire: schemas, encode/decode, sealing. Pure.
  { name: 'protocol', paths: ['protocol/'] },
  // Persistence: the message log, membership snapshot and delivery state.
  { name: 'store', paths: ['store/'], uses: ['base', 'protocol'] },
  // Moving bytes: the Transport interface, HTTP and memory, the peer client.
  { name: 'transport', paths: ['transport/'] },
  // Compat mode's view of gop2p peers: the names each knows and uses.
  { name: 'compat', paths: ['compat/'] },
  // Signatures, MACs, the network secret, the inbound guard.
  { name: 'security', paths: ['security/'] },
  // Who is in the network: member table, failure detector, joining.
  { name: 'membership', paths: ['membership/'] },
  // Getting messages there: queues, batches, in-order receipt, dissemination.
  { name: 'delivery', paths: ['delivery/'] },
  // Counters and their Prometheus text.
  { name: 'metrics', paths: ['metrics/'] },
  // The settings users give, resolved: reads every layer's defaults.
  { name: 'options', paths: ['options.ts', 'options-check.ts'] },
  // The browser page and the operations endpoints.
  { name: 'web', paths: ['web/'] },
  // Composition: the node and the modules it wires.
  { name: 'node', paths: ['node/', 'node.ts'] },
  // The public surface.
  { name: 'index', paths: ['index.ts'] },
  // The command line: the public API only.
  { name: 'cli', paths: ['cli/'], uses: ['index'] },
];

/** A broken rule, as one line. */
export interface Violation {
  readonly kind: 'circle' | 'upward' | 'unlayered' | 'unresolved';
  readonly message: string;
}

/** The layer that holds `file` (a path relative to `src/`, with `/`). */
export function layerOf(file: string, layers: readonly Layer[] = LAYERS): Layer | undefined {
  let best: Layer | undefined;
  let bestLength = -1;
  for (const layer of layers) {
    for (const p of layer.paths) {
      const hit = p.endsWith('/') ? file.startsWith(p) : file === p;
      if (hit && p.length > bestLength) {
        best = layer;
        bestLength = p.length;
      }
    }
  }
  return best;
}

/** Whether `from` may import `to` under `layers`. */
export function mayImport(from: Layer, to: Layer, layers: readonly Layer[] = LAYERS): boolean {
  if (from === to) return true;
  if (from.uses !== undefined) return from.uses.includes(to.name);
  return layers.indexOf(to) < layers.indexOf(from);
}

/** The relative imports of one source text, resolved to paths relative to `src/`. */
export function importsOf(file: string, text: string): string[] {
  const info = ts.preProcessFile(text, true, true);
  const out = new Set<string>();
  for (const ref of info.importedFiles) {
    const spec = ref.fileName;
    if (!spec.startsWith('.')) continue;
    out.add(posix.normalize(posix.join(posix.dirname(file), spec)).replace(/\.js$/, '.ts'));
  }
  return [...out];
}

/** Checks a graph: file → the files it imports (all relative to `src/`). */
export function checkGraph(
  graph: ReadonlyMap<string, readonly string[]>,
  layers: readonly Layer[] = LAYERS,
): Violation[] {
  const violations: Violation[] = [];
  for (const [file, imports] of graph) {
    const from = layerOf(file, layers);
    if (from === undefined) {
      violations.push({ kind: 'unlayered', message: `src/${file} is in no layer: add it to LAYERS` });
      continue;
    }
    for (const target of imports) {
      if (!graph.has(target)) {
        violations.push({
          kind: 'unresolved',
          message: `src/${file} imports src/${target}, which does not exist`,
        });
        continue;
      }
      const to = layerOf(target, layers);
      if (to === undefined) continue; // reported as unlayered on its own
      if (!mayImport(from, to, layers)) {
        violations.push({
          kind: 'upward',
          message: `src/${file} (${from.name}) imports src/${target} (${to.name}): against the layer order`,
        });
      }
    }
  }
  for (const circle of circles(graph)) {
    violations.push({
      kind: 'circle',
      message: `import circle: ${circle.map((f) => `src/${f}`).join(' → ')}`,
    });
  }
  return violations;
}

/** Every circle of the graph, one per strongly connected component (Tarjan), as a closed path. */
export function circles(graph: ReadonlyMap<string, readonly string[]>): string[][] {
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const onStack = new Set<string>();
  const stack: string[] = [];
  const found: string[][] = [];
  let next = 0;
  const visit = (v: string): void => {
    index.set(v, next);
    low.set(v, next);
    next++;
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!graph.has(w)) continue;
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) {
        low.set(v, Math.min(low.get(v)!, index.get(w)!));
      }
    }
    if (low.get(v) === index.get(v)) {
      const component: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        component.push(w);
      } while (w !== v);
      const selfLoop = (graph.get(v) ?? []).includes(v);
      if (component.length > 1 || selfLoop) found.push(pathThrough(graph, new Set(component), v));
    }
  };
  for (const v of [...graph.keys()].sort()) if (!index.has(v)) visit(v);
  return found;
}

/** A closed path from `start` back to it, inside one strongly connected component. */
function pathThrough(
  graph: ReadonlyMap<string, readonly string[]>,
  component: Set<string>,
  start: string,
): string[] {
  const previous = new Map<string, string>();
  const queue = [start];
  while (queue.length > 0) {
    const v = queue.shift()!;
    for (const w of graph.get(v) ?? []) {
      if (!component.has(w)) continue;
      if (w === start) {
        const path = [start];
        for (let x = v; x !== start; x = previous.get(x)!) path.splice(1, 0, x);
        path.push(start);
        return path;
      }
      if (!previous.has(w)) {
        previous.set(w, v);
        queue.push(w);
      }
    }
  }
  return [start, start];
}

/** The import graph of the `.ts` files under `srcDir`. */
export function readGraph(srcDir: string): Map<string, string[]> {
  const graph = new Map<string, string[]>();
  const walk = (dir: string): void => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const full = join(dir, entry.name);
      if (entry.isDirectory()) walk(full);
      else if (entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts')) {
        const file = relative(srcDir, full).split('\\').join('/');
        graph.set(file, importsOf(file, readFileSync(full, 'utf8')));
      }
    }
  };
  walk(srcDir);
  return graph;
}

const isMain = process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url);
if (isMain) {
  const srcDir = resolve(dirname(fileURLToPath(import.meta.url)), '..', 'src');
  const graph = readGraph(srcDir);
  const violations = checkGraph(graph);
  if (violations.length > 0) {
    for (const v of violations) console.error(v.message);
    console.error(`check:layers: ${violations.length} problem(s) in ${graph.size} files`);
    process.exit(1);
  }
  const edges = [...graph.values()].reduce((n, list) => n + list.length, 0);
  console.log(
    `check:layers: ${graph.size} files, ${edges} imports, ${LAYERS.length} layers: no circle, none upward`,
  );
}
