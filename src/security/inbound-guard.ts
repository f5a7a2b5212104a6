/**
 * The check every decoded envelope passes before anything else happens to it: before delivery,
 * before a membership change, before a relay.
 *
 * - A gop2p-style envelope (no `v`, no `from.id`, no `from.key`, no signature) is accepted
 *   unsigned in compat mode only; otherwise it is refused with 401.
 * - Anything else claims to come from a tsp2p node and must prove it: `from.key` must hash to
 *   `from.id`, the `tsp2p-sig` header must be that key's signature of the exact body (or the
 *   `tsp2p-mac` header a valid MAC of it under the pair's session key: see `session-keys.ts`),
 *   `ts` must be within the clock skew window, and the pair (`from.id`, `id`) must not have been
 *   accepted within the window. Failing any of these is a 401.
 * - The same signed bytes again (a retry, a relay, a replay) are a duplicate: acknowledged, with
 *   no effect. They are recognized before the signature is checked, so duplicates cost no
 *   verification.
 *
 * @module
 */

import { systemClock, wallTime } from '../clock.js';
import type { Refusal, RefusalReason } from '../protocol/refusal.js';
import type { Envelope, WirePeer } from '../protocol/schema.js';
import { checkGossip, type GossipFields } from './gossip-signature.js';
import { ReplayCache } from './replay-cache.js';
import { MAC_HEADER, NO_SESSION, type SessionKeys } from './session-keys.js';
import { type KeyCache, SIGNATURE_HEADER, sharedKeyCache, verifyBody } from './signature.js';

/** The guard's settings. */
export interface InboundGuardOptions {
  /** Accept unsigned gop2p-style envelopes. */
  readonly compat: boolean;
  /** How far an envelope's `ts` may be from the local wall clock, in ms, either way. */
  readonly maxClockSkewMs: number;
  /** Most envelopes the replay cache remembers. @default 100000 */
  readonly replayCapacity?: number;
  /** Where public keys are cached. @default the process-wide {@link sharedKeyCache} */
  readonly keyCache?: KeyCache;
  /** The wall clock, in ms since the epoch (the clock senders stamp `ts` with). @default the system's */
  readonly now?: () => number;
  /**
   * Pairwise session keys: MAC'd requests are checked with them, and the `from.xkey` of each
   * verified signed envelope is recorded in them. Without them, MAC'd requests are refused.
   */
  readonly sessions?: SessionKeys;
}

/** A refusal: always 401, with a one-line message and its literal reason. */
export interface GuardRefusal extends Refusal {
  readonly status: 401;
}

/** The verdict on one envelope. */
export type Admission =
  | { readonly kind: 'refused'; readonly refusal: GuardRefusal }
  /** Already accepted within the window: answer 200 and do nothing. */
  | { readonly kind: 'duplicate' }
  /** A gop2p peer's unsigned envelope, in compat mode. */
  | { readonly kind: 'unsigned' }
  /**
   * Signed and verified. Call `release()` when the request is refused after all, so that a
   * retry is not taken for a replay.
   */
  | { readonly kind: 'signed'; readonly release: () => void };

/** What the guard has seen since it was created. */
export interface GuardStats {
  /** Envelopes whose signature was verified and found good. */
  verified: number;
  /** Envelopes whose session MAC was checked and found good. */
  macs: number;
  /** Duplicates acknowledged without effect. */
  duplicates: number;
  /** Unsigned gop2p envelopes accepted (compat mode). */
  unsigned: number;
  /** Refusals, by reason. */
  readonly refused: Record<string, number>;
}

/** Default size of the replay cache. */
export const DEFAULT_REPLAY_CAPACITY = 100_000;

/** Checks inbound envelopes: signature, key, timestamp window and replays. */
export class InboundGuard {
  readonly #o: InboundGuardOptions;
  readonly #now: () => number;
  readonly #keys: KeyCache;
  readonly #replays: ReplayCache;
  readonly stats: GuardStats = { verified: 0, macs: 0, duplicates: 0, unsigned: 0, refused: {} };

  constructor(options: InboundGuardOptions) {
    this.#o = options;
    this.#now = options.now ?? (() => wallTime(systemClock));
    this.#keys = options.keyCache ?? sharedKeyCache;
    this.#replays = new ReplayCache(
      options.replayCapacity ?? DEFAULT_REPLAY_CAPACITY,
      options.maxClockSkewMs,
    );
  }

  /** The counters for `/metrics`. */
  summary(): {
    verified: number;
    macs: number;
    duplicates: number;
    unsigned: number;
    relayedRefused: number;
  } {
    let relayedRefused = 0;
    for (const [reason, n] of Object.entries(this.stats.refused)) {
      if (reason.startsWith('relayed_')) relayedRefused += n;
    }
    const { verified, macs, duplicates, unsigned } = this.stats;
    return { verified, macs, duplicates, unsigned, relayedRefused };
  }

  /** How many envelopes the replay cache holds. */
  get remembered(): number {
    return this.#replays.size;
  }

  /** Checks `envelope`, decoded from `body`, which arrived with `headers` (lowercase names). */
  admit(
    envelope: Envelope,
    body: Uint8Array,
    headers: Readonly<Record<string, string | undefined>>,
  ): Admission {
    const sig = headers[SIGNATURE_HEADER];
    const mac = sig === undefined ? headers[MAC_HEADER] : undefined;
    const from = envelope.from;
    if (
      envelope.v === undefined &&
      from.id === undefined &&
      from.key === undefined &&
      sig === undefined &&
      mac === undefined
    ) {
      if (this.#o.compat) {
        this.stats.unsigned++;
        return { kind: 'unsigned' };
      }
      return this.#refuse(
        'gop2p_not_allowed',
        "gop2p-style request refused: it is unsigned, and this node does not run with compat: 'gop2p'",
      );
    }
    const tag = sig ?? mac;
    if (tag === undefined)
      return this.#refuse('unsigned', `unsigned request refused: no ${SIGNATURE_HEADER} header`);
    if (from.id === undefined) return this.#refuse('unsigned', 'unsigned request refused: no from.id');
    if (from.key === undefined) return this.#refuse('unsigned', 'unsigned request refused: no from.key');
    if (envelope.v === undefined) return this.#refuse('unsigned', 'unsigned request refused: no v');
    if (envelope.id === undefined || envelope.ts === undefined) {
      return this.#refuse('unsigned', 'unsigned request refused: a signed envelope needs an id and a ts');
    }
    const now = this.#now();
    const skew = envelope.ts - now;
    if (Math.abs(skew) > this.#o.maxClockSkewMs) {
      return this.#refuse(
        'stale',
        `stale message: its timestamp is ${Math.round(skew / 1000)} s off this node's clock ` +
          `(limit ${Math.round(this.#o.maxClockSkewMs / 1000)} s)`,
      );
    }
    if (envelope.ts <= this.#replays.floor) {
      return this.#refuse('stale', 'stale message: older than this node can check for replays');
    }
    const replayKey = `${from.id}/${envelope.id}`;
    const seen = this.#replays.status(replayKey, tag, now);
    if (seen === 'same') {
      this.stats.duplicates++;
      return { kind: 'duplicate' };
    }
    if (sig === undefined) {
      const check = this.#o.sessions?.verify(from.id, tag, body) ?? 'no_session';
      if (check === 'no_session') {
        return this.#refuse(
          'no_session',
          `${NO_SESSION}: this node holds no session key for the sender; sign it`,
        );
      }
      if (check === 'bad_mac')
        return this.#refuse('bad_mac', `bad MAC: ${MAC_HEADER} does not match the body`);
      this.stats.macs++;
    } else {
      const key = this.#keys.resolve(from.id, from.key);
      if (key === 'bad_key') return this.#refuse('bad_key', 'bad key: from.key is not an Ed25519 public key');
      if (key === 'key_mismatch') {
        return this.#refuse(
          'bad_key',
          'bad key: from.key does not match from.id (the id is its fingerprint)',
        );
      }
      if (!verifyBody(body, sig, key)) {
        return this.#refuse('bad_signature', `bad signature: ${SIGNATURE_HEADER} does not match the body`);
      }
      this.stats.verified++;
      // Signed by the node itself: its session key may be trusted as its own.
      if (from.xkey !== undefined) this.#o.sessions?.learn(from.id, from.xkey);
    }
    if (seen === 'other') {
      // The sender re-sealed a message it had sent (a retry with a fresh timestamp).
      this.stats.duplicates++;
      return { kind: 'duplicate' };
    }
    return { kind: 'signed', release: this.#replays.add(replayKey, envelope.ts, tag, now) };
  }

  /**
   * Checks a relayed message (gossip mode) against its origin: key, signature and timestamp
   * window (see `gossip-signature.ts`). Counts a refusal under `relayed_<reason>`.
   */
  checkRelayed(origin: WirePeer, fields: GossipFields, sig: string | undefined): boolean {
    const refusal = checkGossip(this.#keys, origin, fields, sig, this.#now(), this.#o.maxClockSkewMs);
    if (refusal === undefined) {
      this.stats.verified++;
      return true;
    }
    const reason = `relayed_${refusal}`;
    this.stats.refused[reason] = (this.stats.refused[reason] ?? 0) + 1;
    return false;
  }

  #refuse(reason: RefusalReason, message: string): Admission {
    this.stats.refused[reason] = (this.stats.refused[reason] ?? 0) + 1;
    return { kind: 'refused', refusal: { status: 401, message, reason } };
  }
}
