/**
 * The part of a worker that does not depend on the system measured: the IPC loop, the
 * receiving bookkeeping (dedup, latencies, completion) and the windowed sender. A worker script
 * supplies a {@link Driver} and calls {@link runWorker}.
 *
 * @module
 */

import { writeFile } from 'node:fs/promises';
import { Session } from 'node:inspector/promises';
import { makePayload, readStamp, wallNow } from './payload.js';
import type { CommandName, Commands, Received, Reply, Request, Sent } from './protocol.js';

/** One system under test, as seen from one node. */
export interface Driver {
  /** Starts listening; resolves with `'host:port'`. */
  start(): Promise<string>;
  /** Joins the network (see the `join` command); resolves with the member count. */
  join(entry: string | undefined, peers: readonly string[]): Promise<number>;
  members(): number;
  /** Sends one payload to every member; resolves with the failures. */
  broadcast(payload: Uint8Array): Promise<{ failed: number; error?: string }>;
  /** Registers the callback for every delivered payload. */
  onDeliver(cb: (payload: Uint8Array) => void): void;
  stop(): Promise<void>;
}

interface Armed {
  readonly round: number;
  readonly expected: number;
  readonly seen: Map<number, Uint8Array>;
  readonly latencies: Float64Array;
  received: number;
  duplicates: number;
  stale: number;
  doneAt: number;
  /** `process.cpuUsage()` when armed, and the CPU ms used by the time the round completed. */
  readonly cpuAtArm: NodeJS.CpuUsage;
  cpuMs: number;
  done: Promise<void>;
  resolve: () => void;
}

/** Serves the parent's commands until `stop` or until the parent goes away. */
export function runWorker(driver: Driver): void {
  const send = process.send?.bind(process);
  if (send === undefined) {
    process.stderr.write('bench worker: start me with child_process.fork (no IPC channel)\n');
    process.exit(2);
  }
  // The parent died or closed the channel: never linger as an orphan.
  process.on('disconnect', () => process.exit(1));

  let armed: Armed | undefined;
  let profiler: Session | undefined;

  driver.onDeliver((payload) => {
    const stamp = readStamp(payload);
    const a = armed;
    if (stamp === undefined || a === undefined) return;
    const now = wallNow();
    if (stamp.round !== a.round) {
      a.stale++;
      return;
    }
    const bitmap = a.seen.get(stamp.sender);
    if (bitmap === undefined || stamp.seq >= bitmap.length) {
      a.stale++;
      return;
    }
    if (bitmap[stamp.seq] === 1) {
      a.duplicates++;
      return;
    }
    bitmap[stamp.seq] = 1;
    a.latencies[a.received++] = now - stamp.sentAt;
    if (a.received === a.expected) {
      a.doneAt = now;
      a.cpuMs = cpuMsSince(a.cpuAtArm);
      a.resolve();
    }
  });

  const handlers: { [K in CommandName]: (args: Commands[K]['args']) => Promise<Commands[K]['result']> } = {
    start: async () => ({ address: await driver.start() }),
    join: async ({ entry, peers }) => ({ members: await driver.join(entry, peers) }),
    members: async () => ({ members: driver.members() }),
    arm: async ({ round, senders, count }) => {
      let resolve!: () => void;
      const done = new Promise<void>((r) => {
        resolve = r;
      });
      const expected = count * senders.length;
      armed = {
        round,
        expected,
        seen: new Map(senders.map((s) => [s, new Uint8Array(count)])),
        latencies: new Float64Array(expected),
        received: 0,
        duplicates: 0,
        stale: 0,
        doneAt: 0,
        cpuAtArm: process.cpuUsage(),
        cpuMs: 0,
        done,
        resolve,
      };
      if (expected === 0) resolve();
      return {};
    },
    wait: async ({ round }): Promise<Received> => {
      const a = armed;
      if (a === undefined || a.round !== round) throw new Error(`round ${round} was not armed`);
      await a.done;
      return {
        doneAt: a.doneAt,
        latencies: a.latencies,
        duplicates: a.duplicates,
        stale: a.stale,
        cpuMs: a.cpuMs,
      };
    },
    status: async () => ({
      round: armed?.round ?? -1,
      received: armed?.received ?? 0,
      expected: armed?.expected ?? 0,
      members: driver.members(),
      ...(sending !== undefined ? { sending: { ...sending } } : {}),
    }),
    send: (args) => sendRound(driver, args),
    profile: async ({ file }) => {
      if (file === undefined) {
        profiler ??= new Session();
        profiler.connect();
        await profiler.post('Profiler.enable');
        await profiler.post('Profiler.start');
        return {};
      }
      if (profiler === undefined) throw new Error('the profiler was not started');
      const { profile } = await profiler.post('Profiler.stop');
      profiler.disconnect();
      profiler = undefined;
      await writeFile(file, JSON.stringify(profile));
      return {};
    },
    stop: async () => {
      await driver.stop();
      // Exit once the reply is on its way.
      setImmediate(() => process.exit(0));
      return {};
    },
  };

  process.on('message', (raw: unknown) => {
    const req = raw as Request;
    const handler = handlers[req.cmd] as ((args: unknown) => Promise<unknown>) | undefined;
    const reply = (r: Reply): void => {
      send(r);
    };
    if (handler === undefined) {
      reply({ id: req.id, ok: false, error: `unknown command ${String(req.cmd)}` });
      return;
    }
    handler(req.args).then(
      (result) => reply({ id: req.id, ok: true, result }),
      (err: unknown) =>
        reply({ id: req.id, ok: false, error: err instanceof Error ? err.message : String(err) }),
    );
  });
  send({ ev: 'ready' } satisfies Reply);
}

/** Progress of the last closed-loop `send` (reported by `status` when a round stalls). */
let sending: { settled: number; count: number; failed: number; firstError?: string } | undefined;

/** Broadcasts `count` payloads with at most `window` broadcasts in flight, or at `rate`. */
async function sendRound(driver: Driver, args: Commands['send']['args']): Promise<Sent> {
  if (args.rate !== undefined) return sendPaced(driver, args, args.rate);
  const { round, sender, count, size, window } = args;
  let next = 0;
  let failed = 0;
  let firstError: string | undefined;
  const progress: NonNullable<typeof sending> = { settled: 0, count, failed: 0 };
  sending = progress;
  const lane = async (): Promise<void> => {
    while (next < count) {
      const seq = next++;
      const r = await driver.broadcast(makePayload(size, round, sender, seq));
      progress.settled++;
      if (r.failed > 0) {
        failed += r.failed;
        firstError ??= r.error;
        progress.failed = failed;
        progress.firstError ??= r.error;
      }
    }
  };
  const cpu = process.cpuUsage();
  const firstAt = wallNow();
  await Promise.all(Array.from({ length: Math.min(window, count) }, lane));
  return { firstAt, lastAt: wallNow(), failed, firstError, cpuMs: cpuMsSince(cpu) };
}

/**
 * Open loop: payload `i` is due at `start + i / rate` s. A timer wakes up for the next due time
 * and sends every payload due by then, never waiting for earlier broadcasts to finish; each
 * payload is stamped with its due time, so any delay of the sender counts in the latency.
 */
async function sendPaced(driver: Driver, args: Commands['send']['args'], rate: number): Promise<Sent> {
  const { round, sender, count, size } = args;
  const intervalMs = 1000 / rate;
  const late = new Float64Array(count);
  const inFlight: Promise<void>[] = [];
  let failed = 0;
  let firstError: string | undefined;
  const cpu = process.cpuUsage();
  const firstAt = wallNow();
  await new Promise<void>((resolve) => {
    let seq = 0;
    const tick = (): void => {
      const now = wallNow();
      while (seq < count && firstAt + seq * intervalMs <= now) {
        const due = firstAt + seq * intervalMs;
        late[seq] = now - due;
        const sending = driver.broadcast(makePayload(size, round, sender, seq, due)).then((r) => {
          if (r.failed > 0) {
            failed += r.failed;
            firstError ??= r.error;
          }
        });
        inFlight.push(sending);
        seq++;
      }
      if (seq < count) setTimeout(tick, Math.max(0, firstAt + seq * intervalMs - wallNow()));
      else resolve();
    };
    tick();
  });
  await Promise.all(inFlight);
  late.sort();
  const at = (p: number): number => late[Math.min(count - 1, Math.ceil((p / 100) * count) - 1)]!;
  return {
    firstAt,
    lastAt: wallNow(),
    failed,
    firstError,
    cpuMs: cpuMsSince(cpu),
    late: { p50: at(50), p99: at(99), max: late[count - 1]! },
  };
}

function cpuMsSince(start: NodeJS.CpuUsage): number {
  const d = process.cpuUsage(start);
  return (d.user + d.system) / 1000;
}
