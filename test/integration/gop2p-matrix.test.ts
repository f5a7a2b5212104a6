/**
 * tsp2p in compat mode with gop2p's chat, in every join order of
 * `/work/shared/gop2p-wire/real-chat.md`, against the chat double (test/helpers/gop2p-peer.ts),
 * which names itself `0.0.0.0:PORT` and records every name exactly as the real chat does. In each
 * case every node reaches every other with broadcasts and direct messages both ways, and after a
 * leave (tsp2p or gop2p) no gop2p chat keeps a dead entry, so the remaining ones still reach each
 * other.
 */

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { Logger, Message, Node, Peer, PeerRefusal } from '../../src/index.js';
import { type GoFlavour, GoPeer, goName } from '../helpers/gop2p-peer.js';
import { addressOf, type HasAfter, startNode } from '../helpers/nodes.js';
import { onceEvent, waitFor } from '../helpers/wait.js';

/** A tsp2p node with what it received. */
interface Ts {
  readonly node: Node;
  readonly got: Message[];
}

async function startTs(t: HasAfter): Promise<Ts> {
  const node = await startNode(t, { compat: 'gop2p', leaveTimeoutMs: 2_000, requestTimeoutMs: 2_000 });
  const got: Message[] = [];
  node.on('message', (m) => got.push(m));
  return { node, got };
}

async function startGo(t: HasAfter, flavour: GoFlavour = 'chat'): Promise<GoPeer> {
  const go = await GoPeer.start({ flavour });
  t.after(() => go.stop());
  return go;
}

/** A Go chat's `connect` argument for a tsp2p node or another double: `connect PORT`. */
function entryOf(go: GoPeer, target: Ts | GoPeer): string | number {
  const port = target instanceof GoPeer ? target.self.port : target.node.self.port;
  return go.flavour === 'chat' ? port : `127.0.0.1:${port}`;
}

async function goConnect(go: GoPeer, target: Ts | GoPeer): Promise<void> {
  const result = await go.connect(entryOf(go, target));
  assert.equal(result.error, undefined, `${go.name} failed to connect`);
}

/** A unique text per message, so that each check looks for exactly its own. */
let counter = 0;
function text(what: string): string {
  counter += 1;
  return `${what}-${counter}`;
}

function label(x: Ts | GoPeer): string {
  return x instanceof GoPeer ? `go ${x.name}` : `tsp2p ${addressOf(x.node.self)}`;
}

/** Waits until every tsp2p node counts every other node as a member. */
async function converged(ts: readonly Ts[], gos: readonly GoPeer[]): Promise<void> {
  const total = ts.length + gos.length;
  for (const x of ts) {
    await waitFor(() => x.node.members().length === total - 1, {
      message: () =>
        `${label(x)} to see ${total - 1} members, has ${x.node
          .members()
          .map((m) => addressOf(m))
          .join(', ')}`,
    });
  }
}

/** Whether `x` received `body` from `from`. */
function receivedBy(x: Ts | GoPeer, body: string): boolean {
  if (x instanceof GoPeer) return x.messages(body).length === 1;
  return x.got.filter((m) => m.text === body).length === 1;
}

/** Every node broadcasts and sends a direct message to every other; all of it arrives. */
async function everyoneReachesEveryone(ts: readonly Ts[], gos: readonly GoPeer[]): Promise<void> {
  const all: (Ts | GoPeer)[] = [...ts, ...gos];
  if (all.length < 2) return; // a node alone has nobody to reach
  for (const sender of all) {
    const body = text(`broadcast from ${label(sender)}`);
    if (sender instanceof GoPeer) {
      const r = await sender.broadcast(body);
      assert.equal(r.error, undefined, `${label(sender)} broadcast`);
    } else {
      const r = await sender.node.broadcast(body);
      assert.deepEqual(
        r.failed.map((f) => `${addressOf(f.peer)}: ${f.error.message}`),
        [],
        `${label(sender)} broadcast`,
      );
    }
    for (const receiver of all) {
      if (receiver === sender) continue;
      await waitFor(() => receivedBy(receiver, body), {
        message: `${label(receiver)} to get '${body}'`,
      });
    }
    for (const receiver of all) {
      if (receiver === sender) continue;
      const dm = text(`dm from ${label(sender)}`);
      if (sender instanceof GoPeer) {
        const port = receiver instanceof GoPeer ? receiver.self.port : receiver.node.self.port;
        // The chat's `dm PORT WORD`: one word; the library flavour names the address.
        const r = await sender.dm(sender.flavour === 'chat' ? port : `127.0.0.1:${port}`, dm);
        assert.equal(r.error, undefined, `${label(sender)} dm to ${label(receiver)}`);
      } else {
        const to = receiver instanceof GoPeer ? receiver.address : addressOf(receiver.node.self);
        const r = await sender.node.send(to, dm);
        assert.deepEqual(
          r.failed.map((f) => f.error.message),
          [],
          `${label(sender)} dm to ${label(receiver)}`,
        );
      }
      await waitFor(() => receivedBy(receiver, dm), { message: `${label(receiver)} to get '${dm}'` });
    }
  }
}

/** No gop2p chat holds a member that is not one of `alive` (a dead entry stops its broadcasts). */
function noDeadEntries(gos: readonly GoPeer[], ts: readonly Ts[]): void {
  const ports = new Set([...gos.map((g) => g.self.port), ...ts.map((x) => x.node.self.port)]);
  for (const go of gos) {
    for (const m of go.members) {
      assert.ok(ports.has(m.port), `${go.name} keeps a dead entry ${goName(m)}`);
    }
    assert.equal(go.members.length, ports.size - 1, `${go.name} knows ${go.members.map(goName).join(', ')}`);
  }
}

/** A tsp2p node leaves: every member takes its leave, no gop2p chat keeps it. */
async function tsLeaves(leaver: Ts, ts: readonly Ts[], gos: readonly GoPeer[]): Promise<void> {
  const seen = ts.map((x) =>
    onceEvent<[Peer]>(x.node, 'member:leave', { filter: (p) => p.id === leaver.node.id }),
  );
  const report = await leaver.node.disconnect();
  assert.deepEqual(
    report.failed.map((f) => `${addressOf(f.peer)}: ${f.error.message}`),
    [],
  );
  await Promise.all(seen);
  for (const go of gos) {
    assert.ok(
      !go.members.some((m) => m.port === leaver.node.self.port),
      `${go.name} still holds the tsp2p node that left: ${go.members.map(goName).join(', ')}`,
    );
  }
}

/** A gop2p chat leaves (`disconnect`): every tsp2p node sees it go. */
async function goLeaves(leaver: GoPeer, ts: readonly Ts[]): Promise<void> {
  const id = `127.0.0.1:${leaver.self.port}`;
  const seen = ts.map((x) => onceEvent<[Peer]>(x.node, 'member:leave', { filter: (p) => p.id === id }));
  const r = await leaver.disconnect();
  assert.equal(r.error, undefined);
  await Promise.all(seen);
}

/** A join order: it builds the network and returns its nodes. */
type Topology = (t: HasAfter) => Promise<{ ts: Ts[]; gos: GoPeer[] }>;

const TOPOLOGIES: Record<string, Topology> = {
  'a tsp2p node joins a Go chat': async (t) => {
    const g1 = await startGo(t);
    const t1 = await startTs(t);
    await t1.node.connect(g1.address);
    return { ts: [t1], gos: [g1] };
  },
  'a Go chat joins a tsp2p node with connect PORT': async (t) => {
    const t1 = await startTs(t);
    const g1 = await startGo(t);
    await goConnect(g1, t1);
    return { ts: [t1], gos: [g1] };
  },
  'a second Go chat joins through the tsp2p node': async (t) => {
    const t1 = await startTs(t);
    const g1 = await startGo(t);
    const g2 = await startGo(t);
    await goConnect(g1, t1);
    await goConnect(g2, t1);
    return { ts: [t1], gos: [g1, g2] };
  },
  '2 Go + 2 tsp2p, all joined through a Go chat': async (t) => {
    const g1 = await startGo(t);
    const g2 = await startGo(t);
    const t1 = await startTs(t);
    const t2 = await startTs(t);
    await goConnect(g2, g1);
    await t1.node.connect(g1.address);
    await t2.node.connect(g1.address);
    return { ts: [t1, t2], gos: [g1, g2] };
  },
  '2 Go + 2 tsp2p, all joined through a tsp2p node': async (t) => {
    const t1 = await startTs(t);
    const t2 = await startTs(t);
    const g1 = await startGo(t);
    const g2 = await startGo(t);
    await t2.node.connect(t1.node.self);
    await goConnect(g1, t1);
    await goConnect(g2, t1);
    return { ts: [t1, t2], gos: [g1, g2] };
  },
  // A program using the gop2p library names itself as it likes (here 127.0.0.1) and dials the
  // addresses it is given. (Mixing it with gop2p's chat fails between the two gop2p nodes
  // themselves: each knows the other by a name the other does not send.)
  'gop2p library users and tsp2p nodes, joined through each other': async (t) => {
    const t1 = await startTs(t);
    const lib1 = await startGo(t, 'library');
    const t2 = await startTs(t);
    const lib2 = await startGo(t, 'library');
    await goConnect(lib1, t1);
    await t2.node.connect(lib1.address);
    await goConnect(lib2, t2);
    return { ts: [t1, t2], gos: [lib1, lib2] };
  },
};

for (const [name, build] of Object.entries(TOPOLOGIES)) {
  test(`${name}: everyone reaches everyone`, async (t) => {
    const { ts, gos } = await build(t);
    await converged(ts, gos);
    noDeadEntries(gos, ts);
    await everyoneReachesEveryone(ts, gos);
  });

  test(`${name}: a tsp2p node leaves, the rest still reach each other`, async (t) => {
    const { ts, gos } = await build(t);
    await converged(ts, gos);
    const leaver = ts.at(-1)!;
    const rest = ts.slice(0, -1);
    await tsLeaves(leaver, rest, gos);
    noDeadEntries(gos, rest);
    await converged(rest, gos);
    await everyoneReachesEveryone(rest, gos);
  });

  test(`${name}: a Go chat leaves, the rest still reach each other`, async (t) => {
    const { ts, gos } = await build(t);
    await converged(ts, gos);
    const leaver = gos.at(-1)!;
    const rest = gos.slice(0, -1);
    await goLeaves(leaver, ts);
    noDeadEntries(rest, ts);
    await converged(ts, rest);
    await everyoneReachesEveryone(ts, rest);
  });
}

test('a tsp2p node refused by a gop2p peer reports it at once, naming the names it tried', async (t) => {
  const t1 = await startTs(t);
  const g1 = await startGo(t);
  await goConnect(g1, t1);
  await converged([t1], [g1]);
  // The chat forgets the tsp2p node (as after its own restart): it now refuses it for good.
  g1.members.length = 0;
  const report = await t1.node.broadcast('nobody hears this');
  assert.equal(report.failed.length, 1);
  const failure = report.failed[0]!;
  assert.equal(failure.error.code, 'ERR_PEER_REFUSED');
  assert.match(failure.error.message, /403 Peer not registered: .* knows this node by none of /);
  assert.equal(g1.messages('nobody hears this').length, 0);
});

const CHAT = fileURLToPath(new URL('../helpers/gop2p-chat.ts', import.meta.url));

test('a kill -9 of a Go chat process: every tsp2p node declares it dead; the rest still talk', async (t) => {
  const t1 = await startTs(t);
  const t2 = await startTs(t);
  await t2.node.connect(t1.node.self);
  const child = spawn(process.execPath, ['--import', 'tsx', CHAT], { stdio: ['pipe', 'pipe', 'inherit'] });
  t.after(() => child.kill('SIGKILL'));
  const lines: string[] = [];
  child.stdout.setEncoding('utf8');
  child.stdout.on('data', (chunk: string) => lines.push(...chunk.split('\n').filter((l) => l !== '')));
  const started = await waitFor(
    () => lines.map((l) => /^\[INFO\] started on http:\/\/0\.0\.0\.0:(\d+)$/.exec(l)).find((m) => m),
    {
      message: 'the chat double to start',
    },
  );
  const port = Number(started[1]);
  const g2 = await startGo(t);
  await goConnect(g2, t1);
  child.stdin.write(`connect ${t1.node.self.port}\n`);
  const id = `127.0.0.1:${port}`;
  await waitFor(() => [t1, t2].every((x) => x.node.members().some((m) => m.id === id)), {
    message: 'both tsp2p nodes to know the chat process',
  });
  await waitFor(() => g2.isMember({ address: '0.0.0.0', port }) || lines.length > 1, {
    message: 'the chat process to have joined g2 too',
  });
  const body = text('hello process');
  const r = await t2.node.broadcast(body);
  assert.deepEqual(r.failed, []);
  await waitFor(() => lines.some((l) => l === `[MSG] (0.0.0.0:${t2.node.self.port}) -> ${body}`), {
    message: 'the chat process to print the message',
  });

  const failed = [t1, t2].map((x) =>
    onceEvent<[Peer]>(x.node, 'member:fail', { filter: (p) => p.id === id, timeoutMs: 60_000 }),
  );
  child.kill('SIGKILL');
  await Promise.all(failed);
  // The rest still talk, both ways.
  await everyoneReachesEveryone([t1, t2], []);
  const fromGo = text('go after the kill');
  // g2's own broadcast stops at the dead chat if it comes first in its list (gop2p's own
  // behaviour); a direct message to each tsp2p node does not pass it.
  for (const x of [t1, t2]) {
    const dm = await g2.dm(x.node.self.port, fromGo);
    assert.equal(dm.error, undefined);
    await waitFor(() => x.got.some((m) => m.text === fromGo && m.from.port === g2.self.port), {
      message: `${label(x)} to hear g2`,
    });
  }
  const after = await t1.node.broadcast(text('after'));
  assert.deepEqual(after.failed, []);
});

/** A logger that keeps its lines. */
function recordingLogger(): { lines: string[]; logger: Logger } {
  const lines: string[] = [];
  const keep = (level: string) => (message: string) => {
    lines.push(`${level} ${message}`);
  };
  return {
    lines,
    logger: { debug: keep('debug'), info: keep('info'), warn: keep('warn'), error: keep('error') },
  };
}

test('without compat mode: a refused gop2p peer is logged and reported once, with how to allow it', async (t) => {
  const { lines, logger } = recordingLogger();
  const plain = await startNode(t, { logger });
  const refusals: PeerRefusal[] = [];
  plain.on('peer:refused', (r) => refusals.push(r));
  const g1 = await startGo(t);
  for (let i = 0; i < 3; i++) {
    const result = await g1.connect(plain.self.port);
    assert.match(result.error ?? '', /401 http status received/);
  }
  await waitFor(() => refusals.length === 1, { message: 'one peer:refused event' });
  assert.deepEqual(
    { address: refusals[0]!.address, port: refusals[0]!.port, reason: refusals[0]!.reason },
    { address: '0.0.0.0', port: g1.self.port, reason: 'gop2p-compat-off' },
  );
  const logged = lines.filter((l) => l.includes(`refused gop2p node 0.0.0.0:${g1.self.port}`));
  assert.equal(logged.length, 1, 'one line per peer, not one per request');
  assert.match(logged[0]!, /compat: 'gop2p'/);
  assert.deepEqual(plain.members(), []);
});

test('without compat mode: a gop2p member learnt through gossip is not admitted, with a logged reason', async (t) => {
  const { lines, logger } = recordingLogger();
  const compat = await startTs(t);
  const plain = await startNode(t, { logger });
  await plain.connect(compat.node.self);
  const g1 = await startGo(t);
  await goConnect(g1, compat);
  await waitFor(() => lines.some((l) => l.startsWith('warn not admitting a gop2p member')), {
    message: 'the plain node to hear of the gop2p member and refuse it',
  });
  assert.deepEqual(
    plain.members().map((m) => m.id),
    [compat.node.id],
  );
  // The compat node and the gop2p chat still talk both ways.
  await everyoneReachesEveryone([compat], [g1]);
});
