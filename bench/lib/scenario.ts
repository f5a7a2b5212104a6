/**
 * What a scenario module exports, so that `run.ts` can dispatch to it.
 *
 * @module
 */

import type { FlagSpec } from './args.js';

/** Parsed flag values, as `node:util` parseArgs returns them. */
export type FlagValues = Record<string, string | boolean | undefined>;

/** One benchmark scenario (broadcast, latency, all-to-all, ...). */
export interface Scenario {
  readonly name: string;
  /** One line for the scenario list. */
  readonly summary: string;
  /** The flag lines of `--help`. */
  readonly usage: string;
  /** Its flags, besides the common ones (`--deadline`, `--help`). */
  readonly flags: Record<string, FlagSpec>;
  /**
   * Runs the scenario and resolves with the report, printed as the JSON last line of stdout.
   * Progress goes through `log` (stderr).
   *
   * @throws {UsageError} for a bad flag value (exit 2)
   * @throws {BenchError} when the run fails (exit 1)
   */
  run(values: FlagValues, log: (line: string) => void): Promise<object>;
}
