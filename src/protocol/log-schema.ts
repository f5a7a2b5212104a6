/**
 * The wire format of catch-up (history, `src/store/`): the `log` field of a log request (types 12
 * and 13) and the answers. See PROTOCOL.md, "12: log summary and 13: log fetch".
 *
 * @module
 */

import type * as Z from 'zod';

/** Limits of catch-up requests and answers. */
export const CATCH_UP_LIMITS = Object.freeze({
  /** Most channels one summary request names. */
  channels: 64,
  /** Most ranges in one fetch. */
  ranges: 64,
  /** Most messages in one answer. */
  messages: 1_000,
  /** Most bytes of messages (encoded) in one answer; a single larger message still goes alone. */
  answerBytes: 4 * 1024 * 1024,
  /** Most held ranges above `contiguous` per stream in a summary. */
  summaryRanges: 32,
  /** Most streams in a summary answer. */
  streams: 100_000,
});

/**
 * Builds the zod schemas of catch-up's wire format (built with the others, on first use: see
 * `wireSchemas()` in `schema.ts`).
 */
export function buildLogSchemas(z: typeof Z) {
  const Text = (max: number) => z.string().min(1).max(max);
  /** A node id, epoch, or channel: the store's limits (`STORE_LIMITS`). */
  const NodeText = Text(128);
  const ChannelText = z
    .string()
    .regex(/^(b|t:[A-Za-z0-9\-_.:/]{1,64}|d:[^\s]{1,128})$/, 'not a channel (b, t:TOPIC or d:ID)');

  /** One range of one stream: numbers `from` to `to` of (`origin`, `epoch`, `channel`). */
  const LogRangeSchema = z
    .object({
      origin: NodeText,
      epoch: NodeText,
      channel: ChannelText,
      from: z.int().min(1),
      to: z.int().min(1),
    })
    .refine((r) => r.from <= r.to, 'from must not exceed to');

  /** A log request's `log` field. */
  const LogRequestSchema = z.object({
    /** Type 12: the channels whose summary is asked for. */
    chans: z.array(ChannelText).min(1).max(CATCH_UP_LIMITS.channels).optional(),
    /** Type 13: the ranges asked for. */
    want: z.array(LogRangeSchema).max(CATCH_UP_LIMITS.ranges).optional(),
    /** Type 13: the newest `limit` messages of `channel` (a newcomer's `historyOnJoin`). */
    last: z.object({ channel: ChannelText, limit: z.int().min(1).max(CATCH_UP_LIMITS.messages) }).optional(),
  });

  /** One stream of a summary on the wire (see `src/store/summary.ts`). */
  const WireSummarySchema = z.object({
    origin: NodeText,
    epoch: NodeText,
    channel: ChannelText,
    contiguous: z.int().min(0),
    floor: z.int().min(1),
    above: z.array(z.tuple([z.int().min(1), z.int().min(1)])).max(CATCH_UP_LIMITS.summaryRanges),
  });

  return { LogRangeSchema, LogRequestSchema, WireSummarySchema };
}

type LogSchemas = ReturnType<typeof buildLogSchemas>;

/** A range asked for. */
export type LogRange = Z.infer<LogSchemas['LogRangeSchema']>;

/** A log request's `log` field. */
export type LogRequest = Z.infer<LogSchemas['LogRequestSchema']>;

/** One stream of a summary on the wire. */
export type WireSummary = Z.infer<LogSchemas['WireSummarySchema']>;
