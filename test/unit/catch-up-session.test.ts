/**
 * The fetching side of catch-up (src/node/catch-up.ts) against a serving one, in memory: a node
 * that missed messages fetches them all, checked and late; and while its application's listeners
 * are behind, it fetches nothing more (what it fetched would only queue for them).
 */

import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { test } from 'node:test';
import { ManualClock } from '../../src/clock.js';
import type { ReceivedMessage } from '../../src/delivery/received-message.js';
import { fingerprint } from '../../src/identity.js';
import { noopLogger } from '../../src/logger.js';
import type { Member } from '../../src/membership/member-table.js';
import type { Membership } from '../../src/membership/membership.js';
import { CatchUp } from '../../src/node/catch-up.js';
import { Journal } from '../../src/node/journal.js';
import { peerOf } from '../../src/peer.js';
import type { LogRequest } from '../../src/protocol/log-schema.js';
import { MessageType } from '../../src/protocol/schema.js';
import type { Sealer } from '../../src/protocol/sealer.js';
import { SeededRandom } from '../../src/random.js';
import { originSigner } from '../../src/security/gossip-signature.js';
import { sharedKeyCache } from '../../src/security/signature.js';
import { MemoryStore } from '../../src/store/memory.js';
import type { PeerClient } from '../../src/transport/peer-client.js';

const COUNT = 8_000;
/**
 * Most clock steps a test waits for its condition: the signature checks run off the main
 * thread in real time, and on a loaded machine take many steps.
 */
const STEPS = 20_000;

/** A node's log on a memory store, with a key whose fingerprint is its id. */
function node(clock: ManualClock, delivered: ReceivedMessage[] = []) {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const key = publicKey.export({ format: 'jwk' }).x as string;
  const self = peerOf(fingerprint(Buffer.from(key, 'base64url')), '10.0.0.1', 1);
  const journal = new Journal({
    store: new MemoryStore(),
    self: () => self,
    publicKey: key,
    clock,
    logger: noopLogger,
    deliver: (messages) => delivered.push(...messages),
  });
  return { self, journal, signer: originSigner(privateKey) };
}

/** A server that wrote `count` plain broadcasts (text `m<i>`, padded to `bytes`), all signed. */
function serverWith(clock: ManualClock, count: number, bytes = 0) {
  const server = node(clock);
  const now = Date.now();
  for (let i = 0; i < count; i++) {
    const log = server.journal.number('b');
    const data = new TextEncoder().encode(`m${i}`.padEnd(bytes, '.'));
    const ts = now - count + i;
    const id = `id${i}`;
    const sig = server.signer.sign({
      type: MessageType.Broadcast,
      id,
      ts,
      data: Buffer.from(data).toString('base64'),
      ...log,
    });
    server.journal.wrote({ id, kind: 'broadcast', log, ts, data, sig });
  }
  server.journal.flush();
  return server;
}

/**
 * An asker that took plain broadcasts in its run before (not a newcomer) and missed everything
 * `server` wrote, its catch-up asking `server` in memory; `run(steps)` lets the session go on
 * (clock steps, and real time for the signature checks).
 */
function askerOf(clock: ManualClock, server: ReturnType<typeof node>, signal: AbortSignal) {
  const deps = {
    membership: {} as Membership,
    client: {} as PeerClient,
    sealer: {} as Sealer,
    clock,
    random: new SeededRandom(1),
    logger: noopLogger,
    keys: sharedKeyCache,
    channels: () => ['b'],
    historyOnJoin: 100,
    repairIntervalMs: 60_000,
    tailDelayMs: 5000,
    liveOwedMs: 40_000,
    requestTimeoutMs: 1_000,
    signal,
  };
  const serving = new CatchUp({ ...deps, journal: server.journal, selfId: server.self.id });
  const delivered: ReceivedMessage[] = [];
  const asker = node(clock, delivered);
  const member: Member = {
    peer: server.self,
    kind: 'tsp2p',
    state: 'alive',
    incarnation: 1,
    lastSeen: 0,
    stateSince: 0,
    record: undefined,
  } as Member;
  // `refuse`: fetch requests (by count) answered 429; `stuck`: every range answered with
  // message 1 only, as a member that lists more than it serves.
  const state = { behind: false, fetches: 0, refuse: new Set<number>(), stuck: false };
  const catchUp = new CatchUp({
    ...deps,
    journal: asker.journal,
    selfId: asker.self.id,
    takenBefore: new Set(['b']),
    listenersBehind: () => state.behind,
    membership: { get: () => member, live: () => [member] } as unknown as Membership,
    sealer: { seal: (type: number, f: { log: LogRequest }) => ({ type, log: f.log }) } as unknown as Sealer,
    client: {
      request: async (_to: unknown, sealed: { type: number; log: LogRequest }) => {
        let log = sealed.log;
        if (sealed.type === MessageType.LogFetch) {
          state.fetches++;
          if (state.refuse.has(state.fetches)) return { status: 429, headers: {}, body: Buffer.from('busy') };
          if (state.stuck && log.want !== undefined)
            log = { want: log.want.map((r) => ({ ...r, from: 1, to: 1 })) };
        }
        const answer = serving.answer(asker.self.id, sealed.type, log);
        assert.ok(!('reason' in answer));
        return { status: answer.status, headers: {}, body: Buffer.from(answer.body as string | Uint8Array) };
      },
    } as unknown as PeerClient,
  });
  const run = async (steps: number): Promise<void> => {
    for (let i = 0; i < steps; i++) {
      await clock.advance(50);
      await new Promise((resolve) => setImmediate(resolve));
    }
  };
  return { catchUp, delivered, state, run };
}

const inOrder = (count: number) => Array.from({ length: count }, (_, i) => `m${i}`);

test('a node catches up what it missed, checked and late; while its listeners are behind, it fetches nothing more', async () => {
  const clock = new ManualClock(0);
  const ac = new AbortController();
  const server = serverWith(clock, COUNT);
  const { catchUp, delivered, state, run } = askerOf(clock, server, ac.signal);
  catchUp.soon(server.self.id);
  for (let i = 0; i < 200 && delivered.length === 0; i++) await run(1);
  assert.ok(delivered.length > 0, 'the first batch came');
  // The listeners fall behind: a request already past its wait may still go; then none.
  state.behind = true;
  await run(40);
  const asked = state.fetches;
  await run(40);
  assert.equal(state.fetches, asked, 'no fetch while the listeners are behind');
  assert.ok(delivered.length < COUNT, `it stopped short (${delivered.length} of ${COUNT})`);
  // They caught up: the rest comes.
  state.behind = false;
  for (let i = 0; i < STEPS && delivered.length < COUNT; i++) await run(1);
  assert.deepEqual(
    delivered.map((m) => m.text),
    inOrder(COUNT),
    'all of them, once each, in order',
  );
  assert.ok(
    delivered.every((m) => m.late === true),
    'late',
  );
  ac.abort();
});

test('answers cut by their byte bound, short of their ranges: what was missed still comes in order', async () => {
  // 10 KB messages: an answer stops at about 4 MiB, some 400 messages into a range of 936,
  // while the next range is already asked for (pipelined).
  const count = 2_500;
  const clock = new ManualClock(0);
  const ac = new AbortController();
  const server = serverWith(clock, count, 10_000);
  const { catchUp, delivered, run } = askerOf(clock, server, ac.signal);
  catchUp.soon(server.self.id);
  for (let i = 0; i < STEPS && delivered.length < count; i++) await run(1);
  assert.deepEqual(
    delivered.map((m) => m.text.replace(/\.+$/, '')),
    inOrder(count),
    'all of them, once each, in order',
  );
  ac.abort();
});

test('a refused answer while the next is in flight: nothing out of order, and the next session brings the rest', async () => {
  const count = 2_500;
  const clock = new ManualClock(0);
  const ac = new AbortController();
  const server = serverWith(clock, count);
  const { catchUp, delivered, state, run } = askerOf(clock, server, ac.signal);
  state.refuse.add(1);
  catchUp.soon(server.self.id);
  await run(300);
  const seqs = () => delivered.map((m) => Number(m.text.slice(1)));
  assert.ok(
    seqs().every((n, i) => i === 0 || n > seqs()[i - 1]!),
    `in order (${seqs().slice(0, 3).join(', ')}...)`,
  );
  catchUp.soon(server.self.id);
  for (let i = 0; i < STEPS && delivered.length < count; i++) await run(1);
  assert.deepEqual(seqs(), [...Array(count).keys()], 'all of them, once each, in order');
  ac.abort();
});

test('a member that answers every range with a little less than asked cannot hold a session for ever', async () => {
  const clock = new ManualClock(0);
  const ac = new AbortController();
  const server = serverWith(clock, 2_500);
  const { catchUp, delivered, state, run } = askerOf(clock, server, ac.signal);
  state.stuck = true;
  catchUp.soon(server.self.id);
  for (let i = 0; i < STEPS && delivered.length === 0; i++) await run(1);
  await run(100);
  const asked = state.fetches;
  await run(100);
  assert.equal(state.fetches, asked, 'the session ended');
  assert.ok(asked <= 4, `${asked} fetches`);
  assert.deepEqual(
    delivered.map((m) => m.text),
    ['m0'],
  );
  ac.abort();
});
