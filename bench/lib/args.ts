/**
 * Command-line helpers shared by the scenarios: integer flags with ranges, and the option
 * declarations every scenario accepts.
 *
 * @module
 */

import { UsageError } from './errors.js';

/** A `node:util` parseArgs option declaration (string flags only: values are validated here). */
export interface FlagSpec {
  readonly type: 'string' | 'boolean';
  readonly default?: string | boolean;
}

/** Flags every scenario accepts. */
export const COMMON_FLAGS = {
  deadline: { type: 'string', default: '170' },
  help: { type: 'boolean', default: false },
} as const satisfies Record<string, FlagSpec>;

/**
 * Reads an integer flag and checks its range.
 *
 * @throws {UsageError} naming the flag when the value is not an integer in `[min, max]`.
 */
export function intFlag(
  values: Record<string, string | boolean | undefined>,
  name: string,
  min: number,
  max = Number.MAX_SAFE_INTEGER,
): number {
  const raw = values[name];
  if (typeof raw !== 'string' || !/^\d+$/.test(raw)) {
    throw new UsageError(`--${name} needs a whole number, got ${JSON.stringify(raw)}`);
  }
  const n = Number(raw);
  if (n < min || n > max) {
    const range = max === Number.MAX_SAFE_INTEGER ? `at least ${min}` : `between ${min} and ${max}`;
    throw new UsageError(`--${name} must be ${range}, got ${n}`);
  }
  return n;
}

/**
 * Reads a one-way latency flag, `MIN-MAX` or `MS`, in simulated ms.
 *
 * @throws {UsageError} when it is not that, or MAX is below MIN or above 60,000.
 */
export function latencyFlag(text: string): { min: number; max: number } {
  const m = /^(\d+)(?:-(\d+))?$/.exec(text.trim());
  const min = Number(m?.[1]);
  const max = Number(m?.[2] ?? m?.[1]);
  if (m === null || !(min >= 0 && max >= min && max <= 60_000)) {
    throw new UsageError(`--latency must be MIN-MAX in ms (as 10-100), got '${text}'`);
  }
  return { min, max };
}
