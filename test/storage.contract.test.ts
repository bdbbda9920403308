import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { createAuditLog } from '../src/audit/log.js';
import { expiresAtOf } from '../src/authority/client-assertion.js';
import { LatchkeyError } from '../src/errors/index.js';
import { fakeClock } from '../src/lib/clock.js';
import { usedAssertionStore } from '../src/storage/authority/used-assertion-store.js';
import { isConcurrentWriteConflict } from '../src/storage/errors.js';
import { migrate, migrationsCurrent } from '../src/storage/migrate.js';
import { m0002 } from '../src/storage/migrations/0002_audit.js';
import { m0003 } from '../src/storage/migrations/0003_access.js';
import { ALL_MIGRATIONS } from '../src/storage/migrations/index.js';
import { openDatabase } from '../src/storage/open.js';
import {
  type Database,
  dialectSql,
  type Migration,
  splitStatements,
  type Transaction,
} from '../src/storage/port.js';
import { openPostgres } from '../src/storage/postgres.js';
import { openSqlite, sqliteStoreProblems } from '../src/storage/sqlite.js';
import { createTestSchema, type TestSchema } from './helpers/postgres.js';

/** A table for the contract, in the portable dialect. */
const CONTRACT_MIGRATION: Migration = {
  version: 9001,
  name: 'contract',
  sql: `
-- a comment line is ignored
CREATE TABLE contract_items (
  id TEXT PRIMARY KEY,
  name TEXT,
  n BIGINT,
  flag INTEGER NOT NULL DEFAULT 0,
  data {{blob}},
  body TEXT
);
CREATE TABLE contract_counter (
  id TEXT PRIMARY KEY,
  value BIGINT NOT NULL
);
CREATE TABLE contract_seq (
  seq {{bigserial}},
  label TEXT NOT NULL
);
`,
};
const MIGRATIONS = [...ALL_MIGRATIONS, CONTRACT_MIGRATION];

interface Store {
  /** Opens a new connection (pool) to the same database. */
  open(): Database;
  cleanup(): Promise<void>;
}

const count = async (db: Database, table = 'contract_items'): Promise<number> =>
  (await db.get<{ n: number }>(`SELECT COUNT(*) AS n FROM ${table}`))!.n;

/** One suite, run against every adapter. */
function contract(name: 'sqlite' | 'postgres', makeStore: () => Promise<Store>) {
  describe(`storage contract: ${name}`, () => {
    let store: Store;
    let db: Database;

    before(async () => {
      store = await makeStore();
      db = store.open();
    });
    after(async () => {
      await db?.close();
      await store?.cleanup();
    });

    test('dialect and ping', async () => {
      assert.equal(db.dialect, name);
      assert.equal(await db.ping(), true);
    });

    test('migrations apply in order, are recorded, and a second run is a no-op', async () => {
      assert.equal(await migrationsCurrent(db, MIGRATIONS), false);
      const applied = await migrate(db, [...MIGRATIONS].reverse());
      assert.deepEqual(
        applied,
        MIGRATIONS.map((m) => m.version),
      );
      assert.equal(await migrationsCurrent(db, MIGRATIONS), true);
      assert.deepEqual(await migrate(db, MIGRATIONS), []);
      assert.deepEqual(await Promise.all([migrate(db, MIGRATIONS), migrate(db, MIGRATIONS)]), [[], []]);
      const rows = await db.all<{ version: number; name: string; applied_at: number }>(
        'SELECT version, name, applied_at FROM schema_migrations ORDER BY version',
      );
      assert.deepEqual(
        rows.map((r) => r.version),
        MIGRATIONS.map((m) => m.version),
      );
      assert.equal(typeof rows[0]!.version, 'number');
      assert.equal(typeof rows[0]!.applied_at, 'number');
      // every core table exists
      for (const t of ['meta', 'tenants', 'principals', 'credentials', 'signing_keys', 'audit_events']) {
        assert.equal(await count(db, t), 0, t);
      }
    });

    test('upgrade: migration 0012 marks an unsealed audit head; the first start seals it', async () => {
      const log = createAuditLog({
        db,
        clock: fakeClock(1_700_000_000_000),
        macKey: randomBytes(32),
        headKey: randomBytes(32),
      });
      for (let i = 0; i < 3; i++)
        await db.transaction((tx) => log.append(tx, { tenantId: null, operation: 'Old', status: 200 }));
      // As an older version left it: the head unsealed (`seq:hash`), migration 12 not yet applied.
      const last = (await db.get<{ seq: number; hash: string }>(
        'SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1',
      ))!;
      await db.run("UPDATE meta SET value = $1 WHERE key = 'audit_head'", [`${last.seq}:${last.hash}`]);
      await db.run('DELETE FROM schema_migrations WHERE version = 12');
      assert.deepEqual(await migrate(db, MIGRATIONS), [12]);
      assert.equal(
        (await db.get<{ value: string }>("SELECT value FROM meta WHERE key = 'audit_head_seal'"))?.value,
        'pending',
      );
      const unsealed = await log.verify();
      assert.equal(unsealed.ok, false);
      assert.match(unsealed.ok ? '' : unsealed.reason, /not sealed/);
      assert.deepEqual(await log.sealLegacyHead(), { seq: 3, hash: last.hash });
      assert.equal(await db.get("SELECT value FROM meta WHERE key = 'audit_head_seal'"), undefined);
      assert.deepEqual(await log.verify(), { ok: true, count: 3, head: { seq: 3, hash: last.hash } });
      assert.equal(await log.sealLegacyHead(), undefined, 'only once');
      await db.run('DELETE FROM audit_events');
      await db.run("DELETE FROM meta WHERE key = 'audit_head'");
    });

    test('upgrade: migration 0014 rebuilds the audit table; the old chain still verifies', async () => {
      const log = createAuditLog({
        db,
        clock: fakeClock(1_700_000_000_000),
        macKey: randomBytes(32),
        headKey: randomBytes(32),
      });
      // A store as it was before 0014: the audit table in migration 0002's shape, with events in it.
      await db.run('DROP TABLE audit_events');
      for (const stmt of splitStatements(dialectSql(m0002.sql, db.dialect))) await db.run(stmt);
      await db.run('DELETE FROM schema_migrations WHERE version = 14');
      for (let i = 0; i < 3; i++)
        await db.transaction((tx) =>
          log.append(tx, { tenantId: 't1', vault: 'v1', operation: `Old${i}`, status: 200 }),
        );
      await log.record({ tenantId: 't1', operation: 'SecretGet', status: 200 });
      await log.drain();
      const rowsBefore = await db.all('SELECT * FROM audit_events ORDER BY seq');
      const verified = await log.verify();
      assert.equal(verified.ok, true);
      assert.deepEqual(await migrate(db, MIGRATIONS), [14]);
      assert.deepEqual(await db.all('SELECT * FROM audit_events ORDER BY seq'), rowsBefore, 'every row kept');
      assert.deepEqual(await log.verify(), verified, 'the chain verifies as before');
      for (let i = 0; i < 2; i++)
        await db.transaction((tx) => log.append(tx, { tenantId: 't1', operation: 'New', status: 200 }));
      const after = await log.verify();
      assert.equal(after.ok && after.count, 6);
      assert.equal((await log.list({ tenantId: 't1', vault: 'v1' })).length, 3, 'indexes recreated');
      if (db.dialect === 'sqlite') {
        const table = await db.get<{ sql: string }>(
          "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'audit_events'",
        );
        assert.match(table!.sql, /seq INTEGER PRIMARY KEY/, 'seq is the rowid');
        const idx = await db.all<{ name: string; origin: string }>("PRAGMA index_list('audit_events')");
        assert.deepEqual(idx.map((i) => i.name).sort(), [
          'audit_events_caller',
          'audit_events_tenant_time',
          'audit_events_vault',
        ]);
      } else {
        const idx = await db.all<{ indexname: string }>(
          "SELECT indexname FROM pg_indexes WHERE tablename = 'audit_events' AND schemaname = current_schema()",
        );
        assert.deepEqual(idx.map((i) => i.indexname).sort(), [
          'audit_events_caller',
          'audit_events_pkey',
          'audit_events_tenant_time',
          'audit_events_vault',
        ]);
      }
      await db.run('DELETE FROM audit_events');
      await db.run("DELETE FROM meta WHERE key = 'audit_head'");
    });

    test('upgrade: migration 0023 keys role_assignments by (tenant_id, id), keeping the rows', async () => {
      // The table as migration 0003 made it (its own SQL), with an assignment in it.
      await db.run('DROP TABLE role_assignments');
      const from = m0003.sql.indexOf('CREATE TABLE role_assignments');
      const to = m0003.sql.indexOf(';', m0003.sql.indexOf('CREATE UNIQUE INDEX role_assignments_unique'));
      for (const statement of m0003.sql.slice(from, to).split(';')) await db.run(statement);
      await db.run('DELETE FROM schema_migrations WHERE version = 23');
      for (const t of ['t-0023-a', 't-0023-b']) {
        await db.run('INSERT INTO tenants (id, domain, display_name, created_at) VALUES ($1, $2, $3, 1)', [
          t,
          `${t}.example`,
          t,
        ]);
        await db.run(
          "INSERT INTO principals (id, tenant_id, kind, display_name, enabled, created_at, updated_at) VALUES ($1, $2, 'servicePrincipal', 'p', 1, 1, 1)",
          [`p-${t}`, t],
        );
      }
      const row = (tenant: string, role: string) => ['same-name', tenant, `p-${tenant}`, role, '/', 1, null];
      const insert =
        'INSERT INTO role_assignments (id, tenant_id, principal_id, role_id, scope, created_at, created_by) VALUES ($1, $2, $3, $4, $5, $6, $7)';
      await db.run(insert, row('t-0023-a', 'reader'));
      assert.deepEqual(await migrate(db, MIGRATIONS), [23]);
      assert.deepEqual(await db.all('SELECT id, tenant_id, role_id FROM role_assignments'), [
        { id: 'same-name', tenant_id: 't-0023-a', role_id: 'reader' },
      ]);
      await db.run(insert, row('t-0023-b', 'reader')); // the same name in another tenant
      await assert.rejects(db.run(insert, row('t-0023-a', 'owner')), 'the same name in the same tenant');
      await db.run("DELETE FROM tenants WHERE id IN ('t-0023-a', 't-0023-b')");
      assert.deepEqual(await db.all("SELECT id FROM role_assignments WHERE id = 'same-name'"), []);
    });

    test('upgrade: migration 0022 keys used_assertions by (expires_at, jti_hash); a mark from before still refuses its replay', async () => {
      // The table as migration 0001 made it, with a spent assertion in it.
      await db.run('DROP TABLE used_assertions');
      await db.run('CREATE TABLE used_assertions (jti_hash TEXT PRIMARY KEY, expires_at BIGINT NOT NULL)');
      await db.run('CREATE INDEX used_assertions_expiry ON used_assertions (expires_at)');
      await db.run('DELETE FROM schema_migrations WHERE version = 22');
      const at = 1_700_000_300_000;
      await db.run('INSERT INTO used_assertions (jti_hash, expires_at) VALUES ($1, $2)', ['old-hash', at]);
      // Earlier versions stored (exp + 300) × 1000 unrounded: with an exp finer than a ms SQLite kept
      // a REAL (PostgreSQL's BIGINT refused it, so no such row exists there).
      const fractionalExp = 1_700_000_000.0004;
      const storedBefore = (fractionalExp + 300) * 1000; // 1,700,000,300,000.4001
      const sqlite = db.dialect === 'sqlite';
      if (sqlite)
        await db.run('INSERT INTO used_assertions (jti_hash, expires_at) VALUES ($1, $2)', [
          'old-fraction',
          storedBefore,
        ]);
      assert.deepEqual(await migrate(db, MIGRATIONS), [22]);
      assert.deepEqual(await db.all('SELECT expires_at, jti_hash FROM used_assertions ORDER BY expires_at'), [
        { expires_at: at, jti_hash: 'old-hash' },
        ...(sqlite ? [{ expires_at: expiresAtOf(fractionalExp), jti_hash: 'old-fraction' }] : []),
      ]);
      assert.equal(
        await usedAssertionStore.consume(db, 'old-hash', at),
        false,
        'its replay, after the upgrade',
      );
      if (sqlite)
        assert.equal(
          await usedAssertionStore.consume(db, 'old-fraction', expiresAtOf(fractionalExp)),
          false,
          'the replay of an exp with a fraction below a ms, after the upgrade',
        );
      await db.run("DELETE FROM used_assertions WHERE jti_hash = 'old-fraction'");
      assert.equal(await usedAssertionStore.consume(db, 'new-hash', at + 1), true);
      assert.equal(await usedAssertionStore.consume(db, 'new-hash', at + 1), false, 'a replay');
      assert.equal(
        await usedAssertionStore.consume(db, 'new-hash', at + 2),
        true,
        'another exp: another key',
      );
      assert.equal(await usedAssertionStore.prune(db, at + 2), 2, 'the prune is a range of the key');
      assert.deepEqual(await db.all('SELECT expires_at, jti_hash FROM used_assertions'), [
        { expires_at: at + 2, jti_hash: 'new-hash' },
      ]);
      if (db.dialect === 'sqlite') {
        const table = await db.get<{ sql: string }>(
          "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'used_assertions'",
        );
        assert.match(
          table!.sql,
          /PRIMARY KEY \(expires_at, jti_hash\)\s*\) WITHOUT ROWID/,
          'the key is the row',
        );
        const idx = await db.all<{ origin: string }>("PRAGMA index_list('used_assertions')");
        assert.deepEqual(
          idx.map((i) => i.origin),
          ['pk'],
          'no index besides the key',
        );
      } else {
        const idx = await db.all<{ indexname: string; indexdef: string }>(
          "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'used_assertions' AND schemaname = current_schema()",
        );
        assert.deepEqual(
          idx.map((i) => i.indexname),
          ['used_assertions_pkey'],
        );
        assert.match(idx[0]!.indexdef, /\(expires_at, jti_hash\)/);
      }
      await db.run('DELETE FROM used_assertions');
    });

    test('a duplicate migration version is refused before anything runs', async () => {
      await assert.rejects(
        migrate(db, [...MIGRATIONS, { version: 1, name: 'again', sql: 'CREATE TABLE nope (x TEXT)' }]),
        /duplicate migration version 1/,
      );
    });

    test('a failing migration rolls back entirely', async () => {
      const bad: Migration = {
        version: 9002,
        name: 'bad',
        sql: 'CREATE TABLE contract_half (x TEXT);\nINSERT INTO no_such_table VALUES (1);\n',
      };
      await assert.rejects(migrate(db, [...MIGRATIONS, bad]));
      assert.equal(await migrationsCurrent(db, [bad]), false);
      await assert.rejects(db.all('SELECT * FROM contract_half'));
      assert.equal(await migrationsCurrent(db, MIGRATIONS), true);
    });

    test('run, get and all', async () => {
      const r = await db.run(
        'INSERT INTO contract_items (id, name, n, flag, body) VALUES ($1, $2, $3, $4, $5)',
        ['a', 'alpha', 1, 1, '{"k":"v"}'],
      );
      assert.equal(r.changes, 1);
      await db.run('INSERT INTO contract_items (id, name, n) VALUES ($1, $2, $3)', ['b', 'beta', 2]);
      const a = await db.get<{ id: string; name: string; n: number; flag: number; body: string; data: null }>(
        'SELECT * FROM contract_items WHERE id = $1',
        ['a'],
      );
      assert.deepEqual({ ...a }, { id: 'a', name: 'alpha', n: 1, flag: 1, data: null, body: '{"k":"v"}' });
      assert.equal(await db.get('SELECT * FROM contract_items WHERE id = $1', ['zz']), undefined);
      const all = await db.all<{ id: string }>('SELECT id FROM contract_items ORDER BY id');
      assert.deepEqual(
        all.map((x) => x.id),
        ['a', 'b'],
      );
      assert.deepEqual(await db.all('SELECT id FROM contract_items WHERE id = $1', ['zz']), []);
      const u = await db.run('UPDATE contract_items SET flag = $1 WHERE n >= $2', [1, 0]);
      assert.equal(u.changes, 2);
      const none = await db.run('UPDATE contract_items SET flag = 0 WHERE id = $1', ['zz']);
      assert.equal(none.changes, 0);
      const d = await db.run('DELETE FROM contract_items WHERE id IN ($1, $2)', ['a', 'b']);
      assert.equal(d.changes, 2);
    });

    test('placeholders may repeat and appear out of order', async () => {
      await db.run('INSERT INTO contract_items (id, name, n) VALUES ($2, $1, $3)', ['name-1', 'id-1', 5]);
      const row = await db.get<{ id: string; name: string }>(
        'SELECT id, name FROM contract_items WHERE id = $1 OR name = $1',
        ['id-1'],
      );
      assert.deepEqual({ ...row }, { id: 'id-1', name: 'name-1' });
      const both = await db.all<{ id: string }>(
        'SELECT id FROM contract_items WHERE (id = $2 OR name = $2) AND n = $1 AND n = $1',
        [5, 'name-1'],
      );
      assert.equal(both.length, 1);
      await db.run('DELETE FROM contract_items');
    });

    test('BIGINT round-trips as a number (epoch ms, counts, 2^53-1)', async () => {
      const values = [0, 1, -5, 1_700_000_000_123, 4_102_444_800_000, Number.MAX_SAFE_INTEGER];
      for (const [i, n] of values.entries()) {
        await db.run('INSERT INTO contract_items (id, n) VALUES ($1, $2)', [`big-${i}`, n]);
      }
      const rows = await db.all<{ id: string; n: number }>(
        "SELECT id, n FROM contract_items WHERE id LIKE 'big-%' ORDER BY n",
      );
      assert.deepEqual(
        rows.map((r) => r.n),
        [...values].sort((x, y) => x - y),
      );
      for (const r of rows) assert.equal(typeof r.n, 'number');
      const c = await db.get<{ n: number }>('SELECT COUNT(*) AS n FROM contract_items');
      assert.equal(c!.n, values.length);
      assert.equal(typeof c!.n, 'number');
      const found = await db.get<{ id: string }>(
        'SELECT id FROM contract_items WHERE n = $1',
        [1_700_000_000_123],
      );
      assert.equal(found?.id, 'big-3');
      await db.run('DELETE FROM contract_items');
    });

    test('blobs round-trip as Buffer, byte for byte', async () => {
      const blobs = [Buffer.alloc(0), Buffer.from([0, 0, 255, 0]), randomBytes(70_000)];
      for (const [i, b] of blobs.entries()) {
        await db.run('INSERT INTO contract_items (id, data) VALUES ($1, $2)', [`blob-${i}`, b]);
      }
      for (const [i, b] of blobs.entries()) {
        const r = await db.get<{ data: Buffer }>('SELECT data FROM contract_items WHERE id = $1', [
          `blob-${i}`,
        ]);
        assert.ok(Buffer.isBuffer(r!.data), `blob-${i} is a Buffer`);
        assert.ok(b.equals(r!.data), `blob-${i} equal`);
      }
      const byBlob = await db.get<{ id: string }>('SELECT id FROM contract_items WHERE data = $1', [
        blobs[1]!,
      ]);
      assert.equal(byBlob?.id, 'blob-1');
      await db.run('DELETE FROM contract_items');
    });

    test('RETURNING works through get, all and run', async () => {
      const row = await db.get<{ id: string; n: number }>(
        'INSERT INTO contract_items (id, n) VALUES ($1, $2) RETURNING id, n',
        ['ret-1', 7],
      );
      assert.deepEqual({ ...row }, { id: 'ret-1', n: 7 });
      await db.run('INSERT INTO contract_items (id, n) VALUES ($1, $2)', ['ret-2', 8]);
      const rows = await db.all<{ id: string }>(
        'UPDATE contract_items SET flag = 1 WHERE id LIKE $1 RETURNING id',
        ['ret-%'],
      );
      assert.deepEqual(rows.map((r) => r.id).sort(), ['ret-1', 'ret-2']);
      const r = await db.run('DELETE FROM contract_items WHERE id LIKE $1 RETURNING id', ['ret-%']);
      assert.equal(r.changes, 2);
      const s1 = await db.get<{ seq: number }>('INSERT INTO contract_seq (label) VALUES ($1) RETURNING seq', [
        'x',
      ]);
      const s2 = await db.get<{ seq: number }>('INSERT INTO contract_seq (label) VALUES ($1) RETURNING seq', [
        'y',
      ]);
      assert.equal(typeof s1!.seq, 'number');
      assert.equal(s2!.seq, s1!.seq + 1);
    });

    test('a unique conflict is a Conflict (409) and changes nothing', async () => {
      await db.run('INSERT INTO contract_items (id, name) VALUES ($1, $2)', ['dup', 'first']);
      const conflict = await db
        .run('INSERT INTO contract_items (id, name) VALUES ($1, $2)', ['dup', 'second'])
        .then(
          () => assert.fail('the duplicate was accepted'),
          (e: unknown) => e,
        );
      assert.ok(conflict instanceof LatchkeyError, `a driver error leaked: ${String(conflict)}`);
      assert.equal(conflict.code, 'Conflict');
      assert.equal(conflict.status, 409);
      assert.equal(isConcurrentWriteConflict(conflict), true);
      const row = await db.get<{ name: string }>('SELECT name FROM contract_items WHERE id = $1', ['dup']);
      assert.equal(row!.name, 'first');
      // inside a transaction the conflict rolls the whole transaction back, and the connection stays usable
      await assert.rejects(
        db.transaction(async (tx) => {
          await tx.run('INSERT INTO contract_items (id, name) VALUES ($1, $2)', ['dup-2', 'x']);
          await tx.run('INSERT INTO contract_items (id, name) VALUES ($1, $2)', ['dup', 'y']);
        }),
      );
      assert.equal(await db.get('SELECT id FROM contract_items WHERE id = $1', ['dup-2']), undefined);
      assert.equal(await count(db), 1);
      await db.run('DELETE FROM contract_items');
    });

    test('ON CONFLICT DO NOTHING reports changes 0; DO UPDATE changes the row', async () => {
      const sql = 'INSERT INTO contract_items (id, name) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING';
      assert.equal((await db.run(sql, ['oc', 'one'])).changes, 1);
      assert.equal((await db.run(sql, ['oc', 'two'])).changes, 0);
      assert.equal(
        (await db.get<{ name: string }>('SELECT name FROM contract_items WHERE id = $1', ['oc']))!.name,
        'one',
      );
      const up = await db.run(
        'INSERT INTO contract_items (id, name) VALUES ($1, $2) ON CONFLICT (id) DO UPDATE SET name = excluded.name',
        ['oc', 'three'],
      );
      assert.equal(up.changes, 1);
      assert.equal(
        (await db.get<{ name: string }>('SELECT name FROM contract_items WHERE id = $1', ['oc']))!.name,
        'three',
      );
      await db.run('DELETE FROM contract_items');
    });

    test('a write refused for a full store is StorageFull (503, Retry-After), marks the store unwritable, leaves nothing; the next commit clears it', async () => {
      assert.equal(db.writable, true);
      const full = await refuseForFullStore(db).then(
        () => assert.fail('the write was accepted'),
        (e: unknown) => e,
      );
      assert.ok(full instanceof LatchkeyError, `a driver error leaked: ${String(full)}`);
      assert.equal(full.code, 'StorageFull');
      assert.equal(full.status, 503);
      assert.equal(full.headers['retry-after'], '30');
      assert.equal(db.writable, false);
      // nothing of the refused transaction is there
      assert.equal(await db.get('SELECT id FROM contract_items WHERE id = $1', ['full-1']), undefined);
      // a read neither fails nor clears the mark; a transaction that only reads does not either
      await db.transaction((tx) => tx.get('SELECT 1 AS one'));
      assert.equal(db.writable, false);
      // space is back: the probe commits (and leaves no row behind), the mark is cleared
      await makeRoom(db);
      assert.equal(await db.probeWrite(), true);
      assert.equal(db.writable, true);
      assert.equal(await db.get("SELECT key FROM meta WHERE key = 'write_probe'"), undefined);
      // a refused autocommit write marks it too; a committed write clears it
      await assert.rejects(
        refuseForFullStore(db, false),
        (e: unknown) => (e as LatchkeyError).code === 'StorageFull',
      );
      assert.equal(db.writable, false);
      await makeRoom(db);
      await db.run('INSERT INTO contract_items (id, name) VALUES ($1, $2)', ['after-full', 'x']);
      assert.equal(db.writable, true);
      await db.run('DELETE FROM contract_items');
    });

    test('a lock held past the wait is ServiceUnavailable (503, Retry-After: 1), not a 500', async () => {
      const other = store.open();
      let release!: () => void;
      const held = new Promise<void>((r) => {
        release = r;
      });
      let holding!: () => void;
      const locked = new Promise<void>((r) => {
        holding = r;
      });
      const holder = other.transaction(async (tx) => {
        await tx.run('INSERT INTO contract_counter (id, value) VALUES ($1, 1)', ['busy']);
        holding();
        await held;
      });
      try {
        await locked;
        const busy = await (db.dialect === 'sqlite'
          ? // SQLite: another connection holds the write lock and this one does not wait (busy_timeout 0)
            db
              .get('PRAGMA busy_timeout = 0')
              .then(() => db.run('INSERT INTO contract_items (id) VALUES ($1)', ['busy']))
          : // PostgreSQL: the same key as the other's uncommitted insert waits on it: 55P03 after lock_timeout
            db.transaction(async (tx) => {
              await tx.run("SET LOCAL lock_timeout = '10ms'");
              await tx.run('INSERT INTO contract_counter (id, value) VALUES ($1, 2)', ['busy']);
            })
        ).then(
          () => assert.fail('the write went through a held lock'),
          (e: unknown) => e,
        );
        assert.ok(busy instanceof LatchkeyError, `a driver error leaked: ${String(busy)}`);
        assert.equal(busy.code, 'ServiceUnavailable');
        assert.equal(busy.headers['retry-after'], '1');
        assert.equal(db.writable, true, 'a busy store is not a full one');
      } finally {
        release();
        await holder;
        await other.close();
        if (db.dialect === 'sqlite') await db.get('PRAGMA busy_timeout = 5000');
      }
      await db.run('DELETE FROM contract_counter');
    });

    test('text holding NUL (U+0000) is refused alike before the statement: 400 BadParameter, nothing written; an audit record keeps it as U+FFFD and its batch', async () => {
      // PostgreSQL cannot store NUL in text (22021): a secret's contentType or a token request's
      // username holding one reached the client as a 500 there, while SQLite stored it.
      for (const write of [
        () => db.run('INSERT INTO contract_items (id, name) VALUES ($1, $2)', ['nul-1', 'a\u0000b']),
        () => db.transaction((tx) => tx.run('INSERT INTO contract_items (id) VALUES ($1)', ['nul\u0000'])),
        () => db.get('SELECT id FROM contract_items WHERE name = $1', ['\u0000']),
      ]) {
        const e = await write().then(
          () => assert.fail('NUL text reached the store'),
          (x: unknown) => x,
        );
        assert.ok(e instanceof LatchkeyError, `a domain error, not ${String(e)}`);
        assert.equal(e.code, 'BadParameter');
        assert.equal(e.status, 400);
      }
      assert.equal(await count(db), 0, 'nothing written');
      // Bytes go in as Buffers, untouched.
      await db.run('INSERT INTO contract_items (id, data) VALUES ($1, $2)', [
        'nul-bytes',
        Buffer.from([0, 1, 0]),
      ]);
      const row = await db.get<{ data: Buffer }>('SELECT data FROM contract_items WHERE id = $1', [
        'nul-bytes',
      ]);
      assert.deepEqual([...row!.data], [0, 1, 0]);
      await db.run('DELETE FROM contract_items');
      // A refused name from a path lands in the audit log: the record is kept (NUL as U+FFFD), and
      // so are the other records of its batch.
      const log = createAuditLog({
        db,
        clock: fakeClock(1_700_000_000_000),
        macKey: randomBytes(32),
        headKey: randomBytes(32),
      });
      await Promise.all([
        log.record({ tenantId: null, operation: 'NulCheck', target: '/secrets/a\u0000b', status: 400 }),
        log.record({ tenantId: null, operation: 'NulCheck', target: '/secrets/ok', status: 200 }),
      ]);
      const targets = await db.all<{ target: string }>(
        "SELECT target FROM audit_events WHERE operation = 'NulCheck' ORDER BY target",
      );
      assert.deepEqual(
        targets.map((t) => t.target),
        ['/secrets/a\uFFFDb', '/secrets/ok'],
      );
    });

    test('a transaction commits when its function resolves', async () => {
      const result = await db.transaction(async (tx) => {
        await tx.run('INSERT INTO contract_items (id) VALUES ($1)', ['tx-1']);
        await tx.run('INSERT INTO contract_items (id) VALUES ($1)', ['tx-2']);
        const inside = await tx.get<{ n: number }>('SELECT COUNT(*) AS n FROM contract_items');
        return inside!.n;
      });
      assert.equal(result, 2);
      assert.equal(await count(db), 2);
      await db.run('DELETE FROM contract_items');
    });

    test('a transaction rolls back everything when its function throws, and rethrows', async () => {
      const boom = new Error('boom');
      await assert.rejects(
        db.transaction(async (tx) => {
          await tx.run('INSERT INTO contract_items (id) VALUES ($1)', ['rb-1']);
          await tx.run('UPDATE contract_items SET name = $1', ['changed']);
          throw boom;
        }),
        (e) => e === boom,
      );
      assert.equal(await count(db), 0);
      // the adapter is healthy afterwards
      await db.transaction((tx) => tx.run('INSERT INTO contract_items (id) VALUES ($1)', ['rb-2']));
      assert.equal(await count(db), 1);
      await db.run('DELETE FROM contract_items');
    });

    test('a relaxed transaction commits and rolls back like any other', async () => {
      await db.transaction((tx) => tx.run('INSERT INTO contract_items (id) VALUES ($1)', ['relaxed']), {
        relaxed: true,
      });
      assert.equal(await count(db), 1);
      await assert.rejects(
        db.transaction(
          async (tx) => {
            await tx.run('INSERT INTO contract_items (id) VALUES ($1)', ['relaxed-2']);
            throw new Error('undo relaxed');
          },
          { relaxed: true },
        ),
        /undo relaxed/,
      );
      assert.equal(await count(db), 1);
      // the next ordinary transaction is unaffected
      await db.transaction((tx) => tx.run('INSERT INTO contract_items (id) VALUES ($1)', ['durable']));
      assert.equal(await count(db), 2);
      await db.run('DELETE FROM contract_items');
    });

    test('db.* inside a transaction uses it: sees its writes and rolls back with it', async () => {
      await assert.rejects(
        db.transaction(async (tx) => {
          await tx.run('INSERT INTO contract_items (id) VALUES ($1)', ['via-tx']);
          await db.run('INSERT INTO contract_items (id) VALUES ($1)', ['via-db']);
          const n = (await db.get<{ n: number }>('SELECT COUNT(*) AS n FROM contract_items'))!.n;
          assert.equal(n, 2);
          throw new Error('undo');
        }),
        /undo/,
      );
      assert.equal(await count(db), 0);
    });

    test('a nested transaction joins the open one (sees its writes, rolls back with it)', async () => {
      await assert.rejects(
        db.transaction(async (tx) => {
          await tx.run('INSERT INTO contract_items (id) VALUES ($1)', ['outer']);
          const seen = await db.transaction(async (inner) => {
            await inner.run('INSERT INTO contract_items (id) VALUES ($1)', ['inner']);
            return (await inner.get<{ n: number }>('SELECT COUNT(*) AS n FROM contract_items'))!.n;
          });
          assert.equal(seen, 2);
          // db.* called inside the transaction's async context does not deadlock
          throw new Error('undo both');
        }),
        /undo both/,
      );
      assert.equal(await count(db), 0);
      await db.transaction(async () => {
        await db.transaction(async (inner) => {
          await inner.run('INSERT INTO contract_items (id) VALUES ($1)', ['kept']);
        });
      });
      assert.equal(await count(db), 1);
      await db.run('DELETE FROM contract_items');
    });

    test('savepoints roll back their writes, notes and beforeCommit hooks; hooks run once, last, inside the transaction', async () => {
      const ran: string[] = [];
      const ids = async (q: Pick<Database, 'all'>) =>
        (await q.all<{ id: string }>('SELECT id FROM contract_items ORDER BY id')).map((r) => r.id);
      await db.transaction(async (tx) => {
        tx.notes.set('k', 'outer');
        const kept = await tx.savepoint(async () => {
          await tx.run('INSERT INTO contract_items (id) VALUES ($1)', ['a-kept']);
          tx.notes.set('k', 'kept');
          tx.beforeCommit('hook-kept', async () => {
            ran.push(`kept sees ${(await ids(tx)).join(',')} and note ${String(tx.notes.get('k'))}`);
          });
          return 7;
        });
        assert.deepEqual(kept, { ok: true, value: 7 });
        const failed = await tx.savepoint(async () => {
          await tx.run('INSERT INTO contract_items (id) VALUES ($1)', ['b-rolled-back']);
          tx.notes.set('k', 'rolled back');
          tx.notes.set('other', 1);
          tx.beforeCommit('hook-rolled-back', async () => {
            ran.push('rolled back');
          });
          throw new Error('no');
        });
        assert.equal(failed.ok, false);
        assert.match(String(!failed.ok && failed.error), /no/);
        assert.equal(tx.notes.get('k'), 'kept', 'the note as it was before the failed savepoint');
        assert.equal(tx.notes.get('other'), undefined);
        // A second registration under the same key is ignored.
        tx.beforeCommit('hook-kept', async () => {
          ran.push('second registration');
        });
        await tx.run('INSERT INTO contract_items (id) VALUES ($1)', ['c-after']);
        assert.deepEqual(ran, [], 'hooks wait for the commit');
      });
      assert.deepEqual(ran, ['kept sees a-kept,c-after and note kept']);
      assert.deepEqual(await ids(db), ['a-kept', 'c-after']);
      // A hook that throws rolls the whole transaction back.
      await assert.rejects(
        db.transaction(async (tx) => {
          await tx.run('INSERT INTO contract_items (id) VALUES ($1)', ['d-never']);
          tx.beforeCommit('fails', async () => {
            throw new Error('hook failed');
          });
        }),
        /hook failed/,
      );
      assert.deepEqual(await ids(db), ['a-kept', 'c-after']);
      // Notes and hooks belong to one transaction: the next one starts with none.
      await db.transaction(async (tx) => {
        assert.equal(tx.notes.get('k'), undefined);
      });
      await db.run('DELETE FROM contract_items');
    });

    test("code still running in an ended transaction's async context is outside any transaction", async () => {
      let release!: () => void;
      const gate = new Promise<void>((r) => {
        release = r;
      });
      let later: Promise<number> | undefined;
      await db.transaction(async (tx) => {
        await tx.run('INSERT INTO contract_items (id) VALUES ($1)', ['in-tx']);
        // A promise nobody awaits, still running when the transaction has ended.
        later = gate.then(async () => {
          assert.equal(db.current(), undefined, 'not taken for the ended transaction');
          await db.transaction(async (t2) => {
            await t2.run('INSERT INTO contract_items (id) VALUES ($1)', ['own-tx']);
          });
          return count(db);
        });
      });
      release();
      assert.equal(await later, 2);
      assert.equal(await count(db), 2);
      await db.run('DELETE FROM contract_items');
    });

    test('no dirty reads: a query outside an open transaction never sees its uncommitted writes', async () => {
      let entered!: () => void;
      const inside = new Promise<void>((r) => {
        entered = r;
      });
      let release!: () => void;
      const gate = new Promise<void>((r) => {
        release = r;
      });
      const txDone = db.transaction(async (tx) => {
        await tx.run('INSERT INTO contract_items (id) VALUES ($1)', ['dirty']);
        entered();
        await gate;
        throw new Error('rolled back');
      });
      await inside;
      const read = db.get('SELECT id FROM contract_items WHERE id = $1', ['dirty']);
      await sleep(20);
      release();
      await assert.rejects(txDone, /rolled back/);
      assert.equal(await read, undefined);
      assert.equal(await count(db), 0);
    });

    test('concurrent transactions do not interleave (read-modify-write under lock)', async () => {
      await db.run('INSERT INTO contract_counter (id, value) VALUES ($1, 0)', ['c']);
      const N = 12;
      await Promise.all(
        Array.from({ length: N }, () =>
          db.transaction(async (tx) => {
            await tx.lock('contract:counter');
            const r = await tx.get<{ value: number }>('SELECT value FROM contract_counter WHERE id = $1', [
              'c',
            ]);
            await sleep(2);
            await tx.run('UPDATE contract_counter SET value = $1 WHERE id = $2', [r!.value + 1, 'c']);
          }),
        ),
      );
      const v = await db.get<{ value: number }>('SELECT value FROM contract_counter WHERE id = $1', ['c']);
      assert.equal(v!.value, N);
    });

    test('lock(): a second holder of the same lock waits until the first transaction ends', async () => {
      const events: string[] = [];
      let releaseA!: () => void;
      const gateA = new Promise<void>((r) => {
        releaseA = r;
      });
      let aLocked!: () => void;
      const aHasLock = new Promise<void>((r) => {
        aLocked = r;
      });
      const a = db.transaction(async (tx) => {
        await tx.lock('contract:lock');
        events.push('A locked');
        aLocked();
        await gateA;
        events.push('A done');
      });
      await aHasLock;
      const b = db.transaction(async (tx) => {
        await tx.lock('contract:lock');
        events.push('B locked');
      });
      await sleep(30);
      assert.deepEqual(events, ['A locked']);
      releaseA();
      await Promise.all([a, b]);
      assert.deepEqual(events, ['A locked', 'A done', 'B locked']);
    });

    test('after close, ping is false', async () => {
      const other = store.open();
      assert.equal(await other.ping(), true);
      await other.close();
      assert.equal(await other.ping(), false);
    });
  });
}

/**
 * Makes the store refuse a write for lack of space, for real. SQLite: `max_page_count` caps the
 * database at its current size, free pages vacuumed away (the driver answers SQLITE_FULL, "database or disk is full"), then
 * a 64 KiB row needs pages it may not have. PostgreSQL: filling a real disk is impractical in a
 * test, so the server raises its own `disk_full` (SQLSTATE 53100) error — the same error object
 * the driver hands over when a relation cannot be extended.
 */
async function refuseForFullStore(db: Database, inTransaction = true): Promise<void> {
  if (db.dialect === 'sqlite') {
    await db.run('VACUUM'); // no free pages left for the write to reuse
    const { page_count } = (await db.get<{ page_count: number }>('PRAGMA page_count'))!;
    await db.get(`PRAGMA max_page_count = ${page_count}`);
  }
  const big = randomBytes(32 * 1024).toString('hex');
  const write = async (q: Pick<Database, 'run'>) => {
    if (inTransaction) await q.run('INSERT INTO contract_items (id, name) VALUES ($1, $2)', ['full-1', 'x']);
    if (db.dialect === 'sqlite')
      await q.run('INSERT INTO contract_items (id, body) VALUES ($1, $2)', ['full-2', big]);
    else
      await q.run(
        "DO $$ BEGIN RAISE EXCEPTION 'could not extend file: No space left on device' USING ERRCODE = 'disk_full'; END $$",
      );
  };
  if (inTransaction) await db.transaction((tx) => write(tx));
  else await write(db);
}

/** Space is back (SQLite: lift the page cap; PostgreSQL: nothing was really full). */
async function makeRoom(db: Database): Promise<void> {
  if (db.dialect === 'sqlite') await db.get('PRAGMA max_page_count = 1073741823');
}

contract('sqlite', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'latchkey-storage-'));
  return {
    open: () => openSqlite(join(dir, 'contract.db')),
    async cleanup() {
      rmSync(dir, { recursive: true, force: true });
    },
  };
});

contract('postgres', async () => {
  // No skip: when PostgreSQL is unreachable this throws and every PostgreSQL test fails.
  const schema = await createTestSchema();
  return {
    open: () => openPostgres(schema.url, { max: 8 }),
    cleanup: () => schema.drop(),
  };
});

describe('storage: PostgreSQL specifics', () => {
  let schema: TestSchema;
  const dbs: Database[] = [];
  before(async () => {
    schema = await createTestSchema();
  });
  after(async () => {
    for (const d of dbs) await d.close().catch(() => {});
    await schema?.drop();
  });
  const open = () => {
    const d = openPostgres(schema.url, { max: 4 });
    dbs.push(d);
    return d;
  };

  test('the test schema isolates the run (search_path)', async () => {
    const db = open();
    const r = await db.get<{ s: string }>('SELECT current_schema() AS s');
    assert.equal(r!.s, schema.schema);
  });

  test('two nodes migrating at once both succeed and apply each migration once', async () => {
    const [n1, n2, n3] = [open(), open(), open()];
    const results = await Promise.all([
      migrate(n1, MIGRATIONS),
      migrate(n2, MIGRATIONS),
      migrate(n3, MIGRATIONS),
    ]);
    const applied = results.flat().sort((a, b) => a - b);
    assert.deepEqual(
      applied,
      MIGRATIONS.map((m) => m.version),
    );
    const rows = await n1.all<{ version: number }>('SELECT version FROM schema_migrations');
    assert.equal(rows.length, MIGRATIONS.length);
    assert.equal(await migrationsCurrent(n2, MIGRATIONS), true);
  });

  test('openDatabase(postgres://…) migrates and is idempotent', async () => {
    const a = await openDatabase(schema.url);
    dbs.push(a);
    const b = await openDatabase(schema.url);
    dbs.push(b);
    assert.equal(await migrationsCurrent(b, ALL_MIGRATIONS), true);
  });

  test('different lock names do not block each other', async () => {
    const db = open();
    let release!: () => void;
    const gate = new Promise<void>((r) => {
      release = r;
    });
    const order: string[] = [];
    const a = db.transaction(async (tx) => {
      await tx.lock('contract:x');
      await gate;
      order.push('x');
    });
    await sleep(10);
    await db.transaction(async (tx) => {
      await tx.lock('contract:y');
      order.push('y');
    });
    release();
    await a;
    assert.deepEqual(order, ['y', 'x']);
  });

  test('statements with parameters are prepared once per connection (named), and survive a column added by another node', async () => {
    const db = open();
    await db.run('CREATE TABLE named_t (id TEXT PRIMARY KEY, a TEXT)');
    await db.run('INSERT INTO named_t (id, a) VALUES ($1, $2)', ['k', 'x']);
    // Every pooled connection has prepared the statement after a few concurrent rounds.
    for (let i = 0; i < 5; i++)
      await Promise.all([1, 2, 3, 4].map(() => db.get('SELECT * FROM named_t WHERE id = $1', ['k'])));
    const prepared = await db.get<{ n: number }>(
      "SELECT COUNT(*)::int AS n FROM pg_prepared_statements WHERE statement = 'SELECT * FROM named_t WHERE id = $1'",
    );
    assert.equal(prepared?.n, 1, 'this session holds it as a named statement');
    // A rolling upgrade: another node adds a column; a prepared SELECT * would fail with
    // "cached plan must not change result type". It is prepared again and answers.
    const other = open();
    await other.run('ALTER TABLE named_t ADD COLUMN b TEXT');
    for (let i = 0; i < 2; i++) {
      const rows = await Promise.all(
        [1, 2, 3, 4].map(() => db.get<Record<string, unknown>>('SELECT * FROM named_t WHERE id = $1', ['k'])),
      );
      for (const r of rows) assert.deepEqual(r, { id: 'k', a: 'x', b: null });
    }
  });

  test('a lock waited on while the server ends the session (a shutdown: 57P01): 503 ServiceUnavailable, not the driver error', async () => {
    // issue 17: during a restart, writes queued on the audit lock got 57P01 from tx.lock, which
    // bypassed the adapter's error mapping and reached the HTTP edge as a 500.
    const db = open();
    const other = open();
    let release!: () => void;
    const gate = new Promise<void>((r) => {
      release = r;
    });
    let holderPid!: number;
    let held!: () => void;
    const isHeld = new Promise<void>((r) => {
      held = r;
    });
    const holder = other.transaction(async (tx) => {
      holderPid = (await tx.get<{ pid: number }>('SELECT pg_backend_pid() AS pid'))!.pid;
      await tx.lock('contract:held');
      held();
      await gate;
    });
    try {
      await Promise.race([isHeld, holder]);
      const waiting = db
        .transaction(async (tx) => {
          await tx.lock('contract:held');
        })
        .then(
          () => undefined,
          (e: unknown) => e,
        );
      // The session blocked behind the holder; ended the way a fast shutdown ends every session.
      let waiter: number | undefined;
      for (let i = 0; waiter === undefined && i < 1_000; i++) {
        const r = await other.get<{ pid: number }>(
          'SELECT pid FROM pg_stat_activity WHERE $1 = ANY(pg_blocking_pids(pid))',
          [holderPid],
        );
        waiter = r?.pid;
      }
      assert.ok(waiter !== undefined, 'the second transaction waits for the lock');
      await other.get('SELECT pg_terminate_backend($1)', [waiter]);
      const failure = await waiting;
      assert.ok(failure instanceof LatchkeyError, `a domain error, not ${String(failure)}`);
      assert.equal(failure.code, 'ServiceUnavailable');
      assert.equal(failure.headers['retry-after'], '1');
      // The broken connection left the pool: the next transaction works.
      assert.equal(await db.transaction(async (tx) => (await tx.get<{ n: number }>('SELECT 1 AS n'))!.n), 1);
    } finally {
      release();
      await holder;
    }
  });

  test('a transaction PostgreSQL aborted along the way (a failure caught and gone on from): 503 ServiceUnavailable with Retry-After, nothing written', async () => {
    // COMMIT of such a transaction is answered with ROLLBACK, and any later statement with 25P02;
    // both reached the HTTP edge as a plain Error (a 500) before.
    const db = open();
    await db.run('CREATE TABLE IF NOT EXISTS rb_items (id TEXT PRIMARY KEY)');
    await db.run("INSERT INTO rb_items (id) VALUES ('taken')");
    const outcome = (fn: (tx: Transaction) => Promise<unknown>) =>
      db.transaction(fn).then(
        () => assert.fail('the aborted transaction was acknowledged'),
        (e: unknown) => e,
      );
    const insert = (tx: Transaction, id: string) => tx.run('INSERT INTO rb_items (id) VALUES ($1)', [id]);
    for (const [what, fn] of [
      [
        'COMMIT answered with ROLLBACK',
        async (tx: Transaction) => {
          await insert(tx, 'kept-1');
          await insert(tx, 'taken').catch(() => {}); // a unique violation, caught
        },
      ],
      [
        'a statement after the failure (25P02)',
        async (tx: Transaction) => {
          await insert(tx, 'kept-2');
          await insert(tx, 'taken').catch(() => {});
          await insert(tx, 'kept-3');
        },
      ],
    ] as const) {
      const e = await outcome(fn);
      assert.ok(e instanceof LatchkeyError, `${what}: a domain error, not ${String(e)}`);
      assert.equal(e.code, 'ServiceUnavailable', what);
      assert.equal(e.status, 503, what);
      assert.equal(e.headers['retry-after'], '1', what);
    }
    const e = await outcome(async (tx) => {
      await insert(tx, 'kept-4');
      await insert(tx, 'taken').catch(() => {});
    });
    assert.equal(
      ((e as Error).cause as { code?: string } | undefined)?.code,
      '23505',
      "the cause is the failed statement's own error",
    );
    assert.deepEqual(
      await db.all<{ id: string }>('SELECT id FROM rb_items ORDER BY id'),
      [{ id: 'taken' }],
      'nothing of the aborted transactions was written',
    );
    assert.equal(db.writable, true, 'an aborted transaction is not a full store');
  });

  test('a lock is released when its transaction rolls back', async () => {
    const db = open();
    await assert.rejects(
      db.transaction(async (tx) => {
        await tx.lock('contract:rb');
        throw new Error('fail');
      }),
    );
    const t0 = Date.now();
    await db.transaction((tx) => tx.lock('contract:rb'));
    assert.ok(Date.now() - t0 < 2_000, 'Date.now() - t0 < 2_000');
  });
});

describe('storage: SQLite specifics', () => {
  test('openDatabase(sqlite:…) migrates, reopens idempotently, and uses WAL', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'latchkey-storage-'));
    try {
      const url = `sqlite:${join(dir, 'nested', 'x.db')}`;
      const a = await openDatabase(url);
      const mode = await a.get<{ journal_mode: string }>('PRAGMA journal_mode');
      assert.equal(mode!.journal_mode, 'wal');
      await a.run("INSERT INTO meta (key, value) VALUES ('k', 'v')");
      await a.close();
      const b = await openDatabase(url);
      assert.equal(await migrationsCurrent(b, ALL_MIGRATIONS), true);
      assert.equal((await b.get<{ value: string }>("SELECT value FROM meta WHERE key = 'k'"))!.value, 'v');
      await b.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('a new store is private: directory 0700, database, -wal and -shm 0600, whatever the umask', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'latchkey-storage-'));
    const umask = process.umask(0o022);
    try {
      const path = join(dir, 'store', 'latchkey.db');
      const db = await openDatabase(`sqlite:${path}`);
      await db.run("INSERT INTO meta (key, value) VALUES ('k', 'v')");
      const mode = (p: string) => statSync(p).mode & 0o777;
      assert.equal(mode(join(dir, 'store')), 0o700);
      for (const p of [path, `${path}-wal`, `${path}-shm`]) assert.equal(mode(p), 0o600, p);
      assert.deepEqual(sqliteStoreProblems(path), []);
      await db.close();
    } finally {
      process.umask(umask);
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('sqliteStoreProblems names a database, -wal or -shm open to others and a directory others write', () => {
    const dir = mkdtempSync(join(tmpdir(), 'latchkey-storage-'));
    try {
      const path = join(dir, 'latchkey.db');
      assert.deepEqual(sqliteStoreProblems(path), [], 'nothing yet: it will be created private');
      writeFileSync(path, '', { mode: 0o600 });
      writeFileSync(`${path}-wal`, '', { mode: 0o600 });
      chmodSync(path, 0o644);
      chmodSync(`${path}-wal`, 0o640);
      chmodSync(dir, 0o777);
      assert.deepEqual(sqliteStoreProblems(path), [
        `the storage directory ${dir} must not be writable by group or others (chmod 700)`,
        `${path} must not be readable by group or others (chmod 600)`,
        `${path}-wal must not be readable by group or others (chmod 600)`,
      ]);
      chmodSync(dir, 0o755);
      chmodSync(path, 0o600);
      chmodSync(`${path}-wal`, 0o600);
      assert.deepEqual(sqliteStoreProblems(path), []);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('openDatabase refuses an unknown URL scheme', async () => {
    await assert.rejects(openDatabase('mysql://x'), /sqlite: or postgres:\/\//);
  });

  test('close waits for an open transaction to finish', async () => {
    const db = openSqlite(':memory:');
    await db.run('CREATE TABLE t (x INTEGER)');
    let release!: () => void;
    const gate = new Promise<void>((r) => {
      release = r;
    });
    const tx = db.transaction(async (t) => {
      await t.run('INSERT INTO t (x) VALUES (1)');
      await gate;
    });
    const closing = db.close();
    await sleep(10);
    release();
    await tx;
    await closing;
    assert.equal(await db.ping(), false);
  });
});
