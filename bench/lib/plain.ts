/**
 * Worker scripts that run under plain `node` rather than through tsx (whose loader thread
 * alone adds about 40 MB to a process: too much for a memory benchmark). Such a script is
 * written in TypeScript like the others and type-checked with them; before it is forked, it is
 * transpiled here (TypeScript's `transpileModule`: types stripped, nothing bundled) into a
 * temporary directory that is removed when the benchmark exits.
 *
 * The script may import only Node's built-ins, `../dist/index.js` (rewritten to an absolute
 * URL) and types.
 *
 * @module
 */

import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { build } from 'esbuild';
import ts from 'typescript';
import type { WorkerScript } from './cluster.js';
import { ROOT } from './cluster.js';
import { BenchError } from './errors.js';

let dir: string | undefined;
const compiled = new Map<string, WorkerScript>();

function tempDir(): string {
  if (dir === undefined) {
    const made = mkdtempSync(join(tmpdir(), 'tsp2p-bench-'));
    dir = made;
    process.on('exit', () => rmSync(made, { recursive: true, force: true }));
  }
  return dir;
}

/**
 * Bundles `bench/<script>` and the bench modules it imports into one JavaScript file (once per
 * run; packages such as undici go in too) and returns how to fork it with plain `node`.
 * `dist/` stays outside the bundle: the worker loads the built library as an application does.
 * For the scenarios that start many processes (`broadcast` at 50 nodes: 100 processes), where
 * tsx would give each its loader thread and its own esbuild service.
 */
export async function bundledScript(script: string): Promise<WorkerScript> {
  const key = `bundle:${script}`;
  const known = compiled.get(key);
  if (known !== undefined) return known;
  const file = join(tempDir(), basename(script).replace(/\.ts$/, '.bundle.mjs'));
  const dist = pathToFileURL(join(ROOT, 'dist', 'index.js')).href;
  await build({
    entryPoints: [fileURLToPath(new URL(`../${script}`, import.meta.url))],
    outfile: file,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    logLevel: 'error',
    // A bundled CommonJS package (undici) may call require() for Node's built-ins.
    banner: {
      js: "import { createRequire as __tsp2pRequire } from 'node:module'; const require = __tsp2pRequire(import.meta.url);",
    },
    plugins: [
      {
        name: 'dist-outside',
        setup(b) {
          b.onResolve({ filter: /\/dist\/index\.js$/ }, () => ({ path: dist, external: true }));
        },
      },
    ],
  });
  const result: WorkerScript = { file, tsx: false };
  compiled.set(key, result);
  return result;
}

/** Transpiles `bench/<script>` (once per run) and returns how to fork it with plain `node`. */
export function plainScript(script: string): WorkerScript {
  const known = compiled.get(script);
  if (known !== undefined) return known;
  const source = readFileSync(fileURLToPath(new URL(`../${script}`, import.meta.url)), 'utf8');
  const { outputText } = ts.transpileModule(source, {
    fileName: script,
    compilerOptions: {
      module: ts.ModuleKind.ESNext,
      target: ts.ScriptTarget.ES2023,
      verbatimModuleSyntax: true,
    },
  });
  const dist = pathToFileURL(join(ROOT, 'dist', 'index.js')).href;
  const text = outputText.replaceAll("'../dist/index.js'", JSON.stringify(dist));
  const relative = /\bfrom\s+['"]\.\.?\//.exec(text);
  if (relative !== null) {
    throw new BenchError(`${script}: a plain worker may import only built-ins and ../dist/index.js`);
  }
  const file = join(tempDir(), basename(script).replace(/\.ts$/, '.mjs'));
  writeFileSync(file, text);
  const result: WorkerScript = { file, tsx: false };
  compiled.set(script, result);
  return result;
}
