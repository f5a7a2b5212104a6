/**
 * The `tsp2p` command: parses the command line and runs `chat` or `node`, or prints help or
 * the version. Exit codes: 0 done, 1 an unexpected failure, 2 a usage error or a port in use,
 * 130 a second Ctrl-C.
 *
 * @module
 */

import { parseCommandLine, UsageError } from './args.js';
import { runChat } from './chat.js';
import { readVersion, usage } from './help.js';
import { type CliIO, processIO } from './io.js';
import { runNode } from './node-cmd.js';

/** Runs `tsp2p` with the arguments after the program name; resolves with the exit code. */
export async function main(argv: readonly string[], io: CliIO = processIO()): Promise<number> {
  try {
    const invocation = parseCommandLine(argv);
    switch (invocation.kind) {
      case 'version':
        io.stdout.write(`${readVersion()}\n`);
        return 0;
      case 'help':
        io.stdout.write(usage(invocation.topic, readVersion()));
        return 0;
      case 'run':
        return invocation.command === 'chat'
          ? await runChat(invocation.flags, io)
          : await runNode(invocation.flags, io);
    }
  } catch (err) {
    if (err instanceof UsageError) {
      io.stderr.write(`tsp2p: ${err.message}\n`);
      return 2;
    }
    io.stderr.write(`tsp2p: unexpected error: ${(err as Error)?.stack ?? String(err)}\n`);
    return 1;
  }
}
