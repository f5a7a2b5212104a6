import assert from 'node:assert/strict';
import { createHash, generateKeyPairSync, sign, verify } from 'node:crypto';
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { InvalidOptionsError } from '../../src/errors.js';
import {
  fingerprint,
  generateIdentity,
  identityFromSeed,
  loadOrCreateIdentityFile,
  resolveIdentity,
} from '../../src/identity.js';
import { Node } from '../../src/node.js';

// RFC 8032, section 7.1, test 1.
const RFC_SEED = Buffer.from('9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60', 'hex');
const RFC_PUBLIC = Buffer.from('d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a', 'hex');

const isInvalidOptions = (err: unknown): boolean => {
  assert.ok(err instanceof InvalidOptionsError, String(err));
  assert.equal(err.code, 'ERR_INVALID_OPTIONS');
  return true;
};

function tempDir(t: { after(fn: () => void): void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'tsp2p-identity-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

describe('identityFromSeed', () => {
  test('derives the RFC 8032 public key from its seed', () => {
    const identity = identityFromSeed(RFC_SEED);
    assert.deepEqual(Buffer.from(identity.publicKey), RFC_PUBLIC);
  });

  test('is deterministic; the id is 32 hex characters of the key fingerprint', () => {
    const a = identityFromSeed(RFC_SEED);
    const b = identityFromSeed(new Uint8Array(RFC_SEED));
    assert.equal(a.id, b.id);
    assert.match(a.id, /^[0-9a-f]{32}$/);
    assert.equal(a.id, fingerprint(a.publicKey));
    assert.equal(a.id, createHash('sha256').update(RFC_PUBLIC).digest('hex').slice(0, 32));
  });

  test('different seeds give different ids', () => {
    const ids = new Set([0, 1, 2, 3].map((n) => identityFromSeed(new Uint8Array(32).fill(n)).id));
    assert.equal(ids.size, 4);
  });

  test('the keys sign and verify', () => {
    const identity = identityFromSeed(RFC_SEED);
    const data = Buffer.from('hello');
    const signature = sign(null, data, identity.privateKey);
    assert.equal(verify(null, data, identity.publicKeyObject, signature), true);
    assert.equal(verify(null, Buffer.from('hellO'), identity.publicKeyObject, signature), false);
  });

  test('refuses a seed that is not 32 bytes', () => {
    for (const n of [0, 16, 31, 33, 64]) {
      assert.throws(() => identityFromSeed(new Uint8Array(n)), isInvalidOptions, String(n));
    }
  });
});

describe('generateIdentity', () => {
  test('gives a fresh, valid identity each time', () => {
    const a = generateIdentity();
    const b = generateIdentity();
    assert.match(a.id, /^[0-9a-f]{32}$/);
    assert.equal(a.publicKey.length, 32);
    assert.notEqual(a.id, b.id);
    assert.equal(a.id, fingerprint(a.publicKey));
  });
});

describe('loadOrCreateIdentityFile', () => {
  test('creates a 0600 PEM file, then loads the same identity from it', (t) => {
    const dir = tempDir(t);
    const path = join(dir, 'nested', 'dir', 'node.key');
    const created = loadOrCreateIdentityFile(path);
    const stat = statSync(path);
    assert.equal(stat.mode & 0o777, 0o600);
    assert.match(readFileSync(path, 'utf8'), /^-----BEGIN PRIVATE KEY-----\n/);
    const loaded = loadOrCreateIdentityFile(path);
    assert.equal(loaded.id, created.id);
    assert.deepEqual(loaded.publicKey, created.publicKey);
  });

  test('a file that holds no PEM key is refused', (t) => {
    const path = join(tempDir(t), 'bad.key');
    writeFileSync(path, 'not a key\n');
    assert.throws(() => loadOrCreateIdentityFile(path), isInvalidOptions);
    assert.equal(readFileSync(path, 'utf8'), 'not a key\n', 'a bad file is left as it is');
  });

  test('a PEM key that is not Ed25519 is refused', (t) => {
    const path = join(tempDir(t), 'x25519.key');
    const { privateKey } = generateKeyPairSync('x25519');
    writeFileSync(path, privateKey.export({ format: 'pem', type: 'pkcs8' }));
    assert.throws(() => loadOrCreateIdentityFile(path), isInvalidOptions);
  });

  test('a path that is a directory is refused', (t) => {
    const dir = tempDir(t);
    assert.throws(() => loadOrCreateIdentityFile(dir), isInvalidOptions);
  });

  test('a key file the group or others can read is refused, one line saying chmod 600; allowReadable takes it', (t) => {
    if (process.platform === 'win32') return t.skip('no POSIX modes');
    const path = join(tempDir(t), 'open.pem');
    const created = loadOrCreateIdentityFile(path);
    for (const mode of [0o644, 0o640, 0o604]) {
      chmodSync(path, mode);
      assert.throws(
        () => loadOrCreateIdentityFile(path),
        (err: unknown) => {
          isInvalidOptions(err);
          const message = (err as Error).message;
          assert.doesNotMatch(message, /\n/);
          assert.match(
            message,
            new RegExp(`readable by others \\(mode 0${mode.toString(8)}\\): run chmod 600 `),
          );
          return true;
        },
      );
      assert.throws(() => resolveIdentity(path), isInvalidOptions);
      assert.throws(() => new Node({ identity: path }), isInvalidOptions);
      assert.equal(loadOrCreateIdentityFile(path, { allowReadable: true }).id, created.id);
      assert.equal(resolveIdentity(path, { allowReadable: true }).id, created.id);
      assert.equal(new Node({ identity: path, allowReadableIdentity: true }).id, created.id);
    }
    chmodSync(path, 0o400);
    assert.equal(loadOrCreateIdentityFile(path).id, created.id, 'owner-only modes pass');
  });
});

describe('resolveIdentity', () => {
  test('accepts a seed, a PEM string, a KeyObject and a path', (t) => {
    const expected = identityFromSeed(RFC_SEED);
    const pem = expected.privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
    assert.equal(resolveIdentity(RFC_SEED).id, expected.id);
    assert.equal(resolveIdentity(pem).id, expected.id);
    assert.equal(resolveIdentity(expected.privateKey).id, expected.id);
    const path = join(tempDir(t), 'id.pem');
    writeFileSync(path, pem, { mode: 0o600 });
    assert.equal(resolveIdentity(path).id, expected.id);
  });

  test('generates one when absent', () => {
    assert.match(resolveIdentity(undefined).id, /^[0-9a-f]{32}$/);
  });

  test('refuses a bad PEM string, a public key and a non-Ed25519 key', () => {
    assert.throws(
      () => resolveIdentity('-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n'),
      isInvalidOptions,
    );
    assert.throws(() => resolveIdentity(identityFromSeed(RFC_SEED).publicKeyObject), isInvalidOptions);
    assert.throws(() => resolveIdentity(generateKeyPairSync('ed448').privateKey), isInvalidOptions);
  });

  test('a Node built from a seed has that identity’s id', () => {
    assert.equal(new Node({ identity: RFC_SEED }).id, identityFromSeed(RFC_SEED).id);
  });
});
