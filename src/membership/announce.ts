/**
 * Joining through an entry point, after its answer: this node announces itself to the members the
 * entry point listed (up to `timings.announceLimit` of them directly, the rest through gossip), and
 * registers those that answer.
 *
 * @module
 */

import type { Gop2pNames } from '../compat/gop2p-names.js';
import { asP2PError, PeerRefusedError, ProtocolError } from '../errors.js';
import type { Logger } from '../logger.js';
import {
  addressId,
  formatHostPort,
  isUnspecifiedAddress,
  type Peer,
  type PeerRecordFields,
  peerOf,
} from '../peer.js';
import type { Sealed } from '../protocol/envelope.js';
import { Headers, type WirePeer } from '../protocol/schema.js';
import { fromWirePeer } from '../protocol/wire-peer.js';
import { type Random, shuffle } from '../random.js';
import { firstLine, type PeerClient } from '../transport/peer-client.js';
import type { OutboundResponse } from '../transport/transport.js';
import type { DeliveryFailure } from '../types.js';
import type { PeerKind } from './member-table.js';
import { type Membership, signedFields } from './membership.js';

/** The settings {@link announce} reads. */
export interface AnnounceSettings {
  /** Whether gop2p members may join (compat mode). */
  readonly compat: boolean;
  /** Members announced to directly; gossip tells the rest (`timings.announceLimit`). */
  readonly announceLimit: number;
  /** Each announcement's time limit, in ms. */
  readonly requestTimeoutMs: number;
}

/** What {@link announce} needs from its node. */
export interface AnnounceDeps {
  readonly selfId: string;
  readonly settings: AnnounceSettings;
  readonly random: Random;
  readonly logger: Logger;
  readonly client: PeerClient;
  readonly membership: Membership;
  /** Whether `host:port` reaches this very node. */
  readonly isSelfAddress: (host: string, port: number) => boolean;
  /** The announcement: a connect with `announce: true`, built when it is first needed. */
  readonly announcement: () => Sealed;
  /** Compat mode: how gop2p members name themselves, and this node towards each. */
  readonly gop2p?: Gop2pNames;
}

/** Announces this node to the members an entry point listed; registers those that answer. */
export async function announce(
  d: AnnounceDeps,
  entryHost: string,
  entryPeer: Peer,
  listed: readonly WirePeer[],
  signal: AbortSignal,
): Promise<DeliveryFailure[]> {
  const seen = new Set<string>([formatHostPort(entryPeer.address, entryPeer.port)]);
  const candidates: Candidate[] = [];
  for (const wire of listed) {
    // An unspecified address in a gop2p list means "where the entry point is".
    const address = isUnspecifiedAddress(wire.address) ? entryHost : wire.address;
    const key = formatHostPort(address, wire.port);
    if (seen.has(key) || d.isSelfAddress(address, wire.port) || wire.id === d.selfId) continue;
    seen.add(key);
    const kind: PeerKind = wire.id ? 'tsp2p' : 'gop2p';
    candidates.push({
      peer: fromWirePeer(wire, address),
      kind,
      inc: wire.inc ?? 0,
      wire,
    });
  }
  const failed: DeliveryFailure[] = [];
  const usable = candidates.filter((c) => {
    if (c.kind === 'gop2p' && !d.settings.compat) {
      failed.push({ peer: c.peer, error: new ProtocolError('a gop2p member needs compat mode') });
      return false;
    }
    return true;
  });
  // A gop2p member is announced to once, in the name it should know this node by, which depends
  // on how it names itself: ask it (src/compat/gop2p-names.ts). A member listed without an id may
  // also be a tsp2p node that joined a gop2p entry point: one that does not say it is gop2p gets
  // the usual signed connect (with gop2p's Host header, in case), and its answer tells its kind.
  const names = d.gop2p;
  const isGop2p = new Set<Candidate>();
  if (names !== undefined) {
    await Promise.all(
      usable
        .filter((c) => c.kind === 'gop2p')
        .map(async (c) => {
          if ((await names.discover(c.peer.address, c.peer.port)) !== undefined) isGop2p.add(c);
        }),
    );
  }
  // gop2p announces to everyone; in a large network, gossip carries the news past the first
  // `announceLimit` members (gop2p members always get a direct announcement: they cannot gossip).
  shuffle(usable, d.random);
  const limit = d.settings.announceLimit;
  const direct = usable.filter((c, i) => i < limit || c.kind === 'gop2p');
  const rest = usable.filter((c, i) => !(i < limit || c.kind === 'gop2p'));
  const body = d.announcement();
  await Promise.all(
    direct.map(async (c) => {
      try {
        const known = names === undefined || isGop2p.has(c) || c.kind === 'tsp2p';
        const answer = await d.client.request(
          { address: c.peer.address, port: c.peer.port, kind: known ? c.kind : 'tsp2p' },
          body,
          signal,
          d.settings.requestTimeoutMs,
          !known,
        );
        if (answer.status !== 200) throw new PeerRefusedError(answer.status, firstLine(answer.body));
        const kind: PeerKind = answer.headers[Headers.id] ? 'tsp2p' : c.kind;
        // Its answer at the address this node dialed; the self-record the entry point listed, when
        // it states the same (a record that does not check is left out).
        d.membership.join(
          peerFromAnswer(c.peer.address, c.peer.port, kind, answer, c.peer.name, c.peer),
          kind,
          c.inc,
          c.wire,
        );
      } catch (err) {
        if (signal.aborted) return;
        failed.push({ peer: c.peer, error: asP2PError(err) });
        d.logger.warn('member did not answer the announcement', {
          peer: formatHostPort(c.peer.address, c.peer.port),
          err,
        });
      }
    }),
  );
  // News from the entry point: taken only with each member's own signed record (news.ts).
  for (const c of rest) {
    d.membership.apply({
      id: c.peer.id,
      address: c.peer.address,
      port: c.peer.port,
      state: 'alive',
      inc: c.inc,
      ...(c.peer.name !== undefined ? { name: c.peer.name } : {}),
      ...(c.kind === 'gop2p' ? { kind: 'gop2p' as const } : signedFields(c.wire, c.inc)),
    });
  }
  return failed;
}

/** A listed member this node may announce itself to. */
interface Candidate {
  readonly peer: Peer;
  readonly kind: PeerKind;
  readonly inc: number;
  /** As the entry point listed it, with the member's self-record when it holds one. */
  readonly wire: WirePeer;
}

/** A member as its answer to a connect describes it (its id and name come in headers). */
export function peerFromAnswer(
  address: string,
  port: number,
  kind: PeerKind,
  res: OutboundResponse,
  name?: string,
  fields?: PeerRecordFields,
): Peer {
  if (kind === 'gop2p') return peerOf(addressId(address, port), address, port, name);
  const id = res.headers[Headers.id]!;
  const encodedName = res.headers[Headers.name];
  let answerName = name;
  if (encodedName !== undefined) {
    try {
      answerName = decodeURIComponent(encodedName).slice(0, 64);
    } catch {
      answerName = name;
    }
  }
  return peerOf(id, address, port, answerName, fields);
}
