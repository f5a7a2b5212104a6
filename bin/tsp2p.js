#!/usr/bin/env node
// The `tsp2p` command. The code lives in dist/, which `npm ci` (its prepare script) builds.
import { existsSync } from 'node:fs';

const entry = new URL('../dist/cli/main.js', import.meta.url);
if (!existsSync(entry)) {
  process.stderr.write("tsp2p: not built yet: run 'npm ci' (or 'npm run build') in the tsp2p folder\n");
  process.exit(1);
}
const { main } = await import(entry.href);
const code = await main(process.argv.slice(2));
process.exitCode = code;
// Everything is closed by now; should some handle linger anyway, do not hang on it.
setTimeout(() => process.exit(code), 2000).unref();
