/**
 * Self-records: what a member says about itself (where it is reached, its name, and later its
 * tags and topics), signed with its own key, so that gossip can carry it to nodes that never
 * talked to the member and each of them can check it. Nobody else can change these fields: see
 * `src/membership/news.ts` for the rules, and PROTOCOL.md ("Self-records") for the format.
 *
 * The signed bytes are a canonical encoding of the record:
 *
 *     "tsp2p-rec/1\n" + JSON.stringify({address, id, inc, name?, port, tags?, topics?})
 *
 * with the keys in that (lexicographic) order, `tags` with its keys sorted (by UTF-16 code
 * units), `topics` in its order, `name`, `tags` and `topics` left out when absent or empty, no
 * whitespace, strings escaped as `JSON.stringify` escapes them and integers in decimal. The signature is the
 * Ed25519 signature of SHA-256("tsp2p-body/1\n" + those bytes), as for an envelope body
 * (`signature.ts`). A new field is added by giving it a place in the key order: a record
 * without it encodes as before.
 *
 * @module
 */

import type { KeyObject } from 'node:crypto';
import type { Identity } from '../identity.js';
import { type KeyCache, sharedKeyCache, signBody, verifyBody } from './signature.js';

/** What a member states about itself, at one of its incarnations. */
export interface SelfRecord {
  readonly id: string;
  readonly address: string;
  readonly port: number;
  readonly name?: string | undefined;
  /** Small string map (rooms): at most {@link RECORD_LIMITS}.tags entries. */
  readonly tags?: Readonly<Record<string, string>> | undefined;
  /** Topic names (rooms): at most {@link RECORD_LIMITS}.topics. */
  readonly topics?: readonly string[] | undefined;
  /** The incarnation the member was at when it signed the record. */
  readonly inc: number;
}

/** Limits on the fields a self-record may carry (the schemas enforce them on the wire). */
export const RECORD_LIMITS = Object.freeze({
  /** Most tags. */
  tags: 16,
  /** Longest tag name, in characters. */
  tagKey: 32,
  /** Longest tag value, in characters. */
  tagValue: 128,
  /** Most topics. */
  topics: 32,
  /** Longest topic name, in characters. */
  topic: 64,
});

const DOMAIN = 'tsp2p-rec/1\n';

/** The canonical bytes of a record (see the module comment). */
export function recordBytes(r: SelfRecord): Buffer {
  // Built by hand, not by JSON.stringify of an object: an object puts integer-like keys first.
  const parts = [`"address":${JSON.stringify(r.address)}`, `"id":${JSON.stringify(r.id)}`, `"inc":${r.inc}`];
  if (r.name !== undefined && r.name !== '') parts.push(`"name":${JSON.stringify(r.name)}`);
  parts.push(`"port":${r.port}`);
  if (r.tags !== undefined) {
    const keys = Object.keys(r.tags).sort();
    if (keys.length > 0) {
      const tags = keys.map((k) => `${JSON.stringify(k)}:${JSON.stringify(r.tags![k])}`);
      parts.push(`"tags":{${tags.join(',')}}`);
    }
  }
  if (r.topics !== undefined && r.topics.length > 0) parts.push(`"topics":${JSON.stringify(r.topics)}`);
  return Buffer.from(`${DOMAIN}{${parts.join(',')}}`);
}

/** Signs and checks self-records: this node's own, and those gossip brings. */
export interface RecordAuthority {
  /** This node's public key, base64url (as in `from.key`). */
  readonly key: string;
  /** This node's signature of its own record (base64url, 86 characters). */
  sign(record: SelfRecord): string;
  /** Whether `key` hashes to `record.id` and `sig` is its signature of `record`. */
  verify(record: SelfRecord, key: string, sig: string): boolean;
}

/**
 * Records whose signature was found good, by signature, with the key and bytes it covers;
 * bounded (oldest first out). What it holds is a pure function of its entries, so every node of
 * a process may share it: a record gossiped to many nodes of one process (a simulation) is
 * verified once.
 */
class VerifiedRecords {
  readonly #capacity: number;
  readonly #bySig = new Map<string, string>();

  constructor(capacity: number) {
    this.#capacity = capacity;
  }

  has(sig: string, keyAndBytes: string): boolean {
    return this.#bySig.get(sig) === keyAndBytes;
  }

  add(sig: string, keyAndBytes: string): void {
    if (this.#bySig.size >= this.#capacity) this.#bySig.delete(this.#bySig.keys().next().value as string);
    this.#bySig.set(sig, keyAndBytes);
  }
}

const verified = new VerifiedRecords(16_384);

/** The {@link RecordAuthority} of a node with this identity. */
export function recordAuthority(identity: Identity, keys: KeyCache = sharedKeyCache): RecordAuthority {
  const privateKey: KeyObject = identity.privateKey;
  return {
    key: Buffer.from(identity.publicKey).toString('base64url'),
    sign: (record) => signBody(recordBytes(record), privateKey),
    verify: (record, key, sig) => {
      const bytes = recordBytes(record);
      const entry = `${key}\n${bytes.toString('latin1')}`;
      if (verified.has(sig, entry)) return true;
      const k = keys.resolve(record.id, key);
      if (typeof k === 'string' || !verifyBody(bytes, sig, k)) return false;
      verified.add(sig, entry);
      return true;
    },
  };
}
