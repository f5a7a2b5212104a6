/**
 * An in-process network for simulations: nodes exchange requests through a {@link MemoryNetwork}
 * that adds latency, loses requests, partitions and kills, all on an injected {@link Clock} and
 * {@link Random}, so that a thousand nodes run in one process, deterministically, from a seed.
 *
 * @module
 */

import type { Clock } from '../clock.js';
import { P2PError, PeerUnreachableError } from '../errors.js';
import { formatHostPort } from '../peer.js';
import { type Random, SeededRandom } from '../random.js';
import type {
  InboundHandler,
  InboundRequest,
  InboundResponse,
  ListenAddress,
  ListenOptions,
  OutboundRequest,
  OutboundResponse,
  Transport,
} from './transport.js';

const TYPE_PREFIX = Buffer.from('{"type":');

/** The message type an envelope starts with (tsp2p encodes `type` first), or -1. */
function leadingType(body: Uint8Array): number {
  if (body.byteLength <= TYPE_PREFIX.byteLength) return -1;
  for (let i = 0; i < TYPE_PREFIX.byteLength; i++) if (body[i] !== TYPE_PREFIX[i]) return -1;
  let n = -1;
  for (let i = TYPE_PREFIX.byteLength; i < body.byteLength && i < TYPE_PREFIX.byteLength + 3; i++) {
    const c = body[i]!;
    if (c < 0x30 || c > 0x39) break;
    n = (n < 0 ? 0 : n * 10) + (c - 0x30);
  }
  return n;
}

/** Options of a {@link MemoryNetwork}. */
export interface MemoryNetworkOptions {
  readonly clock: Clock;
  /** @default new SeededRandom(1) */
  readonly random?: Random;
  /** One-way latency in ms: a fixed number, or a uniform range. @default 1 */
  readonly latencyMs?: number | { readonly min: number; readonly max: number };
  /** Probability that a request, or its answer, is lost. @default 0 */
  readonly loss?: number;
}

/** Counters of a {@link MemoryNetwork}. */
export interface MemoryNetworkStats {
  /** Requests sent. */
  requests: number;
  /** Requests or answers lost (loss, partition, dead sender). */
  dropped: number;
  /** Requests refused because nobody listens at the address (or it was killed). */
  refused: number;
  /**
   * Requests sent, by sender (`'host:port'`) and by the envelope's message type (its leading
   * `"type"` field; `-1` for a body that has none): what each node costs the network, counted
   * rather than timed.
   */
  readonly sent: Map<string, Map<number, number>>;
}

interface Listener {
  readonly options: ListenOptions;
  readonly transport: MemoryTransport;
}

/** The simulated network that {@link MemoryTransport}s attach to. */
export class MemoryNetwork {
  readonly clock: Clock;
  readonly random: Random;
  readonly stats: MemoryNetworkStats = { requests: 0, dropped: 0, refused: 0, sent: new Map() };
  #latency: { min: number; max: number };
  #loss: number;
  readonly #listeners = new Map<string, Listener>();
  readonly #killed = new Set<string>();
  readonly #deaf = new Set<string>();
  /** Slow receivers: ms each KiB of a request body takes them, by address. */
  readonly #slow = new Map<string, number>();
  #groups: Map<string, number> | undefined;
  #nextPort = 10_000;

  constructor(options: MemoryNetworkOptions) {
    this.clock = options.clock;
    this.random = options.random ?? new SeededRandom(1);
    this.#latency = { min: 1, max: 1 };
    this.#loss = 0;
    this.setLatency(options.latencyMs ?? 1);
    this.setLoss(options.loss ?? 0);
  }

  /** A new transport attached to this network, one per node. */
  transport(): MemoryTransport {
    return new MemoryTransport(this);
  }

  /** Sets the one-way latency, fixed or a uniform range, in ms. */
  setLatency(latencyMs: number | { readonly min: number; readonly max: number }): void {
    this.#latency = typeof latencyMs === 'number' ? { min: latencyMs, max: latencyMs } : { ...latencyMs };
  }

  /** Sets the probability that each request, and each answer, is lost. */
  setLoss(loss: number): void {
    if (!(loss >= 0 && loss <= 1)) throw new RangeError('loss must be between 0 and 1');
    this.#loss = loss;
  }

  /**
   * Splits the network into groups of addresses (`'host:port'`); requests between groups are
   * lost. Addresses in no group form a group of their own.
   */
  partition(groups: readonly (readonly string[])[]): void {
    this.#groups = new Map();
    groups.forEach((g, i) => {
      for (const a of g) this.#groups!.set(a, i + 1);
    });
  }

  /** Ends every partition. */
  heal(): void {
    this.#groups = undefined;
  }

  /**
   * Kills the node at `address`, as SIGKILL would: connections to it are refused and whatever
   * it sends is lost.
   */
  kill(address: string): void {
    this.#killed.add(address);
  }

  /**
   * Makes the node at `address` semi-detached (one-way loss): what it sends is delivered, but
   * every request to it and every answer to it is lost. {@link hear} undoes it.
   */
  deafen(address: string): void {
    this.#deaf.add(address);
  }

  /** Undoes {@link deafen}. */
  hear(address: string): void {
    this.#deaf.delete(address);
  }

  /**
   * Makes the node at `address` slow to take requests, as a process starved of CPU is: each
   * request to it waits `msPerKiB` ms for every KiB of its body (at least 1 ms) before the node
   * handles it, each on its own (they do not queue behind one another). A request the sender gives
   * up on meanwhile is still handled, as a body already in a socket's buffer would be; only its
   * answer is lost. `0` makes it fast again.
   */
  slow(address: string, msPerKiB: number): void {
    if (!(msPerKiB >= 0)) throw new RangeError('msPerKiB must be 0 or more');
    if (msPerKiB === 0) this.#slow.delete(address);
    else this.#slow.set(address, msPerKiB);
  }

  /** Undoes {@link kill}. */
  revive(address: string): void {
    this.#killed.delete(address);
  }

  /** Whether the node at `address` was killed. */
  isKilled(address: string): boolean {
    return this.#killed.has(address);
  }

  /** @internal */
  bind(options: ListenOptions, transport: MemoryTransport): ListenAddress {
    let port = options.port;
    if (port === 0) {
      do port = this.#nextPort++;
      while (this.#listeners.has(formatHostPort(options.host, port)));
    }
    const key = formatHostPort(options.host, port);
    if (this.#listeners.has(key)) throw new P2PError('ERR_ADDRESS_IN_USE', `${key} is already in use`);
    this.#listeners.set(key, { options, transport });
    return { host: options.host, port };
  }

  /** @internal */
  unbind(key: string): void {
    this.#listeners.delete(key);
  }

  #sameSide(a: string, b: string): boolean {
    if (this.#groups === undefined) return true;
    return (this.#groups.get(a) ?? 0) === (this.#groups.get(b) ?? 0);
  }

  #count(from: string, body: Uint8Array): void {
    let bySender = this.stats.sent.get(from);
    if (bySender === undefined) {
      bySender = new Map();
      this.stats.sent.set(from, bySender);
    }
    const type = leadingType(body);
    bySender.set(type, (bySender.get(type) ?? 0) + 1);
  }

  #delay(): number {
    const { min, max } = this.#latency;
    return min + (max - min) * this.random.next();
  }

  #lost(from: string, to: string): boolean {
    if (this.#killed.has(from) || this.#deaf.has(to) || !this.#sameSide(from, to)) return true;
    return this.#loss > 0 && this.random.next() < this.#loss;
  }

  /** @internal */
  async deliver(from: string, request: OutboundRequest): Promise<OutboundResponse> {
    this.stats.requests++;
    this.#count(from, request.body);
    const to = formatHostPort(request.host, request.port);
    const signal = request.signal;
    if (this.#lost(from, to)) {
      this.stats.dropped++;
      return hang(signal);
    }
    await this.#sleep(this.#delay(), signal);
    const listener = this.#listeners.get(to);
    if (listener === undefined || this.#killed.has(to) || listener.transport.closed) {
      this.stats.refused++;
      throw new PeerUnreachableError(`cannot reach ${to}: connection refused`, {
        cause: Object.assign(new Error(`connect ECONNREFUSED ${to}`), { code: 'ECONNREFUSED' }),
      });
    }
    let response: InboundResponse;
    if (request.body.byteLength > listener.options.maxBodyBytes) {
      listener.options.onRefused?.(413, 'too_large');
      response = { status: 413, body: `body too large: limit is ${listener.options.maxBodyBytes} bytes\n` };
    } else {
      const colon = from.lastIndexOf(':');
      const msPerKiB = this.#slow.get(to);
      const busyMs =
        msPerKiB === undefined ? 0 : Math.max(1, Math.round((request.body.byteLength / 1024) * msPerKiB));
      response = await answerOf(listener.options.handler, signal, this.clock, busyMs, {
        method: 'POST',
        path: '/',
        headers: {
          ...request.headers,
          host: request.hostHeader ?? to,
          'content-type': 'application/json',
          'content-length': String(request.body.byteLength),
        },
        body: request.body,
        remoteAddress: from.slice(0, colon).replace(/^\[|\]$/g, ''),
      });
      if (response.stream !== undefined) {
        response = { status: 501, body: 'streamed answers are not supported by the memory transport\n' };
      }
    }
    if (this.#lost(to, from)) {
      this.stats.dropped++;
      return hang(signal);
    }
    await this.#sleep(this.#delay(), signal);
    const body = response.body ?? '';
    const headers: Record<string, string> = {
      'content-type': response.contentType ?? 'text/plain; charset=utf-8',
      ...response.headers,
    };
    return { status: response.status, headers, body: typeof body === 'string' ? Buffer.from(body) : body };
  }

  #sleep(ms: number, signal: AbortSignal): Promise<void> {
    return new Promise((resolve, reject) => {
      signal.throwIfAborted();
      const onAbort = (): void => {
        handle.cancel();
        reject(signal.reason);
      };
      const handle = this.clock.setTimeout(() => {
        signal.removeEventListener('abort', onAbort);
        resolve();
      }, ms);
      signal.addEventListener('abort', onAbort, { once: true });
    });
  }
}

/**
 * The handler's answer, as the HTTP transport gives it: a throw is answered 500, and an abort
 * rejects with the signal's reason even while the handler is still busy. The handler runs after
 * `busyMs` on `clock` (a slow receiver), whether or not the request is aborted meanwhile.
 */
async function answerOf(
  handler: InboundHandler,
  signal: AbortSignal,
  clock: Clock,
  busyMs: number,
  request: InboundRequest,
): Promise<InboundResponse> {
  signal.throwIfAborted();
  let onAbort: () => void = () => {};
  const aborted = new Promise<never>((_, reject) => {
    onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
  });
  const answer = (async (): Promise<InboundResponse> => {
    if (busyMs > 0) await new Promise<void>((resolve) => clock.setTimeout(resolve, busyMs));
    try {
      return await handler(request);
    } catch {
      return { status: 500, body: 'internal error\n' };
    }
  })();
  try {
    return await Promise.race([answer, aborted]);
  } finally {
    signal.removeEventListener('abort', onAbort);
  }
}

function hang(signal: AbortSignal): Promise<never> {
  return new Promise((_, reject) => {
    if (signal.aborted) reject(signal.reason);
    else signal.addEventListener('abort', () => reject(signal.reason), { once: true });
  });
}

/** One node's attachment to a {@link MemoryNetwork}. */
export class MemoryTransport implements Transport {
  readonly #network: MemoryNetwork;
  #key: string | undefined;
  #closed = false;

  constructor(network: MemoryNetwork) {
    this.#network = network;
  }

  /** @internal */
  get closed(): boolean {
    return this.#closed;
  }

  async listen(options: ListenOptions): Promise<ListenAddress> {
    if (this.#key !== undefined)
      throw new P2PError('ERR_ALREADY_STARTED', 'the transport is already listening');
    const address = this.#network.bind(options, this);
    this.#key = formatHostPort(address.host, address.port);
    this.#closed = false;
    return address;
  }

  request(request: OutboundRequest): Promise<OutboundResponse> {
    if (request.signal.aborted) return Promise.reject(request.signal.reason);
    if (this.#closed) return Promise.reject(new PeerUnreachableError('the transport is closed'));
    return this.#network.deliver(this.#key ?? 'client:0', request);
  }

  async close(): Promise<void> {
    if (this.#key !== undefined) this.#network.unbind(this.#key);
    this.#key = undefined;
    this.#closed = true;
  }
}
