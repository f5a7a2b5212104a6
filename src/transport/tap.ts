/**
 * A transport that shows every outbound request body to a tap before sending it: for
 * simulations and benchmarks that count what goes on the wire.
 *
 * @module
 */

import type {
  ListenAddress,
  ListenOptions,
  OutboundRequest,
  OutboundResponse,
  Transport,
} from './transport.js';

/** Wraps `inner`; `tap` sees each request body, then the request goes on unchanged. */
export class TappedTransport implements Transport {
  readonly #inner: Transport;
  readonly #tap: (body: Uint8Array) => void;

  constructor(inner: Transport, tap: (body: Uint8Array) => void) {
    this.#inner = inner;
    this.#tap = tap;
  }

  listen(options: ListenOptions): Promise<ListenAddress> {
    return this.#inner.listen(options);
  }

  request(request: OutboundRequest): Promise<OutboundResponse> {
    this.#tap(request.body);
    return this.#inner.request(request);
  }

  close(options?: { graceMs?: number }): Promise<void> {
    return this.#inner.close(options);
  }
}
