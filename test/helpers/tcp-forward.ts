/**
 * A TCP port forwarder, as a container runtime's published port or a NAT box is: it listens on
 * one address and pipes every connection to another. Tests use it to make a node reachable
 * only at an address it does not listen on (`advertise`).
 *
 * In-process: {@link startForwarder}. In another network namespace: run this file as a
 * program, `node --import tsx test/helpers/tcp-forward.ts LISTEN_HOST LISTEN_PORT TARGET_HOST
 * TARGET_PORT`; it prints `ready PORT` once it listens, then `conn` for each connection.
 *
 * @module
 */

import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { fileURLToPath } from 'node:url';

/** A port free on 127.0.0.1 right now (for a process that must listen on a known port). */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** A running forwarder. */
export interface Forwarder {
  /** The port it listens on. */
  readonly port: number;
  /** Connections forwarded so far. */
  readonly connections: number;
  /** Stops listening and closes every forwarded connection. */
  close(): Promise<void>;
}

/** Listens on `listenHost:listenPort` (0: any free port) and forwards to `targetHost:targetPort`. */
export async function startForwarder(
  listenHost: string,
  listenPort: number,
  targetHost: string,
  targetPort: number,
  onConnection?: () => void,
): Promise<Forwarder> {
  const open = new Set<Socket>();
  let connections = 0;
  const server: Server = createServer((inbound) => {
    connections++;
    onConnection?.();
    const outbound = createConnection({ host: targetHost, port: targetPort });
    for (const s of [inbound, outbound]) {
      open.add(s);
      s.on('close', () => open.delete(s));
      // A reset on one side ends both; the node on each side sees a closed connection.
      s.on('error', () => {
        inbound.destroy();
        outbound.destroy();
      });
    }
    inbound.pipe(outbound);
    outbound.pipe(inbound);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(listenPort, listenHost, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('the forwarder has no TCP port');
  return {
    port: address.port,
    get connections() {
      return connections;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of open) s.destroy();
        server.close(() => resolve());
      }),
  };
}

// As a program (in a network namespace, through `ip netns exec`).
if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  const [listenHost, listenPort, targetHost, targetPort] = process.argv.slice(2);
  if (targetPort === undefined) {
    console.error('usage: tcp-forward LISTEN_HOST LISTEN_PORT TARGET_HOST TARGET_PORT');
    process.exit(2);
  }
  startForwarder(listenHost!, Number(listenPort), targetHost!, Number(targetPort), () =>
    process.stdout.write('conn\n'),
  ).then(
    (f) => process.stdout.write(`ready ${f.port}\n`),
    (err: Error) => {
      console.error(`tcp-forward: ${err.message}`);
      process.exit(1);
    },
  );
}
