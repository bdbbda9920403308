import { randomBytes } from 'node:crypto';
import type { SecretHasher } from '../crypto/hashing.js';
import type { Clock } from '../lib/clock.js';
import type { Database } from '../storage/port.js';
import type { Flash } from './layout.js';

/** The session cookie: `__Host-` binds it to this host, Path=/, Secure. */
export const SESSION_COOKIE = '__Host-latchkey-console';
const COOKIE_VALUE_RE = /^[A-Za-z0-9_-]{43}$/;
/** `last_seen_at` is written at most this often (the idle timeout is this precise). */
const TOUCH_EVERY_MS = 30_000;

export interface ConsoleSession {
  idHash: Buffer;
  tenantId: string;
  principalId: string;
  csrfSecret: Buffer;
  createdAt: number;
  lastSeenAt: number;
  expiresAt: number;
}

interface Row {
  id_hash: Buffer;
  tenant_id: string;
  principal_id: string;
  csrf_secret: Buffer;
  created_at: number;
  last_seen_at: number;
  expires_at: number;
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
      await db.run(
        `INSERT INTO console_sessions (id_hash, tenant_id, principal_id, csrf_secret, flash, created_at, last_seen_at, expires_at)
         VALUES ($1, $2, $3, $4, NULL, $5, $5, $6)`,
        [hashOf(value), tenantId, principalId, randomBytes(32), now, now + deps.maxSeconds * 1000],
      );
      return value;
    },

    /** Finds the session of a cookie value; refreshes its idle timer (at most every 30 s). */
    async find(value: string | undefined): Promise<SessionLookup> {
      if (!value || !COOKIE_VALUE_RE.test(value)) return { state: 'none' };
      const idHash = hashOf(value);
      const r = await db.get<Row>(
        'SELECT id_hash, tenant_id, principal_id, csrf_secret, created_at, last_seen_at, expires_at FROM console_sessions WHERE id_hash = $1',
        [idHash],
      );
      if (!r) return { state: 'none' };
      const now = clock.now();
      const session: ConsoleSession = {
        idHash,
        tenantId: r.tenant_id,
        principalId: r.principal_id,
        csrfSecret: Buffer.from(r.csrf_secret),
        createdAt: Number(r.created_at),
        lastSeenAt: Number(r.last_seen_at),
        expiresAt: Number(r.expires_at),
      };
      const reason =
        now >= session.expiresAt ? 'absolute' : now - session.lastSeenAt >= idleMs ? 'idle' : undefined;
      if (reason) {
        await db.run('DELETE FROM console_sessions WHERE id_hash = $1', [idHash]);
        return { state: 'expired', reason };
      }
      if (now - session.lastSeenAt >= TOUCH_EVERY_MS) {
        await db.run('UPDATE console_sessions SET last_seen_at = $1 WHERE id_hash = $2', [now, idHash]);
        session.lastSeenAt = now;
      }
      return { state: 'active', session };
    },

    async delete(idHash: Buffer): Promise<void> {
      await db.run('DELETE FROM console_sessions WHERE id_hash = $1', [idHash]);
    },

    /** Ends a browser's session by its cookie value (sign-in over an old session). */
    async deleteByValue(value: string | undefined): Promise<void> {
      if (value && COOKIE_VALUE_RE.test(value))
        await db.run('DELETE FROM console_sessions WHERE id_hash = $1', [hashOf(value)]);
    },

    /** One message for the next page (after a redirect). */
    async setFlash(idHash: Buffer, flash: Flash): Promise<void> {
      await db.run('UPDATE console_sessions SET flash = $1 WHERE id_hash = $2', [
        JSON.stringify({ kind: flash.kind, text: flash.text.slice(0, 500) }),
        idHash,
      ]);
    },

    async takeFlash(idHash: Buffer): Promise<Flash | undefined> {
      const r = await db.get<{ flash: string | null }>(
        'SELECT flash FROM console_sessions WHERE id_hash = $1',
        [idHash],
      );
      if (!r?.flash) return undefined;
      await db.run('UPDATE console_sessions SET flash = NULL WHERE id_hash = $1', [idHash]);
      try {
        const f = JSON.parse(r.flash) as Flash;
        return { kind: f.kind, text: String(f.text) };
      } catch {
        return undefined;
      }
    },

    /** Deletes expired sessions (idle or absolute). */
    async prune(): Promise<number> {
      const now = clock.now();
      const r = await db.run('DELETE FROM console_sessions WHERE expires_at <= $1 OR last_seen_at <= $2', [
        now,
        now - idleMs,
      ]);
      return r.changes;
    },
  };
}
export type ConsoleSessions = ReturnType<typeof createConsoleSessions>;
