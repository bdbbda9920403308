// SQLite's `syncOffLoop` commits (src/storage/sqlite.ts) on their failure paths: a failed sync of
// the write-ahead log poisons the store for every later write, autocommit writes included, and
// readiness keeps seeing it unwritable; a transaction refused before it began never leaves the
// connection's mutex held.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { openSqlite } from '../src/storage/sqlite.js';
import { REPO_ROOT } from './helpers/cli.js';

const dir = mkdtempSync(join(tmpdir(), 'latchkey-sync-offloop-'));
after(() => rmSync(dir, { recursive: true, force: true }));

describe('SQLite syncOffLoop: failure paths', () => {
  test('after a failed sync of the log, no write of any kind is taken and the store stays unwritable', async () => {
    const path = join(dir, 'poison.db');
    const db = openSqlite(path);
    try {
      await db.run('CREATE TABLE t (x INTEGER)');
      await db.transaction((tx) => tx.run('INSERT INTO t (x) VALUES (1)'), { syncOffLoop: true });
      // The log vanishes under the server: its sync cannot be made, so the commit is not durable.
      rmSync(`${path}-wal`);
      await assert.rejects(
        db.transaction((tx) => tx.run('INSERT INTO t (x) VALUES (2)'), { syncOffLoop: true }),
      );
      assert.equal(db.writable, false);
      // A plain transaction and an autocommit write are refused as well.
      await assert.rejects(db.transaction((tx) => tx.run('INSERT INTO t (x) VALUES (3)')));
      await assert.rejects(db.run('INSERT INTO t (x) VALUES (4)'));
      assert.equal(db.writable, false, 'an autocommit write does not make a poisoned store writable');
      assert.equal(await db.probeWrite(), false);
      // Reads still answer.
      assert.ok((await db.all('SELECT x FROM t')).length >= 1);
    } finally {
      await db.close();
    }
  });

  test('a syncOffLoop or relaxed transaction after close() is refused and does not hold the mutex', async () => {
    const db = openSqlite(join(dir, 'closed.db'));
    await db.run('CREATE TABLE t (x INTEGER)');
    await db.close();
    for (const options of [{ syncOffLoop: true }, { relaxed: true }, { syncOffLoop: true }, {}]) {
      await assert.rejects(db.transaction((tx) => tx.run('INSERT INTO t (x) VALUES (1)'), options));
    }
    // A read outside a transaction waits for the mutex: it must not wait for ever.
    await assert.rejects(db.get('SELECT 1'));
  });

  test('a process out of file descriptors still commits durably (the log was opened with the store)', () => {
    const child = spawnSync(
      'bash',
      [
        '-c',
        'ulimit -n 256 && exec "$0" --import tsx "$1" "$2"',
        process.execPath,
        join(REPO_ROOT, 'test', 'fixtures', 'sync-offloop-emfile-child.ts'),
        join(dir, 'emfile.db'),
      ],
      { cwd: REPO_ROOT, encoding: 'utf8' },
    );
    assert.equal(child.status, 0, child.stderr);
    assert.equal(child.stdout, 'OK writable=true\n');
  });
});
