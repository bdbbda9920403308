import type { Queryable } from '../port.js';

/** A console session as stored (migration 0008): only the HMAC of the cookie value is kept. */
export interface StoredConsoleSession {
  tenantId: string;
  principalId: string;
  csrfSecret: Buffer;
  createdAt: number;
  lastSeenAt: number;
  expiresAt: number;
}

interface Row {
  tenant_id: string;
  principal_id: string;
  csrf_secret: Buffer;
  created_at: number;
  last_seen_at: number;
  expires_at: number;
}

/** The SQL behind console sessions (src/console/session.ts). */
export const sessionStore = {
  async insert(
    q: Queryable,
    s: {
      idHash: Buffer;
      tenantId: string;
      principalId: string;
      csrfSecret: Buffer;
      now: number;
      expiresAt: number;
    },
  ): Promise<void> {
    await q.run(
      `INSERT INTO console_sessions (id_hash, tenant_id, principal_id, csrf_secret, flash, created_at, last_seen_at, expires_at)
       VALUES ($1, $2, $3, $4, NULL, $5, $5, $6)`,
      [s.idHash, s.tenantId, s.principalId, s.csrfSecret, s.now, s.expiresAt],
    );
  },
  async find(q: Queryable, idHash: Buffer): Promise<StoredConsoleSession | undefined> {
    const r = await q.get<Row>(
      'SELECT id_hash, tenant_id, principal_id, csrf_secret, created_at, last_seen_at, expires_at FROM console_sessions WHERE id_hash = $1',
      [idHash],
    );
    if (!r) return undefined;
    return {
      tenantId: r.tenant_id,
      principalId: r.principal_id,
      csrfSecret: Buffer.from(r.csrf_secret),
      createdAt: Number(r.created_at),
      lastSeenAt: Number(r.last_seen_at),
      expiresAt: Number(r.expires_at),
    };
  },
  async touch(q: Queryable, idHash: Buffer, now: number): Promise<void> {
    await q.run('UPDATE console_sessions SET last_seen_at = $1 WHERE id_hash = $2', [now, idHash]);
  },
  async delete(q: Queryable, idHash: Buffer): Promise<void> {
    await q.run('DELETE FROM console_sessions WHERE id_hash = $1', [idHash]);
  },
  /** Stores the next page's message (JSON) or clears it (null). */
  async setFlash(q: Queryable, idHash: Buffer, flash: string | null): Promise<void> {
    await q.run('UPDATE console_sessions SET flash = $1 WHERE id_hash = $2', [flash, idHash]);
  },
  async flash(q: Queryable, idHash: Buffer): Promise<string | null> {
    const r = await q.get<{ flash: string | null }>('SELECT flash FROM console_sessions WHERE id_hash = $1', [
      idHash,
    ]);
    return r?.flash ?? null;
  },
  /** Deletes sessions past their absolute limit or idle since `idleBefore`; returns how many. */
  async prune(q: Queryable, now: number, idleBefore: number): Promise<number> {
    const r = await q.run('DELETE FROM console_sessions WHERE expires_at <= $1 OR last_seen_at <= $2', [
      now,
      idleBefore,
    ]);
    return r.changes;
  },
};
