/**
 * The chat page in a real browser (Debian's Chromium through playwright-core): two nodes' pages
 * chat, a third node's join and leave show up, and a page from another origin cannot post
 * through a node; the page shows the node's recent conversation when it opens and after a
 * reload, and fits a phone (360x640) as well as a desktop (1280x800), with screenshots of both
 * in test-artifacts/. Skipped, with the reason printed, when Chromium cannot run here.
 */
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { type TestContext, test } from 'node:test';
import type { Page } from 'playwright-core';
import type { Message, Node } from '../../src/index.js';
import { ROOT } from '../helpers/cli-process.js';
import { rawRequest } from '../helpers/http-raw.js';
import { startNode } from '../helpers/nodes.js';
import { waitFor } from '../helpers/wait.js';
import { type Browser, launchChromium } from '../helpers/web-browser.js';
import { sampleValue } from '../helpers/web-client.js';

/** Generous: the machine is shared, and the first page load starts the renderer. */
const UI_TIMEOUT_MS = 30_000;

async function browser(t: TestContext, prefix: string): Promise<Browser | undefined> {
  const b = await launchChromium(prefix);
  if (typeof b === 'string') {
    console.log(`# skipping the browser test: ${b}`);
    t.skip(b);
    return undefined;
  }
  t.after(() => b.close());
  t.diagnostic(`screenshots in ${b.dir}`);
  return b;
}

/** Opens a node's page and waits until its event feed is live. Page errors fail the test. */
async function openPage(t: TestContext, b: Browser, node: Node, errors: string[]): Promise<Page> {
  const page = await b.context.newPage();
  page.setDefaultTimeout(UI_TIMEOUT_MS);
  page.on('pageerror', (err) => errors.push(`${node.self.port}: ${err.message}`));
  page.on('console', (msg) => {
    if (msg.type() === 'error') errors.push(`${node.self.port}: console: ${msg.text()}`);
  });
  t.after(() => page.close().catch(() => undefined));
  await page.goto(node.url);
  await page.waitForSelector('#feed[data-state="live"]');
  return page;
}

function memberRow(id: string, state: string): string {
  return `#members li[data-id="${id}"][data-state="${state}"]`;
}

async function metricsOf(node: Node): Promise<string> {
  return (await rawRequest(node.self.port, undefined, { method: 'GET', path: '/metrics' })).body;
}

test('two pages chat: a broadcast, a direct message, a third node joins and leaves', async (t) => {
  const b = await browser(t, 'tsp2p-web-browser-');
  if (b === undefined) return;
  const ada = await startNode(t, { name: 'ada', preset: 'local' });
  const bob = await startNode(t, { name: 'bob', preset: 'local' });
  await bob.connect(ada.self);
  await waitFor(() => ada.members().some((p) => p.id === bob.id), { message: 'ada to know bob' });
  const errors: string[] = [];
  const pageA = await openPage(t, b, ada, errors);
  const pageB = await openPage(t, b, bob, errors);
  await pageA.waitForSelector(memberRow(bob.id, 'alive'));
  await pageB.waitForSelector(memberRow(ada.id, 'alive'));
  assert.match(
    (await pageA.textContent('#self')) ?? '',
    new RegExp(`ada \\(127\\.0\\.0\\.1:${ada.self.port}\\)`),
  );

  // A broadcast from ada's page appears on bob's page, and bob's node gets it.
  const bobGot: Message[] = [];
  bob.on('message', (m) => bobGot.push(m));
  await pageA.fill('#text', 'hello from the page of ada');
  await pageA.click('#send');
  const line = pageB.locator('#log li.message', { hasText: 'hello from the page of ada' });
  await line.waitFor();
  assert.match((await line.locator('.who').textContent()) ?? '', /^ada \(127\.0\.0\.1:\d+\)$/);
  await pageA.locator('#log li.sent', { hasText: 'hello from the page of ada' }).waitFor();
  assert.equal(await pageA.inputValue('#text'), '', 'the box is cleared once sent');
  assert.deepEqual(
    bobGot.map((m) => [m.type, m.text]),
    [['broadcast', 'hello from the page of ada']],
  );

  // A third node joins: both pages list it.
  const cy = await startNode(t, { name: 'cy', preset: 'local' });
  const cyGot: Message[] = [];
  cy.on('message', (m) => cyGot.push(m));
  await cy.connect(ada.self);
  await pageA.waitForSelector(memberRow(cy.id, 'alive'));
  await pageB.waitForSelector(memberRow(cy.id, 'alive'));
  await pageA.locator('#log li.member.join', { hasText: 'cy' }).waitFor();

  // A direct message from bob's page to ada: only ada gets it.
  await pageB.selectOption('#to', ada.id);
  await pageB.fill('#text', 'psst, ada only');
  await pageB.click('#send');
  await pageA.locator('#log li.message.direct', { hasText: 'psst, ada only' }).waitFor();
  await pageB.locator('#log li.sent.direct', { hasText: 'psst, ada only' }).waitFor();
  assert.equal(await pageB.locator('#log li.message', { hasText: 'psst' }).count(), 0);
  assert.ok(!cyGot.some((m) => m.text.includes('psst')), 'cy did not get the direct message');
  await pageA.screenshot({ path: join(b.dir, 'ada-with-cy.png') });
  await pageB.screenshot({ path: join(b.dir, 'bob-with-cy.png') });

  // The third node leaves: both pages show it.
  await cy.disconnect();
  await pageA.waitForSelector(memberRow(cy.id, 'left'));
  await pageB.waitForSelector(memberRow(cy.id, 'left'));
  await pageA.locator('#log li.member.leave', { hasText: 'cy' }).waitFor();
  assert.match((await pageA.textContent('#count')) ?? '', /^\(1\)$/, 'one live member left on the page');
  await pageA.screenshot({ path: join(b.dir, 'ada-after-cy-left.png') });
  t.diagnostic(`screenshots: ${join(b.dir, 'ada-with-cy.png')}, ${join(b.dir, 'ada-after-cy-left.png')}`);
  assert.deepEqual(errors, [], 'no script errors on the pages');
});

test('a page from another origin cannot post through a node', async (t) => {
  const b = await browser(t, 'tsp2p-web-cross-origin-');
  if (b === undefined) return;
  const ada = await startNode(t, { name: 'ada', preset: 'local' });
  const bob = await startNode(t, { name: 'bob', preset: 'local' });
  await bob.connect(ada.self);
  await waitFor(() => ada.members().some((p) => p.id === bob.id), { message: 'ada to know bob' });
  const bobGot: Message[] = [];
  bob.on('message', (m) => bobGot.push(m));

  // The other origin: a tiny server on another port, whose page tries three ways to post.
  const target = `${ada.url}api/broadcast`;
  const html = `<!doctype html><title>elsewhere</title>
<form id="f" method="POST" action="${target}" enctype="text/plain">
<input name='{"text":"from a form","x":"' value='"}'></form>
<script>
window.results = {};
(async () => {
  try {
    const r = await fetch(${JSON.stringify(target)}, { method: 'POST',
      headers: { 'content-type': 'application/json' }, body: JSON.stringify({ text: 'from fetch' }) });
    results.json = 'status ' + r.status;
  } catch (e) { results.json = 'blocked'; }
  try {
    const r = await fetch(${JSON.stringify(target)}, { method: 'POST', mode: 'no-cors',
      body: JSON.stringify({ text: 'from no-cors fetch' }) });
    results.noCors = r.type;
  } catch (e) { results.noCors = 'error ' + e.message; }
  results.done = true;
})();
</script>`;
  const elsewhere = createServer((_req, res) => {
    res.setHeader('content-type', 'text/html; charset=utf-8');
    res.end(html);
  });
  await new Promise<void>((resolve) => elsewhere.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => elsewhere.close(() => resolve())));
  const origin = `http://127.0.0.1:${(elsewhere.address() as AddressInfo).port}`;
  const refusedBefore =
    sampleValue(await metricsOf(ada), 'tsp2p_requests_refused_total', {
      status: '403',
      reason: 'cross_origin',
    }) ?? 0;

  const page = await b.context.newPage();
  page.setDefaultTimeout(UI_TIMEOUT_MS);
  t.after(() => page.close().catch(() => undefined));
  await page.goto(`${origin}/`);
  // Expressions as strings: they run in the page, and this project has no DOM types.
  await page.waitForFunction('window.results.done === true');
  const results = (await page.evaluate('window.results')) as Record<string, string>;
  // A JSON POST needs a CORS preflight, which the node never approves: the POST is never sent.
  assert.equal(results.json, 'blocked');
  // A "simple" POST is sent, and refused by its Origin.
  assert.equal(results.noCors, 'opaque');
  await waitFor(
    async () =>
      (sampleValue(await metricsOf(ada), 'tsp2p_requests_refused_total', {
        status: '403',
        reason: 'cross_origin',
      }) ?? 0) > refusedBefore,
    { message: 'the no-cors POST to be refused as cross-origin' },
  );
  // A form posted from that page: the browser shows the node's one-line 403.
  const [answer] = await Promise.all([
    page.waitForResponse((r) => r.url() === target),
    page.evaluate('document.getElementById("f").submit()'),
  ]);
  assert.equal(answer.status(), 403);
  const body = await answer.text();
  assert.match(body, /^cross-origin request refused: Origin "http:\/\/127\.0\.0\.1:\d+" is not this node\n$/);
  await page.screenshot({ path: join(b.dir, 'cross-origin-refused.png') });

  // Nothing was sent: ada sent no message, and the next one bob gets is the allowed one.
  assert.equal(sampleValue(await metricsOf(ada), 'tsp2p_messages_sent_total', { type: 'broadcast' }), 0);
  await ada.broadcast('allowed');
  await waitFor(() => bobGot.length > 0, { message: 'the allowed broadcast' });
  assert.deepEqual(
    bobGot.map((m) => m.text),
    ['allowed'],
  );
});

/** Where the screenshots a person should look at go (gitignored). */
const ARTIFACTS = join(ROOT, 'test-artifacts');

/** In the page: what sticks out on the right of the viewport, and the words broken across lines. */
const LAYOUT_PROBLEMS = `(() => {
  const width = window.innerWidth;
  const overflow = [];
  if (document.documentElement.scrollWidth > width) overflow.push('page ' + document.documentElement.scrollWidth);
  for (const e of document.querySelectorAll('body *')) {
    const r = e.getBoundingClientRect();
    if (r.width > 0 && r.right > width + 0.5) overflow.push((e.id || e.className || e.tagName) + ' ' + Math.round(r.right));
  }
  const broken = [];
  for (const span of document.querySelectorAll('#log li .text')) {
    const node = span.firstChild;
    if (!node) continue;
    const re = /\\S+/g;
    let m;
    while ((m = re.exec(node.textContent))) {
      const range = document.createRange();
      range.setStart(node, m.index);
      range.setEnd(node, m.index + m[0].length);
      const lines = new Set([...range.getClientRects()].filter((x) => x.width > 0).map((x) => Math.round(x.top)));
      if (lines.size > 1) broken.push(m[0]);
    }
  }
  return { overflow, broken };
})()`;

async function texts(page: Page, selector: string): Promise<string[]> {
  return page.locator(selector).allTextContents();
}

test('the page shows the recent conversation, after a reload too, and fits 360x640 and 1280x800', async (t) => {
  const b = await browser(t, 'tsp2p-web-layout-');
  if (b === undefined) return;
  mkdirSync(ARTIFACTS, { recursive: true });
  const ada = await startNode(t, { name: 'ada', preset: 'local' });
  const bob = await startNode(t, { name: 'bob', preset: 'local' });
  await bob.connect(ada.self);
  await waitFor(() => ada.members().some((p) => p.id === bob.id), { message: 'ada to know bob' });
  const adaGot: Message[] = [];
  ada.on('message', (m) => adaGot.push(m));

  // Before any page is open: ada's program sends, and bob writes to ada.
  await ada.broadcast('sent before the page opened');
  await bob.send(ada.self, 'a direct message before the page opened');
  await waitFor(() => adaGot.length === 1, { message: 'ada to get the direct message' });

  const errors: string[] = [];
  const page = await b.context.newPage();
  await page.setViewportSize({ width: 360, height: 640 });
  page.setDefaultTimeout(UI_TIMEOUT_MS);
  page.on('pageerror', (err) => errors.push(err.message));
  t.after(() => page.close().catch(() => undefined));
  await page.goto(ada.url);
  await page.waitForSelector('#feed[data-state="live"]');
  await page.locator('#log li.sent', { hasText: 'sent before the page opened' }).waitFor();
  await page.locator('#log li.message.direct', { hasText: 'a direct message before' }).waitFor();

  // Sent from the page, and from ada's program while the page is open: both show, once.
  const long =
    'a message from the phone whose words are long enough to wrap: internationalization, ' +
    'responsibilities, incomprehensibility, and https://example.com/a/rather/long/path';
  await page.fill('#text', long);
  await page.click('#send');
  await page.locator('#log li.sent', { hasText: 'from the phone' }).waitFor();
  await ada.broadcast('typed in the terminal');
  await page.locator('#log li.sent', { hasText: 'typed in the terminal' }).waitFor();
  // Whitespace alone is not sent.
  await page.fill('#text', '   ');
  await page.click('#send');
  const conversation = [
    'sent before the page opened',
    'a direct message before the page opened',
    long,
    'typed in the terminal',
  ];
  assert.deepEqual(await texts(page, '#log li .text'), conversation);

  // A reload shows the same conversation, each message once.
  await page.reload();
  await page.waitForSelector('#feed[data-state="live"]');
  await page.locator('#log li', { hasText: 'typed in the terminal' }).waitFor();
  assert.deepEqual(await texts(page, '#log li .text'), conversation);

  // 360x640: the member list is folded, nothing sticks out, no word is broken, the box fits.
  assert.equal(await page.evaluate('document.getElementById("roster").open'), false);
  assert.equal(await page.locator('#members').isVisible(), false);
  assert.deepEqual(await page.evaluate(LAYOUT_PROBLEMS), { overflow: [], broken: [] });
  for (const id of ['#text', '#send', '#to']) {
    const box = await page.locator(id).boundingBox();
    assert.ok(
      box !== null && box.x >= 0 && box.x + box.width <= 360 && box.y + box.height <= 640,
      `${id}: ${JSON.stringify(box)}`,
    );
  }
  assert.ok(((await page.locator('#text').boundingBox())?.width ?? 0) >= 120, 'room to type');
  await page.screenshot({ path: join(ARTIFACTS, 'page-360x640.png') });
  // A tap opens the member list.
  await page.click('#roster > summary');
  await page.waitForSelector(memberRow(bob.id, 'alive'));
  await page.screenshot({ path: join(ARTIFACTS, 'page-360x640-members.png') });

  // 1280x800: the member list is open beside the conversation.
  await page.setViewportSize({ width: 1280, height: 800 });
  await page.reload();
  await page.waitForSelector('#feed[data-state="live"]');
  await page.waitForSelector(memberRow(bob.id, 'alive'));
  assert.equal(await page.evaluate('document.getElementById("roster").open'), true);
  assert.deepEqual(await page.evaluate(LAYOUT_PROBLEMS), { overflow: [], broken: [] });
  const aside = await page.locator('aside').boundingBox();
  const log = await page.locator('#log').boundingBox();
  assert.ok(aside !== null && log !== null && aside.x >= log.x + log.width - 1, 'the members beside the log');
  await page.screenshot({ path: join(ARTIFACTS, 'page-1280x800.png') });
  t.diagnostic(`screenshots in ${ARTIFACTS}`);
  assert.deepEqual(errors, []);
});
