/**
 * `tsp2p node`: a node for scripts and services. One JSON object per line on stdout for every
 * event; each stdin line is a broadcast, or a direct message when it is `{"to","text"}`.
 *
 * @module
 */

import { createInterface } from 'node:readline';
import type { DeliveryFailure, DeliveryReport, Node, Peer } from '../index.js';
import { type NodeFlags, normalizeAddress } from './args.js';
import { errorCode, errorMessage, peerJson } from './format.js';
import type { CliIO } from './io.js';
import { createNode, Session, startFailure } from './session.js';

/** One parsed input line. */
export type NodeInput =
  | { readonly kind: 'empty' }
  | { readonly kind: 'broadcast'; readonly text: string }
  | { readonly kind: 'direct'; readonly to: string[]; readonly text: string }
  | { readonly kind: 'invalid'; readonly message: string };

/**
 * Parses one input line (pure). A line that is a JSON object is a command: `{"text"}` is a
 * broadcast, `{"to","text"}` a direct message; any other line is broadcast as it is.
 */
export function parseNodeLine(line: string): NodeInput {
  if (line.trim() === '') return { kind: 'empty' };
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    return { kind: 'broadcast', text: line };
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return { kind: 'broadcast', text: line };
  }
  const { to, text } = value as { to?: unknown; text?: unknown };
  if (typeof text !== 'string') {
    return {
      kind: 'invalid',
      message: 'a JSON line needs "text": {"to":"H:P","text":"..."} or {"text":"..."}',
    };
  }
  if (to === undefined) return { kind: 'broadcast', text };
  const list = Array.isArray(to) ? to : [to];
  if (list.length === 0 || !list.every((t) => typeof t === 'string')) {
    return { kind: 'invalid', message: '"to" must be "H:P" or a list of them' };
  }
  return { kind: 'direct', to: list as string[], text };
}

/** Runs `tsp2p node` until the node has left; resolves with the exit code. */
export async function runNode(flags: NodeFlags, io: CliIO): Promise<number> {
  const emit = (event: string, fields: object): void => {
    io.stdout.write(`${JSON.stringify({ event, ...fields })}\n`);
  };
  const error = (err: unknown, message?: string): void =>
    emit('error', { code: errorCode(err), message: message ?? (err as Error)?.message ?? String(err) });

  const node = createNode(flags);
  let self: Peer;
  try {
    self = await node.start();
  } catch (err) {
    emit('error', startFailure(err, flags));
    return 2;
  }
  forwardEvents(node, emit);
  emit('listening', { address: self.address, port: self.port, id: self.id, name: self.name });

  const rl = createInterface({ input: io.stdin, terminal: false, crlfDelay: Number.POSITIVE_INFINITY });
  const session = new Session(node, {
    onTaskError: (err) => error(err),
    onLeaving: () => rl.close(),
    onLeft: (report, err) => {
      if (err !== undefined) error(err);
      else if (report)
        emit('left', { notified: report.notified.map(peerJson), failed: failures(report.failed) });
    },
    onForcedExit: () => undefined,
  });
  session.handleSignals();
  io.stdout.on('error', () => void session.leave('now'));

  if (flags.join !== undefined) {
    const entry = flags.join;
    session.run(async () => {
      try {
        const report = await node.connect(entry);
        emit('connected', {
          entry: peerJson(report.entry),
          members: report.members.map(peerJson),
          failed: failures(report.failed),
        });
      } catch (err) {
        error(err, errorMessage(err)); // in the CLI's terms: it names --gop2p, not the option
      }
    });
  }
  rl.on('line', (line) => {
    if (session.leaving) return;
    const input = parseNodeLine(line);
    session.run(() => handle(node, input, emit, error));
  });
  rl.on('close', () => void session.leave('after-input'));
  return session.finished;
}

async function handle(
  node: Node,
  input: NodeInput,
  emit: (event: string, fields: object) => void,
  error: (err: unknown, message?: string) => void,
): Promise<void> {
  if (input.kind === 'empty') return;
  if (input.kind === 'invalid') return error({ code: 'ERR_INVALID_INPUT' }, input.message);
  let report: DeliveryReport;
  try {
    if (input.kind === 'broadcast') {
      report = await node.broadcast(input.text);
    } else {
      // A bare port means 127.0.0.1; anything else (H:P, a URL, a member id) goes to the node as is.
      report = await node.send(
        input.to.map((t) => (/^\d{1,5}$/.test(t) ? normalizeAddress(t) : t)),
        input.text,
      );
    }
  } catch (err) {
    return error(err);
  }
  emit('sent', {
    id: report.id,
    type: input.kind,
    delivered: report.delivered.map(peerJson),
    failed: failures(report.failed),
  });
}

function forwardEvents(node: Node, emit: (event: string, fields: object) => void): void {
  node.on('message', (m) =>
    emit('message', { id: m.id, type: m.type, from: peerJson(m.from), text: m.text }),
  );
  for (const event of [
    'member:join',
    'member:leave',
    'member:suspect',
    'member:fail',
    'member:update',
  ] as const) {
    node.on(event, (peer) => emit(event, peerJson(peer)));
  }
  node.on('peer:refused', (r) =>
    emit('peer:refused', {
      address: r.address,
      port: r.port,
      reason: r.reason,
      message: `${r.message}; restart with --gop2p to let gop2p nodes in`,
    }),
  );
}

function failures(list: readonly DeliveryFailure[]): object[] {
  return list.map((f) => ({ peer: peerJson(f.peer), code: f.error.code, message: f.error.message }));
}
