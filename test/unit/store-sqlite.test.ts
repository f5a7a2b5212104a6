/**
 * What only the SQLite store has: files and their modes, schema migrations, refusing a newer or
 * a damaged database when opening, retention catching up with bounded work after a reopen,
 * and better-sqlite3 loaded only for a node with `dataDir`.
 */

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { closeSync, openSync, readFileSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { promisify } from 'node:util';
import Sqlite from 'better-sqlite3';
import type { P2PError } from '../../src/errors.js';
import { openSqliteStore } from '../../src/store/sqlite.js';
import { DB_FILE, LOCK_FILE, SCHEMA_VERSION } from '../../src/store/sqlite-schema.js';
import { msg, tempDir } from '../helpers/store.js';

const root = tempDir();
after(() => root.remove());
let n = 0;
const freshDir = (): string => join(root.dir, `d${++n}`);

async function openError(dir: string): Promise<P2PError> {
  try {
    (await openSqliteStore(dir)).close();
  } catch (err) {
    return err as P2PError;
  }
  assert.fail('opening should have failed');
}

const mode = (path: string): number => statSync(path).mode & 0o777;

describe('SQLite store files', () => {
  test('dataDir is created 0700, the database and its WAL files 0600', async () => {
    const dir = join(freshDir(), 'nested');
    const s = await openSqliteStore(dir);
    s.append([msg(1)]);
    assert.equal(mode(dir), 0o700);
    for (const f of [DB_FILE, `${DB_FILE}-wal`, `${DB_FILE}-shm`]) assert.equal(mode(join(dir, f)), 0o600, f);
    s.close();
  });

  test('an existing database file with looser permissions is made 0600', async () => {
    const dir = freshDir();
    (await openSqliteStore(dir)).close();
    const { chmodSync } = await import('node:fs');
    chmodSync(join(dir, DB_FILE), 0o644);
    (await openSqliteStore(dir)).close();
    assert.equal(mode(join(dir, DB_FILE)), 0o600);
  });

  test('a dataDir that is a file is ERR_INVALID_OPTIONS', async () => {
    const file = join(root.dir, 'a-file');
    writeFileSync(file, 'x');
    assert.equal((await openError(file)).code, 'ERR_INVALID_OPTIONS');
  });

  test('the journal is WAL and the schema at the current version', async () => {
    const dir = freshDir();
    (await openSqliteStore(dir)).close();
    const db = new Sqlite(join(dir, DB_FILE), { readonly: true });
    assert.equal(db.pragma('journal_mode', { simple: true }), 'wal');
    assert.equal(db.pragma('user_version', { simple: true }), SCHEMA_VERSION);
    db.close();
  });
});

describe('SQLite store lock', () => {
  test('a second store on the same dataDir is ERR_STORE_LOCKED until the first closes', async () => {
    const dir = freshDir();
    const first = await openSqliteStore(dir);
    first.append([msg(1)]);
    const err = await openError(dir);
    assert.equal(err.code, 'ERR_STORE_LOCKED');
    assert.equal(first.append([msg(2)])[0], 'new', 'the first goes on');
    assert.equal(mode(join(dir, LOCK_FILE)), 0o600);
    first.close();
    const second = await openSqliteStore(dir);
    assert.equal(second.stats().messages, 2);
    second.close();
  });

  test('the lock holds against another process, and goes with it', async () => {
    const dir = freshDir();
    const first = await openSqliteStore(dir);
    const script = `
      const { openSqliteStore } = await import('./src/store/sqlite.ts');
      try { (await openSqliteStore(process.argv[1])).close(); console.log('opened'); }
      catch (err) { console.log(err.code); }
    `;
    const run = async (): Promise<string> =>
      (
        await promisify(execFile)(
          process.execPath,
          ['--import', 'tsx', '--input-type=module', '-e', script, dir],
          {
            cwd: join(import.meta.dirname, '../..'),
          },
        )
      ).stdout.trim();
    assert.equal(await run(), 'ERR_STORE_LOCKED');
    first.close();
    assert.equal(await run(), 'opened');
  });
});

describe('SQLite store versions and damage', () => {
  test('an old schema is migrated, keeping its messages', async () => {
    const dir = freshDir();
    const old = await openSqliteStore(dir, { schemaVersion: 1, epoch: 'old' });
    old.append([msg(1), msg(2), msg(4)]);
    old.close();
    const check = new Sqlite(join(dir, DB_FILE), { readonly: true });
    assert.equal(check.pragma('user_version', { simple: true }), 1);
    assert.equal(check.prepare("SELECT count(*) FROM sqlite_master WHERE name = 'members'").pluck().get(), 0);
    check.close();

    const s = await openSqliteStore(dir);
    assert.equal(s.epoch, 'old');
    assert.deepEqual(
      s.history().map((e) => e.seq),
      [1, 2, 4],
    );
    assert.deepEqual(s.append([msg(2), msg(3)]), ['duplicate', 'new']);
    s.saveMembers([
      {
        id: 'ada',
        address: '127.0.0.1',
        port: 1,
        kind: 'tsp2p',
        state: 'alive',
        incarnation: 0,
        lastSeen: 0,
      },
    ]);
    assert.equal(s.members().length, 1, 'the tables of version 2 exist');
    s.close();
    const after2 = new Sqlite(join(dir, DB_FILE), { readonly: true });
    assert.equal(after2.pragma('user_version', { simple: true }), SCHEMA_VERSION);
    after2.close();
  });

  test('a database from a newer version is ERR_STORE_VERSION, and is left as it was', async () => {
    const dir = freshDir();
    (await openSqliteStore(dir)).close();
    const db = new Sqlite(join(dir, DB_FILE));
    db.pragma(`user_version = ${SCHEMA_VERSION + 1}`);
    db.close();
    const before = readFileSync(join(dir, DB_FILE));
    const err = await openError(dir);
    assert.equal(err.code, 'ERR_STORE_VERSION');
    assert.match(err.message, /newer/);
    assert.deepEqual(readFileSync(join(dir, DB_FILE)), before);
  });

  test('a file that is not a database is ERR_STORE_CORRUPT', async () => {
    const dir = freshDir();
    (await openSqliteStore(dir)).close();
    writeFileSync(join(dir, DB_FILE), Buffer.alloc(8192, 'not a database '));
    const err = await openError(dir);
    assert.equal(err.code, 'ERR_STORE_CORRUPT');
    assert.ok(err.cause !== undefined, 'with SQLite error as its cause');
  });

  test('a database with damaged pages is ERR_STORE_CORRUPT when opening, not later', async () => {
    const dir = freshDir();
    const s = await openSqliteStore(dir);
    for (let b = 0; b < 20; b++) s.append(Array.from({ length: 100 }, (_, i) => msg(b * 100 + i + 1)));
    s.close(); // checkpoints the WAL into the database
    const size = statSync(join(dir, DB_FILE)).size;
    assert.ok(size > 16 * 4096, `the database spans many pages (${size} bytes)`);
    const fd = openSync(join(dir, DB_FILE), 'r+');
    // Overwrite pages in the middle of the file (not the header) with garbage.
    writeSync(fd, Buffer.alloc(3 * 4096, 0xa5), 0, 3 * 4096, 8 * 4096);
    closeSync(fd);
    assert.equal((await openError(dir)).code, 'ERR_STORE_CORRUPT');
  });
});

describe('SQLite store retention after a reopen', () => {
  test('a lowered maxMessages is caught up with bounded work per append', async () => {
    const dir = freshDir();
    const big = await openSqliteStore(dir);
    big.append(Array.from({ length: 1000 }, (_, i) => msg(i + 1)));
    big.close();
    const s = await openSqliteStore(dir, { retention: { maxMessages: 10 } });
    assert.equal(s.stats().messages, 1000, 'opening does no sweep');
    s.append([msg(1001)]);
    assert.equal(s.stats().messages, 1001 - 257, 'one message and 256 of slack');
    let last = 1001;
    while (s.stats().messages > 10) s.append([msg(++last)]);
    assert.ok(last < 1010, `converged in a few appends (${last - 1001})`);
    assert.deepEqual(
      s.history().map((e) => e.seq),
      Array.from({ length: 10 }, (_, i) => last - 9 + i),
    );
    s.close();
  });
});

describe('loading', () => {
  test('better-sqlite3 is loaded only when a dataDir is given', async () => {
    const script = `
      const loaded = [];
      const dlopen = process.dlopen;
      process.dlopen = function (module, file, ...rest) { loaded.push(String(file)); return dlopen.call(this, module, file, ...rest); };
      const { openStore } = await import('./src/store/open.ts');
      (await openStore()).close();
      const before = loaded.some((f) => f.includes('better_sqlite3'));
      (await openStore({ dataDir: process.argv[1] })).close();
      const afterwards = loaded.some((f) => f.includes('better_sqlite3'));
      console.log(JSON.stringify({ before, afterwards }));
    `;
    const { stdout } = await promisify(execFile)(
      process.execPath,
      ['--import', 'tsx', '--input-type=module', '-e', script, freshDir()],
      { cwd: join(import.meta.dirname, '../..') },
    );
    assert.deepEqual(JSON.parse(stdout.trim().split('\n').pop() ?? ''), { before: false, afterwards: true });
  });
});
