/**
 * A simulated network of tsp2p nodes on the memory transport and a manual clock.
 */

import type { TestContext } from 'node:test';
import { ManualClock } from '../../src/clock.js';
import { identityFromSeed } from '../../src/identity.js';
import { Node, type NodeOptions } from '../../src/index.js';
import { SeededRandom } from '../../src/random.js';
import { MemoryNetwork } from '../../src/transport/memory.js';

/** A node's `address:port`: how the memory network names it (`partition`, `kill`). */
export function addr(n: Node): string {
  return `${n.self.address}:${n.self.port}`;
}

/** A node's live view as a sorted list of ids, itself included. */
export function view(n: Node): string {
  return [n.id, ...n.members().map((p) => p.id)].sort().join(',');
}

/** A seed from TSP2P_SEED, or a fresh one; printed so that a failure can be replayed. */
export function testSeed(): number {
  const fromEnv = process.env.TSP2P_SEED;
  return fromEnv !== undefined ? Number(fromEnv) : Math.floor(Math.random() * 0x7fffffff);
}

export class SimNetwork {
  readonly clock = new ManualClock(0);
  readonly random: SeededRandom;
  readonly network: MemoryNetwork;
  readonly nodes: Node[] = [];

  constructor(readonly seed: number) {
    this.random = new SeededRandom(seed);
    this.network = new MemoryNetwork({
      clock: this.clock,
      random: this.random,
      latencyMs: { min: 1, max: 5 },
    });
  }

  /** Creates and starts a node at 10.0.0.1:<port>, deterministic identity included. */
  async add(options: NodeOptions = {}): Promise<Node> {
    const node = new Node({
      host: '10.0.0.1',
      clock: this.clock,
      random: this.random,
      transport: this.network.transport(),
      identity: this.random.bytes(32),
      ...options,
    });
    await node.start();
    this.nodes.push(node);
    return node;
  }

  /** Runs `op` while advancing the clock until it settles, and returns its result. */
  async run<T>(op: Promise<T>, maxMs = 60_000): Promise<T> {
    if (!(await this.clock.advanceUntilSettled(op, maxMs))) {
      throw new Error(`operation did not settle within ${maxMs} simulated ms (seed ${this.seed})`);
    }
    return op;
  }

  /** Every node but the first connects through the first, all at once. */
  async joinThroughFirst(): Promise<void> {
    const first = this.nodes[0]!;
    await this.run(Promise.all(this.nodes.slice(1).map((node) => node.connect(first.self))));
  }

  /**
   * Advances the clock until every node holds every other one as a member. Resolves with
   * whether they all did within `maxMs` of simulated time.
   */
  fullViews(maxMs = 60_000, stepMs = 50): Promise<boolean> {
    const others = this.nodes.length - 1;
    return this.clock.advanceUntil(
      () => this.nodes.every((x) => x.members().length === others),
      maxMs,
      stepMs,
    );
  }

  /**
   * From now on, every `member:fail` any node reports (as `<observer port> declared <port>
   * dead`) and the number of `member:suspect` events: in a network where nobody dies, each is
   * false.
   */
  watchFailures(): { readonly fails: string[]; readonly suspicions: { count: number } } {
    const fails: string[] = [];
    const suspicions = { count: 0 };
    for (const node of this.nodes) {
      node.on('member:fail', (p) => fails.push(`${node.self.port} declared ${p.port} dead`));
      node.on('member:suspect', () => suspicions.count++);
    }
    return { fails, suspicions };
  }

  async stopAll(): Promise<void> {
    await this.run(Promise.all(this.nodes.map((n) => n.stop())));
  }
}

/**
 * A network for test `t`: seeded by {@link testSeed} (the seed is printed, with how to replay
 * it), its nodes stopped when the test ends.
 */
export function simNetworkFor(t: TestContext): SimNetwork {
  const seed = testSeed();
  t.diagnostic(`seed ${seed} (replay with TSP2P_SEED=${seed})`);
  const sim = new SimNetwork(seed);
  t.after(() => sim.stopAll());
  return sim;
}

export { identityFromSeed };
