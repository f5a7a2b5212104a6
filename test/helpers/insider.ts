/**
 * An insider attacker built from PROTOCOL.md alone, with node:crypto and node:http: its own
 * Ed25519 key, envelopes it signs itself ("Signatures"), self-records it signs itself
 * ("Self-records"). Nothing here goes through the library's code, so a test that uses it checks
 * the wire format as written down, as an implementation in another language would.
 *
 * @module
 */

import { createHash, generateKeyPairSync, type KeyObject, randomBytes, sign } from 'node:crypto';
import { Agent, request } from 'node:http';

/** What a node answered. */
export interface InsiderAnswer {
  readonly status: number;
  readonly body: string;
}

/** A self-record as PROTOCOL.md defines it. */
export interface WireRecord {
  readonly id: string;
  readonly address: string;
  readonly port: number;
  readonly name?: string;
  readonly inc: number;
}

/** SHA-256("tsp2p-body/1\n" + bytes): what an Ed25519 signature covers (PROTOCOL.md, Signatures). */
function digest(bytes: Buffer): Buffer {
  return createHash('sha256').update('tsp2p-body/1\n').update(bytes).digest();
}

/** The canonical bytes of a self-record (PROTOCOL.md, Self-records). */
export function wireRecordBytes(r: WireRecord): Buffer {
  const parts = [`"address":${JSON.stringify(r.address)}`, `"id":${JSON.stringify(r.id)}`, `"inc":${r.inc}`];
  if (r.name !== undefined && r.name !== '') parts.push(`"name":${JSON.stringify(r.name)}`);
  parts.push(`"port":${r.port}`);
  return Buffer.from(`tsp2p-rec/1\n{${parts.join(',')}}`);
}

/** A node with its own key that sends what it likes. */
export class Insider {
  readonly id: string;
  /** Its raw Ed25519 public key, base64url: `from.key`. */
  readonly key: string;
  readonly #private: KeyObject;
  readonly #agent = new Agent({ keepAlive: true, maxSockets: 64 });
  #counter = 0;

  constructor() {
    const { privateKey, publicKey } = generateKeyPairSync('ed25519');
    this.#private = privateKey;
    // A JWK's `x` is the raw public key in base64url.
    this.key = publicKey.export({ format: 'jwk' }).x as string;
    this.id = createHash('sha256').update(Buffer.from(this.key, 'base64url')).digest('hex').slice(0, 32);
  }

  /** base64url of this key's Ed25519 signature of SHA-256("tsp2p-body/1\n" + bytes). */
  sign(bytes: Buffer): string {
    return sign(null, digest(bytes), this.#private).toString('base64url');
  }

  /** This key's signature of a self-record (its own, or one it claims for another member). */
  signRecord(r: WireRecord): string {
    return this.sign(wireRecordBytes(r));
  }

  /** The `from` of its envelopes: reached at `port` (a listener of the test's). */
  from(port: number, inc = 0): Record<string, unknown> {
    return { address: '127.0.0.1', port, id: this.id, key: this.key, inc };
  }

  /** An envelope of `type`, signed, with `fields` added; `ts` defaults to now. */
  envelope(
    type: number,
    fromPort: number,
    fields: Record<string, unknown> = {},
  ): { body: Buffer; sig: string } {
    const env = {
      type,
      data: null,
      from: this.from(fromPort),
      v: 1,
      id: `ins-${randomBytes(6).toString('base64url')}-${++this.#counter}`,
      ts: Date.now(),
      ...fields,
    };
    const body = Buffer.from(JSON.stringify(env));
    return { body, sig: this.sign(body) };
  }

  /** POSTs a signed envelope to `127.0.0.1:port`. */
  post(port: number, e: { body: Buffer; sig: string }): Promise<InsiderAnswer> {
    return new Promise((resolve, reject) => {
      const req = request(
        {
          host: '127.0.0.1',
          port,
          method: 'POST',
          path: '/',
          agent: this.#agent,
          headers: {
            'content-type': 'application/json',
            'content-length': e.body.length,
            'tsp2p-sig': e.sig,
          },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () =>
            resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }),
          );
          res.on('error', reject);
        },
      );
      req.on('error', reject);
      req.end(e.body);
    });
  }

  /** Gossips `m` (membership updates, type 7) to the node at `port`, as itself at `fromPort`. */
  gossip(port: number, fromPort: number, m: readonly Record<string, unknown>[]): Promise<InsiderAnswer> {
    return this.post(port, this.envelope(7, fromPort, { m }));
  }

  /** Closes its connections. */
  close(): void {
    this.#agent.destroy();
  }
}
