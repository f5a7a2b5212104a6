/**
 * Clients of a node's web endpoints for integration tests: `curl` run as a child process (the
 * README's examples), a Server-Sent Events reader, and JSON writes to the local API.
 *
 * @module
 */

import { execFile } from 'node:child_process';
import { request } from 'node:http';

/** What `curl` printed, and how it ended. */
export interface CurlResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * Runs `curl` with `args` (never through a shell) and resolves when it exits. Asynchronous on
 * purpose: the node under test runs in this same process and must keep answering.
 */
export function curl(args: readonly string[], timeoutMs = 15_000): Promise<CurlResult> {
  return new Promise((resolve, reject) => {
    execFile('curl', [...args], { encoding: 'utf8', timeout: timeoutMs }, (err, stdout, stderr) => {
      if (err && typeof (err as { code?: unknown }).code !== 'number') {
        reject(new Error(`curl ${args.join(' ')} failed: ${err.message}\n${stderr}`));
        return;
      }
      resolve({ code: err ? Number((err as { code?: unknown }).code) : 0, stdout, stderr });
    });
  });
}

/** One Server-Sent Event. */
export interface SseEvent {
  readonly event: string;
  readonly data: string;
}

/** An open `GET /events` feed. */
export interface Feed {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  /** The events received so far. */
  readonly events: SseEvent[];
  /** Resolves when the answer ends: `complete` when the server ended it, not when it was cut. */
  readonly ended: Promise<{ complete: boolean }>;
  /** Closes the connection from this side. */
  close(): void;
}

/** Parses complete SSE frames out of `buffer`; returns the events and the unparsed rest. */
export function parseSse(buffer: string): { events: SseEvent[]; rest: string } {
  const events: SseEvent[] = [];
  let rest = buffer;
  for (let end = rest.indexOf('\n\n'); end >= 0; end = rest.indexOf('\n\n')) {
    const frame = rest.slice(0, end);
    rest = rest.slice(end + 2);
    let event = 'message';
    const data: string[] = [];
    for (const line of frame.split('\n')) {
      if (line.startsWith(':')) continue;
      const colon = line.indexOf(':');
      const field = colon < 0 ? line : line.slice(0, colon);
      const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
      if (field === 'event') event = value;
      else if (field === 'data') data.push(value);
    }
    if (data.length > 0) events.push({ event, data: data.join('\n') });
  }
  return { events, rest };
}

/** Opens `GET path` on 127.0.0.1:`port` as an event feed; resolves once the answer's head is in. */
export function openFeed(
  port: number,
  path = '/events',
  headers: Record<string, string> = {},
): Promise<Feed> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        path,
        method: 'GET',
        agent: false,
        headers: { accept: 'text/event-stream', ...headers },
      },
      (res) => {
        const events: SseEvent[] = [];
        let buffer = '';
        let complete = false;
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          const parsed = parseSse(buffer + chunk);
          buffer = parsed.rest;
          events.push(...parsed.events);
        });
        const ended = new Promise<{ complete: boolean }>((done) => {
          res.on('end', () => {
            complete = true;
          });
          res.on('close', () => done({ complete }));
          res.on('error', () => done({ complete: false }));
        });
        resolve({
          status: res.statusCode ?? 0,
          headers: res.headers,
          events,
          ended,
          close: () => req.destroy(),
        });
      },
    );
    req.on('error', reject);
    req.end();
  });
}

/** POSTs JSON to the node's local API with the given extra headers; resolves with status and body. */
export function postApi(
  port: number,
  path: string,
  value: unknown,
  headers: Record<string, string> = {},
): Promise<{ status: number; body: string; headers: Record<string, string | string[] | undefined> }> {
  const body = typeof value === 'string' ? value : JSON.stringify(value);
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        path,
        method: 'POST',
        agent: false,
        headers: {
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(body),
          ...headers,
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            body: Buffer.concat(chunks).toString('utf8'),
            headers: res.headers,
          }),
        );
        res.on('error', reject);
      },
    );
    req.setTimeout(10_000, () => req.destroy(new Error('no answer within 10 s')));
    req.on('error', reject);
    req.end(body);
  });
}

/** The value of one sample in a Prometheus text, or `undefined` when it is absent. */
export function sampleValue(
  text: string,
  name: string,
  labels: Record<string, string> = {},
): number | undefined {
  const want = Object.entries(labels);
  for (const line of text.split('\n')) {
    if (line.startsWith('#') || line === '') continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const got = new Map<string, string>();
    for (const pair of (m[3] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) {
      got.set(pair[1]!, pair[2]!);
    }
    if (got.size === want.length && want.every(([k, v]) => got.get(k) === v)) return Number(m[4]);
  }
  return undefined;
}
