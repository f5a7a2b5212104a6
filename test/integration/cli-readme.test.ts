/**
 * Every code block of the README is checked: the TypeScript blocks are type-checked with `tsc`
 * against the package's own types (`import ... from 'tsp2p'` resolves to this package's
 * `exports`, so `npm run build` must have run), and the shell blocks run, each command as the
 * README shows it, with `npx tsp2p` as `node bin/tsp2p.js` and the README's ports replaced by
 * free ones. A shell command this test does not know how to run fails it: a new block needs a
 * scenario here.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { BIN, type CliProcess, cliEnv, ROOT, startCli, waitForEvent } from '../helpers/cli-process.js';
import { freePort } from '../helpers/tcp-forward.js';

const README = readFileSync(join(ROOT, 'README.md'), 'utf8');

/** The fenced blocks of a language, in order. */
function blocks(lang: string): string[] {
  return [...README.matchAll(new RegExp(`^\`\`\`${lang}\\n([\\s\\S]*?)^\`\`\`$`, 'gm'))].map((m) => m[1]!);
}

/** The commands of a shell block: its lines without comments and blank lines. */
function commands(block: string): string[] {
  return block
    .split('\n')
    .map((l) => l.replace(/\s+#\s.*$/, '').trim())
    .filter((l) => l !== '' && !l.startsWith('#'));
}

function run(command: string, timeoutMs = 30_000): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      'sh',
      ['-c', command],
      { cwd: ROOT, env: cliEnv(), encoding: 'utf8', timeout: timeoutMs },
      (err, stdout, stderr) => {
        const code = err === null ? 0 : typeof err.code === 'number' ? err.code : -1;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

test('the TypeScript blocks compile against the package types', async (t) => {
  const ts = blocks('ts');
  assert.ok(ts.length >= 1, 'the README has a TypeScript example');
  const dir = join(ROOT, '.tmp', `readme-check-${process.pid}`);
  mkdirSync(dir, { recursive: true });
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  ts.forEach((code, i) => {
    // Each block is a module of its own (top-level await, its own names).
    writeFileSync(
      join(dir, `block-${i + 1}.ts`),
      /^\s*(import|export)\s/m.test(code) ? code : `${code}\nexport {};\n`,
    );
  });
  writeFileSync(
    join(dir, 'tsconfig.json'),
    JSON.stringify({
      extends: '../../tsconfig.json',
      compilerOptions: { noEmit: true, rootDir: '.', declaration: false, sourceMap: false },
      include: ['*.ts'],
    }),
  );
  const tsc = join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
  const res = await run(`'${process.execPath}' '${tsc}' -p '${join(dir, 'tsconfig.json')}'`, 120_000);
  assert.equal(res.code, 0, `tsc on the README's TypeScript:\n${res.stdout}${res.stderr}`);
});

test('the shell blocks run as shown', async (t) => {
  const sh = blocks('sh').map(commands);
  const ran = new Set<string>();
  const p1 = String(await freePort());
  const p2 = String(await freePort());
  const local = (line: string): string =>
    line
      .replaceAll('npx tsp2p', `'${process.execPath}' '${BIN}'`)
      .replaceAll('6001', p1)
      .replaceAll('6002', p2);
  /** Starts a long-running command of the README (its words, after `npx tsp2p`). */
  const start = (line: string): CliProcess => {
    ran.add(line);
    const words = line.replace(/&$/, '').trim().split(/\s+/);
    assert.deepEqual(words.slice(0, 2), ['npx', 'tsp2p'], line);
    return startCli(
      t,
      words.slice(2, 4).join(' '),
      words.slice(2).map((w) => w.replaceAll('6001', p1).replaceAll('6002', p2)),
    );
  };
  const find = (part: string): string => {
    const line = sh.flat().find((l) => l.includes(part));
    assert.ok(line, `the README shows ${part}`);
    return line;
  };

  // The first command: install, then a chat that reaches `listening on` (here with its input
  // closed at once, so that it leaves again). `npm ci` is what the test run itself stands on;
  // `npm run test:all` is this very suite: neither runs again inside it.
  for (const whole of ['npm ci && npx tsp2p chat', 'npm ci && npm run test:all']) ran.add(find(whole));
  const first = start(find('npm ci && npx tsp2p chat').replace('npm ci && ', ''));
  first.end();
  await first.waitFor(/^listening on http:\/\/127\.0\.0\.1:\d+$/);
  assert.equal(await first.waitExit(), 0, first.dump());

  // Chat in two lines: ada listens, grace joins her.
  const ada = start(find('chat --port 6001 --name ada'));
  await ada.waitFor(`listening on http://127.0.0.1:${p1}`);
  const grace = start(find('chat --join 127.0.0.1:6001 --name grace'));
  await grace.waitFor(`connected through 127.0.0.1:${p1}: 1 member`);
  await ada.waitFor(/\(grace\) joined$/);

  // The node for services, and a script that pipes two commands into another node.
  const svc = start(find('--no-input'));
  await waitForEvent(svc, 'connected');
  const piped = find("printf '%s\\n'");
  ran.add(piped);
  const res = await run(local(piped));
  assert.equal(res.code, 0, res.stdout + res.stderr);
  const events = res.stdout
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { event: string; type?: string });
  assert.deepEqual(
    events.filter((e) => e.event === 'sent' || e.event === 'error').map((e) => `${e.event} ${e.type}`),
    ['sent broadcast', 'sent direct'],
  );
  await waitForEvent(svc, 'message', (ev) => ev.text === 'psst' && ev.type === 'direct');
  await ada.waitFor(/: hello, everyone$/);

  // The curl commands, against ada (test/integration/web-ops.test.ts checks what they answer).
  for (const line of sh.flat().filter((l) => l.startsWith('curl '))) {
    ran.add(line);
    const out = await run(local(line));
    assert.equal(out.code, 0, `${line}\n${out.stderr}`);
  }
  await ada.waitFor('me (page): hello from curl');

  svc.kill('SIGTERM');
  assert.equal(await svc.waitExit(), 0, svc.dump());
  for (const p of [grace, ada]) {
    p.end();
    assert.equal(await p.waitExit(), 0, p.dump());
  }
  assert.deepEqual(
    sh.flat().filter((l) => !ran.has(l)),
    [],
    'every shell command of the README ran here, or is named above as not run',
  );
});
