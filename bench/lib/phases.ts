/**
 * Wall and CPU time per phase of a benchmark that runs in this process (the simulations):
 * `done(name)` closes the phase begun at the last call (or at creation), logs it with the heap
 * in use, and records it in `phases` for the report.
 *
 * @module
 */

import { round } from './stats.js';

/** CPU seconds this process has used (user and system). */
export function cpuSeconds(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

/** What {@link phaseTimer} returns. */
export interface PhaseTimer {
  /** Each closed phase: its wall and CPU seconds. */
  readonly phases: Record<string, { wall_s: number; cpu_s: number }>;
  /** Closes the current phase as `name`, logs it, and begins the next. */
  done(name: string): void;
}

/** A timer whose first phase begins now; phases are logged through `log`. */
export function phaseTimer(log: (line: string) => void): PhaseTimer {
  const phases: Record<string, { wall_s: number; cpu_s: number }> = {};
  let mark = { wall: performance.now(), cpu: cpuSeconds() };
  return {
    phases,
    done(name) {
      const now = { wall: performance.now(), cpu: cpuSeconds() };
      const p = { wall_s: round((now.wall - mark.wall) / 1000, 1), cpu_s: round(now.cpu - mark.cpu, 1) };
      phases[name] = p;
      mark = now;
      log(
        `${name}: ${p.wall_s} s wall, ${p.cpu_s} s CPU, heap ${Math.round(process.memoryUsage().heapUsed / 2 ** 20)} MB`,
      );
    },
  };
}
