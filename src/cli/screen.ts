/**
 * Printing around a readline prompt. On a terminal, an event that arrives while someone is
 * typing must not break their line: the prompt and the half-typed line are cleared, the event
 * is printed, and the prompt is drawn again with the typed text and the cursor where they were.
 * Without a terminal, lines are written as they are.
 *
 * @module
 */

import { clearScreenDown, cursorTo, type Interface, moveCursor } from 'node:readline';

/** A stream the screen writes to. */
export type Output = NodeJS.WritableStream & { isTTY?: boolean };

/** Prints whole lines without breaking the line being typed. */
export class Screen {
  readonly #stdout: Output;
  readonly #stderr: Output;
  #rl: Interface | undefined;

  constructor(stdout: Output, stderr: Output) {
    this.#stdout = stdout;
    this.#stderr = stderr;
  }

  /** Draws the prompt from now on, keeping it below everything printed. */
  attach(rl: Interface): void {
    this.#rl = rl;
    rl.prompt();
  }

  /**
   * Stops drawing the prompt, before the input closes: an empty prompt is wiped, a line typed
   * but not sent stays visible, and the next output starts on a line of its own.
   */
  detach(): void {
    const rl = this.#rl;
    this.#rl = undefined;
    if (rl === undefined) return;
    if (rl.line === '') {
      cursorTo(this.#stdout, 0);
      clearScreenDown(this.#stdout);
    } else {
      this.#stdout.write('\n');
    }
  }

  /** Draws the prompt again, on a fresh line. */
  prompt(): void {
    this.#rl?.prompt();
  }

  /** Prints `text` (one or more lines) on stdout. */
  print(text: string): void {
    this.#write(this.#stdout, text);
  }

  /** Prints `text` (one or more lines) on stderr. */
  error(text: string): void {
    this.#write(this.#stderr, text);
  }

  #write(stream: Output, text: string): void {
    const rl = this.#rl;
    if (rl === undefined) {
      stream.write(`${text}\n`);
      return;
    }
    // Go to where the prompt starts and clear it and the typed text (which may wrap).
    const rows = rl.getCursorPos().rows;
    if (rows > 0) moveCursor(this.#stdout, 0, -rows);
    cursorTo(this.#stdout, 0);
    clearScreenDown(this.#stdout);
    stream.write(`${text}\n`);
    // readline redraws by moving up as many rows as the cursor stood below the prompt when it
    // last drew (its prevRows); leave that many blank rows for it to climb back over.
    const prevRows = (rl as unknown as { prevRows?: unknown }).prevRows;
    const climb = typeof prevRows === 'number' ? prevRows : rows;
    if (climb > 0) this.#stdout.write('\n'.repeat(climb));
    rl.prompt(true);
  }
}
