/**
 * The serving side of catch-up (src/node/catch-up.ts), on a memory store: what a log request may
 * read (not another node's direct messages), precise refusals for incomplete requests, only
 * signed messages served, the answer's bounds; and the chain that lets the asker check a run of
 * served messages with one signature.
 */

import assert from 'node:assert/strict';
import { createHash, generateKeyPairSync } from 'node:crypto';
import { test } from 'node:test';
import { ManualClock } from '../../src/clock.js';
import type { PendingSignature } from '../../src/delivery/own-log.js';
import { fingerprint } from '../../src/identity.js';
import { noopLogger } from '../../src/logger.js';
import type { Membership } from '../../src/membership/membership.js';
import { CatchUp } from '../../src/node/catch-up.js';
import { Journal } from '../../src/node/journal.js';
import { peerOf } from '../../src/peer.js';
import { decodeLogAnswer, type LoggedEntry } from '../../src/protocol/log-codec.js';
import type { Refusal } from '../../src/protocol/refusal.js';
import { MessageType } from '../../src/protocol/schema.js';
import type { Sealer } from '../../src/protocol/sealer.js';
import { SeededRandom } from '../../src/random.js';
import {
  chainedRuns,
  chainHash,
  MAX_UNSIGNED_RUN,
  originSigner,
  signedBytes,
  verifyOrigin,
} from '../../src/security/gossip-signature.js';
import { sharedKeyCache } from '../../src/security/signature.js';
import { MemoryStore } from '../../src/store/memory.js';
import type { PeerClient } from '../../src/transport/peer-client.js';
import type { InboundResponse } from '../../src/transport/transport.js';

function setup() {
  const store = new MemoryStore();
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const key = (publicKey.export({ format: 'jwk' }).x as string) ?? '';
  const self = peerOf('a'.repeat(32), '10.0.0.1', 1);
  const journal = new Journal({
    store,
    self: () => self,
    publicKey: key,
    clock: new ManualClock(0),
    logger: noopLogger,
    deliver: () => {},
  });
  const signer = originSigner(privateKey);
  const ac = new AbortController();
  const catchUp = new CatchUp({
    journal,
    membership: {} as Membership,
    client: {} as PeerClient,
    sealer: {} as Sealer,
    clock: new ManualClock(0),
    random: new SeededRandom(1),
    logger: noopLogger,
    keys: sharedKeyCache,
    selfId: self.id,
    channels: () => ['b'],
    historyOnJoin: 100,
    repairIntervalMs: 1000,
    tailDelayMs: 5000,
    liveOwedMs: 2000,
    requestTimeoutMs: 1000,
    signal: ac.signal,
  });
  const write = (channel: string, kind: 'broadcast' | 'direct', to?: string) => {
    const log = journal.number(channel);
    const data = new TextEncoder().encode(`${channel}#${log.seq}`);
    const ts = Date.now();
    const type = kind === 'direct' ? MessageType.Direct : MessageType.Broadcast;
    const id = `${channel}-${log.seq}`;
    const sig = signer.sign({ type, id, ts, data: Buffer.from(data).toString('base64'), ...log });
    journal.wrote({ id, kind, ...(to !== undefined ? { to } : {}), log, ts, data, sig });
  };
  /** Writes a plain broadcast as the node does when it sends in full: its log decides the signature. */
  const writeDeferred = (size = 0) => {
    const log = journal.number('b');
    const data =
      size > 0 ? new Uint8Array(size).fill(log.seq % 251) : new TextEncoder().encode(`b#${log.seq}`);
    const ts = Date.now();
    const id = `b-${log.seq}`;
    const signed = signedBytes({
      type: MessageType.Broadcast,
      id,
      ts,
      data: Buffer.from(data).toString('base64'),
      ...log,
    });
    const decisions: string[] = [];
    const pending: PendingSignature = {
      signed,
      sign: () => {
        decisions.push('signed');
        return signer.signBytes(signed);
      },
      skip: () => {
        decisions.push('skipped');
      },
    };
    journal.wrote({ id, kind: 'broadcast', log, ts, data, sig: undefined, pending });
    return decisions;
  };
  return { store, journal, catchUp, write, writeDeferred, self };
}

const isRefusal = (r: InboundResponse | Refusal): r is Refusal => 'reason' in r;

/** The messages of the answer to a log fetch, which must be a 200 that decodes. */
function fetched(catchUp: CatchUp, peer: string, log: Parameters<CatchUp['answer']>[2]): LoggedEntry[] {
  const r = catchUp.answer(peer, MessageType.LogFetch, log);
  assert.ok(!isRefusal(r));
  const got = decodeLogAnswer(r.body as Uint8Array);
  assert.ok(got.ok);
  return [...(got.value.msgs ?? [])];
}

test("a log request may not read another node's direct messages: 403", () => {
  const { catchUp } = setup();
  const r = catchUp.answer('b'.repeat(32), MessageType.LogSummary, { chans: ['b', `d:${'c'.repeat(32)}`] });
  assert.ok(isRefusal(r));
  assert.equal(r.status, 403);
  assert.equal(r.reason, 'forbidden');
  assert.match(r.message, /^forbidden channel: d:c+ is another node's$/);
  const f = catchUp.answer('b'.repeat(32), MessageType.LogFetch, {
    want: [{ origin: 'a'.repeat(32), epoch: 'e', channel: `d:${'c'.repeat(32)}`, from: 1, to: 5 }],
  });
  assert.ok(isRefusal(f) && f.status === 403);
});

test('incomplete log requests are 400 with the missing field named', () => {
  const { catchUp } = setup();
  const s = catchUp.answer('b'.repeat(32), MessageType.LogSummary, undefined);
  assert.ok(isRefusal(s) && s.status === 400 && s.message.endsWith('needs log.chans'));
  const f = catchUp.answer('b'.repeat(32), MessageType.LogFetch, {});
  assert.ok(isRefusal(f) && f.status === 400 && f.message.endsWith('needs log.want or log.last'));
});

test('summaries and fetches serve signed messages of the channels asked, within the bounds', () => {
  const { catchUp, write, self, store } = setup();
  const peer = 'b'.repeat(32);
  for (let i = 0; i < 1_200; i++) write('b', 'broadcast');
  for (let i = 0; i < 3; i++) write(`d:${peer}`, 'direct', peer);
  const sum = catchUp.answer(peer, MessageType.LogSummary, { chans: ['b', `d:${peer}`] });
  assert.ok(!isRefusal(sum) && sum.status === 200);
  const s = decodeLogAnswer(sum.body as Uint8Array);
  assert.ok(s.ok);
  assert.deepEqual(
    s.value.sum?.map((x) => [x.origin, x.channel, x.contiguous]),
    [
      [self.id, 'b', 1200],
      [self.id, `d:${peer}`, 3],
    ],
  );
  const epoch = store.epoch;
  const msgs = fetched(catchUp, peer, {
    want: [{ origin: self.id, epoch, channel: 'b', from: 1, to: 1200 }],
  });
  assert.equal(msgs.length, 1000, 'at most 1,000 messages an answer');
  assert.deepEqual(
    msgs.slice(0, 3).map((m) => [m.seq, m.origin.id, m.sig?.length]),
    [
      [1, self.id, 86],
      [2, self.id, 86],
      [3, self.id, 86],
    ],
  );
  const lastMsgs = fetched(catchUp, peer, { last: { channel: `d:${peer}`, limit: 2 } });
  assert.deepEqual(
    lastMsgs.map((m) => m.seq),
    [2, 3],
  );
  assert.equal(catchUp.stats.messagesServed, 1002);
});

test('served messages chain: one signature vouches for the run, and any change breaks the chain', async () => {
  const { catchUp, write, self, store } = setup();
  for (let i = 0; i < 5; i++) write('b', 'broadcast');
  const peer = 'b'.repeat(32);
  const msgs = fetched(catchUp, peer, {
    want: [{ origin: self.id, epoch: store.epoch, channel: 'b', from: 1, to: 5 }],
  });
  assert.deepEqual(
    msgs.map((m) => m.prev === undefined),
    [true, false, false, false, false],
    'the first message of a stream has no prev',
  );
  assert.deepEqual([...chainedRuns(msgs)], [1, 2, 3, 4, -1]);
  const last = msgs[4]!;
  // The test's node id is made up: check against the id the key really hashes to.
  const id = fingerprint(Buffer.from(last.origin.key!, 'base64url'));
  assert.equal(await verifyOrigin(sharedKeyCache, id, last.origin.key!, last, last.sig), true);
  // Altered data, an altered signature, a renumbered message, another key: each cuts the chain
  // right below the changed message, which then stands alone (and fails its own check).
  const altered = [
    { ...msgs[2]!, data: Buffer.from('forged').toString('base64') },
    { ...msgs[2]!, sig: msgs[1]!.sig },
    { ...msgs[2]!, seq: 7 },
    {
      ...msgs[2]!,
      origin: { ...msgs[2]!.origin, key: msgs[2]!.origin.key!.replace(/^./, (c) => (c === 'A' ? 'B' : 'A')) },
    },
  ];
  for (const bad of altered) {
    const runs = [...chainedRuns([msgs[0]!, msgs[1]!, bad, msgs[3]!, msgs[4]!])];
    assert.equal(runs[2], -1, JSON.stringify(bad).slice(0, 80));
    if (bad.origin.key === msgs[2]!.origin.key)
      assert.equal(await verifyOrigin(sharedKeyCache, id, bad.origin.key!, bad, bad.sig), false);
  }
  // A message whose successor is missing from the answer stands alone too.
  assert.deepEqual([...chainedRuns([msgs[0]!, msgs[1]!, msgs[3]!, msgs[4]!])], [1, -1, 3, -1]);
});

/** The asker's check (`CatchUp.#checkAll`): each chained run is checked by its last signature. */
async function checkedByChain(msgs: readonly LoggedEntry[]): Promise<boolean[]> {
  const next = chainedRuns(msgs);
  const ok: boolean[] = [];
  for (let i = 0; i < msgs.length; i++) {
    let j = i;
    while (next[j] !== -1) j = next[j]!;
    const end = msgs[j]!;
    const id = fingerprint(Buffer.from(end.origin.key!, 'base64url'));
    ok.push(await verifyOrigin(sharedKeyCache, id, end.origin.key!, end, end.sig));
  }
  return ok;
}

test('a burst is signed at its end only, at most 64 in a row unsigned; the chain vouches for the rest', async () => {
  const { catchUp, journal, writeDeferred, self, store } = setup();
  const first = Array.from({ length: 5 }, () => writeDeferred());
  journal.flush();
  assert.deepEqual(
    first.map((d) => d.join()),
    ['skipped', 'skipped', 'skipped', 'skipped', 'signed'],
  );
  const long = Array.from({ length: 2 * MAX_UNSIGNED_RUN + 2 }, () => writeDeferred());
  journal.flush();
  const signedAt = long.flatMap((d, i) => (d.join() === 'signed' ? [5 + i + 1] : []));
  assert.deepEqual(signedAt, [5 + MAX_UNSIGNED_RUN, 5 + 2 * MAX_UNSIGNED_RUN, 5 + 2 * MAX_UNSIGNED_RUN + 2]);
  const total = 5 + long.length;
  // The sig column: key (32 bytes), key and prev (64), key, signature and prev (128).
  const sizes = store
    .readRange({ origin: self.id, epoch: store.epoch, channel: 'b' }, 1, 6)
    .map((e) => e.sig.byteLength);
  assert.deepEqual(sizes, [32, 64, 64, 64, 128, 64]);
  const peer = 'b'.repeat(32);
  // A range that ends inside a burst runs on to its signed end.
  const msgs = fetched(catchUp, peer, {
    want: [{ origin: self.id, epoch: store.epoch, channel: 'b', from: 2, to: 7 }],
  });
  assert.deepEqual(
    msgs.map((m) => m.seq),
    Array.from({ length: 5 + MAX_UNSIGNED_RUN - 1 }, (_, i) => i + 2),
  );
  assert.deepEqual(
    msgs.map((m) => m.sig !== undefined),
    msgs.map((m) => m.seq === 5 || m.seq === 5 + MAX_UNSIGNED_RUN),
  );
  assert.ok((await checkedByChain(msgs)).every((ok) => ok));
  // Altered in the middle of an unsigned run: the messages up to it are refused with it.
  const forged = msgs.map((m) =>
    m.seq === 3 ? { ...m, data: Buffer.from('forged').toString('base64') } : m,
  );
  assert.deepEqual((await checkedByChain(forged)).slice(0, 4), [false, false, true, true]);
  // The whole log checks out.
  const all = fetched(catchUp, peer, {
    want: [{ origin: self.id, epoch: store.epoch, channel: 'b', from: 1, to: total }],
  });
  assert.equal(all.length, total);
  assert.ok((await checkedByChain(all)).every((ok) => ok));
});

test('a member holding an unsigned run without its signed end does not serve it', () => {
  const source = setup();
  for (let i = 0; i < 4; i++) source.writeDeferred();
  source.journal.flush();
  const entries = source.store.readRange(
    { origin: source.self.id, epoch: source.store.epoch, channel: 'b' },
    1,
    4,
  );
  // Another member received 1..3 only (the batch with the signed 4 was lost on the way).
  const holder = setup();
  holder.store.append(entries.slice(0, 3).map((e) => ({ ...e, receivedAt: undefined })));
  const peer = 'c'.repeat(32);
  const want = [{ origin: source.self.id, epoch: source.store.epoch, channel: 'b', from: 1, to: 3 }];
  const msgs = fetched(holder.catchUp, peer, { want });
  assert.deepEqual(msgs, []);
  // Once it holds the end, it serves the run.
  holder.store.append([{ ...entries[3]!, receivedAt: undefined }]);
  const again = fetched(holder.catchUp, peer, { want });
  assert.deepEqual(
    again.map((m) => m.seq),
    [1, 2, 3, 4],
  );
});

test('the chain hash is the SHA-256 of its definition, for small and large messages, signed or not', () => {
  const { privateKey } = generateKeyPairSync('ed25519');
  const signer = originSigner(privateKey);
  for (const size of [10, 3000, 200_000]) {
    const fields = {
      type: MessageType.Broadcast,
      id: `m${size}`,
      ts: 1,
      data: Buffer.alloc(size, 1).toString('base64'),
      epoch: 'e',
      channel: 'b',
      seq: 2,
      prev: 'p'.repeat(43),
    };
    const bytes = signedBytes(fields);
    const sig = signer.signBytes(bytes);
    const expect = (withSig: boolean): string =>
      createHash('sha256')
        .update('tsp2p-chain/1\n')
        .update(bytes)
        .update(withSig ? Buffer.from(sig, 'base64url') : Buffer.alloc(0))
        .digest('base64url');
    assert.equal(chainHash(fields, sig), expect(true), `signed, ${size} B`);
    assert.equal(chainHash(fields, undefined), expect(false), `unsigned, ${size} B`);
    assert.equal(chainHash(fields, '!'.repeat(86)), undefined, `a bad signature, ${size} B`);
  }
});

test('large runs: a run stops, signed, by bytes; an answer past its byte bound finishes the run; large messages are signed alone', async () => {
  const { catchUp, journal, writeDeferred, self, store } = setup();
  const peer = 'b'.repeat(32);
  const stream = { origin: self.id, epoch: store.epoch, channel: 'b' };
  // 500 messages of 10 KB in one task (5 MB, above an answer's 4 MiB), then 20 of 64 KiB.
  for (let i = 0; i < 500; i++) writeDeferred(10_000);
  for (let i = 0; i < 20; i++) writeDeferred(65_536);
  journal.flush();
  const total = 520;
  const runs = store.readRange(stream, 1, total, 1000).map((e) => e.sig.byteLength >= 96);
  let longest = 0;
  let cur = 0;
  for (const signed of runs) {
    cur = signed ? 0 : cur + 1;
    longest = Math.max(longest, cur);
  }
  assert.ok(longest < 30, `a run of ${longest} unsigned 10 KB messages`);
  assert.ok(
    runs.slice(500).every((signed) => signed),
    'every 64 KiB message signed',
  );
  // Fetched from the first missing number on, as an asker does, every message comes and checks.
  let next = 1;
  let answers = 0;
  while (next <= total) {
    const msgs = fetched(catchUp, peer, { want: [{ ...stream, from: next, to: total }] });
    assert.ok(msgs.length > 0, `nothing served from ${next}`);
    assert.equal(msgs[0]!.seq, next);
    assert.ok((await checkedByChain(msgs)).every((ok) => ok));
    assert.ok(msgs[msgs.length - 1]!.sig !== undefined, 'an answer ends on a signed message');
    next = msgs[msgs.length - 1]!.seq + 1;
    answers++;
  }
  assert.ok(answers >= 2 && answers < 10, `${answers} answers`);
});

test('a message signed as it was built, after an open end of the same burst, chains to it unsigned', async () => {
  const { catchUp, journal, write, writeDeferred, self, store } = setup();
  const first = writeDeferred();
  write('b', 'broadcast'); // signed at once (as a relayed or tree message is)
  journal.flush();
  assert.deepEqual(first, ['skipped']);
  const msgs = fetched(catchUp, 'b'.repeat(32), {
    want: [{ origin: self.id, epoch: store.epoch, channel: 'b', from: 1, to: 2 }],
  });
  assert.deepEqual(
    msgs.map((m) => m.sig !== undefined),
    [false, true],
  );
  assert.deepEqual([...chainedRuns(msgs)], [1, -1]);
  assert.ok((await checkedByChain(msgs)).every((ok) => ok));
});
