import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ManualClock } from '../../src/clock.js';
import { InvalidOptionsError, P2PError } from '../../src/errors.js';
import { noopLogger } from '../../src/logger.js';
import { memberUpdate } from '../../src/membership/membership.js';
import { Node } from '../../src/node.js';
import {
  DEFAULTS,
  maxBodyBytes,
  type NodeOptions,
  resolveOptions,
  SYNC_ENTRY_BYTES,
} from '../../src/options.js';
import { peerOf } from '../../src/peer.js';
import { SeededRandom } from '../../src/random.js';
import { MemoryNetwork } from '../../src/transport/memory.js';

function assertInvalidOptions(options: unknown, mentions?: string): void {
  assert.throws(
    () => new Node(options as NodeOptions),
    (err: unknown) => {
      assert.ok(err instanceof InvalidOptionsError, `expected InvalidOptionsError, got ${String(err)}`);
      assert.ok(err instanceof P2PError);
      assert.equal(err.code, 'ERR_INVALID_OPTIONS');
      assert.ok(!err.message.includes('\n'), 'one line');
      if (mentions !== undefined) assert.ok(err.message.includes(mentions), err.message);
      return true;
    },
  );
}

describe('new Node() refuses bad options with ERR_INVALID_OPTIONS', () => {
  const bad: [string, unknown, string?][] = [
    ['an unknown option', { prot: 5000 }, 'prot'],
    ['a misspelt option next to good ones', { port: 5000, hots: '127.0.0.1' }, 'hots'],
    ['port -1', { port: -1 }, 'port'],
    ['port 65536', { port: 65536 }, 'port'],
    ['port 1.5', { port: 1.5 }, 'port'],
    ['port as a string', { port: '5000' }, 'port'],
    ['host with a space', { host: 'bad host' }, 'host'],
    ['empty host', { host: '' }, 'host'],
    ['host with a port', { host: '127.0.0.1:5000' }, 'host'],
    ['name of 65 characters', { name: 'n'.repeat(65) }, 'name'],
    ['name as a number', { name: 42 }, 'name'],
    ['advertise without a port', { advertise: 'nope' }, 'advertise'],
    ['advertise with port 0', { advertise: '127.0.0.1:0' }, 'advertise'],
    ['advertise an unspecified address', { advertise: '0.0.0.0:7000' }, 'advertise'],
    ['advertise an unspecified IPv6 address', { advertise: '[::]:7000' }, 'advertise'],
    ['advertise as an object', { advertise: { address: '127.0.0.1', port: 1 } }, 'advertise'],
    ['compat other than gop2p', { compat: 'libp2p' }, 'compat'],
    ['compat true', { compat: true }, 'compat'],
    ['maxMessageBytes 0', { maxMessageBytes: 0 }, 'maxMessageBytes'],
    ['maxMessageBytes over 64 MiB', { maxMessageBytes: 64 * 1024 * 1024 + 1 }, 'maxMessageBytes'],
    ['requestTimeoutMs negative', { requestTimeoutMs: -1 }, 'requestTimeoutMs'],
    ['requestTimeoutMs Infinity', { requestTimeoutMs: Number.POSITIVE_INFINITY }, 'requestTimeoutMs'],
    ['leaveTimeoutMs 0', { leaveTimeoutMs: 0 }, 'leaveTimeoutMs'],
    ['inboxSize 0', { inboxSize: 0 }, 'inboxSize'],
    ['maxMembers 2.5', { maxMembers: 2.5 }, 'maxMembers'],
    ['identity as a number', { identity: 42 }, 'identity'],
    ['identity seed of 31 bytes', { identity: new Uint8Array(31) }],
    [
      'identity PEM that is not a key',
      { identity: '-----BEGIN PRIVATE KEY-----\nnope\n-----END PRIVATE KEY-----' },
    ],
    ['logger as a string', { logger: 'console' }, 'logger'],
    ['clock null', { clock: null }, 'clock'],
    ['random as a number', { random: 4 }, 'random'],
    ['transport as a string', { transport: 'http' }, 'transport'],
    ['options null', null],
    ['options as a string', '127.0.0.1:5000'],
  ];
  for (const [name, options, mentions] of bad) {
    test(name, () => assertInvalidOptions(options, mentions));
  }

  test('a bad advertise keeps the address error as cause', () => {
    try {
      resolveOptions({ advertise: 'nope' });
      assert.fail('should throw');
    } catch (err) {
      assert.ok(err instanceof InvalidOptionsError);
      assert.equal((err.cause as P2PError).code, 'ERR_INVALID_ADDRESS');
    }
  });
});

describe('valid options', () => {
  test('defaults', () => {
    const o = resolveOptions();
    assert.equal(o.host, '127.0.0.1');
    assert.equal(o.port, 0);
    assert.equal(o.maxMessageBytes, 1024 * 1024);
    assert.equal(o.requestTimeoutMs, DEFAULTS.requestTimeoutMs);
    assert.equal(o.leaveTimeoutMs, DEFAULTS.leaveTimeoutMs);
    assert.equal(o.inboxSize, DEFAULTS.inboxSize);
    assert.equal(o.maxMembers, DEFAULTS.maxMembers);
    assert.equal(o.advertise, undefined);
    assert.equal(o.compat, undefined);
    assert.deepEqual(resolveOptions({}), o);
    assert.ok(Object.isFrozen(DEFAULTS));
  });

  test('given values are kept, advertise is parsed', () => {
    const o = resolveOptions({
      host: '::1',
      port: 65535,
      name: 'n'.repeat(64),
      advertise: '[::1]:7000',
      compat: 'gop2p',
      maxMessageBytes: 10,
      requestTimeoutMs: 1,
      leaveTimeoutMs: 2,
      inboxSize: 3,
      maxMembers: 4,
    });
    assert.equal(o.host, '::1');
    assert.equal(o.port, 65535);
    assert.equal(o.name, 'n'.repeat(64));
    assert.deepEqual(o.advertise, { host: '::1', port: 7000 });
    assert.equal(o.compat, 'gop2p');
    assert.equal(o.maxMessageBytes, 10);
    assert.equal(o.requestTimeoutMs, 1);
    assert.equal(o.leaveTimeoutMs, 2);
    assert.equal(o.inboxSize, 3);
    assert.equal(o.maxMembers, 4);
  });

  test('constructing a Node does not listen, and the node is stopped', () => {
    const node = new Node({ port: 5000, host: '0.0.0.0', name: 'ada', compat: 'gop2p', advertise: 'h:1' });
    assert.equal(node.status, 'stopped');
    assert.equal(node.isConnected, false);
    assert.deepEqual(node.members(), []);
    assert.match(node.id, /^[0-9a-f]{32}$/);
    assert.throws(() => node.self, { code: 'ERR_NOT_STARTED' });
  });

  test('undefined values mean the default', () => {
    assert.doesNotThrow(() => new Node({ host: undefined, port: undefined, name: undefined }));
  });

  test('advertise and name show in self once started', async (t) => {
    const clock = new ManualClock();
    const network = new MemoryNetwork({ clock, random: new SeededRandom(1) });
    const node = new Node({
      clock,
      random: new SeededRandom(2),
      transport: network.transport(),
      logger: noopLogger,
      name: 'ada',
      advertise: 'node-a.example:7000',
    });
    t.after(() => node.stop());
    const self = await node.start();
    assert.deepEqual(self, { id: node.id, address: 'node-a.example', port: 7000, name: 'ada' });
    assert.equal(node.self, self);
  });

  test('maxBodyBytes leaves room for a base64 payload of maxMessageBytes', () => {
    for (const n of [1, 3, 1000, 1024 * 1024]) {
      assert.ok(maxBodyBytes(n) >= Math.ceil(n / 3) * 4 + 1024, String(n));
    }
  });

  test('maxBodyBytes leaves room for a push-pull of maxMembers members', () => {
    // A full state of 10,000 members with a name each is about 3 MB: above the message cap of
    // the default 1 MiB (1.92 MB), so a push-pull of a network that large needs the member term.
    assert.equal(maxBodyBytes(1024 * 1024), 10_000 * SYNC_ENTRY_BYTES + 512 * 1024);
    assert.equal(maxBodyBytes(1024 * 1024, 10_000), maxBodyBytes(1024 * 1024));
    // An entry as a push-pull carries it (memberUpdate, as Membership.state makes them), with a
    // name, two tags and three rooms, a suspect whose record is older than its incarnation.
    const fields = { tags: { role: 'db', zone: 'eu-west' }, topics: ['ops', 'chat', 'alerts'] };
    const entry = JSON.stringify(
      memberUpdate({
        peer: peerOf('0123456789abcdef0123456789abcdef', '192.168.100.200', 46001, 'peer-abcd', fields),
        kind: 'tsp2p',
        state: 'suspect',
        incarnation: 1_733_300_000,
        lastSeen: 0,
        stateSince: 0,
        record: { inc: 1_733_299_999, key: 'A'.repeat(43), sig: 'B'.repeat(86), ...fields },
      }),
    );
    assert.ok(entry.length + 1 < SYNC_ENTRY_BYTES, `${entry.length} B`);
    assert.equal(maxBodyBytes(16 * 1024 * 1024, 100), Math.ceil((16 * 1024 * 1024) / 3) * 4 + 512 * 1024);
    assert.equal(maxBodyBytes(1024, 100_000), 100_000 * SYNC_ENTRY_BYTES + 512 * 1024);
  });
});
