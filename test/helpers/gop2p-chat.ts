/**
 * The gop2p chat double ({@link GoPeer}) as a process, driven by stdin lines as gop2p's chat
 * example is: `connect PORT`, `dm PORT WORD` (only the first word is sent), `disconnect`,
 * `exit`, and any other line is a broadcast. It prints what the real chat prints:
 * `[INFO] started on http://ADDR:PORT`, `[MSG] (ADDR:PORT) -> TEXT`, `[ERROR]: ...`. Each line
 * runs after the one before it has finished, as the real chat's node loop takes one at a time.
 *
 * Usage: `node --import tsx test/helpers/gop2p-chat.ts [-self PORT] [--library]`
 * (port 0, the default, picks a free one). The library flavour names itself `127.0.0.1:PORT`
 * and takes `connect H:P` and `dm H:P WORD` too.
 *
 * @module
 */

import { createInterface } from 'node:readline';
import { GoPeer } from './gop2p-peer.js';

const args = process.argv.slice(2);
const selfAt = args.findIndex((a) => a === '-self' || a === '--self');
const port = selfAt >= 0 ? Number(args[selfAt + 1]) : 0;
const flavour = args.includes('--library') ? 'library' : 'chat';

const print = (line: string): void => {
  process.stdout.write(`${line}\n`);
};
const peer = await GoPeer.start({ port, flavour, print });
print(`[INFO] started on http://${peer.name}`);

let tail: Promise<void> = Promise.resolve();
let exiting = false;
const rl = createInterface({ input: process.stdin, crlfDelay: Number.POSITIVE_INFINITY });

function run(task: () => Promise<unknown>): void {
  tail = tail.then(async () => {
    if (!exiting) await task();
  });
}

rl.on('line', (line) => {
  const words = line
    .trim()
    .split(/\s+/)
    .filter((w) => w !== '');
  if (words.length === 0) return;
  switch (words[0]) {
    case 'connect':
      if (words[1] !== undefined && (flavour === 'library' || /^\d+$/.test(words[1]))) {
        const entry = words[1];
        run(async () => {
          const { error } = await peer.connect(entry);
          // The real chat prints nothing here; tests wait for this line instead of guessing.
          if (error === undefined) print(`[INFO] connected: ${peer.members.length} members`);
        });
      }
      return;
    case 'disconnect':
      run(async () => {
        const { error } = await peer.disconnect();
        if (error === undefined) print('[INFO] disconnected'); // not printed by the real chat
      });
      return;
    case 'dm':
      if (words[1] !== undefined && words[2] !== undefined) {
        const target = words[1];
        const word = words[2];
        run(() => peer.dm(target, word));
      }
      return;
    case 'exit':
      run(async () => {
        exiting = true;
        await peer.exit();
        // As the real chat, whose server reports its own shutdown as an error.
        print('[ERROR]: internal error: error listening for HTTP requests: http: Server closed');
        process.exit(0);
      });
      return;
    default:
      run(() => peer.broadcast(line));
  }
});

// The real chat panics when its input ends.
rl.on('close', () => {
  run(async () => {
    process.stderr.write('panic: runtime error: slice bounds out of range [:-1]\n');
    process.exit(2);
  });
});
