import { randomBytes } from 'node:crypto';
import type { SecretHasher } from '../crypto/hashing.js';
import type { Clock } from '../lib/clock.js';
import type { Services } from '../server/services.js';
import { type StoredConsoleSession, sessionStore } from '../storage/console/session-store.js';
import type { Database } from '../storage/port.js';
import type { Flash } from './layout.js';

/** The session cookie: `__Host-` binds it to this host, Path=/, Secure. */
export const SESSION_COOKIE = '__Host-latchkey-console';
const COOKIE_VALUE_RE = /^[A-Za-z0-9_-]{43}$/;
/** `last_seen_at` is written at most this often (the idle timeout is this precise). */
const TOUCH_EVERY_MS = 30_000;

export interface ConsoleSession extends StoredConsoleSession {
  idHash: Buffer;
}

export type SessionLookup =
  | { state: 'none' }
  | { state: 'expired'; reason: 'idle' | 'absolute' }
  | { state: 'active'; session: ConsoleSession };

/**
 * Server-side console sessions. The cookie holds 32 random bytes; the table
 * holds only their HMAC, the tenant and user, the per-session CSRF secret and
 * the two limits: idle (no request for `idleSeconds`) and absolute
 * (`maxSeconds` after sign-in). An expired session is deleted when seen and by
 * the prune job.
 */
export function createConsoleSessions(deps: {
  db: Database;
  clock: Clock;
  hasher: SecretHasher;
  idleSeconds: number;
  maxSeconds: number;
}) {
  const { db, clock, hasher } = deps;
  const idleMs = deps.idleSeconds * 1000;
  const hashOf = (value: string) => hasher.hash(`console-session:${value}`);

  return {
    idleSeconds: deps.idleSeconds,
    maxSeconds: deps.maxSeconds,

    /** Starts a session; returns the cookie value (shown to the browser only). */
    async create(tenantId: string, principalId: string): Promise<string> {
      const value = randomBytes(32).toString('base64url');
      const now = clock.now();
      await sessionStore.insert(db, {
        idHash: hashOf(value),
        tenantId,
        principalId,
        csrfSecret: randomBytes(32),
        now,
        expiresAt: now + deps.maxSeconds * 1000,
      });
      return value;
    },

    /** Finds the session of a cookie value; refreshes its idle timer (at most every 30 s). */
    async find(value: string | undefined): Promise<SessionLookup> {
      if (!value || !COOKIE_VALUE_RE.test(value)) return { state: 'none' };
      const idHash = hashOf(value);
      const r = await sessionStore.find(db, idHash);
      if (!r) return { state: 'none' };
      const now = clock.now();
      const session: ConsoleSession = { idHash, ...r };
      const reason =
        now >= session.expiresAt ? 'absolute' : now - session.lastSeenAt >= idleMs ? 'idle' : undefined;
      if (reason) {
        await sessionStore.delete(db, idHash);
        return { state: 'expired', reason };
      }
      if (now - session.lastSeenAt >= TOUCH_EVERY_MS) {
        await sessionStore.touch(db, idHash, now);
        session.lastSeenAt = now;
      }
      return { state: 'active', session };
    },

    async delete(idHash: Buffer): Promise<void> {
      await sessionStore.delete(db, idHash);
    },

    /** Ends a browser's session by its cookie value (sign-in over an old session). */
    async deleteByValue(value: string | undefined): Promise<void> {
      if (value && COOKIE_VALUE_RE.test(value)) await sessionStore.delete(db, hashOf(value));
    },

    /** One message for the next page (after a redirect). */
    async setFlash(idHash: Buffer, flash: Flash): Promise<void> {
      await sessionStore.setFlash(
        db,
        idHash,
        JSON.stringify({ kind: flash.kind, text: flash.text.slice(0, 500) }),
      );
    },

    async takeFlash(idHash: Buffer): Promise<Flash | undefined> {
      const flash = await sessionStore.flash(db, idHash);
      if (!flash) return undefined;
      await sessionStore.setFlash(db, idHash, null);
      try {
        const f = JSON.parse(flash) as Flash;
        return { kind: f.kind, text: String(f.text) };
      } catch {
        return undefined;
      }
    },

    /** Deletes expired sessions (idle or absolute). */
    async prune(): Promise<number> {
      const now = clock.now();
      return sessionStore.prune(db, now, now - idleMs);
    },
  };
}
export type ConsoleSessions = ReturnType<typeof createConsoleSessions>;

/**
 * The console's server-side sessions, and the job that prunes expired ones (registered once, before
 * the background jobs start: src/server/console-app.ts calls this at start, the console's modules
 * load on its first request).
 */
export function consoleSessionsOf(s: Services): ConsoleSessions {
  const sessions = createConsoleSessions({
    db: s.db,
    clock: s.clock,
    hasher: s.hasher,
    idleSeconds: s.config.limits.consoleSessionIdleSeconds,
    maxSeconds: s.config.limits.consoleSessionMaxSeconds,
  });
  if (!s.jobs.names().includes('console-session-prune'))
    s.jobs.add({
      name: 'console-session-prune',
      intervalMs: 300_000,
      run: async () => void (await sessions.prune()),
    });
  return sessions;
}
