/**
 * The address a user typed must not spread (issue 16, case 10): a node that joins through
 * `localhost:PORT` holds the entry point at the address the entry point advertises
 * (`127.0.0.1:PORT`), and so does everyone it tells. A member's own advertised address always
 * wins over anyone's spelling of it. Real sockets on loopback.
 */

import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Node, Peer } from '../../src/index.js';
import { startNode } from '../helpers/nodes.js';
import { waitFor } from '../helpers/wait.js';

const LAN = { preset: 'lan' } as const;

/** How `node` holds the member `id`: `address:port`, or undefined. */
function spelling(node: Node, id: string): string | undefined {
  const m = node.memberStates().find((x) => x.peer.id === id);
  return m === undefined ? undefined : `${m.peer.address}:${m.peer.port}`;
}

test('joining through localhost:PORT: every member holds the entry point at its advertised 127.0.0.1:PORT, never at localhost', async (t) => {
  const a = await startNode(t, LAN);
  const b = await startNode(t, LAN);
  const c = await startNode(t, LAN);
  // Every member event about a, anywhere, that names it otherwise.
  const misspelt: string[] = [];
  for (const node of [b, c]) {
    for (const event of ['member:join', 'member:update', 'member:suspect'] as const) {
      node.on(event, (p: Peer) => {
        if (p.id === a.id && p.address !== '127.0.0.1')
          misspelt.push(`${node.self.port} ${event} ${p.address}`);
      });
    }
  }
  // b types localhost; c joins through b as 127.0.0.1.
  await b.connect(`localhost:${a.self.port}`);
  assert.equal(spelling(b, a.id), `127.0.0.1:${a.self.port}`, 'b holds a as a advertises itself, at once');
  assert.ok(b.members().every((p) => p.address === '127.0.0.1'));
  await c.connect(`127.0.0.1:${b.self.port}`);
  await waitFor(() => [a, b, c].every((n) => n.members().length === 2), { message: 'full views' });
  // A few probe periods (1 s each), gossip included.
  const start = Date.now();
  await waitFor(() => Date.now() - start >= 3_000, { timeoutMs: 6_000, intervalMs: 100 });
  for (const node of [b, c]) {
    assert.equal(spelling(node, a.id), `127.0.0.1:${a.self.port}`, `node ${node.self.port}`);
    assert.ok(node.members().every((p) => p.address === '127.0.0.1'));
  }
  assert.deepEqual(misspelt, []);
});
