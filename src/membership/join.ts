/**
 * Joining a network through an entry point, as gop2p does: a connect to the entry point, which
 * answers with its members and registers this node; then the announcement to those members
 * (`announce.ts`); the entry point joins the table last, as gop2p adds it.
 *
 * @module
 */

import { ConnectFailedError, ProtocolError, StoppedError, TimeoutError } from '../errors.js';
import { formatHostPort, type HostPort, isUnspecifiedAddress, type Peer, type PeerKind } from '../peer.js';
import { decodeMemberList, decodeSelfHeader } from '../protocol/codec.js';
import type { Sealed } from '../protocol/envelope.js';
import { Headers, MessageType } from '../protocol/schema.js';
import { refusedError } from '../transport/peer-client.js';
import type { OutboundResponse } from '../transport/transport.js';
import type { DeliveryFailure } from '../types.js';
import { type AnnounceDeps, type AnnounceSettings, announce, peerFromAnswer } from './announce.js';

/**
 * Connect requests sent to an entry point that does not answer within the request timeout,
 * before the join fails. Each one waits twice as long as the one before (`requestTimeoutMs`,
 * then twice that): the join then takes up to three times `requestTimeoutMs`. An entry point
 * short of CPU (many processes joining at once on one machine) is given the time to answer
 * rather than a second request to answer as well.
 */
export const CONNECT_ATTEMPTS = 2;

/** The settings {@link join} reads. */
export interface JoinSettings extends AnnounceSettings {
  /** How long the undoing disconnect to a gop2p entry point (outside compat mode) may take, in ms. */
  readonly leaveTimeoutMs: number;
}

/** What {@link join} needs from its node. */
export interface JoinDeps extends Omit<AnnounceDeps, 'announcement' | 'settings'> {
  readonly settings: JoinSettings;
  /** Builds the connect, the announcement and the undoing disconnect. */
  readonly sealer: { seal(type: MessageType, extra?: { announce?: boolean }): Sealed };
}

/** The signals a join runs under. */
export interface JoinSignals {
  /** The whole call: the caller's signal and the node's shutdown. */
  readonly call: AbortSignal;
  /** The caller's own signal: when it aborted, the join rejects with its reason. */
  readonly caller: AbortSignal | undefined;
  /** The node's shutdown. */
  readonly shutdown: AbortSignal;
}

/** What a join ends with: the entry point, and the listed members that did not answer. */
export interface Joined {
  readonly entry: Peer;
  readonly failed: DeliveryFailure[];
}

/**
 * Joins through `target`: this node must not be it (the caller checks).
 *
 * @throws {ConnectFailedError} `ERR_CONNECT_FAILED` when the entry point cannot be reached or refuses
 */
export async function join(d: JoinDeps, target: HostPort, signals: JoinSignals): Promise<Joined> {
  const where = formatHostPort(target.host, target.port);
  // Compat mode asks first whether the entry point is a gop2p node, and how it names itself: the
  // connect then goes out, once, in the name it should know this node by (src/compat/).
  const entryOwn = await d.gop2p?.discover(target.host, target.port);
  signals.call.throwIfAborted();
  let res: OutboundResponse | undefined;
  for (let attempt = 1; res === undefined; attempt++) {
    try {
      res = await d.client.request(
        {
          address: target.host,
          port: target.port,
          kind: entryOwn !== undefined ? 'gop2p' : 'tsp2p',
          ...(target.scheme ? { scheme: target.scheme } : {}),
        },
        // Sealed anew each time: a repeated signed body would be refused as a replay.
        d.sealer.seal(MessageType.Connect),
        signals.call,
        d.settings.requestTimeoutMs * 2 ** (attempt - 1),
        // The entry point may be gop2p, which refuses the ordinary Host header.
        d.settings.compat,
      );
    } catch (err) {
      if (signals.caller?.aborted) throw signals.caller.reason;
      // No answer in time: an entry point on a machine short of CPU (many nodes starting or
      // joining at once) may answer the next try. A refusal, or nothing listening, is final.
      if (err instanceof TimeoutError && attempt < CONNECT_ATTEMPTS && !signals.call.aborted) {
        d.logger.info('the entry point did not answer in time: trying again', { entry: where });
        continue;
      }
      throw new ConnectFailedError(`cannot connect to ${where}: ${(err as Error).message}`, { cause: err });
    }
  }
  if (res.status !== 200) {
    const refused = refusedError(res);
    throw new ConnectFailedError(`${where} refused to connect: ${res.status} ${refused.body}`.trim(), {
      cause: refused,
    });
  }
  const entryKind: PeerKind = res.headers[Headers.id] ? 'tsp2p' : 'gop2p';
  if (entryKind === 'gop2p' && !d.settings.compat) {
    // It registered us; undo that before refusing to stay.
    void d.client
      .request(
        { address: target.host, port: target.port, kind: 'gop2p' },
        d.sealer.seal(MessageType.Disconnect),
        signals.shutdown,
        d.settings.leaveTimeoutMs,
      )
      .catch(() => undefined);
    throw new ConnectFailedError(
      `${where} is a gop2p node: start this node with compat: 'gop2p' to join it`,
      {
        reason: 'gop2p-compat-required',
      },
    );
  }
  const list = decodeMemberList(res.body);
  if (!list.ok) {
    throw new ConnectFailedError(`${where} answered with ${list.refusal.message}`, {
      cause: new ProtocolError(list.refusal.message),
    });
  }
  // Its own record (tags, topics, record signature), when it states one for the id it answers as.
  const own = entryKind === 'tsp2p' ? decodeSelfHeader(res.headers[Headers.self]) : undefined;
  const record = own !== undefined && own.id === res.headers[Headers.id] ? own : undefined;
  // The entry point as it advertises itself, not as the user spelt it (`localhost`, a name, an
  // address of another interface): a member's own advertised address always wins, and the
  // spelling must not spread to the members this node tells. (Its record's signature covers that
  // address: membership.join checks it.)
  const advertised = record !== undefined && !isUnspecifiedAddress(record.address);
  const entry = peerFromAnswer(
    advertised ? record.address : target.host,
    advertised ? record.port : target.port,
    entryKind,
    res,
    undefined,
    record,
  );
  const failed = await announce(
    {
      ...d,
      // The newcomer already has the list: the members need not send theirs back (gop2p members
      // ignore the flag and answer with their list, which is then ignored, as gop2p does).
      announcement: () => d.sealer.seal(MessageType.Connect, { announce: true }),
    },
    target.host,
    entry,
    list.value,
    signals.call,
  );
  signals.caller?.throwIfAborted();
  if (signals.shutdown.aborted) throw new StoppedError();
  // gop2p adds the entry point last.
  d.membership.join(entry, entryKind, record?.inc ?? 0, record);
  return { entry, failed };
}
