/**
 * A {@link Transport} that adds the network secret's tags (see `keyring.ts`) to another one:
 * outbound requests are tagged and their answers checked; inbound protocol requests are checked
 * before their body is parsed, and their answers tagged. With no secret set it adds nothing.
 *
 * Inbound requests the `exempt` predicate names pass untouched: the node names its web and
 * operations endpoints (`GET /` from a browser, `/members`, `/events`, `/api/...`), which are not
 * protocol requests and have their own access rules.
 *
 * @module
 */

import { UnauthorizedError } from '../errors.js';
import { formatHostPort } from '../peer.js';
import type {
  InboundRequest,
  InboundResponse,
  ListenAddress,
  ListenOptions,
  OutboundRequest,
  OutboundResponse,
  Transport,
} from '../transport/transport.js';
import { AUTH_HEADER, type NetworkKeyring } from './keyring.js';

const NO_TAG = 'network secret required: this request carries no valid tsp2p-auth tag';

/** Wraps `inner` so that every protocol exchange is authenticated by `keyring`'s secrets. */
export class AuthenticatedTransport implements Transport {
  readonly #inner: Transport;
  readonly #keyring: NetworkKeyring;
  readonly #exempt: (req: InboundRequest) => boolean;

  /**
   * @param exempt - inbound requests that pass without a tag (the web endpoints, which have
   *   their own access rules)
   */
  constructor(
    inner: Transport,
    keyring: NetworkKeyring,
    exempt: (req: InboundRequest) => boolean = () => false,
  ) {
    this.#inner = inner;
    this.#keyring = keyring;
    this.#exempt = exempt;
  }

  /** The transport underneath. */
  get inner(): Transport {
    return this.#inner;
  }

  listen(options: ListenOptions): Promise<ListenAddress> {
    const handler = options.handler;
    return this.#inner.listen({
      ...options,
      handler: (req) =>
        this.#keyring.enabled && !this.#exempt(req) ? this.#serve(req, options) : handler(req),
    });
  }

  async #serve(req: InboundRequest, options: ListenOptions): Promise<InboundResponse> {
    const header = req.headers[AUTH_HEADER];
    const verified = this.#keyring.verifyRequest(header, req.body);
    if (verified === undefined) {
      options.onRefused?.(401, header === undefined ? 'no_network_tag' : 'bad_network_tag');
      return { status: 401, body: `${NO_TAG}\n` };
    }
    const res = await options.handler(req);
    if (res.stream !== undefined) return res;
    const body = typeof res.body === 'string' ? Buffer.from(res.body) : (res.body ?? new Uint8Array(0));
    return {
      ...res,
      body,
      headers: { ...res.headers, [AUTH_HEADER]: this.#keyring.tagAnswer(verified, res.status, body) },
    };
  }

  async request(request: OutboundRequest): Promise<OutboundResponse> {
    if (!this.#keyring.enabled) return this.#inner.request(request);
    const tagged = this.#keyring.tagRequest(request.body);
    const res = await this.#inner.request({
      ...request,
      headers: { ...request.headers, [AUTH_HEADER]: tagged.header },
    });
    if (!this.#keyring.verifyAnswer(tagged, res.headers[AUTH_HEADER], res.status, res.body)) {
      const where = formatHostPort(request.host, request.port);
      const line = firstLine(res.body);
      if (res.status === 401 && res.headers[AUTH_HEADER] === undefined) {
        throw new UnauthorizedError(`${where} refused the request: 401 ${line} (it holds another secret)`);
      }
      throw new UnauthorizedError(
        `the answer of ${where} is not authenticated by the network secret ` +
          `(status ${res.status}${line === '' ? '' : `: ${line}`})`,
      );
    }
    return res;
  }

  close(options?: { graceMs?: number }): Promise<void> {
    return this.#inner.close(options);
  }
}

function firstLine(body: Uint8Array): string {
  const s = Buffer.from(body.buffer, body.byteOffset, Math.min(body.byteLength, 200)).toString('utf8');
  const nl = s.indexOf('\n');
  return (nl < 0 ? s : s.slice(0, nl)).trim();
}
