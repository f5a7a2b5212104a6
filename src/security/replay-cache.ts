/**
 * The replay cache: which signed envelopes a node has accepted lately, by sender and message id.
 *
 * An envelope carries its sender's timestamp `ts`, and a node accepts only envelopes whose `ts`
 * is within its clock skew window (and at most {@link DEFAULT_MAX_FUTURE_SKEW_MS} ahead of its
 * clock: see `inbound-guard.ts`). The cache therefore needs to remember an envelope only while
 * its `ts` is inside the window: after that, the window refuses it anyway.
 *
 * The cache is bounded, and no one sender can fill it:
 *
 * - each sender (`from.id`) holds at most `quota` entries; its next envelope drops its own oldest;
 * - when the whole cache is full, the oldest entry overall is dropped;
 * - a dropped entry's `ts` becomes **its sender's** floor: from then on an envelope of that
 *   sender stamped at or before its floor is refused as too old. A replay is therefore never
 *   accepted, even under a flood, and a floor only ever concerns the sender whose entries were
 *   dropped. A floor is one of the sender's own past stamps: it never runs ahead of that
 *   sender's clock, so its later envelopes pass.
 *
 * A flood from one key therefore evicts that key's own entries; a flood from many keys (each
 * costs a signature from a key the receiver accepts) drops the oldest entries overall and raises
 * the floors of their senders to stamps they already used, which refuses nothing they send next.
 *
 * @module
 */

/** What the cache knows of an envelope. */
export type ReplayStatus =
  /** Not seen: it may be accepted. */
  | 'new'
  /** Seen with the same signature: the same bytes again (a retry, a relay or a replay). */
  | 'same'
  /** Seen with another signature: the same id again in other bytes; verify before trusting it. */
  | 'other';

interface Entry {
  readonly sender: Sender;
  readonly id: string;
  readonly ts: number;
  /** A fingerprint of the signature or MAC (see {@link fingerprint}). */
  readonly sig: number;
}

interface Sender {
  /** This sender's entries, oldest inserted first. */
  readonly entries: Map<string, Entry>;
  /** Its envelopes stamped at or before this are refused. */
  floor: number;
}

/**
 * How many characters of a signature (or MAC tag) the cache keeps to tell the same bytes from
 * others: the 8 before the last (a base64url signature's last character carries padding bits, a
 * MAC header starts with the key id its sender uses for every request), as a 48-bit number. A
 * number rather than a slice: a slice of a string keeps the whole header alive, and the cache
 * holds every request of the last `windowMs` (5 minutes by default). Two signatures of one id
 * that collide merely skip the check of the second (`'other'` is verified, then acknowledged
 * as a duplicate anyway).
 */
const SIG_CHARS = 8;

/** Default share of the cache one sender may hold: an eighth. */
export const DEFAULT_SENDER_SHARE = 8;

/** Envelopes accepted lately, by sender and id, each remembered while its timestamp is in the window. */
export class ReplayCache {
  readonly #capacity: number;
  readonly #quota: number;
  readonly #windowMs: number;
  // Every entry, oldest inserted first.
  readonly #order = new Set<Entry>();
  readonly #senders = new Map<string, Sender>();
  // The floors of sender records dropped to bound their number (see #bound).
  #fallbackFloor = Number.NEGATIVE_INFINITY;
  #sweptAt = Number.NEGATIVE_INFINITY;

  /**
   * @param capacity - most envelopes remembered in all
   * @param windowMs - how far back a timestamp may be from the local clock, in ms
   * @param quota - most envelopes remembered per sender @default capacity / 8
   */
  constructor(capacity: number, windowMs: number, quota = Math.ceil(capacity / DEFAULT_SENDER_SHARE)) {
    this.#capacity = Math.max(1, capacity);
    this.#quota = Math.max(1, Math.min(quota, this.#capacity));
    this.#windowMs = windowMs;
  }

  /** How many envelopes are remembered. */
  get size(): number {
    return this.#order.size;
  }

  /** How many senders the cache holds entries or a floor for (at most twice its capacity). */
  get senders(): number {
    return this.#senders.size;
  }

  /** The floor of `sender`: its envelopes stamped at or before it are refused. */
  floor(sender: string): number {
    return Math.max(this.#fallbackFloor, this.#senders.get(sender)?.floor ?? Number.NEGATIVE_INFINITY);
  }

  /** What the cache knows of envelope `id` of `sender`, signed (or MAC'd) with `sig`. */
  status(sender: string, id: string, sig: string, now: number): ReplayStatus {
    this.#expire(now);
    const entry = this.#senders.get(sender)?.entries.get(id);
    if (entry === undefined) return 'new';
    return entry.sig === fingerprint(sig) ? 'same' : 'other';
  }

  /**
   * Records an accepted envelope. Returns the function that forgets it again: a request that
   * ends up refused (its sender not yet a member, say) may be retried with the same bytes.
   */
  add(sender: string, id: string, ts: number, sig: string, now: number): () => void {
    this.#expire(now);
    let s = this.#senders.get(sender);
    if (s === undefined) {
      s = { entries: new Map(), floor: Number.NEGATIVE_INFINITY };
      this.#senders.set(sender, s);
    }
    const entry: Entry = { sender: s, id, ts, sig: fingerprint(sig) };
    const old = s.entries.get(id);
    if (old !== undefined) this.#remove(old);
    s.entries.set(id, entry);
    this.#order.add(entry);
    if (s.entries.size > this.#quota) {
      const oldest = s.entries.values().next().value as Entry;
      this.#drop(oldest, now);
    }
    if (this.#order.size > this.#capacity) {
      const oldest = this.#order.values().next().value as Entry;
      this.#drop(oldest, now);
    }
    // The entry just added keeps its sender's record: only records without entries go.
    if (this.#senders.size > 2 * this.#capacity) this.#bound(2 * this.#capacity, now);
    return () => {
      if (s.entries.get(id) === entry) this.#remove(entry);
    };
  }

  /** Drops an entry still inside the window: its sender's floor rises to its stamp. */
  #drop(entry: Entry, now: number): void {
    this.#remove(entry);
    if (entry.ts + this.#windowMs >= now) entry.sender.floor = Math.max(entry.sender.floor, entry.ts);
  }

  #remove(entry: Entry): void {
    this.#order.delete(entry);
    entry.sender.entries.delete(entry.id);
  }

  #expire(now: number): void {
    // Entries were inserted roughly in timestamp order: stop at the first one still in the window
    // (a later one that expired earlier waits for its turn; memory stays bounded by capacity).
    for (const entry of this.#order) {
      if (entry.ts + this.#windowMs >= now) break;
      this.#remove(entry);
    }
    // A sender with no entries left and a floor out of the window needs no record (swept at
    // most once a second: the sweep reads every record).
    if (this.#senders.size > this.#order.size && now - this.#sweptAt >= 1000) {
      this.#sweptAt = now;
      for (const [id, s] of this.#senders) {
        if (s.entries.size === 0 && s.floor + this.#windowMs < now) this.#senders.delete(id);
      }
    }
  }

  /**
   * Keeps at most `max` sender records: the oldest records without entries go, and their
   * floors (clamped to now, so that it never refuses what is stamped after this moment) fold
   * into one floor for every sender. It takes more distinct keys than the cache has entries,
   * each with an envelope dropped inside the window, to get here.
   */
  #bound(max: number, now: number): void {
    for (const [id, s] of this.#senders) {
      if (this.#senders.size <= max) break;
      if (s.entries.size > 0) continue;
      this.#senders.delete(id);
      this.#fallbackFloor = Math.max(this.#fallbackFloor, Math.min(s.floor, now));
    }
  }
}

/**
 * The {@link SIG_CHARS} characters of `sig` before its last, as a number (6 bits each: the
 * base64url alphabet; any other character counts as its code unit, which distinguishes as well).
 */
function fingerprint(sig: string): number {
  const end = Math.max(0, sig.length - 1);
  let n = 0;
  for (let i = Math.max(0, end - SIG_CHARS); i < end; i++) n = n * 64 + base64urlValue(sig.charCodeAt(i));
  return n;
}

function base64urlValue(c: number): number {
  if (c >= 65 && c <= 90) return c - 65; // A-Z
  if (c >= 97 && c <= 122) return c - 71; // a-z
  if (c >= 48 && c <= 57) return c + 4; // 0-9
  if (c === 45) return 62; // -
  if (c === 95) return 63; // _
  return c % 64;
}
