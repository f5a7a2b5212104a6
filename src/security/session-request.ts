/**
 * One request to a member, authenticated by the pair's session MAC when this node holds the
 * member's session key and knows the member holds its own (it accepted a request of this node's,
 * or sent a MAC that checked here), signed otherwise (see `session-keys.ts`): the membership
 * requests (ping, ping-req, sync, gossip), which a node sends to every member all the time.
 *
 * The MAC saves one Ed25519 signature at the sender and one verification at the receiver per
 * request (about 45 and 120 µs against about 3 µs each way). A receiver that holds no key for the
 * sender (it restarted, or evicted the key) answers
 * `401 no session: …`: the same request is sealed again, signed (which teaches the receiver this
 * node's key), and sent at once; requests to that member are signed until one is accepted.
 *
 * @module
 */

import type { EnvelopeSigner, Sealed } from '../protocol/envelope.js';
import { reasonOfAnswer } from '../protocol/refusal.js';
import type { OutboundResponse } from '../transport/transport.js';
import type { SessionKeys } from './session-keys.js';

/** The part of {@link SessionKeys} a sender uses. */
export type SenderSessions = Pick<SessionKeys, 'confirmedSignerFor' | 'refused' | 'accepted'>;

/**
 * Sends one request to `peer`, MAC'd when the session is confirmed, and once more signed when the
 * receiver answers `401 no session`. Resolves with the last answer, whatever its status; rejects
 * as `send` does.
 *
 * @param sessions - this node's session keys; `undefined` signs every request
 * @param peer - the member's id; `undefined` (a gop2p member, which has no key) signs
 * @param signer - this node's Ed25519 signer
 * @param seal - seals the request with a given signer (each call may take a new message id; it
 *   must not draw anything else, such as piggybacked updates, twice)
 * @param send - posts a sealed request and resolves with the answer
 */
export async function requestWithSession(
  sessions: SenderSessions | undefined,
  peer: string | undefined,
  signer: EnvelopeSigner,
  seal: (signer: EnvelopeSigner) => Sealed,
  send: (sealed: Sealed) => Promise<OutboundResponse>,
): Promise<OutboundResponse> {
  if (sessions === undefined || peer === undefined) return send(seal(signer));
  const first = sessions.confirmedSignerFor(peer, signer);
  let res = await send(seal(first));
  if (first !== signer && res.status === 401 && reasonOfAnswer(401, res.body) === 'no_session') {
    sessions.refused(peer);
    res = await send(seal(signer));
  }
  if (res.status === 200) sessions.accepted(peer);
  return res;
}
