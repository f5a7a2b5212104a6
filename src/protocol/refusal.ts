/**
 * Refusals on the wire: a status, a literal {@link RefusalReason} and a one-line message. The
 * reason is what every part of a node reads (metrics, the sender's error); the message is what
 * the wire carries, as PROTOCOL.md's "Answers" table defines it: the status and the first words
 * of the body. Encoding and decoding both live here, from one table, so that a reason survives
 * the round trip through an answer and no other code reads an answer's words.
 *
 * @module
 */

import type { RefusalReason } from '../errors.js';

export type { RefusalReason } from '../errors.js';

/** Why an inbound request was refused: the HTTP status, the reason, and a one-line body. */
export interface Refusal {
  readonly status: number;
  readonly reason: RefusalReason;
  readonly message: string;
}

/** A refusal. `message` starts with the words {@link reasonOfAnswer} reads for `reason`. */
export function refusal(status: number, reason: RefusalReason, message: string): Refusal {
  return { status, reason, message };
}

/**
 * The first words of a refusal's body, per reason (PROTOCOL.md, "Answers"). gop2p's wording is
 * kept where gop2p has one, so a gop2p peer's answers decode too.
 */
const FIRST_WORDS: readonly (readonly [string, RefusalReason])[] = [
  ['No valid Message provided', 'invalid_message'],
  ['Peer not registered', 'not_registered'],
  ['gop2p-style request refused', 'gop2p_not_allowed'],
  ['unsigned request refused', 'unsigned'],
  ['bad signature', 'bad_signature'],
  ['bad key', 'bad_key'],
  ['bad MAC', 'bad_mac'],
  ['no session', 'no_session'],
  ['earlier messages of this stream', 'out_of_order'],
  ['application is busy', 'busy'],
  ['this stream has ended', 'stream_ended'],
  ['stale message', 'stale'],
  ['network secret required', 'bad_network_tag'],
  ['too many requests', 'rate_limited'],
  ['You can not connect with yourself', 'self'],
  ['Method not allowed', 'method_not_allowed'],
  ['message too large', 'too_large'],
  ['body too large', 'too_large'],
  ['member table is full', 'table_full'],
  ['node is shutting down', 'shutting_down'],
  ['not found', 'not_found'],
  ['not the member probed', 'misdirected'],
];

const BY_STATUS: Readonly<Record<number, RefusalReason>> = {
  400: 'bad_request',
  401: 'unauthorized',
  403: 'forbidden',
  404: 'not_found',
  405: 'method_not_allowed',
  421: 'misdirected',
  408: 'timeout',
  413: 'too_large',
  429: 'rate_limited',
  503: 'unavailable',
};

/**
 * The reason of a refusal answer, decoded from its status and body: the inverse of the
 * messages {@link refusal} sites write (a test holds every reason to the round trip).
 */
export function reasonOfAnswer(status: number, body: string | Uint8Array): RefusalReason {
  const text =
    typeof body === 'string'
      ? body
      : Buffer.from(body.buffer, body.byteOffset, Math.min(body.byteLength, 64)).toString('utf8');
  for (const [words, reason] of FIRST_WORDS) if (text.startsWith(words)) return reason;
  return BY_STATUS[status] ?? 'other';
}
