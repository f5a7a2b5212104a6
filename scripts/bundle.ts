/**
 * The second half of `npm run build`: after `tsc` has written `dist/`, bundle the library
 * (`dist/index.js`) and the command (`dist/cli/main.js`) each into one file, in place.
 *
 * Why: an application that imports tsp2p loads one module instead of about a hundred. Node keeps
 * every ES module's record, source text (TSDoc comments included) and compiled code; one bundle
 * without comments saves about 8 MB of RSS in every process (`npm run bench -- import-cost`),
 * which matters to a node that idles at about 50 MB. Packages stay outside the bundles (zod and
 * better-sqlite3 are still loaded only when needed), the code is not minified, and each bundle
 * has a source map that leads back to `src/` (`node --enable-source-maps`). `tsc`'s own files
 * stay beside them, with the type declarations.
 *
 * @module
 */

import { build } from 'esbuild';

const ENTRIES = ['dist/index.js', 'dist/cli/main.js'];

for (const entry of ENTRIES) {
  await build({
    entryPoints: [entry],
    outfile: entry,
    allowOverwrite: true,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    packages: 'external',
    sourcemap: 'linked',
    legalComments: 'none',
    logLevel: 'warning',
  });
}
