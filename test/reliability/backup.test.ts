import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import Database from 'better-sqlite3';
import { ALL_MIGRATIONS } from '../../src/storage/migrations/index.js';
import { runCli, type ServerProcess, spawnServer } from '../helpers/cli.js';
import { createTestDatabase, type TestDatabase } from '../helpers/postgres.js';
import { issueServerCert, makeTestCa } from '../helpers/tls-ca.js';
import {
  adminToken,
  clientToken,
  FULL,
  type HttpClient,
  httpClient,
  provisionVaultWriter,
  type ServerInfo,
  size,
} from './lib.js';

/**
 * Whole-store backup and restore (docs/operations.md), against real `latchkey server`
 * processes: writers keep setting secrets while the store is backed up (SQLite:
 * `latchkey backup`; PostgreSQL: `pg_dump -Fc`); the backup is restored into a fresh
 * store (`latchkey restore`; `pg_restore`), a server is started on it, and every write
 * acknowledged before the backup started must be there with its value, and the audit
 * chain must verify. Which writes count is decided by the acknowledgement order (the
 * list is cut just before the backup starts), never by a sleep.
 */
/** Writes acknowledged before the backup starts (`LATCHKEY_BACKUP_WRITES` overrides, to measure recovery time). */
const ACKED_BEFORE = Number(process.env.LATCHKEY_BACKUP_WRITES) || size(60, 2000);
const WRITERS = size(4, 8);
/** The schema version this build migrates to. */
const LATEST_SCHEMA = Math.max(...ALL_MIGRATIONS.map((m) => m.version));
const MANAGEMENT = 'https://management.latchkey.localhost';
const VAULT_RESOURCE = 'https://vault.localhost';
const VAULT = 'backupvault';
const run = promisify(execFile);

interface Ready {
  authority: string;
  port: number;
}
interface Acked {
  name: string;
  value: string;
  version: string;
}

describe(`whole-store backup and restore under write load (${FULL ? 'full' : 'short'})`, () => {
  let dir: string;
  let ca: string;
  /** The root key, kept apart from the stores and the backups (its own directory). */
  let rootKeyFile: string;
  let rootKeyText: string;
  const procs: ServerProcess<Ready>[] = [];
  const clients: HttpClient[] = [];
  const databases: TestDatabase[] = [];

  const startServer = async (storage: string, bootstrap: boolean) => {
    const args = [
      'server',
      '--json',
      '--host',
      '127.0.0.1',
      '--port',
      '0',
      '--root-key-file',
      rootKeyFile,
      '--tls-cert',
      join(dir, 'tls.pem'),
      '--tls-key',
      join(dir, 'tls.key'),
      '--storage',
      storage,
      '--public-host',
      'localhost',
      '--vault-domain',
      'vault.localhost',
      '--log-level',
      'warn',
      // The verification reads every acknowledged write back as fast as it can.
      '--limit',
      'per-principal-rate=0',
      '--limit',
      'per-address-rate=0',
      ...(bootstrap
        ? ['--bootstrap-admin', join(dir, `admin-${randomUUID()}.json`), '--tenant-domain', 'backup.example']
        : []),
    ];
    const proc = await spawnServer<Ready>(args, { configDir: dir, timeoutMs: 60_000 });
    procs.push(proc);
    const c = httpClient(proc.info.authority, ca);
    clients.push(c);
    const adminFile = args[args.indexOf('--bootstrap-admin') + 1];
    return { proc, c, adminFile: bootstrap ? adminFile! : undefined };
  };

  /** Tenant, subscription and the admin's sign-in, as the bootstrap wrote them. */
  const serverInfo = async (
    c: HttpClient,
    authority: string,
    admin: { tenantId: string; userName: string; password: string },
  ) => {
    const info: ServerInfo = {
      authority,
      tenantId: admin.tenantId,
      subscriptionId: '',
      managementResource: MANAGEMENT,
      vaultResource: VAULT_RESOURCE,
    };
    const at = await adminToken(c, info, admin);
    const subs = await c.request('GET', '/subscriptions?api-version=2022-12-01', {
      headers: { authorization: `Bearer ${at}` },
    });
    assert.equal(subs.status, 200, subs.text);
    info.subscriptionId = subs.json.value[0].subscriptionId;
    return { info, at };
  };

  const secretUrl = (port: number, path: string) =>
    `https://${VAULT}.vault.localhost:${port}${path}?api-version=7.5`;

  /**
   * Writers setting secrets until `stop()`; `acked` grows in acknowledgement order.
   * `reached(n)` resolves once n writes are acknowledged.
   */
  const writeLoad = (c: HttpClient, port: number, token: string) => {
    const acked: Acked[] = [];
    const failures: string[] = [];
    let stopped = false;
    const waiters: { n: number; resolve: () => void }[] = [];
    const write = async (w: number) => {
      for (let k = 0; !stopped; k++) {
        const name = `w${w}-${k % 5}`;
        const value = `v-${w}-${k}-${randomUUID()}`;
        const r = await c.request('PUT', secretUrl(port, `/secrets/${name}`), {
          headers: { authorization: `Bearer ${token}` },
          json: { value },
        });
        if (r.status !== 200) {
          failures.push(`${r.status} ${r.text.slice(0, 200)}`);
          return;
        }
        acked.push({ name, value, version: String(r.json.id).split('/').pop()! });
        for (const x of waiters.filter((x) => acked.length >= x.n)) {
          waiters.splice(waiters.indexOf(x), 1);
          x.resolve();
        }
      }
    };
    const loops = Array.from({ length: WRITERS }, (_, w) => write(w));
    return {
      acked,
      failures,
      reached: (n: number) =>
        new Promise<void>((resolve, reject) => {
          if (acked.length >= n) return resolve();
          waiters.push({ n, resolve });
          void Promise.all(loops).then(() => {
            if (acked.length < n) reject(new Error(`the writers stopped: ${failures.join('; ')}`));
          });
        }),
      async stop() {
        stopped = true;
        await Promise.all(loops);
      },
    };
  };

  /** Every write in `expected` is readable at its version with its value; the audit chain verifies. */
  const verifyRestored = async (
    c: HttpClient,
    port: number,
    token: string,
    at: string,
    expected: Acked[],
  ) => {
    let i = 0;
    const worker = async () => {
      while (i < expected.length) {
        const a = expected[i++]!;
        const r = await c.request('GET', secretUrl(port, `/secrets/${a.name}/${a.version}`), {
          headers: { authorization: `Bearer ${token}` },
        });
        assert.equal(
          r.status,
          200,
          `acknowledged before the backup, missing after restore: ${a.name}/${a.version}: ${r.text}`,
        );
        assert.equal(r.json.value, a.value, `${a.name}/${a.version}: another value after restore`);
      }
    };
    await Promise.all([worker(), worker(), worker(), worker()]);
    const v = await c.request('POST', '/api/audit/verify', { headers: { authorization: `Bearer ${at}` } });
    assert.equal(v.status, 200, v.text);
    assert.equal(v.json.ok, true, `audit chain after restore: ${v.text}`);
    return v.json.count as number;
  };

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'latchkey-backup-'));
    const testCa = await makeTestCa();
    ca = testCa.certPem;
    const leaf = await issueServerCert(testCa, ['localhost', '*.vault.localhost']);
    writeFileSync(join(dir, 'tls.pem'), leaf.certPem);
    writeFileSync(join(dir, 'tls.key'), leaf.keyPem, { mode: 0o600 });
    mkdirSync(join(dir, 'keys'), { mode: 0o700 });
    rootKeyFile = join(dir, 'keys', 'root.key');
    rootKeyText = randomBytes(32).toString('base64');
    writeFileSync(rootKeyFile, `${rootKeyText}\n`, { mode: 0o600 });
  });
  after(async () => {
    await Promise.all(procs.map((p) => p.stop('SIGKILL', 1000)));
    for (const c of clients) c.close();
    await Promise.all(databases.map((d) => d.drop().catch(() => {})));
    rmSync(dir, { recursive: true, force: true });
  });

  test('SQLite: latchkey backup while writers run; latchkey restore; every write acknowledged before the backup is there, the audit chain verifies', async (t) => {
    const storeDir = join(dir, 'store');
    mkdirSync(storeDir, { mode: 0o700 });
    const storage = `sqlite:${join(storeDir, 'latchkey.db')}`;
    const { proc, c, adminFile } = await startServer(storage, true);
    const admin = JSON.parse(readFileSync(adminFile!, 'utf8'));
    const { info, at } = await serverInfo(c, proc.info.authority, admin);
    const writer = await provisionVaultWriter(c, info, at, VAULT);
    const token = await clientToken(c, info, writer);

    // A reader holding a snapshot from before the writes keeps SQLite from checkpointing them into
    // the database file: every write below lives in the -wal only, so a backup that copied the
    // file (and not the store as SQLite sees it) would lose them, whatever the checkpoint timing.
    const pin = new Database(join(storeDir, 'latchkey.db'), { readonly: true, fileMustExist: true });
    pin.exec('BEGIN');
    pin.prepare('SELECT COUNT(*) FROM meta').get();
    const load = writeLoad(c, proc.info.port, token);
    await load.reached(ACKED_BEFORE);
    const cut = load.acked.length; // every one of these was answered 200 before the backup process exists
    const backupFile = join(dir, 'backups', 'latchkey-backup.db');
    mkdirSync(join(dir, 'backups'), { mode: 0o700 });
    const b = await runCli(['backup', '--storage', storage, '--to', backupFile], {
      configDir: dir,
      timeoutMs: 120_000,
    });
    const ackedDuring = load.acked.length - cut;
    await load.stop();
    pin.exec('COMMIT');
    pin.close();
    assert.equal(b.code, 0, b.stderr);
    assert.deepEqual(load.failures, [], 'every write was answered 200');
    assert.ok(ackedDuring > 0, 'the server kept acknowledging writes while the backup ran (it is online)');
    assert.equal(b.json.integrity, 'ok');
    assert.equal(b.json.schemaVersion, LATEST_SCHEMA);
    assert.match(b.stderr, /does not hold the root key/);
    assert.equal(statSync(backupFile).mode & 0o777, 0o600, 'the backup is owner-only');
    assert.deepEqual(readdirSync(join(dir, 'backups')), ['latchkey-backup.db'], 'no temp file left behind');
    // The root key is kept apart: neither its text nor its bytes are in the backup.
    const bytes = readFileSync(backupFile);
    assert.equal(bytes.includes(Buffer.from(rootKeyText)), false);
    assert.equal(bytes.includes(Buffer.from(rootKeyText, 'base64')), false);
    const keyCheck = await runCli(['root-key', 'check-value', '--root-key-file', rootKeyFile], {
      configDir: dir,
    });
    assert.equal(b.json.rootKeyCheck, keyCheck.stdout.trim(), 'the backup names the root key it needs');
    await proc.stop();

    // Restore into a fresh store, with the root key from its own place.
    const restoredDir = join(dir, 'restored');
    const restored = `sqlite:${join(restoredDir, 'latchkey.db')}`;
    const t0 = Date.now();
    const r = await runCli(
      ['restore', '--from', backupFile, '--storage', restored, '--root-key-file', rootKeyFile],
      { configDir: dir, timeoutMs: 120_000 },
    );
    const restoreWallMs = Date.now() - t0;
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.json.replaced, null);
    assert.ok(r.json.auditEvents > 0, 'r.json.auditEvents > 0');
    assert.equal(statSync(join(restoredDir, 'latchkey.db')).mode & 0o777, 0o600);
    assert.equal(statSync(restoredDir).mode & 0o777, 0o700);
    const second = await startServer(restored, false);
    const recoveryMs = Date.now() - t0;
    const { at: at2 } = await serverInfo(second.c, second.proc.info.authority, admin);
    const token2 = await clientToken(second.c, { ...info, authority: second.proc.info.authority }, writer);
    const events = await verifyRestored(
      second.c,
      second.proc.info.port,
      token2,
      at2,
      load.acked.slice(0, cut),
    );
    assert.ok(events >= r.json.auditEvents, 'events >= r.json.auditEvents');
    t.diagnostic(
      `sqlite: acknowledged before the backup=${cut} during it=${ackedDuring} total=${load.acked.length}; backup ${b.json.bytes} bytes in ${b.json.ms} ms; restore ${r.json.ms} ms (CLI process ${restoreWallMs} ms); server start ${second.proc.readyMs} ms; restore + server ready ${recoveryMs} ms; audit events ${events}`,
    );

    // The refusals: a store in use, an existing store without --force, another root key,
    // a tampered audit chain, a schema from a newer Latchkey. Each leaves the target as it was.
    const refused = async (args: string[], pattern: RegExp, env: Record<string, string> = {}) => {
      const x = await runCli(['restore', ...args], { configDir: dir, env, timeoutMs: 60_000 });
      assert.equal(x.code, 1, `${args.join(' ')}: ${x.stdout} ${x.stderr}`);
      assert.match(x.stderr, pattern);
    };
    const keyArgs = ['--root-key-file', rootKeyFile];
    await refused(
      ['--from', backupFile, '--storage', restored, ...keyArgs, '--force'],
      /is in use \(a running latchkey server\?\)/,
    );
    await second.proc.stop();
    const restoredBytes = readFileSync(join(restoredDir, 'latchkey.db'));
    await refused(['--from', backupFile, '--storage', restored, ...keyArgs], /already exists; give --force/);
    const other = join(dir, 'keys', 'other.key');
    writeFileSync(other, `${randomBytes(32).toString('base64')}\n`, { mode: 0o600 });
    const fresh = join(dir, 'fresh', 'latchkey.db');
    await refused(
      ['--from', backupFile, '--storage', `sqlite:${fresh}`, '--root-key-file', other],
      new RegExp(`needs the root key with check value ${b.json.rootKeyCheck}`),
    );
    const loose = join(dir, 'keys', 'loose.key');
    writeFileSync(loose, `${rootKeyText}\n`);
    chmodSync(loose, 0o644);
    await refused(
      ['--from', backupFile, '--storage', `sqlite:${fresh}`, '--root-key-file', loose],
      /loose\.key must not be readable by group or others/,
    );
    const tampered = join(dir, 'backups', 'tampered.db');
    copyFileSync(backupFile, tampered);
    const tdb = new Database(tampered);
    tdb
      .prepare(
        "UPDATE audit_events SET operation = 'SecretGet' WHERE seq = (SELECT MAX(seq) FROM audit_events)",
      )
      .run();
    tdb.close();
    await refused(
      ['--from', tampered, '--storage', `sqlite:${fresh}`, ...keyArgs],
      /audit chain does not verify: event \d+ was altered/,
    );
    const newer = join(dir, 'backups', 'newer.db');
    copyFileSync(backupFile, newer);
    const ndb = new Database(newer);
    ndb.prepare("INSERT INTO schema_migrations (version, name, applied_at) VALUES (9999, 'future', 0)").run();
    ndb.close();
    await refused(
      ['--from', newer, '--storage', `sqlite:${fresh}`, ...keyArgs],
      /schema version 9999, newer than this Latchkey knows/,
    );
    assert.equal(existsSync(fresh), false, 'a refused restore creates no store');
    assert.deepEqual(readdirSync(join(dir, 'fresh')), [], 'and leaves no temp file behind');
    // A backup from before migration 0012 (unsealed audit head) is migrated forward and its head
    // sealed with the root key, as a server's first start does; then its chain verifies.
    const older = join(dir, 'backups', 'older.db');
    copyFileSync(backupFile, older);
    const odb = new Database(older);
    odb.prepare('DELETE FROM schema_migrations WHERE version >= 12').run();
    // Schema 11 had no certificates (0013), no federated credentials (0015, 0017), no certificate
    // issuance tables (0016), no certificate contacts (0018), no tenant settings (0019), no CA
    // generations (0020) and no CA issuance records (0021): drop their tables as such a backup
    // would be (0014 rebuilds the audit table in place, so it can run again).
    for (const t of [
      'tenant_settings',
      'certificate_ca_issuances',
      'certificate_ca_revocations',
      'certificate_ca_generations',
      'certificate_contacts',
      'app_federated_credentials',
      'certificate_lifetime_events',
      'certificate_requests',
      'certificate_issuers',
      'federated_credentials',
      'certificate_operations',
      'certificate_policies',
      'certificate_versions',
      'certificates',
    ])
      odb.prepare(`DROP TABLE ${t}`).run();
    const head = odb.prepare("SELECT value FROM meta WHERE key = 'audit_head'").get() as { value: string };
    odb
      .prepare("UPDATE meta SET value = ? WHERE key = 'audit_head'")
      .run(head.value.split(':').slice(0, 2).join(':'));
    odb.close();
    const up = await runCli(['restore', '--from', older, '--storage', `sqlite:${fresh}`, ...keyArgs], {
      configDir: dir,
      timeoutMs: 60_000,
    });
    assert.equal(up.code, 0, up.stderr);
    assert.equal(up.json.backupSchemaVersion, 11);
    assert.equal(up.json.schemaVersion, LATEST_SCHEMA);
    assert.equal(up.json.auditHead.hash, head.value.split(':')[1]);
    rmSync(fresh);
    assert.ok(
      readFileSync(join(restoredDir, 'latchkey.db')).equals(restoredBytes),
      'the existing store is unchanged',
    );
    // With --force the existing store is moved aside, not deleted.
    const forced = await runCli(
      ['restore', '--from', backupFile, '--storage', restored, ...keyArgs, '--force'],
      {
        configDir: dir,
        timeoutMs: 60_000,
      },
    );
    assert.equal(forced.code, 0, forced.stderr);
    assert.ok(
      readFileSync(forced.json.replaced).equals(restoredBytes),
      'readFileSync(forced.json.replaced).equals(restoredBytes)',
    );
    // verify-store reads a backup without changing it (a restore drill without restoring).
    const before = readFileSync(backupFile);
    const vs = await runCli(['verify-store', '--storage', `sqlite:${backupFile}`], {
      configDir: dir,
      env: { LATCHKEY_ROOT_KEY: rootKeyText },
    });
    assert.equal(vs.code, 0, vs.stderr);
    assert.equal(vs.json.ok, true);
    assert.ok(readFileSync(backupFile).equals(before), 'verify-store changed nothing');
  });

  test('PostgreSQL: pg_dump -Fc while writers run; pg_restore into a new database; verify-store passes, every write acknowledged before the dump is there, the audit chain verifies', async (t) => {
    const source = await createTestDatabase();
    databases.push(source);
    const { proc, c, adminFile } = await startServer(source.url, true);
    const admin = JSON.parse(readFileSync(adminFile!, 'utf8'));
    const { info, at } = await serverInfo(c, proc.info.authority, admin);
    const writer = await provisionVaultWriter(c, info, at, VAULT);
    const token = await clientToken(c, info, writer);

    // latchkey backup refuses a PostgreSQL store and names pg_dump.
    const no = await runCli(['backup', '--storage', source.url, '--to', join(dir, 'pg.db')], {
      configDir: dir,
    });
    assert.equal(no.code, 1);
    assert.match(no.stderr, /pg_dump --format=custom/);
    assert.equal(
      no.stderr.includes(source.url),
      false,
      'the storage URL (it may hold a password) is not echoed',
    );

    const load = writeLoad(c, proc.info.port, token);
    await load.reached(ACKED_BEFORE);
    const cut = load.acked.length;
    const dump = join(dir, 'latchkey.dump');
    const t0 = Date.now();
    await run('pg_dump', ['--format=custom', `--file=${dump}`, `--dbname=${source.url}`]);
    const dumpMs = Date.now() - t0;
    const ackedDuring = load.acked.length - cut;
    await load.stop();
    assert.deepEqual(load.failures, []);
    // The documented check of a dump: pg_restore can read its table of contents.
    const list = await run('pg_restore', ['--list', dump]);
    assert.match(list.stdout, /TABLE DATA \S+ audit_events/);
    assert.match(list.stdout, /TABLE DATA \S+ secret_versions/);
    await proc.stop();

    const target = await createTestDatabase();
    databases.push(target);
    const t1 = Date.now();
    await run('pg_restore', ['--exit-on-error', '--no-owner', `--dbname=${target.url}`, dump]);
    const restoreMs = Date.now() - t1;
    const vs = await runCli(['verify-store', '--storage', target.url, '--root-key-file', rootKeyFile], {
      configDir: dir,
      timeoutMs: 120_000,
    });
    assert.equal(vs.code, 0, vs.stderr);
    assert.equal(vs.json.ok, true);
    assert.ok(vs.json.auditEvents > 0, 'vs.json.auditEvents > 0');
    const second = await startServer(target.url, false);
    const recoveryMs = Date.now() - t1;
    const { at: at2 } = await serverInfo(second.c, second.proc.info.authority, admin);
    const token2 = await clientToken(second.c, { ...info, authority: second.proc.info.authority }, writer);
    const events = await verifyRestored(
      second.c,
      second.proc.info.port,
      token2,
      at2,
      load.acked.slice(0, cut),
    );
    t.diagnostic(
      `postgres: acknowledged before the dump=${cut} during it=${ackedDuring}; pg_dump ${dumpMs} ms; pg_restore ${restoreMs} ms; verify-store ${vs.json.ms} ms; server start ${second.proc.readyMs} ms; pg_restore + verify-store + server ready ${recoveryMs} ms; audit events ${events}`,
    );

    // verify-store with another root key refuses, naming the key the store needs.
    const other = join(dir, 'keys', 'other-pg.key');
    writeFileSync(other, `${randomBytes(32).toString('base64')}\n`, { mode: 0o600 });
    const wrong = await runCli(['verify-store', '--storage', target.url, '--root-key-file', other], {
      configDir: dir,
    });
    assert.equal(wrong.code, 1);
    assert.match(wrong.stderr, new RegExp(`needs the root key with check value ${vs.json.rootKeyCheck}`));
  });
});
