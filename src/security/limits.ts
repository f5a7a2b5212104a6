/**
 * The resource limits of a node's HTTP server and their defaults, in one place. `SECURITY.md`
 * lists them with the other limits (body cap, member table size).
 *
 * @module
 */

/** The `limits` option of a node: guards against floods and slow clients. All optional. */
export interface LimitOptions {
  /**
   * Most open connections the server holds; a connection beyond it is closed as soon as it is
   * accepted. Peers keep a few keep-alive connections each (4 by default). @default 4096
   */
  readonly maxConnections?: number;
  /** Sustained requests per second allowed from one source address (IPv6: one /64). @default 2000 */
  readonly ratePerSecond?: number;
  /** Requests one source may send in a burst above that rate. @default 4000 */
  readonly rateBurst?: number;
  /**
   * Whether requests from loopback addresses are rate-limited too. Off by default: every node of
   * a network on one machine (tests, benchmarks, a local cluster) shares 127.0.0.1, and whoever
   * runs code on the machine itself is outside the threat model. @default false
   */
  readonly rateLimitLoopback?: boolean;
  /** How long the server waits for a request's headers, in ms (slowloris). @default 10000 */
  readonly headersTimeoutMs?: number;
  /** How long the server waits for a whole request, body included, in ms. @default 30000 */
  readonly requestTimeoutMs?: number;
}

/** {@link LimitOptions} with the defaults applied. */
export type ResolvedLimits = Required<LimitOptions>;

/** The defaults of {@link LimitOptions}. */
export const DEFAULT_LIMITS: ResolvedLimits = Object.freeze({
  maxConnections: 4096,
  ratePerSecond: 2000,
  rateBurst: 4000,
  rateLimitLoopback: false,
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 30_000,
});

/** The default clock skew window for signed envelopes, in ms, either way. */
export const DEFAULT_MAX_CLOCK_SKEW_MS = 5 * 60_000;

/** Applies the defaults. */
export function resolveLimits(limits: LimitOptions | undefined): ResolvedLimits {
  const out: Record<string, unknown> = { ...DEFAULT_LIMITS };
  for (const [k, v] of Object.entries(limits ?? {})) if (v !== undefined) out[k] = v;
  return out as unknown as ResolvedLimits;
}
