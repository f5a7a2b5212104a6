/**
 * The parent side of {@link ./security-child.ts}: a node in a child process, with its memory
 * readable from the test.
 *
 * @module
 */

import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { createInterface, type Interface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { NodeOptions, Peer } from '../../src/index.js';

const CHILD = fileURLToPath(new URL('./security-child.ts', import.meta.url));

/** What `mem` answers, in bytes, after a full GC in the child. */
export interface ChildMemory {
  readonly rss: number;
  readonly heapUsed: number;
  readonly external: number;
  readonly arrayBuffers: number;
}

/** Options that can cross a process boundary (JSON), plus a deterministic identity. */
export type ChildOptions = Omit<NodeOptions, 'logger' | 'clock' | 'random' | 'transport' | 'identity'> & {
  /** 32 bytes in hex: the node's Ed25519 seed. */
  readonly identitySeed?: string;
  /** Remember each distinct text received (for `received().texts`). @default true */
  readonly trackTexts?: boolean;
};

/** A node running in a child process. */
export class ChildNode {
  readonly #child: ChildProcessWithoutNullStreams;
  readonly #lines: Interface;
  readonly #waiting: { resolve: (line: string) => void; reject: (err: Error) => void }[] = [];
  stderr = '';
  self!: Peer;
  pid!: number;

  private constructor(child: ChildProcessWithoutNullStreams) {
    this.#child = child;
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (s: string) => {
      this.stderr = (this.stderr + s).slice(-8_000);
    });
    this.#lines = createInterface({ input: child.stdout });
    this.#lines.on('line', (line) => this.#waiting.shift()?.resolve(line));
    child.once('exit', (code) => {
      for (const w of this.#waiting.splice(0)) {
        w.reject(new Error(`the child node exited (${code}); stderr: ${this.stderr}`));
      }
    });
  }

  /** Starts a node in a child process; resolves once it listens. */
  static async start(options: ChildOptions = {}, timeoutMs = 30_000): Promise<ChildNode> {
    const child = spawn(
      process.execPath,
      ['--expose-gc', '--import', 'tsx', CHILD, JSON.stringify(options)],
      {
        stdio: ['pipe', 'pipe', 'pipe'],
      },
    );
    const node = new ChildNode(child);
    const ready = JSON.parse(await node.#next(timeoutMs)) as { self: Peer; pid: number };
    node.self = ready.self;
    node.pid = ready.pid;
    return node;
  }

  /** Whether the child is still running. */
  get alive(): boolean {
    return this.#child.exitCode === null && this.#child.signalCode === null;
  }

  #next(timeoutMs = 30_000): Promise<string> {
    return new Promise((resolve, reject) => {
      if (!this.alive) {
        reject(new Error(`the child node has exited; stderr: ${this.stderr}`));
        return;
      }
      const waiter = {
        resolve: (line: string): void => {
          clearTimeout(timer);
          resolve(line);
        },
        reject: (err: Error): void => {
          clearTimeout(timer);
          reject(err);
        },
      };
      const timer = setTimeout(() => {
        const i = this.#waiting.indexOf(waiter);
        if (i >= 0) this.#waiting.splice(i, 1);
        reject(new Error(`the child node did not answer within ${timeoutMs} ms; stderr: ${this.stderr}`));
      }, timeoutMs);
      this.#waiting.push(waiter);
    });
  }

  async #ask<T>(command: string): Promise<T> {
    const answer = this.#next();
    this.#child.stdin.write(`${command}\n`);
    return JSON.parse(await answer) as T;
  }

  /** The child's memory after a full GC. */
  memory(): Promise<ChildMemory> {
    return this.#ask('mem');
  }

  /** Messages received, and how many distinct texts. */
  received(): Promise<{ count: number; texts: number }> {
    return this.#ask('received');
  }

  /** The ids of the child's members. */
  async members(): Promise<string[]> {
    return (await this.#ask<{ members: string[] }>('members')).members;
  }

  /** Stops the node and waits for the process to exit (killing it after `timeoutMs`). */
  async stop(timeoutMs = 10_000): Promise<void> {
    if (!this.alive) return;
    const exited = new Promise<void>((resolve) => this.#child.once('exit', () => resolve()));
    this.#child.stdin.end('stop\n');
    const timer = setTimeout(() => this.#child.kill('SIGKILL'), timeoutMs);
    await exited;
    clearTimeout(timer);
    this.#lines.close();
  }
}
