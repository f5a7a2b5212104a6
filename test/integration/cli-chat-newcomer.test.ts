/**
 * What a newcomer tripped over in `tsp2p chat` (issue 17): events on a pipe in the order they
 * happened, a failed `--join` that exits non-zero with one clause, the first node of a network
 * that says nobody is here yet, empty lines that are not sent, and what the node's page or API
 * sends printed in its terminal as "me (page)".
 */

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { startCli, startListening } from '../helpers/cli-process.js';
import { postApi } from '../helpers/web-client.js';

describe('tsp2p chat for a newcomer', () => {
  test('piped: "connected through" prints before "leaving..."', async (t) => {
    const { address: a } = await startListening(t, 'ada', ['chat', '--name', 'ada']);
    const bob = startCli(t, 'bob', ['chat', '--name', 'bob', '--join', a]);
    bob.end(); // as `</dev/null`: the input ends before the join is done
    assert.equal(await bob.waitExit(), 0, bob.dump());
    const out = bob.lines.stdout;
    const connected = out.findIndex((l) => l.startsWith('connected through '));
    const leaving = out.indexOf('leaving...');
    assert.ok(connected >= 0 && leaving >= 0, bob.dump());
    assert.ok(connected < leaving, `out of order:\n${out.join('\n')}`);
  });

  test('a failed --join prints one clause and exits 1', async (t) => {
    const lone = startCli(t, 'lone', ['chat', '--join', '127.0.0.1:1']);
    assert.equal(await lone.waitExit(), 1, lone.dump());
    assert.deepEqual(lone.lines.stderr, [
      'error: cannot join through 127.0.0.1:1: nothing is listening there (connection refused)',
    ]);
  });

  test('the first node says nobody is here yet; empty lines are not sent', async (t) => {
    const { p: ada, address: a } = await startListening(t, 'ada', ['chat', '--name', 'ada']);
    ada.send('anyone?');
    const { line } = await ada.waitFor(/nobody is here yet/);
    assert.ok(line.includes(`npx tsp2p chat --join ${a}`), line);
    assert.deepEqual(ada.lines.stderr, [], 'not an error');

    const { p: bob, address: b } = await startListening(t, 'bob', ['chat', '--name', 'bob', '--join', a]);
    await bob.waitFor(/^connected through /);
    await ada.waitFor(/\(bob\) joined$/);
    bob.send('');
    bob.send('   ');
    bob.send('a real line');
    await ada.waitFor(`${b} (bob): a real line`);
    const fromBob = ada.lines.stdout.filter((l) => l.startsWith(`${b} (bob)`));
    assert.deepEqual(fromBob, [`${b} (bob): a real line`]);
  });

  test('what the page or the API sends prints in the terminal as "me (page)"', async (t) => {
    const { p: ada, address: a } = await startListening(t, 'ada', ['chat', '--name', 'ada']);
    const { p: bob, address: b } = await startListening(t, 'bob', ['chat', '--name', 'bob', '--join', a]);
    await bob.waitFor(/^connected through /);
    await ada.waitFor(/\(bob\) joined$/);
    const port = Number(a.split(':')[1]);

    const res = await postApi(port, '/api/broadcast', { text: 'hello from the page' });
    assert.equal(res.status, 200, res.body);
    await ada.waitFor('me (page): hello from the page');
    await bob.waitFor(`${a} (ada): hello from the page`);

    const dm = await postApi(port, '/api/send', { to: b, text: 'just bob' });
    assert.equal(dm.status, 200, dm.body);
    await ada.waitFor(`me (page) [dm to ${b} (bob)]: just bob`);
    await bob.waitFor(`${a} (ada) [dm]: just bob`);

    // An empty message is refused with 400 and one line; nothing is sent or printed.
    const empty = await postApi(port, '/api/broadcast', { text: '' });
    assert.equal(empty.status, 400);
    assert.match(empty.body, /^text: the message is empty, nothing was sent\n$/);
    bob.send('the last line');
    await ada.waitFor(`${b} (bob): the last line`);
    assert.equal(ada.lines.stdout.filter((l) => l.startsWith('me (page)')).length, 2, ada.dump());
    // The chat's own lines are not echoed as the page's.
    ada.send('typed in the terminal');
    await bob.waitFor(`${a} (ada): typed in the terminal`);
    assert.ok(!ada.lines.stdout.some((l) => l.includes('me (page): typed')), ada.dump());
  });
});
