/**
 * The messages between the benchmark (parent) and its workers (one child process per node),
 * over the IPC channel with `serialization: 'advanced'` (typed arrays cross intact).
 *
 * Every command gets exactly one reply with the same `id`. A worker sends `{ ev: 'ready' }`
 * once it listens for commands.
 *
 * @module
 */

/** A command set: each command's arguments and result. Every set has a `stop` command. */
export type CommandMap<C> = { [K in keyof C]: { args: unknown; result: unknown } };

/** Commands of the broadcast workers (`worker-tsp2p.ts`, `worker-baseline.ts`) and their results. */
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
  status: {
    args: Record<string, never>;
    result: {
      round: number;
      received: number;
      expected: number;
      /** Members the node sees now. */
      members: number;
      /** The node's last `send` command: broadcasts settled of `count`, deliveries failed so far. */
      sending?: { settled: number; count: number; failed: number; firstError?: string };
    };
  };
  /**
   * Broadcast `count` payloads of `size` bytes, `window` broadcasts in flight at a time; or,
   * with `rate`, open loop: payload `i` is due `i / rate` seconds after the start and is sent
   * then (stamped with that due time) whatever is still in flight.
   */
  send: {
    args: { round: number; sender: number; count: number; size: number; window: number; rate?: number };
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
  /**
   * Open loop only: how late the sends left against their schedule (timer and event-loop
   * delay of the sender), in ms: median, 99th percentile, max.
   */
  readonly late?: { readonly p50: number; readonly p99: number; readonly max: number };
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

/** A member event one node of a membership worker saw. */
export interface MemberEventRecord {
  /** Index of the node within its worker. */
  readonly node: number;
  /** `member:join`, `member:suspect`, `member:fail`, `member:leave` or `member:update`. */
  readonly event: string;
  /** Id of the member the event is about. */
  readonly peer: string;
  /** Wall-clock ms (see `wallNow` in `payload.ts`) when the event fired. */
  readonly at: number;
}

/** A process's memory (bytes, as `process.memoryUsage()`) and CPU time used since it started. */
export interface MemoryRecord {
  readonly rss: number;
  readonly heapTotal: number;
  readonly heapUsed: number;
  readonly external: number;
  readonly arrayBuffers: number;
  /** User + system CPU time since the process started, in ms. */
  readonly cpuMs: number;
  /** The main thread's voluntary context switches since it started: the event loop's wake-ups. */
  readonly wakeups: number;
  /** The same, summed over every thread of the process (V8's and libuv's helpers too). */
  readonly allWakeups: number;
  /** Whether a full garbage collection ran just before (needs `--expose-gc`). */
  readonly collected: boolean;
}

/** One node's sent traffic by message type (`ping`, `ping_req`, `sync`, `gossip`, ...). */
export interface TrafficRecord {
  readonly requests: Readonly<Record<string, number>>;
  readonly bytes: Readonly<Record<string, number>>;
}

/**
 * Commands of the membership worker (`worker-members.ts`), which hosts one or more tsp2p nodes
 * in one process, for the `join`, `failure` and `idle` scenarios.
 */
export interface MemberCommands {
  /**
   * Start `count` fresh nodes with `options` (`NodeOptions` as JSON), in a network that will
   * hold `size` nodes in all (a node's view is full when it holds the `size - 1` others alive).
   */
  start: {
    args: { count: number; size: number; options: Record<string, unknown> };
    result: { nodes: readonly { id: string; address: string }[] };
  };
  /**
   * At wall-clock time `at`, every node with an entry calls `connect(entry)`, all at once;
   * resolves when all of them have returned, with when each did (`null`: no entry).
   */
  connect: {
    args: { entries: readonly (string | null)[]; at: number };
    result: { doneAt: readonly (number | null)[]; errors: readonly string[] };
  };
  /**
   * Per node: members alive and live (alive or suspect) now, when its view was first full, and
   * since when it has been full without a break (`null`: not full now).
   */
  progress: {
    args: Record<string, never>;
    result: {
      alive: readonly number[];
      live: readonly number[];
      fullAt: readonly (number | null)[];
      fullSince: readonly (number | null)[];
    };
  };
  /** The member events every node of this worker saw since it started. */
  events: { args: Record<string, never>; result: readonly MemberEventRecord[] };
  /** This process's memory and CPU use, after a full GC when `gc` is asked and possible. */
  memory: { args: { gc: boolean }; result: MemoryRecord };
  /**
   * Per node: the requests and request body bytes it has sent since it started, by message type
   * (its `tsp2p_requests_sent_total` and `tsp2p_request_bytes_sent_total`, read from `/metrics`).
   */
  traffic: { args: Record<string, never>; result: readonly TrafficRecord[] };
  /** Stop every node of this worker; the process stays for the next `start`. */
  stopNodes: { args: Record<string, never>; result: Record<string, never> };
  /** Stop every node and exit. */
  stop: { args: Record<string, never>; result: Record<string, never> };
}

/**
 * Commands of the floor worker (`worker-floor.ts`) of the `idle` scenario: a bare `node:http`
 * server and keep-alive client exchanging requests at SWIM's rate at rest, with nothing else.
 */
export interface FloorCommands {
  /** Listen on 127.0.0.1; resolves with `'host:port'`. */
  start: { args: Record<string, never>; result: { address: string } };
  /**
   * Exchange with `peers` (round-robin, shuffled) as a settled tsp2p node does: every `probeMs` a
   * request of `probeBytes` with a `timeoutMs` timer cleared by the answer, and every `syncMs` a
   * request of `syncBytes`. Every answer is as large as its request.
   */
  run: {
    args: {
      peers: readonly string[];
      probeMs: number;
      timeoutMs: number;
      probeBytes: number;
      syncMs: number;
      syncBytes: number;
    };
    result: Record<string, never>;
  };
  memory: { args: { gc: boolean }; result: MemoryRecord };
  stop: { args: Record<string, never>; result: Record<string, never> };
}

/** Commands of the history worker (`worker-history.ts`): one node with a `dataDir`. */
export interface HistoryCommands {
  /** Start a node on `port` (0: any) with `dataDir`; counting deliveries starts now. */
  start: {
    args: { dataDir: string; port: number };
    result: { address: string; port: number; startAt: number; startedAt: number };
  };
  /** Join through `entry`. */
  connect: { args: { entry: string }; result: { members: number } };
  /** Broadcast `count` payloads of `size` bytes, `window` in flight at a time. */
  publish: { args: { count: number; size: number; window: number }; result: { ms: number } };
  /**
   * Resolves once `count` messages were delivered since the start: when `start()` was called
   * and resolved, when the last one came (wall-clock ms), the CPU used since the start, and the
   * node's `tsp2p_catchup_*` and `tsp2p_store_*` metrics.
   */
  wait: {
    args: { count: number };
    result: {
      startAt: number;
      startedAt: number;
      doneAt: number;
      delivered: number;
      late: number;
      cpuMs: number;
      metrics: Record<string, number>;
    };
  };
  /** This process's CPU time (user + system) since it started, in ms. */
  cpu: { args: Record<string, never>; result: { cpuMs: number } };
  /** Deliveries so far (for the message of a run that times out). */
  status: { args: Record<string, never>; result: { delivered: number; late: number; members: number } };
  /** Stop the node; the process stays. */
  stopNode: { args: Record<string, never>; result: Record<string, never> };
  /** Stop the node and exit. */
  stop: { args: Record<string, never>; result: Record<string, never> };
}
