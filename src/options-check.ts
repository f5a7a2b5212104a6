/**
 * A plain-code check of the common `NodeOptions`, so that starting a node does not load zod
 * (about 13 MB of memory): `resolveOptions` (`options.ts`) runs its zod schema only when this
 * check is unsure, and then the schema decides and names the bad option. The check is
 * conservative: it says yes only for values the schema certainly accepts unchanged, and says no
 * for anything else (TLS material, an unknown option, a rule broken).
 * `test/unit/options-check.test.ts` holds it to that.
 *
 * @module
 */

import type { KeyObject } from 'node:crypto';
import { isValidHost } from './peer.js';
import { FIELD_LIMITS } from './protocol/schema.js';

type Check = (v: unknown) => boolean;

const int =
  (min: number, max = Number.MAX_SAFE_INTEGER): Check =>
  (v) =>
    Number.isSafeInteger(v) && (v as number) >= min && (v as number) <= max;
const positiveInt = int(1);
const positive: Check = (v) => typeof v === 'number' && Number.isFinite(v) && v > 0;
const atLeast =
  (min: number): Check =>
  (v) =>
    typeof v === 'number' && Number.isFinite(v) && v >= min;
const bool: Check = (v) => typeof v === 'boolean';
const text: Check = (v) => typeof v === 'string';
const oneOf =
  (...values: readonly string[]): Check =>
  (v) =>
    typeof v === 'string' && values.includes(v);
const object: Check = (v) => typeof v === 'object' && v !== null;
const plain = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && Object.getPrototypeOf(v) === Object.prototype;
const strict =
  (fields: Readonly<Record<string, Check>>): Check =>
  (v) =>
    plain(v) && fieldsOk(v, fields);

const FIELDS: Readonly<Record<string, Check>> = {
  host: (v) => typeof v === 'string' && isValidHost(v),
  port: int(0, 65535),
  advertise: text,
  name: (v) => typeof v === 'string' && v.length <= FIELD_LIMITS.name,
  tags: (v) => plain(v) && !Object.hasOwn(v, '__proto__') && Object.values(v).every(text),
  maxTagBytes: positiveInt,
  identity: (v) =>
    typeof v === 'string' ||
    v instanceof Uint8Array ||
    (typeof v === 'object' && v !== null && 'asymmetricKeyType' in (v as KeyObject)),
  allowReadableIdentity: bool,
  compat: oneOf('gop2p'),
  secret: (v) => typeof v === 'string' || (Array.isArray(v) && v.every(text)),
  limits: strict({
    maxConnections: positiveInt,
    ratePerSecond: positive,
    rateBurst: positiveInt,
    rateLimitLoopback: bool,
    headersTimeoutMs: positiveInt,
    requestTimeoutMs: positiveInt,
  }),
  maxClockSkewMs: positiveInt,
  maxMessageBytes: int(1, 64 * 1024 * 1024),
  requestTimeoutMs: positiveInt,
  leaveTimeoutMs: positiveInt,
  inboxSize: positiveInt,
  maxMembers: positiveInt,
  deliveryTimeoutMs: positiveInt,
  causalWaitMs: int(0, 600_000),
  backpressure: oneOf('wait', 'reject'),
  maxBatchMessages: int(1, 10_000),
  maxBatchBytes: positiveInt,
  maxQueueMessages: positiveInt,
  maxQueueBytes: positiveInt,
  dissemination: oneOf('full', 'gossip', 'plumtree', 'auto'),
  gossipThreshold: positiveInt,
  fanout: positiveInt,
  maxHops: int(1, 255),
  preset: oneOf('lan', 'wan', 'local'),
  timings: strict({
    probeIntervalMs: positiveInt,
    probeTimeoutMs: positiveInt,
    indirectProbes: int(0),
    suspicionMult: positive,
    suspicionMaxMult: atLeast(1),
    refusedSuspicionMs: positiveInt,
    retransmitMult: positiveInt,
    gossipIntervalMs: positiveInt,
    gossipNodes: positiveInt,
    maxPiggyback: positiveInt,
    pushPullIntervalMs: positiveInt,
    reconnectIntervalMs: positiveInt,
    deadRetentionMs: positiveInt,
    leftRetentionMs: positiveInt,
    maxAwareness: int(0),
    announceLimit: positiveInt,
  }),
  web: bool,
  dataDir: (v) => typeof v === 'string' && v.length >= 1,
  retention: strict({ maxMessages: positiveInt, maxAgeMs: positiveInt }),
  historyOnJoin: int(0, 10_000),
  logger: object,
  clock: object,
  random: object,
  transport: object,
};

function fieldsOk(o: Record<string, unknown>, fields: Readonly<Record<string, Check>>): boolean {
  for (const key of Object.keys(o)) {
    const check = Object.hasOwn(fields, key) ? fields[key] : undefined;
    if (check === undefined) return false; // unknown, even when undefined: the schema is strict
    const value = o[key];
    if (value !== undefined && !check(value)) return false;
  }
  return true;
}

/**
 * Whether `options` certainly passes the options schema, unchanged. `false` means "unsure":
 * the schema must decide (`tls` is always left to it).
 */
export function optionsCertainlyValid(options: unknown): boolean {
  return plain(options) && fieldsOk(options, FIELDS);
}
