/**
 * Fakes for unit tests of {@link PeerQueue}: a client whose requests the test answers one by
 * one, messages with readable fragments, and a queue factory over a ManualClock.
 *
 * @module
 */

import { ManualClock } from '../../src/clock.js';
import type { OutboundMessage, PeerQueueDeps, PeerQueueLimits } from '../../src/delivery/outbound.js';
import { PeerQueue } from '../../src/delivery/peer-queue.js';
import { PeerUnreachableError } from '../../src/errors.js';
import type { Sealed } from '../../src/protocol/envelope.js';
import { type Random, SeededRandom } from '../../src/random.js';
import type { Destination, PeerClient } from '../../src/transport/peer-client.js';
import type { OutboundResponse } from '../../src/transport/transport.js';

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** What the fake batch sealer and `single()` put in a request body. */
export interface FakeBody {
  /** `'batch'` for a batch, `'single'` for a gop2p-style envelope. */
  readonly kind: 'batch' | 'single';
  readonly stream?: string;
  /** The sequence number of the first message of a batch. */
  readonly seq?: number;
  /** Every number below it is settled (see `SealBatch`). */
  readonly base?: number;
  /** The ids of the messages, in order. */
  readonly ids: string[];
}

/** One request the queue made; answer it with {@link FakeCall.answer} or {@link FakeCall.fail}. */
export interface FakeCall {
  readonly to: Destination;
  readonly body: FakeBody;
  readonly signal: AbortSignal;
  readonly timeoutMs: number;
  /** Whether it was answered yet. */
  settled: boolean;
  answer(status: number, body?: string, headers?: Record<string, string>): void;
  fail(error?: Error): void;
}

/** A PeerClient-like object: each request waits until the test answers it. */
export class FakeClient {
  readonly calls: FakeCall[] = [];

  request(
    to: Destination,
    sealed: Sealed,
    signal: AbortSignal,
    timeoutMs: number,
  ): Promise<OutboundResponse> {
    return new Promise<OutboundResponse>((resolve, reject) => {
      const call: FakeCall = {
        to,
        body: JSON.parse(decoder.decode(sealed.body)) as FakeBody,
        signal,
        timeoutMs,
        settled: false,
        answer: (status, body = '', headers = {}) => {
          if (call.settled) throw new Error('answered twice');
          call.settled = true;
          resolve({ status, headers, body: encoder.encode(body) });
        },
        fail: (error = new PeerUnreachableError('connection refused')) => {
          if (call.settled) throw new Error('answered twice');
          call.settled = true;
          reject(error);
        },
      };
      this.calls.push(call);
    });
  }

  /** The last request made. */
  get last(): FakeCall {
    const call = this.calls.at(-1);
    if (call === undefined) throw new Error('no request was made');
    return call;
  }

  /** The requests not answered yet. */
  get open(): FakeCall[] {
    return this.calls.filter((c) => !c.settled);
  }
}

/** The fake batch sealer: the ids of the fragments, with stream and seq. */
export function fakeSealBatch(
  stream: string,
  seq: number,
  fragments: readonly (Uint8Array | string)[],
  base: number,
): Sealed {
  const ids = fragments.map(
    (f) => (JSON.parse(typeof f === 'string' ? f : decoder.decode(f)) as { id: string }).id,
  );
  const body: FakeBody = { kind: 'batch', stream, seq, base, ids };
  return { body: encoder.encode(JSON.stringify(body)) };
}

/** A message `id` whose fragment is padded to `bytes` (at least the bare fragment's length). */
export function fakeMessage(id: string, deadline: number, bytes = 0): OutboundMessage {
  const bare = JSON.stringify({ id, pad: '' });
  const fragment = JSON.stringify({ id, pad: 'x'.repeat(Math.max(0, bytes - bare.length)) });
  return {
    id,
    fragment,
    bytes: fragment.length,
    single: () => {
      const body: FakeBody = { kind: 'single', ids: [id] };
      return { body: encoder.encode(JSON.stringify(body)) };
    },
    deadline,
  };
}

/** Limits small enough to reason about in a test. */
export const TEST_LIMITS: PeerQueueLimits = Object.freeze({
  maxBatchMessages: 512,
  maxBatchBytes: 1024 * 1024,
  maxQueueMessages: 1000,
  maxQueueBytes: 64 * 1024 * 1024,
  requestTimeoutMs: 5000,
  retryBaseMs: 50,
  retryMaxMs: 2000,
  maxInFlight: 1,
  pipelineBytes: 64 * 1024,
  // The tests below see each request leave from inside enqueue(); coalescing has its own tests.
  coalesce: false,
});

/** A queue over fakes, and the fakes. */
export interface QueueFixture {
  readonly queue: PeerQueue;
  readonly client: FakeClient;
  readonly clock: ManualClock;
  readonly shutdown: AbortController;
  /** `onBatch` calls: `[messages, ok]`. */
  readonly batches: [number, boolean][];
  readonly to: Destination;
  /** Queues message `id` (deadline `deliveryMs` from now) and records how it settled. */
  send(id: string, options?: { bytes?: number; deliveryMs?: number }): Sent;
}

/** A queued message and how it settled so far. */
export interface Sent {
  readonly id: string;
  readonly done: Promise<void>;
  readonly cancel: () => void;
  /** `'pending'`, `'ok'`, or the error's `code` once it settled. */
  state: string;
  error: unknown;
}

/** Options of {@link queueFixture}. */
export interface QueueFixtureOptions {
  readonly limits?: Partial<PeerQueueLimits>;
  readonly batching?: boolean;
  readonly random?: Random;
  readonly seed?: number;
  /** Delivery deadline of each message, from when it is queued. @default 30000 */
  readonly deliveryMs?: number;
}

/** Builds a PeerQueue over a FakeClient, a ManualClock and a SeededRandom. */
export function queueFixture(options: QueueFixtureOptions = {}): QueueFixture {
  const client = new FakeClient();
  const clock = new ManualClock(1_000);
  const shutdown = new AbortController();
  const batches: [number, boolean][] = [];
  const to: Destination = { address: '127.0.0.1', port: 4000, kind: 'tsp2p' };
  const deps: PeerQueueDeps = {
    client: client as unknown as PeerClient,
    clock,
    random: options.random ?? new SeededRandom(options.seed ?? 1),
    limits: { ...TEST_LIMITS, ...options.limits },
    signal: shutdown.signal,
    sealBatch: fakeSealBatch,
    stream: 'stream-1',
    onBatch: (n, ok) => batches.push([n, ok]),
  };
  const queue = new PeerQueue(to, options.batching ?? true, deps);
  const send = (id: string, o: { bytes?: number; deliveryMs?: number } = {}): Sent => {
    const h = queue.enqueue(
      fakeMessage(id, clock.now() + (o.deliveryMs ?? options.deliveryMs ?? 30_000), o.bytes),
    );
    const sent: Sent = { id, done: h.done, cancel: h.cancel, state: 'pending', error: undefined };
    h.done.then(
      () => {
        sent.state = 'ok';
      },
      (err: unknown) => {
        sent.state = (err as { code?: string })?.code ?? 'error';
        sent.error = err;
      },
    );
    return sent;
  };
  return { queue, client, clock, shutdown, batches, to, send };
}

/** A Random that always returns `value`: makes the backoff delays exact. */
export function fixedRandom(value: number): Random {
  return { next: () => value, bytes: (n) => new Uint8Array(n) };
}
