/**
 * A tsp2p node in its own process, driven over JSON lines. Spawned by {@link ./spawn-peer.ts}.
 *
 * Run: `node --import tsx test/helpers/peer-process.ts '<NodeOptions as JSON>'` (or pass the
 * options in the env var `TSP2P_PEER_OPTIONS`).
 *
 * stdout, one JSON object per line:
 * - `{"event":"ready","self":Peer}` once the node listens;
 * - `{"event":"message","id","type","text","from":Peer,"at","topic"?,"late"?}` per message
 *   received;
 * - `{"event":"member:join"|"member:leave"|"member:fail"|"member:update"|"member:suspect","peer":Peer,
 *   "at":ms}` (`at`: the child's `Date.now()` when the event fired);
 * - `{"event":"result","seq":n,"result":...}` or `{"event":"result","seq":n,"error":{code,message}}`
 *   answering each command.
 *
 * stdin, one JSON command per line, each with a `seq` number:
 * `{"seq":1,"cmd":"connect","entry":"127.0.0.1:5000"}`, `{"seq":2,"cmd":"broadcast","text":"hi"}`,
 * `{"seq":3,"cmd":"send","to":"127.0.0.1:5001"|[...],"text":"psst"}`, `{"seq":4,"cmd":"disconnect"}`,
 * `{"seq":5,"cmd":"members"}`, `{"seq":6,"cmd":"stop"}` (the process then exits with code 0),
 * `{"seq":7,"cmd":"memberStates"}` (every known member with `state` and `incarnation`),
 * `{"seq":8,"cmd":"loopDelay"}` (the event loop's delay since start, in ms: `{max, p99, mean}`),
 * `{"seq":9,"cmd":"stream","prefix":"m","count":5000,"window":256,"pauseAt":2500}` (broadcasts
 * `m:0`...`m:4999` in order, at most `window` calls outstanding; at `pauseAt` (a number or a
 * list) it prints `{"event":"stream:paused","at":2500}` and waits for `{"cmd":"resume"}`; the
 * result is a
 * {@link StreamResult}), `{"seq":10,"cmd":"resume"}`,
 * `{"seq":11,"cmd":"received"}` (the texts of every message received so far, in order),
 * `{"seq":12,"cmd":"history","topic":"t","limit":10000}` (`node.history()`: `[{id, text, from,
 * late?}]`, oldest first),
 * `{"seq":13,"cmd":"block","ms":3000}` (busy-waits: the event loop runs nothing else meanwhile),
 * `{"seq":14,"cmd":"slowListener","ms":5}` (from now on the `message` listener busy-waits `ms`
 * per message: a slow application).
 *
 * End of stdin (the parent went away) stops the node and exits too. Logs go to stderr.
 *
 * @module
 */

import { monitorEventLoopDelay } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import { Node, type NodeOptions, P2PError, type Peer } from '../../src/index.js';
import type { ConnectReport, DeliveryFailure, DeliveryReport, LeaveReport } from '../../src/types.js';

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

function out(line: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify(line)}\n`);
}

function log(message: string): void {
  process.stderr.write(`[peer ${process.pid}] ${message}\n`);
}

function peerJson(peer: Peer): Json {
  const p: { [key: string]: Json } = { id: peer.id, address: peer.address, port: peer.port };
  if (peer.name !== undefined) p.name = peer.name;
  return p;
}

function errorJson(err: unknown): { code: string; message: string } {
  if (err instanceof P2PError) return { code: err.code, message: err.message };
  return { code: 'ERR_HELPER', message: (err as Error)?.message ?? String(err) };
}

function failuresJson(failed: readonly DeliveryFailure[]): Json {
  return failed.map((f) => ({ peer: peerJson(f.peer), error: errorJson(f.error) }));
}

function deliveryJson(r: DeliveryReport): Json {
  return { id: r.id, delivered: r.delivered.map(peerJson), failed: failuresJson(r.failed) };
}

function connectJson(r: ConnectReport): Json {
  return { entry: peerJson(r.entry), members: r.members.map(peerJson), failed: failuresJson(r.failed) };
}

function leaveJson(r: LeaveReport): Json {
  return { notified: r.notified.map(peerJson), failed: failuresJson(r.failed) };
}

interface Command {
  readonly seq: number;
  readonly cmd: string;
  readonly entry?: string;
  readonly text?: string;
  readonly to?: string | string[];
  readonly prefix?: string;
  readonly count?: number;
  readonly window?: number;
  readonly pauseAt?: number | number[];
  readonly topic?: string;
  readonly limit?: number;
  readonly ms?: number;
}

/**
 * What `stream` reports: per member id, the indexes of the messages it acknowledged; every
 * failure in a report; every call that rejected.
 */
interface StreamResult {
  readonly count: number;
  readonly delivered: Record<string, number[]>;
  readonly failed: { i: number; peer: string; code: string; message: string }[];
  readonly errors: { i: number; code: string; message: string }[];
}

/** Broadcasts `prefix:0`... in order, with at most `window` calls outstanding. */
async function stream(command: Command): Promise<StreamResult> {
  const count = command.count ?? 0;
  const window = Math.max(1, command.window ?? count);
  const prefix = command.prefix ?? 'm';
  const result: StreamResult = { count, delivered: {}, failed: [], errors: [] };
  const outstanding = new Set<Promise<void>>();
  const pauses = new Set([command.pauseAt ?? []].flat());
  for (let i = 0; i < count; i++) {
    if (pauses.has(i)) {
      const resumed = new Promise<void>((resolve) => resumers.push(resolve));
      out({ event: 'stream:paused', at: i });
      await resumed;
    }
    while (outstanding.size >= window) await Promise.race(outstanding);
    // Called in order, without awaiting the previous call: the queues keep the order.
    const call = node.broadcast(`${prefix}:${i}`).then(
      (r) => {
        for (const p of r.delivered) {
          const list = result.delivered[p.id] ?? [];
          list.push(i);
          result.delivered[p.id] = list;
        }
        for (const f of r.failed) result.failed.push({ i, peer: f.peer.id, ...errorJson(f.error) });
      },
      (err: unknown) => {
        result.errors.push({ i, ...errorJson(err) });
      },
    );
    const tracked: Promise<void> = call.finally(() => outstanding.delete(tracked));
    outstanding.add(tracked);
  }
  await Promise.all(outstanding);
  for (const list of Object.values(result.delivered)) list.sort((a, b) => a - b);
  return result;
}

/** Paused streams, waiting for `resume`. */
const resumers: (() => void)[] = [];
/** The texts of every message received, in order. */
const received: string[] = [];
/** How long the `message` listener busy-waits per message (`slowListener`). */
let listenerMs = 0;

const raw = process.argv[2] ?? process.env.TSP2P_PEER_OPTIONS ?? '{}';
const options = JSON.parse(raw) as NodeOptions;
const node = new Node({
  ...options,
  logger: {
    // TSP2P_PEER_DEBUG=1: debug lines too (printed with the rest of stderr when a test fails).
    debug: process.env.TSP2P_PEER_DEBUG
      ? (msg, fields) => log(`debug ${msg} ${fields ? safeFields(fields) : ''}`)
      : () => undefined,
    info: (msg, fields) => log(`info ${msg} ${fields ? safeFields(fields) : ''}`),
    warn: (msg, fields) => log(`warn ${msg} ${fields ? safeFields(fields) : ''}`),
    error: (msg, fields) => log(`error ${msg} ${fields ? safeFields(fields) : ''}`),
  },
});

function safeFields(fields: Record<string, unknown>): string {
  try {
    return JSON.stringify(fields, (_k, v: unknown) => (v instanceof Error ? `${v.name}: ${v.message}` : v));
  } catch {
    return String(fields);
  }
}

node.on('message', (msg) => {
  if (listenerMs > 0) {
    const until = performance.now() + listenerMs;
    while (performance.now() < until);
  }
  received.push(msg.text);
  out({
    event: 'message',
    id: msg.id,
    type: msg.type,
    text: msg.text,
    from: peerJson(msg.from),
    at: msg.at,
    ...(msg.topic !== undefined ? { topic: msg.topic } : {}),
    ...(msg.late === true ? { late: true } : {}),
  });
});
for (const event of [
  'member:join',
  'member:leave',
  'member:fail',
  'member:update',
  'member:suspect',
] as const) {
  node.on(event, (peer: Peer) => out({ event, peer: peerJson(peer), at: Date.now() }));
}

// How late the event loop ran: tells a busy machine apart from a node that does not answer.
const loopDelay = monitorEventLoopDelay({ resolution: 10 });
loopDelay.enable();

async function run(command: Command): Promise<Json> {
  switch (command.cmd) {
    case 'connect':
      return connectJson(await node.connect(command.entry ?? ''));
    case 'broadcast':
      return deliveryJson(await node.broadcast(command.text ?? ''));
    case 'send':
      return deliveryJson(await node.send(command.to ?? [], command.text ?? ''));
    case 'disconnect':
      return leaveJson(await node.disconnect());
    case 'members':
      return node.members().map(peerJson);
    case 'memberStates':
      return node
        .memberStates()
        .map((m) => ({ peer: peerJson(m.peer), kind: m.kind, state: m.state, incarnation: m.incarnation }));
    case 'loopDelay':
      return {
        max: Math.round(loopDelay.max / 1e6),
        p99: Math.round(loopDelay.percentile(99) / 1e6),
        mean: Math.round(loopDelay.mean / 1e6),
      };
    case 'stream':
      return (await stream(command)) as unknown as Json;
    case 'resume': {
      const n = resumers.length;
      for (const resume of resumers.splice(0)) resume();
      return n;
    }
    case 'received':
      return received;
    case 'block': {
      // A CPU-starved process: the event loop does nothing else for `ms` (answered after it).
      const until = Date.now() + (command.ms ?? 0);
      while (Date.now() < until);
      return null;
    }
    case 'slowListener':
      listenerMs = command.ms ?? 0;
      return null;
    case 'history': {
      const page = await node.history({
        ...(command.topic !== undefined ? { topic: command.topic } : {}),
        ...(command.limit !== undefined ? { limit: command.limit } : {}),
      });
      return page.map((m) => ({
        id: m.id,
        text: m.text,
        from: peerJson(m.from),
        ...(m.late === true ? { late: true } : {}),
      }));
    }
    case 'stop':
      await node.stop();
      return null;
    default:
      throw new Error(`unknown command '${command.cmd}'`);
  }
}

let exiting = false;
async function shutdown(code: number): Promise<void> {
  if (exiting) return;
  exiting = true;
  await node.stop().catch((err: unknown) => log(`stop failed: ${(err as Error).message}`));
  process.exitCode = code;
  // Stopped by a signal, stdin is still open: it would keep the process alive.
  process.stdin.destroy();
  // Everything is closed: the process ends on its own. Should a handle linger, say so and go.
  setTimeout(() => {
    log('handles still open 5 s after stop; exiting');
    process.exit(code);
  }, 5_000).unref();
}

const self = await node.start();
out({ event: 'ready', self: peerJson(self), pid: process.pid });

const rl = createInterface({ input: process.stdin, crlfDelay: Number.POSITIVE_INFINITY });
rl.on('line', (line) => {
  if (line.trim() === '') return;
  let command: Command;
  try {
    command = JSON.parse(line) as Command;
  } catch {
    log(`not a JSON command: ${line}`);
    return;
  }
  run(command).then(
    (result) => {
      out({ event: 'result', seq: command.seq, result });
      if (command.cmd === 'stop') {
        rl.close();
        void shutdown(0);
      }
    },
    (err: unknown) => out({ event: 'result', seq: command.seq, error: errorJson(err) }),
  );
});
rl.on('close', () => void shutdown(0));
process.on('SIGTERM', () => void shutdown(0));
