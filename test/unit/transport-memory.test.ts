import type { Clock } from '../../src/clock.js';
import { systemClock } from '../../src/clock.js';
import { MemoryNetwork } from '../../src/transport/memory.js';
import { transportCompliance } from '../helpers/transport-compliance.js';

// The memory transport on real time, so that the same suite runs unchanged against the HTTP
// transport (test/integration/transport-http.test.ts). Its timers are ref'd, as sockets would
// be: a request in flight keeps the test process alive.
const clock: Clock = {
  now: () => systemClock.now(),
  setTimeout: (fn, ms) => {
    const t = setTimeout(fn, ms);
    return { cancel: () => clearTimeout(t) };
  },
  timeoutSignal: (ms, message) => systemClock.timeoutSignal(ms, message),
};
const network = new MemoryNetwork({ clock, latencyMs: 0 });
transportCompliance('memory', { transport: () => network.transport(), host: '127.0.0.1' });
