/**
 * Where the command line keeps node identities: a data directory, created with mode 0700, with
 * one key file (mode 0600) per node. A node's key follows what the user chose for it:
 *
 * - `--name NAME`: `name-NAME.pem` (NAME with unsafe characters %-encoded);
 * - no name, `--port P`: `port-P.pem`;
 * - neither (any free port, no name): a new key each run, kept nowhere, as the node's address
 *   is new each run too;
 * - `--identity FILE`: that file (its folder must exist).
 *
 * A key file in the data directory belongs to one running node at a time: two nodes with the
 * same key would claim the same id. So each has a lock file beside it holding the pid of the
 * process that uses it, removed on exit; a lock whose process has died is taken over. A second
 * node with the same name (or port) is refused with a message that says how to choose another.
 * `--identity FILE` takes no lock: one node per file is then the user's rule.
 *
 * @module
 */

import {
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readFileSync,
  statSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import {
  generateIdentity,
  type Identity,
  type IdentityFileOptions,
  loadOrCreateIdentityFile,
} from '../index.js';

/** The data directory: `$XDG_DATA_HOME/tsp2p`, or `~/.local/share/tsp2p`. */
export function dataDirectory(env: NodeJS.ProcessEnv = process.env): string {
  const xdg = env.XDG_DATA_HOME;
  const base = xdg !== undefined && xdg !== '' ? xdg : join(homedir(), '.local', 'share');
  return join(base, 'tsp2p');
}

/** What a node's key follows: its name, or its port when it has no name. */
export type IdentityKey = { readonly name: string } | { readonly port: number };

/** The key file for `key` in the data directory `dir`. */
export function keyFile(dir: string, key: IdentityKey): string {
  if ('name' in key) {
    // Letters, digits and `-_.` as they are; anything else %-encoded, so that no name is a path.
    const safe = [...key.name]
      .map((ch) => (/^[A-Za-z0-9_.-]$/.test(ch) ? ch : encodeURIComponent(ch).replace(/[!'()*]/g, hex)))
      .join('');
    return join(dir, `name-${safe}.pem`);
  }
  return join(dir, `port-${key.port}.pem`);
}

function hex(ch: string): string {
  return `%${ch.charCodeAt(0).toString(16).toUpperCase()}`;
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

/**
 * Takes the lock at `path` for this process. Resolves with `true`, or with the pid of the live
 * process that holds it (`0` when it could not be told).
 */
function lock(path: string): true | number {
  let holder = Number.NaN;
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const fd = openSync(path, 'wx', 0o600);
      writeSync(fd, String(process.pid));
      closeSync(fd);
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    holder = Number.NaN;
    try {
      holder = Number(readFileSync(path, 'utf8').trim());
    } catch {
      // Removed meanwhile: try again.
    }
    if (alive(holder) && holder !== process.pid) return holder;
    try {
      unlinkSync(path); // a stale lock: its process is gone
    } catch {
      // Someone else took it over first.
    }
  }
  return Number.isInteger(holder) ? holder : 0;
}

/**
 * The default data directory of the node whose key is in `keyFile`: beside it, the key file's
 * name with `.data` in place of `.pem` (`name-ada.pem` → `name-ada.data`). One per identity:
 * the key file's lock also keeps a second process out of it.
 */
export function dataDirOf(keyFile: string): string {
  return `${keyFile.replace(/\.pem$/i, '')}.data`;
}

/** A node identity for the CLI, and the function that releases its key file. */
export interface StoredIdentity {
  readonly identity: Identity;
  /** The key file; undefined for a key kept nowhere. */
  readonly file: string | undefined;
  /** Releases the key file's lock (also done on process exit). */
  readonly release: () => void;
}

/** What decides a CLI node's identity. */
export interface IdentityChoice {
  /** `--identity FILE`. */
  readonly file?: string | undefined;
  /** `--name`. */
  readonly name?: string | undefined;
  /** `--port` (0: any free port). */
  readonly port: number;
}

/** A key file that cannot be used; its message is one line that says what to do. */
export class IdentityError extends Error {
  override get name(): string {
    return 'IdentityError';
  }
}

/**
 * The identity for a CLI node (see the module comment for the rule).
 *
 * @throws {IdentityError} when the folder of `--identity FILE` does not exist, or when another
 *   running node holds the key of this name or port.
 * @throws {InvalidOptionsError} when a key file cannot be read or written, holds no key, or is
 *   readable by others (unless `options.allowReadable`).
 */
export function cliIdentity(
  choice: IdentityChoice,
  env: NodeJS.ProcessEnv = process.env,
  options: IdentityFileOptions = {},
): StoredIdentity {
  const none = (): void => {};
  if (choice.file !== undefined) {
    const folder = dirname(resolve(choice.file));
    if (!existsSync(folder) || !statSync(folder).isDirectory()) {
      throw new IdentityError(`the folder ${folder} does not exist: create it, or give another file`);
    }
    return { identity: loadOrCreateIdentityFile(choice.file, options), file: choice.file, release: none };
  }
  const key: IdentityKey | undefined =
    choice.name !== undefined ? { name: choice.name } : choice.port > 0 ? { port: choice.port } : undefined;
  if (key === undefined) return { identity: generateIdentity(), file: undefined, release: none };
  const dir = dataDirectory(env);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const file = keyFile(dir, key);
  const lockFile = `${file}.lock`;
  const held = lock(lockFile);
  if (held !== true) {
    const by = held > 0 ? ` (pid ${held})` : '';
    throw new IdentityError(
      'name' in key
        ? `another tsp2p on this machine${by} runs with the name '${key.name}', and so with its key: choose another --name`
        : `another tsp2p on this machine${by} runs with the key of port ${key.port}: choose another --port, or give a --name`,
    );
  }
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
    return { identity: loadOrCreateIdentityFile(file, options), file, release };
  } catch (err) {
    release();
    throw err;
  }
}
