import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { Clock } from '../../src/clock.js';
import { ManualClock, systemClock } from '../../src/clock.js';
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

describe('MemoryNetwork.slow: a receiver slow to take requests', () => {
  /** A network on a manual clock, no latency, with one listener that records what it handled. */
  async function slowNetwork(): Promise<{
    clock: ManualClock;
    network: MemoryNetwork;
    handled: number[];
    send: (bytes: number, signal?: AbortSignal) => Promise<number>;
  }> {
    const clock = new ManualClock(0);
    const network = new MemoryNetwork({ clock, latencyMs: 0 });
    const handled: number[] = [];
    await network.transport().listen({
      host: '10.0.0.9',
      port: 7000,
      maxBodyBytes: 1 << 20,
      handler: (r) => {
        handled.push(clock.now());
        return { status: 200, body: String(r.body.byteLength) };
      },
    });
    const client = network.transport();
    const send = async (bytes: number, signal = new AbortController().signal): Promise<number> => {
      await client.request({ host: '10.0.0.9', port: 7000, body: new Uint8Array(bytes), signal });
      return clock.now();
    };
    return { clock, network, handled, send };
  }

  test('each request waits msPerKiB for each KiB of its body, on its own; 0 undoes it', async () => {
    const { clock, network, send } = await slowNetwork();
    network.slow('10.0.0.9:7000', 100);
    const big = send(10 * 1024);
    const small = send(512);
    const tiny = send(1);
    await clock.advance(2_000);
    assert.equal(await small, 50, 'half a KiB: 50 ms, not queued behind the big one');
    assert.equal(await tiny, 1, 'at least 1 ms');
    assert.equal(await big, 1_000);
    network.slow('10.0.0.9:7000', 0);
    const fast = send(10 * 1024);
    await clock.advance(0);
    assert.equal(await fast, 2_000, 'fast again');
    assert.throws(() => network.slow('10.0.0.9:7000', -1), RangeError);
  });

  test('a request given up while the receiver is busy is still handled; only its answer is lost', async () => {
    const { clock, network, handled, send } = await slowNetwork();
    network.slow('10.0.0.9:7000', 100);
    const ac = new AbortController();
    const sent = send(10 * 1024, ac.signal);
    await clock.advance(300);
    ac.abort(new Error('gave up'));
    await assert.rejects(sent, /gave up/);
    assert.deepEqual(handled, []);
    await clock.advance(1_000);
    assert.deepEqual(handled, [1_000], 'handled once its time came');
  });
});
