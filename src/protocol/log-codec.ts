/**
 * Encoding and decoding of catch-up answers (types 12 and 13; see `log-schema.ts`): pure, no I/O.
 *
 * @module
 */

import type * as Z from 'zod';
import { type Decoded, describeIssue } from './codec.js';
import { fastLogAnswer } from './fast-wire.js';
import type { WireSummary } from './log-schema.js';
import { type WireSchemas, wireSchemas } from './schema.js';

/**
 * A message served by catch-up: a batch entry (see `batch-entry.ts`) with its origin (and the
 * origin's key), the origin's signature and its log number, all required.
 */
export type LoggedEntry = Z.infer<WireSchemas['LoggedEntrySchema']>;

/** The answer to a log request: `sum` (type 12) or `msgs` (type 13). */
export type LogAnswer = Z.infer<WireSchemas['LogAnswerSchema']>;

/** Decodes the answer to a log request. */
export function decodeLogAnswer(body: Uint8Array): Decoded<LogAnswer> {
  let json: unknown;
  try {
    json = JSON.parse(Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString('utf8'));
  } catch {
    return refuse('answer is not JSON');
  }
  const fast = fastLogAnswer(json);
  if (fast !== undefined) return { ok: true, value: fast };
  const parsed = wireSchemas().LogAnswerSchema.safeParse(json);
  if (!parsed.success) return refuse(`invalid log answer: ${describeIssue(parsed.error)}`);
  return { ok: true, value: parsed.data };
}

/** The answer to a summary request. */
export function encodeSummaryAnswer(sum: readonly WireSummary[]): Buffer {
  return Buffer.from(JSON.stringify({ sum }));
}

/** The answer to a fetch: message entries encoded once each (`encodeMessageEntry`). */
export function encodeMessagesAnswer(fragments: readonly Uint8Array[]): Buffer {
  const parts: Uint8Array[] = [Buffer.from('{"msgs":[')];
  fragments.forEach((f, i) => {
    if (i > 0) parts.push(Buffer.from(','));
    parts.push(f);
  });
  parts.push(Buffer.from(']}'));
  return Buffer.concat(parts);
}

function refuse(message: string): Decoded<never> {
  return { ok: false, refusal: { status: 400, reason: 'invalid_message', message } };
}
