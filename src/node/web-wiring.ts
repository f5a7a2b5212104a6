/**
 * The web and operations endpoints of a node, wired to it: which hosts and ports its page
 * answers to, its metrics text, its refusal counts and its clock.
 *
 * @module
 */

import { networkInterfaces } from 'node:os';
import type { Logger } from '../logger.js';
import { isUnspecifiedAddress, type Peer } from '../peer.js';
import { isLoopback } from '../web/access.js';
import type { RecentMessages } from '../web/recent-messages.js';
import { WebHandler, type WebNode, type WebWriter } from '../web/web-handler.js';

/** What the endpoints need from their node. */
export interface WebWiring {
  readonly node: WebNode;
  /** How the page and the API send (marked as theirs in `message:sent`). */
  readonly write: WebWriter;
  /** The host the node listens on (`0.0.0.0` and `::` mean every address). */
  readonly listenHost: string;
  /** The text of `/metrics`. */
  readonly metrics: () => string;
  /** Counts a refused request. */
  readonly refuse: (status: number, reason: string) => void;
  /** Whether reads are private (a network secret is set). */
  readonly privateReads: () => boolean;
  readonly wallNow: () => number;
  readonly logger: Logger;
  /** The conversation so far, for a page that opens (the node's history). */
  readonly recent: RecentMessages;
}

/** The endpoints for a node that listens at `self` (bound to `port`), writes allowed with `token`. */
export function webHandler(w: WebWiring, self: Peer, port: number, token: string): WebHandler {
  const hosts = new Set(['127.0.0.1', 'localhost', '::1', self.address.toLowerCase()]);
  if (!isUnspecifiedAddress(w.listenHost)) hosts.add(w.listenHost.toLowerCase());
  const localAddresses = new Set<string>();
  for (const list of Object.values(networkInterfaces())) {
    for (const info of list ?? []) if (!isLoopback(info.address)) localAddresses.add(info.address);
  }
  return new WebHandler({
    node: w.node,
    write: w.write,
    access: { token, hosts, ports: new Set([port, self.port]), localAddresses },
    metrics: w.metrics,
    refuse: w.refuse,
    privateReads: w.privateReads,
    logger: w.logger,
    wallNow: w.wallNow,
    recent: w.recent,
  });
}

/** The address to advertise for a listening host: the host itself, or an external IPv4 for 0.0.0.0/::. */
export function advertisedHost(host: string): string {
  if (!isUnspecifiedAddress(host)) return host;
  for (const list of Object.values(networkInterfaces())) {
    for (const info of list ?? []) {
      if (info.family === 'IPv4' && !info.internal) return info.address;
    }
  }
  return '127.0.0.1';
}
