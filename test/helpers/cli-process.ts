/**
 * Runs the real `tsp2p` command (`node bin/tsp2p.js`, which needs `npm run build`) as a child
 * process through pipes, and waits for lines in its output. Each child is killed when the
 * test ends; its output is printed when a wait times out.
 *
 * @module
 */

import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';

/** The repository root. */
export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
/** The command under test. */
export const BIN = fileURLToPath(new URL('../../bin/tsp2p.js', import.meta.url));

/** How long a wait lasts by default. Generous: the machine is shared and may be slow. */
export const WAIT_MS = 15_000;

let dataHome: string | undefined;

/**
 * A data directory for this test process's children, removed when it exits: the key of a
 * named node is locked while it runs, so test runs side by side must not share one.
 */
function testDataHome(): string {
  if (dataHome === undefined) {
    const dir = mkdtempSync(join(tmpdir(), 'tsp2p-test-data-'));
    dataHome = dir;
    process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
  }
  return dataHome;
}

/**
 * The environment children run with: no colour forced either way, no debug output, and their
 * key files (the CLI keeps one per name or port) in a temporary data directory rather than the
 * user's own.
 */
export function cliEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    XDG_DATA_HOME: testDataHome(),
    ...extra,
  };
  for (const key of ['NO_COLOR', 'FORCE_COLOR', 'NODE_DEBUG', 'NODE_OPTIONS']) {
    if (!(key in extra)) delete env[key];
  }
  return env;
}

/** Which output stream to look at. */
export type StreamName = 'stdout' | 'stderr';

/** What a line must be: a substring, a regular expression, or a predicate. */
export type LinePattern = string | RegExp | ((line: string) => boolean);

/** A line found by {@link CliProcess.waitFor}. */
export interface Found {
  readonly line: string;
  /** Its index in the stream's lines. */
  readonly index: number;
  /** The match, when the pattern was a regular expression. */
  readonly match: RegExpExecArray | null;
}

interface Waiter {
  readonly stream: StreamName;
  readonly test: (line: string) => boolean;
  from: number;
  readonly resolve: (found: Found) => void;
}

function toTest(pattern: LinePattern): (line: string) => boolean {
  if (typeof pattern === 'string') return (line) => line.includes(pattern);
  if (pattern instanceof RegExp) return (line) => pattern.test(line);
  return pattern;
}

/** A running `tsp2p` process. */
export class CliProcess {
  readonly name: string;
  readonly child: ChildProcess;
  readonly lines: Record<StreamName, string[]> = { stdout: [], stderr: [] };
  /** Resolves with the exit code (or the signal) once the process has exited. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  #waiters = new Set<Waiter>();
  #exitedNow = false;

  /**
   * @param command - what node runs before `args`: the `tsp2p` command by default, or another
   *   script (such as the gop2p chat double: `['--import', 'tsx', file]`)
   */
  constructor(
    name: string,
    args: readonly string[],
    env: NodeJS.ProcessEnv,
    command: readonly string[] = [BIN],
  ) {
    this.name = name;
    this.child = spawn(process.execPath, [...command, ...args], {
      cwd: ROOT,
      env,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    for (const stream of ['stdout', 'stderr'] as const) {
      let rest = '';
      this.child[stream]!.setEncoding('utf8');
      this.child[stream]!.on('data', (chunk: string) => {
        const parts = (rest + chunk).split('\n');
        rest = parts.pop()!;
        for (const line of parts) this.#push(stream, line);
      });
      this.child[stream]!.on('end', () => {
        if (rest !== '') this.#push(stream, rest);
        rest = '';
      });
    }
    // Writing to a child that has exited is not this helper's error to raise.
    this.child.stdin!.on('error', () => undefined);
    this.exited = new Promise((resolve) => {
      this.child.on('close', (code, signal) => {
        this.#exitedNow = true;
        resolve({ code, signal });
      });
    });
  }

  #push(stream: StreamName, line: string): void {
    const index = this.lines[stream].push(line) - 1;
    for (const w of [...this.#waiters]) {
      if (w.stream === stream && index >= w.from && w.test(line)) {
        this.#waiters.delete(w);
        w.resolve({ line, index, match: null });
      }
    }
  }

  /** How many lines each stream holds now: pass it as `since` to wait only for later lines. */
  mark(stream: StreamName = 'stdout'): number {
    return this.lines[stream].length;
  }

  /** Sends one line on stdin. */
  send(line: string): void {
    this.child.stdin!.write(`${line}\n`);
  }

  /** Closes stdin: the end of input. */
  end(): void {
    this.child.stdin!.end();
  }

  /**
   * Resolves with the first line (at index `since` or later) that matches; rejects when the
   * process exits first or when `timeoutMs` passes, showing the process's output.
   */
  waitFor(
    pattern: LinePattern,
    {
      stream = 'stdout',
      since = 0,
      timeoutMs = WAIT_MS,
      signal,
    }: { stream?: StreamName; since?: number; timeoutMs?: number; signal?: AbortSignal } = {},
  ): Promise<Found> {
    const test = toTest(pattern);
    const withMatch = (found: Found): Found =>
      pattern instanceof RegExp ? { ...found, match: pattern.exec(found.line) } : found;
    const lines = this.lines[stream];
    for (let i = since; i < lines.length; i++) {
      if (test(lines[i]!)) return Promise.resolve(withMatch({ line: lines[i]!, index: i, match: null }));
    }
    return new Promise<Found>((resolve, reject) => {
      const fail = (why: string): void => {
        if (!this.#waiters.delete(waiter)) return;
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        reject(
          new Error(`${this.name}: ${why} while waiting on ${stream} for ${String(pattern)}\n${this.dump()}`),
        );
      };
      const timer = setTimeout(() => fail(`no match within ${timeoutMs} ms`), timeoutMs);
      const waiter: Waiter = {
        stream,
        test,
        from: since,
        resolve: (found) => {
          clearTimeout(timer);
          signal?.removeEventListener('abort', onAbort);
          resolve(withMatch(found));
        },
      };
      const onAbort = (): void => fail('cancelled');
      this.#waiters.add(waiter);
      signal?.addEventListener('abort', onAbort, { once: true });
      void this.exited.then(({ code, signal }) => {
        // Lines still in flight arrive before 'close'; anything unmatched by now never will.
        if (this.#waiters.has(waiter)) fail(`exited (code ${code}, signal ${signal})`);
      });
    });
  }

  /**
   * Resolves with the first of several waits to succeed (each `[pattern, options]`), and
   * cancels the others.
   */
  async waitForAny(
    waits: readonly [LinePattern, { stream?: StreamName; since?: number }][],
    timeoutMs = WAIT_MS,
  ): Promise<Found> {
    const cancel = new AbortController();
    const all = waits.map(([pattern, options]) =>
      this.waitFor(pattern, { ...options, timeoutMs, signal: cancel.signal }),
    );
    try {
      return await Promise.any(all);
    } catch {
      throw new Error(
        `${this.name}: none of ${waits.map(([p]) => String(p)).join(', ')} appeared\n${this.dump()}`,
      );
    } finally {
      cancel.abort();
      for (const p of all) p.catch(() => undefined);
    }
  }

  /** Resolves with the exit code once the process exits, or rejects after `timeoutMs`. */
  async waitExit(timeoutMs = WAIT_MS): Promise<number | null> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`${this.name} did not exit within ${timeoutMs} ms\n${this.dump()}`)),
        timeoutMs,
      );
    });
    try {
      const { code, signal } = await Promise.race([this.exited, timeout]);
      return code ?? (signal ? -1 : null);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Kills the process (SIGKILL unless told otherwise) if it still runs. */
  kill(signal: NodeJS.Signals = 'SIGKILL'): void {
    if (!this.#exitedNow) this.child.kill(signal);
  }

  /** The output so far, for error messages. */
  dump(): string {
    const tail = (s: StreamName): string =>
      this.lines[s]
        .slice(-25)
        .map((l) => `  ${l}`)
        .join('\n');
    return `--- ${this.name} stdout:\n${tail('stdout')}\n--- ${this.name} stderr:\n${tail('stderr')}`;
  }
}

/** Starts `tsp2p <args>`; the process is killed when the test ends. */
export function startCli(
  t: TestContext,
  name: string,
  args: readonly string[],
  env: NodeJS.ProcessEnv = cliEnv(),
): CliProcess {
  const p = new CliProcess(name, args, env);
  t.after(async () => {
    p.kill();
    await p.exited;
  });
  return p;
}

/** Starts a chat or node and resolves with it and its `host:port`, once it listens. */
export async function startListening(
  t: TestContext,
  name: string,
  args: readonly string[],
): Promise<{ p: CliProcess; address: string }> {
  const p = startCli(t, name, args);
  if (args[0] === 'node') {
    const { line } = await p.waitFor((l) => l.includes('"event":"listening"'));
    const ev = JSON.parse(line) as { address: string; port: number };
    return { p, address: `${ev.address}:${ev.port}` };
  }
  const { match } = await p.waitFor(/^listening on https?:\/\/(\S+)$/);
  return { p, address: match![1]! };
}

/** Runs `tsp2p <args>` to the end, with stdin closed; resolves with its exit code and output. */
export async function runCli(
  t: TestContext,
  args: readonly string[],
  env: NodeJS.ProcessEnv = cliEnv(),
): Promise<{ code: number | null; stdout: string[]; stderr: string[] }> {
  const p = startCli(t, `tsp2p ${args.join(' ')}`, args, env);
  p.end();
  const code = await p.waitExit();
  return { code, stdout: p.lines.stdout, stderr: p.lines.stderr };
}

/** Every JSON line a `tsp2p node` printed, parsed (lines that are not JSON objects are left out). */
export function events(p: CliProcess): CliEvent[] {
  return p.lines.stdout.map(parseEvent).filter((e): e is CliEvent => e !== undefined);
}

/** A JSON line of `tsp2p node`. */
export interface CliEvent {
  readonly event: string;
  readonly [key: string]: unknown;
}

function parseEvent(line: string): CliEvent | undefined {
  try {
    const value = JSON.parse(line) as unknown;
    return typeof value === 'object' && value !== null ? (value as CliEvent) : undefined;
  } catch {
    return undefined;
  }
}

/** Waits for a `tsp2p node` event named `event` (at index `since` or later) for which `where` holds. */
export async function waitForEvent(
  p: CliProcess,
  event: string,
  where: (ev: CliEvent) => boolean = () => true,
  since = 0,
): Promise<CliEvent> {
  const { line } = await p.waitFor(
    (l) => {
      const ev = parseEvent(l);
      return ev !== undefined && ev.event === event && where(ev);
    },
    { since },
  );
  return parseEvent(line)!;
}
