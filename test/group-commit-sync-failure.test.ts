// A failed sync of SQLite's write-ahead log after a group-committed batch (src/storage/sqlite.ts
// `syncOffLoop`): the batch's callers are refused, the failure is told once (the server then exits
// so that its supervisor restarts it: src/server/services.ts), every later transaction is refused,
// and what was acknowledged before is still there after a reopen. The sync is made to fail through
// the adapter's `fdatasync` option (an EIO cannot be provoked on a real disk here).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fdatasync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { createGroupCommit } from '../src/storage/group-commit.js';
import { openSqlite } from '../src/storage/sqlite.js';
import { REPO_ROOT } from './helpers/cli.js';

/** The error or one of its causes is the failed sync's EIO. */
const isEio = (e: unknown): boolean =>
  e instanceof Error && ((e as NodeJS.ErrnoException).code === 'EIO' || isEio(e.cause));

const dir = mkdtempSync(join(tmpdir(), 'latchkey-gc-fail-'));
after(() => rmSync(dir, { recursive: true, force: true }));

test('a failed log sync refuses the batch and every later transaction, is told once, and loses nothing acknowledged', async () => {
  const file = join(dir, 'fail.db');
  let failNext = false;
  let syncs = 0;
  const told: unknown[] = [];
  const db = openSqlite(file, {
    onSyncFailure: (e) => told.push(e),
    fdatasync: (fd, cb) => {
      syncs++;
      if (failNext) {
        const e: NodeJS.ErrnoException = new Error('EIO: i/o error, fdatasync');
        e.code = 'EIO';
        setImmediate(() => cb(e));
        return;
      }
      fdatasync(fd, cb);
    },
  });
  await db.run('CREATE TABLE t (k TEXT PRIMARY KEY)');
  const gc = createGroupCommit(db);
  const insert = (k: string) => gc.run((tx) => tx.run('INSERT INTO t (k) VALUES ($1)', [k]));

  await Promise.all([insert('acked-1'), insert('acked-2')]);
  assert.equal(syncs, 1, 'one sync for the batch of two');
  assert.equal(told.length, 0, 'nothing told while syncs succeed');

  failNext = true;
  const refused = await Promise.allSettled([insert('lost-1'), insert('lost-2')]);
  assert.deepEqual(
    refused.map((r) => r.status),
    ['rejected', 'rejected'],
    'no caller of the batch whose sync failed is acknowledged',
  );
  assert.equal(told.length, 1, 'the failure is told once');
  assert.ok(isEio(told[0]), "the failure told is the sync's");
  assert.equal(db.writable, false, 'readiness sees an unwritable store');

  failNext = false;
  await assert.rejects(insert('after'), isEio, 'a later group-committed write is refused');
  await assert.rejects(
    db.transaction((tx) => tx.run('INSERT INTO t (k) VALUES ($1)', ['after-plain'])),
    isEio,
    'a later plain transaction is refused',
  );
  assert.equal(told.length, 1, 'told once, not per refusal');
  await db.close();

  // A restart: the log is recovered from disk; what was acknowledged is there.
  const reopened = openSqlite(file);
  const keys = (await reopened.all<{ k: string }>('SELECT k FROM t ORDER BY k')).map((r) => r.k);
  assert.ok(keys.includes('acked-1') && keys.includes('acked-2'), `acknowledged rows kept: ${keys}`);
  assert.ok(
    !keys.includes('after') && !keys.includes('after-plain'),
    `nothing written after the failure: ${keys}`,
  );
  await reopened.close();
});

test("the server's answer to a failed log sync: it says why on stderr and exits 70, for its supervisor to restart it", () => {
  const child = spawnSync(
    process.execPath,
    [
      '--import',
      'tsx',
      '-e',
      "import('./src/server/services.ts').then((m) => m.exitOnStoreSyncFailure(Object.assign(new Error('EIO: i/o error, fdatasync'), { code: 'EIO' })))",
    ],
    { cwd: REPO_ROOT, encoding: 'utf8' },
  );
  assert.equal(child.status, 70, child.stderr);
  assert.match(
    child.stderr,
    /FATAL: the store's write-ahead log could not be synced to disk \(EIO: i\/o error, fdatasync\)/,
  );
});
