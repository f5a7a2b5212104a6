/**
 * In-process nodes for integration tests: started on 127.0.0.1 with a free port, and stopped
 * when the test ends.
 *
 * @module
 */

import { Node, type NodeOptions, type Peer } from '../../src/index.js';

/** Anything with `after()`: a test context or a suite context. */
export interface HasAfter {
  after(fn: () => unknown): void;
}

/** Creates and starts a node; it is stopped when the test ends. */
export async function startNode(t: HasAfter, options: NodeOptions = {}): Promise<Node> {
  const node = new Node(options);
  t.after(() => node.stop());
  await node.start();
  return node;
}

/** The sorted ids of a list of peers: compare member lists without caring for order. */
export function ids(list: readonly Pick<Peer, 'id'>[]): string[] {
  return list.map((p) => p.id).sort();
}

/** `'address:port'` of a peer. */
export function addressOf(peer: Pick<Peer, 'address' | 'port'>): string {
  return `${peer.address}:${peer.port}`;
}
