/**
 * `tsp2p node` and `tsp2p chat` over HTTPS with `--tls-key`, `--tls-cert`, `--tls-ca` and
 * `--tls-client-auth`: real processes (`npm run build` first), a CA and certificates for
 * 127.0.0.1 made at test time with openssl (skipped, with the reason, without it). Two nodes join
 * and broadcast; the chat prints https:// addresses, and the join command it prints works as
 * printed; bad flags and files end with exit code 2 and one line naming the file.
 */

import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { type CliEvent, runCli, startListening, waitForEvent } from '../helpers/cli-process.js';
import { rawRequest } from '../helpers/http-raw.js';
import { TestCa, tlsHealth } from '../helpers/security-certs.js';

/** The files of one node: its key and certificate, signed by the test CA. */
interface NodeFiles {
  readonly key: string;
  readonly cert: string;
}

function fromPort(port: number, text: string): (ev: CliEvent) => boolean {
  return (ev) => (ev.from as { port: number }).port === port && ev.text === text;
}

function portOf(address: string): number {
  return Number(address.slice(address.lastIndexOf(':') + 1));
}

describe('tsp2p over HTTPS', { skip: !TestCa.available() && 'openssl is not available' }, () => {
  let ca: TestCa;
  let caFile: string;
  let serial = 0;
  before(() => {
    ca = TestCa.create('ca');
    caFile = join(ca.dir, 'ca.crt');
  });
  after(() => ca?.cleanup());

  /** Issues a certificate for 127.0.0.1 and writes it and its key to files. */
  function issue(): NodeFiles {
    const pair = ca.issue();
    const base = join(ca.dir, `node-${++serial}`);
    writeFileSync(`${base}.key`, pair.key, { mode: 0o600 });
    writeFileSync(`${base}.crt`, pair.cert);
    return { key: `${base}.key`, cert: `${base}.crt` };
  }

  function tlsFlags(files: NodeFiles, ...more: string[]): string[] {
    return ['--tls-key', files.key, '--tls-cert', files.cert, '--tls-ca', caFile, ...more];
  }

  test('two nodes join and broadcast over HTTPS', async (t) => {
    const one = issue();
    const two = issue();
    const a = await startListening(t, 'one', ['node', '--name', 'one', ...tlsFlags(one)]);
    const b = await startListening(t, 'two', [
      'node',
      '--name',
      'two',
      '--join',
      a.address,
      ...tlsFlags(two),
    ]);
    const connected = await waitForEvent(b.p, 'connected');
    assert.deepEqual(
      (connected.members as { port: number }[]).map((m) => m.port),
      [portOf(a.address)],
    );
    await waitForEvent(a.p, 'member:join', (ev) => ev.port === portOf(b.address));
    b.p.send('hello over https');
    await waitForEvent(a.p, 'message', fromPort(portOf(b.address), 'hello over https'));
    const sent = await waitForEvent(b.p, 'sent');
    assert.equal((sent.delivered as unknown[]).length, 1);
    // It is HTTPS: a client that trusts the CA is served, plain HTTP gets no HTTP answer.
    assert.equal(await tlsHealth(portOf(a.address), { ca: ca.cert }), 200);
    await assert.rejects(
      rawRequest(portOf(a.address), undefined, { method: 'GET', path: '/health', timeoutMs: 3_000 }),
    );
    a.p.end();
    b.p.end();
    assert.equal(await a.p.waitExit(), 0);
    assert.equal(await b.p.waitExit(), 0);
  });

  test('--tls-client-auth: mutual TLS between nodes, and a client without a certificate is refused', async (t) => {
    const one = issue();
    const two = issue();
    const a = await startListening(t, 'one', ['node', ...tlsFlags(one, '--tls-client-auth')]);
    const b = await startListening(t, 'two', [
      'node',
      '--join',
      a.address,
      ...tlsFlags(two, '--tls-client-auth'),
    ]);
    await waitForEvent(b.p, 'connected');
    b.p.send('hello over mutual TLS');
    await waitForEvent(a.p, 'message', fromPort(portOf(b.address), 'hello over mutual TLS'));
    const port = portOf(a.address);
    await assert.rejects(tlsHealth(port, { ca: ca.cert }), 'no client certificate: refused');
    const client = ca.issue();
    assert.equal(await tlsHealth(port, { ca: ca.cert, ...client }), 200, 'with one: served');
  });

  test('the chat prints https:// addresses, and its join command works as printed', async (t) => {
    const files = issue();
    const ada = await startListening(t, 'ada', ['chat', '--name', 'ada', ...tlsFlags(files)]);
    assert.ok(ada.p.lines.stdout.includes(`listening on https://${ada.address}`), ada.p.dump());
    await ada.p.waitFor(`chat in a browser: https://${ada.address}/`);
    const { match } = await ada.p.waitFor(/^others join with: npx tsp2p (chat .*)$/);
    const printed = match![1]!;
    assert.ok(printed.includes(`--join https://${ada.address}`), printed);
    // The printed paths are plain here (a temporary directory), so splitting on spaces is exact.
    const args = [...printed.split(' '), '--name', 'bob'];
    const bob = await startListening(t, 'bob', args);
    await bob.p.waitFor(/^connected through \S+: 1 member$/);
    await ada.p.waitFor(/\(bob\) joined$/);
    bob.p.send('hi ada, over https');
    await ada.p.waitFor((line) => line.includes('bob') && line.endsWith('hi ada, over https'));
    bob.p.end();
    ada.p.end();
    assert.equal(await bob.p.waitExit(), 0);
    assert.equal(await ada.p.waitExit(), 0);
  });

  test('bad TLS flags or files: exit code 2 and one line, naming the file', async (t) => {
    const files = issue();
    const other = issue();
    const missing = join(ca.dir, 'no-such-cert.pem');
    const notPem = join(ca.dir, 'not-a-cert.txt');
    writeFileSync(notPem, 'hello\n');
    const cases: [string, string[], RegExp][] = [
      [
        'a missing certificate file',
        ['--tls-key', files.key, '--tls-cert', missing],
        /--tls-cert: cannot read .*no-such-cert\.pem/,
      ],
      [
        'a missing key file',
        ['--tls-key', missing, '--tls-cert', files.cert],
        /--tls-key: cannot read .*no-such-cert\.pem/,
      ],
      [
        'a missing CA file',
        [...tlsFlags(files).slice(0, 4), '--tls-ca', missing],
        /--tls-ca: cannot read .*no-such-cert\.pem/,
      ],
      [
        'a certificate that is not PEM',
        ['--tls-key', files.key, '--tls-cert', notPem],
        /--tls-cert: .*not-a-cert\.txt is not a PEM certificate/,
      ],
      [
        'a key of another certificate',
        ['--tls-key', other.key, '--tls-cert', files.cert],
        /--tls-key: .* is not the key of the certificate/,
      ],
      ['a key without a certificate', ['--tls-key', files.key], /--tls-key and --tls-cert go together/],
      ['a certificate without a key', ['--tls-cert', files.cert], /--tls-key and --tls-cert go together/],
      ['a CA without key and certificate', ['--tls-ca', caFile], /--tls-ca needs --tls-key and --tls-cert/],
      [
        'client auth without a CA',
        ['--tls-key', files.key, '--tls-cert', files.cert, '--tls-client-auth'],
        /--tls-client-auth needs --tls-ca/,
      ],
    ];
    // Both commands share the checks: each case runs with one of them, in turn.
    for (const [i, [what, flags, message]] of cases.entries()) {
      const command = i % 2 === 0 ? 'node' : 'chat';
      const { code, stdout, stderr } = await runCli(t, [command, ...flags]);
      assert.equal(code, 2, `${command}, ${what}: exit code\n${stderr.join('\n')}`);
      assert.deepEqual(stdout, [], `${command}, ${what}: nothing on stdout`);
      assert.equal(stderr.length, 1, `${command}, ${what}: one line on stderr, got:\n${stderr.join('\n')}`);
      assert.match(stderr[0]!, /^tsp2p: /);
      assert.match(stderr[0]!, message, `${command}, ${what}`);
    }
  });
});
