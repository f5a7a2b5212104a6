/**
 * Which key a CLI node runs with (issue 17): the key follows the name, or the port when there
 * is no name, whatever the order nodes start in; a second node with the same name is refused
 * with a way out; a lock of a dead process is taken over; with neither name nor port the key is
 * new each run and kept nowhere; the folder of an explicit `--identity` must exist.
 */

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type TestContext, test } from 'node:test';
import { cliEnv, runCli, startCli, waitForEvent } from '../helpers/cli-process.js';

function tempDir(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'tsp2p-cli-id-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Runs `tsp2p node ARGS` until it listens, then ends it; resolves with its id. */
async function idOf(t: TestContext, args: string[], env: NodeJS.ProcessEnv): Promise<string> {
  const p = startCli(t, args.join(' '), ['node', ...args], env);
  const ev = await waitForEvent(p, 'listening');
  p.end();
  assert.equal(await p.waitExit(), 0, p.dump());
  return ev.id as string;
}

test('the key follows the name, or the port, not the order nodes start in', async (t) => {
  const data = tempDir(t);
  const env = cliEnv({ XDG_DATA_HOME: data });
  const linus = await idOf(t, ['--name', 'linus'], env);
  const sec = await idOf(t, ['--name', 'sec'], env);
  assert.notEqual(linus, sec);
  // Started in the other order, each name keeps its own id.
  assert.equal(await idOf(t, ['--name', 'sec'], env), sec);
  assert.equal(await idOf(t, ['--name', 'linus'], env), linus);
  // A name with characters a file name cannot hold still gets a key file of its own.
  const slashed = await idOf(t, ['--name', 'a/b c'], env);
  assert.equal(await idOf(t, ['--name', 'a/b c'], env), slashed);
  assert.notEqual(slashed, linus);

  // No name: the port decides.
  const free = await runCli(t, ['node', '--port', '0'], env); // only to find a free port
  const port = JSON.parse(free.stdout[0]!).port as number;
  const byPort = await idOf(t, ['--port', String(port)], env);
  assert.equal(await idOf(t, ['--port', String(port)], env), byPort);
  assert.notEqual(byPort, linus);

  // Neither: a new key each run, kept nowhere.
  const before = readdirSync(join(data, 'tsp2p')).sort();
  const once = await idOf(t, [], env);
  const twice = await idOf(t, [], env);
  assert.notEqual(once, twice);
  assert.deepEqual(readdirSync(join(data, 'tsp2p')).sort(), before);
  // Every lock was released on exit.
  assert.deepEqual(
    before.filter((f) => f.endsWith('.lock')),
    [],
  );
});

test('a second node with the same name is refused; a lock left by a dead process is not', async (t) => {
  const data = tempDir(t);
  const env = cliEnv({ XDG_DATA_HOME: data });
  const first = startCli(t, 'first ada', ['chat', '--name', 'ada'], env);
  await first.waitFor(/^listening on /);
  const second = await runCli(t, ['chat', '--name', 'ada'], env);
  assert.equal(second.code, 2);
  assert.deepEqual(second.stdout, []);
  assert.equal(second.stderr.length, 1, second.stderr.join('\n'));
  assert.match(
    second.stderr[0]!,
    new RegExp(
      `^tsp2p: another tsp2p on this machine \\(pid ${first.child.pid}\\) runs with the name 'ada'.*choose another --name$`,
    ),
  );
  first.end();
  assert.equal(await first.waitExit(), 0);

  // A lock whose process is gone (a crash, kill -9) is taken over.
  const dead = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], {
    encoding: 'utf8',
  });
  const lock = join(data, 'tsp2p', 'name-ada.pem.lock');
  writeFileSync(lock, dead.stdout);
  const again = startCli(t, 'ada again', ['chat', '--name', 'ada'], env);
  await again.waitFor(/^listening on /);
  again.end();
  assert.equal(await again.waitExit(), 0);
  assert.ok(!existsSync(lock), 'the lock is removed on exit');
});

test('the folder of an explicit --identity must exist; it is never created', async (t) => {
  const dir = tempDir(t);
  const missing = join(dir, 'typo', 'dir', 'key.pem');
  const res = await runCli(t, ['chat', '--identity', missing], cliEnv({ XDG_DATA_HOME: dir }));
  assert.equal(res.code, 2);
  assert.equal(res.stderr.length, 1);
  assert.match(res.stderr[0]!, /--identity: the folder .*typo\/dir does not exist/);
  assert.ok(!existsSync(join(dir, 'typo')), 'no folder was created');
  // In a folder that exists, the file is created, and used again.
  const file = join(dir, 'key.pem');
  const env = cliEnv({ XDG_DATA_HOME: dir });
  const id = await idOf(t, ['--identity', file], env);
  assert.ok(existsSync(file));
  assert.equal(await idOf(t, ['--identity', file], env), id);
});
