/**
 * The commands of the `topics` scenario's workers (`worker-topics.ts`), each hosting several
 * nodes addressed by their local index.
 *
 * @module
 */

/** Commands and their results. */
export interface TopicCommands {
  /** Starts `count` nodes; resolves with their `'host:port'`s. */
  start: { args: { count: number }; result: { addresses: string[] } };
  /** Connects every hosted node but `entry` itself to `entry`, one after another (5 tries each). */
  join: { args: { entry: string }; result: { joined: number } };
  /** The fewest live members any hosted node sees. */
  members: { args: Record<string, never>; result: { min: number } };
  /** Subscribes hosted node `i` to `topics[i]` (none when undefined). */
  subscribe: { args: { topics: (string | undefined)[] }; result: { subscribed: number } };
  /** The fewest subscribers of `topic` (self included when subscribed) any hosted node knows. */
  knows: { args: { topic: string }; result: { min: number } };
  /**
   * Each sender (a local index) sends `count` messages of `size` bytes, `window` in flight:
   * published to `topic`, or broadcast when there is none. The payload starts `round|`.
   */
  send: {
    args: {
      round: number;
      senders: { local: number; topic?: string }[];
      count: number;
      size: number;
      window: number;
    };
    result: { cpuMs: number };
  };
  /** Per hosted node: messages of `round` delivered, and bytes received so far. */
  counts: { args: { round: number }; result: { delivered: number[]; received: number[] } };
  stop: { args: Record<string, never>; result: Record<string, never> };
}
