/**
 * Rooms in real `tsp2p chat` processes (issue 14): `/join ROOM` subscribes and makes the room
 * current, typed lines go to the room only and show its name, `/rooms` lists who is in each,
 * `/leave` goes back to everyone; `/join` prints the room's history and `/history N` more; `--tags` shows in `/peers`, and tags too large are a one-line
 * error with exit code 2.
 */

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { runCli, startListening } from '../helpers/cli-process.js';

test('three chats in rooms: lines go to the room only, with its name; /rooms and /peers show who is where', async (t) => {
  const { p: ada, address: a } = await startListening(t, 'ada', [
    'chat',
    '--name',
    'ada',
    '--tags',
    'role=db',
  ]);
  const { p: bob, address: b } = await startListening(t, 'bob', ['chat', '--name', 'bob', '--join', a]);
  await bob.waitFor(/^connected through /);
  const { p: cy, address: c } = await startListening(t, 'cy', ['chat', '--name', 'cy', '--join', a]);
  await cy.waitFor(/^connected through \S+: 2 members$/);
  await ada.waitFor(new RegExp(`${c.replace(/\./g, '\\.')} \\(cy\\) joined`));
  await bob.waitFor(new RegExp(`${c.replace(/\./g, '\\.')} \\(cy\\) joined`));

  ada.send('/join ops');
  await ada.waitFor(/^in room ops \(0 others here\)/);
  bob.send('/join ops');
  await bob.waitFor(/^in room ops \(1 other here\)/);
  bob.send('disk full');
  await ada.waitFor(`${b} (bob) [ops]: disk full`);
  // cy is in no room: it gets none of it. A plain line from cy still reaches everyone.
  cy.send('hello all');
  await ada.waitFor(`${c} (cy): hello all`);
  await bob.waitFor(`${c} (cy): hello all`);
  assert.ok(!cy.lines.stdout.some((l) => l.includes('disk full')), 'a line of room ops reached cy');

  cy.send('/rooms');
  await cy.waitFor(
    new RegExp(
      `^  ops: (${a.replace(/\./g, '\\.')} \\(ada\\), ${b.replace(/\./g, '\\.')} \\(bob\\)|${b.replace(/\./g, '\\.')} \\(bob\\), ${a.replace(/\./g, '\\.')} \\(ada\\))$`,
    ),
  );
  cy.send('/peers');
  await cy.waitFor((l) => l.includes(`${a} (ada)`) && l.includes('tags role=db') && l.includes('rooms ops'));

  bob.send('/leave');
  await bob.waitFor('left room ops; your lines go to everyone');
  bob.send('back to all');
  await cy.waitFor(`${b} (bob): back to all`);
  await ada.waitFor(`${b} (bob): back to all`);
  ada.send('/rooms');
  await ada.waitFor('* ops: you');

  // History (issue 15): cy joins ops late and gets what was said there, marked with '~'; bob's
  // own line shows as 'me' in his /history.
  const said = (l: string) => /^~ \d\d:\d\d /.test(l) && l.endsWith(`${b} (bob) [ops]: disk full`);
  cy.send('/join ops');
  await cy.waitFor(said);
  cy.send('/history 5');
  await cy.waitFor(/^history of room ops, the last \d+:$/);
  await cy.waitFor((l) => said(l) && cy.lines.stdout.filter(said).length >= 2);
  bob.send('/join ops');
  await bob.waitFor((l) => /^~ \d\d:\d\d me \[ops\]: disk full$/.test(l));
});

test('--tags too large, or malformed, is one line and exit code 2', async (t) => {
  const tags = Array.from({ length: 5 }, (_, i) => `k${i}=${'x'.repeat(120)}`).join(',');
  const big = await runCli(t, ['chat', '--tags', tags]);
  assert.equal(big.code, 2);
  assert.equal(big.stderr.length, 1, big.stderr.join('\n'));
  assert.match(big.stderr[0]!, /--tags: tags too large: \d+ bytes, maxTagBytes is 512/);
  const bad = await runCli(t, ['node', '--tags', 'role']);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr.join('\n'), /--tags: invalid tag "role": expected name=value/);
});
