/**
 * The lifecycle both commands share: build and start the node from the flags, run input in
 * order, and leave gracefully on end of input, on `/exit`, or on the first SIGINT/SIGTERM
 * (a second one exits at once).
 *
 * @module
 */

import { createPrivateKey, type KeyObject, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { userInfo } from 'node:os';
import { type LeaveReport, Node, type NodeOptions, P2PError } from '../index.js';
import { type NodeFlags, type TlsFlags, UsageError } from './args.js';
import { cliIdentity, dataDirOf } from './identity-store.js';

/** The exit code of a second Ctrl-C: 128 + SIGINT. */
export const FORCED_EXIT_CODE = 130;

/** Signals closer together than this count as one (see {@link Session.interrupt}). */
const SAME_SIGNAL_MS = 300;

/** A name people can tell apart: the user's login and the first characters of the node id. */
export function defaultName(id: string): string {
  let user = '';
  try {
    user = userInfo().username;
  } catch {
    // No user entry (some containers): the id alone will do.
  }
  user = user.replace(/[^A-Za-z0-9_.-]/g, '').slice(0, 16);
  return `${user || 'peer'}-${id.slice(0, 4)}`;
}

/** The network secrets: `--secret`, else `$TSP2P_SECRET` (which other users cannot read). */
export function secretsOf(flags: NodeFlags): readonly string[] {
  const envSecret = process.env.TSP2P_SECRET;
  if (flags.secret.length > 0) return flags.secret;
  return envSecret ? envSecret.split(',').map((s) => s.trim()) : [];
}

/**
 * Builds the node the flags describe.
 *
 * @param keepData - without `--data`, keep a database beside the node's key file
 *   (`dataDirOf`, src/cli/identity-store.ts): the chat does, `tsp2p node` does not
 * @throws {UsageError} when a flag holds a value the node refuses (a bad host, a name too long).
 */
export function createNode(flags: NodeFlags, keepData = false): Node {
  // The key follows the name, or the port (src/cli/identity-store.ts): the id stays across runs.
  let identity: ReturnType<typeof cliIdentity>['identity'];
  let keyFile: string | undefined;
  try {
    ({ identity, file: keyFile } = cliIdentity(
      { file: flags.identity, name: flags.name, port: flags.port },
      process.env,
      { allowReadable: flags.allowReadableIdentity },
    ));
  } catch (err) {
    const message = (err as Error).message;
    throw new UsageError(flags.identity === undefined ? message : `--identity: ${message}`);
  }
  const secret = secretsOf(flags);
  const dataDir = flags.data ?? (keepData && keyFile !== undefined ? dataDirOf(keyFile) : undefined);
  const options: NodeOptions = {
    port: flags.port,
    name: flags.name ?? defaultName(identity.id),
    identity: identity.privateKey,
    ...(flags.host !== undefined ? { host: flags.host } : {}),
    ...(flags.advertise !== undefined ? { advertise: flags.advertise } : {}),
    ...(flags.gop2p ? { compat: 'gop2p' as const } : {}),
    ...(Object.keys(flags.tags).length > 0 ? { tags: flags.tags } : {}),
    ...(secret.length > 0 ? { secret } : {}),
    ...(flags.tls !== undefined ? { tls: loadTls(flags.tls) } : {}),
    ...(dataDir !== undefined ? { dataDir } : {}),
  };
  try {
    return new Node(options);
  } catch (err) {
    if (err instanceof P2PError && err.code === 'ERR_INVALID_OPTIONS') {
      throw new UsageError(err.message.replace(/^invalid option (\w+)/, 'invalid --$1'));
    }
    throw err;
  }
}

/** Reads one PEM file of a `--tls-*` flag; a file that cannot be read or parsed is a usage error. */
function readPem<T>(flag: string, file: string, what: string, parse: (pem: Buffer) => T): [Buffer, T] {
  let pem: Buffer;
  try {
    pem = readFileSync(file);
  } catch (err) {
    const why = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
    throw new UsageError(`${flag}: cannot read ${file} (${why})`);
  }
  try {
    if (!pem.includes('-----BEGIN')) throw new Error('not PEM');
    return [pem, parse(pem)];
  } catch {
    throw new UsageError(`${flag}: ${file} is not ${what}`);
  }
}

/**
 * The `tls` option from the flags: the files read and checked now, so that a wrong path or a
 * key that does not match its certificate is one line at start, naming the file.
 *
 * @throws {UsageError} when a file cannot be read, is not what its flag needs, or the key and
 *   certificate do not belong together.
 */
export function loadTls(tls: TlsFlags): NonNullable<NodeOptions['tls']> {
  const [key, keyObject] = readPem(
    '--tls-key',
    tls.key,
    'a PEM private key',
    (pem): KeyObject => createPrivateKey(pem),
  );
  const [cert, x509] = readPem(
    '--tls-cert',
    tls.cert,
    'a PEM certificate',
    (pem) => new X509Certificate(pem),
  );
  if (!x509.checkPrivateKey(keyObject)) {
    throw new UsageError(`--tls-key: ${tls.key} is not the key of the certificate in ${tls.cert}`);
  }
  const ca =
    tls.ca === undefined
      ? undefined
      : readPem('--tls-ca', tls.ca, 'a PEM certificate', (pem) => new X509Certificate(pem))[0];
  return { key, cert, ...(ca !== undefined ? { ca } : {}), ...(tls.clientAuth ? { requestCert: true } : {}) };
}

/** One line explaining why the node could not start, with what to do about it. */
export function startFailure(err: unknown, flags: NodeFlags): { code: string; message: string } {
  const code = err instanceof P2PError ? err.code : 'ERR_UNEXPECTED';
  const message = err instanceof Error ? err.message : String(err);
  if (code === 'ERR_ADDRESS_IN_USE') {
    return { code, message: `${message}: choose another with --port, or use --port 0 for any free port` };
  }
  if (/EACCES/.test(message) && flags.port > 0 && flags.port < 1024) {
    return { code, message: `${message}: ports below 1024 need privileges; use --port 0 for any free port` };
  }
  if (/EADDRNOTAVAIL/.test(message)) {
    return { code, message: `${message}: --host must be an address of this machine, or 0.0.0.0` };
  }
  return { code, message };
}

/** How a session leaves: after the input already read has run, or right away. */
export type LeaveMode = 'after-input' | 'now';

/** What a session reports to its front end. */
export interface SessionHooks {
  /** A task threw something it did not handle itself. */
  onTaskError(err: unknown): void;
  /** Leaving has been asked for: input stops being read. */
  onLeaving(mode: LeaveMode): void;
  /**
   * The node starts to leave: after the input read before has run (so what that input printed
   * comes first), or at once for `'now'`.
   */
  onLeaveStart?(): void;
  /** The node has told the members (or failed to); `error` when the leave itself threw. */
  onLeft(report: LeaveReport | undefined, error: unknown): void;
  /** A second signal: the process exits at once after this returns. */
  onForcedExit(): void;
}

/**
 * Runs the input of one node in order, and its graceful end. Tasks run one at a time, so
 * lines are sent in the order they were typed, and a leave at the end of the input waits for
 * them.
 */
export class Session {
  readonly node: Node;
  readonly #hooks: SessionHooks;
  #tail: Promise<void> = Promise.resolve();
  /** Sends under way: input goes on meanwhile; a leave at the end of the input waits for them. */
  readonly #pending = new Set<Promise<unknown>>();
  #leaving: Promise<void> | undefined;
  #dropInput = false;
  #exitCode = 0;
  #signals = 0;
  #lastSignalAt = Number.NEGATIVE_INFINITY;
  #disposeSignals: (() => void) | undefined;
  readonly #finished: Promise<number>;
  #finish!: (code: number) => void;

  constructor(node: Node, hooks: SessionHooks) {
    this.node = node;
    this.#hooks = hooks;
    this.#finished = new Promise<number>((resolve) => {
      this.#finish = resolve;
    });
  }

  /** Resolves with the exit code once the node has left and stopped. */
  get finished(): Promise<number> {
    return this.#finished;
  }

  /** Whether leaving has begun. */
  get leaving(): boolean {
    return this.#leaving !== undefined;
  }

  /** Queues a task behind the ones before it. Input that arrives after `/exit` is dropped. */
  run(task: () => Promise<void> | void): void {
    this.#tail = this.#tail.then(async () => {
      if (this.#dropInput) return;
      try {
        await task();
      } catch (err) {
        this.#hooks.onTaskError(err);
      }
    });
  }

  /**
   * Lets a send finish in the background: the next input runs at once (a send may take until
   * its delivery deadline), and reports when it ends. A leave at the end of the input waits for
   * it; `/exit` and signals do not.
   */
  track(work: Promise<unknown>): void {
    const p = work.catch((err: unknown) => this.#hooks.onTaskError(err));
    this.#pending.add(p);
    void p.finally(() => this.#pending.delete(p));
  }

  /**
   * Leaves gracefully, then stops the node. `'after-input'` runs the input read so far first
   * (end of input); `'now'` drops it (`/exit`, a signal). Idempotent.
   */
  leave(mode: LeaveMode): Promise<void> {
    if (this.#leaving) return this.#leaving;
    if (mode === 'now') this.#dropInput = true;
    const before =
      mode === 'after-input'
        ? this.#tail.then(() => Promise.allSettled([...this.#pending]))
        : Promise.resolve();
    this.#leaving = before.then(() => this.#leaveAndStop());
    // Set first: the hook closes the input, whose close handler calls leave() again.
    this.#hooks.onLeaving(mode);
    return this.#leaving;
  }

  /**
   * Ends the session because something it was started for failed (a `--join`): the input not
   * yet run is dropped, and the process exits with `exitCode`, even when a leave had begun.
   */
  fail(exitCode: number): Promise<void> {
    this.#exitCode = exitCode;
    this.#dropInput = true;
    return this.leave('now');
  }

  async #leaveAndStop(): Promise<void> {
    this.#hooks.onLeaveStart?.();
    let report: LeaveReport | undefined;
    let error: unknown;
    try {
      // The program is closing, not leaving for good: the next start from its data rejoins.
      report = await this.node.disconnect({ rejoinOnStart: true });
    } catch (err) {
      error = err;
    }
    this.#hooks.onLeft(report, error);
    await this.node.stop().catch(() => undefined);
    this.#disposeSignals?.();
    this.#finish(this.#exitCode);
  }

  /**
   * The first SIGINT or SIGTERM leaves gracefully; a second exits at once with code 130.
   * Front ends whose readline owns Ctrl-C call {@link Session.interrupt} themselves.
   */
  handleSignals(): void {
    const onSignal = (): void => this.interrupt();
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    this.#disposeSignals = () => {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    };
  }

  /** A Ctrl-C or a termination request. */
  interrupt(): void {
    const now = performance.now();
    // One Ctrl-C can arrive twice: from the terminal, and forwarded by a parent such as npx,
    // which shares the process group. A repeat that close is the same keypress.
    if (now - this.#lastSignalAt < SAME_SIGNAL_MS) return;
    this.#lastSignalAt = now;
    this.#signals += 1;
    if (this.#signals === 1 && !this.leaving) {
      void this.leave('now');
      return;
    }
    this.#hooks.onForcedExit();
    process.exit(FORCED_EXIT_CODE);
  }
}
