/**
 * The outbound side of a node: POSTs to peers through the transport, each request with its own
 * timeout and cancellation, and gop2p's Host header where a gop2p peer needs it.
 *
 * @module
 */

import { setMaxListeners } from 'node:events';
import type { Clock } from '../clock.js';
import { PeerRefusedError, TimeoutError } from '../errors.js';
import { formatHostPort, type Peer, type PeerKind } from '../peer.js';
import type { Sealed } from '../protocol/envelope.js';
import { reasonOfAnswer } from '../protocol/refusal.js';
import type { OutboundResponse, Transport } from './transport.js';

/** Where a request goes. */
export interface Destination {
  readonly address: string;
  readonly port: number;
  readonly kind: PeerKind;
  readonly scheme?: 'http' | 'https';
}

/** A signal and the function that releases what it holds. */
export interface Scope {
  readonly signal: AbortSignal;
  readonly done: () => void;
}

/**
 * One signal for a whole call that fans out to many peers: it aborts when `shutdown` or the
 * caller's `signal` does. Each per-peer request then listens to this one signal only.
 */
export function scope(shutdown: AbortSignal, signal: AbortSignal | undefined): Scope {
  if (signal === undefined) return { signal: shutdown, done: () => {} };
  const ac = new AbortController();
  setMaxListeners(0, ac.signal);
  const onShutdown = (): void => ac.abort(shutdown.reason);
  const onAbort = (): void => ac.abort(signal.reason);
  if (shutdown.aborted) ac.abort(shutdown.reason);
  else shutdown.addEventListener('abort', onShutdown, { once: true });
  if (signal.aborted) ac.abort(signal.reason);
  else signal.addEventListener('abort', onAbort, { once: true });
  return {
    signal: ac.signal,
    done: () => {
      shutdown.removeEventListener('abort', onShutdown);
      signal.removeEventListener('abort', onAbort);
    },
  };
}

/**
 * Sends to gop2p peers in their own terms (compat mode): the body rewritten as a plain gop2p
 * envelope from the name the peer knows this node by, sent with `send` (src/compat/).
 */
export interface Gop2pSender {
  request(
    to: { readonly address: string; readonly port: number },
    body: Uint8Array,
    send: (body: Uint8Array, host: string) => Promise<OutboundResponse>,
  ): Promise<OutboundResponse>;
}

/**
 * Sees each outbound request: its message type (`undefined` for a body sealed without one) and
 * its body's size in bytes.
 */
export type SendObserver = (type: number | undefined, bytes: number) => void;

/** Sends requests to peers on behalf of one node. */
export class PeerClient {
  readonly #transport: Transport;
  readonly #clock: Clock;
  readonly #self: () => Peer;
  readonly #gop2p: Gop2pSender | undefined;
  readonly #onSend: SendObserver | undefined;

  /**
   * @param self - this node as others reach it (for gop2p's Host header)
   * @param gop2p - compat mode: each gop2p peer is sent plain gop2p envelopes, from the name it
   *   knows this node by (src/compat/gop2p-names.ts)
   * @param onSend - sees each request as it goes out (the per-type traffic counters)
   */
  constructor(
    transport: Transport,
    clock: Clock,
    self: () => Peer,
    gop2p?: Gop2pSender,
    onSend?: SendObserver,
  ) {
    this.#transport = transport;
    this.#clock = clock;
    this.#self = self;
    this.#gop2p = gop2p;
    this.#onSend = onSend;
  }

  /**
   * A signal for one request: it aborts with `parent` or after `timeoutMs`. `done()` releases
   * the timer and the listener; a timer left behind per request would cost memory at high
   * message rates.
   */
  callSignal(parent: AbortSignal, timeoutMs: number): Scope {
    const ac = new AbortController();
    const onAbort = (): void => ac.abort(parent.reason);
    const timer = this.#clock.setTimeout(
      () => ac.abort(new TimeoutError(`no answer within ${timeoutMs} ms`)),
      timeoutMs,
    );
    if (parent.aborted) ac.abort(parent.reason);
    else parent.addEventListener('abort', onAbort, { once: true });
    return {
      signal: ac.signal,
      done: () => {
        timer.cancel();
        parent.removeEventListener('abort', onAbort);
      },
    };
  }

  /**
   * POSTs `body` and resolves with the answer, whatever its status. Rejects when the peer cannot
   * be reached, on timeout (`ERR_TIMEOUT`) or with `parent.reason`.
   *
   * @param gop2pHost - send this node's own address as Host (gop2p's quirk) even to an unknown peer
   */
  async request(
    to: Destination,
    sealed: Sealed,
    parent: AbortSignal,
    timeoutMs: number,
    gop2pHost = false,
  ): Promise<OutboundResponse> {
    this.#onSend?.(sealed.type, sealed.body.byteLength);
    const call = this.callSignal(parent, timeoutMs);
    try {
      if (to.kind === 'gop2p' && this.#gop2p !== undefined) {
        return await this.#gop2p.request(to, sealed.body, (body, host) =>
          this.#transport.request({
            host: to.address,
            port: to.port,
            body,
            ...(to.scheme !== undefined ? { scheme: to.scheme } : {}),
            hostHeader: host,
            signal: call.signal,
          }),
        );
      }
      // gop2p refuses a request whose Host is its own address; its clients send their own.
      const self = to.kind === 'gop2p' || gop2pHost ? this.#self() : undefined;
      return await this.#transport.request({
        host: to.address,
        port: to.port,
        body: sealed.body,
        ...(sealed.headers !== undefined ? { headers: sealed.headers } : {}),
        ...(to.scheme !== undefined ? { scheme: to.scheme } : {}),
        ...(self !== undefined ? { hostHeader: formatHostPort(self.address, self.port) } : {}),
        signal: call.signal,
      });
    } finally {
      call.done();
    }
  }

  /** Like {@link PeerClient.request}, but rejects with `ERR_PEER_REFUSED` unless the answer is 200. */
  async post(
    to: Destination,
    sealed: Sealed,
    parent: AbortSignal,
    timeoutMs: number,
  ): Promise<OutboundResponse> {
    const res = await this.request(to, sealed, parent, timeoutMs);
    if (res.status !== 200) throw refusedError(res);
    return res;
  }
}

/** The first line of an answer body, at most 512 bytes of it. */
export function firstLine(body: Uint8Array): string {
  const s = Buffer.from(body.buffer, body.byteOffset, Math.min(body.byteLength, 512)).toString('utf8');
  const nl = s.indexOf('\n');
  return (nl < 0 ? s : s.slice(0, nl)).trim();
}

/**
 * A peer's refusal as a typed error: its status, first line, `Retry-After` and reason (decoded
 * by the protocol, see `src/protocol/refusal.ts`).
 */
export function refusedError(res: OutboundResponse): PeerRefusedError {
  return new PeerRefusedError(
    res.status,
    firstLine(res.body),
    retryAfter(res.headers),
    reasonOfAnswer(res.status, res.body),
  );
}

/** A `Retry-After` header in seconds (the HTTP-date form is not used by tsp2p), in ms. */
function retryAfter(headers: Readonly<Record<string, string | undefined>>): number | undefined {
  const value = headers['retry-after'];
  if (value === undefined || !/^\d{1,6}$/.test(value.trim())) return undefined;
  return Number(value.trim()) * 1000;
}
