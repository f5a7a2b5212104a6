/**
 * Rooms and tags: the rules for topic names and for a node's tags. Pure functions, no I/O.
 *
 * - A **topic** is a name of 1 to {@link TOPIC_LIMITS}.nameBytes bytes made of ASCII letters,
 *   digits and `-_.:/`. A node holds at most {@link TOPIC_LIMITS}.perNode topics.
 * - **Tags** are a small map of strings. Their size is the sum of the UTF-8 bytes of every key
 *   and value, at most `maxTagBytes` (default {@link DEFAULT_MAX_TAG_BYTES}). Each tag must also
 *   fit what every node accepts on the wire ({@link TAG_LIMITS}): at most 16 tags, keys of 1 to
 *   32 characters, values of at most 128.
 *
 * Too much is a typed error at once ({@link InvalidTopicError}, {@link TagsTooLargeError}), at
 * the call that asked for it: never a crash later, never a refusal by other nodes.
 *
 * @module
 */

import { InvalidOptionsError, InvalidTopicError, TagsTooLargeError } from './errors.js';

/** Limits on topics. */
export const TOPIC_LIMITS = Object.freeze({
  /** Longest topic name, in bytes (every allowed character is one byte). */
  nameBytes: 64,
  /** Most topics one node may be subscribed to (what its membership entry carries). */
  perNode: 32,
});

/** Limits on each tag, as every node accepts them in a membership entry. */
export const TAG_LIMITS = Object.freeze({
  /** Most tags. */
  count: 16,
  /** Longest tag name, in characters. */
  keyChars: 32,
  /** Longest tag value, in characters. */
  valueChars: 128,
});

/** The default of `maxTagBytes`: the UTF-8 bytes of every tag name and value together. */
export const DEFAULT_MAX_TAG_BYTES = 512;

/** A node's tags: tag name to value. */
export type Tags = Readonly<Record<string, string>>;

const TOPIC = /^[A-Za-z0-9\-_.:/]{1,64}$/;

/** Whether `topic` is a valid topic name (1 to 64 bytes: letters, digits and `-_.:/`). */
export function isValidTopic(topic: unknown): topic is string {
  return typeof topic === 'string' && TOPIC.test(topic);
}

/**
 * Returns `topic` when it is a valid topic name.
 *
 * @throws {InvalidTopicError} `ERR_INVALID_TOPIC`, saying what is wrong with it.
 */
export function validateTopic(topic: unknown): string {
  if (isValidTopic(topic)) return topic;
  if (typeof topic !== 'string')
    throw new InvalidTopicError(`invalid topic: expected a string, got ${typeof topic}`);
  if (topic.length === 0) throw new InvalidTopicError('invalid topic: empty');
  const bytes = Buffer.byteLength(topic);
  if (bytes > TOPIC_LIMITS.nameBytes) {
    throw new InvalidTopicError(`invalid topic: ${bytes} bytes, at most ${TOPIC_LIMITS.nameBytes}`);
  }
  const bad = [...topic].find((c) => !/^[A-Za-z0-9\-_.:/]$/.test(c));
  throw new InvalidTopicError(
    `invalid topic ${JSON.stringify(topic)}: ${JSON.stringify(bad)} is not allowed (letters, digits and -_.:/ only)`,
  );
}

/** The size of `tags` as `maxTagBytes` counts it: the UTF-8 bytes of every name and value. */
export function tagBytes(tags: Tags): number {
  let n = 0;
  for (const [k, v] of Object.entries(tags)) n += Buffer.byteLength(k) + Buffer.byteLength(v);
  return n;
}

/**
 * Returns a copy of `tags` (keys sorted) when they fit `maxTagBytes` and {@link TAG_LIMITS}.
 *
 * @throws {TagsTooLargeError} `ERR_TAGS_TOO_LARGE` naming the limit exceeded.
 * @throws {InvalidOptionsError} `ERR_INVALID_OPTIONS` for a value that is not a map of strings,
 *   or an empty tag name.
 */
export function validateTags(
  tags: unknown,
  maxTagBytes: number = DEFAULT_MAX_TAG_BYTES,
): Record<string, string> {
  if (typeof tags !== 'object' || tags === null || Array.isArray(tags)) {
    throw new InvalidOptionsError('invalid tags: expected an object of strings');
  }
  const entries = Object.entries(tags as Record<string, unknown>);
  if (entries.length > TAG_LIMITS.count) {
    throw new TagsTooLargeError(`tags too large: ${entries.length} tags, at most ${TAG_LIMITS.count}`);
  }
  const out: Record<string, string> = {};
  let bytes = 0;
  for (const [k, v] of entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    if (typeof v !== 'string')
      throw new InvalidOptionsError(`invalid tag ${JSON.stringify(k)}: value is not a string`);
    if (k.length === 0) throw new InvalidOptionsError('invalid tag: empty name');
    if (k.length > TAG_LIMITS.keyChars) {
      throw new TagsTooLargeError(
        `tag name ${JSON.stringify(k)} too large: at most ${TAG_LIMITS.keyChars} characters`,
      );
    }
    if (v.length > TAG_LIMITS.valueChars) {
      throw new TagsTooLargeError(
        `tag ${JSON.stringify(k)} too large: ${v.length} characters, at most ${TAG_LIMITS.valueChars}`,
      );
    }
    bytes += Buffer.byteLength(k) + Buffer.byteLength(v);
    out[k] = v;
  }
  if (bytes > maxTagBytes) {
    throw new TagsTooLargeError(`tags too large: ${bytes} bytes, maxTagBytes is ${maxTagBytes}`);
  }
  return out;
}

/**
 * Parses the CLI's `--tags k=v,k2=v2` (empty: no tags), checked against `maxTagBytes`.
 *
 * @throws {InvalidOptionsError} `ERR_INVALID_OPTIONS` for a pair that is not `name=value`.
 * @throws {TagsTooLargeError} `ERR_TAGS_TOO_LARGE` for tags too large.
 */
export function parseTagList(
  text: string,
  maxTagBytes: number = DEFAULT_MAX_TAG_BYTES,
): Record<string, string> {
  const tags: Record<string, string> = {};
  for (const part of text.split(',')) {
    if (part.trim() === '') continue;
    const eq = part.indexOf('=');
    if (eq <= 0) throw new InvalidOptionsError(`invalid tag ${JSON.stringify(part)}: expected name=value`);
    tags[part.slice(0, eq).trim()] = part.slice(eq + 1).trim();
  }
  return validateTags(tags, maxTagBytes);
}

/** Whether two tag maps hold the same names and values. */
export function sameTags(a: Tags | undefined, b: Tags | undefined): boolean {
  const ka = a === undefined ? [] : Object.keys(a);
  const kb = b === undefined ? [] : Object.keys(b);
  return ka.length === kb.length && ka.every((k) => b !== undefined && Object.hasOwn(b, k) && b[k] === a![k]);
}
