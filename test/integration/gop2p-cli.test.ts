/**
 * `tsp2p chat --gop2p` processes with gop2p's chat, played by the chat double as a separate process
 * (test/helpers/gop2p-chat.ts: stdin lines as the real chat's, `[MSG] (ADDR:PORT) -> TEXT` out), in
 * every join order of `/work/shared/gop2p-wire/real-chat.md`. Needs `npm run build`.
 */

import assert from 'node:assert/strict';
import { type TestContext, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { CliProcess, cliEnv, startListening, WAIT_MS } from '../helpers/cli-process.js';

const CHAT_DOUBLE = fileURLToPath(new URL('../helpers/gop2p-chat.ts', import.meta.url));

/** A gop2p chat double process. */
interface Go {
  readonly kind: 'go';
  readonly p: CliProcess;
  readonly port: number;
}

/** A `tsp2p chat --gop2p` process. */
interface Ts {
  readonly kind: 'ts';
  readonly p: CliProcess;
  readonly port: number;
  readonly address: string;
}

type Chat = Go | Ts;

async function startGo(t: TestContext, name: string): Promise<Go> {
  const env = cliEnv();
  const p = new CliProcess(name, [], env, ['--import', 'tsx', CHAT_DOUBLE]);
  t.after(async () => {
    p.kill();
    await p.exited;
  });
  const { match } = await p.waitFor(/^\[INFO\] started on http:\/\/0\.0\.0\.0:(\d+)$/);
  return { kind: 'go', p, port: Number(match![1]) };
}

async function startTs(t: TestContext, name: string, extra: readonly string[] = ['--gop2p']): Promise<Ts> {
  const { p, address } = await startListening(t, name, ['chat', '--port', '0', '--name', name, ...extra]);
  return { kind: 'ts', p, port: Number(address.slice(address.lastIndexOf(':') + 1)), address };
}

/** The chat's `connect PORT`; resolves once its join is done. */
async function goConnect(go: Go, to: Chat): Promise<void> {
  const since = go.p.mark();
  go.p.send(`connect ${to.port}`);
  await go.p.waitFor(/^\[INFO\] connected: \d+ members$/, { since });
}

/** `/connect` of a tsp2p chat; resolves once it has joined. */
async function tsConnect(ts: Ts, to: Chat): Promise<void> {
  const since = ts.p.mark();
  ts.p.send(`/connect 127.0.0.1:${to.port}`);
  await ts.p.waitFor(/^connected through /, { since });
}

/** Waits until a tsp2p chat's `/peers` lists `n` members. */
async function tsMembers(ts: Ts, n: number): Promise<void> {
  const deadline = Date.now() + WAIT_MS;
  for (;;) {
    const since = ts.p.mark();
    ts.p.send('/peers');
    const { line } = await ts.p.waitFor(/^(\d+) members?:$|^no members yet/, { since });
    const want = n === 0 ? /^no members yet/ : new RegExp(`^${n} members?:$`);
    if (want.test(line)) return;
    if (Date.now() > deadline) assert.fail(`${ts.p.name} has ${line}, not ${n} members\n${ts.p.dump()}`);
    await ts.p.waitFor(() => true, { since: ts.p.mark(), timeoutMs: 500 }).catch(() => undefined);
  }
}

let counter = 0;
function word(prefix: string): string {
  counter += 1;
  return `${prefix}${counter}`;
}

/** Waits until `to` shows `text` from `from`. */
async function shows(to: Chat, from: Chat, text: string): Promise<void> {
  if (to.kind === 'go') {
    // The real chat prints a sender as it named itself: a tsp2p node towards it is 0.0.0.0.
    await to.p.waitFor(`[MSG] (0.0.0.0:${from.port}) -> ${text}`);
  } else {
    await to.p.waitFor((l) => l.startsWith(`127.0.0.1:${from.port}`) && l.endsWith(`: ${text}`));
  }
}

/** Every chat broadcasts and sends a direct message to every other; all of it shows. */
async function everyoneReachesEveryone(chats: readonly Chat[]): Promise<void> {
  if (chats.length < 2) return;
  for (const sender of chats) {
    const text = word(`all-${sender.p.name}-`);
    sender.p.send(text);
    for (const to of chats) if (to !== sender) await shows(to, sender, text);
    for (const to of chats) {
      if (to === sender) continue;
      const dm = word(`dm-${sender.p.name}-`);
      sender.p.send(sender.kind === 'go' ? `dm ${to.port} ${dm}` : `/dm 127.0.0.1:${to.port} ${dm}`);
      await shows(to, sender, dm);
    }
  }
  for (const c of chats) {
    assert.ok(
      !c.p.lines.stdout.some((l) => l.startsWith('[ERROR]')),
      `${c.p.name} printed an error\n${c.p.dump()}`,
    );
    assert.ok(
      !c.p.lines.stderr.some((l) => /did not get it|error:/.test(l)),
      `${c.p.name} reported a failure\n${c.p.dump()}`,
    );
  }
}

async function converged(chats: readonly Chat[]): Promise<void> {
  for (const c of chats) if (c.kind === 'ts') await tsMembers(c, chats.length - 1);
}

/** A tsp2p chat leaves (`/disconnect`): every tsp2p chat sees it go. */
async function tsLeaves(leaver: Ts, rest: readonly Chat[]): Promise<void> {
  const since = leaver.p.mark();
  leaver.p.send('/disconnect');
  await leaver.p.waitFor(/^left the network/, { since });
  for (const c of rest)
    if (c.kind === 'ts') await c.p.waitFor(`127.0.0.1:${leaver.port} (${leaver.p.name}) left`);
}

/** A gop2p chat leaves (`disconnect`): every tsp2p chat sees it go. */
async function goLeaves(leaver: Go, rest: readonly Chat[]): Promise<void> {
  const since = leaver.p.mark();
  leaver.p.send('disconnect');
  await leaver.p.waitFor('[INFO] disconnected', { since });
  for (const c of rest) if (c.kind === 'ts') await c.p.waitFor(`127.0.0.1:${leaver.port} left`);
}

type Topology = (t: TestContext) => Promise<Chat[]>;

const TOPOLOGIES: Record<string, Topology> = {
  'a tsp2p chat joins a Go chat': async (t) => {
    const g1 = await startGo(t, 'g1');
    const t1 = await startTs(t, 't1');
    await tsConnect(t1, g1);
    return [t1, g1];
  },
  'a Go chat joins a tsp2p chat with connect PORT': async (t) => {
    const t1 = await startTs(t, 't1');
    const g1 = await startGo(t, 'g1');
    await goConnect(g1, t1);
    return [t1, g1];
  },
  'a second Go chat joins through the tsp2p chat': async (t) => {
    const t1 = await startTs(t, 't1');
    const g1 = await startGo(t, 'g1');
    const g2 = await startGo(t, 'g2');
    await goConnect(g1, t1);
    await goConnect(g2, t1);
    return [t1, g1, g2];
  },
  '2 Go + 2 tsp2p through a Go chat': async (t) => {
    const g1 = await startGo(t, 'g1');
    const g2 = await startGo(t, 'g2');
    const t1 = await startTs(t, 't1');
    const t2 = await startTs(t, 't2');
    await goConnect(g2, g1);
    await tsConnect(t1, g1);
    await tsConnect(t2, g1);
    return [t1, t2, g1, g2];
  },
  '2 Go + 2 tsp2p through a tsp2p chat': async (t) => {
    const t1 = await startTs(t, 't1');
    const t2 = await startTs(t, 't2');
    const g1 = await startGo(t, 'g1');
    const g2 = await startGo(t, 'g2');
    await tsConnect(t2, t1);
    await goConnect(g1, t1);
    await goConnect(g2, t1);
    return [t1, t2, g1, g2];
  },
};

for (const [name, build] of Object.entries(TOPOLOGIES)) {
  for (const first of ['tsp2p', 'Go'] as const) {
    test(`CLI, ${name}: everyone reaches everyone; a ${first} chat leaves, then one of the other kind`, async (t) => {
      let rest = await build(t);
      await converged(rest);
      await everyoneReachesEveryone(rest);
      for (const kind of first === 'tsp2p' ? (['ts', 'go'] as const) : (['go', 'ts'] as const)) {
        const leaver = rest.filter((c) => c.kind === kind).at(-1);
        if (leaver === undefined || rest.length < 2) break;
        rest = rest.filter((c) => c !== leaver);
        if (leaver.kind === 'ts') await tsLeaves(leaver, rest);
        else await goLeaves(leaver, rest);
        await converged(rest);
        await everyoneReachesEveryone(rest);
      }
    });
  }
}

test('CLI, a kill -9 of a Go chat: the tsp2p chats declare it dead and still talk', async (t) => {
  const t1 = await startTs(t, 't1');
  const t2 = await startTs(t, 't2');
  const g1 = await startGo(t, 'g1');
  await tsConnect(t2, t1);
  await goConnect(g1, t1);
  await converged([t1, t2, g1]);
  await everyoneReachesEveryone([t1, t2, g1]);
  g1.p.kill('SIGKILL');
  for (const c of [t1, t2]) {
    await c.p.waitFor(`127.0.0.1:${g1.port} failed and was removed`, { timeoutMs: 60_000 });
  }
  await converged([t1, t2]);
  await everyoneReachesEveryone([t1, t2]);
});

test('CLI, a chat keeps reading input while a send is pending', async (t) => {
  const t1 = await startTs(t, 't1');
  const t2 = await startTs(t, 't2');
  await tsConnect(t2, t1);
  await converged([t1, t2]);
  // t2 stops answering (its requests hang, as a frozen machine's would): t1's broadcast to it
  // stays pending until t2 is declared dead or the delivery deadline passes.
  t2.p.child.kill('SIGSTOP');
  t.after(() => t2.p.child.kill('SIGCONT'));
  t1.p.send('to a frozen peer');
  const since = t1.p.mark();
  t1.p.send('/peers');
  await t1.p.waitFor(/^you: /, { since, timeoutMs: 10_000 });
});

test('CLI without --gop2p: a gop2p chat is refused visibly, and joining one names --gop2p', async (t) => {
  const plain = await startTs(t, 'plain', []);
  const g1 = await startGo(t, 'g1');
  g1.p.send(`connect ${plain.port}`);
  await g1.p.waitFor(/^\[ERROR\]: .*401 http status received/);
  const { line } = await plain.p.waitFor(/refused gop2p node 0\.0\.0\.0:\d+/, { stream: 'stderr' });
  assert.match(line, /--gop2p/);
  assert.doesNotMatch(line, /compat: 'gop2p'/);

  const g2 = await startGo(t, 'g2');
  const since = plain.p.mark('stderr');
  plain.p.send(`/connect 127.0.0.1:${g2.port}`);
  const { line: joinError } = await plain.p.waitFor(/gop2p node/, { stream: 'stderr', since });
  assert.match(joinError, /--gop2p/);
  assert.doesNotMatch(joinError, /compat: 'gop2p'/);
});
