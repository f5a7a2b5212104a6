/**
 * The messages between the benchmark (parent) and its workers (one child process per node),
 * over the IPC channel with `serialization: 'advanced'` (typed arrays cross intact).
 *
 * Every command gets exactly one reply with the same `id`. A worker sends `{ ev: 'ready' }`
 * once it listens for commands.
 *
 * @module
 */

/** Commands and their results. */
export interface Commands {
  /** Start the node; resolves with its `'host:port'`. */
  start: { args: Record<string, never>; result: { address: string } };
  /**
   * Join the network: a tsp2p node connects to `entry` (none for the entry point itself); a
   * baseline node opens a pool to each of `peers` other than itself.
   */
  join: { args: { entry: string | undefined; peers: readonly string[] }; result: { members: number } };
  /** How many members the node sees now. */
  members: { args: Record<string, never>; result: { members: number } };
  /** Get ready to receive `count` messages from each of `senders` in `round`. */
  arm: { args: { round: number; senders: readonly number[]; count: number }; result: Record<string, never> };
  /** Resolves once everything armed for `round` has arrived. */
  wait: { args: { round: number }; result: Received };
  /** Progress of the armed round (for the error message when a round times out). */
  status: { args: Record<string, never>; result: { round: number; received: number; expected: number } };
  /** Broadcast `count` payloads of `size` bytes, `window` broadcasts in flight at a time. */
  send: {
    args: { round: number; sender: number; count: number; size: number; window: number };
    result: Sent;
  };
  /**
   * Start the V8 CPU profiler (no `file`), or stop it and write the profile, in `.cpuprofile`
   * format as `node --cpu-prof` writes, to `file`.
   */
  profile: { args: { file?: string }; result: Record<string, never> };
  /** Stop the node and exit. */
  stop: { args: Record<string, never>; result: Record<string, never> };
}

/** What a receiver reports for a round. */
export interface Received {
  /** Wall-clock ms of the delivery that completed the round. */
  readonly doneAt: number;
  /** Send-to-delivery latency of every delivery, in ms, in arrival order. */
  readonly latencies: Float64Array;
  readonly duplicates: number;
  /** Messages of another round that arrived meanwhile. */
  readonly stale: number;
  /** CPU time (user + system) this process used from `arm` until the round completed, in ms. */
  readonly cpuMs: number;
}

/** What a sender reports for a round. */
export interface Sent {
  /** Wall-clock ms just before the first send. */
  readonly firstAt: number;
  /** Wall-clock ms when the last broadcast resolved. */
  readonly lastAt: number;
  /** Deliveries reported as failed, and the first error's message. */
  readonly failed: number;
  readonly firstError: string | undefined;
  /** CPU time (user + system) this process used while sending, in ms. */
  readonly cpuMs: number;
}

export type CommandName = keyof Commands;

/** Parent to worker. */
export interface Request<K extends CommandName = CommandName> {
  readonly id: number;
  readonly cmd: K;
  readonly args: Commands[K]['args'];
}

/** Worker to parent. */
export type Reply =
  | { readonly ev: 'ready' }
  | { readonly id: number; readonly ok: true; readonly result: unknown }
  | { readonly id: number; readonly ok: false; readonly error: string };
