/**
 * A seeded fuzzer for a live node: random and mutated requests, signed and unsigned, over
 * keep-alive HTTP, with the node's status codes tallied and its memory sampled. Used by
 * `test/integration/security-fuzz.test.ts` (a short run) and `npm run fuzz` (a long one,
 * `test/fuzz/security-fuzz.ts`).
 *
 * What it sends, by weight: random bytes; random JSON; gop2p-style envelopes; envelopes signed
 * by a small pool of fuzzer identities (every message type, membership updates and batches
 * included); signed envelopes with random edits after signing; exact replays of earlier signed
 * requests; envelopes in the real member's name signed with another key; other methods and
 * paths; broken signature and tag headers. Addresses, ports and ids come from small pools, so
 * the node's tables stay bounded and what grows is only what the node itself lets grow.
 *
 * @module
 */

import { Pool } from 'undici';
import type { Identity } from '../../src/identity.js';
import { identityFromSeed } from '../../src/identity.js';
import { SeededRandom } from '../../src/random.js';
import { signGossip } from '../../src/security/gossip-signature.js';
import type { ChildMemory } from './security-node.js';
import { keyText, signedBody } from './security-sign.js';

/** A node under fuzzing: where it listens, and how to read its memory. */
export interface FuzzTarget {
  readonly port: number;
  memory(): Promise<ChildMemory>;
}

/** Settings of a run. */
export interface FuzzOptions {
  readonly seed: number;
  readonly requests: number;
  /** Requests in flight at once. @default 16 */
  readonly concurrency?: number;
  /** Memory samples taken over the run (after a full GC in the node). @default 10 */
  readonly samples?: number;
  /** The real member's id and address, to forge requests in its name. */
  readonly member?: { readonly id: string; readonly address: string; readonly port: number };
  /** Progress lines. */
  readonly log?: (line: string) => void;
}

/** What a run saw. */
export interface FuzzResult {
  readonly sent: number;
  /** Answers by HTTP status. */
  readonly statuses: Record<number, number>;
  /** Requests by kind of input. */
  readonly kinds: Record<string, number>;
  /** The slowest answer by kind of input, in ms. */
  readonly slowest: Record<string, number>;
  /** Answers 500 and above, with what caused them (the first 10). */
  readonly serverErrors: { status: number; kind: string; body: string }[];
  /** Requests that got no HTTP answer (connection reset, timeout), with the first few reasons. */
  readonly noAnswer: number;
  readonly noAnswerReasons: string[];
  /** The node's memory after a full GC, at evenly spaced points of the run. */
  readonly memory: { readonly at: number; readonly rss: number; readonly heapUsed: number }[];
  readonly elapsedMs: number;
}

interface Attempt {
  readonly kind: string;
  readonly method: string;
  readonly path: string;
  readonly headers: Record<string, string>;
  readonly body: string | Uint8Array | undefined;
}

const TYPES = [0, 1, 2, 3, 4, 5, 6, 7, 8];

const mib = (bytes: number): string => (bytes / 2 ** 20).toFixed(1);

/** Runs the fuzzer against `target`. */
export async function fuzz(target: FuzzTarget, options: FuzzOptions): Promise<FuzzResult> {
  const rnd = new SeededRandom(options.seed);
  const int = (n: number): number => Math.floor(rnd.next() * n);
  const pick = <T>(list: readonly T[]): T => list[int(list.length)]!;
  const chance = (p: number): boolean => rnd.next() < p;
  const identities: Identity[] = Array.from({ length: 12 }, (_, i) => {
    const seed = new Uint8Array(32);
    seed.fill(i + 1);
    seed[0] = options.seed & 0xff;
    return identityFromSeed(seed);
  });
  const ports = Array.from({ length: 24 }, (_, i) => 41_000 + i);
  const addresses = ['127.0.0.1', '127.0.0.1', '0.0.0.0', '::', '127.0.0.2', 'localhost', '10.255.0.1'];
  const recent: Attempt[] = [];
  let counter = 0;

  const randomString = (max: number): string => {
    const alphabet = 'abcxyz019 _-:/.\\"\'{}[]\u00e9\u4e2d\u0000\n';
    let s = '';
    for (let i = int(max + 1); i > 0; i--) s += alphabet[int(alphabet.length)];
    return s;
  };
  const randomJson = (depth = 0): unknown => {
    switch (int(depth > 2 ? 5 : 7)) {
      case 0:
        return null;
      case 1:
        return chance(0.5);
      case 2:
        return pick([0, -1, 1.5, 2 ** 53, -(2 ** 31), 1e308, 65535, 65536]);
      case 3:
        return randomString(20);
      case 4:
        return int(100);
      case 5:
        return Array.from({ length: int(4) }, () => randomJson(depth + 1));
      default: {
        const o: Record<string, unknown> = {};
        for (let i = int(5); i > 0; i--) {
          o[pick(['type', 'data', 'from', 'to', 'v', 'id', 'ts', 'm', 'msgs', randomString(6)])] = randomJson(
            depth + 1,
          );
        }
        return o;
      }
    }
  };
  const wirePeer = (withId: boolean): Record<string, unknown> => {
    const p: Record<string, unknown> = { address: pick(addresses), port: pick(ports) };
    if (withId) p.id = pick(identities).id;
    if (chance(0.2)) p.name = randomString(10);
    return p;
  };
  const update = (): Record<string, unknown> => {
    const who = pick(identities);
    return {
      id: chance(0.9) ? who.id : randomString(8) || 'x',
      address: pick(addresses),
      port: pick(ports),
      state: pick(['alive', 'suspect', 'dead', 'left']),
      inc: int(5),
      ...(chance(0.3) ? { by: pick(identities).id } : {}),
    };
  };
  const batchMsg = (origin: Identity): Record<string, unknown> => {
    const m: Record<string, unknown> = {
      type: pick([2, 3]),
      id: `b${counter++}`,
      ts: Date.now() + (chance(0.1) ? pick([-1e7, 1e7]) : 0),
      data: Buffer.from(randomString(30)).toString('base64'),
    };
    if (m.type === 3) m.to = [wirePeer(true)];
    if (chance(0.4)) {
      const signer = chance(0.7) ? origin : pick(identities);
      m.hops = int(4);
      m.origin = { ...wirePeer(false), id: origin.id, key: keyText(origin) };
      m.sig = signGossip(
        { type: m.type as number, id: m.id as string, ts: m.ts as number, data: m.data as string },
        signer.privateKey,
      );
    }
    return m;
  };
  const envelopeFields = (type: number): Record<string, unknown> => {
    const e: Record<string, unknown> = {
      type,
      data: chance(0.7) ? Buffer.from(randomString(40)).toString('base64') : null,
    };
    if (type === 3) e.to = Array.from({ length: 1 + int(3) }, () => wirePeer(true));
    if (type >= 4 && type <= 7 && chance(0.7)) e.m = Array.from({ length: int(6) }, update);
    if (type === 5) e.target = wirePeer(true);
    if (type === 0 && chance(0.5)) e.announce = true;
    if (type === 8) {
      e.stream = `s${int(3)}`;
      e.seq = 1 + int(50);
      e.msgs = [];
    }
    return e;
  };
  const signedAttempt = (kind: string): Attempt => {
    const who = pick(identities);
    const type = pick(TYPES);
    const fields = envelopeFields(type);
    if (type === 8) fields.msgs = Array.from({ length: 1 + int(5) }, () => batchMsg(who));
    const envelope = {
      ...fields,
      v: 1,
      id: `f${options.seed}-${counter++}`,
      ts: Date.now() + (chance(0.05) ? pick([-1e7, 1e7]) : 0),
      from: { ...wirePeer(false), id: who.id, key: keyText(who), inc: int(3) },
    };
    const r = signedBody(JSON.stringify(envelope), who);
    return { kind, method: 'POST', path: '/', headers: r.headers, body: r.body };
  };

  const next = (): Attempt => {
    const roll = int(100);
    if (roll < 6) return { kind: 'bytes', method: 'POST', path: '/', headers: {}, body: rnd.bytes(int(300)) };
    if (roll < 14) {
      return {
        kind: 'json',
        method: 'POST',
        path: '/',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(randomJson()) ?? '',
      };
    }
    if (roll < 26) {
      const e = { ...envelopeFields(pick([0, 1, 2, 3, 4])), from: wirePeer(false) };
      return { kind: 'gop2p', method: 'POST', path: '/', headers: {}, body: JSON.stringify(e) };
    }
    if (roll < 56) {
      const a = signedAttempt('signed');
      if (chance(0.3)) recent.push(a);
      if (recent.length > 200) recent.shift();
      return a;
    }
    if (roll < 70) {
      // Edited after signing: bytes flipped, cut short, or a field rewritten.
      const a = signedAttempt('mutated');
      const text = String(a.body);
      let body: string | Uint8Array;
      switch (int(3)) {
        case 0: {
          const bytes = Buffer.from(text);
          for (let i = 1 + int(3); i > 0; i--) bytes[int(bytes.length)] = int(256);
          body = bytes;
          break;
        }
        case 1:
          body = text.slice(0, int(text.length));
          break;
        default: {
          const obj = JSON.parse(text) as Record<string, unknown>;
          obj[pick(['type', 'id', 'ts', 'data', 'from', 'to', 'm', 'v', 'msgs'])] = randomJson();
          body = JSON.stringify(obj);
        }
      }
      return { ...a, body };
    }
    if (roll < 78 && recent.length > 0) {
      const a = pick(recent);
      return { ...a, kind: 'replay' };
    }
    if (roll < 86 && options.member !== undefined) {
      // In the real member's name: another key, or no signature at all.
      const m = options.member;
      const who = pick(identities);
      const type = pick([1, 2, 3, 6, 7, 8]);
      const envelope: Record<string, unknown> = {
        ...envelopeFields(type),
        v: 1,
        id: `x${counter++}`,
        ts: Date.now(),
        from: { address: m.address, port: m.port, id: m.id, ...(chance(0.8) ? { key: keyText(who) } : {}) },
      };
      if (type === 8) envelope.msgs = [batchMsg(who)];
      const r = signedBody(JSON.stringify(envelope), who);
      if (chance(0.3)) delete r.headers['tsp2p-sig'];
      return { kind: 'forged', method: 'POST', path: '/', headers: r.headers, body: r.body };
    }
    if (roll < 93) {
      const method = pick(['GET', 'HEAD', 'PUT', 'DELETE', 'OPTIONS', 'PATCH', 'POST']);
      const path = pick(['/', '/members', '/metrics', '/health', '/x', '/%00', '/..', '/?q=1', '/app.js']);
      const body = method === 'GET' || method === 'HEAD' ? undefined : JSON.stringify(randomJson());
      return { kind: 'method', method, path, headers: chance(0.3) ? { accept: 'text/html' } : {}, body };
    }
    // Broken authentication headers on an otherwise plausible request.
    const a = signedAttempt('headers');
    const headers = { ...a.headers };
    headers[pick(['tsp2p-sig', 'tsp2p-auth', 'content-type'])] = pick([
      '',
      'x',
      'A'.repeat(86),
      '00000000.AAAA',
      randomString(120).replace(/[^\x21-\x7e]/g, 'q'),
    ]);
    return { ...a, headers };
  };

  const pool = new Pool(`http://127.0.0.1:${target.port}`, { connections: options.concurrency ?? 16 });
  const statuses: Record<number, number> = {};
  const kinds: Record<string, number> = {};
  const slowest: Record<string, number> = {};
  const serverErrors: FuzzResult['serverErrors'] = [];
  const noAnswerReasons: string[] = [];
  const memory: { at: number; rss: number; heapUsed: number }[] = [];
  let noAnswer = 0;
  let sent = 0;
  let done = 0;
  const samples = options.samples ?? 10;
  const sampleEvery = Math.max(1, Math.floor(options.requests / samples));
  const started = Date.now();
  // Attempts are drawn in one sequence (seeded), then sent by several workers at once.
  const take = (): Attempt | undefined => {
    if (sent >= options.requests) return undefined;
    sent++;
    return next();
  };
  let sampling: Promise<void> = Promise.resolve();

  const worker = async (): Promise<void> => {
    for (let a = take(); a !== undefined; a = take()) {
      kinds[a.kind] = (kinds[a.kind] ?? 0) + 1;
      const t0 = performance.now();
      try {
        const res = await pool.request({
          path: a.path,
          method: a.method as 'POST',
          headers: a.headers,
          body: a.body === undefined ? null : typeof a.body === 'string' ? a.body : Buffer.from(a.body),
          headersTimeout: 15_000,
          bodyTimeout: 15_000,
        });
        const text = await res.body.text();
        const ms = Math.round(performance.now() - t0);
        if (ms > (slowest[a.kind] ?? 0)) slowest[a.kind] = ms;
        if (ms > 1_000)
          options.log?.(
            `slow answer (${ms} ms) to ${a.kind}: ${a.method} ${a.path} ${String(a.body).slice(0, 300)}`,
          );
        statuses[res.statusCode] = (statuses[res.statusCode] ?? 0) + 1;
        if (res.statusCode >= 500 && serverErrors.length < 10) {
          serverErrors.push({ status: res.statusCode, kind: a.kind, body: text.slice(0, 200) });
        }
      } catch (err) {
        noAnswer++;
        if (noAnswerReasons.length < 5) noAnswerReasons.push(`${a.kind}: ${(err as Error).message}`);
      }
      done++;
      if (done % sampleEvery === 0) {
        const at = done;
        sampling = sampling.then(async () => {
          const m = await target.memory();
          memory.push({ at, rss: m.rss, heapUsed: m.heapUsed });
          options.log?.(`${at} requests: rss ${mib(m.rss)} MiB, heap ${mib(m.heapUsed)} MiB`);
        });
      }
    }
  };
  await Promise.all(Array.from({ length: options.concurrency ?? 16 }, worker));
  await sampling;
  await pool.close();
  return {
    sent,
    statuses,
    kinds,
    slowest,
    serverErrors,
    noAnswer,
    noAnswerReasons,
    memory,
    elapsedMs: Date.now() - started,
  };
}
