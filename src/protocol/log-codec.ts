/**
 * Encoding and decoding of catch-up answers (types 12 and 13; see `log-schema.ts`): pure, no I/O.
 *
 * @module
 */

import * as z from 'zod';
import { type Decoded, describeIssue } from './codec.js';
import { fastLogAnswer } from './fast-batch.js';
import { CATCH_UP_LIMITS, WireSummarySchema } from './log-schema.js';
import { BatchedMessageSchema, WirePeerSchema } from './schema.js';

/**
 * A message served by catch-up: a batch entry (see `batch-entry.ts`) with its origin (and the
 * origin's key), the origin's signature and its log number, all required.
 */
export const LoggedEntrySchema = BatchedMessageSchema.extend({
  origin: WirePeerSchema,
  sig: z.string().length(86),
  epoch: z.string().min(1).max(128),
  channel: z.string().min(1).max(136),
  seq: z.int().min(1),
});

/** A message served by catch-up. */
export type LoggedEntry = z.infer<typeof LoggedEntrySchema>;

/** The answer to a log request: `sum` (type 12) or `msgs` (type 13). */
export const LogAnswerSchema = z.object({
  sum: z.array(WireSummarySchema).max(CATCH_UP_LIMITS.streams).optional(),
  msgs: z.array(LoggedEntrySchema).max(CATCH_UP_LIMITS.messages).optional(),
});

/** The answer to a log request. */
export type LogAnswer = z.infer<typeof LogAnswerSchema>;

/** Decodes the answer to a log request. */
export function decodeLogAnswer(body: Uint8Array): Decoded<LogAnswer> {
  let json: unknown;
  try {
    json = JSON.parse(Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString('utf8'));
  } catch {
    return refuse('answer is not JSON');
  }
  const fast = fastLogAnswer(json);
  if (fast !== undefined) return { ok: true, value: fast as LogAnswer };
  const parsed = LogAnswerSchema.safeParse(json);
  if (!parsed.success) return refuse(`invalid log answer: ${describeIssue(parsed.error)}`);
  return { ok: true, value: parsed.data };
}

/** The answer to a summary request. */
export function encodeSummaryAnswer(sum: readonly z.infer<typeof WireSummarySchema>[]): Buffer {
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
