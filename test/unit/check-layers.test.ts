import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { checkGraph, importsOf, LAYERS, type Layer, layerOf, mayImport } from '../../scripts/check-layers.js';

const layers: readonly Layer[] = [
  { name: 'base', paths: ['errors.ts', 'clock.ts'] },
  { name: 'protocol', paths: ['protocol/'] },
  { name: 'store', paths: ['store/'], uses: ['base'] },
  { name: 'delivery', paths: ['delivery/'] },
  { name: 'cli', paths: ['cli/'], uses: ['index'] },
  { name: 'index', paths: ['index.ts'] },
];

function kinds(graph: Record<string, string[]>): string[] {
  return checkGraph(new Map(Object.entries(graph)), layers).map((v) => v.kind);
}

describe('check:layers', () => {
  test('imports are read from the source, relative ones only, each once, as .ts paths', () => {
    const text = [
      "import { a } from '../errors.js';",
      "import type { B } from './b.js';",
      "import { c } from '../errors.js';",
      "export { d } from '../protocol/d.js';",
      "import * as z from 'zod';",
    ].join('\n');
    assert.deepEqual(importsOf('delivery/x.ts', text), ['errors.ts', 'delivery/b.ts', 'protocol/d.ts']);
  });

  test('a downward graph passes', () => {
    assert.deepEqual(
      kinds({
        'errors.ts': [],
        'clock.ts': ['errors.ts'],
        'protocol/p.ts': ['clock.ts'],
        'delivery/q.ts': ['protocol/p.ts', 'errors.ts', 'delivery/r.ts'],
        'delivery/r.ts': [],
      }),
      [],
    );
  });

  test('an upward import fails', () => {
    assert.deepEqual(kinds({ 'errors.ts': [], 'protocol/p.ts': ['delivery/q.ts'], 'delivery/q.ts': [] }), [
      'upward',
    ]);
  });

  test('a layer with `uses` may import those layers only', () => {
    // store may use base but not protocol, though protocol is below it.
    assert.deepEqual(
      kinds({ 'errors.ts': [], 'protocol/p.ts': [], 'store/s.ts': ['errors.ts', 'protocol/p.ts'] }),
      ['upward'],
    );
    // cli may use index only, though index is listed after it.
    assert.deepEqual(kinds({ 'index.ts': [], 'errors.ts': [], 'cli/c.ts': ['index.ts'] }), []);
    assert.deepEqual(kinds({ 'index.ts': [], 'errors.ts': [], 'cli/c.ts': ['errors.ts'] }), ['upward']);
  });

  test('a circle fails, inside a layer too', () => {
    assert.deepEqual(kinds({ 'delivery/a.ts': ['delivery/b.ts'], 'delivery/b.ts': ['delivery/a.ts'] }), [
      'circle',
    ]);
    const [v] = checkGraph(new Map(Object.entries({ 'delivery/a.ts': ['delivery/a.ts'] })), layers);
    assert.equal(v?.kind, 'circle');
  });

  test('a file in no layer, or an import of a missing file, fails', () => {
    assert.deepEqual(kinds({ 'other.ts': [] }), ['unlayered']);
    assert.deepEqual(kinds({ 'errors.ts': ['gone.ts'] }), ['unresolved']);
  });

  test("the project's order: store sits below membership, delivery and node, above protocol", () => {
    const store = layerOf('store/sqlite.ts')!;
    assert.equal(store.name, 'store');
    for (const name of ['membership', 'delivery', 'node']) {
      const upper = LAYERS.find((l) => l.name === name)!;
      assert.ok(mayImport(upper, store), `${name} may import store`);
      assert.ok(!mayImport(store, upper), `store may not import ${name}`);
    }
    for (const file of ['errors.ts', 'clock.ts', 'types.ts', 'peer.ts', 'protocol/schema.ts']) {
      assert.ok(mayImport(store, layerOf(file)!), `store may import ${file}`);
    }
    for (const file of ['transport/http.ts', 'security/signature.ts', 'options.ts']) {
      assert.ok(!mayImport(store, layerOf(file)!), `store may not import ${file}`);
    }
    assert.equal(layerOf('node/inbound.ts')?.name, 'node');
    assert.equal(layerOf('cli/chat.ts')?.uses?.join(), 'index');
  });
});
