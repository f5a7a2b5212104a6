import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  AddressInUseError,
  AlreadyStartedError,
  ConnectFailedError,
  ForbiddenError,
  HTTP_STATUS_BY_CODE,
  httpStatusOf,
  InvalidAddressError,
  InvalidMessageError,
  InvalidOptionsError,
  InvalidTopicError,
  MessageTooLargeError,
  NotConnectedError,
  NotStartedError,
  P2PError,
  type P2PErrorCode,
  PeerRefusedError,
  PeerUnreachableError,
  ProtocolError,
  StoppedError,
  StoreCorruptError,
  StoreLockedError,
  StoreVersionError,
  TagsTooLargeError,
  TimeoutError,
  UnauthorizedError,
  UnknownPeerError,
} from '../../src/errors.js';
import * as publicApi from '../../src/index.js';

const cases: [string, () => P2PError, P2PErrorCode][] = [
  ['NotStartedError', () => new NotStartedError(), 'ERR_NOT_STARTED'],
  ['AlreadyStartedError', () => new AlreadyStartedError(), 'ERR_ALREADY_STARTED'],
  ['NotConnectedError', () => new NotConnectedError(), 'ERR_NOT_CONNECTED'],
  ['InvalidAddressError', () => new InvalidAddressError('bad'), 'ERR_INVALID_ADDRESS'],
  ['InvalidOptionsError', () => new InvalidOptionsError('bad'), 'ERR_INVALID_OPTIONS'],
  ['InvalidMessageError', () => new InvalidMessageError('bad'), 'ERR_INVALID_MESSAGE'],
  ['ConnectFailedError', () => new ConnectFailedError('bad'), 'ERR_CONNECT_FAILED'],
  ['UnknownPeerError', () => new UnknownPeerError('bad'), 'ERR_UNKNOWN_PEER'],
  ['MessageTooLargeError', () => new MessageTooLargeError('bad'), 'ERR_MESSAGE_TOO_LARGE'],
  ['UnauthorizedError', () => new UnauthorizedError('bad'), 'ERR_UNAUTHORIZED'],
  ['ForbiddenError', () => new ForbiddenError('bad'), 'ERR_FORBIDDEN'],
  ['TimeoutError', () => new TimeoutError(), 'ERR_TIMEOUT'],
  ['PeerUnreachableError', () => new PeerUnreachableError('bad'), 'ERR_PEER_UNREACHABLE'],
  ['PeerRefusedError', () => new PeerRefusedError(403, 'Peer not registered'), 'ERR_PEER_REFUSED'],
  ['ProtocolError', () => new ProtocolError('bad'), 'ERR_PROTOCOL'],
  ['AddressInUseError', () => new AddressInUseError('bad'), 'ERR_ADDRESS_IN_USE'],
  ['StoppedError', () => new StoppedError(), 'ERR_STOPPED'],
  ['StoreCorruptError', () => new StoreCorruptError('bad'), 'ERR_STORE_CORRUPT'],
  ['StoreVersionError', () => new StoreVersionError(3, 2, '/d/tsp2p.db'), 'ERR_STORE_VERSION'],
  ['StoreLockedError', () => new StoreLockedError('/d'), 'ERR_STORE_LOCKED'],
  ['InvalidTopicError', () => new InvalidTopicError('bad'), 'ERR_INVALID_TOPIC'],
  ['TagsTooLargeError', () => new TagsTooLargeError('bad'), 'ERR_TAGS_TOO_LARGE'],
];

describe('error classes', () => {
  for (const [className, make, code] of cases) {
    test(`${className} has code ${code}`, () => {
      const err = make();
      assert.equal(err.code, code);
      assert.equal(err.name, className);
      assert.ok(err instanceof P2PError);
      assert.ok(err instanceof Error);
      assert.ok(err.message.length > 0, 'has a message');
      assert.ok(!err.message.includes('\n'), 'one line');
      assert.deepEqual(err.toJSON(), { code, message: err.message });
      assert.ok(String(err).startsWith(`${className}: `));
      assert.ok(err.stack?.includes(className));
    });
  }

  test('every code has exactly one class', () => {
    assert.equal(new Set(cases.map((c) => c[2])).size, cases.length);
  });

  test('the public surface exports every class', () => {
    const api = publicApi as Record<string, unknown>;
    assert.equal(api.P2PError, P2PError);
    for (const [className, make] of cases) {
      assert.equal(api[className], make().constructor, `${className} is exported`);
    }
  });

  test('P2PError itself is named P2PError and keeps its code', () => {
    const err = new P2PError('ERR_PROTOCOL', 'x');
    assert.equal(err.name, 'P2PError');
    assert.equal(err.code, 'ERR_PROTOCOL');
  });

  test('cause is kept', () => {
    const cause = new Error('ECONNREFUSED');
    assert.equal(new ConnectFailedError('cannot connect', { cause }).cause, cause);
    assert.equal(new InvalidOptionsError('bad', { cause }).cause, cause);
    assert.equal(new PeerUnreachableError('down', { cause }).cause, cause);
  });

  test('PeerRefusedError keeps the status and body of the answer', () => {
    const err = new PeerRefusedError(403, 'Peer not registered');
    assert.equal(err.status, 403);
    assert.equal(err.body, 'Peer not registered');
    assert.match(err.message, /403/);
    assert.equal(new PeerRefusedError(500, '').message.endsWith(' '), false);
  });

  test('the default messages can be replaced', () => {
    assert.equal(new NotStartedError('custom').message, 'custom');
    assert.equal(new TimeoutError('no answer within 5 ms').message, 'no answer within 5 ms');
  });
});

describe('httpStatusOf', () => {
  const table: [P2PError, number][] = [
    [new InvalidMessageError('x'), 400],
    [new ProtocolError('x'), 400],
    [new InvalidAddressError('x'), 400],
    [new UnauthorizedError('x'), 401],
    [new ForbiddenError('x'), 403],
    [new UnknownPeerError('x'), 403],
    [new MessageTooLargeError('x'), 413],
    [new TimeoutError(), 408],
    [new StoppedError(), 503],
    [new NotStartedError(), 503],
    [new PeerRefusedError(404, 'x'), 500],
    [new AddressInUseError('x'), 500],
    [new ConnectFailedError('x'), 500],
  ];
  for (const [err, status] of table) {
    test(`${err.code} -> ${status}`, () => assert.equal(httpStatusOf(err), status));
  }

  test('anything that is not a P2PError is 500', () => {
    for (const v of [
      new Error('x'),
      new TypeError('x'),
      'oops',
      undefined,
      null,
      { code: 'ERR_FORBIDDEN' },
    ]) {
      assert.equal(httpStatusOf(v), 500);
    }
  });

  test('the table is frozen and only maps to 4xx/5xx', () => {
    assert.ok(Object.isFrozen(HTTP_STATUS_BY_CODE));
    for (const status of Object.values(HTTP_STATUS_BY_CODE)) assert.ok(status >= 400 && status < 600);
  });
});
