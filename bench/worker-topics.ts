/**
 * A benchmark worker hosting several tsp2p nodes (from the built `dist/`) for the `topics`
 * scenario, driven over IPC with {@link TopicCommands}. Each node's transport counts the bytes
 * it receives: the bodies of the requests it is sent and of the answers to its own requests.
 *
 * @module
 */

import {
  HttpTransport,
  type InboundHandler,
  type ListenOptions,
  Node,
  type OutboundRequest,
  type Transport,
} from '../dist/index.js';
import type { TopicCommands } from './lib/topics-protocol.js';

type Handlers = {
  [K in keyof TopicCommands]: (args: TopicCommands[K]['args']) => Promise<TopicCommands[K]['result']>;
};

const send = process.send?.bind(process);
if (send === undefined) {
  process.stderr.write('bench worker: start me with child_process.fork (no IPC channel)\n');
  process.exit(2);
}
process.on('disconnect', () => process.exit(1));

/** An HTTP transport that counts the bytes its node receives. */
class CountingTransport implements Transport {
  readonly #inner = new HttpTransport();
  received = 0;
  listen(options: ListenOptions) {
    const handler: InboundHandler = (req) => {
      this.received += req.body.byteLength;
      return options.handler(req);
    };
    return this.#inner.listen({ ...options, handler });
  }
  async request(r: OutboundRequest) {
    const res = await this.#inner.request(r);
    this.received += res.body.byteLength;
    return res;
  }
  close(options?: { graceMs?: number }) {
    return this.#inner.close(options);
  }
}

interface Hosted {
  readonly node: Node;
  readonly transport: CountingTransport;
  /** Messages delivered, by round. */
  readonly got: Map<number, number>;
}

let hosted: Hosted[] = [];

const handlers: Handlers = {
  async start({ count }) {
    hosted = Array.from({ length: count }, () => {
      const transport = new CountingTransport();
      // A large gossipThreshold: each publish and broadcast goes out in full (no relays), so
      // that the bytes compare like for like.
      const node = new Node({
        host: '127.0.0.1',
        port: 0,
        transport,
        gossipThreshold: 1000,
        requestTimeoutMs: 15_000,
      });
      const got = new Map<number, number>();
      node.on('message', (m) => {
        const round = Number(m.text.slice(0, m.text.indexOf('|')));
        got.set(round, (got.get(round) ?? 0) + 1);
      });
      return { node, transport, got };
    });
    const selves = await Promise.all(hosted.map((h) => h.node.start()));
    return { addresses: selves.map((p) => `${p.address}:${p.port}`) };
  },
  async join({ entry }) {
    for (const h of hosted) {
      if (`${h.node.self.address}:${h.node.self.port}` === entry) continue;
      // A loaded machine may miss a timeout: try again a few times.
      for (let attempt = 1; ; attempt++) {
        try {
          await h.node.connect(entry);
          break;
        } catch (err) {
          if (attempt >= 5) throw err;
        }
      }
    }
    return { joined: hosted.length };
  },
  async members() {
    return { min: Math.min(...hosted.map((h) => h.node.members().length)) };
  },
  async subscribe({ topics }) {
    await Promise.all(
      hosted.map((h, i) => (topics[i] === undefined ? undefined : h.node.subscribe(topics[i]!))),
    );
    return { subscribed: topics.filter((t) => t !== undefined).length };
  },
  async knows({ topic }) {
    return {
      min: Math.min(
        ...hosted.map((h) => h.node.subscribers(topic).length + (h.node.topics().includes(topic) ? 1 : 0)),
      ),
    };
  },
  async send({ round, senders, count, size, window }) {
    const pad = 'x'.repeat(Math.max(0, size - 16));
    const cpu = process.cpuUsage();
    await Promise.all(
      senders.map(async ({ local, topic }) => {
        const node = hosted[local]!.node;
        let next = 0;
        const lane = async () => {
          while (next < count) {
            const text = `${round}|${next++}|${pad}`.slice(0, Math.max(size, 8));
            if (topic === undefined) await node.broadcast(text);
            else await node.publish(topic, text);
          }
        };
        await Promise.all(Array.from({ length: Math.min(window, count) }, lane));
      }),
    );
    const used = process.cpuUsage(cpu);
    return { cpuMs: (used.user + used.system) / 1000 };
  },
  async counts({ round }) {
    return {
      delivered: hosted.map((h) => h.got.get(round) ?? 0),
      received: hosted.map((h) => h.transport.received),
    };
  },
  async stop() {
    await Promise.all(hosted.map((h) => h.node.stop()));
    setImmediate(() => process.exit(0));
    return {};
  },
};

process.on('message', (raw: unknown) => {
  const msg = raw as { id: number; cmd: keyof TopicCommands; args: never };
  const handler = handlers[msg.cmd] as ((args: unknown) => Promise<unknown>) | undefined;
  if (handler === undefined) {
    send({ id: msg.id, ok: false, error: `unknown command ${String(msg.cmd)}` });
    return;
  }
  handler(msg.args).then(
    (result) => send({ id: msg.id, ok: true, result }),
    (err: unknown) =>
      send({ id: msg.id, ok: false, error: err instanceof Error ? err.message : String(err) }),
  );
});
send({ ev: 'ready' });
