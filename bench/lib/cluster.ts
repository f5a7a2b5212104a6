/**
 * Worker processes: one child process per node, each driven over IPC (see `protocol.ts`).
 * Every child is tracked so that {@link killAll} can end them all from an exit, signal or
 * deadline handler; a child also exits by itself when its parent goes away.
 *
 * @module
 */

import { type ChildProcess, fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { BenchError } from './errors.js';
import type { CommandMap, Commands, Reply } from './protocol.js';

const live = new Set<ChildProcess>();

/** The repository root: workers run there, so `--import tsx` and `dist/` resolve alike. */
export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const TSX = import.meta.resolve('tsx');

/** Kills every worker still running, at once (SIGKILL). Safe to call from an `exit` handler. */
export function killAll(): number {
  const n = live.size;
  for (const child of live) child.kill('SIGKILL');
  live.clear();
  return n;
}

/** How many workers are running. */
export function liveWorkers(): number {
  return live.size;
}

/** Where a worker's script is, and how to run it. */
export interface WorkerScript {
  /** Absolute path of the script. */
  readonly file: string;
  /** Run it through `tsx` (a `.ts` file) or with plain `node` (a `.mjs` file). */
  readonly tsx: boolean;
}

/**
 * One worker process. `C` is the command set it understands: {@link Commands} for the
 * broadcast workers, `MemberCommands` for the membership worker.
 */
export class Worker<C extends CommandMap<C> = Commands> {
  readonly name: string;
  readonly #child: ChildProcess;
  readonly #pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  readonly ready: Promise<void>;
  readonly exited: Promise<void>;
  #nextId = 1;
  #gone: Error | undefined;
  #stopping = false;
  address = '';

  /**
   * @param script a `.ts` file relative to `bench/` (run through tsx), or a {@link WorkerScript}
   * @param execArgv extra Node flags (e.g. `--expose-gc`)
   */
  constructor(name: string, script: string | WorkerScript, execArgv: readonly string[] = []) {
    this.name = name;
    const where: WorkerScript =
      typeof script === 'string'
        ? { file: fileURLToPath(new URL(`../${script}`, import.meta.url)), tsx: true }
        : script;
    this.#child = fork(where.file, [], {
      cwd: ROOT,
      execArgv: [...(where.tsx ? ['--import', TSX] : []), ...execArgv],
      serialization: 'advanced',
      // A worker never writes to our stdout: its last line belongs to the JSON report.
      stdio: ['ignore', 2, 2, 'ipc'],
    });
    live.add(this.#child);
    let onReady!: () => void;
    this.ready = new Promise<void>((resolve, reject) => {
      onReady = resolve;
      this.#child.once('error', (err) => reject(new BenchError(`${name}: cannot start: ${err.message}`)));
    });
    this.exited = new Promise<void>((resolve) => {
      this.#child.once('exit', (code, signal) => {
        live.delete(this.#child);
        const how = signal ? `signal ${signal}` : `code ${code}`;
        this.#gone = new BenchError(`${name} exited unexpectedly (${how})`);
        if (!this.#stopping) for (const p of this.#pending.values()) p.reject(this.#gone);
        this.#pending.clear();
        resolve();
      });
    });
    // A worker that dies before saying ready fails the wait instead of hanging it.
    this.ready = Promise.race([
      this.ready,
      this.exited.then(() => {
        throw this.#gone;
      }),
    ]);
    this.ready.catch(() => undefined);
    this.#child.on('message', (raw: unknown) => {
      const msg = raw as Reply;
      if ('ev' in msg) {
        if (msg.ev === 'ready') onReady();
        return;
      }
      const p = this.#pending.get(msg.id);
      if (p === undefined) return;
      this.#pending.delete(msg.id);
      if (msg.ok) p.resolve(msg.result);
      else p.reject(new BenchError(`${name}: ${msg.error}`));
    });
  }

  /** The worker's process id. */
  get pid(): number | undefined {
    return this.#child.pid;
  }

  /** Sends a command; resolves with the worker's result, rejects if it fails or the worker dies. */
  call<K extends keyof C & string>(cmd: K, args: C[K]['args']): Promise<C[K]['result']> {
    return this.#request<C[K]['result']>(cmd, args);
  }

  #request<T>(cmd: string, args: unknown): Promise<T> {
    if (this.#gone) return Promise.reject(this.#gone);
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.#child.send({ id, cmd, args }, (err) => {
        if (err === null || !this.#pending.delete(id)) return;
        reject(new BenchError(`${this.name}: cannot send ${cmd}: ${err.message}`));
      });
    });
  }

  /**
   * Kills the worker at once with `signal` (as a crash would) and resolves once it has exited.
   * Commands still pending then never settle.
   */
  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    if (this.#gone) return;
    this.#stopping = true;
    this.#child.kill(signal);
    await this.exited;
  }

  /** Asks the worker to stop; kills it if it has not exited within `graceMs`. */
  async stop(graceMs = 5_000): Promise<void> {
    if (this.#gone) return;
    this.#stopping = true;
    // Every command set has `stop`.
    this.#request('stop', {}).catch(() => undefined);
    const timer = setTimeout(() => this.#child.kill('SIGKILL'), graceMs);
    await this.exited;
    clearTimeout(timer);
  }
}

/** Options of {@link startCluster}. */
export interface ClusterOptions {
  /** A label for messages, e.g. 'tsp2p'. */
  readonly system: string;
  /** The worker script, relative to `bench/` (e.g. 'worker-tsp2p.ts', run through tsx), or a {@link WorkerScript}. */
  readonly script: string | WorkerScript;
  readonly nodes: number;
  /** Extra Node flags for worker `i` (e.g. `--cpu-prof`). */
  readonly execArgv?: (index: number) => readonly string[];
}

/** Spawns `nodes` workers at once and starts a node in each; resolves once all listen. */
export async function startCluster(options: ClusterOptions): Promise<Worker[]> {
  const workers = Array.from(
    { length: options.nodes },
    (_, i) => new Worker(`${options.system}#${i}`, options.script, options.execArgv?.(i) ?? []),
  );
  await Promise.all(
    workers.map(async (w) => {
      await w.ready;
      w.address = (await w.call('start', {})).address;
    }),
  );
  return workers;
}

/** Stops every worker of a cluster (each killed if it lingers). */
export async function stopCluster<C extends CommandMap<C>>(workers: readonly Worker<C>[]): Promise<void> {
  await Promise.all(workers.map((w) => w.stop()));
}
