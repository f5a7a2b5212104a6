/**
 * CPU per delivery of a broadcast, sender and receivers apart, for any build of tsp2p: the
 * sender runs in this process, the N-1 receivers together in one forked child, all on real
 * loopback sockets. Each process measures its own CPU (`process.cpuUsage`, user + system) over
 * each round, so the figures hold on a shared machine far better than a throughput does (a
 * process that waits for the CPU spends none). A plain script, not a scenario of `bench/run.ts`,
 * so that it can load a build of any age (`DIST` is its `dist/` directory) and compare them in
 * the same minutes (BENCHMARKS.md, "Session 13: CPU per delivery").
 *
 * Usage: `node bench/cpu-per-delivery.mjs DIST [nodes=10] [messages=10000] [rounds=5] [size=100] [window=1024]`
 *
 * After a warm-up of max(messages, 20,000) broadcasts, `rounds` rounds of `messages` broadcasts
 * with `window` in flight (each after an unmeasured 500), and one JSON line: the medians of the
 * sender's and the receivers' CPU µs per delivery (and of their system time), deliveries/s, the
 * receivers' RSS growth per delivery, and every round's figures.
 *
 * @module
 */

import { fork } from 'node:child_process';
import { pathToFileURL } from 'node:url';

const [, self, dist, nodesArg, messagesArg, roundsArg, sizeArg, windowArg] = process.argv;
if (dist === undefined) {
  console.error('usage: node bench/cpu-per-delivery.mjs DIST [nodes] [messages] [rounds] [size] [window]');
  process.exit(2);
}
const nodes = Number(nodesArg ?? 10);
const messages = Number(messagesArg ?? 10_000);
const rounds = Number(roundsArg ?? 5);
const size = Number(sizeArg ?? 100);
const window = Number(windowArg ?? 1024);
const { Node } = await import(pathToFileURL(`${dist}/index.js`).href);
const options = { host: '127.0.0.1', port: 0 };

/** CPU µs of this process so far: user and system, and system alone. */
function cpu() {
  const u = process.cpuUsage();
  return { all: u.user + u.system, sys: u.system };
}

if (process.env.TSP2P_CPD_ENTRY !== undefined) {
  // The receivers.
  const receivers = [];
  let got = 0;
  let want = 0;
  let start = cpu();
  let rss = 0;
  for (let i = 0; i < nodes - 1; i++) {
    const n = new Node(options);
    await n.start();
    await n.connect(process.env.TSP2P_CPD_ENTRY);
    n.on('message', () => {
      if (++got !== want) return;
      const end = cpu();
      process.send({
        all: end.all - start.all,
        sys: end.sys - start.sys,
        rss: process.memoryUsage().rss - rss,
      });
    });
    receivers.push(n);
  }
  process.on('message', async (m) => {
    if (m.round !== undefined) {
      got = 0;
      want = m.round;
      start = cpu();
      rss = process.memoryUsage().rss;
      process.send({ ready: true });
    }
    if (m.stop === true) {
      // Stopping may wait on a sender that is gone: not for long.
      setTimeout(() => process.exit(0), 5_000).unref();
      for (const n of receivers) await n.stop();
      process.exit(0);
    }
  });
  // The sender's process ended (or failed): so does this one, and its hold on their output.
  process.on('disconnect', () => process.exit(0));
  process.send({ up: true });
} else {
  const sender = new Node(options);
  const me = await sender.start();
  const child = fork(self, process.argv.slice(2), {
    env: { ...process.env, TSP2P_CPD_ENTRY: `${me.address}:${me.port}` },
  });
  const next = () => new Promise((resolve) => child.once('message', resolve));
  await next();
  while (sender.members().length < nodes - 1) await new Promise((r) => setTimeout(r, 50));
  const payload = Buffer.alloc(size, 97);

  /** Broadcasts `m` messages with `window` in flight; the CPU of both sides per delivery. */
  async function round(m) {
    const deliveries = m * (nodes - 1);
    child.send({ round: deliveries });
    await next();
    const done = next();
    const start = cpu();
    const wall = performance.now();
    await new Promise((resolve, reject) => {
      let sent = 0;
      let inFlight = 0;
      const pump = () => {
        while (inFlight < window && sent < m) {
          inFlight++;
          sent++;
          sender.broadcast(payload).then((r) => {
            if (r.failed.length > 0) reject(new Error(`broadcast failed: ${r.failed[0].error.message}`));
            inFlight--;
            if (sent < m) pump();
            else if (inFlight === 0) resolve();
          }, reject);
        }
      };
      pump();
    });
    const r = await done;
    const end = cpu();
    return {
      sender: (end.all - start.all) / deliveries,
      senderSys: (end.sys - start.sys) / deliveries,
      receivers: r.all / deliveries,
      receiversSys: r.sys / deliveries,
      rss: r.rss / deliveries,
      rate: (deliveries / (performance.now() - wall)) * 1000,
    };
  }

  await round(Math.max(messages, 20_000));
  const runs = [];
  for (let i = 0; i < rounds; i++) {
    await round(500);
    runs.push(await round(messages));
  }
  const median = (k) => {
    const v = runs.map((r) => r[k]).sort((a, b) => a - b);
    return Number(v[v.length >> 1].toFixed(2));
  };
  console.log(
    JSON.stringify({
      dist,
      nodes,
      messages,
      size,
      window,
      sender_cpu_us: median('sender'),
      receivers_cpu_us: median('receivers'),
      sender_sys_us: median('senderSys'),
      receivers_sys_us: median('receiversSys'),
      deliveries_per_s: Math.round(median('rate')),
      receivers_rss_bytes: Math.round(median('rss')),
      runs: runs.map((r) => [r.sender, r.receivers].map((x) => Number(x.toFixed(2)))),
    }),
  );
  child.send({ stop: true });
  await sender.stop();
  child.disconnect();
  process.exit(0);
}
