/**
 * `Outbox.sizeBound`: a caller asks the queues for room before its message is numbered and
 * signed, so the bound must hold whatever the log number, chain hash and signature turn out to be.
 */

import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { Outbox, type OutboxDeps } from '../../src/delivery/outbox.js';
import { MessageType } from '../../src/protocol/schema.js';

const outbox = new Outbox({
  sealer: { now: () => 1_733_200_000_000 },
  clock: { now: () => 0 },
  options: { deliveryTimeoutMs: 1 },
} as unknown as OutboxDeps);

const SIG = { sign: () => 'S'.repeat(86), signBytes: () => 'S'.repeat(86) };
const topicName = fc.stringMatching(/^[A-Za-z0-9\-_.:/]{1,64}$/);

test('sizeBound is at least the size of the entry built, whatever its number and signature', () => {
  fc.assert(
    fc.property(
      fc.uint8Array({ maxLength: 3000 }),
      fc.option(topicName, { nil: undefined }),
      fc.array(fc.string({ minLength: 1, maxLength: 40, unit: 'binary' }), { maxLength: 8 }),
      fc.boolean(),
      fc.boolean(),
      fc.boolean(),
      (data, topic, deps, gossip, direct, deferSig) => {
        const id = 'i'.repeat(22);
        const to = direct ? [{ address: '203.0.113.200', port: 65535, id: 'k'.repeat(43) }] : undefined;
        const channel = direct ? `d:${'k'.repeat(43)}` : topic !== undefined ? `t:${topic}` : 'b';
        const msg = outbox.outbound(direct ? MessageType.Direct : MessageType.Broadcast, id, data, {
          ...(to !== undefined ? { to } : {}),
          ...(topic !== undefined && !direct ? { topic, deps } : {}),
          ...(gossip ? { gossip: SIG } : { signer: SIG, deferSig }),
          log: { epoch: 'e'.repeat(16), channel, seq: Number.MAX_SAFE_INTEGER, prev: 'p'.repeat(43) },
        });
        if (msg.pending !== undefined) {
          // Its log decides: the entry without a signature, or with one, never above `bytes`.
          const unsigned = msg.fragment.length;
          assert.ok(unsigned <= msg.bytes);
          assert.throws(() => msg.pending?.sign(), /decided already/);
          const again = outbox.outbound(MessageType.Broadcast, id, data, {
            signer: SIG,
            deferSig: true,
            log: { epoch: 'e'.repeat(16), channel: 'b', seq: 1 },
          });
          again.pending?.sign();
          assert.ok(again.fragment.length <= again.bytes, `${again.fragment.length} > ${again.bytes}`);
          assert.match(String(again.fragment), /"sig":"S{86}"/);
        }
        const bound = outbox.sizeBound(id, data, {
          ...(to !== undefined ? { to } : {}),
          ...(topic !== undefined && !direct ? { topic, deps } : {}),
        });
        assert.ok(bound >= msg.bytes, `bound ${bound} < ${msg.bytes} bytes`);
      },
    ),
  );
});
