/**
 * Runs `tsp2p chat` on a pseudo-terminal, to see what a person sees. Two drivers:
 * - tmux (Debian package `tmux`): keys go in with send-keys, the screen comes out of
 *   capture-pane, so the test checks the real rendered screen and the cursor;
 * - script (Debian package `bsdutils`, util-linux): keys go in through a pipe, and the output
 *   is replayed by a tiny line emulator (carriage returns, cursor columns, erases).
 * `TSP2P_PTY=tmux` or `=script` picks one; otherwise tmux when installed, else script.
 *
 * @module
 */

import { type ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { BIN, cliEnv, ROOT, WAIT_MS } from './cli-process.js';

/** What is on the screen: its lines (trailing blanks removed) and the cursor. */
export interface ScreenState {
  readonly lines: string[];
  /** The cursor, when the driver knows it (tmux). */
  readonly cursor?: { readonly x: number; readonly y: number };
}

/** A chat on a pseudo-terminal. */
export interface PtyChat {
  readonly driver: 'tmux' | 'script';
  /** Types text literally (no Enter). */
  type(text: string): void;
  /** Presses Enter. */
  enter(): void;
  /** Presses Ctrl-C. */
  interrupt(): void;
  /** The screen now. */
  screen(): ScreenState;
  /** Waits until `check` holds for the screen; rejects after the deadline with the screen shown. */
  waitScreen(what: string, check: (s: ScreenState) => boolean): Promise<ScreenState>;
  /** Resolves with the exit status once the chat has exited. */
  waitExit(): Promise<number | null>;
}

function has(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
}

/** The driver to use, or why none can run. */
export function ptyDriver(): { driver: 'tmux' | 'script' } | { skip: string } {
  const wanted = process.env.TSP2P_PTY;
  if (wanted === 'tmux' || wanted === 'script') {
    return has(wanted) ? { driver: wanted } : { skip: `TSP2P_PTY=${wanted} but ${wanted} is not installed` };
  }
  if (has('tmux')) return { driver: 'tmux' };
  if (has('script')) return { driver: 'script' };
  return { skip: "neither tmux nor script is installed (Debian: 'apt-get install tmux' or 'bsdutils')" };
}

function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

function render(s: ScreenState): string {
  const cursor = s.cursor ? ` (cursor at column ${s.cursor.x}, row ${s.cursor.y})` : '';
  return `screen${cursor}:\n${s.lines.map((l) => `  |${l}`).join('\n')}`;
}

async function poll(
  what: string,
  read: () => ScreenState,
  check: (s: ScreenState) => boolean,
): Promise<ScreenState> {
  const deadline = Date.now() + WAIT_MS;
  for (;;) {
    const s = read();
    if (check(s)) return s;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}\n${render(s)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Starts `tsp2p chat <args>` on a pseudo-terminal; it is killed when the test ends. */
export function startPtyChat(t: TestContext, driver: 'tmux' | 'script', args: readonly string[]): PtyChat {
  const command = [process.execPath, BIN, 'chat', ...args].map(shellQuote).join(' ');
  const env = cliEnv({ TERM: 'xterm' });
  delete env.TMUX;
  return driver === 'tmux' ? startTmux(t, command, env) : startScript(t, command, env);
}

function startTmux(t: TestContext, command: string, env: NodeJS.ProcessEnv): PtyChat {
  const dir = mkdtempSync(join(tmpdir(), 'tsp2p-tmux-'));
  const socket = join(dir, 'socket');
  const tmux = (...args: string[]): string =>
    execFileSync('tmux', ['-S', socket, '-f', '/dev/null', ...args], { cwd: ROOT, env, encoding: 'utf8' });
  // The shell records the exit status: a dead pane's status is not reliable (tmux may not have
  // reaped the process yet when it marks the pane dead).
  const statusFile = join(dir, 'status');
  tmux(
    'new-session',
    '-d',
    '-s',
    'chat',
    '-x',
    '120',
    '-y',
    '30',
    `${command}; echo $? > ${shellQuote(statusFile)}`,
  );
  t.after(() => {
    spawnSync('tmux', ['-S', socket, 'kill-server'], { stdio: 'ignore' });
    rmSync(dir, { recursive: true, force: true });
  });
  const screen = (): ScreenState => {
    const lines = tmux('capture-pane', '-p', '-t', 'chat').replace(/\n+$/, '').split('\n');
    const [x, y] = tmux('display-message', '-p', '-t', 'chat', '#{cursor_x} #{cursor_y}')
      .trim()
      .split(' ')
      .map(Number);
    return { lines: lines.map((l) => l.replace(/\s+$/, '')), cursor: { x: x!, y: y! } };
  };
  return {
    driver: 'tmux',
    type: (text) => void tmux('send-keys', '-t', 'chat', '-l', text),
    enter: () => void tmux('send-keys', '-t', 'chat', 'Enter'),
    interrupt: () => void tmux('send-keys', '-t', 'chat', 'C-c'),
    screen,
    waitScreen: (what, check) => poll(what, screen, check),
    waitExit: async () => {
      const s = await poll(
        'the chat to exit',
        () => ({ lines: existsSync(statusFile) ? [readFileSync(statusFile, 'utf8').trim()] : [] }),
        (s) => /^\d+$/.test(s.lines[0] ?? ''),
      );
      return Number(s.lines[0]);
    },
  };
}

function startScript(t: TestContext, command: string, env: NodeJS.ProcessEnv): PtyChat {
  // script gives the child a terminal of its own; give it a size, as a real one has.
  const child: ChildProcess = spawn(
    'script',
    ['-q', '-e', '-c', `stty cols 120 rows 30; exec ${command}`, '/dev/null'],
    {
      cwd: ROOT,
      env,
      stdio: ['pipe', 'pipe', 'inherit'],
    },
  );
  let raw = '';
  child.stdout!.setEncoding('utf8');
  child.stdout!.on('data', (chunk: string) => {
    raw += chunk;
  });
  child.stdin!.on('error', () => undefined);
  const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  t.after(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited;
  });
  const screen = (): ScreenState => ({ lines: emulate(raw) });
  return {
    driver: 'script',
    type: (text) => void child.stdin!.write(text),
    enter: () => void child.stdin!.write('\r'),
    interrupt: () => void child.stdin!.write('\x03'),
    screen,
    waitScreen: (what, check) => poll(what, screen, check),
    waitExit: async () => {
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`the chat did not exit\n${render(screen())}`)), WAIT_MS);
      });
      try {
        return await Promise.race([exited, timeout]);
      } finally {
        clearTimeout(timer);
      }
    },
  };
}

/**
 * Replays terminal output into lines: enough of a terminal for readline's single-row edits
 * (carriage return, cursor to column, cursor right/left, erase to the end of the line or
 * screen). Cursor moves up or down are not followed: keep the typed lines short.
 */
export function emulate(output: string): string[] {
  const lines: string[][] = [[]];
  let row = 0;
  let col = 0;
  const line = (): string[] => lines[row]!;
  // biome-ignore lint/suspicious/noControlCharactersInRegex: terminal control sequences
  const token = /\x1b\[([0-9;?]*)([A-Za-z])|\x1b[()][0-9A-Za-z]|\x1b.|\r|\n|\x07|\x08|[^\x1b\r\n\x07\x08]/g;
  for (const m of output.matchAll(token)) {
    const [all, params, final] = m;
    if (final !== undefined) {
      const n = Number.parseInt(params || '1', 10) || 1;
      if (final === 'G') col = n - 1;
      else if (final === 'C') col += n;
      else if (final === 'D') col = Math.max(0, col - n);
      else if (final === 'K' || final === 'J') {
        if ((params || '0') === '0') line().length = Math.min(line().length, col);
      }
    } else if (all === '\r') {
      col = 0;
    } else if (all === '\n') {
      row += 1;
      col = 0;
      if (lines[row] === undefined) lines[row] = [];
    } else if (all === '\x08') {
      col = Math.max(0, col - 1);
    } else if (!all.startsWith('\x1b') && all !== '\x07') {
      while (line().length < col) line().push(' ');
      line()[col] = all;
      col += 1;
    }
  }
  return lines.map((l) => l.join('').replace(/\s+$/, ''));
}
