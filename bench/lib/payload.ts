/**
 * The benchmark payload: a fixed header, then filler up to the requested size.
 *
 * ```
 * offset 0  u32 round    which measured round (stragglers of another round are ignored)
 * offset 4  u32 sender   index of the sending worker
 * offset 8  u32 seq      0 .. count-1 within the round
 * offset 12 u32 (zero)
 * offset 16 f64 sentAt   wall-clock ms (see {@link wallNow}) when the send began (open loop:
 *                        when it was due)
 * ```
 *
 * @module
 */

/** Bytes of header; `--size` may not be smaller. */
export const HEADER_BYTES = 24;

/**
 * Milliseconds since the epoch with sub-millisecond resolution, comparable across processes on
 * one machine: each process's `timeOrigin` is the wall clock at its start, and `now()` is monotonic.
 */
export function wallNow(): number {
  return performance.timeOrigin + performance.now();
}

/** What a receiver reads back from a payload. */
export interface Stamp {
  readonly round: number;
  readonly sender: number;
  readonly seq: number;
  readonly sentAt: number;
}

/** A payload of `size` bytes stamped with `sentAt` (by default, now). */
export function makePayload(
  size: number,
  round: number,
  sender: number,
  seq: number,
  sentAt = wallNow(),
): Uint8Array {
  const bytes = new Uint8Array(size);
  bytes.fill(0x78, HEADER_BYTES); // 'x'
  const view = new DataView(bytes.buffer);
  view.setUint32(0, round);
  view.setUint32(4, sender);
  view.setUint32(8, seq);
  view.setFloat64(16, sentAt);
  return bytes;
}

/** Reads a payload's header, or `undefined` when it is too short to be one of ours. */
export function readStamp(bytes: Uint8Array): Stamp | undefined {
  if (bytes.byteLength < HEADER_BYTES) return undefined;
  const view = new DataView(bytes.buffer, bytes.byteOffset, HEADER_BYTES);
  return {
    round: view.getUint32(0),
    sender: view.getUint32(4),
    seq: view.getUint32(8),
    sentAt: view.getFloat64(16),
  };
}
