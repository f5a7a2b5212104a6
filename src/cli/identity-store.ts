/**
 * Where the command line keeps node identities: a data directory, created with mode 0700, with
 * one key file (mode 0600) per running node.
 *
 * A key file belongs to one running node at a time: two nodes with the same key would claim the
 * same id. So each file has a lock file beside it, holding the pid of the process that uses it.
 * A CLI started while `identity.pem` is in use takes `identity-2.pem`, then `identity-3.pem`,
 * and so on: a machine running three chats keeps three stable identities. A lock whose process
 * has died is taken over. `--identity FILE` names the file instead, with no lock: one node per
 * file is then the user's rule.
 *
 * @module
 */

import { closeSync, mkdirSync, openSync, readFileSync, unlinkSync, writeSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { type Identity, loadOrCreateIdentityFile } from '../index.js';

/** How many key files the data directory may hold (one per node running at once). */
const MAX_SLOTS = 64;

/** The data directory: `$XDG_DATA_HOME/tsp2p`, or `~/.local/share/tsp2p`. */
export function dataDirectory(env: NodeJS.ProcessEnv = process.env): string {
  const xdg = env.XDG_DATA_HOME;
  const base = xdg !== undefined && xdg !== '' ? xdg : join(homedir(), '.local', 'share');
  return join(base, 'tsp2p');
}

/** The key file of slot `n` (1 is `identity.pem`). */
export function slotFile(dir: string, n: number): string {
  return join(dir, n === 1 ? 'identity.pem' : `identity-${n}.pem`);
}

function alive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it exists, it is someone else's.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Takes the lock at `path` for this process. Returns `false` when a live process holds it. */
function lock(path: string): boolean {
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(path, 'wx', 0o600);
      writeSync(fd, String(process.pid));
      closeSync(fd);
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    let holder = Number.NaN;
    try {
      holder = Number(readFileSync(path, 'utf8').trim());
    } catch {
      // Removed meanwhile: try again.
    }
    if (alive(holder) && holder !== process.pid) return false;
    try {
      unlinkSync(path); // a stale lock
    } catch {
      // Someone else took it over first.
    }
  }
  return false;
}

/** A node identity for the CLI, and the function that releases its key file. */
export interface StoredIdentity {
  readonly identity: Identity;
  /** The key file. */
  readonly file: string;
  /** Releases the key file's lock (also done on process exit). */
  readonly release: () => void;
}

/**
 * The identity in `file` (created when missing), or, without a file, the first free key file
 * of the data directory.
 *
 * @throws {InvalidOptionsError} when the file cannot be read or written, or holds no key.
 */
export function cliIdentity(file: string | undefined, env: NodeJS.ProcessEnv = process.env): StoredIdentity {
  if (file !== undefined) return { identity: loadOrCreateIdentityFile(file), file, release: () => {} };
  const dir = dataDirectory(env);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  for (let n = 1; n <= MAX_SLOTS; n++) {
    const keyFile = slotFile(dir, n);
    const lockFile = `${keyFile}.lock`;
    if (!lock(lockFile)) continue;
    let released = false;
    const release = (): void => {
      if (released) return;
      released = true;
      process.off('exit', release);
      try {
        unlinkSync(lockFile);
      } catch {
        // Already gone.
      }
    };
    process.on('exit', release);
    try {
      return { identity: loadOrCreateIdentityFile(keyFile), file: keyFile, release };
    } catch (err) {
      release();
      throw err;
    }
  }
  throw new Error(`${MAX_SLOTS} nodes already use the key files in ${dir}: give one --identity FILE`);
}
