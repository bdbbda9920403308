import { LatchkeyError } from '../errors/index.js';

/**
 * Driver errors as domain errors. The SQLite and PostgreSQL adapters pass every
 * failure of a statement through `toStorageError`, so code above the storage port
 * (domain services, the HTTP edge) sees `LatchkeyError`s and never a driver's code:
 *
 * | fault | SQLite | PostgreSQL | error |
 * |---|---|---|---|
 * | unique violation | `SQLITE_CONSTRAINT_UNIQUE`, `_PRIMARYKEY` | `23505` | `Conflict` 409 |
 * | busy / locked | `SQLITE_BUSY*`, `SQLITE_LOCKED*` | `55P03`, `40001`, `40P01` | `ServiceUnavailable` 503, `Retry-After: 1` |
 * | connection lost | — | `08xxx`, `57P0x`, `53300`, socket errors (also all of an `AggregateError`'s) | `ServiceUnavailable` 503, `Retry-After: 1` |
 * | NUL (U+0000) in a text parameter | refused before the statement (`refuseNulText`) | same; also `22021`, `22P05` | `BadParameter` 400 |
 * | transaction aborted earlier | — | `25P02`; a `COMMIT` answered with `ROLLBACK` (postgres.ts) | `ServiceUnavailable` 503, `Retry-After: 1` |
 * | disk full | `SQLITE_FULL`, `ENOSPC`, `EDQUOT` | `53100` | `StorageFull` 503, `Retry-After: 30` |
 * | cannot write | `SQLITE_IOERR*`, `SQLITE_READONLY*`, `EIO`, `EROFS` | — | `StorageFull` 503, `Retry-After: 30` |
 *
 * Anything else is passed through unchanged (the edge answers it as a plain 500).
 */
export type StorageFault = 'unique' | 'busy' | 'unavailable' | 'full' | 'rolledBack' | 'badText';

/** SQLSTATEs of a server that is going away, restarting or refusing connections for now. */
const PG_UNAVAILABLE_STATES = new Set(['57P01', '57P02', '57P03', '53300']);
/** SQLSTATEs of a lock that could not be had now, or a transaction the server chose to abort: retry. */
const PG_BUSY_STATES = new Set(['55P03', '40001', '40P01']);
/** Socket errors of a connection that broke or could not be made. */
const UNAVAILABLE_ERRNOS = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EAI_AGAIN',
]);
/** errno codes of a file system that refuses to write (Node's fs, or SQLite's own message). */
const FULL_ERRNOS = new Set(['ENOSPC', 'EDQUOT']);
const WRITE_ERRNOS = new Set(['EIO', 'EROFS']);

const fields = (e: unknown): { code: string; message: string } => {
  const err = e as { code?: unknown; message?: unknown } | null;
  if (!err || typeof err !== 'object') return { code: '', message: '' };
  return {
    code: typeof err.code === 'string' ? err.code : '',
    message: typeof err.message === 'string' ? err.message : '',
  };
};

/**
 * True for errors that mean "the database is not reachable now" (a restart, a failover, a network
 * break), as opposed to errors of the statement itself. Such an error is retryable by the client.
 */
export function isConnectionError(e: unknown): boolean {
  const { code, message } = fields(e);
  if (code.startsWith('08') || PG_UNAVAILABLE_STATES.has(code) || UNAVAILABLE_ERRNOS.has(code)) return true;
  // A connect that tried several addresses (happy eyeballs: ::1 and 127.0.0.1) fails with an
  // AggregateError of each attempt's error, whose own `code` and message may be empty.
  if (e instanceof AggregateError && e.errors.length > 0 && e.errors.every(isConnectionError)) return true;
  return /^(Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error|Client was closed)/.test(
    message,
  );
}

/** What kind of storage fault a driver error is, if it is one the domain has a name for. */
export function classifyStorageFault(e: unknown): StorageFault | undefined {
  const { code, message } = fields(e);
  if (code === '23505' || code === 'SQLITE_CONSTRAINT_UNIQUE' || code === 'SQLITE_CONSTRAINT_PRIMARYKEY')
    return 'unique';
  if (code === '53100' || code === 'SQLITE_FULL' || FULL_ERRNOS.has(code)) return 'full';
  if (code.startsWith('SQLITE_IOERR') || code.startsWith('SQLITE_READONLY') || WRITE_ERRNOS.has(code))
    return 'full';
  if (/database or disk is full/i.test(message)) return 'full';
  if (code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED') || PG_BUSY_STATES.has(code))
    return 'busy';
  if (isConnectionError(e)) return 'unavailable';
  // in_failed_sql_transaction: a statement after one that failed in the same transaction.
  if (code === '25P02') return 'rolledBack';
  // character_not_in_repertoire / untranslatable_character: NUL in text (refuseNulText stops it first).
  if (code === '22021' || code === '22P05') return 'badText';
  return undefined;
}

const UNIQUE_MESSAGE = 'The object was created or changed concurrently; retry.';
/** Conflicts made here from a unique violation (the OAuth edge words them its own way). */
const concurrentConflicts = new WeakSet<LatchkeyError>();

/** A unique-constraint race between two concurrent writes: a conflict the client may retry. */
export const concurrentWriteConflict = (cause: unknown): LatchkeyError => {
  const e = new LatchkeyError('Conflict', UNIQUE_MESSAGE, { cause });
  concurrentConflicts.add(e);
  return e;
};

/** True for the `Conflict` a unique violation became (not for a domain's own `Conflict`). */
export const isConcurrentWriteConflict = (e: unknown): e is LatchkeyError =>
  e instanceof LatchkeyError && concurrentConflicts.has(e);

/** What a request sees while the database is away: 503 with Retry-After (the edge shapes it). */
export const storageUnavailable = (cause: unknown): LatchkeyError =>
  new LatchkeyError('ServiceUnavailable', 'The database is not reachable at the moment; retry shortly.', {
    headers: { 'retry-after': '1' },
    cause,
  });

/** A lock held by another writer for longer than the busy timeout. */
export const storageBusy = (cause: unknown): LatchkeyError =>
  new LatchkeyError('ServiceUnavailable', 'The database is busy at the moment; retry shortly.', {
    headers: { 'retry-after': '1' },
    cause,
  });

/**
 * A transaction the database aborted along the way: one of its statements failed and the code went
 * on (the failure was caught, or nobody awaited it), so PostgreSQL refuses every later statement
 * (25P02) and answers `COMMIT` with `ROLLBACK`. Nothing of the request was written, so it may be
 * retried, as a serialization failure may; `cause` is the statement's own error.
 */
export const storageRolledBack = (cause: unknown): LatchkeyError =>
  new LatchkeyError(
    'ServiceUnavailable',
    'The database rolled the transaction back; nothing of the request was written. Retry shortly.',
    { headers: { 'retry-after': '1' }, cause },
  );

/**
 * A write refused because the store has no room (or cannot write at all): nothing of the
 * request was written. Retry-After is long enough for an operator to free space.
 */
export const storageFull = (cause: unknown): LatchkeyError =>
  new LatchkeyError(
    'StorageFull',
    'The server cannot write to its storage at the moment (it is full); the request was not carried out. Retry later.',
    { headers: { 'retry-after': '30' }, cause },
  );

/**
 * Refuses a text parameter holding U+0000 (NUL), before the statement runs, in both adapters.
 * PostgreSQL cannot keep NUL in text at all (`22021 invalid byte sequence`, which reached clients
 * as a 500: a secret's contentType, a credential's description, a token request's username), while
 * SQLite kept it: now neither stores nor looks up such text, and the client learns why (400).
 * Values that may hold any byte go in as `Buffer`s (ciphertexts) or escaped (JSON), never as raw text.
 */
export function refuseNulText(params: readonly unknown[]): void {
  for (const p of params)
    if (typeof p === 'string' && p.includes('\u0000'))
      throw new LatchkeyError(
        'BadParameter',
        'The request holds a NUL character (U+0000), which is not allowed.',
      );
}

/** The domain error for a driver error, or the error itself when it is none of the known faults. */
export function toStorageError(e: unknown): unknown {
  if (e instanceof LatchkeyError) return e;
  switch (classifyStorageFault(e)) {
    case 'unique':
      return concurrentWriteConflict(e);
    case 'full':
      return storageFull(e);
    case 'busy':
      return storageBusy(e);
    case 'unavailable':
      return storageUnavailable(e);
    case 'rolledBack':
      return storageRolledBack(e);
    case 'badText':
      return new LatchkeyError('BadParameter', 'The request holds text the database cannot store.', {
        cause: e,
      });
    default:
      return e;
  }
}

/** True for the error of a write refused for lack of space (the store then reports itself unwritable). */
export const isStorageFull = (e: unknown): boolean => e instanceof LatchkeyError && e.code === 'StorageFull';
