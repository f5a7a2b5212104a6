/**
 * The pure parts of the command line's input: the lines of `tsp2p node` (a line that starts
 * with `{` is a valid command or invalid, never a broadcast) and the naming of recipients.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { joinFailure } from '../../src/cli/format.js';
import { parseNodeLine } from '../../src/cli/node-input.js';
import { resolveTargets } from '../../src/cli/targets.js';
import {
  ConnectFailedError,
  PeerRefusedError,
  PeerUnreachableError,
  UnauthorizedError,
} from '../../src/errors.js';

// Reproduce a failure with TSP2P_SEED=<seed printed below>.
const SEED = process.env.TSP2P_SEED === undefined ? 20261202 : Number(process.env.TSP2P_SEED);
console.log(`cli-input: fast-check seed ${SEED} (set TSP2P_SEED to replay)`);

describe('parseNodeLine', () => {
  test('the forms of DESIGN.md', () => {
    assert.deepEqual(parseNodeLine('hello {world}'), { kind: 'broadcast', text: 'hello {world}' });
    assert.deepEqual(parseNodeLine('[1,2]'), { kind: 'broadcast', text: '[1,2]' });
    assert.deepEqual(parseNodeLine('{"text":"hi"}'), { kind: 'broadcast', text: 'hi' });
    assert.deepEqual(parseNodeLine(' {"to":"ada","text":"hi"}'), { kind: 'direct', to: ['ada'], text: 'hi' });
    assert.deepEqual(parseNodeLine('{"to":["ada","1.2.3.4:5"],"text":"hi"}'), {
      kind: 'direct',
      to: ['ada', '1.2.3.4:5'],
      text: 'hi',
    });
    assert.deepEqual(parseNodeLine('{"topic":"ops","text":"hi"}'), {
      kind: 'publish',
      topic: 'ops',
      text: 'hi',
    });
    assert.deepEqual(parseNodeLine('{"subscribe":"ops"}'), { kind: 'subscribe', topics: ['ops'] });
    assert.deepEqual(parseNodeLine('{"unsubscribe":["a","b"]}'), { kind: 'unsubscribe', topics: ['a', 'b'] });
    assert.deepEqual(parseNodeLine(''), { kind: 'empty' });
    assert.deepEqual(parseNodeLine(' \t'), { kind: 'empty' });
  });

  test('invalid commands', () => {
    for (const line of [
      '{"to":"ada","text":"hi"',
      '{',
      '{"to":"ada","text":"hi","x":1}',
      '{"to":"ada"}',
      '{"to":[],"text":"hi"}',
      '{"to":["ada",""],"text":"hi"}',
      '{"text":""}',
      '{"text":5}',
      '{"topic":"","text":"x"}',
      '{"subscribe":[]}',
      '{"to":"a","topic":"b","text":"c"}',
      '{}',
    ]) {
      const parsed = parseNodeLine(line);
      assert.equal(parsed.kind, 'invalid', line);
      assert.match((parsed as { message: string }).message, /nothing was sent$/, line);
    }
  });

  test('a line that starts with { is never a broadcast of the line', () => {
    fc.assert(
      fc.property(fc.string(), fc.string(), (ws, rest) => {
        const line = `${ws.replace(/\S/g, ' ')}{${rest}`;
        const parsed = parseNodeLine(line);
        return !(parsed.kind === 'broadcast' && parsed.text === line);
      }),
      { seed: SEED, numRuns: 2000 },
    );
  });
});

describe('resolveTargets', () => {
  const members = [
    { id: 'a'.repeat(32), address: '127.0.0.1', port: 6001, name: 'ada' },
    { id: 'b'.repeat(32), address: '127.0.0.1', port: 6002, name: 'twin' },
    { id: 'c'.repeat(32), address: '127.0.0.1', port: 6003, name: 'twin' },
  ];
  test('addresses, names and ids; one bad entry fails the list and is named', () => {
    assert.deepEqual(resolveTargets(['ada', '6002', 'c'.repeat(32)], members), {
      ok: true,
      targets: ['127.0.0.1:6001', '127.0.0.1:6002', 'c'.repeat(32)],
    });
    const unknown = resolveTargets(['ada', 'bob'], members);
    assert.equal(unknown.ok, false);
    assert.match((unknown as { message: string }).message, /'bob' is neither an address/);
    const twins = resolveTargets(['twin'], members);
    assert.equal(twins.ok, false);
    assert.match((twins as { message: string }).message, /2 members are named 'twin'/);
  });
});

describe('joinFailure', () => {
  const entry = '127.0.0.1:6001';
  test('one clause: the entry once, and the reason in a few words', () => {
    const refusedConn = Object.assign(new Error(`connect ECONNREFUSED ${entry}`), { code: 'ECONNREFUSED' });
    const unreachable = new PeerUnreachableError(
      `cannot reach http://${entry}: connect ECONNREFUSED ${entry} (ECONNREFUSED)`,
      {
        cause: refusedConn,
      },
    );
    const failed = new ConnectFailedError(`cannot connect to ${entry}: ${unreachable.message}`, {
      cause: unreachable,
    });
    assert.equal(
      joinFailure(failed, entry),
      `cannot join through ${entry}: nothing is listening there (connection refused)`,
    );

    const answered = new ConnectFailedError(`${entry} refused to connect: 403 not a member`, {
      cause: new PeerRefusedError(403, 'not a member'),
    });
    assert.equal(joinFailure(answered, entry), `cannot join through ${entry}: it answered 403 not a member`);

    const secret = new ConnectFailedError(
      `cannot connect to ${entry}: ${entry} refused the request: 401 secret`,
      {
        cause: new UnauthorizedError(`${entry} refused the request: 401 secret`),
      },
    );
    assert.equal(joinFailure(secret, entry), `cannot join through ${entry}: it answered 401 secret`);
    for (const err of [failed, answered, secret]) {
      assert.equal(joinFailure(err, entry).split(entry).length - 1, 1, 'the entry appears once');
    }
  });
});
