/**
 * Logging. A library prints nothing by default: pass a `logger`, or set `NODE_DEBUG=tsp2p` to
 * see the default logger's output on stderr.
 *
 * @module
 */

import { debuglog } from 'node:util';

/** Fields attached to a log line. */
export type LogFields = Record<string, unknown>;

/** The logger a node writes to. Compatible with pino's and console's method names. */
export interface Logger {
  debug(message: string, fields?: LogFields): void;
  info(message: string, fields?: LogFields): void;
  warn(message: string, fields?: LogFields): void;
  error(message: string, fields?: LogFields): void;
}

/** A logger that discards everything. */
export const noopLogger: Logger = Object.freeze({
  debug() {},
  info() {},
  warn() {},
  error() {},
});

/** The default logger: `util.debuglog('tsp2p')`, enabled by `NODE_DEBUG=tsp2p`. */
export function createDebugLogger(section = 'tsp2p'): Logger {
  const log = debuglog(section);
  const line =
    (level: string) =>
    (message: string, fields?: LogFields): void => {
      if (!log.enabled) return;
      log('%s %s%s', level, message, fields ? ` ${formatFields(fields)}` : '');
    };
  return { debug: line('debug'), info: line('info'), warn: line('warn'), error: line('error') };
}

function formatFields(fields: LogFields): string {
  return Object.entries(fields)
    .map(([k, v]) => `${k}=${v instanceof Error ? v.message : typeof v === 'string' ? v : JSON.stringify(v)}`)
    .join(' ');
}
