/**
 * The two ways a benchmark ends badly: bad usage (exit 2) or a failed run (exit 1).
 *
 * @module
 */

/** A bad command line: one line on stderr, exit code 2. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

/** A run that could not produce figures (a lost message, a dead worker, a deadline): exit code 1. */
export class BenchError extends Error {
  override readonly name = 'BenchError';
}
