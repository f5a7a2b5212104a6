/**
 * Naming the recipients of a direct message, as people type them (pure: no I/O): an address
 * (`host:port`, a URL, a bare port for 127.0.0.1), a member's name, or a member's id.
 *
 * @module
 */

import type { Peer } from '../index.js';
import { normalizeAddress } from './args.js';
import { addressOf, safeText } from './format.js';

/** The recipients, resolved; or the first entry that names nobody, and why. */
export type Resolved = { readonly ok: true; readonly targets: string[] } | Unresolved;

/** An entry that names nobody, or several members. */
export interface Unresolved {
  readonly ok: false;
  readonly code: 'ERR_INVALID_ADDRESS' | 'ERR_UNKNOWN_PEER';
  readonly message: string;
}

/**
 * Resolves each entry against the live `members`: an address as it is (the node checks that it
 * is a member), a name to the address of the one member with that name, an id as it is. One
 * entry that names nobody (or several members) fails the whole list, so nothing is sent.
 */
export function resolveTargets(entries: readonly string[], members: readonly Peer[]): Resolved {
  const targets: string[] = [];
  for (const entry of entries) {
    const one = resolveTarget(entry, members);
    if (typeof one !== 'string') return one;
    targets.push(one);
  }
  return { ok: true, targets };
}

/** One entry of {@link resolveTargets}. */
export function resolveTarget(entry: string, members: readonly Peer[]): string | Unresolved {
  const text = entry.trim();
  try {
    return normalizeAddress(text);
  } catch {
    // Not an address: a name or an id.
  }
  const named = members.filter((p) => p.name === text);
  if (named.length === 1) return addressOf(named[0]!);
  if (named.length > 1) {
    const where = named.map(addressOf).join(', ');
    return {
      ok: false,
      code: 'ERR_UNKNOWN_PEER',
      message: `${named.length} members are named '${safeText(text)}' (${where}): use an address`,
    };
  }
  if (members.some((p) => p.id === text)) return text;
  return {
    ok: false,
    code: 'ERR_INVALID_ADDRESS',
    message: `'${safeText(text)}' is neither an address (H:P) nor a member's name`,
  };
}
