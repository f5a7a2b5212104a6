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
