import { randomBytes } from 'node:crypto';
import {
  chmodSync,
  closeSync,
  copyFileSync,
  existsSync,
  fchmodSync,
  fsyncSync,
  linkSync,
  mkdirSync,
  openSync,
  renameSync,
  rmSync,
  statSync,
} from 'node:fs';
import { basename, dirname, join } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';

/**
 * File-level backup and restore of a SQLite store (driver work only; what a
 * store must hold to be served is checked in src/server/store-check.ts).
 *
 * A backup is `VACUUM INTO`: one read transaction, so the copy is the store as
 * of one instant, taken beside a running server (WAL lets a reader work while
 * the server writes; the server is never blocked). The backup API of SQLite
 * (`sqlite3_backup_step`, better-sqlite3's `db.backup`) restarts whenever
 * another process writes to the source between its steps, so under a steady
 * write load it may never finish; `VACUUM INTO` does not restart.
 */

/** What a SQLite file records about itself, read without the root key. */
export interface SqliteFileFacts {
  /** `PRAGMA integrity_check`: 'ok' or the first problems SQLite found. */
  integrity: string;
  /** The root key check value stored by the first server start (a check value, never the key). */
  rootKeyCheck: string | null;
  /** Applied migrations (schema_migrations.version), ascending. */
  migrations: number[];
  /** Audit events in the file. */
  auditEvents: number;
}

const facts = (db: BetterSqlite3.Database): SqliteFileFacts => {
  const integrity = (db.pragma('integrity_check', { simple: false }) as { integrity_check: string }[])
    .slice(0, 5)
    .map((r) => r.integrity_check)
    .join('; ');
  const has = (table: string) =>
    db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?").get(table) !== undefined;
  const rootKeyCheck = has('meta')
    ? ((
        db.prepare("SELECT value FROM meta WHERE key = 'root_key_check'").get() as
          | { value: string }
          | undefined
      )?.value ?? null)
    : null;
  const migrations = has('schema_migrations')
    ? (
        db.prepare('SELECT version FROM schema_migrations ORDER BY version').all() as { version: number }[]
      ).map((r) => Number(r.version))
    : [];
  const auditEvents = has('audit_events')
    ? Number((db.prepare('SELECT COUNT(*) AS n FROM audit_events').get() as { n: number }).n)
    : 0;
  return { integrity, rootKeyCheck, migrations, auditEvents };
};

/** Reads a SQLite file's facts read-only (the file is not changed). Throws when it is not a SQLite database. */
export function inspectSqliteFile(path: string): SqliteFileFacts {
  const db = new BetterSqlite3(path, { readonly: true, fileMustExist: true });
  try {
    return facts(db);
  } finally {
    db.close();
  }
}

function fsyncPath(path: string, flags: 'r' | 'r+'): void {
  const fd = openSync(path, flags);
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** fsync a directory, so a rename or a new name in it survives a power loss. */
const fsyncDir = (dir: string): void => fsyncPath(dir, 'r');
const fsyncFile = (path: string): void => fsyncPath(path, 'r+');

/** A new, empty 0600 file beside `path` (same directory, so a rename onto `path` is atomic). */
function privateTempBeside(path: string, tag: string): string {
  const tmp = join(dirname(path), `.${basename(path)}.${tag}-${randomBytes(6).toString('hex')}`);
  const fd = openSync(tmp, 'wx', 0o600);
  fchmodSync(fd, 0o600);
  closeSync(fd);
  return tmp;
}

export interface SqliteBackupResult extends SqliteFileFacts {
  bytes: number;
  ms: number;
}

/**
 * Copies the store at `source` into `dest` as of one instant, while a server
 * may be serving it: `VACUUM INTO` a 0600 temp file beside `dest`, checked
 * (`integrity_check`), fsynced, then renamed into place and the directory
 * fsynced. `dest` is never half-written; an existing `dest` is refused unless
 * `overwrite`. The copy is one self-contained file (rollback journal, no -wal).
 */
export function backupSqlite(
  source: string,
  dest: string,
  opts: { overwrite?: boolean } = {},
): SqliteBackupResult {
  const t0 = Date.now();
  if (!existsSync(source)) throw new Error(`no SQLite store at ${source}`);
  if (existsSync(dest) && !opts.overwrite)
    throw new Error(`${dest} already exists (give --force to replace it)`);
  const tmp = privateTempBeside(dest, 'backup');
  try {
    const src = new BetterSqlite3(source, { readonly: true, fileMustExist: true });
    try {
      src.pragma('busy_timeout = 5000');
      src.prepare('VACUUM INTO ?').run(tmp);
    } finally {
      src.close();
    }
    const f = inspectSqliteFile(tmp);
    if (f.integrity !== 'ok') throw new Error(`the backup copy failed its integrity check: ${f.integrity}`);
    fsyncFile(tmp);
    if (opts.overwrite) renameSync(tmp, dest);
    else {
      // link() never replaces: a file that appeared at dest meanwhile is kept, and this fails.
      linkSync(tmp, dest);
      rmSync(tmp);
    }
    fsyncDir(dirname(dest));
    return { ...f, bytes: statSync(dest).size, ms: Date.now() - t0 };
  } catch (e) {
    rmSync(tmp, { force: true });
    throw e;
  }
}

/**
 * True when some process holds the store at `path` open (a running server):
 * an exclusive lock cannot be had. A store no one holds is left as it was
 * (a -wal left by a crash is folded into it, as any next opener would).
 */
export function sqliteStoreInUse(path: string): boolean {
  if (!existsSync(path)) return false;
  const db = new BetterSqlite3(path, { fileMustExist: true });
  try {
    db.pragma('busy_timeout = 0');
    db.pragma('locking_mode = EXCLUSIVE');
    db.exec('BEGIN EXCLUSIVE');
    db.exec('ROLLBACK');
    return false;
  } catch (e) {
    if ((e as { code?: string }).code?.startsWith('SQLITE_BUSY')) return true;
    throw e;
  } finally {
    db.close();
  }
}

/**
 * Copies a backup file to a new 0600 temp file in the store's directory
 * (created 0700 if missing), ready to be checked, migrated and installed.
 */
export function stageSqliteRestore(backup: string, target: string): string {
  mkdirSync(dirname(target), { recursive: true, mode: 0o700 });
  const tmp = privateTempBeside(target, 'restore');
  try {
    copyFileSync(backup, tmp); // into the existing 0600 file: the copy keeps that mode
    chmodSync(tmp, 0o600);
    return tmp;
  } catch (e) {
    rmSync(tmp, { force: true });
    throw e;
  }
}

/**
 * Puts the staged file in place as the store at `target`. An existing store
 * (its database, -wal and -shm together) is moved aside to
 * `<target>.replaced-<time>` rather than deleted, and that name returned.
 */
export function installSqliteStore(staged: string, target: string, now = new Date()): string | undefined {
  fsyncFile(staged);
  let aside: string | undefined;
  if (existsSync(target)) {
    aside = `${target}.replaced-${now.toISOString().replace(/[:.]/g, '-')}`;
    // The -wal first: a database never sits next to a -wal that is not its own.
    for (const suffix of ['-wal', '-shm']) {
      if (existsSync(`${target}${suffix}`)) renameSync(`${target}${suffix}`, `${aside}${suffix}`);
    }
    renameSync(target, aside);
  }
  for (const suffix of ['-wal', '-shm']) rmSync(`${target}${suffix}`, { force: true });
  renameSync(staged, target);
  fsyncDir(dirname(target));
  return aside;
}
