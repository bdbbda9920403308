import assert from 'node:assert/strict';
import { createHmac, randomBytes } from 'node:crypto';
import { after, afterEach, before, beforeEach, describe, test } from 'node:test';
import { type AuditLog, createAuditLog, type VerifyResult } from '../src/audit/log.js';
import { rootKeyFromBytes } from '../src/crypto/root-key.js';
import { LatchkeyError } from '../src/errors/index.js';
import { fakeClock } from '../src/lib/clock.js';
import { createGroupCommit } from '../src/storage/group-commit.js';
import { openDatabase } from '../src/storage/open.js';
import type { Database, Transaction } from '../src/storage/port.js';
import { assignRole, createVault, servicePrincipal, type TestPrincipal } from './helpers/access.js';
import { startTestApp, type TestServer } from './helpers/server.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('audit API', () => {
  let s: TestServer;
  let admin: Record<string, string>;
  let adminOid: string;
  const otherApp = '11111111-2222-3333-4444-555555555555';

  before(async () => {
    s = await startTestApp();
    admin = { authorization: `Bearer ${await s.adminToken()}` };
    adminOid = (await s.request('GET', '/api/account', { headers: admin })).json.objectId;
  });
  after(async () => {
    await s?.stop();
  });

  const list = async (query: string, headers = admin) => {
    const r = await s.request('GET', `/api/audit?${query}`, { headers });
    assert.equal(r.status, 200, r.text);
    return r.json as {
      value: { seq: number; operation: string; [k: string]: unknown }[];
      nextLink: string | null;
    };
  };

  test('filters by operation, vault, caller, provisioning key and time; newest first; tenant-scoped', async () => {
    const tenantId = s.info.tenantId;
    const base = { tenantId, status: 200 };
    await Promise.all(
      Array.from({ length: 4 }, (_, i) =>
        s.services.audit.record({
          ...base,
          operation: 'TestOpA',
          vault: 'va',
          callerOid: adminOid,
          target: `a${i}`,
        }),
      ),
    );
    await sleep(15);
    const middle = Date.now();
    await sleep(15);
    await Promise.all(
      Array.from({ length: 3 }, (_, i) =>
        s.services.audit.record({
          ...base,
          operation: 'TestOpA',
          vault: 'va',
          callerOid: adminOid,
          target: `b${i}`,
        }),
      ),
    );
    await Promise.all(
      Array.from({ length: 3 }, (_, i) =>
        s.services.audit.record({
          ...base,
          operation: 'TestOpB',
          vault: 'vb',
          callerAppId: otherApp,
          provisioningKeyId: 'pk-test-1',
          target: `c${i}`,
        }),
      ),
    );
    // Another tenant's events never show.
    const other = await s.services.tenants.create({ displayName: 'Other', domain: 'other-audit.example' });
    await s.services.audit.record({ tenantId: other.id, operation: 'TestOpA', vault: 'va', status: 200 });

    const a = await list('operation=TestOpA');
    assert.equal(a.value.length, 7);
    assert.ok(
      a.value.every((e) => e.operation === 'TestOpA' && e.vault === 'va'),
      "a.value.every((e) => e.operation === 'TestOpA' && e.vault === 'va')",
    );
    const seqs = a.value.map((e) => e.seq);
    assert.deepEqual(
      seqs,
      [...seqs].sort((x, y) => y - x),
      'newest first',
    );
    assert.equal(a.nextLink, null);

    assert.deepEqual(
      (await list('vault=VB')).value.map((e) => e.target),
      ['c2', 'c1', 'c0'],
    );
    assert.equal((await list(`caller=${otherApp}`)).value.length, 3);
    assert.equal((await list('provisioningKey=pk-test-1')).value.length, 3);
    const byName = await list(`caller=${encodeURIComponent(s.admin.userName)}&operation=TestOpA`);
    assert.equal(byName.value.length, 7, 'a user name resolves to the object id');
    assert.ok(
      byName.value.every((e) => e.callerOid === adminOid),
      'byName.value.every((e) => e.callerOid === adminOid)',
    );

    const newer = await list(`operation=TestOpA&from=${new Date(middle).toISOString()}`);
    assert.deepEqual(newer.value.map((e) => e.target).sort(), ['b0', 'b1', 'b2']);
    const older = await list(`operation=TestOpA&to=${middle}`);
    assert.deepEqual(older.value.map((e) => e.target).sort(), ['a0', 'a1', 'a2', 'a3']);
    const first = a.value[0]!;
    assert.match(String(first.time), /^\d{4}-\d\d-\d\dT/);
    assert.equal(typeof first.hash, 'string');
  });

  test('pages newest first with an opaque skiptoken and an absolute nextLink', async () => {
    for (let i = 0; i < 7; i++)
      await s.services.audit.record({
        tenantId: s.info.tenantId,
        operation: 'TestPaging',
        status: 200,
        target: `p${i}`,
      });
    const seen: string[] = [];
    let url: string | null = '/api/audit?operation=TestPaging&top=3';
    let pages = 0;
    while (url) {
      const r = await s.request('GET', url, { headers: admin });
      assert.equal(r.status, 200, r.text);
      pages++;
      seen.push(...r.json.value.map((e: { target: string }) => e.target));
      url = r.json.nextLink;
      if (url) {
        assert.ok(url.startsWith(`${s.info.authority}/api/audit?`), url);
        assert.match(url, /skiptoken=/);
        assert.match(url, /operation=TestPaging/);
      }
    }
    assert.equal(pages, 3);
    assert.deepEqual(seen, ['p6', 'p5', 'p4', 'p3', 'p2', 'p1', 'p0']);
  });

  test('bad query input is a 400 and never a 5xx', async () => {
    for (const q of [
      'top=0',
      'top=501',
      'top=abc',
      'skiptoken=not-a-token',
      'from=yesterday',
      `operation=${'x'.repeat(101)}`,
      `vault=${'v'.repeat(65)}`,
    ]) {
      const r = await s.request('GET', `/api/audit?${q}`, { headers: admin });
      assert.equal(r.status, 400, `${q}: ${r.text}`);
      assert.equal(r.json.error.code, 'BadParameter');
    }
    const anon = await s.request('GET', '/api/audit');
    assert.equal(anon.status, 401);
  });

  test('reading needs */read at the tenant root; verifying needs more than Reader', async () => {
    const nobody = await servicePrincipal(s, 'audit-nobody');
    const reader = await servicePrincipal(s, 'audit-reader');
    await assignRole(s, reader.id, 'Reader', '/');
    const h = async (p: TestPrincipal) => ({
      authorization: `Bearer ${await p.token(s.info.managementResource)}`,
    });

    const denied = await s.request('GET', '/api/audit', { headers: await h(nobody) });
    assert.equal(denied.status, 403);
    assert.match(denied.json.error.message, /Microsoft\.Latchkey\/auditEvents\/read/);
    assert.equal((await s.request('GET', '/api/audit?top=1', { headers: await h(reader) })).status, 200);
    const v = await s.request('POST', '/api/audit/verify', { headers: await h(reader) });
    assert.equal(v.status, 403);
    assert.match(v.json.error.message, /auditEvents\/verify\/action/);
  });
});

describe('audit verify detects tampering', () => {
  let s: TestServer;
  let admin: Record<string, string>;

  before(async () => {
    s = await startTestApp();
    admin = { authorization: `Bearer ${await s.adminToken()}` };
    for (let i = 0; i < 6; i++)
      await s.services.audit.record({
        tenantId: s.info.tenantId,
        operation: 'TestChain',
        status: 200,
        target: `t${i}`,
      });
  });
  after(async () => {
    await s?.stop();
  });

  const verify = async () => {
    const r = await s.request('POST', '/api/audit/verify', { headers: admin });
    assert.equal(r.status, 200, r.text);
    return r.json as {
      ok: boolean;
      count: number;
      head?: { seq: number; hash: string };
      brokenAt?: number;
      reason?: string;
    };
  };
  type Row = Record<string, string | number | null>;
  const row = async (seq: number) =>
    (await s.services.db.get<Row>('SELECT * FROM audit_events WHERE seq = $1', [seq]))!;
  const insert = async (r: Row) => {
    const cols = Object.keys(r);
    await s.services.db.run(
      `INSERT INTO audit_events (${cols.join(', ')}) VALUES (${cols.map((_, i) => `$${i + 1}`).join(', ')})`,
      Object.values(r),
    );
  };
  const maxSeq = async () =>
    Number((await s.services.db.get<{ m: number }>('SELECT MAX(seq) AS m FROM audit_events'))!.m);

  test('an intact chain verifies', async () => {
    const r = await verify();
    assert.equal(r.ok, true);
    assert.ok(r.count >= 7, `count ${r.count}`);
    assert.equal(r.brokenAt, undefined);
    // The sealed head, for the operator to keep outside the database.
    assert.equal(r.head?.seq, r.count);
    assert.match(r.head?.hash ?? '', /^[0-9a-f]{64}$/);
  });

  test('a changed field breaks the chain at that event', async () => {
    const original = await row(4);
    await s.services.db.run('UPDATE audit_events SET operation = $1 WHERE seq = 4', ['SecretGet']);
    const r = await verify();
    assert.equal(r.ok, false);
    assert.equal(r.brokenAt, 4);
    assert.match(r.reason!, /altered/);
    await s.services.db.run('UPDATE audit_events SET operation = $1 WHERE seq = 4', [original.operation!]);
    assert.equal((await verify()).ok, true);

    const third = await row(3);
    await s.services.db.run('UPDATE audit_events SET status = 403 WHERE seq = 3');
    assert.equal((await verify()).brokenAt, 3);
    await s.services.db.run('UPDATE audit_events SET status = $1 WHERE seq = 3', [third.status!]);
    assert.equal((await verify()).ok, true);
  });

  test('a deleted middle event breaks the chain where it was', async () => {
    const original = await row(5);
    await s.services.db.run('DELETE FROM audit_events WHERE seq = 5');
    const r = await verify();
    assert.equal(r.ok, false);
    assert.equal(r.brokenAt, 5);
    assert.match(r.reason!, /missing/);
    await insert(original);
    assert.equal((await verify()).ok, true);
  });

  test('two swapped events break the chain at the first of them', async () => {
    await s.services.db.transaction(async (tx) => {
      await tx.run('UPDATE audit_events SET seq = -1 WHERE seq = 3');
      await tx.run('UPDATE audit_events SET seq = 3 WHERE seq = 4');
      await tx.run('UPDATE audit_events SET seq = 4 WHERE seq = -1');
    });
    const r = await verify();
    assert.equal(r.ok, false);
    assert.equal(r.brokenAt, 3);
    await s.services.db.transaction(async (tx) => {
      await tx.run('UPDATE audit_events SET seq = -1 WHERE seq = 3');
      await tx.run('UPDATE audit_events SET seq = 3 WHERE seq = 4');
      await tx.run('UPDATE audit_events SET seq = 4 WHERE seq = -1');
    });
    assert.equal((await verify()).ok, true);
  });

  test('removing the newest event is caught by the head', async () => {
    await s.services.audit.drain();
    const last = await maxSeq();
    const original = await row(last);
    await s.services.db.run('DELETE FROM audit_events WHERE seq = $1', [last]);
    const r = await verify();
    assert.equal(r.ok, false);
    assert.equal(r.brokenAt, last);
    await insert(original);
    // The verify calls above appended after the (missing) head: the chain is whole again.
    assert.equal((await verify()).ok, true);
  });
});

describe('audit completeness of a secret lifecycle', () => {
  let s: TestServer;
  let officer: TestPrincipal;
  let stranger: TestPrincipal;
  const vault = 'auditvault';
  const value = 'audit-completeness-value-9f2c';

  before(async () => {
    s = await startTestApp();
    const v = await createVault(s, vault);
    officer = await servicePrincipal(s, 'audit-officer');
    stranger = await servicePrincipal(s, 'audit-stranger');
    await assignRole(s, officer.id, 'Key Vault Secrets Officer', v.id);
  });
  after(async () => {
    await s?.stop();
  });

  test('every data-plane call appears exactly once, with its status and no value', async () => {
    const token = await officer.token();
    const expected = new Map<string, number>();
    const call = async (
      op: string,
      method: string,
      path: string,
      json?: unknown,
      status = 200,
      t = token,
    ) => {
      const sep = path.includes('?') ? '&' : '?';
      const r = await s.request(method, `${s.vaultUrl(vault)}${path}${sep}api-version=7.5`, {
        headers: { authorization: `Bearer ${t}` },
        ...(json !== undefined ? { json } : {}),
      });
      assert.equal(r.status, status, `${op}: ${r.text}`);
      const key = `${op}:${status < 300 ? 'ok' : status}`;
      expected.set(key, (expected.get(key) ?? 0) + 1);
      return r.json;
    };
    const set = await call('SecretSet', 'PUT', '/secrets/lifecycle', { value });
    const version = String(set.id).split('/').pop();
    await call('SecretGet', 'GET', '/secrets/lifecycle');
    await call('SecretUpdate', 'PATCH', `/secrets/lifecycle/${version}`, { contentType: 'text/plain' });
    await call('SecretList', 'GET', '/secrets');
    await call('SecretListVersions', 'GET', '/secrets/lifecycle/versions');
    const backup = await call('SecretBackup', 'POST', '/secrets/lifecycle/backup');
    await call('SecretDelete', 'DELETE', '/secrets/lifecycle');
    await call('SecretListDeleted', 'GET', '/deletedsecrets');
    await call('SecretGetDeleted', 'GET', '/deletedsecrets/lifecycle');
    await call('SecretRecover', 'POST', '/deletedsecrets/lifecycle/recover');
    await call('SecretDelete', 'DELETE', '/secrets/lifecycle');
    await call('SecretPurge', 'DELETE', '/deletedsecrets/lifecycle', undefined, 204);
    await call('SecretRestore', 'POST', '/secrets/restore', { value: backup.value });
    await call('SecretGet', 'GET', '/secrets/nope', undefined, 404);
    await call('SecretGet', 'GET', '/secrets/lifecycle', undefined, 403, await stranger.token());

    await s.services.audit.drain();
    const events = await s.services.audit.list({ tenantId: s.info.tenantId, vault, limit: 1000 });
    const dataEvents = events.filter((e) => e.operation.startsWith('Secret'));
    const counts = new Map<string, number>();
    for (const e of dataEvents) {
      const key = `${e.operation}:${e.status < 300 ? 'ok' : e.status}`;
      counts.set(key, (counts.get(key) ?? 0) + 1);
    }
    assert.deepEqual(Object.fromEntries([...counts].sort()), Object.fromEntries([...expected].sort()));
    for (const e of dataEvents) {
      assert.ok(!JSON.stringify(e).includes(value), `${e.operation} must not hold the value`);
      assert.equal(e.vault, vault);
      if (e.status !== 403) assert.equal(e.callerOid, officer.id);
      else assert.equal(e.callerOid, stranger.id);
      if (
        e.operation !== 'SecretList' &&
        e.operation !== 'SecretListDeleted' &&
        e.operation !== 'SecretRestore'
      )
        assert.match(String(e.target), /\/(deleted)?secrets\/(lifecycle|nope)/i, `${e.operation} target`);
    }
    // The API shows the same events to an administrator, and the chain holds.
    const admin = { authorization: `Bearer ${await s.adminToken()}` };
    const api = await s.request('GET', `/api/audit?vault=${vault}&operation=SecretSet`, { headers: admin });
    assert.equal(api.json.value.length, 1);
    const v = await s.request('POST', '/api/audit/verify', { headers: admin });
    assert.equal(v.json.ok, true);
  });
});

describe('audit chain head: truncation by a database writer without the root key', () => {
  const clock = fakeClock(1_700_000_000_000);
  const root = rootKeyFromBytes(randomBytes(32));
  const keys = { macKey: root.derive('audit-mac'), headKey: root.derive('audit-head') };
  let db: Database;
  let log: AuditLog;
  const HEAD = "SELECT value FROM meta WHERE key = 'audit_head'";

  beforeEach(async () => {
    db = await openDatabase('sqlite::memory:');
    log = createAuditLog({ db, clock, ...keys });
    for (let i = 0; i < 8; i++)
      await db.transaction((tx) => log.append(tx, { tenantId: null, operation: 'TestOp', status: 200 }));
  });
  afterEach(async () => {
    await db.close();
  });

  const hashAt = async (seq: number) =>
    (await db.get<{ hash: string }>('SELECT hash FROM audit_events WHERE seq = $1', [seq]))!.hash;
  const reasonOf = (r: VerifyResult) => (r.ok ? '' : r.reason);
  /** What an attacker does: removes events 6–8 and points the head at event 5. */
  const truncateTo5 = async (head: string) => {
    await db.run('DELETE FROM audit_events WHERE seq > 5');
    await db.run("UPDATE meta SET value = $1 WHERE key = 'audit_head'", [head]);
  };

  test('an untouched log verifies, naming its sealed head', async () => {
    assert.deepEqual(await log.verify(), { ok: true, count: 8, head: { seq: 8, hash: await hashAt(8) } });
    assert.deepEqual(await log.head(), { seq: 8, hash: await hashAt(8) });
  });

  test('newest events removed and the head rewritten in the old (unsealed) form: truncation', async () => {
    await truncateTo5(`5:${await hashAt(5)}`);
    const r = await log.verify();
    assert.equal(r.ok, false);
    assert.match(reasonOf(r), /truncated/);
  });

  test('newest events removed and the head rewritten keeping its old MAC: truncation', async () => {
    const mac = (await db.get<{ value: string }>(HEAD))!.value.split(':')[3];
    await truncateTo5(`5:${await hashAt(5)}:0:${mac}`);
    const r = await log.verify();
    assert.equal(r.ok, false);
    assert.match(reasonOf(r), /rewritten without the root key.*truncated/);
  });

  test('a head sealed with a different root key: truncation', async () => {
    const other = rootKeyFromBytes(randomBytes(32)).derive('audit-head');
    const forged = createHmac('sha256', other)
      .update(`latchkey/audit-head/v1:5:${await hashAt(5)}:0`)
      .digest('hex');
    await truncateTo5(`5:${await hashAt(5)}:0:${forged}`);
    const r = await log.verify();
    assert.equal(r.ok, false);
    assert.match(reasonOf(r), /rewritten without the root key/);
  });

  test('a head sealed with the audit record key (not the head key) is refused', async () => {
    const forged = createHmac('sha256', keys.macKey)
      .update(`latchkey/audit-head/v1:5:${await hashAt(5)}:0`)
      .digest('hex');
    await truncateTo5(`5:${await hashAt(5)}:0:${forged}`);
    assert.equal((await log.verify()).ok, false);
  });

  test('newest events removed and the head deleted: truncation (head missing)', async () => {
    await db.run('DELETE FROM audit_events WHERE seq > 5');
    await db.run("DELETE FROM meta WHERE key = 'audit_head'");
    const r = await log.verify();
    assert.equal(r.ok, false);
    assert.match(reasonOf(r), /head is missing.*truncated/);
  });

  test('every event removed but the head kept: truncation', async () => {
    await db.run('DELETE FROM audit_events');
    const r = await log.verify();
    assert.equal(r.ok, false);
    assert.equal(r.ok ? 0 : r.brokenAt, 1);
    assert.match(reasonOf(r), /truncated: the sealed head is event 8, the log ends at event 0/);
  });

  test('appends after a forged head do not launder it: the finding stays, and writes go on', async () => {
    await truncateTo5(`5:${await hashAt(5)}`);
    for (let i = 0; i < 3; i++) await log.record({ tenantId: null, operation: 'Later', status: 200 });
    await db.transaction((tx) => log.append(tx, { tenantId: null, operation: 'Later', status: 201 }));
    const r = await log.verify();
    assert.equal(r.ok, false);
    assert.equal(r.count, 9, 'the chain itself goes on from event 5');
    assert.equal(r.ok ? 0 : r.brokenAt, 6);
    assert.match(
      reasonOf(r),
      /found rewritten \(without the root key, or put back to an older head\) before event 6/,
    );
  });

  test('a head deleted while events remain: later appends go on from the last event, flagged', async () => {
    await db.run("DELETE FROM meta WHERE key = 'audit_head'");
    await db.transaction((tx) => log.append(tx, { tenantId: null, operation: 'Later', status: 200 }));
    const r = await log.verify();
    assert.equal(r.count, 9);
    assert.equal(r.ok ? 0 : r.brokenAt, 9);
  });

  // The log does not re-check a head text it sealed or verified itself (readHead's memo): these
  // are the ways the stored head can differ from the last one this process wrote.
  const op = (operation: string) => ({ tenantId: null, operation, status: 200 });
  const headText = async () => (await db.get<{ value: string }>(HEAD))!.value;

  test('an append rolled back (its transaction, or its savepoint in a group commit) leaves the chain whole', async () => {
    await assert.rejects(
      db.transaction(async (tx) => {
        await log.append(tx, op('RolledBack'));
        throw new Error('the change failed');
      }),
      /the change failed/,
    );
    await db.transaction((tx) => log.append(tx, op('After')));
    // Two writes in one batch: the first appends, then fails (rolled back to its savepoint).
    const group = createGroupCommit(db);
    const [failed, kept] = await Promise.allSettled([
      group.run(async (tx) => {
        await log.append(tx, op('RolledBack'));
        throw new Error('the change failed');
      }),
      group.run((tx) => log.append(tx, op('Kept'))),
    ]);
    assert.equal(failed.status, 'rejected');
    assert.equal(kept.status, 'fulfilled');
    assert.equal(group.stats.largest, 2, 'both writes in one batch');
    assert.deepEqual(await log.verify(), { ok: true, count: 10, head: { seq: 10, hash: await hashAt(10) } });
  });

  test('a group-committed batch seals and writes the chain head once, before its commit; writes rolled back in it leave no gap', async () => {
    // Counts writes of the head row (an upsert fires the insert or the update trigger).
    await db.run('CREATE TABLE head_writes (n INTEGER)');
    for (const on of ['INSERT', 'UPDATE'])
      await db.run(
        `CREATE TRIGGER head_write_${on} AFTER ${on} ON meta WHEN NEW.key = 'audit_head' BEGIN INSERT INTO head_writes VALUES (1); END`,
      );
    const headWrites = async () => (await db.get<{ n: number }>('SELECT COUNT(*) AS n FROM head_writes'))!.n;
    const group = createGroupCommit(db);
    const failing = (tx: Transaction) =>
      log.append(tx, op('RolledBack')).then(() => {
        throw new Error('the change failed');
      });
    const kept = (tx: Transaction) => log.append(tx, op('Kept'));
    const results = await Promise.allSettled(
      [kept, failing, kept, failing, kept, kept].map((fn) => group.run(fn)),
    );
    assert.deepEqual(
      results.map((r) => r.status),
      ['fulfilled', 'rejected', 'fulfilled', 'rejected', 'fulfilled', 'fulfilled'],
    );
    assert.deepEqual(group.stats, { batches: 1, writes: 6, largest: 6 });
    assert.equal(await headWrites(), 1, 'one head write for the batch, not one per write');
    const ops = await db.all<{ seq: number; operation: string }>(
      'SELECT seq, operation FROM audit_events WHERE seq > 8 ORDER BY seq',
    );
    assert.deepEqual(
      ops,
      [9, 10, 11, 12].map((seq) => ({ seq, operation: 'Kept' })),
    );
    assert.deepEqual(await log.verify(), { ok: true, count: 12, head: { seq: 12, hash: await hashAt(12) } });
    // A batch whose every write is rolled back leaves the head as it was (and does not write it).
    const none = await Promise.allSettled([failing, failing].map((fn) => group.run(fn)));
    assert.deepEqual(
      none.map((r) => r.status),
      ['rejected', 'rejected'],
    );
    assert.equal(await headWrites(), 1);
    await db.transaction((tx) => log.append(tx, op('Next')));
    assert.equal(await headWrites(), 2);
    assert.deepEqual(await log.verify(), { ok: true, count: 13, head: { seq: 13, hash: await hashAt(13) } });
  });

  test('a record queued inside a transaction is committed in a batch of its own after it ends (review12)', async () => {
    // The batch's timer starts inside the transaction's async context; the batch must neither join
    // that transaction nor, once it has ended, run as if inside it.
    let failed: unknown;
    await db.transaction(async (tx) => {
      await log.append(tx, op('InTx'));
      log.note(op('RecordedInsideTx'), (e) => {
        failed = e;
      });
    });
    await log.drain();
    assert.equal(failed, undefined);
    await db.transaction((tx) => log.append(tx, op('After')));
    const ops = await db.all<{ operation: string }>(
      'SELECT operation FROM audit_events WHERE seq > 8 ORDER BY seq',
    );
    assert.deepEqual(
      ops.map((r) => r.operation),
      ['InTx', 'RecordedInsideTx', 'After'],
    );
    assert.deepEqual(await log.verify(), { ok: true, count: 11, head: { seq: 11, hash: await hashAt(11) } });
  });

  test('a transaction SQLite rolled back under a function that went on is not committed, and its head is not written (review12)', async () => {
    const before = await headText();
    await assert.rejects(
      db.transaction(async (tx) => {
        await log.append(tx, op('Lost'));
        // What SQLite does itself on SQLITE_FULL, IOERR or NOMEM; the function caught the error.
        await tx.run('ROLLBACK');
      }),
      (e: unknown) => e instanceof LatchkeyError && e.code === 'ServiceUnavailable',
    );
    assert.equal(await headText(), before);
    await db.transaction((tx) => log.append(tx, op('Next')));
    assert.deepEqual(await log.verify(), { ok: true, count: 9, head: { seq: 9, hash: await hashAt(9) } });
  });

  test('another node appending on the same database: each goes on from the stored head', async () => {
    const other = createAuditLog({ db, clock, ...keys });
    for (const l of [other, log, other, other, log])
      await db.transaction((tx) => l.append(tx, op('Interleaved')));
    assert.deepEqual(await log.verify(), { ok: true, count: 13, head: { seq: 13, hash: await hashAt(13) } });
    assert.deepEqual(await other.verify(), await log.verify());
  });

  test('a head put back to an older sealed value (the events kept) is read as stored, not as last written', async () => {
    const older = await headText(); // sealed at event 8
    await db.transaction((tx) => log.append(tx, op('Later')));
    await db.run("UPDATE meta SET value = $1 WHERE key = 'audit_head'", [older]);
    assert.deepEqual(await log.head(), { seq: 8, hash: await hashAt(8) });
    const r = await log.verify();
    assert.equal(r.ok, false);
    assert.match(reasonOf(r), /the sealed head is event 8, the log ends at event 9/);
    // And then forged: a head this process verified, changed by a writer without the root key.
    await db.run("UPDATE meta SET value = $1 WHERE key = 'audit_head'", [
      older.replace(/.$/, (c) => (c === '0' ? '1' : '0')),
    ]);
    assert.equal(await log.head(), undefined);
    assert.match(reasonOf(await log.verify()), /rewritten without the root key/);
  });

  test('a head put back to an older sealed value (the events kept): later writes go on from the last event, flagged', async () => {
    const older = await headText(); // sealed at event 8
    await db.transaction((tx) => log.append(tx, op('Later')));
    await db.run("UPDATE meta SET value = $1 WHERE key = 'audit_head'", [older]);
    // Read once through this process (the head it reads is sealed and valid, so it is remembered).
    assert.deepEqual(await log.head(), { seq: 8, hash: await hashAt(8) });
    // Without the repair these failed for good: event 9 exists, so "next is 9" collides.
    await db.transaction((tx) => log.append(tx, op('AfterRewind')));
    const group = createGroupCommit(db);
    await Promise.all([0, 1].map(() => group.run((tx) => log.append(tx, op('Batched')))));
    await log.record(op('Read'));
    const r = await log.verify();
    assert.equal(r.count, 13, 'no event lost, none duplicated: the chain goes on from event 9');
    assert.equal(r.ok, false, 'and the rewind stays reported');
    assert.equal(r.ok ? 0 : r.brokenAt, 10);
    assert.match(reasonOf(r), /put back to an older head.*before event 10/);
    // Another process on the same database (a restart, a second node) sees the same.
    const other = createAuditLog({ db, clock, ...keys });
    await db.transaction((tx) => other.append(tx, op('OtherNode')));
    assert.equal((await other.verify()).count, 14);
  });

  test("a head put back to the very head this process last wrote, another node's events kept: one write fails, the next goes on", async () => {
    const mine = await headText(); // this process's last append (event 8)
    const other = createAuditLog({ db, clock, ...keys });
    await db.transaction((tx) => other.append(tx, op('OtherNode')));
    await db.run("UPDATE meta SET value = $1 WHERE key = 'audit_head'", [mine]);
    await assert.rejects(
      db.transaction((tx) => log.append(tx, op('Collides'))),
      /concurrently/,
    );
    await db.transaction((tx) => log.append(tx, op('GoesOn')));
    const r = await log.verify();
    assert.equal(r.count, 10);
    assert.equal(r.ok ? 0 : r.brokenAt, 10);
  });

  test("read records batched while the head is put back to this process's last one (another node's events kept) are not lost", async () => {
    const a = createAuditLog({ db, clock, ...keys, flushMs: 1 });
    await db.transaction((tx) => a.append(tx, op('A')));
    const aLast = await headText();
    const b = createAuditLog({ db, clock, ...keys });
    await db.transaction((tx) => b.append(tx, op('B')));
    await db.run("UPDATE meta SET value = $1 WHERE key = 'audit_head'", [aLast]);
    // Reads already answered: their records must still be kept (the batch is retried once).
    const settled = await Promise.allSettled(Array.from({ length: 5 }, (_, i) => a.record(op(`Read${i}`))));
    assert.deepEqual(
      settled.map((x) => x.status),
      Array(5).fill('fulfilled'),
    );
    const r = await a.verify();
    assert.equal(r.count, 15, '8 + A + B + 5 reads');
    assert.equal(r.ok, false, 'and the put-back head is reported');
    assert.match(reasonOf(r), /put back to an older head\) before event 11: the log may have been truncated/);
  });

  test('a new, empty log verifies', async () => {
    const empty = await openDatabase('sqlite::memory:');
    try {
      assert.deepEqual(await createAuditLog({ db: empty, clock, ...keys }).verify(), {
        ok: true,
        count: 0,
        head: null,
      });
    } finally {
      await empty.close();
    }
  });
});

/**
 * The lock order (docs/storage.md): a transaction that appends takes the log's lock before any
 * other, so two writers on PostgreSQL never wait for each other's locks in opposite orders. The
 * adapters record each transaction's first lock; the log checks it, strictly under the test runner.
 */
describe('audit lock order: the log’s lock first', () => {
  const clock = fakeClock(1_700_000_000_000);
  const root = rootKeyFromBytes(randomBytes(32));
  const keys = { macKey: root.derive('audit-mac'), headKey: root.derive('audit-head') };
  let db: Database;
  beforeEach(async () => {
    db = await openDatabase('sqlite::memory:');
    await db.run("INSERT INTO meta (key, value) VALUES ('lock-order-test', '0')");
  });
  afterEach(async () => {
    await db.close();
  });
  const touch = (tx: Transaction) =>
    tx.run("UPDATE meta SET value = value || '1' WHERE key = 'lock-order-test'");
  const value = async () =>
    (await db.get<{ value: string }>("SELECT value FROM meta WHERE key = 'lock-order-test'"))!.value;
  const op = { tenantId: null, operation: 'TestOp', status: 200 };

  test('a row changed before the first append: refused (strict), and nothing is kept', async () => {
    const log = createAuditLog({ db, clock, ...keys, strictLockOrder: true });
    await assert.rejects(
      db.transaction(async (tx) => {
        await touch(tx);
        await log.append(tx, op);
      }),
      /lock order: this transaction took a lock \(UPDATE meta SET value/,
    );
    assert.equal(await value(), '0', 'rolled back');
    // A named lock first is refused the same way; a read first is no lock.
    await assert.rejects(
      db.transaction(async (tx) => {
        await tx.lock('latchkey:something');
        await log.append(tx, op);
      }),
      /lock order: this transaction took a lock \(latchkey:something\)/,
    );
    await db.transaction(async (tx) => {
      await tx.get("SELECT value FROM meta WHERE key = 'lock-order-test'");
      await tx.run("UPDATE meta SET value = value WHERE key = 'no-such-key'"); // changes no row: no lock
      await log.append(tx, op);
    });
  });

  test('hold first, then any lock and appends: accepted; without strictness nothing is checked', async () => {
    const log = createAuditLog({ db, clock, ...keys, strictLockOrder: true });
    await db.transaction(async (tx) => {
      await log.hold(tx);
      await touch(tx);
      await tx.lock('latchkey:something');
      await log.append(tx, op);
      await log.append(tx, op);
    });
    assert.equal(await value(), '01');
    const lax = createAuditLog({ db, clock, ...keys, strictLockOrder: false });
    await db.transaction(async (tx) => {
      await touch(tx);
      await lax.append(tx, op);
    });
    assert.equal((await lax.verify()).ok, true);
  });

  test('a group-committed batch: each write keeps the order on its own, as on PostgreSQL (one transaction each)', async () => {
    const log = createAuditLog({ db, clock, ...keys, strictLockOrder: true });
    const group = createGroupCommit(db);
    // A write that appends nothing (a jti), then one that holds first, then one in the wrong order.
    const [plain, ordered, wrong] = await Promise.allSettled([
      group.run((tx) => touch(tx), { single: true }),
      group.run(async (tx) => {
        await log.hold(tx);
        await touch(tx);
        await log.append(tx, op);
      }),
      group.run(async (tx) => {
        await touch(tx);
        await log.append(tx, op);
      }),
    ]);
    assert.equal(group.stats.largest, 3, 'one batch');
    assert.equal(plain.status, 'fulfilled');
    assert.equal(ordered.status, 'fulfilled', String((ordered as PromiseRejectedResult).reason));
    assert.equal(wrong.status, 'rejected');
    assert.match(String((wrong as PromiseRejectedResult).reason), /lock order/);
    assert.equal(await value(), '011', 'the wrong one was rolled back to its savepoint');
  });
});
