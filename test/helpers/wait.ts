/**
 * Condition waits for integration tests: poll a predicate until it holds, or wait for an event,
 * each with a deadline. Never a fixed sleep.
 *
 * @module
 */

import type { EventEmitter } from 'node:events';

/** Options of {@link waitFor}. */
export interface WaitOptions {
  /** Give up after this many ms. @default 10000 */
  readonly timeoutMs?: number;
  /** Poll every this many ms. @default 20 */
  readonly intervalMs?: number;
  /** What was waited for, for the error message (a function is called only on failure). */
  readonly message?: string | (() => string);
}

/** Thrown by {@link waitFor} and {@link onceEvent} when the deadline passes. */
export class WaitTimeoutError extends Error {
  override readonly name = 'WaitTimeoutError';
}

function describe(message: WaitOptions['message'], fallback: string): string {
  if (message === undefined) return fallback;
  return typeof message === 'function' ? message() : message;
}

/**
 * Polls `predicate` until it returns a truthy value (or a promise of one), and resolves with it.
 * A predicate that throws is treated as "not yet"; its last error is reported on timeout.
 *
 * @throws {WaitTimeoutError} when `timeoutMs` passes first.
 */
export async function waitFor<T>(
  predicate: () => T | Promise<T>,
  options: WaitOptions = {},
): Promise<NonNullable<T>> {
  const timeoutMs = options.timeoutMs ?? 10_000;
  const intervalMs = options.intervalMs ?? 20;
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await predicate();
      if (value) return value as NonNullable<T>;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() >= deadline) {
      const why =
        lastError === undefined ? '' : ` (last error: ${(lastError as Error)?.message ?? lastError})`;
      throw new WaitTimeoutError(
        `timed out after ${timeoutMs} ms waiting for ${describe(options.message, 'a condition')}${why}`,
      );
    }
    await new Promise<void>((resolve) => setTimeout(resolve, intervalMs));
  }
}

/** Options of {@link onceEvent}. */
export interface OnceOptions<A extends unknown[]> {
  /** Give up after this many ms. @default 10000 */
  readonly timeoutMs?: number;
  /** Only an emission whose arguments pass this filter counts. */
  readonly filter?: (...args: A) => boolean;
  readonly message?: string;
}

/**
 * Resolves with the arguments of the next `event` emitted by `emitter` (that passes `filter`).
 * Attach it before triggering the action that emits.
 *
 * @throws {WaitTimeoutError} when `timeoutMs` passes first.
 */
export function onceEvent<A extends unknown[] = unknown[]>(
  emitter: EventEmitter,
  event: string,
  options: OnceOptions<A> = {},
): Promise<A> {
  const timeoutMs = options.timeoutMs ?? 10_000;
  return new Promise<A>((resolve, reject) => {
    const listener = (...args: unknown[]): void => {
      if (options.filter && !options.filter(...(args as A))) return;
      clearTimeout(timer);
      emitter.off(event, listener);
      resolve(args as A);
    };
    const timer = setTimeout(() => {
      emitter.off(event, listener);
      reject(
        new WaitTimeoutError(
          `timed out after ${timeoutMs} ms waiting for event '${event}'` +
            (options.message ? `: ${options.message}` : ''),
        ),
      );
    }, timeoutMs);
    emitter.on(event, listener);
  });
}

/**
 * Collects every emission of `event` into an array, until the returned `stop()` is called.
 * Pair with {@link waitFor} to wait for a count.
 */
export function collect<A extends unknown[] = unknown[]>(
  emitter: EventEmitter,
  event: string,
): { readonly items: A[]; stop(): void } {
  const items: A[] = [];
  const listener = (...args: unknown[]): void => {
    items.push(args as A);
  };
  emitter.on(event, listener);
  return { items, stop: () => emitter.off(event, listener) };
}

/**
 * Resolves or rejects as `promise` does, unless `timeoutMs` passes first: then rejects with a
 * {@link WaitTimeoutError} naming `message`.
 */
export async function withDeadline<T>(promise: Promise<T>, timeoutMs: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_resolve, reject) => {
        timer = setTimeout(
          () => reject(new WaitTimeoutError(`timed out after ${timeoutMs} ms waiting for ${message}`)),
          timeoutMs,
        );
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}
