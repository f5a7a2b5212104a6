/**
 * Compat mode's names: how each gop2p peer names itself, and which name of this node it knows.
 *
 * A gop2p node knows each member by the exact `address:port` it first recorded for it, and
 * answers `403 Peer not registered` (which its own sender ignores) to every message whose `from`
 * differs. gop2p's chat example names itself `0.0.0.0:PORT`, and its `connect PORT` dials and
 * records the entry point as `0.0.0.0:PORT`. So a single name for this node cannot work with
 * every gop2p peer. This module keeps, per gop2p member (by the address it is dialed at):
 *
 * - **its own name**, the `from` it sends: learnt from its requests, from a gop2p node's member
 *   list (which holds members verbatim), or by asking it (see {@link Gop2pNames.discover});
 * - **this node's name towards it**: `0.0.0.0:PORT` for a peer that names itself with an
 *   unspecified address from this machine (a gop2p chat: it dials every node it is given as
 *   `0.0.0.0:PORT`, and its `dm PORT` targets that name), this node's advertised address
 *   otherwise. A `403 Peer not registered` to a broadcast, direct message or leave means the
 *   peer knows this node by another name: the other candidates are tried at once, and the one
 *   it takes is kept. Those three types change nothing at a gop2p node that refuses them, so
 *   trying is harmless; a connect does change it, so it is sent once, in the right name.
 *
 * The same rule gives the names in a member list for a gop2p newcomer: a gop2p member as it
 * names itself, a tsp2p member as that member will name itself towards the newcomer.
 *
 * @module
 */

import type { Clock } from '../clock.js';
import type { Logger } from '../logger.js';
import { formatHostPort, isUnspecifiedAddress, type Peer } from '../peer.js';
import type { Gop2pSender } from '../transport/peer-client.js';
import type { OutboundResponse } from '../transport/transport.js';

/** A gop2p member name: an exact (address, port) pair. */
export interface GoName {
  readonly address: string;
  readonly port: number;
}

/** What gop2p answers to a request whose Host header is its own name. */
export const GOP2P_SELF_REFUSAL = 'You can not connect with yourself.';

/** What gop2p answers to a message whose `from` is not one of its members. */
export const GOP2P_NOT_REGISTERED = 'Peer not registered';

/** Message types that a gop2p node refuses, without changing anything, when `from` is unknown. */
const MEMBER_ONLY_TYPES: ReadonlySet<number> = new Set([1, 2, 3]);

/** Sends one request to a gop2p peer: its body, with this Host header. */
export type Gop2pSend = (body: Uint8Array, host: string) => Promise<OutboundResponse>;

/** What {@link Gop2pNames} needs from its node. */
export interface Gop2pNamesDeps {
  /** This node as advertised; `undefined` while it is not started. */
  readonly self: () => Peer | undefined;
  readonly clock: Clock;
  readonly logger: Logger;
  /**
   * Sends an empty POST to `address:port` with this Host header. The peer's answer tells whether
   * that Host is its own name (gop2p checks it before anything else).
   */
  readonly probe: (address: string, port: number, host: string) => Promise<OutboundResponse>;
}

interface Entry {
  /** How it names itself, once known. */
  own: GoName | undefined;
  /** This node's name that it accepted last (a confirmed candidate). */
  knowsMeAs: GoName | undefined;
  /** A lookup of its own name under way. */
  discovering: Promise<GoName | undefined> | undefined;
}

const decoder = new TextDecoder();
const encoder = new TextEncoder();

/** The names of this node and of its gop2p members (compat mode only). */
export class Gop2pNames implements Gop2pSender {
  readonly #d: Gop2pNamesDeps;
  /** By the address the member is dialed at (`'host:port'`, its id in the member table). */
  readonly #entries = new Map<string, Entry>();
  /** A member's own name (`'host:port'`) to the key it is dialed at, where they differ. */
  readonly #aliases = new Map<string, string>();

  constructor(deps: Gop2pNamesDeps) {
    this.#d = deps;
  }

  #entry(address: string, port: number): Entry {
    const key = formatHostPort(address, port);
    let e = this.#entries.get(key);
    if (e === undefined) {
      e = { own: undefined, knowsMeAs: undefined, discovering: undefined };
      this.#entries.set(key, e);
    }
    return e;
  }

  /**
   * Where a gop2p sender is dialed: the request's source address for an unspecified name
   * (`0.0.0.0`, `::`), the member it is known to be for a name it was given before, else the
   * name itself.
   */
  dialAddress(from: GoName, sourceAddress: string): string {
    if (isUnspecifiedAddress(from.address)) return sourceAddress;
    const key = this.#aliases.get(formatHostPort(from.address, from.port));
    if (key !== undefined) return this.#entries.has(key) ? hostOf(key) : from.address;
    return from.address;
  }

  /** Records how the gop2p member dialed at `address:port` names itself. */
  learn(address: string, port: number, own: GoName): void {
    const e = this.#entry(address, port);
    const key = formatHostPort(address, port);
    if (e.own !== undefined && (e.own.address !== own.address || e.own.port !== own.port)) {
      this.#aliases.delete(formatHostPort(e.own.address, e.own.port));
    }
    e.own = { address: own.address, port: own.port };
    const ownKey = formatHostPort(own.address, own.port);
    if (ownKey !== key && !isUnspecifiedAddress(own.address)) this.#aliases.set(ownKey, key);
  }

  /** Whether the own name of the member dialed at `address:port` is known. */
  knows(address: string, port: number): boolean {
    return this.#entries.get(formatHostPort(address, port))?.own !== undefined;
  }

  /** How the member dialed at `address:port` names itself: as learnt, else that address. */
  ownName(address: string, port: number): GoName {
    return this.#entries.get(formatHostPort(address, port))?.own ?? { address, port };
  }

  /** Forgets a member (it left or died). */
  forget(address: string, port: number): void {
    const key = formatHostPort(address, port);
    const e = this.#entries.get(key);
    if (e?.own !== undefined) {
      const ownKey = formatHostPort(e.own.address, e.own.port);
      if (this.#aliases.get(ownKey) === key) this.#aliases.delete(ownKey);
    }
    this.#entries.delete(key);
  }

  /** Forgets everything (this node left the network). */
  clear(): void {
    this.#entries.clear();
    this.#aliases.clear();
  }

  /**
   * This node's names towards the member dialed at `address:port`, the likeliest first: see
   * the module comment.
   */
  namesFor(address: string, port: number): GoName[] {
    const self = this.#d.self();
    if (self === undefined) return [];
    const e = this.#entries.get(formatHostPort(address, port));
    const rule = ruleName(self, e?.own, address);
    const out: GoName[] = [];
    const add = (a: string): void => {
      if (!out.some((n) => n.address === a)) out.push({ address: a, port: self.port });
    };
    if (e?.knowsMeAs !== undefined) add(e.knowsMeAs.address);
    add(rule);
    add(self.address);
    add('0.0.0.0');
    add('127.0.0.1');
    add('localhost');
    return out;
  }

  /** The name this node sends as to the member dialed at `address:port`. */
  nameFor(address: string, port: number): GoName | undefined {
    return this.namesFor(address, port)[0];
  }

  /**
   * A member list for a gop2p newcomer, in names it can match: a gop2p member as it names itself;
   * a tsp2p member as that member will name itself towards the newcomer (the rule of
   * {@link Gop2pNames.namesFor}, which that member applies too).
   */
  listFor(
    newcomer: GoName,
    newcomerAddress: string,
    members: readonly { readonly kind: 'tsp2p' | 'gop2p'; readonly peer: Peer }[],
  ): GoName[] {
    const self = this.#d.self();
    return members.map((m) => {
      if (m.kind === 'gop2p') return this.ownName(m.peer.address, m.peer.port);
      const sameHost =
        self !== undefined && isLocal(newcomerAddress, self.address) && isLocal(m.peer.address, self.address);
      return {
        address: isUnspecifiedAddress(newcomer.address) && sameHost ? '0.0.0.0' : m.peer.address,
        port: m.peer.port,
      };
    });
  }

  /**
   * Finds how the gop2p peer dialed at `address:port` names itself, by asking: a gop2p node
   * answers `400 You can not connect with yourself.` to a request whose Host header is its own
   * name, before it reads anything else, and ignores the empty body otherwise. Resolves with the
   * name (also recorded), or `undefined` when none of the likely names is its own (it may not be
   * a gop2p node at all). Never rejects.
   */
  discover(address: string, port: number): Promise<GoName | undefined> {
    const e = this.#entry(address, port);
    if (e.own !== undefined) return Promise.resolve(e.own);
    e.discovering ??= this.#discover(address, port).finally(() => {
      e.discovering = undefined;
    });
    return e.discovering;
  }

  async #discover(address: string, port: number): Promise<GoName | undefined> {
    const candidates = [...new Set(['0.0.0.0', address, 'localhost', '127.0.0.1'])];
    for (const candidate of candidates) {
      let res: OutboundResponse;
      try {
        res = await this.#d.probe(address, port, formatHostPort(candidate, port));
      } catch {
        return undefined; // unreachable: nothing more to learn now
      }
      if (res.status === 400 && firstLine(res.body) === GOP2P_SELF_REFUSAL) {
        const own = { address: candidate, port };
        // It may have told us itself while we asked.
        if (this.#entries.get(formatHostPort(address, port))?.own === undefined)
          this.learn(address, port, own);
        this.#d.logger.debug('gop2p peer names itself', {
          peer: formatHostPort(address, port),
          as: formatHostPort(candidate, port),
        });
        return own;
      }
    }
    return undefined;
  }

  /** Waits (up to `timeoutMs`) for the lookups of own names under way for these members. */
  async settle(members: readonly { readonly peer: Peer }[], timeoutMs: number): Promise<void> {
    const pending: Promise<unknown>[] = [];
    for (const m of members) {
      const d = this.#entries.get(formatHostPort(m.peer.address, m.peer.port))?.discovering;
      if (d !== undefined) pending.push(d);
    }
    if (pending.length === 0) return;
    let timer: { cancel(): void } | undefined;
    await Promise.race([
      Promise.all(pending),
      new Promise<void>((resolve) => {
        timer = this.#d.clock.setTimeout(resolve, timeoutMs);
      }),
    ]);
    timer?.cancel();
  }

  /**
   * Sends `body` (a tsp2p envelope) to the gop2p peer `to` as gop2p would: a plain gop2p
   * envelope `{type, data, from, to?}` from the name that peer knows this node by, with that name
   * as Host. A `403 Peer not registered` to a broadcast, direct message or leave tries this
   * node's other names at once; the one accepted is kept. When none is, the answer is the 403,
   * saying which names were tried.
   */
  async request(to: GoName, body: Uint8Array, send: Gop2pSend): Promise<OutboundResponse> {
    const env = classicOf(body);
    const names = this.namesFor(to.address, to.port);
    const first = names[0];
    if (env === undefined || first === undefined) {
      const self = this.#d.self();
      return send(body, self === undefined ? '' : formatHostPort(self.address, self.port));
    }
    const retry = MEMBER_ONLY_TYPES.has(env.type);
    const tried: GoName[] = [];
    let res: OutboundResponse | undefined;
    for (const name of retry ? names : [first]) {
      res = await send(this.#encode(env, name), formatHostPort(name.address, name.port));
      tried.push(name);
      if (!isNotRegistered(res)) {
        if (res.status === 200 && retry) this.#accepted(to, name, names[0]!);
        return res;
      }
    }
    if (!retry || res === undefined) return res!;
    const list = tried.map((n) => formatHostPort(n.address, n.port)).join(', ');
    return {
      ...res,
      body: encoder.encode(
        `${GOP2P_NOT_REGISTERED}: ${formatHostPort(to.address, to.port)} knows this node by none of ${list}\n`,
      ),
    };
  }

  #accepted(to: GoName, name: GoName, guess: GoName): void {
    const e = this.#entry(to.address, to.port);
    const before = e.knowsMeAs;
    e.knowsMeAs = name;
    if (name.address !== guess.address && before?.address !== name.address) {
      this.#d.logger.info('gop2p peer knows this node by another name', {
        peer: formatHostPort(to.address, to.port),
        as: formatHostPort(name.address, name.port),
      });
    }
  }

  #encode(env: ClassicEnvelope, from: GoName): Uint8Array {
    const out: Record<string, unknown> = {
      type: env.type,
      data: env.data ?? null,
      from: { port: from.port, address: from.address },
    };
    if (env.to !== undefined) {
      out.to = env.to.map((t) => {
        const known = t.id === undefined ? this.ownName(t.address, t.port) : t;
        return { port: known.port, address: known.address };
      });
    }
    return encoder.encode(JSON.stringify(out));
  }
}

/**
 * This node's likeliest name towards a gop2p peer dialed at `address` that names itself `own`:
 * `0.0.0.0` for a peer on this machine naming itself with an unspecified address (gop2p's chat),
 * the advertised address otherwise.
 */
function ruleName(self: Peer, own: GoName | undefined, address: string): string {
  if (own !== undefined && isUnspecifiedAddress(own.address) && isLocal(address, self.address)) {
    return '0.0.0.0';
  }
  return self.address;
}

/** Whether `address` is this machine: a loopback address, or this node's own. */
function isLocal(address: string, selfAddress: string): boolean {
  return (
    address === selfAddress ||
    address === 'localhost' ||
    address === '::1' ||
    address.startsWith('127.') ||
    isUnspecifiedAddress(address)
  );
}

function hostOf(key: string): string {
  const colon = key.lastIndexOf(':');
  const host = key.slice(0, colon);
  return host.startsWith('[') ? host.slice(1, -1) : host;
}

interface ClassicEnvelope {
  readonly type: number;
  readonly data: string | null | undefined;
  readonly to: { address: string; port: number; id?: string }[] | undefined;
}

/** The gop2p fields of a sealed tsp2p envelope, or `undefined` for a body that is not one. */
function classicOf(body: Uint8Array): ClassicEnvelope | undefined {
  if (body.byteLength === 0) return undefined;
  try {
    const v = JSON.parse(decoder.decode(body)) as Record<string, unknown>;
    if (typeof v !== 'object' || v === null || typeof v.type !== 'number') return undefined;
    const data = typeof v.data === 'string' ? v.data : null;
    const to = Array.isArray(v.to) ? (v.to as ClassicEnvelope['to']) : undefined;
    return { type: v.type, data, to };
  } catch {
    return undefined;
  }
}

function isNotRegistered(res: OutboundResponse): boolean {
  return res.status === 403 && firstLine(res.body).startsWith(GOP2P_NOT_REGISTERED);
}

function firstLine(body: Uint8Array): string {
  const s = decoder.decode(body.subarray(0, Math.min(body.byteLength, 256)));
  const nl = s.indexOf('\n');
  return (nl < 0 ? s : s.slice(0, nl)).trim();
}
