/**
 * Helpers for the delivery integration tests: numbered message texts and a readable check of a
 * received sequence, a wait until a process is really stopped, and a transport that records
 * what a node sends.
 *
 * @module
 */

import { readFile } from 'node:fs/promises';
import { HttpTransport } from '../../src/transport/http.js';
import type {
  ListenAddress,
  ListenOptions,
  OutboundRequest,
  OutboundResponse,
  Transport,
} from '../../src/transport/transport.js';
import { waitFor } from './wait.js';

/** `prefix:0` ... `prefix:${count - 1}`, as the peer process's `stream` command sends them. */
export function numberedTexts(prefix: string, count: number): string[] {
  return Array.from({ length: count }, (_, i) => `${prefix}:${i}`);
}

/**
 * What is wrong with `got` compared with `expected` (each text once, in order), or `undefined`
 * when they are equal. Names duplicates, missing texts, extras and the first place they differ.
 */
export function sequenceProblem(got: readonly string[], expected: readonly string[]): string | undefined {
  let first = -1;
  const n = Math.max(got.length, expected.length);
  for (let i = 0; i < n; i++) {
    if (got[i] !== expected[i]) {
      first = i;
      break;
    }
  }
  if (first < 0) return undefined;
  const counts = new Map<string, number>();
  for (const text of got) counts.set(text, (counts.get(text) ?? 0) + 1);
  const duplicates = [...counts].filter(([, c]) => c > 1).map(([text, c]) => `${text} x${c}`);
  const wanted = new Set(expected);
  const missing = expected.filter((text) => !counts.has(text));
  const extra = [...counts.keys()].filter((text) => !wanted.has(text));
  const around = (list: readonly string[]): string =>
    JSON.stringify(list.slice(Math.max(0, first - 3), first + 4));
  const head = (list: readonly string[]): string =>
    `${list.slice(0, 10).join(', ')}${list.length > 10 ? ', ...' : ''}`;
  return [
    `got ${got.length} messages, expected ${expected.length}`,
    `first difference at index ${first}: got ${around(got)}, expected ${around(expected)}`,
    `${duplicates.length} duplicated: ${head(duplicates)}`,
    `${missing.length} missing: ${head(missing)}`,
    `${extra.length} unexpected: ${head(extra)}`,
  ].join('\n  ');
}

/** The state letter of process `pid` in /proc (`R`, `S`, `T` for stopped...). */
export async function processState(pid: number): Promise<string> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  // The command name may hold spaces and parentheses: the state follows the last ')'.
  return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
}

/** Resolves once process `pid` is stopped (after SIGSTOP), so that it answers nothing more. */
export async function waitStopped(pid: number, timeoutMs = 10_000): Promise<void> {
  await waitFor(async () => (await processState(pid)) === 'T', {
    timeoutMs,
    intervalMs: 5,
    message: `process ${pid} to be stopped`,
  });
}

/** A request a node sent, as {@link RecordingTransport} saw it. */
export interface SentRequest {
  readonly port: number;
  readonly type: number;
  /** Batches (type 8): the first sequence number and the message texts (data decoded). */
  readonly seq?: number;
  readonly texts?: string[];
}

/** The real HTTP transport, recording every request it sends. */
export class RecordingTransport implements Transport {
  readonly inner = new HttpTransport();
  readonly sent: SentRequest[] = [];

  listen(options: ListenOptions): Promise<ListenAddress> {
    return this.inner.listen(options);
  }

  request(request: OutboundRequest): Promise<OutboundResponse> {
    const body = JSON.parse(Buffer.from(request.body).toString('utf8')) as {
      type: number;
      seq?: number;
      msgs?: { data: string | null }[];
    };
    const texts = body.msgs?.map((m) => Buffer.from(m.data ?? '', 'base64').toString('utf8'));
    this.sent.push({
      port: request.port,
      type: body.type,
      ...(body.seq !== undefined ? { seq: body.seq } : {}),
      ...(texts !== undefined ? { texts } : {}),
    });
    return this.inner.request(request);
  }

  close(options?: { graceMs?: number }): Promise<void> {
    return this.inner.close(options);
  }

  /** The batches (type 8) sent to `port`, in the order sent. */
  batchesTo(port: number): SentRequest[] {
    return this.sent.filter((r) => r.port === port && r.type === 8);
  }
}
