/**
 * A graceful leave: the disconnect notice, sent to every member at once, each within the leave
 * timeout. Who acknowledged and who did not is reported; nobody's silence delays the others.
 *
 * @module
 */

import { asP2PError } from '../errors.js';
import type { Peer } from '../peer.js';
import type { Sealed } from '../protocol/envelope.js';
import type { PeerClient } from '../transport/peer-client.js';
import type { DeliveryFailure, LeaveReport } from '../types.js';
import { destinationOf, type Member } from './member-table.js';

/** Tells `members` this node leaves, with the sealed `notice`, each within `timeoutMs`. */
export async function notifyLeave(
  client: PeerClient,
  members: readonly Member[],
  notice: Sealed,
  signal: AbortSignal,
  timeoutMs: number,
): Promise<LeaveReport> {
  const notified: Peer[] = [];
  const failed: DeliveryFailure[] = [];
  await Promise.all(
    members.map(async (m) => {
      try {
        await client.post(destinationOf(m), notice, signal, timeoutMs);
        notified.push(m.peer);
      } catch (err) {
        failed.push({ peer: m.peer, error: asP2PError(err) });
      }
    }),
  );
  return { notified, failed };
}
