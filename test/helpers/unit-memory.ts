/**
 * Unit-test helpers: nodes on an in-process {@link MemoryNetwork} driven by a {@link ManualClock},
 * so that node-level behaviour is tested without sockets and without real time.
 */

import { ManualClock } from '../../src/clock.js';
import { noopLogger } from '../../src/logger.js';
import { Node } from '../../src/node.js';
import type { NodeOptions } from '../../src/options.js';
import { SeededRandom } from '../../src/random.js';
import { MemoryNetwork } from '../../src/transport/memory.js';

/**
 * Advances `clock` in small steps until `promise` settles, then returns (or throws) its outcome.
 * Fails when it is still pending after `maxMs` of clock time.
 */
export async function settle<T>(clock: ManualClock, promise: Promise<T>, maxMs = 60_000): Promise<T> {
  if (!(await clock.advanceUntilSettled(promise, maxMs, 1))) {
    throw new Error(`still pending after ${maxMs} ms of clock time`);
  }
  return promise;
}

/** A memory network, its clock, and a factory for nodes that are stopped after the test. */
export interface MemoryHarness {
  readonly clock: ManualClock;
  readonly network: MemoryNetwork;
  readonly seed: number;
  /** A new node on the network (not started). */
  node(options?: NodeOptions): Node;
  /** Stops every node created, driving the clock; call it from `t.after`. */
  stopAll(): Promise<void>;
}

/** Creates a {@link MemoryHarness}; every seed derives from `seed`. */
export function memoryHarness(seed = 1): MemoryHarness {
  const clock = new ManualClock();
  const network = new MemoryNetwork({ clock, random: new SeededRandom(seed) });
  const nodes: Node[] = [];
  let n = 0;
  return {
    clock,
    network,
    seed,
    node(options: NodeOptions = {}): Node {
      n++;
      const seedBytes = new Uint8Array(32);
      new DataView(seedBytes.buffer).setUint32(0, seed >>> 0);
      new DataView(seedBytes.buffer).setUint32(4, n);
      const node = new Node({
        clock,
        random: new SeededRandom(seed * 1000 + n),
        transport: network.transport(),
        logger: noopLogger,
        identity: seedBytes,
        ...options,
      });
      nodes.push(node);
      return node;
    },
    async stopAll(): Promise<void> {
      await settle(clock, Promise.all(nodes.map((node) => node.stop())));
    },
  };
}
