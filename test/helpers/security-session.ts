/**
 * Helpers for the session MAC tests: a transport that records what a node sends (with the
 * answers it got), and can hold a request back or block requests, as an eavesdropper or a
 * network fault would; and a reader of one `/metrics` sample.
 *
 * @module
 */

import { PeerUnreachableError } from '../../src/errors.js';
import { MAC_HEADER } from '../../src/security/session-keys.js';
import { SIGNATURE_HEADER } from '../../src/security/signature.js';
import { HttpTransport } from '../../src/transport/http.js';
import type {
  ListenAddress,
  ListenOptions,
  OutboundRequest,
  OutboundResponse,
  Transport,
} from '../../src/transport/transport.js';
import { rawRequest } from './http-raw.js';

/** One request a node sent, and what came of it. */
export interface Exchange {
  readonly port: number;
  readonly type: number;
  /** The exact body, as text. */
  readonly body: string;
  /** The headers the node sent (the network secret's tag included, when one is set). */
  readonly headers: Record<string, string>;
  /** Batches (type 8): the sequence number and the message texts (data decoded). */
  readonly seq?: number;
  readonly texts?: readonly string[];
  /** The answer's status, once one came. */
  status?: number;
  /** The answer's body, once one came. */
  answer?: string;
  /** Why no answer came: unreachable, blocked, aborted. */
  error?: string;
}

/** Whether a request carries a session MAC (and no signature). */
export function isMacd(x: Pick<Exchange, 'headers'>): boolean {
  return x.headers[MAC_HEADER] !== undefined && x.headers[SIGNATURE_HEADER] === undefined;
}

/** Whether a request carries an Ed25519 signature (and no MAC). */
export function isSigned(x: Pick<Exchange, 'headers'>): boolean {
  return x.headers[SIGNATURE_HEADER] !== undefined && x.headers[MAC_HEADER] === undefined;
}

/** A request held back by {@link InterceptingTransport.holdNext}. */
export interface Held {
  readonly exchange: Exchange;
  /** Sends the request on, as it was; the node gets the answer. */
  release(): Promise<void>;
}

/**
 * The real HTTP transport, with a record of every request sent and its outcome. A request can
 * be held back (captured before anyone saw it) or refused as if the peer were unreachable.
 */
export class InterceptingTransport implements Transport {
  readonly #inner = new HttpTransport();
  readonly sent: Exchange[] = [];
  /** While set, requests it matches fail as unreachable, unsent. */
  block: ((x: Exchange) => boolean) | undefined;
  #hold: { match: (x: Exchange) => boolean; take: (h: Held) => void } | undefined;

  listen(options: ListenOptions): Promise<ListenAddress> {
    return this.#inner.listen(options);
  }

  close(options?: { graceMs?: number }): Promise<void> {
    return this.#inner.close(options);
  }

  async request(request: OutboundRequest): Promise<OutboundResponse> {
    const exchange = describeRequest(request);
    this.sent.push(exchange);
    if (this.block?.(exchange)) {
      exchange.error = 'blocked';
      throw new PeerUnreachableError(`blocked by the test: ${request.host}:${request.port}`);
    }
    const hold = this.#hold;
    if (hold?.match(exchange)) {
      this.#hold = undefined;
      let go!: () => void;
      const released = new Promise<void>((resolve) => {
        go = resolve;
      });
      hold.take({
        exchange,
        release: async () => {
          go();
          await new Promise<void>((resolve) => setImmediate(resolve));
        },
      });
      await released;
    }
    try {
      const res = await this.#inner.request(request);
      exchange.status = res.status;
      exchange.answer = Buffer.from(res.body).toString('utf8');
      return res;
    } catch (err) {
      exchange.error = (err as Error).message;
      throw err;
    }
  }

  /**
   * Holds back the next request `match` accepts: it is recorded but not sent until released.
   * Resolves once such a request was made.
   */
  holdNext(match: (x: Exchange) => boolean): Promise<Held> {
    return new Promise<Held>((resolve) => {
      this.#hold = { match, take: resolve };
    });
  }

  /** The batches (type 8) sent to `port`, from index `from` of {@link sent} on. */
  batchesTo(port: number, from = 0): Exchange[] {
    return this.sent.slice(from).filter((x) => x.port === port && x.type === 8);
  }
}

function describeRequest(request: OutboundRequest): Exchange {
  const body = Buffer.from(request.body).toString('utf8');
  const parsed = JSON.parse(body) as { type: number; seq?: number; msgs?: { data: string | null }[] };
  const texts = parsed.msgs?.map((m) => Buffer.from(m.data ?? '', 'base64').toString('utf8'));
  return {
    port: request.port,
    type: parsed.type,
    body,
    headers: { ...request.headers },
    ...(parsed.seq !== undefined ? { seq: parsed.seq } : {}),
    ...(texts !== undefined ? { texts } : {}),
  };
}

/**
 * The value of the first `/metrics` sample of the node at `port` whose line starts with
 * `sample` (name and labels, e.g. `tsp2p_signature_checks_total{result="mac"}`); 0 when absent.
 */
export async function metricValue(port: number, sample: string): Promise<number> {
  const answer = await rawRequest(port, undefined, { method: 'GET', path: '/metrics' });
  if (answer.status !== 200) throw new Error(`GET /metrics answered ${answer.status}: ${answer.body}`);
  const line = answer.body.split('\n').find((l) => l.startsWith(`${sample} `));
  return line === undefined ? 0 : Number(line.slice(line.lastIndexOf(' ') + 1));
}
