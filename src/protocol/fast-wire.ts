/**
 * Plain-code checks for the rest of the wire format: the envelopes of membership and catch-up
 * (ping, ping-req, sync, gossip, connect, leave, log requests; batches are `fast-batch.ts`'s), the
 * answers to them, and a connect answer's member list.
 *
 * Same contract as `fast-batch.ts`: each returns the value only when it is sure that the zod
 * schema ({@link wireSchemas}) accepts it with the same result, and `undefined` whenever it is
 * unsure (an unknown field, which zod would strip; any rule broken); the decoder then runs zod,
 * which decides and gives the precise refusal. zod thus stays the reference, but is loaded only
 * for unusual input: an idle node never loads it (about 13 MB of memory).
 * `test/unit/fast-wire.test.ts` checks on generated and mutated values that whatever these accept,
 * zod accepts too, with the same result.
 *
 * @module
 */

import type * as Z from 'zod';
import {
  isCanonicalBase64,
  isIncarnation,
  isInt,
  isMessage,
  isNonNegative,
  isObject,
  isPeer,
  isSelfRecord,
  isText,
  type Obj,
  onlyKeys,
} from './fast-batch.js';
import { CATCH_UP_LIMITS } from './log-schema.js';
import {
  type Ack,
  type Envelope,
  FIELD_LIMITS,
  isKnownType,
  MAX_UPDATES,
  type MemberList,
  MessageType,
  type WirePeer,
  type WireSchemas,
} from './schema.js';

type LogAnswer = Z.infer<WireSchemas['LogAnswerSchema']>;

const ENVELOPE_KEYS = new Set([
  'type',
  'data',
  'from',
  'to',
  'v',
  'id',
  'ts',
  'm',
  'target',
  'announce',
  'digest',
  'stream',
  'seq',
  'base',
  'log',
]);
const UPDATE_KEYS = new Set([
  'id',
  'address',
  'port',
  'name',
  'state',
  'inc',
  'by',
  'kind',
  'key',
  'rsig',
  'rinc',
  'tags',
  'topics',
]);
const STATES = new Set(['alive', 'suspect', 'dead', 'left']);
const ACK_KEYS = new Set(['ack', 'refused', 'm', 'digest']);
const LOG_KEYS = new Set(['chans', 'want', 'last']);
const RANGE_KEYS = new Set(['origin', 'epoch', 'channel', 'from', 'to']);
const LAST_KEYS = new Set(['channel', 'limit']);
const ANSWER_KEYS = new Set(['sum', 'msgs']);
const SUMMARY_KEYS = new Set(['origin', 'epoch', 'channel', 'contiguous', 'floor', 'above']);
const CHANNEL_TEXT = /^(b|t:[A-Za-z0-9\-_.:/]{1,64}|d:[^\s]{1,128})$/;

/**
 * `raw` as an envelope of any known type but a batch (8) when it certainly is a valid one;
 * `undefined` when unsure.
 */
export function fastEnvelope(raw: Obj): Envelope | undefined {
  const type = raw.type;
  if (!Number.isSafeInteger(type) || type === MessageType.Batch || !isKnownType(type as number))
    return undefined;
  if (!onlyKeys(raw, ENVELOPE_KEYS) || !isPeer(raw.from)) return undefined;
  if (
    raw.data !== undefined &&
    raw.data !== null &&
    !(typeof raw.data === 'string' && isCanonicalBase64(raw.data))
  ) {
    return undefined;
  }
  if (raw.to !== undefined && raw.to !== null && !isPeers(raw.to, FIELD_LIMITS.recipients)) return undefined;
  if (raw.v !== undefined && !isInt(raw.v, 1)) return undefined;
  if (raw.id !== undefined && !isText(raw.id, 1, FIELD_LIMITS.messageId)) return undefined;
  if (raw.ts !== undefined && !isNonNegative(raw.ts)) return undefined;
  if (raw.m !== undefined && !isUpdates(raw.m)) return undefined;
  if (raw.target !== undefined && !isPeer(raw.target)) return undefined;
  if (raw.announce !== undefined && typeof raw.announce !== 'boolean') return undefined;
  if (raw.digest !== undefined && !isText(raw.digest, 1, 64)) return undefined;
  if (raw.stream !== undefined && !isText(raw.stream, 1, FIELD_LIMITS.messageId)) return undefined;
  if (raw.seq !== undefined && !isInt(raw.seq, 1)) return undefined;
  if (raw.base !== undefined && !isInt(raw.base, 1)) return undefined;
  if (raw.log !== undefined && !isLogRequest(raw.log)) return undefined;
  return raw as Envelope;
}

/** `raw` as the answer to a membership request when it certainly is a valid one. */
export function fastAck(raw: unknown): Ack | undefined {
  if (!isObject(raw) || !onlyKeys(raw, ACK_KEYS)) return undefined;
  if (raw.ack !== undefined && typeof raw.ack !== 'boolean') return undefined;
  if (raw.refused !== undefined && typeof raw.refused !== 'boolean') return undefined;
  if (raw.m !== undefined && !isUpdates(raw.m)) return undefined;
  if (raw.digest !== undefined && !isText(raw.digest, 1, 64)) return undefined;
  return raw as Ack;
}

/** `raw` as a connect answer's member list when it certainly is a valid one (JSON `null` is `[]`). */
export function fastMemberList(raw: unknown): MemberList | undefined {
  if (raw === null) return [];
  return isPeers(raw, 100_000) ? (raw as MemberList) : undefined;
}

/** `raw` as a wire peer when it certainly is a valid one. */
export function fastPeer(raw: unknown): WirePeer | undefined {
  return isPeer(raw) ? (raw as WirePeer) : undefined;
}

/** `raw` as the answer to a log request when it certainly is a valid one. */
export function fastLogAnswer(raw: unknown): LogAnswer | undefined {
  if (!isObject(raw) || !onlyKeys(raw, ANSWER_KEYS)) return undefined;
  const { sum, msgs } = raw;
  if (sum !== undefined) {
    if (!Array.isArray(sum) || sum.length > CATCH_UP_LIMITS.streams) return undefined;
    for (const s of sum) if (!isSummary(s)) return undefined;
  }
  if (msgs !== undefined) {
    if (!Array.isArray(msgs) || msgs.length > CATCH_UP_LIMITS.messages) return undefined;
    for (const m of msgs) if (!isLoggedEntry(m)) return undefined;
  }
  return raw as LogAnswer;
}

function isPeers(v: unknown, max: number): boolean {
  if (!Array.isArray(v) || v.length > max) return false;
  for (const p of v) if (!isPeer(p)) return false;
  return true;
}

function isUpdates(v: unknown): boolean {
  if (!Array.isArray(v) || v.length > MAX_UPDATES) return false;
  for (const u of v) if (!isUpdate(u)) return false;
  return true;
}

function isUpdate(u: unknown): boolean {
  if (!isObject(u) || !onlyKeys(u, UPDATE_KEYS)) return false;
  if (!isText(u.id, 1, FIELD_LIMITS.id) || !isText(u.address, 1, FIELD_LIMITS.address)) return false;
  if (!(isInt(u.port, 1) && (u.port as number) <= 65535)) return false;
  if (u.name !== undefined && !isText(u.name, 0, FIELD_LIMITS.name)) return false;
  if (typeof u.state !== 'string' || !STATES.has(u.state) || !isIncarnation(u.inc)) return false;
  if (u.by !== undefined && !isText(u.by, 1, FIELD_LIMITS.id)) return false;
  if (u.kind !== undefined && u.kind !== 'gop2p') return false;
  return isSelfRecord(u);
}

function isChannel(v: unknown): boolean {
  return typeof v === 'string' && CHANNEL_TEXT.test(v);
}

function isLogRequest(v: unknown): boolean {
  if (!isObject(v) || !onlyKeys(v, LOG_KEYS)) return false;
  const { chans, want, last } = v;
  if (chans !== undefined) {
    if (!Array.isArray(chans) || chans.length < 1 || chans.length > CATCH_UP_LIMITS.channels) return false;
    for (const c of chans) if (!isChannel(c)) return false;
  }
  if (want !== undefined) {
    if (!Array.isArray(want) || want.length > CATCH_UP_LIMITS.ranges) return false;
    for (const r of want) if (!isRange(r)) return false;
  }
  if (last !== undefined) {
    if (!isObject(last) || !onlyKeys(last, LAST_KEYS) || !isChannel(last.channel)) return false;
    if (!(isInt(last.limit, 1) && (last.limit as number) <= CATCH_UP_LIMITS.messages)) return false;
  }
  return true;
}

function isRange(r: unknown): boolean {
  if (!isObject(r) || !onlyKeys(r, RANGE_KEYS)) return false;
  if (!isText(r.origin, 1, 128) || !isText(r.epoch, 1, 128) || !isChannel(r.channel)) return false;
  return isInt(r.from, 1) && isInt(r.to, 1) && (r.from as number) <= (r.to as number);
}

function isSummary(s: unknown): boolean {
  if (!isObject(s) || !onlyKeys(s, SUMMARY_KEYS)) return false;
  if (!isText(s.origin, 1, 128) || !isText(s.epoch, 1, 128) || !isChannel(s.channel)) return false;
  if (!isInt(s.contiguous, 0) || !isInt(s.floor, 1)) return false;
  const above = s.above;
  if (!Array.isArray(above) || above.length > CATCH_UP_LIMITS.summaryRanges) return false;
  for (const pair of above) {
    if (!Array.isArray(pair) || pair.length !== 2 || !isInt(pair[0], 1) || !isInt(pair[1], 1)) return false;
  }
  return true;
}

function isLoggedEntry(m: unknown): boolean {
  if (!isObject(m) || (m.type !== MessageType.Broadcast && m.type !== MessageType.Direct)) return false;
  if (m.origin === undefined || m.epoch === undefined) return false;
  if (m.channel === undefined || m.seq === undefined) return false;
  return isMessage(m);
}
