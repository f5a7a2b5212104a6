/**
 * `tsp2p node`: a node for scripts and services. One JSON object per line on stdout for every
 * event; each stdin line is a command (src/cli/node-input.ts). With `--no-input` it reads no
 * stdin and runs until SIGTERM or SIGINT.
 *
 * @module
 */

import { createInterface } from 'node:readline';
import {
  type DeliveryFailure,
  type DeliveryReport,
  formatHostPort,
  type Node,
  type Peer,
  peerJson,
} from '../index.js';
import type { NodeFlags } from './args.js';
import { errorCode, joinFailure } from './format.js';
import type { CliIO } from './io.js';
import { type NodeInput, parseNodeLine } from './node-input.js';
import { createNode, Session, startFailure } from './session.js';
import { resolveTargets } from './targets.js';

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

  const rl = flags.noInput
    ? undefined
    : createInterface({ input: io.stdin, terminal: false, crlfDelay: Number.POSITIVE_INFINITY });
  const session = new Session(node, {
    onTaskError: (err) => error(err),
    onLeaving: () => rl?.close(),
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
        error(err, joinFailure(err, entry));
        // Scripts and service managers must be able to tell: the node ends, non-zero.
        void session.fail(1);
      }
    });
  }
  rl?.on('line', (line) => {
    if (session.leaving) return;
    const input = parseNodeLine(line);
    session.run(() => handle(node, input, emit, error));
  });
  rl?.on('close', () => void session.leave('after-input'));
  return session.finished;
}

async function handle(
  node: Node,
  input: NodeInput,
  emit: (event: string, fields: object) => void,
  error: (err: unknown, message?: string) => void,
): Promise<void> {
  switch (input.kind) {
    case 'empty':
      return;
    case 'invalid':
      return error({ code: 'ERR_INVALID_INPUT' }, input.message);
    case 'subscribe':
    case 'unsubscribe':
      try {
        for (const topic of input.topics) {
          if (input.kind === 'subscribe') await node.subscribe(topic);
          else await node.unsubscribe(topic);
        }
      } catch (err) {
        return error(err);
      }
      return emit(input.kind === 'subscribe' ? 'subscribed' : 'unsubscribed', {
        topics: input.topics,
        now: node.topics(),
      });
  }
  let report: DeliveryReport;
  try {
    if (input.kind === 'publish') {
      report = await node.publish(input.topic, input.text);
    } else if (input.kind === 'broadcast') {
      report = await node.broadcast(input.text);
    } else {
      const resolved = resolveTargets(input.to, node.members());
      if (!resolved.ok) return error(resolved, `${resolved.message}: nothing was sent`);
      report = await node.send(resolved.targets, input.text);
    }
  } catch (err) {
    const code = errorCode(err);
    if (code === 'ERR_NOT_CONNECTED') {
      const self = node.self;
      return error(
        err,
        `not connected: nobody is here yet, so nothing was sent (others join with --join ${formatHostPort(self.address, self.port)})`,
      );
    }
    const why = err instanceof Error ? err.message : String(err);
    return error(err, code === 'ERR_UNKNOWN_PEER' ? `${why}: nothing was sent` : why);
  }
  emit('sent', {
    id: report.id,
    type: input.kind === 'publish' ? 'broadcast' : input.kind,
    ...(input.kind === 'publish' ? { topic: input.topic } : {}),
    delivered: report.delivered.map(peerJson),
    failed: failures(report.failed),
  });
}

function forwardEvents(node: Node, emit: (event: string, fields: object) => void): void {
  node.on('message', (m) =>
    emit('message', {
      id: m.id,
      type: m.type,
      ...(m.topic !== undefined ? { topic: m.topic } : {}),
      from: peerJson(m.from),
      text: m.text,
      at: m.at,
      // History, not live: caught up after an absence (or after its causal wait gave up).
      ...(m.late === true ? { late: true } : {}),
    }),
  );
  // What the node's page or HTTP API sent (this process's own input reports its own `sent`).
  node.on('message:sent', (m) => {
    if (m.origin !== 'web') return;
    emit('sent', {
      id: m.id,
      type: m.type,
      origin: 'web',
      ...(m.type === 'direct' ? { to: m.to.map(peerJson) } : {}),
      text: m.text,
      delivered: m.report.delivered.map(peerJson),
      failed: failures(m.report.failed),
    });
  });
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
