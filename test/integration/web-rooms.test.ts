/**
 * Rooms on the chat page in a real browser (Debian's Chromium through playwright-core): the
 * page joins a room, lists the rooms with who is in each, publishes typed lines to the current
 * room only, shows a room's name on its lines, switches between rooms and "everyone", and
 * leaves a room. The room endpoints refuse a bad topic with 400 and one line. Skipped, with the
 * reason printed, when Chromium cannot run here.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { type TestContext, test } from 'node:test';
import type { Page } from 'playwright-core';
import { type Message, Node } from '../../src/index.js';
import { rawRequest } from '../helpers/http-raw.js';
import { startNode } from '../helpers/nodes.js';
import { waitFor } from '../helpers/wait.js';
import { type Browser, launchChromium } from '../helpers/web-browser.js';
import { postApi, sampleValue } from '../helpers/web-client.js';

/** Generous: the machine is shared, and the first page load starts the renderer. */
const UI_TIMEOUT_MS = 30_000;

async function browser(t: TestContext): Promise<Browser | undefined> {
  const b = await launchChromium('tsp2p-web-rooms-');
  if (typeof b === 'string') {
    console.log(`# skipping the browser test: ${b}`);
    t.skip(b);
    return undefined;
  }
  t.after(() => b.close());
  t.diagnostic(`screenshots in ${b.dir}`);
  return b;
}

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

/** Texts of the visible lines of the log (the ones the current room shows). */
async function visibleLines(page: Page): Promise<string[]> {
  return page.$$eval('#log li.message, #log li.sent', (lis) =>
    lis
      .filter((li) => !(li as unknown as { hidden: boolean }).hidden)
      .map((li) => li.querySelector('.text')?.textContent ?? ''),
  );
}

test('the page joins rooms, publishes to the current room only, switches rooms and leaves', async (t) => {
  const b = await browser(t);
  if (b === undefined) return;
  const ada = await startNode(t, { name: 'ada', preset: 'local' });
  const bob = await startNode(t, { name: 'bob', preset: 'local' });
  const cy = await startNode(t, { name: 'cy', preset: 'local' });
  await bob.connect(ada.self);
  await cy.connect(ada.self);
  await waitFor(() => ada.members().length === 2 && bob.members().length === 2 && cy.members().length === 2, {
    message: 'three members',
  });
  const got = new Map<Node, Message[]>([
    [bob, []],
    [cy, []],
  ]);
  for (const [n, list] of got) n.on('message', (m) => list.push(m));
  await bob.subscribe('ops');
  await cy.subscribe('dev');

  const errors: string[] = [];
  const page = await openPage(t, b, ada, errors);
  // Every room a member is in is listed, with who is in it; ada is in none yet.
  await page.locator('#rooms li[data-room="ops"][data-joined="false"] .who', { hasText: 'bob' }).waitFor();
  await page.locator('#rooms li[data-room="dev"] .who', { hasText: 'cy' }).waitFor();
  assert.equal(await page.getAttribute('#rooms li[data-room=""]', 'data-current'), 'true');

  // Join ops from the box: ada's node subscribes, and ops becomes the current room.
  await page.fill('#room', 'ops');
  await page.click('#join-room');
  await page.locator('#rooms li[data-room="ops"][data-current="true"][data-joined="true"]').waitFor();
  assert.deepEqual(ada.topics(), ['ops']);
  await waitFor(() => bob.subscribers('ops').some((p) => p.id === ada.id), {
    message: 'bob sees ada in ops',
  });
  assert.match((await page.textContent('#rooms li[data-room="ops"] .who')) ?? '', /you.*bob/);
  assert.equal(await page.textContent('#current'), '#ops');

  // A typed line goes to ops only: bob gets it with its topic, cy nothing.
  await page.fill('#text', 'deploy at noon');
  await page.click('#send');
  await page
    .locator('#log li.sent', { hasText: 'deploy at noon' })
    .locator('.room', { hasText: '#ops' })
    .waitFor();
  await waitFor(() => got.get(bob)!.some((m) => m.text === 'deploy at noon'), {
    message: 'bob gets the line',
  });
  assert.equal(got.get(bob)!.find((m) => m.text === 'deploy at noon')?.topic, 'ops');

  // A line from the room shows the room's name.
  await bob.publish('ops', 'ack from bob');
  const fromBob = page.locator('#log li.message', { hasText: 'ack from bob' });
  await fromBob.waitFor();
  assert.equal(await fromBob.locator('.room').textContent(), '#ops');

  // Join dev by choosing it in the list: dev is current, and ops's lines are out of sight.
  await page.click('#rooms li[data-room="dev"]');
  await page.locator('#rooms li[data-room="dev"][data-current="true"][data-joined="true"]').waitFor();
  assert.deepEqual(ada.topics(), ['ops', 'dev']);
  assert.deepEqual(await visibleLines(page), []);
  await cy.publish('dev', 'dev standup');
  await page.locator('#log li.message', { hasText: 'dev standup' }).waitFor();
  assert.deepEqual(await visibleLines(page), ['dev standup']);
  await page.fill('#text', 'ada in dev');
  await page.click('#send');
  await waitFor(() => got.get(cy)!.some((m) => m.text === 'ada in dev'), { message: 'cy gets the dev line' });
  assert.equal(got.get(cy)!.find((m) => m.text === 'ada in dev')?.topic, 'dev');
  assert.ok(!got.get(bob)!.some((m) => m.text === 'ada in dev'), 'bob (not in dev) did not get it');

  // Back to ops: its lines again.
  await page.click('#rooms li[data-room="ops"]');
  await page.locator('#rooms li[data-room="ops"][data-current="true"]').waitFor();
  assert.deepEqual(await visibleLines(page), ['deploy at noon', 'ack from bob']);
  await page.screenshot({ path: join(b.dir, 'ada-in-ops.png') });

  // Everyone: every line, and a typed line is a broadcast that both get.
  await page.click('#rooms li[data-room=""]');
  await page.locator('#rooms li[data-room=""][data-current="true"]').waitFor();
  await page.fill('#text', 'hello all');
  await page.click('#send');
  await waitFor(() => [bob, cy].every((n) => got.get(n)!.some((m) => m.text === 'hello all')), {
    message: 'both get the broadcast',
  });
  assert.equal(got.get(cy)!.find((m) => m.text === 'hello all')?.topic, undefined);
  await page.locator('#log li.sent', { hasText: 'hello all' }).waitFor();
  assert.deepEqual(await visibleLines(page), [
    'deploy at noon',
    'ack from bob',
    'dev standup',
    'ada in dev',
    'hello all',
  ]);

  // Leave ops with its button: ada's node unsubscribes; the room stays listed with bob.
  await page.click('#rooms li[data-room="ops"] button.leave');
  await page.locator('#rooms li[data-room="ops"][data-joined="false"]').waitFor();
  assert.deepEqual(ada.topics(), ['dev']);
  await waitFor(() => bob.subscribers('ops').length === 0, { message: 'bob sees ada left ops' });
  await page.screenshot({ path: join(b.dir, 'ada-after-leaving-ops.png') });
  assert.deepEqual(errors, [], 'no script errors on the page');
});

test('the room endpoints: a bad topic is 400 with one line; a good one answers the topics', async (t) => {
  const ada = await startNode(t, { name: 'ada', preset: 'local' });
  const bad = await postApi(ada.self.port, '/api/subscribe', { topic: 'no spaces allowed' });
  assert.equal(bad.status, 400);
  assert.match(bad.body, /^ERR_INVALID_TOPIC: [^\n]+\n$/);
  const missing = await postApi(ada.self.port, '/api/publish', { text: 'x' });
  assert.equal(missing.status, 400);
  assert.equal(missing.body, 'topic: expected a string\n');
  const ok = await postApi(ada.self.port, '/api/subscribe', { topic: 'ops' });
  assert.equal(ok.status, 200);
  assert.deepEqual(JSON.parse(ok.body), { topics: ['ops'] });
  const left = await postApi(ada.self.port, '/api/unsubscribe', { topic: 'ops' });
  assert.deepEqual(JSON.parse(left.body), { topics: [] });

  // A publish that reaches no one, and one refused as too large, show in /metrics.
  const bob = await startNode(t, { name: 'bob', preset: 'local', maxMessageBytes: 1024 });
  await bob.connect(ada.self);
  const report = await bob.publish('nobody-here', 'hello?');
  assert.deepEqual([report.delivered, report.failed], [[], []]);
  await assert.rejects(bob.publish('nobody-here', 'x'.repeat(2000)), { code: 'ERR_MESSAGE_TOO_LARGE' });
  const text = (await rawRequest(bob.self.port, undefined, { method: 'GET', path: '/metrics' })).body;
  assert.equal(sampleValue(text, 'tsp2p_topic_dropped_total', { reason: 'no_subscribers' }), 1);
  assert.equal(sampleValue(text, 'tsp2p_topic_dropped_total', { reason: 'too_large' }), 1);
  assert.equal(sampleValue(text, 'tsp2p_topic_dropped_total', { reason: 'not_subscribed' }), 0);

  // Tags too large: a typed error at once, at construction and at setTags(), never a crash.
  const big = Object.fromEntries(Array.from({ length: 5 }, (_, i) => [`k${i}`, 'v'.repeat(120)]));
  assert.throws(() => new Node({ tags: big }), { code: 'ERR_TAGS_TOO_LARGE', message: /maxTagBytes is 512/ });
  await assert.rejects(bob.setTags(big), { code: 'ERR_TAGS_TOO_LARGE' });
  assert.deepEqual(bob.tags(), {});

  // /members shows each member's tags and topics; /metrics counts messages per topic and the
  // subscriptions known (this node's and its live members').
  await bob.setTags({ role: 'db', zone: 'eu' });
  await bob.subscribe('ops');
  await bob.subscribe('dev');
  await ada.subscribe('ops');
  const members = JSON.parse(
    (await rawRequest(ada.self.port, undefined, { method: 'GET', path: '/members' })).body,
  ) as {
    self: { topics?: string[] };
    members: { id: string; tags?: Record<string, string>; topics?: string[] }[];
  };
  assert.deepEqual(members.self.topics, ['ops']);
  const bobEntry = members.members.find((m) => m.id === bob.id);
  assert.deepEqual(bobEntry?.tags, { role: 'db', zone: 'eu' });
  assert.deepEqual(bobEntry?.topics, ['ops', 'dev']);
  const gotOps = new Promise<void>((resolve) => ada.once('message', () => resolve()));
  await bob.publish('ops', 'to ops');
  await gotOps;
  const adaMetrics = (await rawRequest(ada.self.port, undefined, { method: 'GET', path: '/metrics' })).body;
  assert.equal(sampleValue(adaMetrics, 'tsp2p_subscriptions_known'), 3);
  assert.equal(sampleValue(adaMetrics, 'tsp2p_topic_messages_total', { topic: 'ops', direction: 'in' }), 1);
  const bobMetrics = (await rawRequest(bob.self.port, undefined, { method: 'GET', path: '/metrics' })).body;
  assert.equal(sampleValue(bobMetrics, 'tsp2p_topic_messages_total', { topic: 'ops', direction: 'out' }), 1);
});
