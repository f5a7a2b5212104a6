/**
 * What a benchmark worker reports about its own process: memory, CPU time and wake-ups (the
 * `memory` command of the membership and floor workers).
 *
 * @module
 */

import { readFileSync } from 'node:fs';
import type { MemoryRecord } from './protocol.js';

/**
 * How many times the main thread went to sleep and was woken (its voluntary context switches,
 * from `/proc`): the event loop's wake-ups. 0 where `/proc` is not there.
 */
export function mainThreadWakeups(): number {
  try {
    const status = readFileSync(`/proc/self/task/${process.pid}/status`, 'utf8');
    return Number(/^voluntary_ctxt_switches:\s*(\d+)/m.exec(status)?.[1] ?? 0);
  } catch {
    return 0;
  }
}

/** This process's record, after a full collection when `gc` (and `--expose-gc`) allow it. */
export function processRecord(gc: boolean): MemoryRecord {
  const collect = (globalThis as { gc?: () => void }).gc;
  if (gc && collect !== undefined) collect();
  const m = process.memoryUsage();
  const cpu = process.cpuUsage();
  return {
    rss: m.rss,
    heapTotal: m.heapTotal,
    heapUsed: m.heapUsed,
    external: m.external,
    arrayBuffers: m.arrayBuffers,
    cpuMs: (cpu.user + cpu.system) / 1000,
    wakeups: mainThreadWakeups(),
    allWakeups: process.resourceUsage().voluntaryContextSwitches,
    collected: gc && collect !== undefined,
  };
}
