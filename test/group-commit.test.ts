// The group-commit layer (src/storage/group-commit.ts) on a real SQLite database. Turns are driven
// by hand (a manual scheduler), so which writes share a batch is decided by the test, not by timing.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, afterEach, beforeEach, describe, test } from 'node:test';
import { usedAssertionStore } from '../src/storage/authority/used-assertion-store.js';
import { createGroupCommit, type GroupCommit, groupCommitFor } from '../src/storage/group-commit.js';
import { openDatabase } from '../src/storage/open.js';
import type { Database } from '../src/storage/port.js';
import { openSqlite } from '../src/storage/sqlite.js';

const dir = mkdtempSync(join(tmpdir(), 'latchkey-gc-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** A scheduler the test turns: `turn()` runs the pending flush and waits until its batch settled. */
function manualTurns() {
  let pending: (() => void) | undefined;
  return {
    schedule: (flush: () => void) => {
      pending = flush;
    },
    get due() {
      return pending !== undefined;
    },
    turn() {
      const f = pending;
      pending = undefined;
      assert.ok(f, 'a flush was scheduled');
      f();
    },
  };
}

/** Lets every promise reaction run (the synchronous SQLite driver settles a batch within microtasks). */
const settle = () => new Promise<void>((r) => setImmediate(r));

describe('group commit (SQLite)', () => {
  let db: Database;
  let turns: ReturnType<typeof manualTurns>;
  let gc: GroupCommit;
  let n = 0;
  beforeEach(async () => {
    db = openSqlite(join(dir, `gc-${++n}.db`));
    await db.run('CREATE TABLE t (k TEXT PRIMARY KEY, v INTEGER NOT NULL)');
    turns = manualTurns();
    gc = createGroupCommit(db, { schedule: turns.schedule });
  });
  afterEach(() => db.close());

  const insert = (k: string, v: number) => (tx: Parameters<Parameters<GroupCommit['run']>[0]>[0]) =>
    tx.run('INSERT INTO t (k, v) VALUES ($1, $2)', [k, v]).then(() => k);
  const rows = () => db.all<{ k: string; v: number }>('SELECT k, v FROM t ORDER BY rowid');

  test('writes of one turn share one transaction; nobody is answered before its commit', async () => {
    const settled: string[] = [];
    const ps = ['a', 'b', 'c'].map((k, i) => gc.run(insert(k, i)).then((r) => settled.push(r)));
    await settle();
    assert.deepEqual(settled, [], 'nothing answered before the batch ran');
    assert.deepEqual(await rows(), [], 'nothing written before the batch ran');
    turns.turn();
    await Promise.all(ps);
    assert.deepEqual(settled, ['a', 'b', 'c'], 'answered in arrival order');
    assert.deepEqual(await rows(), [
      { k: 'a', v: 0 },
      { k: 'b', v: 1 },
      { k: 'c', v: 2 },
    ]);
    assert.deepEqual(gc.stats, { batches: 1, writes: 3, largest: 3 });
  });

  test('each caller is answered only after the COMMIT that holds its write', async () => {
    // A write that reads what an earlier one in the batch wrote sees it (same transaction, in order),
    // and a reader outside the batch sees nothing until the commit.
    let outsideDuring: number | undefined;
    const first = gc.run(insert('x', 1));
    const second = gc.run(async (tx) => {
      const seen = await tx.get<{ v: number }>('SELECT v FROM t WHERE k = $1', ['x']);
      // Runs while the batch's transaction is open: an outside read waits for the commit.
      void db.get<{ c: number }>('SELECT COUNT(*) AS c FROM t').then((r) => {
        outsideDuring = r?.c;
      });
      return seen?.v;
    });
    turns.turn();
    assert.equal(await first, 'x');
    assert.equal(await second, 1);
    await settle();
    assert.equal(outsideDuring, 1, 'the outside read ran after the commit');
  });

  test("a failing write fails only its own caller; the others' writes are kept", async () => {
    await db.run("INSERT INTO t (k, v) VALUES ('dup', 0)");
    const a = gc.run(insert('a', 1));
    const bad = gc.run(async (tx) => {
      await tx.run("INSERT INTO t (k, v) VALUES ('partial', 9)"); // rolled back with its savepoint
      await tx.run("INSERT INTO t (k, v) VALUES ('dup', 2)"); // UNIQUE violation
      return 'never';
    });
    const thrown = gc.run(async (tx) => {
      await tx.run("INSERT INTO t (k, v) VALUES ('also-partial', 9)");
      throw new Error('domain refusal');
    });
    const c = gc.run(insert('c', 3));
    turns.turn();
    assert.equal(await a, 'a');
    // The adapter turns the unique violation into the domain's Conflict (src/storage/errors.ts).
    await assert.rejects(bad, (e: unknown) => (e as { code?: string }).code === 'Conflict');
    await assert.rejects(thrown, /domain refusal/);
    assert.equal(await c, 'c');
    assert.deepEqual(
      (await rows()).map((r) => r.k),
      ['dup', 'a', 'c'],
      'the failed writes left nothing, the others are committed',
    );
  });

  test('a lone write that fails rolls back and fails with its own error', async () => {
    const p = gc.run(async (tx) => {
      await tx.run("INSERT INTO t (k, v) VALUES ('lone', 1)");
      throw new Error('lone refusal');
    });
    turns.turn();
    await assert.rejects(p, /lone refusal/);
    assert.deepEqual(await rows(), []);
  });

  test('a batch that cannot commit fails every caller and keeps no write', async () => {
    // A deferred foreign key is checked at COMMIT: the whole batch's commit fails.
    await db.run('CREATE TABLE parent (id TEXT PRIMARY KEY)');
    await db.run(
      'CREATE TABLE child (id TEXT PRIMARY KEY, p TEXT REFERENCES parent(id) DEFERRABLE INITIALLY DEFERRED)',
    );
    const ok1 = gc.run(insert('ok1', 1));
    const orphan = gc.run((tx) =>
      tx.run("INSERT INTO child (id, p) VALUES ('c', 'missing')").then(() => 'c'),
    );
    const ok2 = gc.run(insert('ok2', 2));
    turns.turn();
    const results = await Promise.allSettled([ok1, orphan, ok2]);
    assert.deepEqual(
      results.map((r) => r.status),
      ['rejected', 'rejected', 'rejected'],
      'nobody is acknowledged',
    );
    for (const r of results) assert.match(String((r as PromiseRejectedResult).reason), /FOREIGN KEY/);
    assert.deepEqual(await rows(), [], 'no write of the batch is kept');
    assert.deepEqual(await db.all('SELECT * FROM child'), []);
    // The committer goes on: the next batch works.
    const next = gc.run(insert('next', 5));
    turns.turn();
    assert.equal(await next, 'next');
  });

  test('single-statement writes share the batch without savepoints; if one fails, the batch fails whole', async () => {
    const one = { single: true };
    const ok = [gc.run(insert('s1', 1), one), gc.run(insert('n1', 2)), gc.run(insert('s2', 3), one)];
    turns.turn();
    assert.deepEqual(await Promise.all(ok), ['s1', 'n1', 's2']);
    assert.deepEqual(
      (await rows()).map((r) => r.k),
      ['s1', 'n1', 's2'],
    );
    // A `single` write that fails anyway (here a UNIQUE violation) takes the batch with it: no
    // caller is acknowledged and nothing of the batch is kept, not even the writes before it.
    const before = gc.run(insert('b', 4));
    const failing = gc.run(insert('s1', 5), one);
    const afterIt = gc.run(insert('a', 6));
    turns.turn();
    const results = await Promise.allSettled([before, failing, afterIt]);
    assert.deepEqual(
      results.map((r) => r.status),
      ['rejected', 'rejected', 'rejected'],
    );
    for (const r of results)
      assert.equal(((r as PromiseRejectedResult).reason as { code?: string }).code, 'Conflict');
    assert.deepEqual(
      (await rows()).map((r) => r.k),
      ['s1', 'n1', 's2'],
      'nothing of the failed batch is kept',
    );
    const next = gc.run(insert('next', 7), one);
    turns.turn();
    assert.equal(await next, 'next', 'the committer goes on');
  });

  test('writes arriving while a batch runs form the next batch, in order', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => {
      release = r;
    });
    const slow = gc.run(async (tx) => {
      await tx.run("INSERT INTO t (k, v) VALUES ('slow', 0)");
      await gate; // the batch is open while these arrive
      return 'slow';
    });
    turns.turn();
    await settle();
    const later = [gc.run(insert('l1', 1)), gc.run(insert('l2', 2))];
    assert.equal(turns.due, false, 'no second batch while one runs');
    release();
    assert.equal(await slow, 'slow');
    await settle();
    assert.equal(turns.due, true, 'the next batch is scheduled once the first is done');
    turns.turn();
    assert.deepEqual(await Promise.all(later), ['l1', 'l2']);
    assert.deepEqual(gc.stats, { batches: 2, writes: 3, largest: 2 });
    assert.deepEqual(
      (await rows()).map((r) => r.k),
      ['slow', 'l1', 'l2'],
    );
  });

  test('inside an open transaction, run joins it (no deadlock, atomic with it)', async () => {
    await assert.rejects(
      db.transaction(async () => {
        assert.equal(await gc.run(insert('inner', 1)), 'inner');
        throw new Error('outer fails');
      }),
      /outer fails/,
    );
    assert.equal(turns.due, false, 'no batch was used');
    assert.deepEqual(await rows(), [], 'rolled back with the outer transaction');
  });

  test('the default schedule waits one turn more: a write made in the next setImmediate turn joins the batch', async () => {
    const g = createGroupCommit(db);
    const first = g.run(insert('t0', 0));
    const second = new Promise<string>((resolve, reject) =>
      setImmediate(() => g.run(insert('t1', 1)).then(resolve, reject)),
    );
    assert.deepEqual(await Promise.all([first, second]), ['t0', 't1']);
    assert.deepEqual(g.stats, { batches: 1, writes: 2, largest: 2 });
    assert.deepEqual(await rows(), [
      { k: 't0', v: 0 },
      { k: 't1', v: 1 },
    ]);
  });

  test('the shared committer batches on the real event loop (setImmediate turns)', async () => {
    const shared = groupCommitFor(db);
    assert.equal(groupCommitFor(db), shared, 'one committer per database');
    const ks = Array.from({ length: 20 }, (_, i) => `k${i}`);
    assert.deepEqual(await Promise.all(ks.map((k, i) => shared.run(insert(k, i)))), ks);
    assert.deepEqual(shared.stats, { batches: 1, writes: 20, largest: 20 });
  });

  test("a jti used twice in one batch is accepted once: the second finds the first one's row", async () => {
    const real = await openDatabase(`sqlite:${join(dir, `gc-jti-${n}.db`)}`);
    try {
      const g = createGroupCommit(real, { schedule: turns.schedule });
      const exp = Date.now() + 60_000;
      // As client-assertion.ts sends them: single statements (no savepoints), mixed with others.
      const single = { single: true };
      const uses = Array.from({ length: 5 }, (_, i) =>
        g.run((tx) => usedAssertionStore.consume(tx, 'h1', exp), i % 2 ? undefined : single),
      );
      const other = g.run((tx) => usedAssertionStore.consume(tx, 'h2', exp), single);
      turns.turn();
      assert.deepEqual(await Promise.all(uses), [true, false, false, false, false]);
      assert.equal(await other, true);
      assert.equal(g.stats.largest, 6, 'all in one batch');
      // And after the commit, a later batch refuses it too.
      const later = g.run((tx) => usedAssertionStore.consume(tx, 'h1', exp));
      turns.turn();
      assert.equal(await later, false);
    } finally {
      await real.close();
    }
  });
});
