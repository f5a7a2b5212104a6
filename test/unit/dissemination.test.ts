import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Dissemination, type DisseminationSettings } from '../../src/delivery/dissemination.js';
import type { OutboundMessage } from '../../src/delivery/outbound.js';
import type { Outbox } from '../../src/delivery/outbox.js';
import type { OwnLog } from '../../src/delivery/own-log.js';
import type { ReceivedMessage } from '../../src/delivery/received-message.js';
import { noopLogger } from '../../src/logger.js';
import type { Member } from '../../src/membership/member-table.js';
import { encodePayloadEntry } from '../../src/protocol/batch-entry.js';
import type { BatchedMessage, WirePeer } from '../../src/protocol/schema.js';
import { MessageIds, Sealer } from '../../src/protocol/sealer.js';
import type { DeliveryReport } from '../../src/types.js';
import { membershipHarness, peer } from '../helpers/unit-membership.js';

const SIG = 'S'.repeat(86);
const MEMBERS = Array.from({ length: 20 }, (_, i) => peer(`m${i}`, 5000 + i));

/** A dissemination over a fake outbox that records what goes where. */
function fixture(
  settings: Partial<DisseminationSettings> = {},
  signedByOrigin = true,
  rooms: { subscribed?: (topic: string) => boolean; droppedPublish?: () => void } = {},
  log?: OwnLog,
) {
  const h = membershipHarness();
  h.joinAll(MEMBERS);
  let audience: readonly Member[] = h.membership.live();
  const delivered: ReceivedMessage[] = [];
  const sent: { msg: OutboundMessage; to: string[] }[] = [];
  const offered: { id: string; to: string; fragment: string }[] = [];
  /** While set, every queue is full: calls wait, or are refused with this error. */
  let full: { refuse?: Error } | undefined;
  const waiting: (() => void)[] = [];
  const sealer = new Sealer({
    self: h.self,
    xkey: 'x',
    incarnation: h.membership,
    signer: { key: 'k', headers: () => ({}) },
    clock: h.clock,
    ids: new MessageIds(h.random),
  });
  const outbox = {
    outbound: (
      type: 2 | 3,
      id: string,
      data: Uint8Array,
      extra: { to?: WirePeer[]; gossip?: { sign(): string } } = {},
    ) => {
      const fragment = encodePayloadEntry(
        {
          type,
          id,
          ts: 1,
          ...(extra.to ? { to: extra.to } : {}),
          ...(extra.gossip ? { hops: 0, sig: SIG } : {}),
        },
        data,
      );
      return { id, fragment, bytes: fragment.length, deadline: 0 } satisfies OutboundMessage;
    },
    deliver: async (msg: OutboundMessage, members: readonly Member[]): Promise<DeliveryReport> => {
      sent.push({ msg, to: members.map((m) => m.peer.id) });
      return { id: msg.id, delivered: members.map((m) => m.peer), failed: [] };
    },
    sizeBound: (id: string, data: Uint8Array) => id.length + data.length,
    room: (_members: readonly Member[], _bytes: number, signal: AbortSignal | undefined) => {
      if (full === undefined) return undefined;
      if (full.refuse !== undefined) return Promise.reject(full.refuse);
      return new Promise<void>((resolve, reject) => {
        waiting.push(resolve);
        signal?.addEventListener('abort', () => reject(signal.reason), { once: true });
      });
    },
    offer: (m: Member, out: OutboundMessage) => {
      offered.push({ id: out.id, to: m.peer.id, fragment: String(out.fragment) });
    },
  };
  const ac = new AbortController();
  const d = new Dissemination({
    settings: {
      mode: 'full',
      gossipThreshold: 64,
      fanout: undefined,
      maxHops: 12,
      deliveryTimeoutMs: 60_000,
      ...settings,
    },
    clock: h.clock,
    random: h.random,
    logger: noopLogger,
    members: h.membership,
    outbox: outbox as unknown as Outbox,
    sealer,
    signer: { sign: () => SIG, signBytes: () => SIG },
    origins: { checkRelayed: () => signedByOrigin },
    audience: () => audience,
    deliver: (m) => delivered.push(m),
    ...rooms,
    ...(log !== undefined ? { log } : {}),
    signal: ac.signal,
  });
  return {
    h,
    d,
    delivered,
    sent,
    offered,
    narrow: (ids: string[]) => {
      audience = h.membership.live().filter((m) => ids.includes(m.peer.id));
    },
    close: () => ac.abort(),
    /** Fills every queue (`refuse`: as `backpressure: 'reject'` does), or frees them. */
    fill: (state: { refuse?: Error } | undefined) => {
      full = state;
    },
    /** Lets every waiting call in, in order. */
    makeRoom: () => {
      full = undefined;
      for (const w of waiting.splice(0)) w();
    },
  };
}

/** A node's log that records what it numbers and what is written to it. */
function recordingLog(): OwnLog & { numbered: string[]; written: string[] } {
  const next = new Map<string, number>();
  const numbered: string[] = [];
  const written: string[] = [];
  return {
    numbered,
    written,
    number: (channel) => {
      const seq = (next.get(channel) ?? 0) + 1;
      next.set(channel, seq);
      numbered.push(`${channel}:${seq}`);
      return { epoch: 'e', channel, seq };
    },
    wrote: (m) => written.push(`${m.id} ${m.log.channel}:${m.log.seq}`),
  };
}

const bytes = (s: string): Uint8Array => Buffer.from(s);

describe('Dissemination', () => {
  test("'full': a broadcast goes to every member of the audience, and only to them", async () => {
    const f = fixture();
    await f.d.broadcast('b1', bytes('hi'), undefined);
    assert.equal(f.sent[0]?.to.length, MEMBERS.length);
    // The rooms hook: a narrower audience narrows the broadcast.
    f.narrow(['m1', 'm2']);
    await f.d.broadcast('b2', bytes('hi'), undefined);
    assert.deepEqual(f.sent[1]?.to.sort(), ['m1', 'm2']);
    f.close();
  });

  test("'gossip': to ⌈ln n⌉ + 7 random members at hop 0 with the origin's signature", async () => {
    const f = fixture({ mode: 'gossip' });
    await f.d.broadcast('g1', bytes('hi'), undefined);
    const [first] = f.sent;
    assert.equal(first?.to.length, Math.ceil(Math.log(MEMBERS.length)) + 7);
    const entry = JSON.parse(String(first?.msg.fragment)) as BatchedMessage;
    assert.equal(entry.hops, 0);
    assert.equal(entry.sig, SIG);
    f.close();
  });

  test('a publish for a topic this node is not in is neither delivered nor passed on, and is counted', () => {
    let dropped = 0;
    const f = fixture({}, true, { subscribed: (t) => t === 'ops', droppedPublish: () => dropped++ });
    const from = MEMBERS[0]!;
    f.d.receive(from, { type: 2, id: 'p1', ts: 1, data: 'aGk=', topic: 'ops' }, bytes('hi'), undefined);
    f.d.receive(from, { type: 2, id: 'p2', ts: 1, data: 'aGk=', topic: 'dev' }, bytes('hi'), undefined);
    f.d.receive(
      from,
      { type: 2, id: 'p3', ts: 1, data: 'aGk=', topic: 'dev', hops: 0, sig: SIG },
      bytes('hi'),
      undefined,
    );
    assert.deepEqual(
      f.delivered.map((m) => `${m.id} ${m.topic}`),
      ['p1 ops'],
    );
    assert.equal(dropped, 2);
    assert.equal(f.d.stats.notSubscribed, 2);
    assert.equal(f.offered.length, 0, 'nothing passed on');
    f.close();
  });

  test('a plain entry is handed to the node at once; a classic one once per sender and id', () => {
    const f = fixture();
    const from = MEMBERS[0]!;
    f.d.receive(from, { type: 3, id: 'd1', ts: 1, data: 'aGk=' }, bytes('hi'), undefined);
    f.d.receiveSingle(from, 'broadcast', 'c1', bytes('x'));
    f.d.receiveSingle(from, 'broadcast', 'c1', bytes('x'));
    f.d.receiveSingle(from, 'direct', undefined, bytes('y'));
    assert.deepEqual(
      f.delivered.map((m) => `${m.type} ${m.from.id} ${m.text}`),
      ['direct m0 hi', 'broadcast m0 x', 'direct m0 y'],
    );
    f.close();
  });

  test('a relayed entry is delivered once and passed on, within the audience, never back to its sender or origin', () => {
    const f = fixture({ mode: 'gossip', fanout: 3 });
    const [sender, origin] = [MEMBERS[0]!, MEMBERS[1]!];
    const entry: BatchedMessage = {
      type: 2,
      id: 'r1',
      ts: 1,
      data: 'aGk=',
      hops: 2,
      origin: { address: origin.address, port: origin.port, id: origin.id, key: 'k' },
      sig: SIG,
    };
    f.d.receive(sender, entry, bytes('hi'), 'senderkey');
    f.d.receive(MEMBERS[2]!, entry, bytes('hi'), 'otherkey');
    assert.deepEqual(
      f.delivered.map((m) => [m.from.id, m.hops]),
      [[origin.id, 2]],
    );
    assert.equal(f.offered.length, 3);
    for (const o of f.offered) {
      assert.ok(o.to !== sender.id && o.to !== origin.id);
      assert.equal((JSON.parse(o.fragment) as BatchedMessage).hops, 3);
    }
    f.close();
  });

  test('a relayed entry not signed by its origin is neither delivered nor passed on', () => {
    const f = fixture({ mode: 'gossip' }, false);
    const origin = MEMBERS[1]!;
    for (const tree of [undefined, true] as const) {
      f.d.receive(
        MEMBERS[0]!,
        {
          type: 2,
          id: `x${tree ?? ''}`,
          ts: 1,
          data: 'aGk=',
          hops: 1,
          origin: { address: origin.address, port: origin.port, id: origin.id, key: 'k' },
          sig: SIG,
          ...(tree ? { tree } : {}),
        },
        bytes('hi'),
        undefined,
      );
    }
    assert.equal(f.delivered.length, 0);
    assert.equal(f.offered.length, 0);
    f.close();
  });

  test('a call that waits for room and gives up is never numbered nor logged: the next one takes its number', async () => {
    const log = recordingLog();
    const f = fixture({}, true, {}, log);
    await f.d.broadcast('a', bytes('a'), undefined);
    f.fill({});
    const ac = new AbortController();
    const abandoned = f.d.broadcast('abandoned', bytes('x'), ac.signal);
    const waiting = f.d.publish('ops', 'p', bytes('p'), undefined);
    const direct = f.d.direct('dm', bytes('d'), [f.h.membership.live()[0]!], undefined);
    // Nothing is numbered while the calls wait.
    assert.deepEqual(log.numbered, ['b:1']);
    const reason = new Error('gave up');
    ac.abort(reason);
    await assert.rejects(abandoned, (err) => err === reason);
    f.makeRoom();
    await Promise.all([waiting, direct]);
    await f.d.broadcast('b', bytes('b'), undefined);
    assert.deepEqual(log.written, [
      'a b:1',
      'p t:ops:1',
      `dm d:${f.h.membership.live()[0]!.peer.id}:1`,
      'b b:2',
    ]);
    assert.deepEqual(
      f.sent.map((s) => s.msg.id),
      ['a', 'p', 'dm', 'b'],
      'the abandoned call queued nothing',
    );
    f.close();
  });

  test("a call refused for want of room ('reject') is never numbered nor logged", async () => {
    const log = recordingLog();
    const f = fixture({}, true, {}, log);
    const refused = new Error('full');
    f.fill({ refuse: refused });
    await assert.rejects(f.d.broadcast('r', bytes('r'), undefined), (err) => err === refused);
    await assert.rejects(f.d.publish('ops', 'rp', bytes('r'), undefined), (err) => err === refused);
    f.fill(undefined);
    await f.d.broadcast('a', bytes('a'), undefined);
    assert.deepEqual(log.written, ['a b:1']);
    f.close();
  });
});
