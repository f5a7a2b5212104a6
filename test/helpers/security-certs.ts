/**
 * Certificates made at test time with the machine's `openssl`: a CA, and certificates it signs
 * for given IP addresses (usable both as server and client certificates). Nothing is stored
 * outside a temporary directory, removed by `cleanup()`.
 *
 * @module
 */

import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A key and certificate, PEM. */
export interface KeyPair {
  readonly key: string;
  readonly cert: string;
}

/** A CA that signs certificates, and its temporary directory. */
export class TestCa {
  readonly dir: string;
  readonly cert: string;
  readonly #name: string;
  #serial = 1;

  private constructor(dir: string, name: string) {
    this.dir = dir;
    this.#name = name;
    this.cert = readFileSync(join(dir, `${name}.crt`), 'utf8');
  }

  /** Whether `openssl` can be run here. */
  static available(): boolean {
    try {
      execFileSync('openssl', ['version'], { stdio: 'ignore' });
      return true;
    } catch {
      return false;
    }
  }

  /** Creates a CA (P-256, valid one day) in a fresh temporary directory. */
  static create(name = 'ca'): TestCa {
    const dir = mkdtempSync(join(tmpdir(), 'tsp2p-certs-'));
    openssl(dir, [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-keyout',
      `${name}.key`,
      '-out',
      `${name}.crt`,
      '-days',
      '1',
      '-subj',
      `/CN=tsp2p test ${name}`,
    ]);
    return new TestCa(dir, name);
  }

  /** A certificate for `ips` (subjectAltName IP entries), signed by this CA. */
  issue(ips: readonly string[] = ['127.0.0.1']): KeyPair {
    const base = `leaf-${this.#serial++}`;
    openssl(this.dir, [
      'req',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-keyout',
      `${base}.key`,
      '-out',
      `${base}.csr`,
      '-subj',
      `/CN=${base}`,
    ]);
    writeFileSync(
      join(this.dir, `${base}.ext`),
      `subjectAltName=${ips.map((ip) => `IP:${ip}`).join(',')}\nbasicConstraints=CA:FALSE\n`,
    );
    openssl(this.dir, [
      'x509',
      '-req',
      '-in',
      `${base}.csr`,
      '-CA',
      `${this.#name}.crt`,
      '-CAkey',
      `${this.#name}.key`,
      '-set_serial',
      String(this.#serial + 1000),
      '-out',
      `${base}.crt`,
      '-days',
      '1',
      '-extfile',
      `${base}.ext`,
    ]);
    return {
      key: readFileSync(join(this.dir, `${base}.key`), 'utf8'),
      cert: readFileSync(join(this.dir, `${base}.crt`), 'utf8'),
    };
  }

  /** Removes the temporary directory. */
  cleanup(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}

function openssl(cwd: string, args: readonly string[]): void {
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
}

/** GET /health over TLS at 127.0.0.1:port; resolves with the status, or rejects with the TLS error. */
export function tlsHealth(
  port: number,
  options: { ca: string; key?: string; cert?: string },
): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(
      { host: '127.0.0.1', port, path: '/health', method: 'GET', agent: false, ...options },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      },
    );
    req.setTimeout(10_000, () => req.destroy(new Error('no answer within 10 s')));
    req.on('error', reject);
    req.end();
  });
}
