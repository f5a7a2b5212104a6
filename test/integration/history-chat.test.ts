/**
 * History in the real `tsp2p chat`, across a restart from its files: ada keeps her database in
 * `--data DIR`; she leaves, bob talks in room ops meanwhile (cy is there too, in no room), and she starts again from DIR with
 * no `--join`. She is back in room ops by herself, prints what was said before she left (from
 * her file) and what she missed (caught up, late), each marked `~ HH:MM`, and `/join ops` prints
 * them again. Her page (in Chromium, skipped when it cannot run here) shows the same lines when
 * it opens and after a reload, each once. And `tsp2p node --data`, stopped by SIGTERM as a
 * service manager does, rejoins by itself when started again and prints what it missed, `late`.
 */

import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { events, startListening, waitForEvent } from '../helpers/cli-process.js';
import { tempDir } from '../helpers/store.js';
import { launchChromium } from '../helpers/web-browser.js';

const root = tempDir('tsp2p-history-chat-');
after(() => root.remove());

/** Generous: the machine is shared, and the first page load starts the renderer. */
const UI_TIMEOUT_MS = 30_000;

const esc = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

test('a chat restarted from --data prints the room history, on start and on /join; its page shows it after a reload', async (t) => {
  const started = Date.now();
  const data = join(root.dir, 'ada');
  const first = await startListening(t, 'ada', ['chat', '--name', 'ada', '--data', data]);
  const adaAddress = first.address;
  const { p: bob, address: b } = await startListening(t, 'bob', [
    'chat',
    '--name',
    'bob',
    '--join',
    adaAddress,
  ]);
  await bob.waitFor(/^connected through /);
  // cy keeps bob in a network while ada is away (a node alone cannot send).
  const { p: cy } = await startListening(t, 'cy', ['chat', '--name', 'cy', '--join', b]);
  await cy.waitFor(/^connected through \S+: 2 members$/);
  first.p.send('/join ops');
  await first.p.waitFor(/^in room ops/);
  bob.send('/join ops');
  await bob.waitFor(/^in room ops \(1 other here\)/);
  bob.send('said before ada left');
  await first.p.waitFor(`${b} (bob) [ops]: said before ada left`);
  first.p.send('ada says hello');
  await bob.waitFor(`${adaAddress} (ada) [ops]: ada says hello`);

  first.p.send('/exit');
  assert.equal(await first.p.waitExit(), 0, first.p.dump());
  await bob.waitFor(new RegExp(`${esc(adaAddress)} \\(ada\\) left`));
  bob.send('said while ada was away');
  // bob's input runs in order: once /rooms answers, the line above has been published, so it
  // was said while ada was away (on a loaded machine it could otherwise run after her restart).
  bob.send('/rooms');
  await bob.waitFor(/^\* ops: /);

  // Same database, same port, no --join.
  const port = adaAddress.split(':').at(-1)!;
  const { p: ada } = await startListening(t, 'ada again', [
    'chat',
    '--name',
    'ada',
    '--data',
    data,
    '--port',
    port,
  ]);
  await ada.waitFor('in room ops again (/rooms lists yours)');
  const history = (text: string, from = `${esc(b)} \\(bob\\)`) =>
    new RegExp(`^~ \\d\\d:\\d\\d ${from} \\[ops\\]: ${esc(text)}$`);
  await ada.waitFor(history('said before ada left'));
  await ada.waitFor(history('ada says hello', 'me'));
  // Rejoined by itself, it catches up what it missed: late, so marked as history too.
  await ada.waitFor(history('said while ada was away'), { timeoutMs: 60_000 });
  await bob.waitFor(new RegExp(`${esc(adaAddress)} \\(ada\\) joined`), { timeoutMs: 60_000 });
  bob.send('said after ada came back');
  await ada.waitFor(`${b} (bob) [ops]: said after ada came back`);

  // /join prints the room's history again: every line, each once, oldest first.
  ada.send('/leave');
  await ada.waitFor('left room ops; your lines go to everyone');
  const mark = ada.mark();
  ada.send('/join ops');
  await ada.waitFor(history('said after ada came back'), { since: mark });
  const printed = ada.lines.stdout.slice(mark).filter((l) => l.startsWith('~ '));
  assert.deepEqual(
    printed.map((l) => l.replace(/^~ \d\d:\d\d /, '')),
    [
      `${b} (bob) [ops]: said before ada left`,
      'me [ops]: ada says hello',
      `${b} (bob) [ops]: said while ada was away`,
      `${b} (bob) [ops]: said after ada came back`,
    ],
  );

  // The page of the restarted chat: the same conversation, from the same file, after a reload.
  const browser = await launchChromium('tsp2p-history-page-');
  if (typeof browser === 'string') {
    t.diagnostic(`page part skipped: ${browser}`);
    return;
  }
  t.after(() => browser.close());
  const url = (await ada.waitFor(/^chat in a browser: (\S+)$/)).match![1]!;
  const page = await browser.context.newPage();
  page.setDefaultTimeout(UI_TIMEOUT_MS);
  const errors: string[] = [];
  page.on('pageerror', (err) => errors.push(err.message));
  t.after(() => page.close().catch(() => undefined));
  const lines = [
    'said before ada left',
    'ada says hello',
    'said while ada was away',
    'said after ada came back',
  ];
  const shown = async (): Promise<string[]> => page.locator('#log li[data-conv] .text').allTextContents();
  await page.goto(url);
  await page.waitForSelector('#feed[data-state="live"]');
  await page.locator('#log li', { hasText: 'said after ada came back' }).waitFor();
  assert.deepEqual(await shown(), lines, 'the page opens with the history');
  await page.reload();
  await page.waitForSelector('#feed[data-state="live"]');
  await page.locator('#log li', { hasText: 'said after ada came back' }).waitFor();
  assert.deepEqual(await shown(), lines, 'after a reload: the same lines, each once');
  // What ada caught up after her absence is marked as history, as in the terminal ('~').
  assert.deepEqual(await page.locator('#log li.late .text').allTextContents(), ['said while ada was away']);
  // A line from the page after the reload reaches bob, and shows in the terminal's history.
  await page.fill('#text', 'typed on the page');
  await page.click('#send');
  await bob.waitFor(`${adaAddress} (ada): typed on the page`);
  assert.deepEqual(errors, []);
  t.diagnostic(`${Date.now() - started} ms in all`);
});

test('tsp2p node --data: after a SIGTERM (a service manager stopping it), a restart rejoins by itself and prints what it missed, late', async (t) => {
  const started = Date.now();
  const data = join(root.dir, 'svc');
  const { p: hub, address: h } = await startListening(t, 'hub', ['node', '--name', 'hub']);
  const { p: other } = await startListening(t, 'other', ['node', '--name', 'other', '--join', h]);
  await waitForEvent(other, 'connected');
  const first = await startListening(t, 'svc', ['node', '--name', 'svc', '--data', data, '--join', h]);
  await waitForEvent(first.p, 'connected');
  hub.send('before the stop');
  await waitForEvent(first.p, 'message', (ev) => ev.text === 'before the stop');

  first.p.kill('SIGTERM');
  assert.equal(await first.p.waitExit(), 0, first.p.dump());
  await waitForEvent(first.p, 'left');
  await waitForEvent(hub, 'member:leave', (ev) => `${ev.address}:${ev.port}` === first.address);
  hub.send('while it was stopped');
  await waitForEvent(other, 'message', (ev) => ev.text === 'while it was stopped');

  const port = first.address.split(':').at(-1)!;
  const { p: svc } = await startListening(t, 'svc again', [
    'node',
    '--name',
    'svc',
    '--data',
    data,
    '--port',
    port,
  ]);
  const missed = await waitForEvent(svc, 'message', (ev) => ev.text === 'while it was stopped');
  assert.equal(missed.late, true, 'what it missed comes late');
  assert.equal(typeof missed.at, 'number');
  await waitForEvent(hub, 'member:join', (ev) => `${ev.address}:${ev.port}` === first.address);
  hub.send('after the restart');
  const live = await waitForEvent(svc, 'message', (ev) => ev.text === 'after the restart');
  assert.equal(live.late, undefined, 'live is not late');
  assert.deepEqual(
    events(svc)
      .filter((ev) => ev.event === 'message')
      .map((ev) => ev.text),
    ['while it was stopped', 'after the restart'],
    'nothing from before the stop again',
  );
  t.diagnostic(`${Date.now() - started} ms in all`);
});
