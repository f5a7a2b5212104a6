/**
 * Pairwise session keys: batches between two tsp2p members authenticated with an HMAC instead
 * of an Ed25519 signature.
 *
 * An Ed25519 verification costs 50 to 100 µs; at a modest rate with small batches it was the
 * largest cost of a receiver. Two members that already know each other can do as TLS and Noise
 * do: agree on a key once, then authenticate each request with a MAC, about 3 µs.
 *
 * - Each node has an X25519 key pair (made when the node is created). Its public half travels in
 *   `from.xkey` of every signed envelope, so a peer learns it only from an envelope whose Ed25519
 *   signature it verified: the binding of `xkey` to the node id is as strong as the signature.
 * - The two members of a pair derive the same key: HKDF-SHA256 over their X25519 shared secret,
 *   salted with both public keys. Only those two can compute it.
 * - A batch to a member whose `xkey` we hold carries `tsp2p-mac: <kid>.<tag>` instead of
 *   `tsp2p-sig`: `kid` names the pair of public keys used (so a stale key is recognized), `tag`
 *   is HMAC-SHA256 over the sender id, the receiver id and the SHA-256 digest of the exact body.
 *   Naming both ids means a request cannot be reflected back to its sender.
 * - Timestamps and the replay cache apply as to signed envelopes.
 * - A receiver that holds no key for the sender, or another pair of public keys (it or the
 *   sender restarted), answers 401 `no session: …`; the sender then signs its requests to that
 *   peer (each signed envelope carries its `xkey`) until one is accepted, and keeps the peer's
 *   key, which still checks the peer's own MACs. (Forgetting it there made two members that
 *   both send alternate forever: each forgot the key the other's next MAC needed, and every
 *   other batch in each direction was refused and sent again.) A peer that restarted with a new
 *   key teaches it with its next signed envelope, as soon as one of its MACs is refused here.
 *
 * A MAC proves the sender to the receiver only, not to a third party, so a gossiped message
 * still carries its origin's own signature for the nodes it is relayed to.
 *
 * @module
 */

import {
  createHash,
  createHmac,
  createPublicKey,
  diffieHellman,
  generateKeyPairSync,
  hkdfSync,
  type KeyObject,
  timingSafeEqual,
} from 'node:crypto';
import { rawPublicKey } from '../identity.js';
import type { EnvelopeSigner } from '../protocol/envelope.js';
import { bodyDigest } from './signature.js';

/** The request header that carries a session MAC: `<kid>.<tag>`, both base64url. */
export const MAC_HEADER = 'tsp2p-mac';

/** The first words of the 401 answer to a MAC the receiver cannot check (no or another key). */
export const NO_SESSION = 'no session';

const KID_CHARS = 16;
const TAG_CHARS = 43; // 32 bytes, base64url, unpadded
const MAC_FORMAT = /^[A-Za-z0-9_-]{16}\.[A-Za-z0-9_-]{43}$/;
const XKEY_FORMAT = /^[A-Za-z0-9_-]{43}$/;
const MAC_DOMAIN = 'tsp2p-mac/1\n';
const HKDF_INFO = Buffer.from('tsp2p-session/1');

/** The verdict on a MAC'd request. */
export type MacCheck = 'ok' | 'no_session' | 'bad_mac';

interface PeerSession {
  readonly xkey: string;
  /** Derived on first use. */
  key?: Buffer;
  kid?: string;
}

/** This node's X25519 key and the session of each peer whose key it learned. */
export class SessionKeys {
  readonly #self: string;
  readonly #privateKey: KeyObject;
  /** Our X25519 public key, base64url: goes in `from.xkey` of signed envelopes. */
  readonly publicKey: string;
  readonly #peers = new Map<string, PeerSession>();
  /** Peers that answered `no session`: requests to them are signed until one is accepted. */
  readonly #signTo = new Set<string>();
  /**
   * Peers known to hold this node's key: they accepted a request of this node's (each carries
   * `from.xkey`, signed or under a session they hold), or sent a MAC that checked here. Oldest
   * first, bounded as the keys are.
   */
  readonly #taught = new Set<string>();
  readonly #capacity: number;

  /**
   * @param self - this node's id (the receiver id in MACs sent to it)
   * @param capacity - most peers remembered (least recently learned first out)
   */
  constructor(self: string, capacity = 16_384) {
    this.#self = self;
    this.#capacity = Math.max(1, capacity);
    const pair = generateKeyPairSync('x25519');
    this.#privateKey = pair.privateKey;
    // Not a JWK export (see rawPublicKey): a chat once hung at its start that way.
    this.publicKey = rawPublicKey(pair.publicKey).toString('base64url');
  }

  /** Peers whose key is held. */
  get size(): number {
    return this.#peers.size;
  }

  /**
   * Records `peer`'s X25519 key, taken from an envelope whose signature was verified (never from
   * anything else). A changed key replaces the old one.
   */
  learn(peer: string, xkey: string): void {
    if (peer === this.#self || !XKEY_FORMAT.test(xkey)) return;
    const known = this.#peers.get(peer);
    if (known?.xkey === xkey) return;
    if (known === undefined && this.#peers.size >= this.#capacity) {
      const oldest = this.#peers.keys().next().value as string;
      this.#peers.delete(oldest);
      this.#signTo.delete(oldest);
      this.#taught.delete(oldest);
    }
    this.#peers.delete(peer);
    this.#peers.set(peer, { xkey });
  }

  /** Forgets `peer`'s key: requests to it are signed until it is learned again. */
  forget(peer: string): void {
    this.#peers.delete(peer);
    this.#signTo.delete(peer);
    this.#taught.delete(peer);
  }

  /**
   * `peer` answered `no session` to a MAC: it lacks this node's key (or holds an old one).
   * Requests to it are signed, which teaches it the key, until one is accepted
   * ({@link SessionKeys.accepted}). The peer's key is kept: its own MACs still check.
   */
  refused(peer: string): void {
    this.#taught.delete(peer);
    if (this.#peers.has(peer)) this.#signTo.add(peer);
  }

  /** A request to `peer` was accepted: if it was signed, the peer holds this node's key now. */
  accepted(peer: string): void {
    if (this.#signTo.size > 0) this.#signTo.delete(peer);
    this.#teach(peer);
  }

  /** Whether a key for `peer` is held. */
  has(peer: string): boolean {
    return this.#peers.has(peer);
  }

  /**
   * A signer for batches to `peer`: the MAC when its key is held, else `fallback` (the Ed25519
   * signer). `fallback.key` stays in `from.key` either way.
   */
  signerFor(peer: string, fallback: EnvelopeSigner): EnvelopeSigner {
    if (this.#signTo.has(peer)) return fallback;
    const session = this.#session(peer);
    if (session === undefined) return fallback;
    return {
      key: fallback.key,
      headers: (body) => ({
        [MAC_HEADER]: `${session.kid}.${this.#tag(session.key!, this.#self, peer, body)}`,
      }),
    };
  }

  /**
   * A signer for a request to `peer` that should not be refused: the MAC only when the peer's key
   * is held and the peer is known to hold this node's (see {@link SessionKeys.accepted}; a MAC
   * from it that checked here shows it too), else `fallback`. Membership requests go to many
   * members a few times each: a first MAC the receiver cannot check would cost a round trip
   * ({@link SessionKeys.signerFor} takes that risk for batches, which come in streams).
   */
  confirmedSignerFor(peer: string, fallback: EnvelopeSigner): EnvelopeSigner {
    return this.#taught.has(peer) ? this.signerFor(peer, fallback) : fallback;
  }

  /** Checks the `tsp2p-mac` header `value` of `body`, claimed to come from `peer`. */
  verify(peer: string, value: string, body: Uint8Array): MacCheck {
    if (!MAC_FORMAT.test(value)) return 'bad_mac';
    const session = this.#session(peer);
    if (session === undefined || value.slice(0, KID_CHARS) !== session.kid) return 'no_session';
    const expected = Buffer.from(this.#tag(session.key!, peer, this.#self, body));
    const given = Buffer.from(value.slice(KID_CHARS + 1));
    if (given.length !== TAG_CHARS || !timingSafeEqual(expected, given)) return 'bad_mac';
    // Made under this node's current key: the peer holds it.
    if (this.#signTo.size > 0) this.#signTo.delete(peer);
    this.#teach(peer);
    return 'ok';
  }

  #teach(peer: string): void {
    if (this.#taught.has(peer)) return;
    if (this.#taught.size >= this.#capacity)
      this.#taught.delete(this.#taught.values().next().value as string);
    this.#taught.add(peer);
  }

  #session(peer: string): PeerSession | undefined {
    const session = this.#peers.get(peer);
    if (session === undefined) return undefined;
    if (session.key === undefined) {
      try {
        const theirs = createPublicKey({
          key: { kty: 'OKP', crv: 'X25519', x: session.xkey },
          format: 'jwk',
        });
        const shared = diffieHellman({ privateKey: this.#privateKey, publicKey: theirs });
        // Both ends sort the two public keys the same way, so both derive the same key and kid.
        const [a, b] = [this.publicKey, session.xkey].sort();
        const salt = Buffer.from(`${a}.${b}`);
        session.key = Buffer.from(hkdfSync('sha256', shared, salt, HKDF_INFO, 32));
        session.kid = createHash('sha256').update(salt).digest('base64url').slice(0, KID_CHARS);
      } catch {
        this.#peers.delete(peer); // not a valid X25519 key after all
        return undefined;
      }
    }
    return session;
  }

  #tag(key: Buffer, sender: string, receiver: string, body: Uint8Array): string {
    return createHmac('sha256', key)
      .update(`${MAC_DOMAIN}${sender}\n${receiver}\n`)
      .update(bodyDigest(body))
      .digest('base64url');
  }
}
