/**
 * Spawns {@link ./peer-process.ts} (a tsp2p node in its own process) and drives it: commands as
 * promises, events collected, waits with deadlines, kill. The child is killed when the test
 * ends, and its stderr is printed when the test failed.
 *
 * @module
 */

import { type ChildProcess, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import type { TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';
import { WaitTimeoutError, withDeadline } from './wait.js';

const SCRIPT = fileURLToPath(new URL('./peer-process.ts', import.meta.url));
const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** A peer as the child reports it. */
export interface PeerJson {
  readonly id: string;
  readonly address: string;
  readonly port: number;
  readonly name?: string;
}

/** A failure inside a report, as the child reports it. */
export interface FailureJson {
  readonly peer: PeerJson;
  readonly error: { readonly code: string; readonly message: string };
}

/** `broadcast` / `send` results. */
export interface DeliveryJson {
  readonly id: string;
  readonly delivered: PeerJson[];
  readonly failed: FailureJson[];
}

/** `connect` results. */
export interface ConnectJson {
  readonly entry: PeerJson;
  readonly members: PeerJson[];
  readonly failed: FailureJson[];
}

/** `disconnect` results. */
export interface LeaveJson {
  readonly notified: PeerJson[];
  readonly failed: FailureJson[];
}

/** A member as the child's `memberStates` command reports it. */
export interface MemberStateJson {
  readonly peer: PeerJson;
  readonly kind: 'tsp2p' | 'gop2p';
  readonly state: 'alive' | 'suspect' | 'dead' | 'left';
  readonly incarnation: number;
}

/** The result of the child's `stream` command. */
export interface StreamResultJson {
  readonly count: number;
  /** Per member id: the indexes of the messages it acknowledged, ascending. */
  readonly delivered: Record<string, number[]>;
  /** Every failure named in a report, with the message's index. */
  readonly failed: { i: number; peer: string; code: string; message: string }[];
  /** Every call that rejected, with the message's index. */
  readonly errors: { i: number; code: string; message: string }[];
}

/** One message of `node.history()`, as the child reports it. */
export interface HistoryEntryJson {
  readonly id: string;
  readonly text: string;
  readonly from: PeerJson;
  readonly late?: boolean;
}

/** Options of {@link PeerProcess.stream}. */
export interface StreamOptions {
  /** Texts are `${prefix}:${i}`. @default 'm' */
  readonly prefix?: string;
  /** Most broadcast calls outstanding at once. @default count */
  readonly window?: number;
  /**
   * Stop calling before message `pauseAt` (each one, for a list) until {@link PeerProcess.resume};
   * the child prints `{"event":"stream:paused","at":n}` there.
   */
  readonly pauseAt?: number | readonly number[];
  /** Give up waiting for the result after this many ms. @default 120000 */
  readonly timeoutMs?: number;
}

/** One line the child printed. */
export interface PeerEvent {
  readonly event: string;
  readonly peer?: PeerJson;
  readonly from?: PeerJson;
  readonly text?: string;
  readonly type?: 'broadcast' | 'direct';
  readonly id?: string;
  readonly [key: string]: unknown;
}

/** A command the child answered with `{ error: { code, message } }`. */
export class PeerCommandError extends Error {
  override readonly name = 'PeerCommandError';
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** How the child exited. */
export interface PeerExit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

interface Pending {
  readonly resolve: (value: unknown) => void;
  readonly reject: (err: Error) => void;
  readonly timer: NodeJS.Timeout;
}

interface EventWaiter {
  readonly predicate: (e: PeerEvent) => boolean;
  readonly resolve: (e: PeerEvent) => void;
}

/** Whether a test has failed (`passed` exists from Node 20.12; @types/node 20 lacks it). */
function hasFailed(t: TestContext): boolean {
  return (t as TestContext & { readonly passed?: boolean }).passed === false;
}

/** Options of {@link PeerProcess.spawn}. */
export interface SpawnPeerOptions {
  /** A label for error messages and logs. */
  readonly label?: string;
  /** Give up waiting for `ready` after this many ms. @default 20000 */
  readonly readyTimeoutMs?: number;
  /**
   * A command that runs the child, e.g. `['ip', 'netns', 'exec', 'ns1']`. It must exec the
   * child in place (as `ip netns exec` does), so that signals reach the node itself.
   */
  readonly wrap?: readonly string[];
}

/** A tsp2p node running in a child process. */
export class PeerProcess {
  readonly label: string;
  readonly child: ChildProcess;
  /** Every event line printed so far (results excluded), in order. */
  readonly events: PeerEvent[] = [];
  /** Everything the child wrote to stderr. */
  stderr = '';
  /** How the child exited, once it has. */
  exit: PeerExit | undefined;
  /** Resolves when the child has exited. */
  readonly exited: Promise<PeerExit>;
  #self: PeerJson | undefined;
  #seq = 0;
  readonly #pending = new Map<number, Pending>();
  readonly #waiters = new Set<EventWaiter>();

  private constructor(label: string, options: Record<string, unknown>, wrap: readonly string[] = []) {
    this.label = label;
    const env = { ...process.env };
    delete env.NODE_TEST_CONTEXT; // not a test file: keep the runner's protocol out of stdout
    delete env.NODE_OPTIONS;
    const argv = [process.execPath, '--import', 'tsx', SCRIPT, JSON.stringify(options)];
    const [command, ...args] = [...wrap, ...argv] as [string, ...string[]];
    this.child = spawn(command, args, {
      cwd: REPO_ROOT,
      env,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    this.child.stderr!.setEncoding('utf8');
    this.child.stderr!.on('data', (chunk: string) => {
      this.stderr += chunk;
    });
    this.child.stdin!.on('error', () => undefined); // EPIPE after a kill
    const rl = createInterface({ input: this.child.stdout!, crlfDelay: Number.POSITIVE_INFINITY });
    rl.on('line', (line) => this.#onLine(line));
    this.exited = new Promise<PeerExit>((resolve) => {
      // 'close', not 'exit': by then every line the child wrote has been read (after a kill,
      // lines may still be in the pipe at 'exit').
      this.child.once('close', (code, signal) => {
        this.exit = { code, signal };
        const err = new Error(`${this.label} exited (code ${code}, signal ${signal})${this.stderrTail()}`);
        for (const p of this.#pending.values()) {
          clearTimeout(p.timer);
          p.reject(err);
        }
        this.#pending.clear();
        resolve(this.exit);
      });
    });
  }

  /**
   * Spawns a peer process, waits for it to listen, and registers its cleanup on `t`: killed
   * when the test ends, its stderr printed if the test failed.
   *
   * @param options - `NodeOptions` (JSON-serializable ones) for the child's node
   */
  static async spawn(
    t: TestContext,
    options: Record<string, unknown> = {},
    spawnOptions: SpawnPeerOptions = {},
  ): Promise<PeerProcess> {
    const peer = new PeerProcess(spawnOptions.label ?? 'peer', options, spawnOptions.wrap);
    // `t.passed` stays true when only a subtest failed: watch the subtests too.
    let subtestFailed = false;
    t.afterEach((sub: TestContext) => {
      if (sub && hasFailed(sub)) subtestFailed = true;
    });
    t.after(async () => {
      await peer.kill('SIGKILL');
      if (hasFailed(t) || subtestFailed) {
        console.error(`----- stderr of ${peer.label} (pid ${peer.child.pid}) -----\n${peer.stderr}-----`);
      }
    });
    const ready = await Promise.race([
      peer.waitForEvent((e) => e.event === 'ready', {
        timeoutMs: spawnOptions.readyTimeoutMs ?? 20_000,
        message: `${peer.label} to be ready`,
      }),
      peer.exited.then((exit) => {
        throw new Error(
          `${peer.label} exited before ready (code ${exit.code}, signal ${exit.signal})${peer.stderrTail()}`,
        );
      }),
    ]);
    peer.#self = ready.self as PeerJson;
    return peer;
  }

  /** The node's self peer, as it reported when ready. */
  get self(): PeerJson {
    if (this.#self === undefined) throw new Error(`${this.label} is not ready`);
    return this.#self;
  }

  /** `'address:port'` of the node. */
  get address(): string {
    return `${this.self.address}:${this.self.port}`;
  }

  /** The last 4 KiB of stderr, prefixed for an error message. */
  stderrTail(): string {
    if (this.stderr === '') return '';
    return `\n--- stderr of ${this.label} ---\n${this.stderr.slice(-4096)}`;
  }

  #onLine(line: string): void {
    let parsed: PeerEvent & { seq?: number; result?: unknown; error?: { code: string; message: string } };
    try {
      parsed = JSON.parse(line);
    } catch {
      this.stderr += `[stdout, not JSON] ${line}\n`;
      return;
    }
    if (parsed.event === 'result' && typeof parsed.seq === 'number') {
      const pending = this.#pending.get(parsed.seq);
      if (pending === undefined) return;
      this.#pending.delete(parsed.seq);
      clearTimeout(pending.timer);
      if (parsed.error) pending.reject(new PeerCommandError(parsed.error.code, parsed.error.message));
      else pending.resolve(parsed.result);
      return;
    }
    this.events.push(parsed);
    for (const w of [...this.#waiters]) {
      if (w.predicate(parsed)) {
        this.#waiters.delete(w);
        w.resolve(parsed);
      }
    }
  }

  /**
   * Sends a command and resolves with its result; rejects with {@link PeerCommandError} (which
   * carries the `code`) when the node answered an error.
   */
  command<T = unknown>(cmd: string, args: Record<string, unknown> = {}, timeoutMs = 20_000): Promise<T> {
    if (this.exit) return Promise.reject(new Error(`${this.label} has exited${this.stderrTail()}`));
    const seq = ++this.#seq;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(seq);
        reject(
          new WaitTimeoutError(`${this.label}: no answer to '${cmd}' in ${timeoutMs} ms${this.stderrTail()}`),
        );
      }, timeoutMs);
      this.#pending.set(seq, { resolve: resolve as (v: unknown) => void, reject, timer });
      this.child.stdin!.write(`${JSON.stringify({ ...args, seq, cmd })}\n`);
    });
  }

  connect(entry: string): Promise<ConnectJson> {
    return this.command<ConnectJson>('connect', { entry });
  }

  broadcast(text: string): Promise<DeliveryJson> {
    return this.command<DeliveryJson>('broadcast', { text });
  }

  send(to: string | string[], text: string): Promise<DeliveryJson> {
    return this.command<DeliveryJson>('send', { to, text });
  }

  disconnect(): Promise<LeaveJson> {
    return this.command<LeaveJson>('disconnect');
  }

  members(): Promise<PeerJson[]> {
    return this.command<PeerJson[]>('members');
  }

  /** Every member the node knows of, with its state and incarnation (tombstones included). */
  memberStates(): Promise<MemberStateJson[]> {
    return this.command<MemberStateJson[]>('memberStates');
  }

  /**
   * Broadcasts `${prefix}:0` ... `${prefix}:${count - 1}`, each call made in order without
   * awaiting the previous one (at most `window` outstanding), and resolves once every call did.
   */
  stream(count: number, options: StreamOptions = {}): Promise<StreamResultJson> {
    const { timeoutMs = 120_000, ...args } = options;
    return this.command<StreamResultJson>('stream', { count, ...args }, timeoutMs);
  }

  /** Blocks the child's event loop for `ms` (a CPU-starved node); resolves once it runs again. */
  block(ms: number): Promise<null> {
    return this.command<null>('block', { ms }, ms + 20_000);
  }

  /** From now on the child's `message` listener busy-waits `ms` per message (a slow application). */
  slowListener(ms: number): Promise<null> {
    return this.command<null>('slowListener', { ms });
  }

  /** Lets a stream paused at `pauseAt` go on; resolves with how many were paused. */
  resume(): Promise<number> {
    return this.command<number>('resume');
  }

  /** The texts of every message the node received, in order (asked of the child itself). */
  received(timeoutMs = 20_000): Promise<string[]> {
    return this.command<string[]>('received', {}, timeoutMs);
  }

  /** `node.history()` in the child: the newest `limit` messages (of `topic`), oldest first. */
  history(options: { topic?: string; limit?: number } = {}, timeoutMs = 20_000): Promise<HistoryEntryJson[]> {
    return this.command<HistoryEntryJson[]>('history', { ...options }, timeoutMs);
  }

  /** Stops the node gracefully and resolves with how the process exited. */
  async stop(timeoutMs = 20_000): Promise<PeerExit> {
    await this.command('stop', {}, timeoutMs);
    return this.waitForExit(timeoutMs);
  }

  /** The messages received so far. */
  messages(): PeerEvent[] {
    return this.events.filter((e) => e.event === 'message');
  }

  /**
   * Resolves with the first event (already seen, from index `since` on, or still to come)
   * matching `predicate`.
   */
  waitForEvent(
    predicate: (e: PeerEvent) => boolean,
    options: { timeoutMs?: number; message?: string; since?: number } = {},
  ): Promise<PeerEvent> {
    const seen = this.events.slice(options.since ?? 0).find(predicate);
    if (seen) return Promise.resolve(seen);
    const timeoutMs = options.timeoutMs ?? 10_000;
    return new Promise<PeerEvent>((resolve, reject) => {
      const waiter: EventWaiter = {
        predicate,
        resolve: (e) => {
          clearTimeout(timer);
          resolve(e);
        },
      };
      const timer = setTimeout(() => {
        this.#waiters.delete(waiter);
        const got = this.events.map((e) => JSON.stringify(e)).join('\n');
        reject(
          new WaitTimeoutError(
            `${this.label}: timed out after ${timeoutMs} ms waiting for ${options.message ?? 'an event'}` +
              `\n--- events so far ---\n${got}${this.stderrTail()}`,
          ),
        );
      }, timeoutMs);
      this.#waiters.add(waiter);
    });
  }

  /** Waits for a message with this text (and, optionally, from this `address:port`). */
  waitForMessage(text: string, options: { from?: string; timeoutMs?: number } = {}): Promise<PeerEvent> {
    return this.waitForEvent(
      (e) =>
        e.event === 'message' &&
        e.text === text &&
        (options.from === undefined || `${e.from?.address}:${e.from?.port}` === options.from),
      { timeoutMs: options.timeoutMs, message: `message '${text}'` },
    );
  }

  /** Resolves with how the child exited; rejects if it is still running after `timeoutMs`. */
  waitForExit(timeoutMs = 20_000): Promise<PeerExit> {
    return withDeadline(this.exited, timeoutMs, `${this.label} to exit${this.stderrTail()}`);
  }

  /** Sends `signal` without waiting for anything (SIGSTOP, SIGCONT); false once the child exited. */
  signal(signal: NodeJS.Signals): boolean {
    if (this.exit) return false;
    return this.child.kill(signal);
  }

  /** Sends `signal` (SIGKILL by default) and resolves once the child has exited. */
  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<PeerExit> {
    if (this.exit) return this.exit;
    this.child.kill(signal);
    return this.exited;
  }
}

/** Spawns `count` peer processes at once. */
export function spawnPeers(
  t: TestContext,
  count: number,
  options: Record<string, unknown> = {},
): Promise<PeerProcess[]> {
  return Promise.all(
    Array.from({ length: count }, (_, i) => PeerProcess.spawn(t, options, { label: `peer${i}` })),
  );
}
