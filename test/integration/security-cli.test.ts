/**
 * The command line's security flags, on the real `tsp2p` command: the key kept in a private
 * data directory (one key file per name, the id stable across runs), `--identity FILE`,
 * and `--secret`: nodes with the same secret join, a node with another one cannot.
 */

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type TestContext, test } from 'node:test';
import { cliEnv, runCli, startCli, waitForEvent } from '../helpers/cli-process.js';

const SECRET = 'a secret for the cli test';

function tempDir(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'tsp2p-cli-sec-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function mode(path: string): string {
  return (statSync(path).mode & 0o777).toString(8);
}

/** Starts `tsp2p node` with `args`, and resolves with it and its `listening` event. */
async function startNodeCli(t: TestContext, name: string, args: string[], env: NodeJS.ProcessEnv) {
  const p = startCli(t, name, ['node', ...args], env);
  const ev = await waitForEvent(p, 'listening');
  return { p, id: ev.id as string, address: `${ev.address}:${ev.port}` };
}

// Issue 17 changed which file holds a node's key: it follows the name (or the port), no
// longer the order nodes start in (identity.pem, identity-2.pem); and the folder of an explicit
// --identity is no longer created. The modes checked here are unchanged.
test('the key lives in a private data directory; the id stays across runs; one key per node', async (t) => {
  const data = tempDir(t);
  const env = cliEnv({ XDG_DATA_HOME: data });
  const first = await startNodeCli(t, 'first', ['--name', 'first'], env);
  const dir = join(data, 'tsp2p');
  assert.equal(mode(dir), '700');
  assert.equal(mode(join(dir, 'name-first.pem')), '600');
  // A second node running at the same time has another name, and so another key file.
  const second = await startNodeCli(t, 'second', ['--name', 'second'], env);
  assert.notEqual(second.id, first.id);
  assert.equal(mode(join(dir, 'name-second.pem')), '600');
  first.p.end();
  second.p.end();
  assert.equal(await first.p.waitExit(), 0);
  assert.equal(await second.p.waitExit(), 0);
  // Run again: the same id.
  const again = await startNodeCli(t, 'again', ['--name', 'first'], env);
  assert.equal(again.id, first.id);
  again.p.end();
  assert.equal(await again.p.waitExit(), 0);

  // --identity FILE: created there (in a folder that exists), mode 0600, and reused.
  const file = join(tempDir(t), 'me.pem');
  const own = await startNodeCli(t, 'own', ['--identity', file], env);
  assert.equal(mode(file), '600');
  own.p.end();
  await own.p.waitExit();
  const ownAgain = await startNodeCli(t, 'own again', ['--identity', file], env);
  assert.equal(ownAgain.id, own.id);
  ownAgain.p.end();
  await ownAgain.p.waitExit();
});

test('--secret: the same secret joins, another secret cannot; a short one is a usage error', async (t) => {
  const env = cliEnv({ XDG_DATA_HOME: tempDir(t) });
  const a = await startNodeCli(t, 'a', ['--secret', SECRET], env);
  const b = await startNodeCli(
    t,
    'b',
    ['--secret', `${SECRET},a-newer-secret-0000`, '--join', a.address],
    env,
  );
  const joined = await waitForEvent(b.p, 'connected');
  assert.deepEqual(
    (joined.members as { id: string }[]).map((m) => m.id),
    [a.id],
  );
  const c = await startNodeCli(t, 'c', ['--secret', 'a different secret!', '--join', a.address], env);
  const refused = await waitForEvent(c.p, 'error');
  assert.equal(refused.code, 'ERR_CONNECT_FAILED');
  assert.match(String(refused.message), /401/);

  const short = await runCli(t, ['node', '--secret', 'short'], env);
  assert.equal(short.code, 2);
  assert.equal(short.stderr.length, 1);
  assert.match(short.stderr[0]!, /--secret needs at least 16 characters/);

  const help = await runCli(t, ['--help'], env);
  assert.equal(help.code, 0);
  const text = help.stdout.join('\n');
  assert.match(text, /--secret S/);
  assert.match(text, /--identity F/);
});
