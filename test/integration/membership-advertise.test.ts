/**
 * Bind and advertise differ (issue 16, case 11), as in a container with a published port or a
 * node behind NAT: a node listens on one address, is reachable only through a forwarder at
 * another, and advertises that one (`advertise`, `--advertise`).
 *
 * - On loopback, with real `tsp2p node` processes: the members join through the forwarder,
 *   show the node at its advertised address only, and messages flow both ways.
 * - Across network namespaces (root and iproute2; skipped with the reason otherwise): the node
 *   listens on its own namespace's loopback, so no other host can reach it but through the
 *   forwarder, and its requests leave from a third address (its namespace's own): every other
 *   host still shows it at the advertised address, and it is never suspected.
 */

import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { type CliEvent, events, runCli, startListening, waitForEvent } from '../helpers/cli-process.js';
import { memberEvents, spawnCluster, waitForViews } from '../helpers/cluster.js';
import { createNetnsLab, ip, type NetnsLab, NetnsUnavailableError } from '../helpers/netns.js';
import { PeerCommandError, type PeerProcess } from '../helpers/spawn-peer.js';
import { freePort, startForwarder } from '../helpers/tcp-forward.js';
import { waitFor } from '../helpers/wait.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const FORWARD = fileURLToPath(new URL('../helpers/tcp-forward.ts', import.meta.url));

/** Every `host:port` an event of a `tsp2p node` process names (members, senders). */
function addressesIn(list: readonly CliEvent[]): Set<string> {
  const found = new Set<string>();
  const visit = (v: unknown): void => {
    if (Array.isArray(v)) v.forEach(visit);
    else if (v !== null && typeof v === 'object') {
      const o = v as Record<string, unknown>;
      if (typeof o.address === 'string' && typeof o.port === 'number') found.add(`${o.address}:${o.port}`);
      for (const x of Object.values(o)) visit(x);
    }
  };
  list.forEach(visit);
  return found;
}

test('tsp2p node --advertise: members reach the node at its advertised address only', async (t) => {
  const bound = await freePort();
  const forwarder = await startForwarder('127.0.0.1', 0, '127.0.0.1', bound);
  t.after(() => forwarder.close());
  const advertised = `127.0.0.1:${forwarder.port}`;

  const { p: a, address: aSays } = await startListening(t, 'a', [
    'node',
    '--name',
    'a',
    '--port',
    String(bound),
    '--advertise',
    advertised,
  ]);
  assert.equal(aSays, advertised, 'the node introduces itself at its advertised address');
  const { p: b, address: bAddress } = await startListening(t, 'b', [
    'node',
    '--name',
    'b',
    '--join',
    advertised,
  ]);
  const bConnected = await waitForEvent(b, 'connected');
  assert.deepEqual(
    (bConnected.members as { address: string; port: number }[]).map((m) => `${m.address}:${m.port}`),
    [advertised],
  );
  // c joins through b, and learns of a from b's member list.
  const { p: c, address: cAddress } = await startListening(t, 'c', [
    'node',
    '--name',
    'c',
    '--join',
    bAddress,
  ]);
  await waitForEvent(c, 'member:join', (ev) => `${ev.address}:${ev.port}` === advertised);
  await waitForEvent(a, 'member:join', (ev) => `${ev.address}:${ev.port}` === cAddress);

  // Messages both ways: to a through the forwarder, from a straight to the others.
  c.send('from c');
  await waitForEvent(a, 'message', (ev) => ev.text === 'from c');
  a.send('from a');
  for (const p of [b, c]) {
    const got = await waitForEvent(p, 'message', (ev) => ev.text === 'from a');
    const from = got.from as { address: string; port: number };
    assert.equal(`${from.address}:${from.port}`, advertised, 'a message from a names its advertised address');
  }
  assert.ok(forwarder.connections > 0, 'the members reached a through the forwarder');

  // Nobody ever named a by the address it listens on, and nobody suspected it.
  for (const p of [b, c]) {
    assert.ok(!addressesIn(events(p)).has(`127.0.0.1:${bound}`), `${p.name} never saw a's bound address`);
    assert.deepEqual(
      events(p).filter((ev) => ev.event === 'member:suspect' || ev.event === 'member:fail'),
      [],
      `${p.name}: no suspicion`,
    );
  }
});

test('tsp2p --advertise refuses an address others cannot reach, in one line', async (t) => {
  for (const [value, expect] of [
    ['0.0.0.0:7000', /^invalid --advertise: '0\.0\.0\.0:7000' is not an address others can reach/],
    ['nowhere', /^--advertise: invalid address 'nowhere'/],
    ['10.0.0.1:0', /^--advertise: .*port must be a number from 1 to 65535/],
  ] as const) {
    const r = await runCli(t, ['node', '--no-input', '--advertise', value]);
    assert.equal(r.code, 2, `exit code for ${value}: ${r.stderr.join(' | ')}`);
    const lines = r.stderr.filter((l) => l.trim() !== '');
    assert.equal(lines.length, 1, `one line for ${value}: ${r.stderr.join(' | ')} / ${r.stdout.join(' | ')}`);
    assert.match(lines[0]!.replace(/^tsp2p: /, ''), expect);
  }
});

test('across namespaces: a node reachable only through a forwarder is seen at its advertised address', async (t) => {
  let lab: NetnsLab;
  try {
    lab = await createNetnsLab(t, 3);
  } catch (err) {
    if (!(err instanceof NetnsUnavailableError)) throw err;
    t.skip(err.message);
    return;
  }
  // Host 2 is the container host: its node listens on its namespace's loopback; a forwarder
  // on a second address of the host (the published one) is the only way in.
  const host = lab.hosts[2]!;
  const published = `${lab.subnet}.102`;
  await ip('-n', host.ns, 'addr', 'add', `${published}/24`, 'dev', 'eth0');
  const forwarder = await startNamespaceForwarder(t, host.ns, published, 17_000, '127.0.0.1', 7_000);
  const advertised = `${published}:17000`;

  const peers = await spawnCluster(
    t,
    3,
    { preset: 'local', requestTimeoutMs: 3_000 },
    {
      label: 'host',
      perPeer: (i) =>
        i === 2 ? { host: '127.0.0.1', port: 7_000, advertise: advertised } : { host: lab.hosts[i]!.address },
      wrap: (i) => lab.wrap(i),
    },
  );
  const [entry, second, hidden] = peers as [PeerProcess, PeerProcess, PeerProcess];
  assert.equal(`${hidden.self.address}:${hidden.self.port}`, advertised);
  const connect = (p: PeerProcess, to: string) =>
    waitFor(
      () =>
        p.connect(to).then(
          () => true,
          (err: unknown) => {
            if (err instanceof PeerCommandError && err.code === 'ERR_CONNECT_FAILED') return false;
            throw err;
          },
        ),
      { timeoutMs: 30_000, intervalMs: 200, message: `${p.label} to connect to ${to}` },
    );
  // The hidden node joins through the entry; the second host joins through the hidden node's
  // published address, as a newcomer would.
  await connect(hidden, entry.address);
  await connect(second, advertised);
  await waitForViews(peers, { timeoutMs: 60_000, message: 'every host to hold the 2 others alive' });

  for (const p of [entry, second]) {
    const m = (await p.memberStates()).find((x) => x.peer.id === hidden.self.id);
    assert.equal(`${m?.peer.address}:${m?.peer.port}`, advertised, `${p.label} shows the advertised address`);
  }
  const report = await hidden.broadcast('from the hidden node');
  assert.deepEqual(report.failed, []);
  assert.equal(report.delivered.length, 2);
  const back = await second.broadcast('to everyone');
  assert.deepEqual(back.failed, [], 'the hidden node is reached through the forwarder');
  await waitFor(async () => (await hidden.received()).includes('to everyone'), {
    timeoutMs: 20_000,
    message: 'the hidden node to receive the broadcast',
  });
  assert.ok(forwarder.connections() > 0, 'the other hosts went through the forwarder');
  for (const p of [entry, second]) {
    assert.deepEqual(memberEvents(p, hidden.self.id, 'member:suspect'), [], `${p.label} never suspected it`);
    assert.deepEqual(memberEvents(p, hidden.self.id, 'member:fail'), []);
  }
});

/** Runs the forwarder inside namespace `ns`; resolves once it listens. Killed when `t` ends. */
async function startNamespaceForwarder(
  t: { after(fn: () => unknown): void },
  ns: string,
  listenHost: string,
  listenPort: number,
  targetHost: string,
  targetPort: number,
): Promise<{ connections(): number }> {
  const env = { ...process.env };
  delete env.NODE_TEST_CONTEXT;
  delete env.NODE_OPTIONS;
  const child: ChildProcess = spawn(
    'ip',
    [
      'netns',
      'exec',
      ns,
      process.execPath,
      '--import',
      'tsx',
      FORWARD,
      listenHost,
      String(listenPort),
      targetHost,
      String(targetPort),
    ],
    { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  t.after(() => child.kill('SIGKILL'));
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (s: string) => {
    stderr += s;
  });
  let connections = 0;
  const ready = new Promise<void>((resolve, reject) => {
    createInterface({ input: child.stdout! }).on('line', (line) => {
      if (line.startsWith('ready ')) resolve();
      else if (line === 'conn') connections++;
    });
    child.once('exit', (code) => reject(new Error(`the forwarder exited (code ${code}): ${stderr.trim()}`)));
  });
  await ready;
  return { connections: () => connections };
}
