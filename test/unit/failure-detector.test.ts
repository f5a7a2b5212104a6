import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { Clock, ManualClock, TimerHandle } from '../../src/clock.js';
import { noopLogger } from '../../src/logger.js';
import {
  FailureDetector,
  type IndirectResult,
  MAX_LATE_PROBES,
  type ProbeNet,
  type ProbeOutcome,
  RoundTrip,
} from '../../src/membership/failure-detector.js';
import type { Member } from '../../src/membership/member-table.js';
import { type MembershipTimings, pushPullInterval } from '../../src/membership/timings.js';
import { SeededRandom } from '../../src/random.js';
import {
  gopPeer,
  type MembershipHarness,
  membershipHarness,
  peer,
  update,
} from '../helpers/unit-membership.js';

// Reproduce a failure with TSP2P_SEED=<seed printed below>.
const SEED = process.env.TSP2P_SEED === undefined ? 20261205 : Number(process.env.TSP2P_SEED);
console.log(`failure-detector: random seed ${SEED} (set TSP2P_SEED to replay)`);

/** Round numbers; suspicion long enough not to end within a test unless it says so. */
const TIMINGS: Partial<MembershipTimings> = {
  probeIntervalMs: 100,
  probeTimeoutMs: 40,
  indirectProbes: 3,
  suspicionMult: 1_000,
  gossipIntervalMs: 30,
  gossipNodes: 2,
  pushPullIntervalMs: 1_000,
  reconnectIntervalMs: 500,
  maxAwareness: 8,
};

interface Call {
  readonly op: 'ping' | 'pingReq' | 'sync' | 'gossip';
  readonly id: string;
  readonly via?: string;
  readonly timeoutMs: number;
  readonly at: number;
  /** The detector's awareness when the call was made. */
  readonly awareness: number;
}

/** A scripted network: every call is recorded and answered by the functions below. */
class FakeNet implements ProbeNet {
  readonly calls: Call[] = [];
  detector: FailureDetector | undefined;
  /** `true` is an answer, `false` a timeout; or a {@link ProbeOutcome}. */
  pingAnswer: (m: Member, signal: AbortSignal) => boolean | ProbeOutcome | Promise<boolean | ProbeOutcome> =
    () => true;
  pingReqAnswer: (via: Member, target: Member) => IndirectResult = () => 'ack';
  constructor(readonly clock: Clock) {}

  #record(op: Call['op'], m: Member, timeoutMs: number, via?: Member): void {
    this.calls.push({
      op,
      id: m.peer.id,
      ...(via ? { via: via.peer.id } : {}),
      timeoutMs,
      at: this.clock.now(),
      awareness: this.detector?.awareness ?? 0,
    });
  }
  of(op: Call['op']): Call[] {
    return this.calls.filter((c) => c.op === op);
  }
  async probe(member: Member, timeoutMs: number, signal: AbortSignal): Promise<ProbeOutcome> {
    this.#record('ping', member, timeoutMs);
    const a = await this.pingAnswer(member, signal);
    return a === true ? 'ack' : a === false ? 'failed' : a;
  }
  async pingReq(via: Member, target: Member, timeoutMs: number): Promise<IndirectResult> {
    this.#record('pingReq', target, timeoutMs, via);
    return this.pingReqAnswer(via, target);
  }
  async sync(member: Member, timeoutMs: number): Promise<boolean> {
    this.#record('sync', member, timeoutMs);
    return true;
  }
  async gossip(member: Member, timeoutMs: number): Promise<boolean> {
    this.#record('gossip', member, timeoutMs);
    return true;
  }
}

/** A clock that counts how many of its timers fired. */
class CountingClock implements Clock {
  fired = 0;
  constructor(readonly inner: ManualClock) {}
  now(): number {
    return this.inner.now();
  }
  setTimeout(fn: () => void, ms: number): TimerHandle {
    return this.inner.setTimeout(() => {
      this.fired++;
      fn();
    }, ms);
  }
  timeoutSignal(ms: number, message?: string): AbortSignal {
    return this.inner.timeoutSignal(ms, message);
  }
}

interface Setup {
  readonly h: MembershipHarness;
  readonly net: FakeNet;
  readonly fd: FailureDetector;
  readonly clock: CountingClock;
}

function setup(
  t: { after(fn: () => void): void },
  timings: Partial<MembershipTimings> = {},
  onPingAnswered?: (ms: number) => void,
): Setup {
  const h = membershipHarness({ timings: { ...TIMINGS, ...timings }, seed: SEED });
  const clock = new CountingClock(h.clock);
  const net = new FakeNet(h.clock);
  const fd = new FailureDetector({
    membership: h.membership,
    net,
    clock,
    random: new SeededRandom(SEED),
    timings: h.timings,
    logger: noopLogger,
    ...(onPingAnswered ? { onPingAnswered } : {}),
  });
  net.detector = fd;
  t.after(() => {
    fd.stop();
    h.membership.close();
  });
  return { h, net, fd, clock };
}

const peers = (n: number, base = 5000) => Array.from({ length: n }, (_, i) => peer(`m${i}`, base + i));

/** Advances the manual clock until `predicate` holds, failing (with the seed) after `maxMs`. */
async function until(s: Setup, predicate: () => boolean, what: string, maxMs = 600_000): Promise<void> {
  const ok = await s.h.clock.advanceUntil(predicate, maxMs, 5);
  assert.ok(ok, `${what} did not happen within ${maxMs} simulated ms (seed ${SEED})`);
}

describe('FailureDetector: probing', () => {
  test('round-robin: every live member is probed once per round before any is probed again', async (t) => {
    const s = setup(t);
    const members = peers(5);
    s.h.joinAll(members);
    s.fd.start();
    const rounds = 6;
    await until(s, () => s.net.of('ping').length >= rounds * 5, 'six rounds of probes');
    const targets = s.net.of('ping').map((c) => c.id);
    const orders: string[] = [];
    for (let r = 0; r < rounds; r++) {
      const round = targets.slice(r * 5, r * 5 + 5);
      assert.deepEqual([...round].sort(), members.map((m) => m.id).sort(), `round ${r}: ${round}`);
      orders.push(round.join());
    }
    assert.ok(new Set(orders).size > 1, `rounds are reshuffled (seed ${SEED})`);
    // One probe per period: healthy, so the period is never stretched.
    const at = s.net.of('ping').map((c) => c.at);
    for (let i = 1; i < at.length; i++) assert.equal(at[i]! - at[i - 1]!, s.h.timings.probeIntervalMs);
    assert.equal(s.fd.stats.probes, targets.length);
    assert.equal(s.fd.awareness, 0);
  });

  test('members that leave the network mid-round are skipped; new ones wait for the next round', async (t) => {
    const s = setup(t);
    s.h.joinAll(peers(4));
    s.fd.start();
    await until(s, () => s.net.of('ping').length >= 1, 'a first probe');
    const first = s.net.of('ping')[0]!.id;
    const gone = ['m0', 'm1', 'm2', 'm3'].find((id) => id !== first)!;
    s.h.membership.leave(gone);
    s.h.joinAll([peer('late', 6000)]);
    await until(s, () => s.net.of('ping').length >= 3, 'the rest of the round');
    const round = s.net
      .of('ping')
      .slice(0, 3)
      .map((c) => c.id);
    assert.deepEqual(round.sort(), ['m0', 'm1', 'm2', 'm3'].filter((id) => id !== gone).sort());
    await until(s, () => s.net.of('ping').length >= 7, 'the next round');
    assert.ok(s.net.of('ping').some((c) => c.id === 'late'));
    assert.ok(!s.net.of('ping').some((c) => c.id === gone));
  });

  test('a failed direct ping asks k helpers, tsp2p members only, never the target', async (t) => {
    const s = setup(t);
    const members = peers(6);
    s.h.joinAll(members);
    s.h.joinAll([gopPeer(7001), gopPeer(7002)], 'gop2p');
    s.net.pingAnswer = (m) => m.peer.id !== 'm0';
    s.net.pingReqAnswer = () => 'ack';
    s.fd.start();
    await until(s, () => s.net.of('pingReq').length >= 3 * 4, 'four indirect probes');
    const byProbe = new Map<number, Call[]>();
    for (const c of s.net.of('pingReq')) byProbe.set(c.at, [...(byProbe.get(c.at) ?? []), c]);
    for (const [, calls] of byProbe) {
      assert.equal(calls.length, s.h.timings.indirectProbes);
      const vias = calls.map((c) => c.via!);
      assert.equal(new Set(vias).size, vias.length, 'distinct helpers');
      for (const c of calls) {
        assert.equal(c.id, 'm0');
        assert.ok(/^m[1-5]$/.test(c.via!), `helper ${c.via}`);
        const t0 = s.h.timings;
        assert.equal(c.timeoutMs, Math.max(t0.probeIntervalMs - t0.probeTimeoutMs, 2 * t0.probeTimeoutMs));
      }
    }
    // Gop2p members are probed directly (any answer counts) but never asked to help.
    assert.ok(s.net.of('ping').some((c) => c.id === '127.0.0.1:7001'));
    assert.equal(s.fd.stats.indirectProbes, s.net.of('pingReq').length);
  });

  test('with fewer eligible helpers than k, all of them are asked', async (t) => {
    const s = setup(t);
    s.h.joinAll(peers(3));
    s.h.joinAll([gopPeer(7001)], 'gop2p');
    s.net.pingAnswer = (m) => m.peer.id !== 'm0';
    s.fd.start();
    await until(s, () => s.net.of('pingReq').length >= 2, 'an indirect probe');
    const calls = s.net.of('pingReq');
    assert.deepEqual(calls.map((c) => c.via).sort(), ['m1', 'm2']);
  });

  test('an ack through a helper prevents suspicion', async (t) => {
    const s = setup(t);
    s.h.joinAll(peers(4));
    s.net.pingAnswer = (m) => m.peer.id !== 'm0';
    s.net.pingReqAnswer = (via) => (via.peer.id === 'm1' ? 'ack' : 'none');
    s.fd.start();
    await until(s, () => s.net.of('pingReq').filter((c) => c.via === 'm1').length >= 3, 'm1 helping thrice');
    assert.equal(s.h.membership.get('m0')?.state, 'alive');
    assert.deepEqual(s.h.take(), []);
    assert.equal(s.fd.stats.suspicions, 0);
    assert.equal(s.fd.awareness, 0);
  });

  test('no ack at all: the member is suspected, once, through membership.suspect', async (t) => {
    const s = setup(t);
    s.h.joinAll(peers(4));
    s.net.pingAnswer = (m) => m.peer.id !== 'm0';
    s.net.pingReqAnswer = () => 'nack';
    s.fd.start();
    await until(s, () => s.h.membership.get('m0')?.state === 'suspect', 'the suspicion');
    assert.deepEqual(s.h.take(), ['member:suspect m0']);
    assert.equal(s.fd.stats.suspicions, 1);
    // Helpers that answered (nack) show this node is fine: no awareness penalty.
    assert.equal(s.fd.awareness, 0);
    // A suspect stays in the round-robin, and failing again fires nothing new.
    await until(s, () => s.net.of('ping').filter((c) => c.id === 'm0').length >= 3, 'more probes of m0');
    assert.deepEqual(s.h.take(), []);
  });

  test('a member that answers a direct ping is touched, never asked about', async (t) => {
    const s = setup(t);
    s.h.joinAll(peers(2));
    s.fd.start();
    await until(s, () => s.net.of('ping').length >= 1, 'a probe');
    const c = s.net.of('ping')[0]!;
    assert.equal(s.h.membership.get(c.id)?.lastSeen, c.at);
    assert.equal(c.timeoutMs, s.h.timings.probeTimeoutMs);
    assert.equal(s.net.of('pingReq').length, 0);
  });

  test('awareness grows when helpers do not answer, is capped, shrinks on success, and stretches the period', async (t) => {
    const s = setup(t, { maxAwareness: 3 });
    s.h.joinAll(peers(3));
    let healthy = false;
    s.net.pingAnswer = () => healthy;
    s.net.pingReqAnswer = () => 'none';
    s.fd.start();
    await until(s, () => s.fd.awareness === 3, 'awareness at its cap');
    await until(s, () => s.net.of('ping').length >= 6, 'more failed probes');
    assert.equal(s.fd.awareness, 3, 'capped at maxAwareness');
    healthy = true;
    await until(s, () => s.fd.awareness === 0, 'awareness back to 0');
    await until(s, () => s.net.of('ping').filter((c) => c.awareness === 0).length >= 8, 'healthy probes');
    const pings = s.net.of('ping');
    const seen = new Set(pings.map((c) => c.awareness));
    assert.deepEqual([...seen].sort(), [0, 1, 2, 3]);
    const t0 = s.h.timings;
    for (let i = 0; i < pings.length; i++) {
      const c = pings[i]!;
      // Each probe's timeout, and the wait before the next, stretch by (1 + awareness).
      assert.equal(c.timeoutMs, t0.probeTimeoutMs * (1 + c.awareness), `probe ${i}`);
      if (i > 0) assert.equal(c.at - pings[i - 1]!.at, t0.probeIntervalMs * (1 + c.awareness), `probe ${i}`);
    }
    // Up by one per failure, down by one per success.
    for (let i = 1; i < pings.length; i++) {
      assert.ok(Math.abs(pings[i]!.awareness - pings[i - 1]!.awareness) <= 1);
    }
    for (const c of s.net.of('pingReq')) {
      const scaled =
        Math.max(t0.probeIntervalMs - t0.probeTimeoutMs, 2 * t0.probeTimeoutMs) * (1 + c.awareness);
      assert.equal(c.timeoutMs, scaled);
    }
  });

  test('a failure with no helper to ask also counts against this node', async (t) => {
    const s = setup(t);
    s.h.joinAll(peers(1));
    s.net.pingAnswer = () => false;
    s.fd.start();
    await until(s, () => s.fd.awareness === 2, 'awareness 2');
    assert.equal(s.net.of('pingReq').length, 0);
    assert.equal(s.h.membership.get('m0')?.state, 'suspect');
  });
});

describe('FailureDetector: a probe this node waited for late (its own event loop stalled)', () => {
  /** A ping to m0 that gets no answer, and whose wait this node's loop ends `late` after its limit. */
  function lateTimeout(s: Setup, late: () => number): void {
    s.net.pingAnswer = (m) => {
      if (m.peer.id !== 'm0') return true;
      const timeout = s.net.calls[s.net.calls.length - 1]!.timeoutMs;
      return new Promise<boolean>((resolve) => s.h.clock.setTimeout(() => resolve(false), timeout + late()));
    };
  }

  test(`set aside (no helper asked, no suspicion) and probed again the next period, up to ${MAX_LATE_PROBES} times in a row; then suspected`, async (t) => {
    const s = setup(t);
    s.h.joinAll(peers(4));
    s.net.pingReqAnswer = () => 'nack';
    // Each wait ends a whole time limit late: this node did not run for that long.
    lateTimeout(s, () => s.h.timings.probeTimeoutMs * (1 + s.fd.awareness));
    s.fd.start();
    await until(s, () => s.h.membership.get('m0')?.state === 'suspect', 'the suspicion');
    const m0 = s.net.of('ping').filter((c) => c.id === 'm0');
    assert.equal(
      m0.length,
      MAX_LATE_PROBES + 1,
      `seed ${SEED}: ${MAX_LATE_PROBES} probes set aside, then the suspicion`,
    );
    assert.equal(s.fd.stats.lateProbes, MAX_LATE_PROBES);
    // Each set-aside probe is followed by another probe of m0 one (stretched) period later.
    const pings = s.net.of('ping');
    for (let i = 0; i < MAX_LATE_PROBES; i++) {
      const next = pings[pings.indexOf(m0[i]!) + 1]!;
      assert.equal(next.id, 'm0', `seed ${SEED}: m0 probed again at once after late probe ${i + 1}`);
    }
    // The helpers were asked only for the last probe, and each late probe raised awareness.
    assert.equal(s.net.of('pingReq').length, 3);
    assert.ok(
      m0[MAX_LATE_PROBES]!.awareness >= MAX_LATE_PROBES,
      `awareness ${m0[MAX_LATE_PROBES]!.awareness}`,
    );
    assert.deepEqual(s.h.take(), ['member:suspect m0']);
  });

  test('a wait that ends on time (or a little after) is not set aside; an answer resets the count', async (t) => {
    const s = setup(t);
    s.h.joinAll(peers(4));
    s.net.pingReqAnswer = () => 'nack';
    lateTimeout(s, () => Math.floor((s.h.timings.probeTimeoutMs * (1 + s.fd.awareness)) / 4));
    s.fd.start();
    await until(s, () => s.h.membership.get('m0')?.state === 'suspect', 'the suspicion');
    assert.equal(s.fd.stats.lateProbes, 0);
    assert.equal(s.net.of('ping').filter((c) => c.id === 'm0').length, 1);
  });

  test('a refused connection is never set aside, however late (crash detection)', async (t) => {
    const s = setup(t, { refusedSuspicionMs: 40 });
    s.h.joinAll(peers(4));
    s.net.pingAnswer = (m) =>
      m.peer.id !== 'm0'
        ? true
        : new Promise<ProbeOutcome>((resolve) =>
            s.h.clock.setTimeout(() => resolve('refused'), 10 * s.h.timings.probeTimeoutMs),
          );
    s.net.pingReqAnswer = () => 'refused';
    s.fd.start();
    await until(s, () => s.h.membership.get('m0')?.state === 'dead', 'the death');
    assert.equal(s.fd.stats.lateProbes, 0);
    assert.equal(s.net.of('ping').filter((c) => c.id === 'm0').length, 1);
  });
});

describe('FailureDetector: refused connections (crash detection)', () => {
  test('direct probe and every helper refused: a short suspicion (refusedSuspicionMs), then dead', async (t) => {
    const s = setup(t, { refusedSuspicionMs: 40 });
    s.h.joinAll(peers(5));
    s.net.pingAnswer = (m) => (m.peer.id === 'm0' ? 'refused' : true);
    s.net.pingReqAnswer = () => 'refused';
    s.fd.start();
    await until(s, () => s.h.membership.get('m0')?.state === 'suspect', 'the suspicion');
    const at = s.h.clock.now();
    await until(s, () => s.h.membership.get('m0')?.state === 'dead', 'the death');
    assert.equal(s.h.clock.now() - at, 40, `declared dead refusedSuspicionMs after (seed ${SEED})`);
    assert.deepEqual(s.h.take(), ['member:suspect m0', 'member:fail m0']);
    // The helpers answered: this node is fine.
    assert.equal(s.fd.awareness, 0);
  });

  test("one helper timed out, or one answered without a refusal: Lifeguard's full suspicion", async (t) => {
    for (const other of ['none', 'nack'] as const) {
      const s = setup(t, { refusedSuspicionMs: 40 });
      // m1, m2 and m3 help with every probe of m0 (k = 3); m1 never reports a refusal.
      s.h.joinAll(peers(4));
      s.net.pingAnswer = (m) => (m.peer.id === 'm0' ? 'refused' : true);
      s.net.pingReqAnswer = (via) => (via.peer.id === 'm1' ? other : 'refused');
      s.fd.start();
      await until(s, () => s.h.membership.get('m0')?.state === 'suspect', 'the suspicion');
      // Many more probes of m0, all alike: it stays suspect, far beyond refusedSuspicionMs.
      await s.h.clock.advance(50 * s.h.timings.refusedSuspicionMs);
      assert.equal(s.h.membership.get('m0')?.state, 'suspect', other);
      assert.ok(s.net.of('ping').filter((c) => c.id === 'm0').length >= 3);
      s.fd.stop();
    }
  });

  test('a direct timeout with refusing helpers is not strong evidence (a paused process)', async (t) => {
    const s = setup(t, { refusedSuspicionMs: 40 });
    s.h.joinAll(peers(4));
    s.net.pingAnswer = (m) => m.peer.id !== 'm0';
    s.net.pingReqAnswer = () => 'refused';
    s.fd.start();
    await until(s, () => s.h.membership.get('m0')?.state === 'suspect', 'the suspicion');
    await s.h.clock.advance(50 * s.h.timings.refusedSuspicionMs);
    assert.equal(s.h.membership.get('m0')?.state, 'suspect');
  });

  test('probeNow() probes a member out of turn, at most once a period, never twice at once', async (t) => {
    const s = setup(t, { probeIntervalMs: 1_000 });
    s.h.joinAll(peers(20));
    s.fd.start();
    const t0 = s.h.clock.now();
    s.fd.probeNow('m7');
    s.fd.probeNow('m7');
    await until(s, () => s.net.of('ping').some((c) => c.id === 'm7'), 'the probe of m7');
    assert.equal(s.net.of('ping').filter((c) => c.id === 'm7').length, 1);
    assert.equal(s.net.of('ping').find((c) => c.id === 'm7')?.at, t0, 'at once');
    s.fd.probeNow('m7');
    await s.h.clock.advance(10);
    assert.equal(s.net.of('ping').filter((c) => c.id === 'm7').length, 1, 'rate-limited');
    s.fd.probeNow('nobody');
    assert.equal(s.fd.stats.outOfTurn, 1);
  });
});

describe('FailureDetector: gossip, push-pull, reconnect', () => {
  test('gossip goes to at most gossipNodes live tsp2p members per round, only when there is news', async (t) => {
    const s = setup(t);
    s.h.joinAll(peers(6));
    s.h.joinAll([gopPeer(7001)], 'gop2p');
    s.h.membership.leave('m5');
    assert.equal(s.h.membership.hasGossip, true);
    s.fd.start();
    await until(s, () => s.net.of('gossip').length >= 20, 'gossip rounds');
    const rounds = new Map<number, string[]>();
    for (const c of s.net.of('gossip')) rounds.set(c.at, [...(rounds.get(c.at) ?? []), c.id]);
    for (const [at, ids] of rounds) {
      assert.ok(ids.length <= s.h.timings.gossipNodes, `${ids.length} targets at ${at}`);
      assert.equal(new Set(ids).size, ids.length);
      for (const id of ids) assert.ok(/^m[0-4]$/.test(id), `gossip to ${id}`);
    }
    assert.equal(s.fd.stats.gossips, s.net.of('gossip').length);
    // Once the queue is drained, gossip stops.
    while (s.h.membership.hasGossip) s.h.membership.piggyback();
    const before = s.net.of('gossip').length;
    await s.h.clock.advance(20 * s.h.timings.gossipIntervalMs);
    assert.equal(s.net.of('gossip').length, before);
  });

  test('the recently dead get gossip too, so that a wrongly declared node can refute', async (t) => {
    const s = setup(t);
    s.h.joinAll(peers(2));
    s.h.membership.apply(update(peer('m0', 5000), 'dead', 0));
    await s.h.clock.advance(4 * s.h.timings.pushPullIntervalMs);
    s.h.membership.apply(update(peer('m1', 5001), 'dead', 0));
    s.fd.start();
    await until(s, () => s.net.of('gossip').length >= 5, 'gossip rounds');
    assert.deepEqual([...new Set(s.net.of('gossip').map((c) => c.id))], ['m1']);
  });

  test('gossipNow() runs a round at once while started, and does nothing when stopped', async (t) => {
    const s = setup(t, { gossipIntervalMs: 1_000_000 });
    s.h.joinAll(peers(2));
    s.fd.gossipNow();
    await s.h.clock.advance(0);
    assert.equal(s.net.of('gossip').length, 0);
    s.fd.start();
    s.fd.gossipNow();
    await s.h.clock.advance(0);
    assert.equal(s.net.of('gossip').length, 2);
  });

  test('push-pull picks a live tsp2p member, every pushPullInterval(n)', async (t) => {
    const s = setup(t);
    const members = peers(40);
    s.h.joinAll(members);
    s.h.joinAll([gopPeer(7001)], 'gop2p');
    s.h.membership.leave('m39');
    s.h.membership.suspect('m38');
    s.fd.start();
    await until(s, () => s.net.of('sync').length >= 12, 'push-pull rounds');
    const syncs = s.net.of('sync');
    const live = new Set(s.h.membership.live().map((m) => m.peer.id));
    for (const c of syncs) {
      assert.ok(live.has(c.id) && /^m\d+$/.test(c.id), `sync with ${c.id}`);
      assert.equal(c.timeoutMs, s.h.timings.probeTimeoutMs * 4);
    }
    assert.ok(new Set(syncs.map((c) => c.id)).size > 1, 'random partners');
    const period = pushPullInterval(s.h.timings, s.h.membership.liveCount + 1);
    assert.equal(period, 2 * s.h.timings.pushPullIntervalMs);
    for (let i = 1; i < syncs.length; i++) assert.equal(syncs[i]!.at - syncs[i - 1]!.at, period);
    assert.equal(s.fd.stats.syncs, syncs.length);
  });

  test('reconnect tries dead tsp2p members (never left or gop2p ones), and after retention still tries their addresses, once a reconnect interval', async (t) => {
    const s = setup(t, { deadRetentionMs: 5_000, pushPullIntervalMs: 1_000_000 });
    s.h.joinAll(peers(3));
    s.h.joinAll([gopPeer(7001)], 'gop2p');
    s.h.membership.apply(update(peer('m0', 5000), 'dead', 0));
    s.h.membership.apply(update(peer('m1', 5001), 'dead', 0));
    s.h.membership.apply(update(gopPeer(7001), 'dead', 0, { kind: 'gop2p' }));
    s.h.membership.leave('m2');
    const deadAt = s.h.clock.now();
    s.fd.start();
    await until(s, () => s.h.membership.get('m0') === undefined, 'm0 reaped');
    const syncs = s.net.of('sync');
    assert.ok(syncs.length >= 5);
    assert.deepEqual([...new Set(syncs.map((c) => c.id))].sort(), ['m0', 'm1']);
    for (const c of syncs) assert.ok(c.at - deadAt < 5_000 + s.h.timings.reconnectIntervalMs);
    assert.equal(s.h.membership.get('m1'), undefined);
    // Forgotten, their addresses are still tried (a partition longer than the reap heals by
    // itself): one sync a reconnect interval, only to them.
    const before = syncs.length;
    await s.h.clock.advance(10 * s.h.timings.reconnectIntervalMs);
    const later = s.net.of('sync').slice(before);
    assert.ok(later.length >= 9 && later.length <= 10, `${later.length} reconnects in 10 intervals`);
    assert.deepEqual([...new Set(later.map((c) => c.id))].sort(), ['m0', 'm1']);
    assert.equal(s.fd.stats.syncs, 0, 'reconnects are not push-pulls');
  });
});

describe('FailureDetector: lifecycle', () => {
  test('start() is idempotent: one probe per period, not two', async (t) => {
    const s = setup(t);
    s.h.joinAll(peers(3));
    s.fd.start();
    s.fd.start();
    await until(s, () => s.net.of('ping').length >= 6, 'probes');
    const at = s.net.of('ping').map((c) => c.at);
    for (let i = 1; i < at.length; i++) assert.equal(at[i]! - at[i - 1]!, s.h.timings.probeIntervalMs);
  });

  test('stop() cancels everything: no timer fires and no call is made afterwards', async (t) => {
    const s = setup(t);
    s.h.joinAll(peers(4));
    s.h.membership.leave('m3');
    s.h.membership.apply(update(peer('m2', 5002), 'dead', 0));
    s.fd.start();
    await until(
      s,
      () => (['ping', 'gossip', 'sync'] as const).every((op) => s.net.of(op).length >= 2),
      'every loop running',
    );
    s.fd.stop();
    const calls = s.net.calls.length;
    const fired = s.clock.fired;
    await s.h.clock.advance(100 * s.h.timings.pushPullIntervalMs);
    assert.equal(s.net.calls.length, calls);
    assert.equal(s.clock.fired, fired, 'no detector timer fired after stop');
    s.fd.stop();
  });

  test('stop() during a probe in flight: the probe is aborted and suspects nobody', async (t) => {
    const s = setup(t, { pushPullIntervalMs: 1_000_000, reconnectIntervalMs: 1_000_000 });
    s.h.joinAll(peers(3));
    let signal: AbortSignal | undefined;
    // A ping that only ends when aborted, answering "no answer".
    s.net.pingAnswer = (_m, sig) => {
      signal = sig;
      return new Promise<boolean>((resolve) => sig.addEventListener('abort', () => resolve(false)));
    };
    s.fd.start();
    await until(s, () => signal !== undefined, 'a probe in flight');
    const fired = s.clock.fired;
    s.fd.stop();
    assert.equal(signal!.aborted, true);
    await s.h.clock.advance(10_000);
    assert.equal(s.clock.fired, fired, 'the aborted run did not schedule another');
    assert.equal(s.net.of('pingReq').length, 0);
    assert.equal(s.net.of('ping').length, 1);
    assert.deepEqual(s.h.take(), []);
    assert.equal(s.fd.stats.suspicions, 0);
  });

  test('start() after stop() runs the loops again', async (t) => {
    const s = setup(t);
    s.h.joinAll(peers(2));
    s.fd.start();
    await until(s, () => s.net.of('ping').length >= 2, 'probes');
    s.fd.stop();
    const before = s.net.of('ping').length;
    s.fd.start();
    await until(s, () => s.net.of('ping').length >= before + 2, 'probes after restart');
  });
});

describe('RoundTrip: how long a probe waits (RFC 6298 estimator)', () => {
  test('the floor until answers come slower; then SRTT + 4 RTTVAR, within the ceiling', () => {
    const rt = new RoundTrip(500, 4_500);
    assert.equal(rt.timeoutMs, 500, 'no sample yet: the configured timeout');
    rt.sample(2);
    assert.equal(rt.timeoutMs, 500, 'fast answers never go below the floor');
    assert.equal(rt.smoothedMs, 2);
    const slow = new RoundTrip(500, 4_500);
    slow.sample(400);
    // SRTT 400, RTTVAR 200: 400 + 4 x 200.
    assert.equal(slow.timeoutMs, 1_200);
    slow.sample(400);
    // RTTVAR 0.75 x 200 + 0.25 x 0 = 150; SRTT stays 400.
    assert.equal(slow.timeoutMs, 1_000);
    for (let i = 0; i < 50; i++) slow.sample(i % 2 === 0 ? 1_000 : 4_000);
    assert.equal(slow.timeoutMs, 4_500, 'never above the ceiling');
    for (let i = 0; i < 100; i++) slow.sample(300);
    assert.equal(slow.timeoutMs, 500, 'back to the floor once answers are fast and steady');
  });

  test('a backoff doubles the wait until the next answer is measured', () => {
    const rt = new RoundTrip(500, 4_500);
    rt.backOff();
    assert.equal(rt.timeoutMs, 1_000);
    rt.backOff();
    rt.backOff();
    assert.equal(rt.timeoutMs, 4_000);
    rt.backOff();
    assert.equal(rt.timeoutMs, 4_500, 'the ceiling holds');
    rt.sample(3);
    assert.equal(rt.timeoutMs, 500, 'an answer ends the backoff');
  });
});

describe('FailureDetector: answers slower than the probe timeout', () => {
  /** Every member answers `ms` after a ping or a gossip, if the request waits that long. */
  function answerAfter(s: Setup, ms: number): void {
    const wait = (timeoutMs: number) =>
      new Promise<void>((resolve) => {
        s.h.clock.setTimeout(resolve, Math.min(ms, timeoutMs));
      });
    s.net.pingAnswer = async (_m, signal) => {
      const call = s.net.calls.at(-1)!;
      await wait(call.timeoutMs);
      return !signal.aborted && ms <= call.timeoutMs;
    };
    const gossip = s.net.gossip.bind(s.net);
    s.net.gossip = async (member, timeoutMs) => {
      await gossip(member, timeoutMs);
      await wait(timeoutMs);
      return ms <= timeoutMs;
    };
  }

  test('the wait grows to fit the answers (helpers said the member was alive), and the direct probes succeed again', async (t) => {
    const s = setup(t);
    s.h.joinAll(peers(6));
    // 150 ms answers against a 40 ms probe timeout; the helpers reach every member.
    answerAfter(s, 150);
    s.fd.start();
    await s.h.clock.advance(20 * TIMINGS.probeIntervalMs!);
    assert.ok(s.fd.probeTimeoutMs > 150, `the wait is ${s.fd.probeTimeoutMs} ms (seed ${SEED})`);
    assert.ok(s.fd.roundTripMs >= 149 && s.fd.roundTripMs <= 151, `smoothed ${s.fd.roundTripMs} ms`);
    const asked = s.net.of('pingReq').length;
    await s.h.clock.advance(30 * TIMINGS.probeIntervalMs!);
    assert.equal(
      s.net.of('pingReq').length,
      asked,
      'no more indirect probes: every direct probe is answered',
    );
    assert.equal(s.fd.stats.suspicions, 0);
    assert.ok(s.net.of('ping').at(-1)!.timeoutMs > 150);
  });

  test('each answered ping, its own or one for another node, is reported with its round trip; others are not', async (t) => {
    const answered: number[] = [];
    const s = setup(t, {}, (ms) => answered.push(ms));
    s.h.joinAll(peers(4));
    answerAfter(s, 30);
    const answer = s.net.pingAnswer;
    s.net.pingAnswer = (m, signal) => (m.peer.id === 'm0' ? false : answer(m, signal));
    s.net.pingReqAnswer = () => 'nack';
    // A ping for another node (ping-req), before the detector's own loops run.
    const forOther = s.fd.probeFor(s.h.membership.get('m1')!, new AbortController().signal);
    await s.h.clock.advance(50);
    assert.equal(await forOther, 'ack');
    assert.deepEqual(answered, [30]);
    const m0 = s.fd.probeFor(s.h.membership.get('m0')!, new AbortController().signal);
    await s.h.clock.advance(50);
    assert.equal(await m0, 'failed');
    assert.deepEqual(answered, [30], 'an unanswered ping is not reported');
    s.fd.start();
    await until(s, () => s.fd.stats.probes >= 8, 'eight probes');
    await s.h.clock.advance(TIMINGS.probeIntervalMs! / 2);
    const own = s.net.of('ping').filter((c) => c.id !== 'm0').length - 1;
    assert.ok(own > 0 && own + 2 < s.net.of('ping').length, 'some of its own pings answered, some not');
    // Each answered ping once (one still in flight, perhaps), each after 30 ms.
    assert.ok(
      answered.length - 1 >= own - 1 && answered.length - 1 <= own,
      `${answered.length - 1} for ${own}`,
    );
    assert.ok(answered.every((ms) => ms === 30));
  });

  test('a member that does not answer at all is still suspected', async (t) => {
    const s = setup(t);
    s.h.joinAll(peers(4));
    answerAfter(s, 150);
    const answer = s.net.pingAnswer;
    s.net.pingAnswer = (m, signal) => (m.peer.id === 'm0' ? false : answer(m, signal));
    s.net.pingReqAnswer = (_via, target) => (target.peer.id === 'm0' ? 'nack' : 'ack');
    s.fd.start();
    await until(s, () => s.h.membership.get('m0')?.state === 'suspect', 'the suspicion of m0');
    for (const id of ['m1', 'm2', 'm3']) assert.equal(s.h.membership.get(id)?.state, 'alive');
  });
});

describe('FailureDetector: a suspect probed out of turn', () => {
  /** Started, past its first probe tick: the next regular probe is a whole period (100 s) away. */
  async function pastFirstTick(s: Setup): Promise<void> {
    s.fd.start();
    await until(s, () => s.fd.stats.probes === 1, 'the first regular probe');
  }

  test('a timeout ends the probe there: no helper is asked (a slow member is not hammered)', async (t) => {
    const s = setup(t, { refusedSuspicionMs: 40, probeIntervalMs: 100_000 });
    s.h.joinAll(peers(6));
    await pastFirstTick(s);
    const asked = s.net.of('pingReq').length;
    s.net.pingAnswer = (m) => m.peer.id !== 'm0';
    s.h.membership.suspect('m0');
    s.fd.suspected('m0');
    await until(s, () => s.fd.stats.outOfTurn === 1, 'the out-of-turn probe of m0');
    await s.h.clock.advance(1_000);
    assert.ok(
      s.net.of('ping').some((c) => c.id === 'm0'),
      'm0 was pinged',
    );
    assert.equal(s.net.of('pingReq').length, asked);
  });

  test('a refused connection still asks the helpers, for a crash declared at once', async (t) => {
    const s = setup(t, { refusedSuspicionMs: 40, probeIntervalMs: 100_000 });
    s.h.joinAll(peers(6));
    await pastFirstTick(s);
    const asked = s.net.of('pingReq').length;
    s.net.pingAnswer = (m) => (m.peer.id === 'm0' ? 'refused' : true);
    s.net.pingReqAnswer = () => 'refused';
    s.h.membership.suspect('m0');
    s.fd.suspected('m0');
    await until(s, () => s.h.membership.get('m0')?.state === 'dead', 'the death of m0');
    assert.equal(s.fd.stats.outOfTurn, 1);
    assert.ok(
      s.net
        .of('pingReq')
        .slice(asked)
        .some((c) => c.id === 'm0'),
    );
  });
});
