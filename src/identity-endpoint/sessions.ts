import { createHash, randomBytes } from 'node:crypto';
import { lstatSync, readFileSync } from 'node:fs';
import { type Clock, systemClock } from '../lib/clock.js';
import { APP_NAME_RE } from '../management/identity-common.js';
import { type ProcessProbe, systemProcesses } from './session-processes.js';
import { writeFileAtomic } from './state-store.js';

/** A workload started with `latchkey run`: its secrets bind its requests to one app. */
export interface Session {
  /** The SHA-256 of the session id (hex): a handle that is not itself a secret. */
  key: string;
  app: string;
  /** The app name lower-cased (apps are found case-insensitively). */
  appKey: string;
  /**
   * The row id of the app the session was started for (`PlacedApp.rowId`): a session serves that
   * app only, not a later app of the same name. Null for a session of a version 1 file (or from a
   * server that sends no row ids): bound to the app of its name on first use (`bind`).
   */
  appRowId: string | null;
  /** The registering process (`latchkey run`): the session ends when it does. */
  pid: number | null;
  /** Epoch ms. */
  createdAt: number;
  /** Epoch ms after which the session is refused (sessions without a process to watch), or null. */
  expiresAt: number | null;
}

/** A new session with its two secrets, which the registry keeps only as digests. */
export interface NewSession {
  session: Session;
  /** 32 lower-case hex characters: the IMDS prefix `/s/{id}` (clients lower-case that URL). */
  id: string;
  /** The per-run `IDENTITY_HEADER` value (App Service protocol). */
  header: string;
}

/** Why a session file is refused at start-up, or a session cannot be recorded. */
export class SessionStoreError extends Error {
  constructor(
    readonly code: 'corrupt' | 'unsafe' | 'too_large' | 'too_many' | 'unwritable',
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'SessionStoreError';
  }
}

/** 2 since session 18 (sessions record their app's row id); version 1 files are still read. */
export const SESSION_FILE_VERSION = 2;
/** A session without a process to watch (no pid given) ends this long after its start. */
export const DEFAULT_UNBOUND_SESSION_MS = 24 * 3600_000;
const DEFAULT_MAX = 10_000;
/** Per record at most ~400 bytes of JSON: 10,000 sessions stay well under this. */
const MAX_FILE_BYTES = 8 * 1024 * 1024;

const HEX64 = /^[0-9a-f]{64}$/;
const ROW_ID_RE = /^[0-9A-Za-z-]{1,64}$/;
const MARK_RE = /^[\x21-\x7e]{1,128}$/;

// Domain-separated: a header's digest can never match an id's.
const digest = (label: 'id' | 'header', secret: string) =>
  createHash('sha256').update(`latchkey-session-${label}\0${secret}`).digest('hex');

interface Entry {
  session: Session;
  idHash: string;
  headerHash: string;
  /** What identified the process at registration (boot and start time), when the OS tells. */
  mark: string | null;
  /** The secrets seen for this entry (memo for the hot path; never persisted). */
  raw: string[];
}

interface StoredSession {
  idHash: string;
  headerHash: string;
  app: string;
  /** Version 2 on (absent in version 1 files: read as null). */
  appRowId: string | null;
  pid: number | null;
  mark: string | null;
  createdAt: number;
  expiresAt: number | null;
}

interface SessionFile {
  version: number;
  hostId: string;
  sessions: StoredSession[];
}

const isMs = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0;

/** The records of a session file, validated field by field (anything off: the file is corrupt). */
function parseFile(text: string, path: string): SessionFile {
  const corrupt = (why: string) =>
    new SessionStoreError('corrupt', `the session file ${path} is corrupt (${why})`);
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    throw corrupt('not JSON');
  }
  const f = raw as Partial<SessionFile> | null;
  if (!f || typeof f !== 'object' || Array.isArray(f)) throw corrupt('not an object');
  if (f.version !== SESSION_FILE_VERSION && f.version !== 1)
    throw corrupt(`unknown version ${String(f.version).slice(0, 16)}`);
  const v1 = f.version === 1;
  if (typeof f.hostId !== 'string' || f.hostId.length < 1 || f.hostId.length > 128)
    throw corrupt('no host id');
  if (!Array.isArray(f.sessions)) throw corrupt('no session list');
  const seen = new Set<string>();
  f.sessions.forEach((s: Partial<StoredSession> | null, i) => {
    const ok =
      !!s &&
      typeof s === 'object' &&
      typeof s.idHash === 'string' &&
      HEX64.test(s.idHash) &&
      typeof s.headerHash === 'string' &&
      HEX64.test(s.headerHash) &&
      typeof s.app === 'string' &&
      APP_NAME_RE.test(s.app) &&
      (v1
        ? !('appRowId' in s)
        : s.appRowId === null || (typeof s.appRowId === 'string' && ROW_ID_RE.test(s.appRowId))) &&
      (s.pid === null || (Number.isInteger(s.pid) && (s.pid as number) > 0 && (s.pid as number) < 2 ** 31)) &&
      (s.mark === null || (typeof s.mark === 'string' && MARK_RE.test(s.mark))) &&
      isMs(s.createdAt) &&
      (s.expiresAt === null || isMs(s.expiresAt)) &&
      Object.keys(s).length === (v1 ? 7 : 8);
    if (!ok) throw corrupt(`session ${i} is malformed`);
    const r = s as StoredSession;
    if (v1) r.appRowId = null;
    if (seen.has(r.idHash) || seen.has(r.headerHash)) throw corrupt(`session ${i} is a duplicate`);
    seen.add(r.idHash);
    seen.add(r.headerHash);
  });
  return f as SessionFile;
}

/**
 * Reads the session file, refusing one that is not ours to trust: not a
 * regular file (a symlink), owned by another user, open to group or others,
 * oversized, or corrupt. Absent: no sessions.
 */
function readSessionFile(path: string): SessionFile | undefined {
  let st: ReturnType<typeof lstatSync>;
  try {
    st = lstatSync(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new SessionStoreError('unsafe', `cannot read the session file ${path}`, { cause: e });
  }
  if (!st.isFile()) throw new SessionStoreError('unsafe', `the session file ${path} is not a regular file`);
  const uid = process.getuid?.();
  if (uid !== undefined && st.uid !== uid)
    throw new SessionStoreError(
      'unsafe',
      `the session file ${path} is owned by uid ${st.uid}, not by this user (uid ${uid})`,
    );
  if ((st.mode & 0o077) !== 0)
    throw new SessionStoreError(
      'unsafe',
      `the session file ${path} is open to other users (mode ${(st.mode & 0o777).toString(8)}; it must be 600)`,
    );
  if (st.size > MAX_FILE_BYTES)
    throw new SessionStoreError(
      'too_large',
      `the session file ${path} is larger than ${MAX_FILE_BYTES} bytes`,
    );
  return parseFile(readFileSync(path, 'utf8'), path);
}

export interface SessionRegistryOptions {
  /** The session file (`sessions.json` in the endpoint's 0700 state dir); none: memory only. */
  file?: string;
  /** The host the sessions belong to: a file written for another host's sessions is not reloaded. */
  hostId?: string;
  clock?: Clock;
  /** At most this many sessions at once (default 10,000). */
  max?: number;
  /** Lifetime of a session without a pid (default 24 h). */
  unboundMs?: number;
  processes?: ProcessProbe;
  /** A write of the session file failed after the change was made in memory (retried by `flush`). */
  onWriteError?(e: unknown): void;
}

/**
 * The endpoint's sessions, found by either secret, kept in the endpoint's
 * state dir so that a restarted endpoint still serves the workloads started
 * before it. Only SHA-256 digests of the secrets are kept, in memory and on
 * disk: the file gives nothing to present. Both secrets are random (128 and
 * 256 bits), so a lookup by digest in a hash table reveals nothing about a
 * stored secret through timing (matching a digest's prefix says nothing about
 * the secret's). A secret once matched is remembered (in memory only) for the
 * hot path, so a cache hit costs no digest.
 *
 * Sessions end when `latchkey run` ends them, when their process is gone
 * (`sweep`: pid and start time, so a reused pid does not keep a session
 * alive), or at `expiresAt` (sessions without a pid). Ended sessions leave the
 * file at once.
 */
export function createSessionRegistry(opts: SessionRegistryOptions = {}) {
  const clock = opts.clock ?? systemClock;
  const max = opts.max ?? DEFAULT_MAX;
  const unboundMs = opts.unboundMs ?? DEFAULT_UNBOUND_SESSION_MS;
  const processes = opts.processes ?? systemProcesses;
  const byIdHash = new Map<string, Entry>();
  const byHeaderHash = new Map<string, Entry>();
  const rawIds = new Map<string, Entry>();
  const rawHeaders = new Map<string, Entry>();
  let dirty = false;

  const insert = (e: Entry) => {
    byIdHash.set(e.idHash, e);
    byHeaderHash.set(e.headerHash, e);
  };
  const forget = (e: Entry) => {
    byIdHash.delete(e.idHash);
    byHeaderHash.delete(e.headerHash);
    for (const r of e.raw) {
      rawIds.delete(r);
      rawHeaders.delete(r);
    }
  };

  const write = () => {
    if (!opts.file) return;
    const file: SessionFile = {
      version: SESSION_FILE_VERSION,
      hostId: opts.hostId ?? '',
      sessions: [...byIdHash.values()].map((e) => ({
        idHash: e.idHash,
        headerHash: e.headerHash,
        app: e.session.app,
        appRowId: e.session.appRowId,
        pid: e.session.pid,
        mark: e.mark,
        createdAt: e.session.createdAt,
        expiresAt: e.session.expiresAt,
      })),
    };
    writeFileAtomic(opts.file, `${JSON.stringify(file)}\n`);
    dirty = false;
  };
  /** After a removal or a bind: the file follows, or is retried by `flush`. */
  const persistChange = () => {
    try {
      write();
    } catch (e) {
      dirty = true;
      opts.onWriteError?.(e);
    }
  };

  const expired = (e: Entry, now: number) => e.session.expiresAt !== null && e.session.expiresAt <= now;
  const ended = (e: Entry, now: number) =>
    expired(e, now) || (e.session.pid !== null && !processes.alive(e.session.pid, e.mark));

  const lookup = (memo: Map<string, Entry>, index: Map<string, Entry>, label: 'id' | 'header', s: string) => {
    let e = memo.get(s);
    if (!e) {
      if (s.length > 256) return undefined; // longer than any secret we issue
      e = index.get(digest(label, s));
      if (!e) return undefined;
      memo.set(s, e);
      e.raw.push(s);
    }
    if (expired(e, clock.now())) {
      forget(e);
      persistChange();
      return undefined;
    }
    return e;
  };

  // Reload: sessions of this host whose process still runs and that have not expired.
  const loaded = { kept: 0, dropped: 0 };
  if (opts.file) {
    const f = readSessionFile(opts.file);
    if (f) {
      const now = clock.now();
      const mine = f.hostId === (opts.hostId ?? '');
      if (f.sessions.length > max)
        throw new SessionStoreError(
          'too_many',
          `the session file ${opts.file} holds ${f.sessions.length} sessions (at most ${max})`,
        );
      for (const s of f.sessions) {
        const e: Entry = {
          session: {
            key: s.idHash,
            app: s.app,
            appKey: s.app.toLowerCase(),
            appRowId: s.appRowId,
            pid: s.pid,
            createdAt: s.createdAt,
            expiresAt: s.expiresAt,
          },
          idHash: s.idHash,
          headerHash: s.headerHash,
          mark: s.mark,
          raw: [],
        };
        if (mine && !ended(e, now)) insert(e);
      }
      loaded.kept = byIdHash.size;
      loaded.dropped = f.sessions.length - loaded.kept;
      if (loaded.dropped > 0) write();
    }
  }

  return {
    /** What the start-up found in the session file: sessions kept, and dropped (ended, expired, another host's). */
    loaded,
    /**
     * A new session for the app `app` (its row id `appRowId`, when the server sent one), recorded in
     * the file before it is returned (an error leaves no session behind).
     */
    create(app: string, pid: number | null, now = clock.now(), appRowId: string | null = null): NewSession {
      if (byIdHash.size >= max)
        throw new SessionStoreError('too_many', `too many sessions on this endpoint (${max})`);
      const id = randomBytes(16).toString('hex');
      const header = randomBytes(32).toString('base64url');
      const e: Entry = {
        session: {
          key: digest('id', id),
          app,
          appKey: app.toLowerCase(),
          appRowId,
          pid,
          createdAt: now,
          expiresAt: pid === null ? now + unboundMs : null,
        },
        idHash: digest('id', id),
        headerHash: digest('header', header),
        mark: pid === null ? null : processes.mark(pid),
        raw: [id, header],
      };
      insert(e);
      try {
        write();
      } catch (err) {
        forget(e);
        throw new SessionStoreError('unwritable', 'the session could not be recorded in the state dir', {
          cause: err,
        });
      }
      rawIds.set(id, e);
      rawHeaders.set(header, e);
      return { session: e.session, id, header };
    },
    byHeader: (header: string): Session | undefined =>
      lookup(rawHeaders, byHeaderHash, 'header', header)?.session,
    byId: (id: string): Session | undefined => lookup(rawIds, byIdHash, 'id', id)?.session,
    /** Ends a session by its id (what `latchkey run` does when its command ends). */
    delete(id: string): boolean {
      const e = lookup(rawIds, byIdHash, 'id', id);
      if (!e) return false;
      forget(e);
      persistChange();
      return true;
    },
    /**
     * Binds a session that has no app row id yet (a version 1 file's) to the app of its name, as
     * the endpoint finds it on first use; persisted at once (retried by `flush`).
     */
    bind(session: Session, appRowId: string): void {
      if (session.appRowId !== null || !byIdHash.has(session.key)) return;
      session.appRowId = appRowId;
      persistChange();
    },
    /**
     * Ends the sessions `gone` picks (those of an app no longer on this host): `latchkey run` hears
     * `unknown_session` and stops its command. Returns how many ended.
     */
    endWhere(gone: (s: Session) => boolean): number {
      let n = 0;
      for (const e of [...byIdHash.values()]) {
        if (!gone(e.session)) continue;
        forget(e);
        n++;
      }
      if (n > 0) persistChange();
      return n;
    },
    /** Drops sessions whose process has exited (or whose pid now names another process) and expired ones. */
    sweep(): number {
      const now = clock.now();
      let n = 0;
      for (const e of [...byIdHash.values()]) {
        if (!ended(e, now)) continue;
        forget(e);
        n++;
      }
      if (n > 0 || dirty) persistChange();
      return n;
    },
    /** Retries a failed write of the file (after a removal); true when the file is current. */
    flush(): boolean {
      if (dirty) persistChange();
      return !dirty;
    },
    list: (): Session[] => [...byIdHash.values()].map((e) => e.session),
    get size(): number {
      return byIdHash.size;
    },
  };
}
export type SessionRegistry = ReturnType<typeof createSessionRegistry>;
