import { existsSync, readFileSync, rmSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import { Command } from 'commander';
import { parseRootKey, type RootKey } from '../../crypto/root-key.js';
import { ctx, print } from '../context.js';
import { CliError } from '../errors.js';

/**
 * `latchkey backup`, `latchkey restore` and `latchkey verify-store`: whole-store
 * backup of a SQLite store (online), restore into a stopped store, and the check
 * a restored store (SQLite or PostgreSQL) must pass before it is served.
 * The root key is never in a backup; it is kept apart and given to restore.
 * See docs/operations.md.
 */

const PG_BACKUP =
  'latchkey backup copies SQLite stores; back up a PostgreSQL store with pg_dump: pg_dump --format=custom --file=latchkey.dump "$LATCHKEY_STORAGE_URL" (check it with pg_restore --list latchkey.dump; see docs/operations.md)';
const PG_RESTORE =
  'latchkey restore installs SQLite backups; restore a PostgreSQL dump with pg_restore into a new, empty database: pg_restore --exit-on-error --no-owner --dbname=NEW_DATABASE_URL latchkey.dump, then check it with latchkey verify-store --storage NEW_DATABASE_URL (see docs/operations.md)';

const storageOption = '--storage <url>';
const storageHelp = 'sqlite:/path/to/db or postgres://...; env LATCHKEY_STORAGE_URL';
const rootKeyOption = '--root-key-file <file>';
const rootKeyHelp = 'the root key the store was made with (mode 0600); or env LATCHKEY_ROOT_KEY';

type Store = { kind: 'sqlite'; path: string } | { kind: 'postgres'; url: string };

function storeFrom(flag: string | undefined): Store {
  const url = flag ?? process.env.LATCHKEY_STORAGE_URL;
  if (!url)
    throw new CliError('--storage (or LATCHKEY_STORAGE_URL) is required: sqlite:/path/latchkey.db', 2);
  if (url.startsWith('postgres://') || url.startsWith('postgresql://')) return { kind: 'postgres', url };
  if (!url.startsWith('sqlite:') || url === 'sqlite::memory:' || url.length > 4096)
    throw new CliError('--storage must be sqlite:/path/to/db or postgres://...', 2);
  return { kind: 'sqlite', path: resolve(url.slice('sqlite:'.length)) };
}

/** The root key from --root-key-file (owner-only) or LATCHKEY_ROOT_KEY, as `latchkey server` takes it. */
export function rootKeyFrom(file: string | undefined): RootKey {
  let text = process.env.LATCHKEY_ROOT_KEY;
  if (file) {
    if (!existsSync(file)) throw new CliError(`root key file not found: ${file}`);
    if ((statSync(file).mode & 0o077) !== 0)
      throw new CliError(`${file} must not be readable by group or others (chmod 600)`);
    if (statSync(file).size > 1024) throw new CliError(`${file} is not a root key file`);
    text = readFileSync(file, 'utf8');
  }
  if (!text) throw new CliError('a root key is required: --root-key-file FILE or LATCHKEY_ROOT_KEY', 2);
  try {
    return parseRootKey(text);
  } catch (e) {
    throw new CliError((e as Error).message);
  }
}

/** `latchkey backup --to FILE`: a consistent copy of a SQLite store while its server runs. */
export function backupCommand(): Command {
  return new Command('backup')
    .description('Back up a whole SQLite store into one file while the server runs (no root key needed)')
    .requiredOption('--to <file>', 'the backup file to create (mode 0600; refuses to overwrite)')
    .option(storageOption, storageHelp)
    .option('--force', 'replace an existing backup file')
    .action(async (o: { to: string; storage?: string; force?: boolean }, cmd: Command) => {
      const store = storeFrom(o.storage);
      if (store.kind === 'postgres') throw new CliError(PG_BACKUP);
      const { backupSqlite } = await import('../../storage/sqlite-backup.js');
      const to = resolve(o.to);
      if (to === store.path) throw new CliError('--to must not be the store itself');
      const takenAt = new Date().toISOString();
      let r: ReturnType<typeof backupSqlite>;
      try {
        r = backupSqlite(store.path, to, { overwrite: o.force === true });
      } catch (e) {
        throw new CliError(`backup failed: ${(e as Error).message}`);
      }
      const schemaVersion = r.migrations.length ? Math.max(...r.migrations) : 0;
      process.stderr.write(
        `Backed up ${store.path} to ${to} (${r.bytes} bytes, ${r.ms} ms, integrity ok). ` +
          `It does not hold the root key: restoring it needs the key with check value ${r.rootKeyCheck ?? '(none recorded yet)'}, kept apart.\n`,
      );
      print(ctx(cmd), {
        file: to,
        takenAt,
        bytes: r.bytes,
        ms: r.ms,
        integrity: r.integrity,
        schemaVersion,
        rootKeyCheck: r.rootKeyCheck,
        auditEvents: r.auditEvents,
      });
    });
}

/** `latchkey restore --from FILE`: installs a backup as the (stopped) store, after checking it. */
export function restoreCommand(): Command {
  return new Command('restore')
    .description('Restore a SQLite store from a `latchkey backup` file (the server must be stopped)')
    .requiredOption('--from <file>', 'the backup file')
    .option(storageOption, storageHelp)
    .option(rootKeyOption, rootKeyHelp)
    .option('--force', 'replace an existing store (it is moved aside to <db>.replaced-<time>, not deleted)')
    .action(
      async (o: { from: string; storage?: string; rootKeyFile?: string; force?: boolean }, cmd: Command) => {
        const store = storeFrom(o.storage);
        if (store.kind === 'postgres') throw new CliError(PG_RESTORE);
        const rootKey = rootKeyFrom(o.rootKeyFile);
        const t0 = Date.now();
        const from = resolve(o.from);
        if (!existsSync(from)) throw new CliError(`backup file not found: ${from}`);
        if (from === store.path) throw new CliError('--from must not be the store itself');
        const { inspectSqliteFile, sqliteStoreInUse, stageSqliteRestore, installSqliteStore } = await import(
          '../../storage/sqlite-backup.js'
        );
        const { checkStore, KNOWN_SCHEMA_VERSION, sealPendingAuditHead } = await import(
          '../../server/store-check.js'
        );
        // 1. The backup file itself, read-only: a SQLite file, intact, not newer, made with this key.
        let facts: ReturnType<typeof inspectSqliteFile>;
        try {
          facts = inspectSqliteFile(from);
        } catch (e) {
          throw new CliError(`${from} is not a readable SQLite backup: ${(e as Error).message}`);
        }
        if (facts.integrity !== 'ok')
          throw new CliError(`the backup failed its integrity check: ${facts.integrity.slice(0, 500)}`);
        const backupVersion = facts.migrations.length ? Math.max(...facts.migrations) : 0;
        if (backupVersion > KNOWN_SCHEMA_VERSION)
          throw new CliError(
            `the backup has schema version ${backupVersion}, newer than this Latchkey knows (${KNOWN_SCHEMA_VERSION}): restore it with the Latchkey version that made it`,
          );
        const given = rootKey.checkValue();
        if (facts.rootKeyCheck !== null && facts.rootKeyCheck !== given)
          throw new CliError(
            `the backup needs the root key with check value ${facts.rootKeyCheck}; the root key given has ${given}. Nothing was changed.`,
          );
        // 2. The target: no server may hold it; an existing store is replaced only with --force.
        const exists = existsSync(store.path) || existsSync(`${store.path}-wal`);
        if (exists && sqliteStoreInUse(store.path))
          throw new CliError(
            `${store.path} is in use (a running latchkey server?): stop every process serving it, then restore`,
          );
        if (exists && !o.force)
          throw new CliError(
            `${store.path} already exists; give --force to replace it (it is moved aside, not deleted)`,
          );
        // 3. A private copy beside the store: migrated forward, checked with the root key, then swapped in.
        const staged = stageSqliteRestore(from, store.path);
        const discard = () => {
          for (const s of ['', '-wal', '-shm', '-journal']) rmSync(`${staged}${s}`, { force: true });
        };
        let check: Awaited<ReturnType<typeof checkStore>>;
        try {
          const { openDatabase } = await import('../../storage/open.js');
          const db = await openDatabase(`sqlite:${staged}`);
          try {
            // An older backup (before migration 0012) has an unsealed head: seal it as a start would.
            if (facts.rootKeyCheck === given) await sealPendingAuditHead(db, rootKey);
            check = await checkStore(db, rootKey);
          } finally {
            await db.close();
          }
        } catch (e) {
          discard();
          throw new CliError(`the backup cannot be restored: ${(e as Error).message}`);
        }
        if (!check.ok) {
          discard();
          throw new CliError(
            `the backup cannot be restored: ${check.problems.join('; ')}. Nothing was changed.`,
          );
        }
        let aside: string | undefined;
        try {
          aside = installSqliteStore(staged, store.path);
        } catch (e) {
          discard();
          throw new CliError(`could not put the restored store in place: ${(e as Error).message}`);
        }
        const ms = Date.now() - t0;
        process.stderr.write(
          `Restored ${from} into ${store.path} in ${ms} ms (schema ${backupVersion}${check.schemaVersion > backupVersion ? ` migrated to ${check.schemaVersion}` : ''}, ` +
            `root key ${given} matches, audit chain of ${check.auditEvents} events verifies).` +
            `${aside ? ` The store it replaced is at ${aside}.` : ''} Start the server on it now.\n`,
        );
        print(ctx(cmd), {
          store: store.path,
          from,
          ms,
          replaced: aside ?? null,
          backupSchemaVersion: backupVersion,
          schemaVersion: check.schemaVersion,
          rootKeyCheck: given,
          auditEvents: check.auditEvents,
          auditHead: check.auditHead,
        });
      },
    );
}

/** `latchkey verify-store`: can this store be served with this root key? (after pg_restore, or to test a backup) */
export function verifyStoreCommand(): Command {
  return new Command('verify-store')
    .description(
      'Check a store or a backup file without changing it: schema, root key, data keys, audit chain',
    )
    .option(storageOption, storageHelp)
    .option(rootKeyOption, rootKeyHelp)
    .action(async (o: { storage?: string; rootKeyFile?: string }, cmd: Command) => {
      const store = storeFrom(o.storage);
      const rootKey = rootKeyFrom(o.rootKeyFile);
      const t0 = Date.now();
      const { checkStore } = await import('../../server/store-check.js');
      let db: import('../../storage/port.js').Database;
      try {
        if (store.kind === 'sqlite') {
          if (!existsSync(store.path)) throw new Error(`no SQLite store at ${store.path}`);
          const { openSqlite } = await import('../../storage/sqlite.js');
          db = openSqlite(store.path, { readonly: true });
        } else {
          const { openPostgres } = await import('../../storage/postgres.js');
          db = openPostgres(store.url, { max: 2, applicationName: 'latchkey verify-store' });
        }
      } catch (e) {
        throw new CliError(`cannot open the store: ${(e as Error).message}`);
      }
      let check: Awaited<ReturnType<typeof checkStore>>;
      try {
        check = await checkStore(db, rootKey);
      } catch (e) {
        throw new CliError(`cannot check the store: ${(e as Error).message}`);
      } finally {
        await db.close();
      }
      print(ctx(cmd), { ...check, ms: Date.now() - t0 });
      if (!check.ok) throw new CliError(`the store does not pass: ${check.problems.join('; ')}`);
    });
}
