/**
 * Session MACs between real nodes on loopback: once two members know each other's X25519 key,
 * their batches carry a MAC instead of a signature, and arrive once, in order. A captured MAC'd
 * batch replayed has no effect; tampered, it is refused. A receiver restarted with the same
 * identity (and a new X25519 key) answers the first batch `401 no session`; the sender resends it
 * signed at once, and no message is lost or doubled. With a network secret, a MAC'd batch still
 * needs the secret's tag.
 */

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DEFAULTS, type DeliveryReport, Node, type NodeOptions } from '../../src/index.js';
import { AUTH_HEADER } from '../../src/security/keyring.js';
import { MAC_HEADER } from '../../src/security/session-keys.js';
import { numberedTexts, sequenceProblem } from '../helpers/delivery-streams.js';
import { rawRequest } from '../helpers/http-raw.js';
import { type HasAfter, startNode } from '../helpers/nodes.js';
import {
  type Exchange,
  InterceptingTransport,
  isMacd,
  isSigned,
  metricValue,
} from '../helpers/security-session.js';
import { tagBody, testIdentity } from '../helpers/security-sign.js';
import { waitFor, withDeadline } from '../helpers/wait.js';

/** Local timings; a suspected member stays a member for a long while (a restart takes seconds). */
const OPTIONS = { preset: 'local', timings: { suspicionMult: 100 } } as const satisfies NodeOptions;
const MACS = 'tsp2p_signature_checks_total{result="mac"}';
const VERIFIED = 'tsp2p_signature_checks_total{result="verified"}';
const DUPLICATES = 'tsp2p_signature_checks_total{result="duplicate"}';
const refused = (reason: string): string => `tsp2p_requests_refused_total{status="401",reason="${reason}"}`;

/** The texts `node` delivers from now on, in order. */
function texts(node: Node): string[] {
  const got: string[] = [];
  node.on('message', (m) => got.push(m.text));
  return got;
}

function assertDelivered(report: DeliveryReport, to: string): void {
  assert.deepEqual(
    report.failed.map((f) => `${f.peer.id} ${f.error.code}`),
    [],
    `message ${report.id}: no failure`,
  );
  assert.deepEqual(
    report.delivered.map((p) => p.id),
    [to],
  );
}

/**
 * Resolves once each node holds the other's session key: each has verified a signed envelope
 * from the other (the only other node there is), and every signed envelope carries `from.xkey`.
 */
async function sessionsUp(a: Node, b: Node): Promise<void> {
  await waitFor(
    async () =>
      (await metricValue(a.self.port, VERIFIED)) > 0 && (await metricValue(b.self.port, VERIFIED)) > 0,
    { timeoutMs: 30_000, message: 'each node to verify a signed envelope from the other' },
  );
}

/** A sender `a` whose requests are recorded (and can be held back), joined to a receiver `b`. */
async function twoNodes(t: HasAfter, options: NodeOptions = {}) {
  const recorder = new InterceptingTransport();
  // A request held back by the test must not time out meanwhile (its retry would be a new batch).
  const a = await startNode(t, { ...OPTIONS, ...options, requestTimeoutMs: 60_000, transport: recorder });
  const b = await startNode(t, { ...OPTIONS, ...options });
  const got = texts(b);
  await a.connect(b.self);
  await sessionsUp(a, b);
  return { a, b, recorder, got };
}

/** Sends a captured request again, with `headers` in place of the captured ones. */
function resend(port: number, x: Exchange, headers: Record<string, string> = x.headers, body = x.body) {
  return rawRequest(port, body, { headers: { 'content-type': 'application/json', ...headers } });
}

function b64(text: string): string {
  return Buffer.from(text).toString('base64');
}

/** `value` with the character at `i` replaced by another base64url character. */
function flipChar(value: string, i: number): string {
  return `${value.slice(0, i)}${value[i] === 'A' ? 'B' : 'A'}${value.slice(i + 1)}`;
}

test("after the join, batches are MAC'd: counted as MACs, not signature checks; all arrive once, in order", async (t) => {
  const { a, b, recorder, got } = await twoNodes(t);
  const mark = recorder.sent.length;
  const macs0 = await metricValue(b.self.port, MACS);
  const verified0 = await metricValue(b.self.port, VERIFIED);
  const sent = numberedTexts('mac', 40);
  // One at a time (a batch each), then many at once (several to a batch).
  for (const text of sent.slice(0, 10)) assertDelivered(await a.broadcast(text), b.id);
  for (const report of await Promise.all(sent.slice(10).map((x) => a.broadcast(x)))) {
    assertDelivered(report, b.id);
  }
  await waitFor(() => got.length >= sent.length, {
    message: () => `${sent.length} messages; got ${got.length}`,
  });
  assert.equal(sequenceProblem(got, sent), undefined, sequenceProblem(got, sent));

  const batches = recorder.batchesTo(b.self.port, mark);
  assert.ok(batches.length >= 10, `at least one batch per awaited broadcast: ${batches.length}`);
  assert.deepEqual(
    batches.filter((x) => !isMacd(x)).map((x) => Object.keys(x.headers).join(',')),
    [],
    'every batch carries a MAC and no signature',
  );
  assert.ok(
    batches.every((x) => x.status === 200),
    'every batch was taken',
  );
  const macs = (await metricValue(b.self.port, MACS)) - macs0;
  const verified = (await metricValue(b.self.port, VERIFIED)) - verified0;
  // Counted after the metric was read: every envelope b verified is among them.
  const signed = recorder.sent.slice(mark).filter((x) => x.port === b.self.port && isSigned(x));
  // Membership requests (pings, gossip) between the two are MAC'd too once each holds the
  // other's key: counted after the metric was read, every MAC b checked is among them.
  const macd = recorder.sent.slice(mark).filter((x) => x.port === b.self.port && isMacd(x));
  assert.ok(
    macs >= batches.length && macs <= macd.length,
    `one MAC check per batch (${batches.length}), and per MAC'd membership request: ${macs} of ${macd.length}`,
  );
  assert.ok(
    signed.every((x) => x.type !== 8),
    'no batch was signed',
  );
  assert.ok(
    verified <= signed.length,
    `signatures checked (${verified}) are those of membership traffic (${signed.length}), not of batches`,
  );
});

test("a captured MAC'd batch replayed has no effect; tampered, it is refused and delivers nothing", async (t) => {
  const { a, b, recorder, got } = await twoNodes(t);
  const port = b.self.port;
  const held = recorder.holdNext((x) => x.port === port && x.type === 8);
  const sending = a.broadcast('captured');
  // The batch is captured before the receiver saw it: whatever the forgeries do happens first.
  const { exchange: batch, release } = await withDeadline(held, 30_000, 'the batch to be sent');
  assert.ok(isMacd(batch), `a MAC'd batch: ${Object.keys(batch.headers).join(',')}`);
  assert.deepEqual(batch.texts, ['captured']);
  const mac = batch.headers[MAC_HEADER]!;
  const { [MAC_HEADER]: _mac, ...noMac } = batch.headers;
  assert.ok(batch.body.includes(b64('captured')));

  const forgeries: [string, Record<string, string>, string, RegExp][] = [
    ['another text', batch.headers, batch.body.replace(b64('captured'), b64('tampered')), /^bad MAC: /],
    [
      'another seq',
      batch.headers,
      batch.body.replace(`"seq":${batch.seq}`, `"seq":${batch.seq! + 1}`),
      /^bad MAC: /,
    ],
    ['a changed tag', { ...noMac, [MAC_HEADER]: flipChar(mac, 30) }, batch.body, /^bad MAC: /],
    ['a changed session id', { ...noMac, [MAC_HEADER]: flipChar(mac, 3) }, batch.body, /^no session: /],
    ['a malformed MAC', { ...noMac, [MAC_HEADER]: mac.slice(0, -1) }, batch.body, /^bad MAC: /],
    ['no MAC', noMac, batch.body, /^unsigned request refused: /],
  ];
  for (const [how, headers, body, why] of forgeries) {
    assert.ok(body !== batch.body || headers[MAC_HEADER] !== mac, `${how}: not the genuine request`);
    const answer = await resend(port, batch, headers, body);
    assert.equal(answer.status, 401, `${how}: ${answer.body}`);
    assert.match(answer.body, why, how);
    assert.match(answer.body, /^[^\n]+\n$/, 'one line');
  }
  assert.deepEqual(got, [], 'no forgery delivered anything');
  assert.equal(await metricValue(port, refused('bad_mac')), 4, 'counted as bad MACs');
  assert.equal(await metricValue(port, refused('no_session')), 1, 'counted as no session');

  // The genuine batch goes on: delivered once.
  await release();
  assertDelivered(await withDeadline(sending, 30_000, 'the broadcast'), b.id);
  assert.equal(batch.status, 200, batch.answer);
  await waitFor(() => got.length >= 1, { message: 'the captured message to arrive' });
  const duplicates0 = await metricValue(port, DUPLICATES);
  for (let i = 0; i < 3; i++) {
    const answer = await resend(port, batch);
    assert.equal(answer.status, 200, `a replay is acknowledged as a duplicate: ${answer.body}`);
  }
  assert.equal((await metricValue(port, DUPLICATES)) - duplicates0, 3, 'each replay seen as a duplicate');
  // The session still works after all that; the replays added nothing before the next message.
  assertDelivered(await a.broadcast('after'), b.id);
  await waitFor(() => got.length >= 2, { message: "'after' to arrive" });
  assert.deepEqual(got, ['captured', 'after']);
});

test('a receiver restarted with the same identity: 401 no session, resent signed at once, nothing lost or doubled', async (t) => {
  const bIdentity = testIdentity(0x5e);
  const recorder = new InterceptingTransport();
  const a = await startNode(t, { ...OPTIONS, requestTimeoutMs: 30_000, transport: recorder });
  const bTransport = new InterceptingTransport();
  const b = await startNode(t, { ...OPTIONS, identity: bIdentity.privateKey, transport: bTransport });
  const port = b.self.port;
  const gotBefore = texts(b);
  await a.connect(b.self);
  await sessionsUp(a, b);

  const sent = numberedTexts('r', 60);
  const reports: Promise<DeliveryReport>[] = [];
  const send = (from: number, to: number): void => {
    for (const text of sent.slice(from, to)) reports.push(a.broadcast(text));
  };
  send(0, 10);
  await withDeadline(Promise.all(reports), 30_000, 'the first messages');
  assert.ok(
    recorder.batchesTo(port).every((x) => isMacd(x)),
    "the batches before the restart are MAC'd",
  );
  send(10, 20); // in flight while b goes down

  // b crashes: its leave never reaches a (as if its process were killed), and a keeps its
  // messages for it. Nothing from a reaches b's port until the new b has joined again (so that
  // the new b holds no key for a), and then nothing but batches until the first batch got an
  // answer (so that the first thing the new b hears from a is a batch MAC'd under a's session).
  bTransport.block = () => true;
  recorder.block = (x) => x.port === port;
  await b.stop();
  const mark = recorder.sent.length;
  send(20, 40); // while b is down

  // b restarts: the same identity and port, a new X25519 key; it joins again through a (a
  // signed connect: a learns its new key).
  const b2 = new Node({ ...OPTIONS, identity: bIdentity.privateKey, port });
  t.after(() => b2.stop());
  // Without a dataDir the restarted node remembers nothing, so what it had before comes again as
  // history (marked late): only its new messages count here.
  const gotAfter: string[] = [];
  b2.on('message', (m) => {
    if (!(m.late === true && gotBefore.includes(m.text))) gotAfter.push(m.text);
  });
  await b2.start();
  assert.equal(b2.id, b.id);
  await b2.connect(a.self);
  recorder.block = (x) => x.port === port && x.type !== 8;
  send(40, 60); // after it is back

  const first = await waitFor(() => recorder.batchesTo(port, mark).find((x) => x.status !== undefined), {
    timeoutMs: 30_000,
    message: 'a batch to reach the restarted node',
  });
  recorder.block = undefined;
  for (const report of await withDeadline(Promise.all(reports), 60_000, 'every broadcast to settle')) {
    assertDelivered(report, b.id);
  }
  const got = (): string[] => [...gotBefore, ...gotAfter];
  await waitFor(() => got().length >= sent.length, {
    timeoutMs: 30_000,
    message: () => `${sent.length} messages; got ${gotBefore.length} + ${gotAfter.length}`,
  });
  assert.equal(sequenceProblem(got(), sent), undefined, sequenceProblem(got(), sent));
  assert.ok(gotAfter.length > 0, 'the restarted node got the messages sent while it was down');

  // The first batch at the new node: MAC'd, refused for want of a session.
  assert.ok(isMacd(first), `the first batch was MAC'd: ${Object.keys(first.headers).join(',')}`);
  assert.equal(first.status, 401, first.answer);
  assert.match(first.answer ?? '', /^no session: /);
  assert.ok((await metricValue(port, refused('no_session'))) >= 1, 'counted as no session');
  // Then at once, signed: only batches already in flight when the 401 came (refused the same
  // way) go in between, and the signed resend starts where the refused batch did.
  const after = recorder.batchesTo(port, mark).filter((x) => x.status !== undefined);
  const resent = after.findIndex((x) => isSigned(x));
  assert.ok(resent > 0, 'a signed batch followed');
  const between = after.slice(0, resent);
  assert.ok(
    between.length <= DEFAULTS.maxInFlightBatches,
    `at most the batches in flight went MAC'd: ${between.length}`,
  );
  for (const x of between) {
    assert.ok(
      isMacd(x) && x.status === 401 && /^no session: /.test(x.answer ?? ''),
      `${x.status} ${x.answer}`,
    );
  }
  assert.equal(after[resent]!.status, 200, after[resent]!.answer);
  assert.equal(after[resent]!.seq, first.seq, 'the refused batch is what was resent');
  // A new session follows: once the restarted node's signed traffic taught a its new key, a's
  // batches carry MACs again, and the restarted node checks them.
  let n = 0;
  await waitFor(
    async () => {
      const report = await a.broadcast(`later:${n++}`);
      assertDelivered(report, b.id);
      const last = recorder.batchesTo(port).at(-1)!;
      return isMacd(last) && last.status === 200;
    },
    { timeoutMs: 30_000, message: "a's batches to the restarted node to be MAC'd again" },
  );
  assert.ok((await metricValue(port, MACS)) > 0, 'the restarted node checked MACs');
  await waitFor(() => gotAfter.length >= sent.length - gotBefore.length + n, {
    message: "the 'later' messages to arrive",
  });
  assert.equal(sequenceProblem(got(), [...sent, ...numberedTexts('later', n)]), undefined);
});

test("with a network secret, a MAC'd batch still carries the secret's tag and needs it", async (t) => {
  const SECRET = 'the session tests network secret';
  const OTHER = 'another network secret, not ours';
  const { a, b, recorder, got } = await twoNodes(t, { secret: SECRET });
  const port = b.self.port;
  const held = recorder.holdNext((x) => x.port === port && x.type === 8);
  const sending = a.broadcast('tagged');
  const { exchange: batch, release } = await withDeadline(held, 30_000, 'the batch to be sent');
  assert.ok(isMacd(batch), `a MAC'd batch: ${Object.keys(batch.headers).join(',')}`);
  assert.ok(batch.headers[AUTH_HEADER] !== undefined, "it carries the secret's tag");
  const { [AUTH_HEADER]: _tag, ...untagged } = batch.headers;
  const attempts: [string, Record<string, string>][] = [
    ['no tag', untagged],
    ["another secret's tag", { ...untagged, [AUTH_HEADER]: tagBody(batch.body, OTHER) }],
  ];
  for (const [how, headers] of attempts) {
    const answer = await resend(port, batch, headers);
    assert.equal(answer.status, 401, `${how}: ${answer.body}`);
    assert.equal(answer.body, 'network secret required: this request carries no valid tsp2p-auth tag\n');
  }
  assert.deepEqual(got, [], 'nothing delivered without the tag');
  const mark = recorder.sent.length;
  const macs0 = await metricValue(port, MACS);
  await release();
  assertDelivered(await withDeadline(sending, 30_000, 'the broadcast'), b.id);
  assert.equal(batch.status, 200, batch.answer);
  await waitFor(() => got.length >= 1, { message: 'the message to arrive' });
  assert.deepEqual(got, ['tagged']);
  const macs = (await metricValue(port, MACS)) - macs0;
  // Membership requests (pings, gossip) in between are MAC'd too: counted after the metric was
  // read, every other MAC b checked is among them.
  const others = recorder.sent.slice(mark).filter((x) => x !== batch && x.port === port && isMacd(x));
  assert.ok(
    macs >= 1 && macs <= 1 + others.length,
    `its MAC was checked: ${macs} checks, ${others.length} other MAC'd requests`,
  );
});
