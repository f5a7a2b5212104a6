/**
 * The `tsp2p` command outside a network: help, version, usage errors (exit 2), a port in use
 * (exit 2), and a repository that was never built.
 */

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, type TestContext, test } from 'node:test';
import { BIN, cliEnv, ROOT, runCli } from '../helpers/cli-process.js';

const VERSION = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;

async function occupiedPort(t: TestContext): Promise<number> {
  const server: Server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  t.after(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return (server.address() as { port: number }).port;
}

describe('tsp2p help and version', () => {
  test('--help prints a usage with the commands, the flags and a quick start', async (t) => {
    const { code, stdout, stderr } = await runCli(t, ['--help']);
    assert.equal(code, 0);
    assert.deepEqual(stderr, []);
    const text = stdout.join('\n');
    for (const expected of ['tsp2p chat', 'tsp2p node', '--host', '--port', '--join', '--name', '--gop2p']) {
      assert.ok(text.includes(expected), `--help lacks ${expected}:\n${text}`);
    }
    assert.match(text, /npx tsp2p chat --join 127\.0\.0\.1:\d+/);
  });

  test('no arguments prints the same usage', async (t) => {
    const [bare, help] = await Promise.all([runCli(t, []), runCli(t, ['--help'])]);
    assert.equal(bare.code, 0);
    assert.deepEqual(bare.stdout, help.stdout);
  });

  test('chat --help, help chat and node --help describe their command', async (t) => {
    const chat = await runCli(t, ['chat', '--help']);
    assert.equal(chat.code, 0);
    for (const cmd of ['/connect', '/disconnect', '/dm', '/peers', '/help', '/exit']) {
      assert.ok(chat.stdout.join('\n').includes(cmd), `chat --help lacks ${cmd}`);
    }
    assert.deepEqual((await runCli(t, ['help', 'chat'])).stdout, chat.stdout);
    const node = await runCli(t, ['node', '-h']);
    assert.equal(node.code, 0);
    assert.match(node.stdout.join('\n'), /"event":"listening"/);
    assert.match(node.stdout.join('\n'), /\{"to":"H:P","text":"\.\.\."\}/);
    // Issue 17: the flags and input forms the help did not tell.
    assert.match(node.stdout.join('\n'), /--no-input/);
    assert.match(node.stdout.join('\n'), /a member's name/);
    assert.match(node.stdout.join('\n'), /never sent/);
    assert.match(chat.stdout.join('\n'), /--no-time/);
    assert.match(chat.stdout.join('\n'), /me \(page\)/);
  });

  test('--version prints the version from package.json', async (t) => {
    const { code, stdout, stderr } = await runCli(t, ['--version']);
    assert.equal(code, 0);
    assert.deepEqual(stdout, [VERSION]);
    assert.deepEqual(stderr, []);
    assert.deepEqual((await runCli(t, ['-v'])).stdout, [VERSION]);
  });
});

/** A folder that does not exist (its parent, the temporary folder, does). */
const MISSING_FOLDER = join(tmpdir(), `tsp2p-missing-${process.pid}`);

describe('tsp2p usage errors exit with code 2 and one line', () => {
  const cases: [string, string[], RegExp][] = [
    ['an unknown flag', ['chat', '--frobnicate'], /unknown option '--frobnicate'/],
    ['an unknown short flag', ['node', '-x'], /unknown option '-x'/],
    ['an unknown command', ['chatt'], /unknown command 'chatt'/],
    ['a flag without its value', ['chat', '--port'], /--port needs a value/],
    ['a value for a switch', ['chat', '--gop2p=yes'], /--gop2p takes no value/],
    ['a port out of range', ['chat', '--port', '70000'], /--port must be a number from 0 to 65535/],
    ['a port that is not a number', ['node', '--port', 'http'], /--port must be a number/],
    ['an invalid --join address', ['chat', '--join', 'nowhere'], /--join: invalid address 'nowhere'/],
    ['an invalid --host', ['chat', '--host', 'no such host!'], /invalid --host/],
    ['a name too long', ['chat', '--name', 'x'.repeat(65)], /invalid --name/],
    ['an empty name', ['chat', '--name', ''], /--name needs a name/],
    ['a blank name', ['node', '--name', '  '], /--name needs a name/],
    ['--no-input for the chat', ['chat', '--no-input'], /--no-input is for 'tsp2p node'/],
    ['--no-time for the node', ['node', '--no-time'], /--no-time is for 'tsp2p chat'/],
    [
      'an --identity in a folder that does not exist',
      ['node', '--identity', join(MISSING_FOLDER, 'keys', 'key.pem')],
      /--identity: the folder \S+\/keys does not exist/,
    ],
    ['a stray argument', ['chat', 'hello'], /unexpected argument 'hello'/],
    ['a flag without a command', ['--port', '1'], /needs a command first/],
  ];
  for (const [what, args, message] of cases) {
    test(what, async (t) => {
      const { code, stdout, stderr } = await runCli(t, args);
      assert.equal(code, 2, `exit code for ${args.join(' ')}`);
      assert.deepEqual(stdout, []);
      assert.equal(stderr.length, 1, `one line on stderr, got:\n${stderr.join('\n')}`);
      assert.match(stderr[0]!, /^tsp2p: /);
      assert.match(stderr[0]!, message);
    });
  }
});

describe('tsp2p with a port in use', () => {
  test('chat prints one line suggesting --port 0 and exits with code 2', async (t) => {
    const port = await occupiedPort(t);
    const { code, stdout, stderr } = await runCli(t, ['chat', '--port', String(port)]);
    assert.equal(code, 2);
    assert.deepEqual(stdout, []);
    assert.equal(stderr.length, 1, stderr.join('\n'));
    assert.match(stderr[0]!, new RegExp(`port ${port}.*in use.*--port 0`));
  });

  test('node prints an error event and exits with code 2', async (t) => {
    const port = await occupiedPort(t);
    const { code, stdout } = await runCli(t, ['node', '--port', String(port)]);
    assert.equal(code, 2);
    assert.equal(stdout.length, 1, stdout.join('\n'));
    const ev = JSON.parse(stdout[0]!) as { event: string; code: string; message: string };
    assert.equal(ev.event, 'error');
    assert.equal(ev.code, 'ERR_ADDRESS_IN_USE');
    assert.match(ev.message, /--port 0/);
  });
});

test('the bin of a repository never built tells to run npm ci, and exits with code 1', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'tsp2p-nodist-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  mkdirSync(join(dir, 'bin'));
  copyFileSync(BIN, join(dir, 'bin', 'tsp2p.js'));
  copyFileSync(join(ROOT, 'package.json'), join(dir, 'package.json'));
  const res = spawnSync(process.execPath, [join(dir, 'bin', 'tsp2p.js'), '--version'], {
    encoding: 'utf8',
    env: cliEnv(),
    timeout: 15_000,
  });
  assert.equal(res.status, 1);
  assert.equal(res.stdout, '');
  assert.equal(res.stderr.trim().split('\n').length, 1);
  assert.match(res.stderr, /npm ci/);
});
